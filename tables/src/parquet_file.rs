//! Writing one Parquet file the way every fleetflow table file is written: zstd, page-level
//! statistics (so the column and offset indexes are written: page pruning), row groups sized for
//! pruning, the sort order recorded in the metadata, fsync'd before anyone may rename it.

use std::fs::File;
use std::path::Path;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field};
use arrow::error::ArrowError;
use fleetflow_model::Table;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

/// Rows per row group: domain.md's 50k-150k; compaction produces groups this large, a flush
/// smaller ones.
pub const ROW_GROUP_ROWS: usize = 131_072;

/// Which kind of file: it decides how hard zstd works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A flush window's file: written on the dataflow's critical path and usually rewritten by
    /// compaction soon after, so zstd level 1 (fastest).
    Flush,
    /// Compaction's output, kept for good: level 3 (libzstd's default, a better ratio at
    /// ~300 MB/s per core), off the critical path.
    Compacted,
}

impl FileKind {
    fn zstd_level(self) -> i32 {
        match self {
            FileKind::Flush => 1,
            FileKind::Compacted => 3,
        }
    }
}

/// Identifiers with many distinct values: a dictionary would hash every value only to overflow.
/// Files are sorted by vehicle, so consecutive values share their prefix.
const DISTINCT_TEXT: [&str; 3] = ["vehicle", "trip_id", "detail"];

/// How a column is encoded: whether it has a dictionary, and its encoding otherwise (`None`:
/// parquet's default). Chosen by what the column holds (`benches/RESULTS.md`, session 18):
/// a dictionary only where values repeat across vehicles (company, GPS status, source, kinds,
/// reasons, flags, Kafka partition); prefix deltas for identifiers; deltas for times and
/// offsets (ascending within a vehicle); byte-stream split for floats (zstd finds the shared
/// sign, exponent and high mantissa bytes of nearby coordinates). Against a dictionary for
/// every column, `positions` files are 30% smaller and encode 35-45% faster in isolation; the
/// pipeline's writer threads, which also build the columns, used as much CPU as before.
fn column_encoding(field: &Field) -> (bool, Option<Encoding>) {
    match field.data_type() {
        DataType::Utf8 if DISTINCT_TEXT.contains(&field.name().as_str()) => {
            (false, Some(Encoding::DELTA_BYTE_ARRAY))
        }
        DataType::Int64 | DataType::Timestamp(_, _) => (false, Some(Encoding::DELTA_BINARY_PACKED)),
        DataType::Float32 | DataType::Float64 => (false, Some(Encoding::BYTE_STREAM_SPLIT)),
        DataType::Boolean => (false, None),
        _ => (true, None),
    }
}

pub fn writer_properties(table: Table, kind: FileKind) -> Result<WriterProperties, ParquetError> {
    let schema = table.schema();
    let sorting = table
        .sort_columns()
        .iter()
        .map(|name| {
            schema.index_of(name).map(|i| SortingColumn {
                column_idx: i as i32,
                descending: false,
                nulls_first: true,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ParquetError::General(e.to_string()))?;
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(kind.zstd_level())?));
    for field in schema.fields() {
        let column = ColumnPath::from(field.name().as_str());
        let (dictionary, encoding) = column_encoding(field);
        builder = builder.set_column_dictionary_enabled(column.clone(), dictionary);
        if let Some(encoding) = encoding {
            builder = builder.set_column_encoding(column, encoding);
        }
    }
    Ok(builder
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_sorting_columns(Some(sorting))
        .set_created_by(format!("fleetflow {}", env!("CARGO_PKG_VERSION")))
        .build())
}

/// Rows per batch handed to the writer when a caller builds the batches as it goes (the sink's
/// `positions`): a quarter of a row group, a few megabytes of columns. A multiple of
/// [`PAGE_ROWS`], so pages are cut at the same rows as from one large batch.
pub const WRITE_BATCH_ROWS: usize = ROW_GROUP_ROWS / 4;

/// Most rows in a data page. Parquet writes a column whose nulls are all the same (none, or
/// all null) in runs of this many rows starting afresh at each batch, and closes a page only
/// between runs: with its default (20,000), which does not divide [`WRITE_BATCH_ROWS`], a page
/// could grow to twice that across two batches.
const PAGE_ROWS: usize = ROW_GROUP_ROWS / 8;

/// What [`write_file`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrittenFile {
    pub bytes: u64,
    pub rows: u64,
}

/// Writes `batches` (already sorted; each built as the writer reaches it) to `path` and syncs
/// it. The first error stops the write and leaves the partial file where it is: callers write
/// under staging, which recovery clears.
pub fn write_file(
    path: &Path,
    table: Table,
    kind: FileKind,
    batches: impl IntoIterator<Item = Result<RecordBatch, ArrowError>>,
) -> Result<WrittenFile, ParquetError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = File::create(path)?;
    let mut writer = ArrowWriter::try_new(
        file.try_clone()?,
        table.schema(),
        Some(writer_properties(table, kind)?),
    )?;
    let mut rows = 0;
    for batch in batches {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        writer.write(&batch)?;
    }
    writer.close()?;
    file.sync_all()?;
    Ok(WrittenFile {
        bytes: file.metadata()?.len(),
        rows,
    })
}
