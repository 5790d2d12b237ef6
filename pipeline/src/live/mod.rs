//! The live fleet views: maintained by differential dataflow from the sessionizer's outputs
//! ([`views`], with [`period_totals`], [`local_top`] leaderboards, [`temporal_filter`] windows,
//! [`routes`]' recent fixes and [`alerts`]), and [`publish`]ed one complete timestamp at a time
//! into the `fleetflow_live_store::LiveStore` that the HTTP and SQL readers query. Worker 0
//! holds the store.

pub mod alerts;
pub mod earliest_capability;
pub mod local_top;
pub mod period_totals;
pub mod publish;
pub mod routes;
pub mod temporal_filter;
pub mod views;
