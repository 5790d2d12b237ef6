//! SQL: the DataFusion [`engine`] over the Parquet history and the live tables
//! ([`live_tables`], the [`derived_views`] (`trips_latest`, the rollups), tables the process [`supplied`]), each company's plan scoped to its rows
//! ([`tenant_scope`]) and bounded in rows, time and memory ([`bounds`]); `POST /v1/sql`
//! ([`api`], answering in the [`format`]s JSON, CSV, Arrow IPC, Parquet); `$1` placeholder
//! values ([`params`]); errors classified for clients ([`error`]); what the engine reports in
//! `/status` ([`status`]). The physical-plan rules fleetflow adds to DataFusion are in [`plan`].

pub mod api;
pub mod bounds;
pub mod derived_views;
pub mod engine;
pub mod error;
pub mod format;
pub mod live_tables;
pub mod params;
pub mod plan;
pub mod retention_scope;
pub mod rollup_view;
pub mod status;
pub mod supplied;
pub mod tenant_scope;
