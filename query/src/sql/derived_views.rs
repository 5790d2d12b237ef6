//! The views a history table has over it: `trips_latest` and `geofence_visits_latest` (each
//! trip's or visit's newest version, those a correction deleted left out), and the rollups'
//! current values ([`crate::sql::rollup_view`]).
//!
//! `trips_latest`: each trip's newest version, with the trips a correction deleted left out.
//!
//! `trips` keeps every version the pipeline wrote (a trip can change while late data arrives:
//! `version` counts its revisions, `deleted` marks one a correction merged away or split). Most
//! questions want the trips as they stand now; this view answers them.
//!
//! Plan: [`LatestVersion`] over `trips` (one scan, one hash of the key per row), then the
//! deleted trips left out. Filters on company, vehicle or trip id reach the Parquet scan; the
//! tenant filter is inside `trips` already.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::Result;
use datafusion::logical_expr::{LogicalPlanBuilder, col, not};

use crate::sql::plan::latest_version::LatestVersion;
use fleetflow_model::Table;

/// What identifies a trip.
const KEY: [&str; 3] = ["company", "vehicle", "trip_id"];
/// What identifies a geofence visit.
const VISIT_KEY: [&str; 3] = ["company", "vehicle", "visit_id"];

/// The view over `trips` (already scoped to the caller).
pub fn view(trips: Arc<dyn TableProvider>) -> Result<Arc<dyn TableProvider>> {
    latest("trips", trips, &KEY)
}

/// The view a table has over it, already scoped to the caller: the latest-version views of the
/// versioned tables (`trips_latest`, `geofence_visits_latest`), the current values of the
/// rollups (`vehicle_hourly`, ... over `vehicle_hourly_changes`, ...).
pub fn view_of(
    table: Table,
    scoped: &Arc<dyn TableProvider>,
) -> Result<Option<(&'static str, Arc<dyn TableProvider>)>> {
    Ok(match table {
        Table::Trips => Some(("trips_latest", view(scoped.clone())?)),
        Table::GeofenceVisits => Some((
            "geofence_visits_latest",
            latest("geofence_visits", scoped.clone(), &VISIT_KEY)?,
        )),
        Table::VehicleHourly | Table::VehicleDaily | Table::CompanyHourly | Table::CompanyDaily => {
            let rollup = table.rollup().expect("a rollup table");
            let view = crate::sql::rollup_view::view(rollup, scoped.clone())?;
            Some((rollup.view(), view))
        }
        Table::Positions | Table::Events | Table::Errors => None,
    })
}

fn latest(
    name: &str,
    table: Arc<dyn TableProvider>,
    key: &[&str],
) -> Result<Arc<dyn TableProvider>> {
    let scan = LogicalPlanBuilder::scan(name, provider_as_source(table), None)?.build()?;
    let plan = LogicalPlanBuilder::from(LatestVersion::plan(scan, key, "version")?)
        .filter(not(col("deleted")))?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}
