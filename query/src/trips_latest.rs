//! `trips_latest`: each trip's newest version, with the trips a correction deleted left out.
//!
//! `trips` keeps every version the pipeline wrote (a trip can change while late data arrives:
//! `version` counts its revisions, `deleted` marks one a correction merged away or split). Most
//! questions want the trips as they stand now; this view answers them. Versions are ranked per
//! (company, vehicle, trip_id), so filters on company and vehicle still reach the Parquet scan.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::Result;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{ExprFunctionExt, LogicalPlanBuilder, col, lit, not};

/// The view over `trips` (already scoped to the caller).
pub fn view(trips: Arc<dyn TableProvider>) -> Result<Arc<dyn TableProvider>> {
    let columns: Vec<_> = trips
        .schema()
        .fields()
        .iter()
        .map(|f| col(f.name()))
        .collect();
    let rank = row_number()
        .partition_by(vec![col("company"), col("vehicle"), col("trip_id")])
        .order_by(vec![col("version").sort(false, true)])
        .build()?
        .alias("newest_first");
    let plan = LogicalPlanBuilder::scan("trips", provider_as_source(trips), None)?
        .window(vec![rank])?
        .filter(col("newest_first").eq(lit(1u64)).and(not(col("deleted"))))?
        .project(columns)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}
