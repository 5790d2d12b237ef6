//! `/v1/history/*`: REST routes over the Parquet history ([`api`]), and seeded synthetic
//! history files for tests and benchmarks ([`synthetic`]).

pub mod api;
pub mod synthetic;
