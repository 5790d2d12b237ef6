//! The Parquet sink: rows of each closed flush window to Arrow batches ([`position_batch`],
//! [`table_batches`]), written as files on a thread of their own ([`window_writer`],
//! [`parquet_file`]) and committed when the frontier passes ([`parquet_sink`]; design note
//! `parquet_sink.md` beside it). Commits go through [`crate::tables::commit_log`].

pub mod parquet_file;
pub mod parquet_sink;
pub mod position_batch;
pub mod table_batches;
pub mod window_writer;
