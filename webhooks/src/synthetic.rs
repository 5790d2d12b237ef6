//! Events committed into the `events` table as the pipeline's sink commits them (a staged
//! Parquet file, then a window commit): for tests and benchmarks of delivery without a pipeline.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use fleetflow_model::{Table, partition_dir};
use fleetflow_tables::commit_log::{Commit, CommitWriter, DataFile};
use fleetflow_tables::parquet_file::{FileKind, write_file};

/// One event row: company, vehicle, kind, event time (ms). Its trip id is `vehicle:time` and
/// its value 1.5, except for `offline` and `online`, which have neither (as the pipeline's).
pub type EventRow<'a> = (&'a str, &'a str, &'a str, i64);

/// Commits one `events` file holding `rows` (in one date partition, that of the first row).
pub fn commit_events(writer: &CommitWriter, rows: &[EventRow<'_>]) -> Result<Commit, String> {
    let data_dir = writer.log().data_dir().to_owned();
    let text = |f: &dyn Fn(&EventRow<'_>) -> String| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let times = || -> ArrayRef {
        Arc::new(
            TimestampMillisecondArray::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())
                .with_timezone("UTC"),
        )
    };
    let silence = |r: &EventRow<'_>| matches!(r.2, "offline" | "online");
    let floats = || -> ArrayRef { Arc::new(Float64Array::from(vec![Some(1.5); rows.len()])) };
    let values = || -> ArrayRef {
        Arc::new(Float64Array::from_iter(
            rows.iter().map(|r| (!silence(r)).then_some(1.5)),
        ))
    };
    let batch = RecordBatch::try_new(
        Table::Events.schema(),
        vec![
            text(&|r| r.0.to_owned()),
            text(&|r| r.1.to_owned()),
            times(),
            text(&|r| r.2.to_owned()),
            floats(),
            floats(),
            Arc::new(StringArray::from_iter(
                rows.iter()
                    .map(|r| (!silence(r)).then(|| format!("{}:{}", r.1, r.3))),
            )),
            values(),
            times(),
            Arc::new(StringArray::from(vec![None::<&str>; rows.len()])),
            Arc::new(arrow::array::BooleanArray::from(vec![
                None::<bool>;
                rows.len()
            ])),
        ],
    )
    .map_err(|e| e.to_string())?;
    let seq = writer.last().seq + 1;
    let day = rows.first().map_or(0, |r| r.3);
    let path = format!("events/{}/part-{seq}.parquet", partition_dir(day));
    let staged = format!("_fleetflow/staging/{path}");
    let written = write_file(
        &data_dir.join(&staged),
        Table::Events,
        FileKind::Flush,
        [Ok(batch)],
    )
    .map_err(|e| e.to_string())?;
    let file = DataFile {
        table: Table::Events.name().to_owned(),
        path,
        staged,
        rows: written.rows,
        bytes: written.bytes,
    };
    writer
        .commit_window(seq, Default::default(), Default::default(), vec![file])
        .map_err(|e| e.to_string())
}
