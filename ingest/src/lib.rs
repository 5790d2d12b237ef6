//! fleetflow's ingest service: devices post over HTTP (Monicar's event hub, a native batch
//! endpoint, OsmAnd), every request is validated whole, and accepted items go to Kafka as one
//! record per vehicle, acknowledged only after the broker confirmed them.

mod admin;
mod body;
pub mod config;
pub mod error;
mod field;
pub mod kafka_sink;
pub mod metrics;
mod protocols;
pub mod registry;
mod request;
pub mod sink;
mod state;

use axum::Router;
use axum::routing::{get, post, put};

pub use config::{AuthMode, IngestConfig, UnknownVehiclePolicy};
pub use error::IngestError;
pub use kafka_sink::KafkaSink;
pub use metrics::{Accepted, Endpoint, IngestMetrics, Totals};
pub use protocols::osmand::osmand_app;
pub use registry::VehicleRegistry;
pub use sink::{MemorySink, NullSink, OutRecord, RecordSink, SinkError};
pub use state::{Caller, ClockFn, IngestState, VehicleBatch};

/// Monicar's event-hub paths.
pub const KEY_ON_PATH: &str = "/api/v1/event-hub/key-on";
pub const KEY_OFF_PATH: &str = "/api/v1/event-hub/key-off";
pub const CYCLE_INFO_PATH: &str = "/api/v1/event-hub/cycle-info";
/// The native batch endpoint.
pub const NATIVE_PATH: &str = "/v1/ingest";
/// The OsmAnd endpoint.
pub const OSMAND_PATH: &str = "/osmand";

/// Every ingest route. Body limits are applied by the handlers themselves (so an oversized
/// body gets the same JSON error shape as any other), hence axum's default limit is lifted.
pub fn app(state: IngestState) -> Router {
    Router::new()
        .route(KEY_ON_PATH, post(protocols::monicar::key_on))
        .route(KEY_OFF_PATH, post(protocols::monicar::key_off))
        .route(CYCLE_INFO_PATH, post(protocols::monicar::cycle_info))
        .route(NATIVE_PATH, post(protocols::native::ingest))
        .route(
            OSMAND_PATH,
            get(protocols::osmand::osmand).post(protocols::osmand::osmand),
        )
        .route("/v1/admin/vehicles", get(admin::list))
        .route(
            "/v1/admin/vehicles/{vehicle}",
            put(admin::assign).delete(admin::remove),
        )
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}
