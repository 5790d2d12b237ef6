//! Tenant isolation, enforced in the plan.
//!
//! A company's SQL session never holds the real tables. Each name (`positions`, `trips`,
//! `live_vehicles`, ...) is bound to a view whose logical plan is `Filter(company = '<own>',
//! TableScan(real table))`, built here from the provider itself rather than from SQL text. The
//! planner inlines that plan wherever the name appears (a join, a subquery, a CTE, another view
//! such as `trips_latest`), so every row the query can reach has passed the filter, and the
//! optimizer still pushes the filter and the query's own predicates into the Parquet scan
//! (partition, row-group and page pruning). The real tables are not in the catalog at all:
//! no name resolves to them. The admin's session binds the names to the tables directly.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::Result;
use datafusion::logical_expr::{LogicalPlanBuilder, col, lit};
use fleetflow_model::Principal;

/// The column every table carries and isolation filters on.
pub const COMPANY_COLUMN: &str = "company";

/// `table` as `principal` may see it.
pub fn scoped(
    name: &str,
    table: Arc<dyn TableProvider>,
    principal: &Principal,
) -> Result<Arc<dyn TableProvider>> {
    match principal {
        Principal::Admin => Ok(table),
        Principal::Company(company) => {
            let plan = LogicalPlanBuilder::scan(name, provider_as_source(table), None)?
                .filter(col(COMPANY_COLUMN).eq(lit(company.as_ref())))?
                .build()?;
            Ok(Arc::new(ViewTable::new(plan, None)))
        }
    }
}
