//! The archive: each vehicle's history sealed behind the correction horizon, on disk, so a fix
//! arriving any time later still corrects the trips it changes (`trips/repair.rs`) while memory
//! holds only the horizon. Design note: `trips/archive.md`.
//!
//! One redb database per worker (`_fleetflow/archive/worker-<i>-of-<n>.redb`). A **chunk** is
//! the span between two of a vehicle's checkpoints: the trip machine's state and the open
//! geofence visits before its first entry, and its entries, serialized with bincode and
//! compressed with zstd. Chunks are keyed by (company, vehicle, first key), so a vehicle's
//! chunks are one key range in time order.
//!
//! Every change is made inside the current dataflow epoch's write transaction together with an
//! **undo** record (the chunk's previous value), and the transaction is durable (fsync) before
//! the epoch's rows leave the sessionizer, hence before any Parquet commit that covers them. A
//! restart undoes every change of an epoch the last Parquet commit did not cover, so the archive
//! is exactly as of that commit, which the Kafka replay then continues from. Undo records of
//! committed epochs are dropped as the commits advance.

use std::fmt;
use std::path::{Path, PathBuf};

use fleetflow_geofences::visit::VisitTrack;
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};

use crate::rows::VehicleName;
use crate::trips::timeline::{DeviceMetres, Entry, EntryKey, EntryKind};
use crate::trips::trip_machine::Machine;

const CHUNKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("chunks");
/// (epoch, sequence) -> the chunk key and its value before the change (if any).
const UNDO: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("undo");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// zstd level for chunks: the fastest; chunks are small and written on the dataflow's thread.
const ZSTD_LEVEL: i32 = 1;
/// redb's page cache per archive (its default is 1 GiB, 90% of it for reads). The archive is
/// written far more than read: reads are a repair's chunks and a resumed vehicle's last one, a
/// few pages each, which the kernel's page cache serves as well. A large cache would only hold
/// freshly written pages in the process's memory, growing with the archive (issue 39): at
/// 32 MiB a catch-up's two archives held ~45 MB at its end. A tenth of it buffers writes; a
/// commit's pages past that go to the file early, before its fsync.
const CACHE_BYTES: usize = 8 << 20;

/// Archive failures. They stop the pipeline: a restart recovers from the last commit.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("archive {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: redb::Error,
    },
    #[error("archive {path}: a chunk is unreadable: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "the archive in {dir} was written by a pipeline of {found} workers, this one has {peers}: \
         start it with the same number of workers (processes x workers), or remove that \
         directory to start a new archive (late fixes can then no longer correct history sealed \
         before now)"
    )]
    Layout {
        dir: PathBuf,
        found: usize,
        peers: usize,
    },
}

/// One span of a vehicle's sealed history.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// The machine's state before the first entry.
    pub machine: Machine,
    /// The geofence visits open before the first entry.
    pub visits: VisitTrack,
    /// The chunk's entries in key order (may be empty only for a vehicle's genesis).
    pub entries: Vec<Entry>,
}

/// The chunk format's version, its first byte.
const CHUNK_V1: u8 = 1;

impl Chunk {
    /// The state (bincode) and the entries, each field as a difference from the entry before
    /// (zigzag LEB128): a fix a second apart costs about 8 bytes before compression.
    fn encode(&self) -> Result<Vec<u8>, String> {
        let state =
            bincode::serialize(&(&self.machine, &self.visits)).map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(8 + state.len() + self.entries.len() * 10);
        out.push(CHUNK_V1);
        put_varint(&mut out, state.len() as u64);
        out.extend_from_slice(&state);
        put_varint(&mut out, self.entries.len() as u64);
        let mut prev = (0i64, 0i64, 0i64, 0i64);
        for e in &self.entries {
            let flags = (e.kind as u8)
                | (u8::from(e.usable) << 2)
                | (u8::from(e.device_m.get().is_some()) << 3);
            out.push(flags);
            let now = (
                e.time_ms,
                i64::from(e.lat_e7),
                i64::from(e.lon_e7),
                e.offset,
            );
            put_varint(&mut out, zigzag(now.0.wrapping_sub(prev.0)));
            put_varint(&mut out, zigzag(now.1 - prev.1));
            put_varint(&mut out, zigzag(now.2 - prev.2));
            put_varint(&mut out, zigzag(now.3.wrapping_sub(prev.3)));
            put_varint(&mut out, u64::from(e.speed_dkmh));
            if let Some(m) = e.device_m.get() {
                put_varint(&mut out, m);
            }
            prev = now;
        }
        Ok(out)
    }

    fn decode(raw: &[u8]) -> Result<Chunk, String> {
        let mut at = match raw.first() {
            Some(&CHUNK_V1) => 1,
            other => return Err(format!("unknown chunk version {other:?}")),
        };
        let truncated = || "truncated chunk".to_owned();
        let state_len = get_varint(raw, &mut at).ok_or_else(truncated)? as usize;
        let state = raw.get(at..at + state_len).ok_or_else(truncated)?;
        at += state_len;
        let (machine, visits): (Machine, VisitTrack) =
            bincode::deserialize(state).map_err(|e| e.to_string())?;
        let n = get_varint(raw, &mut at).ok_or_else(truncated)? as usize;
        let mut entries = Vec::with_capacity(n.min(raw.len()));
        let mut prev = (0i64, 0i64, 0i64, 0i64);
        for _ in 0..n {
            let flags = *raw.get(at).ok_or_else(truncated)?;
            at += 1;
            let mut delta = || get_varint(raw, &mut at).map(unzigzag).ok_or_else(truncated);
            let now = (
                prev.0.wrapping_add(delta()?),
                prev.1 + delta()?,
                prev.2 + delta()?,
                prev.3.wrapping_add(delta()?),
            );
            let speed = get_varint(raw, &mut at).ok_or_else(truncated)?;
            let device_m = if flags & 8 != 0 {
                Some(get_varint(raw, &mut at).ok_or_else(truncated)?)
            } else {
                None
            };
            let kind = match flags & 3 {
                0 => EntryKind::IgnitionOn,
                1 => EntryKind::Fix,
                2 => EntryKind::IgnitionOff,
                k => return Err(format!("unknown entry kind {k}")),
            };
            let coordinate = |v: i64| i32::try_from(v).map_err(|e| e.to_string());
            entries.push(Entry {
                time_ms: now.0,
                lat_e7: coordinate(now.1)?,
                lon_e7: coordinate(now.2)?,
                offset: now.3,
                device_m: DeviceMetres::new(device_m),
                speed_dkmh: u16::try_from(speed).map_err(|e| e.to_string())?,
                kind,
                usable: flags & 4 != 0,
            });
            prev = now;
        }
        Ok(Chunk {
            machine,
            visits,
            entries,
        })
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(raw: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *raw.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// A worker's archive.
pub struct Archive {
    path: PathBuf,
    db: Database,
    /// Whether every vehicle's history is here from its first item (the archive was created
    /// with the data dir), so an item older than a vehicle's first chunk starts its history.
    complete: bool,
    epoch: u64,
    txn: Option<WriteTransaction>,
    written: bool,
    undo_seq: u64,
    /// Undo records of epochs before this are dropped (the commits covered them).
    forgotten_before: u64,
    /// The earliest epoch the Parquet commits have not covered yet.
    committed: Option<Box<dyn Fn() -> u64>>,
    /// zstd contexts, made once (a context per chunk cost more than compressing it).
    compressor: zstd::bulk::Compressor<'static>,
    decompressor: zstd::bulk::Decompressor<'static>,
    pub stats: ArchiveStats,
}

/// What the archive did, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveStats {
    pub chunks_written: u64,
    pub chunks_read: u64,
    pub entries_written: u64,
    /// Archived entries re-read (by repairs, and when a vehicle resumes).
    pub entries_read: u64,
    /// Compressed bytes of the chunks written.
    pub bytes_written: u64,
}

impl fmt::Debug for Archive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Archive")
            .field("path", &self.path)
            .field("complete", &self.complete)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl Drop for Archive {
    /// An epoch's transaction still open (reads only, or a stop between epochs) is abandoned
    /// before the database closes: its changes belong to no finished epoch.
    fn drop(&mut self) {
        if let Some(txn) = self.txn.take() {
            let _ = txn.abort();
        }
    }
}

/// The archive directory of a data dir.
pub fn archive_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("_fleetflow").join("archive")
}

impl Archive {
    /// Opens (or creates) worker `index` of `peers`'s archive in `dir`, undoing every change of
    /// an epoch at or after `upto_epoch` (those the last commit did not cover). `fresh`: the data
    /// dir has no commit yet, so a new archive holds every vehicle from its first item.
    pub fn open(
        dir: &Path,
        index: usize,
        peers: usize,
        upto_epoch: u64,
        fresh: bool,
    ) -> Result<Archive, ArchiveError> {
        let store = |source: redb::Error| ArchiveError::Store {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| store(redb::Error::Io(e)))?;
        if let Ok(listing) = std::fs::read_dir(dir) {
            for name in listing.flatten().map(|e| e.file_name()) {
                let name = name.to_string_lossy();
                if let Some(found) = name
                    .strip_suffix(".redb")
                    .and_then(|n| n.split_once("-of-"))
                    .and_then(|(_, n)| n.parse::<usize>().ok())
                    && found != peers
                {
                    return Err(ArchiveError::Layout {
                        dir: dir.to_owned(),
                        found,
                        peers,
                    });
                }
            }
        }
        let path = dir.join(format!("worker-{index}-of-{peers}.redb"));
        let existed = path.exists();
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| store(e.into()))?;
        let mut archive = Archive {
            path,
            db,
            complete: false,
            epoch: 0,
            txn: None,
            written: false,
            undo_seq: 0,
            forgotten_before: 0,
            committed: None,
            compressor: zstd::bulk::Compressor::new(ZSTD_LEVEL)
                .map_err(|e| store(redb::Error::Io(e)))?,
            decompressor: zstd::bulk::Decompressor::new().map_err(|e| store(redb::Error::Io(e)))?,
            stats: ArchiveStats::default(),
        };
        archive
            .recover(upto_epoch, fresh && !existed)
            .map_err(|source| ArchiveError::Store {
                path: archive.path.clone(),
                source,
            })?;
        Ok(archive)
    }

    /// Undoes the changes of uncommitted epochs; records completeness on creation.
    fn recover(&mut self, upto_epoch: u64, created_fresh: bool) -> Result<(), redb::Error> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut meta = txn.open_table(META)?;
            if created_fresh {
                meta.insert("complete", 1)?;
            }
            self.complete = meta.get("complete")?.is_some_and(|v| v.value() == 1);
            let mut chunks = txn.open_table(CHUNKS)?;
            let mut undo = txn.open_table(UNDO)?;
            let mut undone = Vec::new();
            for item in undo.range((upto_epoch, 0)..)?.rev() {
                let (_, value) = item?;
                undone.push(value.value().to_vec());
            }
            for record in &undone {
                let (key, old) = split_undo(record);
                match old {
                    Some(old) => chunks.insert(key, old)?,
                    None => chunks.remove(key)?,
                };
            }
            undo.retain(|_, _| false)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Reads the earliest uncommitted epoch from `committed`, to drop undo records behind it.
    pub fn with_committed(mut self, committed: impl Fn() -> u64 + 'static) -> Self {
        self.committed = Some(Box::new(committed));
        self
    }

    pub fn complete(&self) -> bool {
        self.complete
    }

    /// Changes from now on belong to `epoch`.
    pub fn begin_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    fn txn(&mut self) -> Result<&mut WriteTransaction, redb::Error> {
        if self.txn.is_none() {
            self.txn = Some(self.db.begin_write()?);
            self.written = false;
        }
        Ok(self.txn.as_mut().expect("just begun"))
    }

    fn fail(&self, e: impl Into<redb::Error>) -> ! {
        panic!(
            "{}",
            ArchiveError::Store {
                path: self.path.clone(),
                source: e.into(),
            }
        )
    }

    /// The chunk of `name` holding `key` (the last one starting at or before it), if any.
    pub fn chunk_at(&mut self, name: &VehicleName, key: EntryKey) -> Option<(EntryKey, Chunk)> {
        let prefix = vehicle_prefix(name);
        let at = chunk_key(&prefix, key);
        self.read(prefix.len(), |chunks| {
            let found = chunks.range(prefix.as_slice()..=at.as_slice())?.next_back();
            owned(found)
        })
    }

    /// The first chunk of `name` starting after `key`, if any.
    pub fn chunk_after(&mut self, name: &VehicleName, key: EntryKey) -> Option<(EntryKey, Chunk)> {
        let prefix = vehicle_prefix(name);
        let from = chunk_key(&prefix, key);
        let end = prefix_end(&prefix);
        self.read(prefix.len(), |chunks| {
            let mut range = chunks.range(from.as_slice()..end.as_slice())?;
            let mut next = owned(range.next())?;
            if next.as_ref().is_some_and(|(k, _)| *k == from) {
                next = owned(range.next())?;
            }
            Ok(next)
        })
    }

    /// The first chunk of `name`, if any.
    pub fn first_chunk(&mut self, name: &VehicleName) -> Option<(EntryKey, Chunk)> {
        let prefix = vehicle_prefix(name);
        let end = prefix_end(&prefix);
        self.read(prefix.len(), |chunks| {
            owned(chunks.range(prefix.as_slice()..end.as_slice())?.next())
        })
    }

    /// The last chunk of `name`, if any: where its sealed history ends.
    pub fn last_chunk(&mut self, name: &VehicleName) -> Option<(EntryKey, Chunk)> {
        let prefix = vehicle_prefix(name);
        let end = prefix_end(&prefix);
        self.read(prefix.len(), |chunks| {
            owned(chunks.range(prefix.as_slice()..end.as_slice())?.next_back())
        })
    }

    /// Runs `f` on the chunks table inside the epoch's transaction; the chunk it found, with
    /// its first key (after the vehicle's `prefix_len` bytes).
    fn read(
        &mut self,
        prefix_len: usize,
        f: impl FnOnce(
            &redb::Table<'_, &'static [u8], &'static [u8]>,
        ) -> Result<Raw, redb::StorageError>,
    ) -> Option<(EntryKey, Chunk)> {
        let found = (|| -> Result<_, redb::Error> {
            let txn = self.txn()?;
            let chunks = txn.open_table(CHUNKS)?;
            let found = f(&chunks)?;
            Ok(found)
        })();
        let (key, value) = match found {
            Ok(found) => found?,
            Err(e) => self.fail(e),
        };
        self.stats.chunks_read += 1;
        Some((key_of(&key, prefix_len), self.decode(&value)))
    }

    fn decode(&mut self, bytes: &[u8]) -> Chunk {
        let decoded = self
            .decompressor
            .decompress(bytes, 64 << 20)
            .map_err(|e| e.to_string())
            .and_then(|raw| Chunk::decode(&raw));
        match decoded {
            Ok(chunk) => {
                self.stats.entries_read += chunk.entries.len() as u64;
                chunk
            }
            Err(detail) => panic!(
                "{}",
                ArchiveError::Corrupt {
                    path: self.path.clone(),
                    detail
                }
            ),
        }
    }

    /// Writes `chunk` as `name`'s chunk starting at `start`, with its undo record.
    pub fn put(&mut self, name: &VehicleName, start: EntryKey, chunk: &Chunk) {
        let key = chunk_key(&vehicle_prefix(name), start);
        let value = chunk
            .encode()
            .and_then(|raw| self.compressor.compress(&raw).map_err(|e| e.to_string()));
        let value = match value {
            Ok(value) => value,
            Err(detail) => panic!(
                "{}",
                ArchiveError::Corrupt {
                    path: self.path.clone(),
                    detail
                }
            ),
        };
        let (epoch, seq) = (self.epoch, self.undo_seq);
        self.undo_seq += 1;
        let written = (|| -> Result<(), redb::Error> {
            let txn = self.txn()?;
            let mut chunks = txn.open_table(CHUNKS)?;
            let old = chunks.insert(key.as_slice(), value.as_slice())?;
            let record = undo_record(&key, old.as_ref().map(|v| v.value()));
            drop(old);
            let mut undo = txn.open_table(UNDO)?;
            undo.insert((epoch, seq), record.as_slice())?;
            Ok(())
        })();
        if let Err(e) = written {
            self.fail(e);
        }
        self.written = true;
        self.stats.chunks_written += 1;
        self.stats.entries_written += chunk.entries.len() as u64;
        self.stats.bytes_written += value.len() as u64;
    }

    /// Ends the epoch's transaction: durable before the epoch's rows leave, if anything was
    /// written. Drops the undo records of epochs the commits have covered.
    pub fn finish_epoch(&mut self) {
        let committed = self.committed.as_ref().map(|f| f());
        let Some(mut txn) = self.txn.take() else {
            return;
        };
        let done = (|| -> Result<(), redb::Error> {
            if let Some(committed) = committed
                && committed > self.forgotten_before
                && self.written
            {
                let mut undo = txn.open_table(UNDO)?;
                undo.retain_in(..(committed, 0), |_, _| false)?;
                self.forgotten_before = committed;
            }
            if self.written {
                txn.set_durability(Durability::Immediate)?;
                txn.commit()?;
            } else {
                txn.abort()?;
            }
            Ok(())
        })();
        if let Err(e) = done {
            self.fail(e);
        }
    }

    /// How many undo records are held (for tests).
    pub fn undo_len(&self) -> u64 {
        let read = || -> Result<u64, redb::Error> {
            let txn = self.db.begin_read()?;
            Ok(txn.open_table(UNDO)?.len()?)
        };
        read().unwrap_or(0)
    }
}

/// A raw chunk key and value, copied out of the store.
type Raw = Option<(Vec<u8>, Vec<u8>)>;

type Guards<'a> = (
    redb::AccessGuard<'a, &'static [u8]>,
    redb::AccessGuard<'a, &'static [u8]>,
);

fn owned(found: Option<Result<Guards<'_>, redb::StorageError>>) -> Result<Raw, redb::StorageError> {
    Ok(found
        .transpose()?
        .map(|(k, v)| (k.value().to_vec(), v.value().to_vec())))
}

/// Length-prefixed company and vehicle: the key prefix of one vehicle's chunks.
fn vehicle_prefix(name: &VehicleName) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + name.company.len() + name.vehicle.len() + 9);
    for part in [&*name.company, &*name.vehicle] {
        let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
        key.extend_from_slice(&len.to_be_bytes());
        key.extend_from_slice(&part.as_bytes()[..usize::from(len)]);
    }
    key
}

/// The first key after every key with this prefix.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    end.extend_from_slice(&[0xff; 10]);
    end
}

fn chunk_key(prefix: &[u8], (time_ms, kind): EntryKey) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&((time_ms as u64) ^ (1 << 63)).to_be_bytes());
    key.push(kind as u8);
    key
}

fn key_of(key: &[u8], prefix_len: usize) -> EntryKey {
    let rest = &key[prefix_len..];
    let mut time = [0; 8];
    time.copy_from_slice(&rest[..8]);
    let time_ms = (u64::from_be_bytes(time) ^ (1 << 63)) as i64;
    let kind = match rest[8] {
        0 => EntryKind::IgnitionOn,
        1 => EntryKind::Fix,
        _ => EntryKind::IgnitionOff,
    };
    (time_ms, kind)
}

fn undo_record(key: &[u8], old: Option<&[u8]>) -> Vec<u8> {
    let mut record = Vec::with_capacity(5 + key.len() + old.map_or(0, <[u8]>::len));
    record.extend_from_slice(&(key.len() as u32).to_be_bytes());
    record.extend_from_slice(key);
    record.push(u8::from(old.is_some()));
    record.extend_from_slice(old.unwrap_or_default());
    record
}

fn split_undo(record: &[u8]) -> (&[u8], Option<&[u8]>) {
    let mut len = [0; 4];
    len.copy_from_slice(&record[..4]);
    let len = u32::from_be_bytes(len) as usize;
    let key = &record[4..4 + len];
    let old = (record[4 + len] == 1).then(|| &record[5 + len..]);
    (key, old)
}

/// The smallest key after `key`: where a vehicle's in-memory history starts when its sealed
/// history ends at `key`.
pub fn successor((time_ms, kind): EntryKey) -> EntryKey {
    match kind {
        EntryKind::IgnitionOn => (time_ms, EntryKind::Fix),
        EntryKind::Fix => (time_ms, EntryKind::IgnitionOff),
        EntryKind::IgnitionOff => (time_ms + 1, EntryKind::IgnitionOn),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("fleetflow-archive-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn chunk(times: &[i64]) -> Chunk {
        Chunk {
            machine: Machine::default(),
            visits: VisitTrack::default(),
            entries: times
                .iter()
                .map(|&t| {
                    let fix = fleetflow_model::Fix::new(t, 375_000_000, 1_270_000_000);
                    Entry::from_item(&fleetflow_model::Item::Fix(fix), 0)
                })
                .collect(),
        }
    }

    #[test]
    fn chunks_are_found_by_key_and_uncommitted_epochs_are_undone() {
        let dir = dir("undo");
        let car = VehicleName::new(Arc::from("acme"), Arc::from("car-1"));
        let van = VehicleName::new(Arc::from("acme"), Arc::from("car-10"));
        let fix = |t| (t, EntryKind::Fix);
        {
            let mut a = Archive::open(&dir, 0, 1, 0, true).unwrap();
            assert!(a.complete());
            a.begin_epoch(10);
            a.put(&car, fix(100), &chunk(&[100, 200]));
            a.put(&car, fix(300), &chunk(&[300]));
            a.put(&van, fix(50), &chunk(&[50]));
            a.finish_epoch();
            a.begin_epoch(20);
            a.put(&car, fix(300), &chunk(&[300, 350]));
            a.put(&car, fix(400), &chunk(&[400]));
            a.finish_epoch();
            assert_eq!(a.chunk_at(&car, fix(350)).unwrap().1, chunk(&[300, 350]));
            assert_eq!(a.last_chunk(&car).unwrap().0, fix(400));
        }
        // The commit covered epoch 10, not 20: epoch 20's changes are undone.
        let mut a = Archive::open(&dir, 0, 1, 20, false).unwrap();
        assert!(
            a.complete(),
            "completeness is the archive's, recorded at creation"
        );
        assert_eq!(a.undo_len(), 0);
        assert_eq!(
            a.chunk_at(&car, fix(350)).unwrap(),
            (fix(300), chunk(&[300]))
        );
        assert_eq!(a.last_chunk(&car).unwrap().0, fix(300));
        assert_eq!(a.first_chunk(&car).unwrap().0, fix(100));
        assert!(a.chunk_at(&car, fix(99)).is_none());
        assert_eq!(a.chunk_after(&car, fix(100)).unwrap().0, fix(300));
        assert!(a.chunk_after(&car, fix(300)).is_none());
        // "car-1" and "car-10" do not share keys.
        assert_eq!(a.last_chunk(&van).unwrap().0, fix(50));
        assert!(a.chunk_at(&van, fix(40)).is_none());
        drop(a);
        // Another worker count is refused.
        assert!(matches!(
            Archive::open(&dir, 0, 2, 20, false),
            Err(ArchiveError::Layout {
                found: 1,
                peers: 2,
                ..
            })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn chunks_round_trip_through_their_encoding() {
        let mut c = chunk(&[-5, 0, 1_000, 2_000, i64::MAX / 2]);
        c.entries[1].kind = EntryKind::IgnitionOn;
        c.entries[1].device_m = DeviceMetres::new(Some(123_456_789));
        c.entries[2].lat_e7 = -900_000_000;
        c.entries[2].lon_e7 = 1_800_000_000;
        c.entries[2].usable = false;
        c.entries[3].speed_dkmh = u16::MAX;
        c.entries[4].kind = EntryKind::IgnitionOff;
        c.entries[4].offset = i64::MAX;
        assert_eq!(Chunk::decode(&c.encode().unwrap()).unwrap(), c);
        assert!(Chunk::decode(&[9]).is_err());
        let raw = c.encode().unwrap();
        assert!(Chunk::decode(&raw[..raw.len() - 1]).is_err());
    }

    #[test]
    fn successor_is_the_next_key() {
        use EntryKind::*;
        for key in [(5, IgnitionOn), (5, Fix), (5, IgnitionOff)] {
            assert!(successor(key) > key);
        }
        assert_eq!(successor((5, IgnitionOff)), (6, IgnitionOn));
    }
}
