//! `trips_latest`: each trip's newest version, with the trips a correction deleted left out.
//!
//! `trips` keeps every version the pipeline wrote (a trip can change while late data arrives:
//! `version` counts its revisions, `deleted` marks one a correction merged away or split). Most
//! questions want the trips as they stand now; this view answers them.
//!
//! Plan: the newest version per (company, vehicle, trip_id) by a hash aggregate over the key
//! columns alone, joined back to the rows. (A `row_number()` window ranked versions before; it
//! sorts every row and was the fleet-wide aggregates' largest cost.) Filters on company and
//! vehicle still reach both Parquet scans. The sink writes each version once (exactly-once
//! commits), so the join yields one row per trip.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::{Column, JoinType};
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::Result;
use datafusion::functions_aggregate::expr_fn::max;
use datafusion::logical_expr::{LogicalPlanBuilder, col, not};

/// What identifies a trip.
const KEY: [&str; 3] = ["company", "vehicle", "trip_id"];

/// The view over `trips` (already scoped to the caller).
pub fn view(trips: Arc<dyn TableProvider>) -> Result<Arc<dyn TableProvider>> {
    let columns: Vec<_> = trips
        .schema()
        .fields()
        .iter()
        .map(|f| col(Column::new(Some("trips"), f.name())))
        .collect();
    let source = provider_as_source(trips);
    let newest = LogicalPlanBuilder::scan("versions", source.clone(), None)?
        .aggregate(
            KEY.map(col),
            vec![max(col("version")).alias("newest_version")],
        )?
        .alias("newest")?
        .build()?;
    let on = |table: &str, version: &str| -> Vec<Column> {
        KEY.iter()
            .chain(std::iter::once(&version))
            .map(|name| Column::new(Some(table), *name))
            .collect()
    };
    let plan = LogicalPlanBuilder::scan("trips", source, None)?
        .join(
            newest,
            JoinType::Inner,
            (on("trips", "version"), on("newest", "newest_version")),
            None,
        )?
        .filter(not(col(Column::new(Some("trips"), "deleted"))))?
        .project(columns)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}
