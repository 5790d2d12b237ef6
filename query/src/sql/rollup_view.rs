//! The rollup views (`vehicle_hourly`, `vehicle_daily`, `company_hourly`, `company_daily`):
//! each key's current value, from its table of changes (`*_changes`,
//! [`fleetflow_model::Rollup`]).
//!
//! Plan: the changes grouped by key (and `date`, which the period decides, so that filters on
//! it still prune partitions), summed, maximum speed and last fix their maximum, first fix
//! their minimum; keys whose trips and fixes net to none left out; then the units users read
//! (metres, seconds, km/h). Filters on company, vehicle, period or date pass the aggregate and
//! reach the Parquet scan; the tenant filter is inside the changes table already.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::Result;
use datafusion::functions_aggregate::expr_fn::{max, min, sum};
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, cast, col, lit, when};
use fleetflow_model::{PARTITION_COLUMN, ROLLUP_SUMS, Rollup};

/// The view of `rollup` over its changes table (already scoped to the caller).
pub fn view(rollup: Rollup, changes: Arc<dyn TableProvider>) -> Result<Arc<dyn TableProvider>> {
    let table = rollup.table().name();
    let mut group: Vec<Expr> = rollup.key_columns().into_iter().map(col).collect();
    group.push(col(PARTITION_COLUMN));
    let mut aggregates: Vec<Expr> = ROLLUP_SUMS.iter().map(|c| sum(col(*c)).alias(*c)).collect();
    aggregates.extend([
        max(col("max_speed_dkmh")).alias("max_speed_dkmh"),
        min(col("first_fix")).alias("first_fix"),
        max(col("last_fix")).alias("last_fix"),
    ]);
    let float = |c: &str| cast(col(c), DataType::Float64);
    let mut columns: Vec<Expr> = rollup.key_columns().into_iter().map(col).collect();
    columns.extend([
        col("trips"),
        (float("distance_mm") / lit(1000.0)).alias("distance_m"),
        (float("moving_ms") / lit(1000.0)).alias("driving_s"),
        (float("idle_ms") / lit(1000.0)).alias("idle_s"),
        col("fixes"),
        (float("max_speed_dkmh") / lit(10.0)).alias("max_speed_kmh"),
        when(
            col("fixes").gt(lit(0i64)),
            float("speed_sum_dkmh") / float("fixes") / lit(10.0),
        )
        .otherwise(lit(datafusion::scalar::ScalarValue::Float64(None)))?
        .alias("mean_speed_kmh"),
        col("first_fix"),
        col("last_fix"),
        col(PARTITION_COLUMN),
    ]);
    let scan = LogicalPlanBuilder::scan(table, provider_as_source(changes), None)?;
    let plan = scan
        .aggregate(group, aggregates)?
        .filter(
            col("trips")
                .not_eq(lit(0i64))
                .or(col("fixes").not_eq(lit(0i64))),
        )?
        .project(columns)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}
