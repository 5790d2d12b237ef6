//! The dataflow job: Kafka telemetry to trips, events, live views and a Parquet history.
//!
//! Where things live, in the order a record meets them:
//!
//! - [`source`]: the Kafka source (one consumer per worker, flow control) and the raw records
//!   it emits;
//! - [`trips`]: sessionization: each vehicle's timeline, the trip machine's rules, the sessionize
//!   operator, and [`trips::reference`], the plain sequential definition the dataflow is tested
//!   against;
//! - [`live`]: the live fleet views (differential dataflow), published into the store their
//!   readers query (the `fleetflow_live_store` crate, which also defines trips and vehicles'
//!   live state: what the dataflow and its readers share);
//! - [`sink`]: the frontier-driven Parquet sink: rows to Arrow batches, files, commits into the
//!   tables on disk (the `fleetflow_tables` crate: file format, commit log, compaction);
//! - [`rows`]: what the dataflow produces, one struct per table; [`job`]: starting it all;
//!   [`synthetic`]: seeded fleets for tests and benchmarks.

pub mod job;
pub mod live;
pub mod rollups;
pub mod rows;
pub mod sink;
pub mod source;
pub mod synthetic;
pub mod trips;

pub use fleetflow_live_store::{
    CloseRule, IgnitionState, LastHeard, LiveFix, MachineLive, Motion, Status, Trip, TripRule,
    VehicleLive,
};
pub use rows::{
    ErrorReason, ErrorRow, EventKind, EventRow, PositionRow, TripRecord, VehicleName, VisitRecord,
};
pub use source::raw_record::RawRecord;
pub use trips::sessionize::{Outputs, Provenance, RuleBook, SessionStats, Sessionizer};
pub use trips::sessionize_operator::{Epoch, SessionStreams, Sessionize};

pub use job::{
    LiveConfig, PipelineConfig, PipelineError, PipelineJob, PipelineStats, RunningPipeline, start,
};
