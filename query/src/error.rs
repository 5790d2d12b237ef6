//! Every way a read request can fail, classified once into an HTTP status. Bodies are
//! `{"error": message, "parameter": name}`; internal errors are logged with their cause and
//! answered with a generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("missing or unknown token: send Authorization: Bearer <token>")]
    Unauthorized,
    #[error("{parameter}: {reason}")]
    BadParameter {
        parameter: &'static str,
        reason: String,
    },
    #[error("{0} not found")]
    NotFound(String),
    #[error(
        "cursor {cursor} is no longer in the change log (it holds {oldest}..={newest}): read the full state and poll from its cursor"
    )]
    CursorExpired {
        cursor: u64,
        oldest: u64,
        newest: u64,
    },
    #[error(
        "the live views are not served by this process (fleetflow ingest runs none; in a timely cluster, process 0 serves them)"
    )]
    Unavailable,
    /// The SQL is wrong, refused (read-only) or failed on the data; `line`/`column` (1-based)
    /// say where, when known.
    #[error("{message}")]
    Sql {
        message: String,
        line: Option<u64>,
        column: Option<u64>,
    },
    #[error("the query ran longer than its limit of {0:?} and was cancelled")]
    Timeout(std::time::Duration),
    /// Retry later: the server is short of memory for queries right now.
    #[error("{0}")]
    Busy(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl QueryError {
    pub fn bad(parameter: &'static str, reason: impl Into<String>) -> QueryError {
        QueryError::BadParameter {
            parameter,
            reason: reason.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            QueryError::Unauthorized => StatusCode::UNAUTHORIZED,
            QueryError::BadParameter { .. } => StatusCode::BAD_REQUEST,
            QueryError::NotFound(_) => StatusCode::NOT_FOUND,
            // The client's state is too old for an incremental answer: 410 Gone.
            QueryError::CursorExpired { .. } => StatusCode::GONE,
            QueryError::Unavailable | QueryError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            QueryError::Sql { .. } => StatusCode::BAD_REQUEST,
            // The request took too long to answer; retrying the same query will too.
            QueryError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            QueryError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn parameter(&self) -> Option<&'static str> {
        match self {
            QueryError::BadParameter { parameter, .. } => Some(parameter),
            QueryError::CursorExpired { .. } => Some("since"),
            QueryError::Unauthorized
            | QueryError::NotFound(_)
            | QueryError::Unavailable
            | QueryError::Sql { .. }
            | QueryError::Timeout(_)
            | QueryError::Busy(_)
            | QueryError::Internal(_) => None,
        }
    }
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameter: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<u64>,
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        let error = match &self {
            QueryError::Internal(detail) => {
                tracing::error!(detail = %detail, "internal query error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let (line, column) = match &self {
            QueryError::Sql { line, column, .. } => (*line, *column),
            _ => (None, None),
        };
        let body = ErrorBody {
            error,
            parameter: self.parameter(),
            line,
            column,
        };
        let retry = matches!(self, QueryError::Busy(_)).then_some([(RETRY_AFTER, "1")]);
        (self.status(), retry, Json(body)).into_response()
    }
}
