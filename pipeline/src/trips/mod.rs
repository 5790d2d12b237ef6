//! Trips: each vehicle's items in event-time order ([`timeline`]), the rules that cut them into
//! trips ([`trip_machine`], distances by [`geo`]), the incremental [`sessionize`]r with its
//! timely operator ([`sessionize_operator`]), the live state the machine derives
//! ([`vehicle_live`]), and the plain sequential [`reference`] every dataflow result is compared
//! with. Produces [`crate::rows`]; knows nothing of Parquet or the live store.

pub mod geo;
pub mod reference;
pub mod sessionize;
pub mod sessionize_operator;
pub mod timeline;
pub mod trip;
pub mod trip_machine;
pub mod vehicle_live;
