//! Merging sorted streams of record batches into one sorted stream: what compaction does with
//! its input files, which every writer sorted by the table's sort columns.
//!
//! The sort columns become arrow's byte-comparable rows, and a k-way merge picks the order:
//! a heap holds each input's next row, and the input at the top keeps supplying rows for as
//! long as they do not pass the next input's head, so a run of one vehicle costs one comparison
//! per row. Sorting the concatenation instead (`lexsort`) compared every row O(log n) times
//! through dynamic comparators and was most of compaction's time.
//!
//! The merge streams: it holds one batch per input and one output batch at a time, so a merge's
//! memory does not grow with its rows. (It held every input and the output whole until session
//! 32: ~400 MB for a 2M-row `positions` merge, during a catch-up.)

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::{concat_batches, interleave_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::row::{OwnedRow, RowConverter, Rows, SortField};

/// Merges `inputs`, each sorted ascending by `sort_columns` (nulls first), into one batch with
/// `schema`, sorted the same way. Rows that compare equal keep their inputs' order.
pub fn merge_sorted(
    schema: &SchemaRef,
    inputs: &[RecordBatch],
    sort_columns: &[&str],
) -> Result<RecordBatch, ArrowError> {
    let streams = inputs.iter().map(|batch| [Ok(batch.clone())]);
    let merged = SortedMerge::new(schema, streams, sort_columns, usize::MAX)?
        .collect::<Result<Vec<_>, _>>()?;
    concat_batches(schema, &merged)
}

/// One input of a [`SortedMerge`]: its current batch, that batch's sort rows, the next row.
#[derive(Debug)]
struct Input<I> {
    batches: I,
    batch: RecordBatch,
    rows: Rows,
    at: usize,
    /// The batch's index in [`SortedMerge::held`].
    slot: usize,
}

/// A k-way merge of sorted batch streams, yielding batches of up to `batch_rows` rows with the
/// merge's `schema`, sorted by its sort columns; rows that compare equal come out in input
/// order (and within an input, in its order).
#[derive(Debug)]
pub struct SortedMerge<I> {
    schema: SchemaRef,
    sort_columns: Vec<String>,
    converter: RowConverter,
    inputs: Vec<Option<Input<I>>>,
    /// The next row of each input not being drained, smallest first (ties: lower input).
    heads: BinaryHeap<Reverse<(OwnedRow, usize)>>,
    /// The batches the output being built takes rows from.
    held: Vec<RecordBatch>,
    batch_rows: usize,
    failed: bool,
}

impl<I> SortedMerge<I>
where
    I: Iterator<Item = Result<RecordBatch, ArrowError>>,
{
    /// The merge of `inputs` (each a sorted stream of batches with `schema`'s sort columns).
    pub fn new(
        schema: &SchemaRef,
        inputs: impl IntoIterator<Item = impl IntoIterator<IntoIter = I>>,
        sort_columns: &[&str],
        batch_rows: usize,
    ) -> Result<Self, ArrowError> {
        let fields = sort_columns
            .iter()
            .map(|name| {
                Ok(SortField::new(
                    schema.field_with_name(name)?.data_type().clone(),
                ))
            })
            .collect::<Result<Vec<_>, ArrowError>>()?;
        let mut merge = SortedMerge {
            schema: schema.clone(),
            sort_columns: sort_columns.iter().map(|c| (*c).to_owned()).collect(),
            converter: RowConverter::new(fields)?,
            inputs: Vec::new(),
            heads: BinaryHeap::new(),
            held: Vec::new(),
            batch_rows: batch_rows.max(1),
            failed: false,
        };
        for batches in inputs {
            let index = merge.inputs.len();
            let input = merge.next_batch(batches.into_iter())?;
            if let Some(input) = &input {
                merge
                    .heads
                    .push(Reverse((input.rows.row(0).owned(), index)));
            }
            merge.inputs.push(input);
        }
        Ok(merge)
    }

    /// The input's next non-empty batch, held for the output being built; `None` at its end.
    fn next_batch(&mut self, mut batches: I) -> Result<Option<Input<I>>, ArrowError> {
        for batch in batches.by_ref() {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            let columns = self
                .sort_columns
                .iter()
                .map(|name| {
                    batch.column_by_name(name).cloned().ok_or_else(|| {
                        ArrowError::SchemaError(format!("an input lacks the sort column {name}"))
                    })
                })
                .collect::<Result<Vec<ArrayRef>, ArrowError>>()?;
            let rows = self.converter.convert_columns(&columns)?;
            self.held.push(batch.clone());
            return Ok(Some(Input {
                batches,
                batch,
                rows,
                at: 0,
                slot: self.held.len() - 1,
            }));
        }
        Ok(None)
    }

    /// The next output batch's rows, as (held batch, row) pairs; empty when every input is done.
    fn next_order(&mut self) -> Result<Vec<(usize, usize)>, ArrowError> {
        let mut order = Vec::new();
        while order.len() < self.batch_rows {
            let Some(Reverse((_, index))) = self.heads.pop() else {
                break;
            };
            let mut input = self.inputs[index].take().expect("a head's input is live");
            // The input keeps the lead while its rows stay at or below every other head.
            loop {
                order.push((input.slot, input.at));
                input.at += 1;
                if input.at == input.rows.num_rows() {
                    match self.next_batch(input.batches)? {
                        Some(next) => input = next,
                        None => break,
                    }
                }
                let next = input.rows.row(input.at);
                let passes = self.heads.peek().is_some_and(|Reverse((row, other))| {
                    let row = row.row();
                    next > row || (next == row && index > *other)
                });
                if passes || order.len() == self.batch_rows {
                    self.heads.push(Reverse((next.owned(), index)));
                    self.inputs[index] = Some(input);
                    break;
                }
            }
        }
        Ok(order)
    }
}

impl<I> Iterator for SortedMerge<I>
where
    I: Iterator<Item = Result<RecordBatch, ArrowError>>,
{
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let built = self.next_order().and_then(|order| {
            if order.is_empty() {
                return Ok(None);
            }
            let held: Vec<&RecordBatch> = self.held.iter().collect();
            let batch = interleave_record_batch(&held, &order)?;
            Ok(Some(RecordBatch::try_new(
                self.schema.clone(),
                batch.columns().to_vec(),
            )?))
        });
        // Only the inputs' current batches are still needed.
        self.held.clear();
        for input in self.inputs.iter_mut().flatten() {
            self.held.push(input.batch.clone());
            input.slot = self.held.len() - 1;
        }
        match built {
            Ok(batch) => batch.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
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

    /// A seeded LCG: `next(n)` is in `0..n`.
    fn lcg(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut state = seed;
        move |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        }
    }

    /// Up to `inputs` sorted inputs of up to `rows` rows each: vehicles in runs (1 in
    /// `vehicles` null), times below `times` (equal keys within and across inputs).
    fn random_inputs(
        next: &mut impl FnMut(u64) -> u64,
        inputs: u64,
        rows: u64,
        vehicles: u64,
        times: u64,
    ) -> Vec<RecordBatch> {
        (0..1 + next(inputs))
            .map(|input| {
                let mut keys: Vec<_> = (0..next(rows))
                    .map(|_| {
                        let vehicle = match next(vehicles) {
                            0 => None,
                            v => Some(format!("veh-{v}")),
                        };
                        (vehicle, next(times) as i64)
                    })
                    .collect();
                sorted(&mut keys, (input * 1000) as i64)
            })
            .collect()
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
        // Vehicles with runs, nulls, equal keys across inputs, empty inputs.
        let mut next = lcg(0x9e37_79b9_7f4a_7c15);
        for case in 0..50 {
            let inputs = random_inputs(&mut next, 9, 60, 12, 30);
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

    /// Inputs cut into batches of any size (empty ones too), merged into small output batches,
    /// give exactly the rows, in exactly the order, of merging them whole.
    #[test]
    fn streaming_in_batches_merges_like_whole_inputs() {
        let mut next = lcg(0x2545_f491_4f6c_dd1d);
        for case in 0..100 {
            let inputs = random_inputs(&mut next, 6, 80, 8, 20);
            let whole = merge_sorted(&schema(), &inputs, &["vehicle", "time"]).unwrap();
            let streams: Vec<Vec<Result<RecordBatch, ArrowError>>> = inputs
                .iter()
                .map(|batch| {
                    let mut cut = Vec::new();
                    let mut at = 0;
                    while at < batch.num_rows() {
                        let len = (next(12) as usize).min(batch.num_rows() - at);
                        cut.push(Ok(batch.slice(at, len)));
                        at += len;
                    }
                    cut
                })
                .collect();
            let out_rows = 1 + next(9) as usize;
            let merged: Vec<RecordBatch> =
                SortedMerge::new(&schema(), streams, &["vehicle", "time"], out_rows)
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
            assert!(
                merged
                    .iter()
                    .all(|b| b.num_rows() <= out_rows && b.num_rows() > 0),
                "case {case}: batch sizes"
            );
            let merged = concat_batches(&schema(), &merged).unwrap();
            assert_eq!(merged, whole, "case {case}");
        }
    }

    #[test]
    fn no_inputs_is_an_empty_batch() {
        let merged = merge_sorted(&schema(), &[], &["vehicle", "time"]).unwrap();
        assert_eq!(merged.num_rows(), 0);
    }
}
