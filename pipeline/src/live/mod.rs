//! The live fleet views: maintained by differential dataflow from the sessionizer's outputs
//! ([`views`], with [`period_totals`], [`local_top`] leaderboards, [`temporal_filter`] windows
//! and [`alerts`]), published into the [`store`] that the HTTP and SQL readers query (its
//! [`vehicles`] table, [`grid`] index and [`routes`]). Worker 0 holds the store.

pub mod alerts;
pub mod earliest_capability;
pub mod grid;
pub mod local_top;
pub mod period_totals;
pub mod routes;
pub mod store;
pub mod temporal_filter;
pub mod vehicles;
pub mod views;
