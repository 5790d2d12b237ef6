//! The read side of fleetflow.
//!
//! - [`live_api`]: `/v1/live/*`, the incrementally maintained live views over HTTP (JSON,
//!   cursors, SSE), per-company tokens;
//! - the SQL endpoint over the Parquet history (issue 5) is not built yet: `fleetflow query`
//!   reports that plainly instead of pretending to run.

pub mod error;
pub mod live_api;
pub mod live_json;
pub mod live_stream;
pub mod params;

pub use error::QueryError;
pub use live_api::{LiveApi, live_routes};

/// What `fleetflow query` says until the SQL endpoint exists.
pub const NOT_YET: &str = "the SQL endpoint is not built yet: see issue 5";
