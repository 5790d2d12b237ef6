//! HTTP around the services: the [`server`] every subcommand serves its router on (head
//! deadline, graceful drain, binding, signals), `/metrics` and `/status` ([`ops`]), and the
//! dashboard's files ([`dashboard`]).

pub mod dashboard;
pub mod ops;
pub mod server;
