//! Geofences in a process: the `/v1/geofences` API (wherever SQL is served) over
//! `<data-dir>/geofences/geofences.json`, which the pipeline's dataflow reads too.

use std::sync::Arc;

use axum::Router;
use fleetflow_geofences::{GeofenceApi, Geofences, geofence_routes};
use fleetflow_model::Tenants;

use crate::config::Config;
use crate::error::AppError;

/// The geofences file, opened, and the routes that manage it.
pub fn geofence_side(
    config: &Config,
    tenants: Arc<Tenants>,
) -> Result<(Router, Arc<Geofences>), AppError> {
    let geofences = Arc::new(
        Geofences::open(&config.data_dir)
            .map_err(|e| AppError::Internal(format!("geofences: {e}")))?,
    );
    let routes = geofence_routes(GeofenceApi {
        geofences: geofences.clone(),
        tenants,
    });
    Ok((routes, geofences))
}
