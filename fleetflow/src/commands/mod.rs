//! One module per subcommand, and the sides they share. `run` (also `ingest`) builds ingest, the
//! pipeline and the read side in one process from [`pipeline`]'s job, [`query`]'s SQL side,
//! [`webhooks`] and [`geofences`]; `pipeline` serves the read side of its own dataflow through
//! the same.
//! Nothing here is imported by `kafka`, `http` or `config`.

pub mod broker;
pub(crate) mod emulate;
pub(crate) mod geofences;
pub mod pipeline;
pub mod query;
pub mod run;
pub mod tail;
pub mod webhook_test;
pub mod webhooks;
