//! Every way an ingest request can fail, classified once into an HTTP status, a Monicar error code
//! and whether the client should retry.
//!
//! The response body keeps Monicar's shape (`isSuccess`, `errorMessage`, `errorCode`,
//! `timestamp`) with a correct HTTP status, plus `field` naming the offending field and item
//! (`cList[3].lat`) when there is one. Internal errors never reach the client's eyes in detail:
//! they are logged with their cause and answered with a generic message.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Monicar's error codes (and fleetflow's own, which reuse the HTTP status number).
pub mod code {
    /// Wrong state (key-on while on / key-off while off).
    pub const WRONG_STATE: u32 = 101;
    /// A required field is missing.
    pub const MISSING_FIELD: u32 = 301;
    /// A field has an invalid value (type, range, time format, ...).
    pub const INVALID_VALUE: u32 = 1001;
    /// The body could not be read (not JSON, bad gzip, ...).
    pub const UNREADABLE_BODY: u32 = 1008;
    /// The vehicle is not registered.
    pub const UNKNOWN_VEHICLE: u32 = 1012;
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("unreadable body: {0}")]
    UnreadableBody(String),
    #[error("{field}: required field is missing")]
    MissingField { field: String },
    #[error("{field}: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("{field}: batch has {count} items, more than the limit of {max}")]
    BatchTooLarge {
        field: String,
        count: usize,
        max: usize,
    },
    #[error("body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("the body did not arrive within {secs} s")]
    BodyTimeout { secs: u64 },
    #[error("missing or unknown ingest token")]
    Unauthorized,
    #[error("admin token required")]
    AdminOnly,
    #[error(
        "{field}: vehicle {vehicle} is registered in several companies; send it with the token \
         of the company it belongs to"
    )]
    AmbiguousVehicle { field: String, vehicle: String },
    #[error("{field}: unknown vehicle {vehicle}")]
    UnknownVehicle { field: String, vehicle: String },
    #[error("unknown company {0}")]
    UnknownCompany(String),
    #[error("ingest is at capacity, retry after {retry_after_secs} s")]
    Backpressure { retry_after_secs: u32 },
    #[error("the record for vehicle {vehicle} is too large for the broker")]
    RecordTooLarge { vehicle: String },
    #[error("the broker did not confirm delivery, retry after {retry_after_secs} s")]
    DeliveryFailed { retry_after_secs: u32 },
    #[error("internal error: {0}")]
    Internal(String),
    /// The ingest configuration is wrong (found at start-up).
    #[error("ingest configuration: {0}")]
    Config(String),
}

/// How the HTTP layer answers one [`IngestError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    pub status: StatusCode,
    pub code: u32,
    /// Whether the same request may succeed later.
    pub retryable: bool,
}

impl IngestError {
    pub fn missing(field: impl Into<String>) -> IngestError {
        IngestError::MissingField {
            field: field.into(),
        }
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> IngestError {
        IngestError::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn classify(&self) -> Classification {
        use IngestError as E;
        let (status, code, retryable) = match self {
            E::UnreadableBody(_) => (StatusCode::BAD_REQUEST, code::UNREADABLE_BODY, false),
            E::MissingField { .. } => (StatusCode::BAD_REQUEST, code::MISSING_FIELD, false),
            E::InvalidField { .. } => (StatusCode::BAD_REQUEST, code::INVALID_VALUE, false),
            E::BatchTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, code::INVALID_VALUE, false),
            E::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, code::UNREADABLE_BODY, false),
            E::BodyTimeout { .. } => (StatusCode::REQUEST_TIMEOUT, code::UNREADABLE_BODY, true),
            E::Unauthorized => (StatusCode::UNAUTHORIZED, 401, false),
            E::AdminOnly => (StatusCode::FORBIDDEN, 403, false),
            E::AmbiguousVehicle { .. } => (StatusCode::CONFLICT, code::UNKNOWN_VEHICLE, false),
            E::UnknownVehicle { .. } => (StatusCode::NOT_FOUND, code::UNKNOWN_VEHICLE, false),
            E::UnknownCompany(_) => (StatusCode::BAD_REQUEST, code::INVALID_VALUE, false),
            E::Backpressure { .. } => (StatusCode::SERVICE_UNAVAILABLE, 503, true),
            E::RecordTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, code::INVALID_VALUE, false),
            E::DeliveryFailed { .. } => (StatusCode::SERVICE_UNAVAILABLE, 503, true),
            E::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, 500, true),
            E::Config(_) => (StatusCode::INTERNAL_SERVER_ERROR, 500, false),
        };
        Classification {
            status,
            code,
            retryable,
        }
    }

    /// The field the error is about, as the client wrote it (`cList[3].lat`).
    pub fn field(&self) -> Option<&str> {
        match self {
            IngestError::MissingField { field }
            | IngestError::InvalidField { field, .. }
            | IngestError::BatchTooLarge { field, .. }
            | IngestError::AmbiguousVehicle { field, .. }
            | IngestError::UnknownVehicle { field, .. } => Some(field),
            _ => None,
        }
    }

    fn retry_after_secs(&self) -> Option<u32> {
        match self {
            IngestError::Backpressure { retry_after_secs }
            | IngestError::DeliveryFailed { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// A short, stable label for metrics (`reason` label).
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::UnreadableBody(_) => "unreadable_body",
            IngestError::MissingField { .. } => "missing_field",
            IngestError::InvalidField { .. } => "invalid_field",
            IngestError::BatchTooLarge { .. } => "batch_too_large",
            IngestError::BodyTooLarge { .. } => "body_too_large",
            IngestError::BodyTimeout { .. } => "body_timeout",
            IngestError::Unauthorized => "unauthorized",
            IngestError::AdminOnly => "admin_only",
            IngestError::AmbiguousVehicle { .. } => "ambiguous_vehicle",
            IngestError::UnknownVehicle { .. } => "unknown_vehicle",
            IngestError::UnknownCompany(_) => "unknown_company",
            IngestError::Backpressure { .. } => "backpressure",
            IngestError::RecordTooLarge { .. } => "record_too_large",
            IngestError::DeliveryFailed { .. } => "delivery_failed",
            IngestError::Internal(_) => "internal",
            IngestError::Config(_) => "config",
        }
    }
}

/// Monicar's failure body, plus `field`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureBody<'a> {
    pub is_success: bool,
    pub error_message: String,
    pub error_code: u32,
    pub timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let Classification { status, code, .. } = self.classify();
        let error_message = match &self {
            IngestError::Internal(detail) | IngestError::Config(detail) => {
                tracing::error!(detail = %detail, "internal ingest error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let body = FailureBody {
            is_success: false,
            error_message,
            error_code: code,
            timestamp: chrono::Utc::now().timestamp_millis(),
            field: self.field(),
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Monicar's success body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SuccessBody {
    pub is_success: bool,
    pub message: String,
}

impl SuccessBody {
    pub fn new(message: impl Into<String>) -> SuccessBody {
        SuccessBody {
            is_success: true,
            message: message.into(),
        }
    }
}
