//! `POST /v1/sql`: any read-only SQL over the history and the live views, as the caller's
//! company (or all, for the admin token).
//!
//! Body `{"sql": "..."}`; `?format=json|csv|arrow|parquet` (else `Accept`, else JSON);
//! `?limit=n` (at most `[query] max_rows`). Every answer carries `X-Fleetflow-Rows`,
//! `X-Fleetflow-Truncated` and, when the query read a live table, `X-Fleetflow-Upto-Ms` (JSON
//! has them in the body too). Errors are `{"error", "line", "column"}`, 400 for the caller's
//! SQL, 408 after the timeout, 503 when queries are short of memory.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use fleetflow_model::Tenants;
use serde::Deserialize;

use crate::error::QueryError;
use crate::params::Params;
use crate::sql::engine::SqlEngine;
use crate::sql::format::SqlFormat;

/// What the SQL and history endpoints read.
#[derive(Debug, Clone)]
pub struct SqlApi {
    pub engine: SqlEngine,
    pub tenants: Arc<Tenants>,
}

pub fn sql_routes(api: SqlApi) -> Router {
    Router::new().route("/v1/sql", post(sql)).with_state(api)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    sql: String,
}

async fn sql(
    State(api): State<SqlApi>,
    headers: HeaderMap,
    Query(raw): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Response, QueryError> {
    let p = Params::new(raw, &["format", "limit"])?;
    let principal = crate::caller::principal(&api.tenants, &headers, None)?;
    let format = SqlFormat::choose(p.text("format"), &headers)?;
    let limit = p.number("limit", 0..=api.engine.config().max_rows)?;
    let request: SqlRequest = serde_json::from_slice(&body).map_err(|e| {
        QueryError::bad("sql", format!("the body must be {{\"sql\": \"...\"}}: {e}"))
    })?;
    if request.sql.trim().is_empty() {
        return Err(QueryError::bad("sql", "the SQL is empty"));
    }
    let answer = api.engine.query(&principal, &request.sql, limit).await?;
    let bytes = format
        .encode(&answer)
        .map_err(|e| QueryError::Internal(format!("encoding the answer: {e}")))?;
    let mut response = (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        )],
        bytes,
    )
        .into_response();
    let h = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    set("x-fleetflow-rows", answer.rows().to_string());
    set("x-fleetflow-truncated", answer.truncated.to_string());
    if let Some(upto) = answer.upto_ms {
        set("x-fleetflow-upto-ms", upto.to_string());
    }
    Ok(response)
}
