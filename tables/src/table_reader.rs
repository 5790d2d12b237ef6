//! Reading the committed tables back without a query engine: for tests, benchmarks and the
//! crash checks (the SQL endpoint reads them through DataFusion).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, TimestampMillisecondType};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use fleetflow_model::Table;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::errors::ParquetError;

/// The committed files of `table` (every `date=*/part-*.parquet`), sorted by path.
pub fn table_files(data_dir: &Path, table: Table) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let dir = data_dir.join(table.name());
    let Ok(partitions) = std::fs::read_dir(&dir) else {
        return Ok(files);
    };
    for partition in partitions {
        let partition = partition?.path();
        if !partition.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&partition)? {
            let path = file?.path();
            if path.extension().is_some_and(|e| e == "parquet") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Every row of `table`.
///
/// Like any glob reader it lists, then opens: a compaction committed in between replaces files
/// it listed (each partition directory switches whole, so a listing is never half old, half
/// new), and opening one then fails with `NotFound`. It lists again then.
pub fn read_table(data_dir: &Path, table: Table) -> Result<Vec<RecordBatch>, ParquetError> {
    const ATTEMPTS: usize = 10;
    for attempt in 1.. {
        match read_listed(data_dir, table) {
            Err(ParquetError::External(e))
                if attempt < ATTEMPTS
                    && e.downcast_ref::<std::io::Error>()
                        .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound) => {}
            result => return result,
        }
    }
    unreachable!("the last attempt returns")
}

fn read_listed(data_dir: &Path, table: Table) -> Result<Vec<RecordBatch>, ParquetError> {
    let mut batches = Vec::new();
    for path in table_files(data_dir, table)? {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path)?)?.build()?;
        for batch in reader {
            batches.push(batch?);
        }
    }
    Ok(batches)
}

/// (vehicle, fix time ms) of every `positions` row, sorted (duplicates kept, so a test can see
/// them).
pub fn position_keys(data_dir: &Path) -> Result<Vec<(String, i64)>, ParquetError> {
    let mut keys = Vec::new();
    for batch in read_table(data_dir, Table::Positions)? {
        let vehicle = batch
            .column_by_name("vehicle")
            .expect("schema")
            .as_string::<i32>();
        let time = batch
            .column_by_name("time")
            .expect("schema")
            .as_primitive::<TimestampMillisecondType>();
        for i in 0..batch.num_rows() {
            keys.push((vehicle.value(i).to_owned(), time.value(i)));
        }
    }
    keys.sort();
    Ok(keys)
}

/// The current trips: per `trip_id` the row with the highest version, unless it is deleted;
/// each row rendered as `column=value` text without the version.
pub fn current_trips(data_dir: &Path) -> Result<BTreeMap<String, String>, ParquetError> {
    let mut latest: BTreeMap<String, (i64, bool, String)> = BTreeMap::new();
    let options = FormatOptions::default();
    for batch in read_table(data_dir, Table::Trips)? {
        let schema = batch.schema();
        let id = batch
            .column_by_name("trip_id")
            .expect("schema")
            .as_string::<i32>();
        let version = batch
            .column_by_name("version")
            .expect("schema")
            .as_primitive::<Int64Type>();
        let deleted = batch
            .column_by_name("deleted")
            .expect("schema")
            .as_boolean();
        // Timestamps as their epoch-ms numbers: rendering zone names needs chrono-tz.
        let columns = batch
            .columns()
            .iter()
            .map(|c| match c.data_type() {
                DataType::Timestamp(..) => cast(c, &DataType::Int64),
                _ => Ok(c.clone()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let formatters = columns
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let v = version.value(row);
            let slot = latest.get(id.value(row));
            if slot.is_some_and(|(have, _, _)| *have >= v) {
                continue;
            }
            let text = schema
                .fields()
                .iter()
                .zip(&formatters)
                .filter(|(f, _)| f.name() != "version")
                .map(|(f, fmt)| format!("{}={}", f.name(), fmt.value(row)))
                .collect::<Vec<_>>()
                .join(" ");
            latest.insert(
                id.value(row).to_owned(),
                (v, deleted.value(row) && !deleted.is_null(row), text),
            );
        }
    }
    Ok(latest
        .into_iter()
        .filter(|(_, (_, deleted, _))| !deleted)
        .map(|(id, (_, _, text))| (id, text))
        .collect())
}
