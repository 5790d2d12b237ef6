//! The vehicle registry over HTTP: `GET /v1/admin/vehicles` (a company token sees its own
//! vehicles, the admin token all), `PUT /v1/admin/vehicles/{vehicle}` with `{"company":"acme"}`
//! (registers the id in that company; the same id may be in several, each its own vehicle) and
//! `DELETE /v1/admin/vehicles/{vehicle}[?company=acme]` (from that company, or from every one).
//! Changes are for the admin token only.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use fleetflow_model::Principal;
use serde::{Deserialize, Serialize};

use crate::body::read_body;
use crate::error::{IngestError, SuccessBody};
use crate::field::{At, json_error};
use crate::state::{IngestState, bearer_token};

#[derive(Debug, Serialize)]
struct VehicleEntry<'a> {
    vehicle: &'a str,
    company: &'a str,
}

#[derive(Debug, Serialize)]
struct VehicleList<'a> {
    vehicles: Vec<VehicleEntry<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Assignment {
    company: Option<String>,
}

/// `DELETE`'s query: the company to remove the vehicle from (every company when absent).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Removal {
    company: Option<String>,
}

fn principal(state: &IngestState, headers: &HeaderMap) -> Result<Principal, IngestError> {
    bearer_token(headers)
        .and_then(|token| state.tenants().authenticate(token))
        .cloned()
        .ok_or(IngestError::Unauthorized)
}

fn admin(state: &IngestState, headers: &HeaderMap) -> Result<(), IngestError> {
    match principal(state, headers)? {
        Principal::Admin => Ok(()),
        Principal::Company(_) => Err(IngestError::AdminOnly),
    }
}

pub(crate) async fn list(State(state): State<IngestState>, headers: HeaderMap) -> Response {
    let principal = match principal(&state, &headers) {
        Ok(principal) => principal,
        Err(error) => return error.into_response(),
    };
    let all = state.registry().snapshot();
    let vehicles = all
        .iter()
        .filter(|(_, company)| principal.may_access(company))
        .map(|(vehicle, company)| VehicleEntry { vehicle, company })
        .collect();
    Json(VehicleList { vehicles }).into_response()
}

pub(crate) async fn assign(
    State(state): State<IngestState>,
    Path(vehicle): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let outcome = async {
        admin(&state, &headers)?;
        let vehicle = At::TOP.vehicle_id(vehicle, "vehicle")?;
        let deadline = std::time::Duration::from_secs(state.config().body_timeout_secs);
        let bytes = read_body(&headers, body, 64 * 1024, deadline).await?;
        let assignment: Assignment = serde_json::from_slice(&bytes)
            .map_err(|error| json_error::<Assignment>(&bytes, error, ""))?;
        let company_id = At::TOP.required(assignment.company, "company")?;
        let company = state
            .tenants()
            .company(&company_id)
            .ok_or(IngestError::UnknownCompany(company_id))?;
        state
            .registry()
            .add(&vehicle, &company)
            .map_err(|e| IngestError::Internal(format!("vehicle registry: {e}")))?;
        Ok::<_, IngestError>(SuccessBody::new(format!(
            "vehicle {vehicle} is in {company}"
        )))
    }
    .await;
    match outcome {
        Ok(body) => Json(body).into_response(),
        Err(error) => error.into_response(),
    }
}

pub(crate) async fn remove(
    State(state): State<IngestState>,
    Path(vehicle): Path<String>,
    Query(removal): Query<Removal>,
    headers: HeaderMap,
) -> Response {
    let outcome = async {
        admin(&state, &headers)?;
        let company = match removal.company {
            Some(id) => Some(
                state
                    .tenants()
                    .company(&id)
                    .ok_or(IngestError::UnknownCompany(id))?,
            ),
            None => None,
        };
        let removed = state
            .registry()
            .remove(&vehicle, company.as_ref())
            .map_err(|e| IngestError::Internal(format!("vehicle registry: {e}")))?;
        if removed {
            Ok(SuccessBody::new(format!("vehicle {vehicle} removed")))
        } else {
            Err(IngestError::UnknownVehicle {
                field: "vehicle".to_owned(),
                vehicle,
            })
        }
    }
    .await;
    match outcome {
        Ok(body) => Json(body).into_response(),
        Err(error) => error.into_response(),
    }
}
