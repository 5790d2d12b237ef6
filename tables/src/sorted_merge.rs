//! Merging record batches that are each already sorted into one sorted batch: what compaction
//! does with its input files, which every writer sorted by the table's sort columns.
//!
//! The sort columns become arrow's byte-comparable rows, and a k-way merge picks the order:
//! a heap holds each input's next row, and the input at the top keeps supplying rows for as
//! long as they do not pass the next input's head, so a run of one vehicle costs one comparison
//! per row. Sorting the concatenation instead (`lexsort`) compared every row O(log n) times
//! through dynamic comparators and was most of compaction's time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::interleave_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::row::{RowConverter, Rows, SortField};

/// Merges `inputs`, each sorted ascending by `sort_columns` (nulls first), into one batch with
/// `schema`, sorted the same way. Rows that compare equal keep their inputs' order.
pub fn merge_sorted(
    schema: &SchemaRef,
    inputs: &[RecordBatch],
    sort_columns: &[&str],
) -> Result<RecordBatch, ArrowError> {
    if inputs.is_empty() {
        return Ok(RecordBatch::new_empty(schema.clone()));
    }
    let fields = sort_columns
        .iter()
        .map(|name| {
            Ok(SortField::new(
                schema.field_with_name(name)?.data_type().clone(),
            ))
        })
        .collect::<Result<Vec<_>, ArrowError>>()?;
    let converter = RowConverter::new(fields)?;
    let rows = inputs
        .iter()
        .map(|batch| {
            let columns = sort_columns
                .iter()
                .map(|name| {
                    batch.column_by_name(name).cloned().ok_or_else(|| {
                        ArrowError::SchemaError(format!("an input lacks the sort column {name}"))
                    })
                })
                .collect::<Result<Vec<ArrayRef>, ArrowError>>()?;
            converter.convert_columns(&columns)
        })
        .collect::<Result<Vec<Rows>, ArrowError>>()?;
    let order = merge_order(&rows);
    let batches: Vec<&RecordBatch> = inputs.iter().collect();
    interleave_record_batch(&batches, &order)
}

/// The merged order of sorted `inputs`, as (input, row) pairs.
fn merge_order(inputs: &[Rows]) -> Vec<(usize, usize)> {
    let total = inputs.iter().map(Rows::num_rows).sum();
    let mut order = Vec::with_capacity(total);
    // The input index breaks ties, so equal rows come out in input order.
    let mut heads: BinaryHeap<_> = inputs
        .iter()
        .enumerate()
        .filter(|(_, rows)| rows.num_rows() > 0)
        .map(|(input, rows)| Reverse((rows.row(0), input, 0)))
        .collect();
    while let Some(Reverse((_, input, mut at))) = heads.pop() {
        let rows = &inputs[input];
        // The input keeps the lead while its rows stay at or below every other head.
        let bound = heads.peek().map(|Reverse((row, other, _))| (*row, *other));
        loop {
            order.push((input, at));
            at += 1;
            if at == rows.num_rows() {
                break;
            }
            if let Some((row, other)) = bound {
                let next = rows.row(at);
                if next > row || (next == row && input > other) {
                    heads.push(Reverse((next, input, at)));
                    break;
                }
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, Int64Array, StringArray};
    use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("vehicle", DataType::Utf8, true),
            Field::new("time", DataType::Int64, false),
            Field::new("n", DataType::Int64, false),
        ]))
    }

    /// A batch of (vehicle, time) rows sorted like a table file; `n` numbers the rows.
    fn sorted(rows: &mut [(Option<String>, i64)], first_n: i64) -> RecordBatch {
        rows.sort();
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.0.as_deref()))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(Int64Array::from_iter_values(
                    (0..rows.len() as i64).map(|i| first_n + i),
                )),
            ],
        )
        .unwrap()
    }

    fn keys(batch: &RecordBatch) -> Vec<(Option<String>, i64)> {
        let v = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let t = batch
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        (0..batch.num_rows())
            .map(|i| (v.is_valid(i).then(|| v.value(i).to_owned()), t.value(i)))
            .collect()
    }

    #[test]
    fn merges_like_sorting_the_concatenation() {
        // Seeded LCG: vehicles with runs, nulls, equal keys across inputs, empty inputs.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        for case in 0..50 {
            let inputs: Vec<RecordBatch> = (0..1 + next(9))
                .map(|input| {
                    let mut rows: Vec<_> = (0..next(60))
                        .map(|_| {
                            let vehicle = match next(12) {
                                0 => None,
                                v => Some(format!("veh-{v}")),
                            };
                            (vehicle, next(30) as i64)
                        })
                        .collect();
                    sorted(&mut rows, (input * 1000) as i64)
                })
                .collect();
            let merged = merge_sorted(&schema(), &inputs, &["vehicle", "time"]).unwrap();
            let all = concat_batches(&schema(), &inputs).unwrap();
            let sort = ["vehicle", "time"].map(|name| SortColumn {
                values: all.column_by_name(name).unwrap().clone(),
                options: None,
            });
            let expected =
                take_record_batch(&all, &lexsort_to_indices(&sort, None).unwrap()).unwrap();
            assert_eq!(keys(&merged), keys(&expected), "case {case}");
            // Every row exactly once, equal keys in input order.
            let n = merged
                .column(2)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            let mut seen: Vec<i64> = n.values().to_vec();
            let keyed = keys(&merged);
            for w in 1..keyed.len() {
                if keyed[w] == keyed[w - 1] {
                    assert!(
                        n.value(w - 1) < n.value(w),
                        "case {case}: ties out of order"
                    );
                }
            }
            seen.sort();
            let mut want: Vec<i64> = all
                .column(2)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec();
            want.sort();
            assert_eq!(seen, want, "case {case}");
        }
    }

    #[test]
    fn no_inputs_is_an_empty_batch() {
        let merged = merge_sorted(&schema(), &[], &["vehicle", "time"]).unwrap();
        assert_eq!(merged.num_rows(), 0);
    }
}
