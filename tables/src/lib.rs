//! The committed tables on disk, shared by the dataflow that writes them and the readers: the
//! [`parquet_file`] format every table file is written in, the [`commit_log`] of which files
//! hold which Kafka offsets, reading the tables back without a query engine
//! ([`table_reader`]), background [`compaction`] ([`sorted_merge`] of sorted files, swapped in
//! by [`partition_swap`]), and small lists kept as one JSON file ([`list_file`]). No dataflow
//! and no Kafka client: the pipeline's Parquet sink commits through this crate.

pub mod commit_log;
pub mod compaction;
pub mod list_file;
pub mod parquet_file;
pub mod partition_swap;
pub mod retention;
pub mod rollup_consolidation;
pub mod sorted_merge;
pub mod table_reader;
