//! The Postgres wire protocol over the same SQL engine: the [`server`] (pgwire), logins by
//! company token ([`auth`]), the `pg_catalog` clients probe ([`catalog`]) and Arrow to Postgres
//! [`types`].

pub mod auth;
pub mod catalog;
pub mod server;
pub mod types;
