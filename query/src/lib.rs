//! The read side of fleetflow.
//!
//! - [`live`]: `/v1/live/*`, the incrementally maintained live views over HTTP (JSON, cursors,
//!   SSE), per-company tokens;
//! - [`sql`]: one DataFusion namespace over the Parquet history and the live views, scoped per
//!   company in the plan, read-only ([`sql::engine`]); `POST /v1/sql` ([`sql::api`]);
//! - [`pgwire`]: the same SQL over the Postgres wire protocol (psql, psycopg, pandas);
//! - [`history`]: the history REST routes (`/v1/history/*`);
//! - [`caller`], [`params`], [`error`]: who is asking, request parameters, and the one error
//!   type every route answers with.

pub mod caller;
pub mod error;
pub mod history;
pub mod live;
pub mod params;
pub mod pgwire;
pub mod sql;

pub use error::QueryError;
pub use history::api::history_routes;
pub use live::api::LiveApi;
pub use live::live_routes;
pub use pgwire::server::{PgServer, serve_postgres};
pub use sql::api::{SqlApi, sql_routes};
pub use sql::engine::{SqlConfig, SqlEngine};
pub use sql::status::QueryStatus;
pub use sql::supplied::SuppliedTable;
