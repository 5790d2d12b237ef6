//! Which companies each vehicle id belongs to.
//!
//! A vehicle is a company and a vehicle id: the same id may be registered in several companies,
//! each its own vehicle (issue 35: a company posting another's ids registers them in its own
//! company, and the other's devices go on as before). Under `auth = "token"` the token names
//! the company, so the registry only answers whether that company has the id (for
//! `unknown_vehicle = "reject"`) and lists a company's vehicles. Without a token (auth off, or
//! the admin token) the registry decides the company: an id in exactly one company goes there,
//! one in several is refused as ambiguous.
//!
//! Seeded from the config file's `[vehicles]` table; changed by the admin endpoint and by
//! auto-registration of unknown vehicles. When given a journal path, every change is appended as
//! one JSON line and the journal is replayed over the config at start-up, so a restart keeps
//! what the admin said and where auto-registered vehicles joined:
//! `{"op":"add","vehicle":"v1","company":"acme"}`, `{"op":"remove","vehicle":"v1","company":"acme"}`,
//! `{"op":"remove","vehicle":"v1","company":null}` (from every company). Lines without `op`
//! were written before ids were scoped by company: a company there moved the vehicle into it
//! (out of any other), `null` removed it. Lines are written before the change becomes visible;
//! they are not fsynced (a machine crash can lose the last changes, a process crash cannot).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Op {
    Add,
    Remove,
}

#[derive(Debug, Serialize, Deserialize)]
struct JournalLine<'a> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    op: Option<Op>,
    vehicle: &'a str,
    company: Option<&'a str>,
}

/// Vehicle id to the companies holding it (sorted; almost always one).
type Companies = HashMap<String, Vec<Arc<str>>>;

#[derive(Debug, Default)]
pub struct VehicleRegistry {
    vehicles: RwLock<Companies>,
    journal: Option<Mutex<File>>,
}

impl VehicleRegistry {
    /// An in-memory registry holding `initial` (vehicle, company) pairs.
    pub fn new(initial: impl IntoIterator<Item = (String, Arc<str>)>) -> VehicleRegistry {
        let mut vehicles = Companies::new();
        for (vehicle, company) in initial {
            add(&mut vehicles, &vehicle, company);
        }
        VehicleRegistry {
            vehicles: RwLock::new(vehicles),
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
        let registry = VehicleRegistry::new(initial);
        {
            let mut vehicles = registry.write();
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
                    replay(&mut vehicles, &entry, &intern);
                }
            }
        }
        let journal = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(VehicleRegistry {
            journal: Some(Mutex::new(journal)),
            ..registry
        })
    }

    /// The companies holding `vehicle`, sorted (empty when none does).
    pub fn companies_of(&self, vehicle: &str) -> Vec<Arc<str>> {
        self.read().get(vehicle).cloned().unwrap_or_default()
    }

    /// The one company holding `vehicle`; `None` when none or several do.
    pub fn company_of(&self, vehicle: &str) -> Option<Arc<str>> {
        match self.read().get(vehicle).map(Vec::as_slice) {
            Some([company]) => Some(company.clone()),
            _ => None,
        }
    }

    /// Whether `company` holds `vehicle`.
    pub fn contains(&self, company: &str, vehicle: &str) -> bool {
        self.read()
            .get(vehicle)
            .is_some_and(|companies| companies.iter().any(|c| **c == *company))
    }

    /// Registers `vehicle` in `company` (a no-op when it is there already).
    pub fn add(&self, vehicle: &str, company: &Arc<str>) -> io::Result<()> {
        let mut vehicles = self.write();
        if contains(&vehicles, company, vehicle) {
            return Ok(());
        }
        self.append(Op::Add, vehicle, Some(company))?;
        add(&mut vehicles, vehicle, company.clone());
        Ok(())
    }

    /// Registers `vehicle` into `company` unless some company holds it already; returns the
    /// companies holding it afterwards.
    pub fn register_if_absent(
        &self,
        vehicle: &str,
        company: &Arc<str>,
    ) -> io::Result<Vec<Arc<str>>> {
        let mut vehicles = self.write();
        if let Some(existing) = vehicles.get(vehicle) {
            return Ok(existing.clone());
        }
        self.append(Op::Add, vehicle, Some(company))?;
        add(&mut vehicles, vehicle, company.clone());
        Ok(vec![company.clone()])
    }

    /// Removes `vehicle` from `company`, or from every company when `None`; whether it was
    /// registered there.
    pub fn remove(&self, vehicle: &str, company: Option<&Arc<str>>) -> io::Result<bool> {
        let mut vehicles = self.write();
        let held = match company {
            Some(company) => contains(&vehicles, company, vehicle),
            None => vehicles.contains_key(vehicle),
        };
        if held {
            self.append(Op::Remove, vehicle, company)?;
            remove(&mut vehicles, vehicle, company.map(|c| &**c));
        }
        Ok(held)
    }

    /// All (vehicle, company) pairs, sorted by vehicle, then company.
    pub fn snapshot(&self) -> Vec<(String, Arc<str>)> {
        let mut all: Vec<_> = self
            .read()
            .iter()
            .flat_map(|(vehicle, companies)| companies.iter().map(|c| (vehicle.clone(), c.clone())))
            .collect();
        all.sort();
        all
    }

    /// Registered vehicles: (company, id) pairs.
    pub fn len(&self) -> usize {
        self.read().values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn append(&self, op: Op, vehicle: &str, company: Option<&Arc<str>>) -> io::Result<()> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        let mut line = serde_json::to_vec(&JournalLine {
            op: Some(op),
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

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Companies> {
        self.vehicles
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Companies> {
        self.vehicles
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn contains(vehicles: &Companies, company: &str, vehicle: &str) -> bool {
    vehicles
        .get(vehicle)
        .is_some_and(|companies| companies.iter().any(|c| **c == *company))
}

fn add(vehicles: &mut Companies, vehicle: &str, company: Arc<str>) {
    let companies = vehicles.entry(vehicle.to_owned()).or_default();
    if let Err(at) = companies.binary_search(&company) {
        companies.insert(at, company);
    }
}

fn remove(vehicles: &mut Companies, vehicle: &str, company: Option<&str>) {
    match company {
        Some(company) => {
            if let Some(companies) = vehicles.get_mut(vehicle) {
                companies.retain(|c| **c != *company);
                if companies.is_empty() {
                    vehicles.remove(vehicle);
                }
            }
        }
        None => {
            vehicles.remove(vehicle);
        }
    }
}

/// Applies one journal line (see the module doc for the forms).
fn replay(
    vehicles: &mut Companies,
    entry: &JournalLine<'_>,
    intern: impl Fn(&str) -> Option<Arc<str>>,
) {
    let company = entry.company.map(|id| intern(id).ok_or(id));
    match (entry.op, company) {
        (Some(Op::Add), Some(Ok(company))) => add(vehicles, entry.vehicle, company),
        // A company that no longer exists, or an add without one: nothing to hold.
        (Some(Op::Add), _) => {}
        (Some(Op::Remove), Some(Ok(company))) => remove(vehicles, entry.vehicle, Some(&company)),
        (Some(Op::Remove), Some(Err(id))) => remove(vehicles, entry.vehicle, Some(id)),
        (Some(Op::Remove) | None, None) => remove(vehicles, entry.vehicle, None),
        // Written before scoping: the vehicle moved into this company, out of any other.
        (None, Some(company)) => {
            remove(vehicles, entry.vehicle, None);
            if let Ok(company) = company {
                add(vehicles, entry.vehicle, company);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_survives_reopen_and_reads_unscoped_lines() {
        let dir = std::env::temp_dir().join(format!("ff-registry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("vehicles.jsonl");
        // Two lines as written before scoping: v9 moved into beta, then v8 removed.
        std::fs::write(
            &path,
            "{\"vehicle\":\"v9\",\"company\":\"beta\"}\n{\"vehicle\":\"v8\",\"company\":null}\n",
        )
        .expect("legacy journal");
        let acme: Arc<str> = "acme".into();
        let beta: Arc<str> = "beta".into();
        let intern = |id: &str| match id {
            "acme" => Some(Arc::from("acme")),
            "beta" => Some(Arc::from("beta")),
            _ => None,
        };
        let initial = || {
            [
                ("v0".to_owned(), acme.clone()),
                ("v8".to_owned(), acme.clone()),
                ("v9".to_owned(), acme.clone()),
            ]
        };
        {
            let registry = VehicleRegistry::open(&path, initial(), intern).expect("open");
            assert_eq!(registry.company_of("v9"), Some(beta.clone()), "legacy move");
            assert_eq!(registry.companies_of("v8"), Vec::<Arc<str>>::new());
            assert_eq!(
                registry.register_if_absent("v1", &beta).expect("io"),
                std::slice::from_ref(&beta)
            );
            assert_eq!(
                registry.register_if_absent("v1", &acme).expect("io"),
                std::slice::from_ref(&beta),
                "first registration wins without a token"
            );
            // With a token each company has its own v1.
            registry.add("v1", &acme).expect("io");
            assert_eq!(registry.companies_of("v1"), [acme.clone(), beta.clone()]);
            assert_eq!(registry.company_of("v1"), None, "ambiguous");
            assert!(registry.contains("acme", "v1") && registry.contains("beta", "v1"));
            registry.add("v2", &acme).expect("io");
            assert!(registry.remove("v2", None).expect("io"));
            assert!(!registry.remove("v2", None).expect("io"));
            assert!(registry.remove("v0", Some(&acme)).expect("io"));
            registry.add("v0", &beta).expect("io");
        }
        let registry = VehicleRegistry::open(&path, initial(), intern).expect("reopen");
        assert_eq!(
            registry.snapshot(),
            vec![
                ("v0".into(), beta.clone()),
                ("v1".into(), acme.clone()),
                ("v1".into(), beta.clone()),
                ("v9".into(), beta),
            ]
        );
        assert_eq!(registry.len(), 4);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
