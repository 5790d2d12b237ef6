//! One emulated Monicar terminal: the [`vehicle`] state machine driving in the world, the
//! requests it wants sent ([`device_event`]) and their bodies ([`monicar_body`]). Pure: no I/O.

pub mod device_event;
pub mod monicar_body;
pub mod vehicle;

#[cfg(test)]
mod vehicle_tests;
