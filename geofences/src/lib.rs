//! Geofences: each company's zones (depots, customer sites, no-go areas), as GeoJSON polygons
//! or circles, and which of them hold a vehicle's fix at the fix's time.
//!
//! - [`shape`]: parsing and checking a shape (georust's `geojson` and `geo`), and the test
//!   whether it holds a position;
//! - [`geofence`]: a geofence with its versions (an edit applies from when it was made), and
//!   the request bodies;
//! - [`store`]: every company's geofences in one file under the data dir, shared by the API
//!   and the dataflow;
//! - [`index`]: an R-tree (`rstar`) over them, which the dataflow asks for each fix;
//! - [`visit`]: the visits a vehicle's accepted fixes make, enter to exit;
//! - [`api`]: `/v1/geofences` for companies to manage their own.

pub mod api;
pub mod geofence;
pub mod index;
pub mod shape;
pub mod store;
pub mod visit;

pub use api::{GeofenceApi, geofence_routes};
pub use geofence::{Geofence, NewGeofence};
pub use index::GeofenceIndex;
pub use store::Geofences;

use std::path::PathBuf;

use fleetflow_tables::list_file::ListFileError;

/// Everything that goes wrong with geofences, classified for HTTP by [`GeofenceError::status`].
#[derive(Debug, thiserror::Error)]
pub enum GeofenceError {
    /// A request's field is wrong: the message names it.
    #[error("{0}")]
    Invalid(String),
    #[error("missing or unknown bearer token")]
    Unauthorized,
    #[error("no geofence {0}")]
    NotFound(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Internal(String),
}

impl From<ListFileError> for GeofenceError {
    fn from(error: ListFileError) -> Self {
        match error {
            ListFileError::Io { path, source } => GeofenceError::Io { path, source },
            ListFileError::Corrupt { path, source } => GeofenceError::Corrupt { path, source },
        }
    }
}

impl GeofenceError {
    /// The HTTP status a client is answered with. Internal errors never show their details.
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            GeofenceError::Invalid(_) => StatusCode::BAD_REQUEST,
            GeofenceError::Unauthorized => StatusCode::UNAUTHORIZED,
            GeofenceError::NotFound(_) => StatusCode::NOT_FOUND,
            GeofenceError::Io { .. }
            | GeofenceError::Corrupt { .. }
            | GeofenceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told.
    pub fn public_message(&self) -> String {
        match self {
            GeofenceError::Invalid(_)
            | GeofenceError::Unauthorized
            | GeofenceError::NotFound(_) => self.to_string(),
            GeofenceError::Io { .. }
            | GeofenceError::Corrupt { .. }
            | GeofenceError::Internal(_) => "internal error".to_owned(),
        }
    }
}
