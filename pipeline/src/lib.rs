//! The dataflow job: Kafka telemetry to trips, events and a Parquet history.
//!
//! - [`sessionize`]: per-vehicle incremental trip sessionization (the [`trip_machine`] rules
//!   over a [`timeline`]), emitting trip corrections as a differential collection;
//! - [`reference`]: the plain sequential definition the dataflow is tested against.

pub mod broker_check;
pub mod commit_log;
pub mod compaction;
pub mod earliest_capability;
pub mod geo;
pub mod job;
pub mod kafka_source;
pub mod live_alerts;
pub mod live_grid;
pub mod live_routes;
pub mod live_store;
pub mod live_vehicles;
pub mod live_views;
pub mod local_top;
pub mod parquet_file;
pub mod parquet_sink;
pub mod partition_swap;
pub mod period_totals;
pub mod position_batch;
pub mod raw_record;
pub mod reference;
pub mod rows;
pub mod sessionize;
pub mod sessionize_operator;
pub mod sorted_merge;
pub mod stable_hash;
pub mod synthetic;
pub mod table_batches;
pub mod table_reader;
pub mod temporal_filter;
pub mod timeline;
pub mod trip;
pub mod trip_machine;
pub mod vehicle_live;
pub mod window_writer;

pub use raw_record::RawRecord;
pub use rows::{ErrorReason, ErrorRow, EventKind, EventRow, PositionRow, TripRecord, VehicleName};
pub use sessionize::{Outputs, Provenance, RuleBook, SessionStats, Sessionizer};
pub use sessionize_operator::{Epoch, SessionStreams, Sessionize};
pub use trip::{CloseRule, Trip, TripRule};
pub use vehicle_live::{
    IgnitionState, LastHeard, LiveFix, MachineLive, Motion, Status, VehicleLive,
};

pub use job::{
    LiveConfig, PipelineConfig, PipelineError, PipelineJob, PipelineStats, RunningPipeline, start,
};
