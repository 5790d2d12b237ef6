//! The live views between the dataflow that writes them and the readers that serve them.
//!
//! The dataflow (`fleetflow_pipeline::live`) computes the views as differential collections and
//! sends their changes, one complete timestamp at a time, as [`LiveRow`]s to the [`LiveStore`];
//! the HTTP and SQL readers (`fleetflow_query`) read consistent [`LiveSnapshot`]s of it. This
//! crate is that interface, and nothing else: no dataflow, no Kafka, no HTTP.
//!
//! - what a vehicle is live: its state after its newest item ([`vehicle`]) and its trips
//!   ([`trip`]);
//! - what the views send: [`rows`], the [`period`]s totals cover, [`alerts`], [`routes`]' fixes;
//! - where they are kept: the [`store`], with its [`vehicles`] table and [`grid`] index.

pub mod alerts;
pub mod grid;
pub mod period;
pub mod routes;
pub mod rows;
pub mod store;
pub mod trip;
pub mod vehicle;
pub mod vehicles;

pub use alerts::{Alert, AlertKind};
pub use period::{DAY_MS, Period, PeriodTotal, VehicleKey, WEEK_MS};
pub use routes::{RecentFix, RecentFixes};
pub use rows::{Leader, LiveRow, SummaryKey};
pub use store::{LiveSnapshot, LiveStore, LiveStoreConfig, ReadyEpoch};
pub use trip::{CloseRule, Trip, TripRule};
pub use vehicle::{IgnitionState, LastHeard, LiveFix, MachineLive, Motion, Status, VehicleLive};
pub use vehicles::VehicleEntry;

/// The dataflow's timestamp: epoch milliseconds of the wall clock at which the source read the
/// records. The store's `upto` and the alerts' `epoch` are in it.
pub type Epoch = u64;
