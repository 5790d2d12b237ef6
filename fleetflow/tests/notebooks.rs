//! Every notebook in `notebooks/` runs headless (nbclient) against a fleetflow serving replayed
//! data, so a notebook can never silently rot: an emulated fleet goes through `fleetflow run`
//! (HTTP, Kafka, the pipeline, Parquet), and `fleetflow query` then serves that history over
//! Postgres wire to the notebook, logged in as the admin.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::test_python::python;
use support::{finish_emulator, report_field, start_emulator, start_fleetflow, temp_dir};

const ADMIN_TOKEN: &str = "notebook-admin";

/// Runs one notebook in the test venv's Python; its cells assert on what they read.
const RUN: &str = r#"
import sys
import nbformat
from nbclient import NotebookClient
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
NotebookClient(nb, timeout=300, kernel_name="python3").execute()
print(f"{path}: {len(nb.cells)} cells ran")
"#;

fn notebooks() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../notebooks");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("notebooks/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "ipynb"))
        .collect();
    found.sort();
    found
}

#[test]
fn notebooks_run_against_replayed_data() {
    let data = temp_dir("notebooks");
    let data_arg = data.to_str().expect("utf8");
    let ff = start_fleetflow(
        "run",
        &["--data-dir", data_arg],
        &[("FLEETFLOW_PIPELINE__FLUSH_SECS", "1")],
    );
    let total = finish_emulator(start_emulator(ff.http, 20, 10));
    assert_eq!(report_field(&total, "err"), 0, "{total}");
    assert!(
        ff.proc.terminate().success(),
        "fleetflow run did not stop cleanly"
    );

    let query = start_fleetflow(
        "query",
        &["--data-dir", data_arg, "--admin-token", ADMIN_TOKEN],
        &[],
    );
    let postgres = query
        .postgres
        .expect("fleetflow query serves Postgres wire");
    let found = notebooks();
    assert!(!found.is_empty(), "no notebooks in notebooks/");
    for notebook in found {
        let output = Command::new(python())
            .args(["-c", RUN])
            .arg(&notebook)
            .env("PGHOST", postgres.ip().to_string())
            .env("PGPORT", postgres.port().to_string())
            .env("PGUSER", "admin")
            .env("PGPASSWORD", ADMIN_TOKEN)
            // Headless: figures render to memory.
            .env("MPLBACKEND", "Agg")
            .output()
            .expect("python runs");
        assert!(
            output.status.success(),
            "{} failed:\n{}\n{}",
            notebook.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    drop(query);
    let _ = std::fs::remove_dir_all(data);
}
