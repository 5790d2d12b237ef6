//! Aggregates grouped by partition columns, run by runs of equal keys.
//!
//! `SELECT date, count(*), avg(speed_kmh) FROM positions GROUP BY date` is the typical
//! fleet-wide question, and its group key is the `date` partition column: constant in every file,
//! so constant in every batch a file scan yields. DataFusion's hash aggregate still looks up
//! each row's group and updates per-group state row by row (its `GroupsAccumulator`s); on 9.6M
//! positions that was about two thirds of the query's time, three times what the same
//! aggregate costs without grouping.
//!
//! [`PartitionKeyAggregate`] is a physical optimizer rule. Where a `Partial` or `Single` hash
//! aggregate groups only by expressions over partition columns (traced down to the Parquet
//! scan), it puts [`PartitionKeyAggregateExec`] in its place. That operator splits each batch
//! into runs of equal group keys (one run per batch in practice; a filter that coalesces
//! batches across files may make two) and feeds each run whole to its group's plain
//! [`Accumulator`]s, whose `update_batch` runs the vectorized kernels the ungrouped aggregate
//! uses. At the end of its input it emits, per group, the same columns the aggregate it
//! replaces would have: the accumulators' states for `Partial` (the `Final` aggregate merges
//! them as before), their values for `Single`. Correctness never rests on keys being constant:
//! any input gives the hash aggregate's answer, only more runs make it slower, which is why the
//! rule applies only where keys come from partition columns.
//!
//! Not replaced: grouping sets, `DISTINCT` or ordered aggregates, `FILTER (WHERE ..)`, group
//! limits and dynamic filters (their state lives in the aggregate operator).

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, downcast_primitive_array};
use arrow::compute::cast;
use arrow::compute::kernels::partition::partition;
use arrow::datatypes::SchemaRef;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Accumulator, ColumnarValue};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;

/// The rule; add it after DataFusion's own (it replaces aggregates in their final plan).
#[derive(Debug, Default)]
pub struct PartitionKeyAggregate {
    any_keys: bool,
}

impl PartitionKeyAggregate {
    /// Replaces every aggregate the operator can compute, whatever its keys: for tests, which
    /// compare the operator with the hash aggregate on keys that change within batches.
    pub fn for_any_keys() -> Self {
        PartitionKeyAggregate { any_keys: true }
    }
}

impl PhysicalOptimizerRule for PartitionKeyAggregate {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            if !replaceable(aggregate, self.any_keys) {
                return Ok(Transformed::no(node));
            }
            let exec = PartitionKeyAggregateExec::new(Arc::new(aggregate.clone()));
            Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "partition_key_aggregate"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether `aggregate` is one the operator computes exactly, and worth replacing.
fn replaceable(aggregate: &AggregateExec, any_keys: bool) -> bool {
    let mode_fits = matches!(
        aggregate.mode(),
        AggregateMode::Partial | AggregateMode::Single | AggregateMode::SinglePartitioned
    );
    let group_by = aggregate.group_expr();
    mode_fits
        && group_by.is_single()
        && !group_by.expr().is_empty()
        && aggregate.limit_options().is_none()
        && aggregate.dynamic_expressions_produced().is_empty()
        && aggregate.filter_expr().iter().all(Option::is_none)
        && aggregate
            .aggr_expr()
            .iter()
            .all(|a| !a.is_distinct() && a.order_bys().is_empty())
        && group_by.expr().iter().all(|(expr, _)| {
            any_keys
                || collect_columns(expr)
                    .iter()
                    .all(|column| is_partition_column(aggregate.input(), column.name()))
        })
}

/// Whether the column `name` of `plan`'s output is a partition column of the file scan below,
/// through nodes that keep a file's rows together in a batch or at most join neighbours.
fn is_partition_column(plan: &Arc<dyn ExecutionPlan>, name: &str) -> bool {
    if let Some(scan) = plan.downcast_ref::<DataSourceExec>() {
        return scan
            .data_source()
            .downcast_ref::<FileScanConfig>()
            .is_some_and(|files| {
                files
                    .table_partition_cols()
                    .iter()
                    .any(|f| f.name() == name)
            });
    }
    if let Some(projection) = plan.downcast_ref::<ProjectionExec>() {
        let Some(source) = projection.expr().iter().find(|p| p.alias == name) else {
            return false;
        };
        let columns = collect_columns(&source.expr);
        return columns.len() == 1
            && columns
                .iter()
                .all(|c| is_partition_column(projection.input(), c.name()));
    }
    let passes_rows_through = plan.downcast_ref::<FilterExec>().is_some()
        || plan.downcast_ref::<RepartitionExec>().is_some()
        || plan.downcast_ref::<CooperativeExec>().is_some();
    match plan.children().as_slice() {
        [child] if passes_rows_through => is_partition_column(child, name),
        _ => false,
    }
}

/// Computes what the `AggregateExec` it holds would, by runs of equal group keys.
#[derive(Debug)]
pub struct PartitionKeyAggregateExec {
    aggregate: Arc<AggregateExec>,
    metrics: ExecutionPlanMetricsSet,
}

impl PartitionKeyAggregateExec {
    pub fn new(aggregate: Arc<AggregateExec>) -> Self {
        PartitionKeyAggregateExec {
            aggregate,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl DisplayAs for PartitionKeyAggregateExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let keys: Vec<_> = self
            .aggregate
            .group_expr()
            .expr()
            .iter()
            .map(|(_, name)| name.as_str())
            .collect();
        let aggregates: Vec<_> = self
            .aggregate
            .aggr_expr()
            .iter()
            .map(|a| a.name())
            .collect();
        write!(
            f,
            "PartitionKeyAggregateExec: mode={:?}, gby=[{}], aggr=[{}]",
            self.aggregate.mode(),
            keys.join(", "),
            aggregates.join(", ")
        )
    }
}

impl ExecutionPlan for PartitionKeyAggregateExec {
    fn name(&self) -> &'static str {
        "PartitionKeyAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.aggregate.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.aggregate.input()]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.aggregate.apply_expressions(f)
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let aggregate = Arc::clone(&self.aggregate).with_new_children(children)?;
        let Some(aggregate) = aggregate.downcast_ref::<AggregateExec>() else {
            return internal_err!("an aggregate with new children is no longer an aggregate");
        };
        Ok(Arc::new(PartitionKeyAggregateExec::new(Arc::new(
            aggregate.clone(),
        ))))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.aggregate.input().execute(partition, context)?;
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let mut runs = Runs::new(Arc::clone(&self.aggregate), self.schema());
        let answer = async move {
            let mut input = input;
            while let Some(batch) = input.next().await {
                let batch = batch?;
                let _timer = metrics.elapsed_compute().timer();
                runs.add(&batch)?;
            }
            let _timer = metrics.elapsed_compute().timer();
            let out = runs.finish()?;
            metrics.record_output(out.num_rows());
            Ok(out)
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            futures::stream::once(answer),
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// Rows of a cached literal argument array (a scan's batch size).
const LITERAL_ROWS: usize = 8192;

/// Whether every row of `array` holds the same key: the common case (a partition column), so
/// checked first, without the general comparison `partition` makes.
fn is_constant(array: &ArrayRef) -> bool {
    if array.null_count() > 0 {
        return array.null_count() == array.len();
    }
    downcast_primitive_array!(
        array => {
            let values = array.values();
            let first = values[0];
            // Branch-free within a chunk, so that the comparisons vectorize.
            values
                .chunks(256)
                .all(|chunk| chunk.iter().fold(true, |same, v| same & (*v == first)))
        }
        _ => false
    )
}

/// `value` repeated `rows` times, sliced from an array in `cache` when one holds it.
fn literal(cache: &mut Vec<ArrayRef>, value: ScalarValue, rows: usize) -> Result<ArrayRef> {
    let cached = (cache.iter())
        .find(|a| a.len() >= rows && ScalarValue::try_from_array(a, 0).is_ok_and(|v| v == value));
    if let Some(array) = cached {
        return Ok(array.slice(0, rows));
    }
    let array = value.to_array_of_size(rows.max(LITERAL_ROWS))?;
    cache.push(array.clone());
    Ok(array.slice(0, rows))
}

/// One partition's groups, each with its own accumulators.
struct Runs {
    aggregate: Arc<AggregateExec>,
    schema: SchemaRef,
    /// Each aggregate's argument expressions, listed once rather than per batch.
    arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    index: HashMap<Vec<ScalarValue>, usize>,
    /// The group of the previous run: consecutive batches of one file share it, so most runs
    /// find their group without hashing the key.
    last: Option<usize>,
    keys: Vec<Vec<ScalarValue>>,
    accumulators: Vec<Vec<Box<dyn Accumulator>>>,
    /// Arrays of literal arguments (`count(*)` counts `1`s), built once and sliced per batch.
    literals: Vec<ArrayRef>,
}

impl Runs {
    fn new(aggregate: Arc<AggregateExec>, schema: SchemaRef) -> Self {
        let arguments = (aggregate.aggr_expr().iter())
            .map(|a| a.expressions())
            .collect();
        Runs {
            aggregate,
            schema,
            arguments,
            index: HashMap::new(),
            last: None,
            keys: Vec::new(),
            accumulators: Vec::new(),
            literals: Vec::new(),
        }
    }

    fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        let keys = (self.aggregate.group_expr().expr().iter())
            .map(|(expr, _)| expr.evaluate(batch)?.into_array(rows))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let mut args = Vec::with_capacity(self.arguments.len());
        for exprs in &self.arguments {
            let mut arrays = Vec::with_capacity(exprs.len());
            for expr in exprs {
                arrays.push(match expr.evaluate(batch)? {
                    ColumnarValue::Array(array) => array,
                    ColumnarValue::Scalar(value) => literal(&mut self.literals, value, rows)?,
                });
            }
            args.push(arrays);
        }
        let runs: Vec<Range<usize>> = if keys.iter().all(is_constant) {
            std::iter::once(0..rows).collect()
        } else {
            partition(&keys)?.ranges()
        };
        for run in runs {
            let key = (keys.iter())
                .map(|k| ScalarValue::try_from_array(k, run.start))
                .collect::<Result<Vec<_>>>()?;
            let group = self.group(key)?;
            for (accumulator, args) in self.accumulators[group].iter_mut().zip(&args) {
                let slices: Vec<ArrayRef> = if run.len() == rows {
                    args.clone()
                } else {
                    args.iter().map(|a| a.slice(run.start, run.len())).collect()
                };
                accumulator.update_batch(&slices)?;
            }
        }
        Ok(())
    }

    fn group(&mut self, key: Vec<ScalarValue>) -> Result<usize> {
        if let Some(last) = self.last.filter(|&last| self.keys[last] == key) {
            return Ok(last);
        }
        if let Some(&group) = self.index.get(&key) {
            self.last = Some(group);
            return Ok(group);
        }
        let accumulators = (self.aggregate.aggr_expr().iter())
            .map(|a| a.create_accumulator())
            .collect::<Result<Vec<_>>>()?;
        let group = self.keys.len();
        self.index.insert(key.clone(), group);
        self.keys.push(key);
        self.accumulators.push(accumulators);
        self.last = Some(group);
        Ok(group)
    }

    /// One row per group: the keys, then each aggregate's state (`Partial`) or value.
    fn finish(mut self) -> Result<RecordBatch> {
        if self.keys.is_empty() {
            return Ok(RecordBatch::new_empty(self.schema));
        }
        let partial = matches!(self.aggregate.mode(), AggregateMode::Partial);
        let mut columns: Vec<Vec<ScalarValue>> = vec![Vec::new(); self.schema.fields().len()];
        for (key, accumulators) in self.keys.iter().zip(&mut self.accumulators) {
            let mut row: Vec<ScalarValue> = key.clone();
            for accumulator in accumulators {
                if partial {
                    row.extend(accumulator.state()?);
                } else {
                    row.push(accumulator.evaluate()?);
                }
            }
            if row.len() != columns.len() {
                return internal_err!(
                    "a partition key aggregate made {} columns for a schema of {}",
                    row.len(),
                    columns.len()
                );
            }
            for (column, value) in columns.iter_mut().zip(row) {
                column.push(value);
            }
        }
        let arrays = (columns.into_iter().zip(self.schema.fields()))
            .map(|(values, field)| {
                let array = ScalarValue::iter_to_array(values)?;
                if array.data_type() == field.data_type() {
                    Ok(array)
                } else {
                    Ok(cast(&array, field.data_type())?)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new(self.schema, arrays)?)
    }
}
