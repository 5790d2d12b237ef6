//! The ingest HTTP surface, driven with `oneshot` (no sockets): every door with good and bad
//! input; each rejection checked for status, body, named field, and that nothing reached the sink.

mod fuzz;
mod monicar;
mod native;
mod osmand;
mod policy;
mod support;
