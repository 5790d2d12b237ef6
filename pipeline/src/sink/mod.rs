//! The Parquet sink: rows of each closed flush window to Arrow batches ([`position_batch`],
//! [`table_batches`]), written as files on a thread of their own ([`window_writer`], in
//! `fleetflow_tables::parquet_file`'s format) and committed when the frontier passes
//! ([`parquet_sink`]; design note `parquet_sink.md` beside it). Commits go through
//! `fleetflow_tables::commit_log`.

pub mod parquet_sink;
pub mod position_batch;
pub mod table_batches;
pub mod window_writer;
