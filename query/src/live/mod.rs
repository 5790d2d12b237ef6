//! `/v1/live/*`: the live views over HTTP. The routes ([`api`], [`route_api`] for live routes),
//! their JSON shapes ([`json`]) and the server-sent-event change feed ([`stream`]). Reads the
//! pipeline's live store, never writes it. `route_api` and `stream` build on `api`'s
//! [`api::LiveApi`]; [`live_routes`] puts the three together.

use axum::Router;
use axum::routing::get;

pub mod api;
pub mod json;
pub mod route_api;
pub mod stream;

/// Every `/v1/live/*` route over `api`.
pub fn live_routes(api: api::LiveApi) -> Router {
    api::snapshot_routes()
        .route("/v1/live/routes", get(route_api::routes))
        .route("/v1/live/stream", get(stream::stream))
        .with_state(api)
}
