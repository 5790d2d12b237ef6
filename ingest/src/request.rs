//! One ingest request, start to end, the same for every door: read the body under the size
//! limit, parse and validate all of it against the server clock, authenticate (bearer header, or
//! a token the request itself carried, as OsmAnd clients do), then accept it whole. The outcome
//! is recorded in the metrics and answered in Monicar's body shape.

use axum::Json;
use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use fleetflow_model::Source;

use crate::body::read_body;
use crate::config::IngestConfig;
use crate::error::{IngestError, SuccessBody};
use crate::field::Clock;
use crate::metrics::{Accepted, Endpoint};
use crate::state::{IngestState, VehicleBatch};

/// What a door made of a request.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub batches: Vec<VehicleBatch>,
    /// A token carried in the request rather than in `Authorization` (OsmAnd's `token`).
    pub token: Option<String>,
}

impl From<Vec<VehicleBatch>> for Parsed {
    fn from(batches: Vec<VehicleBatch>) -> Parsed {
        Parsed {
            batches,
            token: None,
        }
    }
}

/// Handles one request whose body `parse` turns into validated batches.
pub(crate) async fn handle<P>(
    state: &IngestState,
    endpoint: Endpoint,
    source: Source,
    headers: &HeaderMap,
    body: Body,
    parse: P,
) -> Response
where
    P: FnOnce(&[u8], &Clock, &IngestConfig) -> Result<Parsed, IngestError>,
{
    let outcome = state
        .observe(endpoint, async {
            let bytes = read_body(headers, body, state.config().max_body_bytes).await?;
            let clock = state.clock();
            let parsed = parse(&bytes, &clock, state.config())?;
            let caller = state.caller(headers, parsed.token.as_deref())?;
            state
                .accept(&caller, source, clock.now_ms, parsed.batches)
                .await
        })
        .await;
    respond(outcome)
}

/// Monicar's success body, or the error.
fn respond(outcome: Result<Accepted, IngestError>) -> Response {
    match outcome {
        Ok(accepted) => Json(SuccessBody::new(format!(
            "accepted {} items for {} vehicles",
            accepted.items, accepted.records
        )))
        .into_response(),
        Err(error) => error.into_response(),
    }
}
