//! The read side of fleetflow.
//!
//! - [`live_api`]: `/v1/live/*`, the incrementally maintained live views over HTTP (JSON,
//!   cursors, SSE), per-company tokens;
//! - [`sql_engine`]: one DataFusion namespace over the Parquet history and the live views,
//!   scoped per company in the plan ([`tenant_scope`]), read-only;
//! - [`sql_api`]: `POST /v1/sql` (JSON, CSV, Arrow IPC, Parquet);
//! - [`pg_wire`]: the same SQL over the Postgres wire protocol (psql, psycopg, pandas).

pub mod caller;
pub mod engine_status;
pub mod error;
pub mod history_api;
pub mod latest_version;
pub mod live_api;
pub mod live_json;
pub mod live_route_api;
pub mod live_stream;
pub mod live_tables;
pub mod params;
pub mod partition_key_aggregate;
pub mod pg_auth;
pub mod pg_catalog;
pub mod pg_types;
pub mod pg_wire;
pub mod sql_api;
pub mod sql_bounds;
pub mod sql_engine;
pub mod sql_error;
pub mod sql_format;
pub mod sql_params;
pub mod synthetic_history;
pub mod tenant_scope;
pub mod trips_latest;
pub mod yielding_joins;

pub use engine_status::QueryStatus;
pub use error::QueryError;
pub use history_api::history_routes;
pub use live_api::{LiveApi, live_routes};
pub use pg_wire::{PgServer, serve_postgres};
pub use sql_api::{SqlApi, sql_routes};
pub use sql_engine::{SqlConfig, SqlEngine};
