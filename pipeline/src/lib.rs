//! The dataflow job (issue 3): Kafka source, trip sessionization, live views, Parquet sink.
//!
//! Not built yet. `fleetflow pipeline` reports that plainly instead of pretending to run.

/// What `fleetflow pipeline` says until the dataflow exists.
pub const NOT_YET: &str = "the pipeline (trip sessionization and the Parquet sink) is not built yet: see issue 3; \
ingest writes to Kafka and the records are there to be read";
