//! Retention in the plan: a table with a published cutoff (`fleetflow_tables::retention`) is
//! read as `Filter(date >= cutoff, Scan(table))`. The filter is on the partition column, so the
//! listing prunes the expired partitions before opening any file: a query never reads a
//! partition retention may be removing, and removal waits until every query that could have
//! listed it before the cutoff was published has finished.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::Result;
use datafusion::logical_expr::{LogicalPlanBuilder, col, lit};
use datafusion::scalar::ScalarValue;
use fleetflow_model::PARTITION_COLUMN;

/// `table` without the partitions before `first_day` (days since 1970), if given.
pub fn retained(
    name: &str,
    table: Arc<dyn TableProvider>,
    first_day: Option<i64>,
) -> Result<Arc<dyn TableProvider>> {
    let Some(day) = first_day else {
        return Ok(table);
    };
    let day = i32::try_from(day).unwrap_or(i32::MAX);
    let plan = LogicalPlanBuilder::scan(name, provider_as_source(table), None)?
        .filter(col(PARTITION_COLUMN).gt_eq(lit(ScalarValue::Date32(Some(day)))))?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}
