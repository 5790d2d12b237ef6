//! The tests' Python (DuckDB, psycopg, nbclient): `TEST_PYTHON`, which scripts/test sets, else
//! the test venv `scripts/python-env test` makes. Shared by the query and fleetflow tests.

use std::path::PathBuf;

pub fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let venv = home.join(".cache/fleetflow/venv-test/bin/python");
    assert!(
        venv.exists(),
        "no test Python: run scripts/test (or scripts/python-env test)"
    );
    venv
}
