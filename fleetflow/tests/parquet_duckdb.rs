//! The Parquet history reads back in DuckDB (PyPI `duckdb`), with the hive partition column:
//! `fleetflow run` ingests an emulated fleet, stops (draining and committing), and DuckDB counts
//! what our own reader counts.

mod support;

use std::process::Command;

use fleetflow_tables::table_reader::{current_trips, position_keys};
use support::test_python::python;
use support::{finish_emulator, report_field, start_emulator, start_fleetflow, temp_dir};

const QUERY: &str = r#"
import duckdb, json, sys
root = sys.argv[1]
con = duckdb.connect()
def q(sql):
    return con.execute(sql).fetchall()
positions = q(f"SELECT count(*), count(DISTINCT (vehicle, time)), min(date)::VARCHAR, "
              f"bool_and(strftime(time, '%Y-%m-%d') = date::VARCHAR) "
              f"FROM read_parquet('{root}/positions/*/*.parquet', hive_partitioning = true)")[0]
trips = q(f"SELECT count(*) FROM (SELECT * FROM read_parquet('{root}/trips/*/*.parquet', hive_partitioning = true) "
          f"QUALIFY row_number() OVER (PARTITION BY trip_id ORDER BY version DESC) = 1 AND NOT deleted)")[0][0]
events = q(f"SELECT count(*) FROM read_parquet('{root}/events/*/*.parquet', hive_partitioning = true)")[0][0]
print(json.dumps({"positions": positions[0], "distinct": positions[1], "min_date": positions[2],
                  "dates_match": positions[3], "trips": trips, "events": events}))
"#;

#[test]
fn parquet_history_reads_back_in_duckdb_with_partition_columns() {
    let data = temp_dir("duckdb");
    let ff = start_fleetflow(
        "run",
        &["--data-dir", data.to_str().expect("utf8")],
        &[("FLEETFLOW_PIPELINE__FLUSH_SECS", "1")],
    );
    let total = finish_emulator(start_emulator(ff.http, 50, 8));
    assert_eq!(report_field(&total, "err"), 0, "{total}");
    assert!(
        ff.proc.terminate().success(),
        "fleetflow run did not stop cleanly"
    );

    let ours = position_keys(&data).expect("positions");
    assert_eq!(
        ours.len() as u64,
        report_field(&total, "points"),
        "every acked point, once"
    );
    let output = Command::new(python())
        .args(["-c", QUERY, data.to_str().expect("utf8")])
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "duckdb: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(seen["positions"], ours.len() as u64);
    assert_eq!(seen["distinct"], ours.len() as u64);
    assert_eq!(
        seen["dates_match"], true,
        "the date partition is each fix's UTC date: {seen}"
    );
    assert_eq!(
        seen["trips"],
        current_trips(&data).expect("trips").len() as u64
    );
    assert!(
        seen["events"].as_u64().unwrap_or(0) >= 50,
        "every vehicle keyed on: {seen}"
    );
}
