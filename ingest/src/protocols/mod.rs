//! The doors devices post through, one module per protocol: Monicar's event hub
//! ([`monicar`]), the native batch endpoint ([`native`]), OsmAnd's query form ([`osmand`]) and
//! its JSON form as Traccar Client posts it ([`osmand_json`]). Each parses and validates its
//! bodies into vehicle batches and hands them to the one path every door ends in
//! ([`crate::request`], [`crate::state`]).

pub(crate) mod monicar;
pub(crate) mod native;
pub(crate) mod osmand;
pub(crate) mod osmand_json;
