//! The SQL endpoint (issue 5): DataFusion over the Parquet history and the live views.
//!
//! Not built yet. `fleetflow query` reports that plainly instead of pretending to run.

/// What `fleetflow query` says until the SQL endpoint exists.
pub const NOT_YET: &str = "the SQL endpoint is not built yet: see issue 5";
