//! The geofences of every company, kept in `<data-dir>/geofences/geofences.json`
//! (`fleetflow_tables::list_file`: rewritten whole, fsync'd, renamed), so that the API (in any
//! process) and the pipeline's dataflow share them; the dataflow re-reads the file when it
//! changes.
//!
//! An edit adds a version; a delete marks the geofence deleted from then on. Deleted geofences
//! stay in the file for [`KEEP_DELETED_MS`], so that a restart's replay (or a late fix) still
//! tests older fixes against them, and are then dropped.

use std::path::Path;
use std::sync::Arc;

use fleetflow_tables::list_file::ListFile;

use crate::GeofenceError;
use crate::geofence::{Geofence, MAX_VERSIONS, NewGeofence};

/// Most geofences (not deleted) one company may hold.
pub const MAX_PER_COMPANY: usize = 50_000;
/// Most geofences one request may create.
pub const MAX_PER_REQUEST: usize = 10_000;
/// How long a deleted geofence stays in the file: a week.
pub const KEEP_DELETED_MS: i64 = 7 * 86_400_000;

/// The geofences file.
#[derive(Debug)]
pub struct Geofences {
    file: ListFile<Geofence>,
}

impl Geofences {
    /// Opens (or starts) `<data_dir>/geofences/geofences.json`.
    pub fn open(data_dir: &Path) -> Result<Geofences, GeofenceError> {
        Ok(Geofences {
            file: ListFile::open(data_dir.join("geofences").join("geofences.json"))?,
        })
    }

    /// Every geofence, deleted ones included, as last read.
    pub fn all(&self) -> Arc<Vec<Geofence>> {
        self.file.all()
    }

    /// Re-reads the file if another process changed it; returns every geofence.
    pub fn reload_if_changed(&self) -> Result<Arc<Vec<Geofence>>, GeofenceError> {
        Ok(self.file.reload_if_changed()?)
    }

    /// Creates all of `requests` for `company`, or none: the error names the request (by its
    /// index, when there are several) and its field.
    pub fn create(
        &self,
        company: &str,
        requests: &[NewGeofence],
        now_ms: i64,
    ) -> Result<Vec<Geofence>, GeofenceError> {
        if requests.len() > MAX_PER_REQUEST {
            return Err(GeofenceError::Invalid(format!(
                "{} geofences in one request; at most {MAX_PER_REQUEST}",
                requests.len()
            )));
        }
        let mut created = Vec::with_capacity(requests.len());
        for (i, request) in requests.iter().enumerate() {
            let version = request.validate(now_ms).map_err(|e| {
                GeofenceError::Invalid(if requests.len() == 1 {
                    e
                } else {
                    format!("[{i}].{e}")
                })
            })?;
            created.push(Geofence {
                id: uuid::Uuid::new_v4().simple().to_string(),
                company: company.to_owned(),
                versions: vec![version],
                deleted_ms: None,
            });
        }
        self.file.update(|list| {
            let held = list
                .iter()
                .filter(|g| g.company == company && g.deleted_ms.is_none())
                .count();
            if held + created.len() > MAX_PER_COMPANY {
                return Err(GeofenceError::Invalid(format!(
                    "company {company} has {held} geofences; at most {MAX_PER_COMPANY}"
                )));
            }
            prune(list, now_ms);
            list.extend(created.iter().cloned());
            Ok(created)
        })
    }

    /// The geofence `id` if `may_access` allows its company (and it is not deleted).
    pub fn get(
        &self,
        id: &str,
        may_access: impl Fn(&str) -> bool,
    ) -> Result<Geofence, GeofenceError> {
        self.reload_if_changed()?
            .iter()
            .find(|g| g.id == id && g.deleted_ms.is_none() && may_access(&g.company))
            .cloned()
            .ok_or_else(|| GeofenceError::NotFound(id.to_owned()))
    }

    /// Replaces geofence `id`'s name and shape from `now_ms` on (a new version).
    pub fn replace(
        &self,
        id: &str,
        request: &NewGeofence,
        may_access: impl Fn(&str) -> bool,
        now_ms: i64,
    ) -> Result<Geofence, GeofenceError> {
        let version = request.validate(now_ms).map_err(GeofenceError::Invalid)?;
        self.file.update(|list| {
            let g = list
                .iter_mut()
                .find(|g| g.id == id && g.deleted_ms.is_none() && may_access(&g.company))
                .ok_or_else(|| GeofenceError::NotFound(id.to_owned()))?;
            if request.company.as_ref().is_some_and(|c| *c != g.company) {
                return Err(GeofenceError::Invalid(
                    "company: a geofence stays with its company".to_owned(),
                ));
            }
            // Two edits in the same millisecond: the later one wins.
            g.versions.retain(|v| v.from_ms < now_ms);
            g.versions.push(version);
            let excess = g.versions.len().saturating_sub(MAX_VERSIONS);
            g.versions.drain(..excess);
            let updated = g.clone();
            prune(list, now_ms);
            Ok(updated)
        })
    }

    /// Deletes geofence `id` from `now_ms` on.
    pub fn delete(
        &self,
        id: &str,
        may_access: impl Fn(&str) -> bool,
        now_ms: i64,
    ) -> Result<Geofence, GeofenceError> {
        self.file.update(|list| {
            let g = list
                .iter_mut()
                .find(|g| g.id == id && g.deleted_ms.is_none() && may_access(&g.company))
                .ok_or_else(|| GeofenceError::NotFound(id.to_owned()))?;
            g.deleted_ms = Some(now_ms);
            let deleted = g.clone();
            prune(list, now_ms);
            Ok(deleted)
        })
    }
}

/// Drops the geofences deleted more than [`KEEP_DELETED_MS`] ago.
fn prune(list: &mut Vec<Geofence>, now_ms: i64) {
    list.retain(|g| g.deleted_ms.is_none_or(|d| d > now_ms - KEEP_DELETED_MS));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn circle(name: &str) -> NewGeofence {
        serde_json::from_value(
            json!({"name": name, "center": {"lat": 37.5, "lon": 127.0}, "radius_m": 500}),
        )
        .unwrap()
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ff-fences-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn geofences_survive_reopening_and_stay_with_their_company() {
        let dir = temp_dir("reopen");
        let fences = Geofences::open(&dir).unwrap();
        let a = fences.create("acme", &[circle("depot")], 10).unwrap();
        let b = fences.create("globex", &[circle("yard")], 20).unwrap();
        let acme = |c: &str| c == "acme";
        assert!(matches!(
            fences.get(&b[0].id, acme),
            Err(GeofenceError::NotFound(_))
        ));
        assert!(matches!(
            fences.delete(&b[0].id, acme, 30),
            Err(GeofenceError::NotFound(_))
        ));
        let reopened = Geofences::open(&dir).unwrap();
        assert_eq!(reopened.get(&a[0].id, acme).unwrap(), a[0]);
        let edited = reopened
            .replace(&a[0].id, &circle("depot 2"), acme, 40)
            .unwrap();
        assert_eq!(edited.versions.len(), 2);
        assert_eq!(edited.version_at(39).unwrap().name, "depot");
        assert_eq!(edited.version_at(40).unwrap().name, "depot 2");
        reopened.delete(&a[0].id, acme, 50).unwrap();
        // The first handle sees the other's changes; the deleted one stays in the file.
        let all = fences.reload_if_changed().unwrap();
        assert_eq!(all.len(), 2);
        assert!(matches!(
            fences.get(&a[0].id, acme),
            Err(GeofenceError::NotFound(_))
        ));
        // A week later, a write drops it.
        fences
            .create("acme", &[circle("new")], 50 + KEEP_DELETED_MS)
            .unwrap();
        assert!(fences.all().iter().all(|g| g.id != a[0].id));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_batch_is_created_whole_or_not_at_all() {
        let dir = temp_dir("batch");
        let fences = Geofences::open(&dir).unwrap();
        let mut bad = circle("bad");
        bad.radius_m = Some(-1.0);
        let err = fences
            .create("acme", &[circle("a"), bad, circle("c")], 1)
            .unwrap_err();
        assert!(err.to_string().starts_with("[1].radius_m:"), "{err}");
        assert!(fences.all().is_empty());
        assert_eq!(
            fences
                .create("acme", &[circle("a"), circle("b")], 1)
                .unwrap()
                .len(),
            2
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
