//! Trips: each vehicle's items in event-time order ([`timeline`]), the rules that cut them into
//! trips ([`trip_machine`], distances by `fleetflow_model::geo`), the incremental
//! [`sessionize`]r with its timely operator ([`sessionize_operator`]), and the plain sequential
//! [`reference`] every dataflow result is compared with. Produces [`crate::rows`], trips and
//! vehicles' live state (their types are `fleetflow_live_store`'s `trip` and `vehicle`); knows
//! nothing of Parquet or the live store.

pub mod reference;
pub mod sessionize;
pub mod sessionize_operator;
pub mod timeline;
pub mod trip_machine;
