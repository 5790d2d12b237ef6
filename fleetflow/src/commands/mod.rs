//! One module per subcommand. `run` (also `ingest`) builds ingest, the pipeline and the read
//! side in one process from [`pipeline`]'s job and [`query`]'s SQL side; `pipeline` serves the
//! read side of its own dataflow through [`query`]. Nothing here is imported by `kafka`, `http`
//! or `config`.

pub mod broker;
pub(crate) mod emulate;
pub mod pipeline;
pub mod query;
pub mod run;
pub mod tail;
