//! Who is asking: the bearer token of a read request, resolved to a company or the admin.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use fleetflow_model::{Principal, Tenants};

use crate::error::QueryError;

/// The principal behind `Authorization: Bearer <token>`, or behind `token` (the `?token=`
/// fallback for browsers' `EventSource`, which cannot set headers) when there is no header.
pub fn principal(
    tenants: &Tenants,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<Principal, QueryError> {
    let header = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(fleetflow_model::tenancy::bearer);
    header
        .or(token)
        .and_then(|t| tenants.authenticate(t))
        .cloned()
        .ok_or(QueryError::Unauthorized)
}
