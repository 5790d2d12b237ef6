//! Which company each vehicle belongs to.
//!
//! Seeded from the config file's `[vehicles]` table; changed by the admin endpoint and by
//! auto-registration of unknown vehicles. When given a journal path, every change is appended as
//! one JSON line (`{"vehicle":"v1","company":"acme"}`, `"company":null` for a removal) and the
//! journal is replayed over the config at start-up, so a restart keeps what the admin said and
//! which company an auto-registered vehicle joined. Lines are written before the change becomes
//! visible; they are not fsynced (a machine crash can lose the last changes, a process crash
//! cannot).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct JournalLine<'a> {
    vehicle: &'a str,
    company: Option<&'a str>,
}

#[derive(Debug, Default)]
pub struct VehicleRegistry {
    vehicles: RwLock<HashMap<String, Arc<str>>>,
    journal: Option<Mutex<File>>,
}

impl VehicleRegistry {
    /// An in-memory registry holding `initial`.
    pub fn new(initial: impl IntoIterator<Item = (String, Arc<str>)>) -> VehicleRegistry {
        VehicleRegistry {
            vehicles: RwLock::new(initial.into_iter().collect()),
            journal: None,
        }
    }

    /// A registry holding `initial` overlaid with the journal at `path` (created if missing),
    /// appending future changes to it. `intern` maps a journalled company id to the configured
    /// one, or `None` for a company that no longer exists (its vehicles are dropped).
    pub fn open(
        path: &Path,
        initial: impl IntoIterator<Item = (String, Arc<str>)>,
        intern: impl Fn(&str) -> Option<Arc<str>>,
    ) -> io::Result<VehicleRegistry> {
        let mut vehicles: HashMap<String, Arc<str>> = initial.into_iter().collect();
        if path.exists() {
            for (number, line) in BufReader::new(File::open(path)?).lines().enumerate() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                let entry: JournalLine<'_> = serde_json::from_str(&line).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}:{}: {e}", path.display(), number + 1),
                    )
                })?;
                match entry.company.and_then(&intern) {
                    Some(company) => vehicles.insert(entry.vehicle.to_owned(), company),
                    None => vehicles.remove(entry.vehicle),
                };
            }
        }
        let journal = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(VehicleRegistry {
            vehicles: RwLock::new(vehicles),
            journal: Some(Mutex::new(journal)),
        })
    }

    pub fn company_of(&self, vehicle: &str) -> Option<Arc<str>> {
        self.read().get(vehicle).cloned()
    }

    /// Registers `vehicle` into `company` unless it already belongs somewhere; returns the
    /// company it belongs to afterwards.
    pub fn register_if_absent(&self, vehicle: &str, company: &Arc<str>) -> io::Result<Arc<str>> {
        let mut vehicles = self.write();
        if let Some(existing) = vehicles.get(vehicle) {
            return Ok(existing.clone());
        }
        self.append(vehicle, Some(company))?;
        vehicles.insert(vehicle.to_owned(), company.clone());
        Ok(company.clone())
    }

    /// Puts `vehicle` into `company`, moving it if it belonged elsewhere.
    pub fn assign(&self, vehicle: &str, company: Arc<str>) -> io::Result<()> {
        let mut vehicles = self.write();
        self.append(vehicle, Some(&company))?;
        vehicles.insert(vehicle.to_owned(), company);
        Ok(())
    }

    /// Forgets `vehicle`; whether it was registered.
    pub fn remove(&self, vehicle: &str) -> io::Result<bool> {
        let mut vehicles = self.write();
        if !vehicles.contains_key(vehicle) {
            return Ok(false);
        }
        self.append(vehicle, None)?;
        vehicles.remove(vehicle);
        Ok(true)
    }

    /// All vehicles and their companies, sorted by vehicle.
    pub fn snapshot(&self) -> Vec<(String, Arc<str>)> {
        let mut all: Vec<_> = self
            .read()
            .iter()
            .map(|(vehicle, company)| (vehicle.clone(), company.clone()))
            .collect();
        all.sort();
        all
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn append(&self, vehicle: &str, company: Option<&Arc<str>>) -> io::Result<()> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        let mut line = serde_json::to_vec(&JournalLine {
            vehicle,
            company: company.map(|c| &**c),
        })
        .map_err(io::Error::other)?;
        line.push(b'\n');
        journal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .write_all(&line)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<str>>> {
        self.vehicles
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<str>>> {
        self.vehicles
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_survives_reopen() {
        let dir = std::env::temp_dir().join(format!("ff-registry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("vehicles.jsonl");
        let _ = std::fs::remove_file(&path);
        let acme: Arc<str> = "acme".into();
        let beta: Arc<str> = "beta".into();
        let intern = |id: &str| match id {
            "acme" => Some(Arc::from("acme")),
            "beta" => Some(Arc::from("beta")),
            _ => None,
        };
        {
            let registry =
                VehicleRegistry::open(&path, [("v0".into(), acme.clone())], intern).expect("open");
            assert_eq!(registry.register_if_absent("v1", &beta).expect("io"), beta);
            assert_eq!(
                registry.register_if_absent("v1", &acme).expect("io"),
                beta,
                "first registration wins"
            );
            registry.assign("v2", acme.clone()).expect("io");
            assert!(registry.remove("v2").expect("io"));
            registry.assign("v0", beta.clone()).expect("io");
        }
        let registry =
            VehicleRegistry::open(&path, [("v0".into(), acme.clone())], intern).expect("reopen");
        assert_eq!(
            registry.snapshot(),
            vec![("v0".into(), beta.clone()), ("v1".into(), beta)]
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
