//! Running the fleet: one task per vehicle ([`runner`]) getting each request delivered
//! ([`delivery`]: rate limit, in-flight cap, retries) over one pooled HTTP client
//! ([`http_client`]), with live counters ([`stats`]) and the reports printed from them
//! ([`report`]).

pub(crate) mod delivery;
pub mod http_client;
pub mod rate_limit;
pub mod report;
pub(crate) mod runner;
pub(crate) mod stats;

#[cfg(test)]
mod runner_tests;
#[cfg(test)]
mod test_server;
