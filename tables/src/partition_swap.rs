//! Replacing files of one partition directory in a single atomic step, for compaction.
//!
//! A glob reader (DuckDB, DataFusion listing `<table>/date=*/*.parquet`) lists each partition
//! directory once. Compaction must never let such a listing see both its inputs and its output
//! or neither, and a rename of files cannot do that: it adds the output and removes the inputs in
//! several steps. Directories can: we build the partition's next contents in a side directory
//! (hard links to every file that stays, plus the merged file) and exchange the two with
//! `renameat2(RENAME_EXCHANGE)`. A listing opens one directory inode or the other, and neither
//! inode changes while the exchange happens. The old directory lands in the side directory's
//! place, under `_fleetflow/retired/`, where listings already in progress can finish; it is
//! deleted after a grace period.

use std::fs;
use std::io;
use std::path::Path;

use rustix::fs::{CWD, RenameFlags, renameat_with};
use rustix::io::Errno;

/// Swaps two directories atomically (both must exist, on the same filesystem).
pub fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(io::Error::from)
}

/// Whether the filesystem under `dir` supports the atomic exchange (ext4, xfs, btrfs, tmpfs do;
/// some network and overlay filesystems do not). Tried on two scratch directories.
pub fn exchange_supported(dir: &Path) -> io::Result<bool> {
    let a = dir.join(".exchange-probe-a");
    let b = dir.join(".exchange-probe-b");
    for d in [&a, &b] {
        let _ = fs::remove_dir_all(d);
        fs::create_dir_all(d)?;
    }
    fs::write(a.join("a"), b"")?;
    let supported = match renameat_with(CWD, &a, CWD, &b, RenameFlags::EXCHANGE) {
        Ok(()) => b.join("a").exists() && !a.join("a").exists(),
        Err(errno) if [Errno::INVAL, Errno::NOSYS, Errno::NOTSUP].contains(&errno) => false,
        Err(errno) => return Err(errno.into()),
    };
    fs::remove_dir_all(&a)?;
    fs::remove_dir_all(&b)?;
    Ok(supported)
}

/// Replaces, inside `live` (a partition directory), the files named in `remove` by the files
/// in `add` (paths to hard-link in, with their names inside `live`), in one atomic step.
/// `side` is where the next contents are built and where the old directory ends up. Idempotent:
/// if no file of `remove` is in `live` any more, it was done and nothing happens.
pub fn replace_files(
    live: &Path,
    side: &Path,
    remove: &[&str],
    add: &[(&Path, &str)],
) -> io::Result<()> {
    if !remove.iter().any(|name| live.join(name).exists()) {
        return Ok(());
    }
    // A build a crash interrupted is started over.
    if side.exists() {
        fs::remove_dir_all(side)?;
    }
    fs::create_dir_all(side)?;
    for entry in fs::read_dir(live)? {
        let entry = entry?;
        let name = entry.file_name();
        if remove.iter().any(|r| name == **r) {
            continue;
        }
        fs::hard_link(entry.path(), side.join(&name))?;
    }
    for (source, name) in add {
        fs::hard_link(source, side.join(name))?;
    }
    sync(side)?;
    exchange(side, live)?;
    if let Some(parent) = live.parent() {
        sync(parent)?;
    }
    if let Some(parent) = side.parent() {
        sync(parent)?;
    }
    Ok(())
}

fn sync(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_in_one_step_and_is_idempotent() {
        let root = std::env::temp_dir().join(format!("fleetflow-swap-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let live = root.join("positions/date=2020-12-01");
        fs::create_dir_all(&live).unwrap();
        if !exchange_supported(&root).unwrap() {
            eprintln!("skipped: no RENAME_EXCHANGE on this filesystem");
            return;
        }
        for name in ["a", "b", "keep"] {
            fs::write(live.join(name), name).unwrap();
        }
        let merged = root.join("merged");
        fs::write(&merged, "ab").unwrap();
        let side = root.join("_fleetflow/retired/1/positions/date=2020-12-01");
        let open_before = fs::read_dir(&live).unwrap();
        replace_files(&live, &side, &["a", "b"], &[(&merged, "ab")]).unwrap();
        let mut names: Vec<_> = fs::read_dir(&live)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["ab", "keep"]);
        // A listing opened before the swap still sees the old directory whole.
        let mut old: Vec<_> = open_before
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        old.sort();
        assert_eq!(old, ["a", "b", "keep"]);
        // Done already: nothing happens.
        replace_files(&live, &side, &["a", "b"], &[(&merged, "ab")]).unwrap();
        assert_eq!(fs::read_to_string(live.join("ab")).unwrap(), "ab");
        let _ = fs::remove_dir_all(&root);
    }
}
