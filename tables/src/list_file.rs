//! A small list kept as one JSON file (webhook subscriptions, geofences): rewritten whole under a
//! temporary name, fsync'd and renamed, so the file is always one complete version; readers in
//! other processes re-read it when its modification time changes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Reading or writing a list file.
#[derive(Debug, thiserror::Error)]
pub enum ListFileError {
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
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ListFileError + '_ {
    move |source| ListFileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The file, and the version of it last read or written.
#[derive(Debug)]
pub struct ListFile<T> {
    path: PathBuf,
    current: RwLock<Arc<Vec<T>>>,
    /// The file's modification time when last read or written (`None`: no file).
    seen: Mutex<Option<SystemTime>>,
    /// Serialises writers in this process.
    write: Mutex<()>,
}

impl<T: Serialize + DeserializeOwned + Clone> ListFile<T> {
    /// Opens `path` (creating its directory); no file is an empty list.
    pub fn open(path: PathBuf) -> Result<ListFile<T>, ListFileError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let file = ListFile {
            path,
            current: RwLock::new(Arc::new(Vec::new())),
            seen: Mutex::new(None),
            write: Mutex::new(()),
        };
        file.reload()?;
        Ok(file)
    }

    /// The list as last read or written.
    pub fn all(&self) -> Arc<Vec<T>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads the file if it changed since (another process wrote it); returns the list.
    pub fn reload_if_changed(&self) -> Result<Arc<Vec<T>>, ListFileError> {
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let seen = *self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if modified != seen {
            self.reload()?;
        }
        Ok(self.all())
    }

    fn reload(&self) -> Result<(), ListFileError> {
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let list: Vec<T> = match std::fs::read(&self.path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| ListFileError::Corrupt {
                    path: self.path.clone(),
                    source,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&self.path)(e)),
        };
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(list);
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = modified;
        Ok(())
    }

    /// Changes the list: re-reads the newest version, lets `change` edit a copy, and writes
    /// that as the next version, unless `change` fails (then nothing is written).
    pub fn update<R, E: From<ListFileError>>(
        &self,
        change: impl FnOnce(&mut Vec<T>) -> Result<R, E>,
    ) -> Result<R, E> {
        let _guard = self.write.lock().unwrap_or_else(|e| e.into_inner());
        self.reload()?;
        let mut list = (*self.all()).clone();
        let out = change(&mut list)?;
        self.store(list)?;
        Ok(out)
    }

    /// Writes `list` as the new version: temporary file, fsync, rename, directory fsync.
    fn store(&self, list: Vec<T>) -> Result<(), ListFileError> {
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&list).map_err(|source| ListFileError::Corrupt {
            path: tmp.clone(),
            source,
        })?;
        let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(&bytes).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(io(&self.path))?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(list);
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = modified;
        Ok(())
    }
}
