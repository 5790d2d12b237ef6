//! The committed tables on disk: the [`commit_log`] of which files hold which Kafka offsets,
//! reading the tables back without a query engine ([`table_reader`]), and background
//! [`compaction`] ([`sorted_merge`] of sorted files, swapped in by [`partition_swap`]).

pub mod commit_log;
pub mod compaction;
pub mod partition_swap;
pub mod sorted_merge;
pub mod table_reader;
