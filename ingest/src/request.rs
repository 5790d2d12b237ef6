//! One ingest request, start to end, the same for every door: read the body under the size
//! limit, parse and validate all of it against the server clock, authenticate (bearer header, or
//! a token the request itself carried, as OsmAnd clients do), then accept it whole. The outcome
//! is recorded in the metrics and answered in Monicar's body shape.

use std::time::Duration;

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

/// Handles one request whose body `parse` turns into validated batches; answers Monicar's
/// success body.
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
    handle_with(state, endpoint, source, headers, body, parse, success_body).await
}

/// [`handle`] with the door's own success answer (`ok`); errors are answered alike.
pub(crate) async fn handle_with<P, S>(
    state: &IngestState,
    endpoint: Endpoint,
    source: Source,
    headers: &HeaderMap,
    body: Body,
    parse: P,
    ok: S,
) -> Response
where
    P: FnOnce(&[u8], &Clock, &IngestConfig) -> Result<Parsed, IngestError>,
    S: FnOnce(Accepted) -> Response,
{
    let outcome = state
        .observe(endpoint, async {
            let config = state.config();
            let bytes = read_body(
                headers,
                body,
                config.max_body_bytes,
                Duration::from_secs(config.body_timeout_secs),
            )
            .await?;
            let clock = state.clock();
            let parsed = parse(&bytes, &clock, state.config())?;
            let caller = state.caller(headers, parsed.token.as_deref())?;
            state
                .accept(&caller, source, clock.now_ms, parsed.batches)
                .await
        })
        .await;
    match outcome {
        Ok(accepted) => ok(accepted),
        Err(error) => error.into_response(),
    }
}

/// Monicar's success body.
fn success_body(accepted: Accepted) -> Response {
    Json(SuccessBody::new(format!(
        "accepted {} items for {} vehicles",
        accepted.items, accepted.records
    )))
    .into_response()
}
