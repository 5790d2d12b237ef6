//! Query benchmark (issue 5): writes a synthetic history straight into the Parquet layout, then
//! times, through fleetflow's SQL engine (as a company token: the tenant filter included) and
//! DuckDB (PyPI) on the same files in the same run:
//! - one vehicle's route for one day (goal < 50 ms);
//! - a fleet-wide daily distance aggregate over `trips_latest`;
//! - a fleet-wide scan of every position per day;
//! - the fleet's hourly chart (fixes and mean speed per hour) and the daily per-vehicle table
//!   (trips, distance, fixes, top speed), from the rollups (`company_hourly`, `vehicle_daily`)
//!   and from `positions` and `trips` (`*_scan`); DuckDB always from `positions` and `trips`
//!   (issue 43).
//!
//! `--points` sets the size (default 10 million; the goal is 10^9). DuckDB runs through the
//! interpreter in `TEST_PYTHON` (`scripts/python-env test`), skipped when it is not set.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use fleetflow_model::Principal;
use fleetflow_query::history::synthetic::{
    HistoryShape, company_name, vehicle_name, write_history,
};
use fleetflow_query::{SqlConfig, SqlEngine};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
struct Args {
    /// Positions to write.
    #[arg(long, default_value_t = 10_000_000)]
    points: u64,
    #[arg(long, default_value_t = 1000)]
    vehicles: usize,
    /// Timed runs per query (after one warm-up).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Where to write (default: a temporary directory, removed afterwards).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Reuse the history already in --data-dir.
    #[arg(long)]
    reuse: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let temp = args.data_dir.is_none();
    let dir = args.data_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("fleetflow-query-bench-{}", std::process::id()))
    });
    // A working day: 4 trips of 120 fixes (10 s apart) per vehicle.
    let per_vehicle_day = 4 * 120;
    let days = (args.points / (args.vehicles as u64 * per_vehicle_day)).max(1) as usize;
    let shape = HistoryShape {
        companies: 10,
        vehicles: args.vehicles,
        days,
        trips_per_day: 4,
        points_per_trip: 120,
        interval_s: 10,
        row_group_rows: fleetflow_tables::parquet_file::ROW_GROUP_ROWS,
        ..HistoryShape::default()
    };
    if !args.reuse {
        let _ = std::fs::remove_dir_all(&dir);
        let started = Instant::now();
        let w = write_history(&dir, &shape)?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "wrote {} points, {} trips over {days} days in {secs:.1} s ({:.1} M points/s); {:.1} MB, {:.1} bytes/point",
            w.points,
            w.trips,
            w.points as f64 / secs / 1e6,
            w.bytes as f64 / 1e6,
            w.bytes as f64 / w.points as f64
        );
    }
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let vehicle = vehicle_name(args.vehicles / 2);
    let company = company_name(args.vehicles / 2 % shape.companies);
    let day = chrono_date(shape.first_day_ms / 86_400_000 + days as i64 / 2);
    let queries = [
        (
            "route",
            format!(
                "SELECT time, lat, lon FROM positions WHERE vehicle = '{vehicle}' AND date = DATE '{}' ORDER BY time",
                day
            ),
        ),
        (
            "daily_distance",
            "SELECT date, sum(distance_m) FROM trips_latest GROUP BY date ORDER BY date".to_owned(),
        ),
        (
            "daily_points",
            "SELECT date, count(*), avg(speed_kmh) FROM positions GROUP BY date ORDER BY date"
                .to_owned(),
        ),
        (
            "hourly_chart",
            "SELECT hour, sum(fixes), sum(fixes * mean_speed_kmh) / sum(fixes) FROM company_hourly \
             GROUP BY hour ORDER BY hour"
                .to_owned(),
        ),
        ("hourly_chart_scan", HOURLY_CHART_SCAN.to_owned()),
        (
            "vehicle_daily",
            "SELECT company, vehicle, day, trips, distance_m, fixes, max_speed_kmh \
             FROM vehicle_daily ORDER BY vehicle, day"
                .to_owned(),
        ),
        (
            "vehicle_daily_scan",
            VEHICLE_DAILY_SCAN.replace("{trips}", "trips_latest"),
        ),
    ];

    let runtime = tokio::runtime::Runtime::new()?;
    let engine = SqlEngine::new(
        &dir,
        SqlConfig {
            max_rows: 10_000_000,
            timeout_secs: 3600,
            ..SqlConfig::default()
        },
        None,
    )?;
    let mut ours = Vec::new();
    for (name, sql) in &queries {
        // fleetflow: as the vehicle's company for the route (the tenant filter in the plan), as
        // the admin for the fleet-wide ones (DuckDB has no tenants either way).
        let principal = if *name == "route" {
            Principal::Company(company.as_str().into())
        } else {
            Principal::Admin
        };
        let mut times = Vec::new();
        let mut rows = 0;
        for run in 0..=args.runs {
            let started = Instant::now();
            let answer = runtime.block_on(engine.query(&principal, sql, None))?;
            if run > 0 {
                times.push(started.elapsed().as_secs_f64());
            }
            rows = answer.rows();
        }
        ours.push((name, median(&mut times), rows));
    }
    let duckdb = std::env::var("TEST_PYTHON").ok().map(|python| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/compare/query_duckdb.py");
        let out = std::process::Command::new(python)
            .args([
                script,
                &dir.to_string_lossy(),
                &vehicle,
                &day,
                &args.runs.to_string(),
                &threads.to_string(),
            ])
            .output()
            .expect("running DuckDB");
        let parsed: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("DuckDB failed: {}", String::from_utf8_lossy(&out.stderr)));
        parsed
    });
    println!(
        "\n{threads} threads, {} timed runs each (median)",
        args.runs
    );
    println!(
        "{:<20} {:>12} {:>12} {:>8} {:>10}",
        "query", "fleetflow ms", "DuckDB ms", "ratio", "rows"
    );
    for (name, ms, rows) in ours {
        let theirs = duckdb.as_ref().and_then(|d| {
            let mut t: Vec<f64> = d[name.trim_end_matches("_scan")]
                .as_array()?
                .iter()
                .filter_map(serde_json::Value::as_f64)
                .collect();
            Some(median(&mut t))
        });
        match theirs {
            Some(t) => println!(
                "{name:<20} {:>12.1} {:>12.1} {:>8.2} {rows:>10}",
                ms * 1e3,
                t * 1e3,
                ms / t
            ),
            None => println!(
                "{name:<20} {:>12.1} {:>12} {:>8} {rows:>10}",
                ms * 1e3,
                "-",
                "-"
            ),
        }
    }
    println!("(ratio = fleetflow / DuckDB: below 1 is faster)");
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// The hourly chart from every position (DuckDB's query too).
const HOURLY_CHART_SCAN: &str = "SELECT date_trunc('hour', time) AS hour, count(*), avg(speed_kmh) \
     FROM positions WHERE NOT invalid AND NOT jump GROUP BY 1 ORDER BY 1";

/// The daily per-vehicle table from positions and the current trips (`{trips}`).
const VEHICLE_DAILY_SCAN: &str = "SELECT p.company, p.vehicle, p.date, t.trips, t.distance_m, \
     p.fixes, p.max_speed_kmh FROM \
     (SELECT company, vehicle, date, count(*) AS fixes, max(speed_kmh) AS max_speed_kmh \
      FROM positions WHERE NOT invalid AND NOT jump GROUP BY 1, 2, 3) p \
     LEFT JOIN (SELECT company, vehicle, date, count(*) AS trips, sum(distance_m) AS distance_m \
      FROM {trips} GROUP BY 1, 2, 3) t \
     ON p.company = t.company AND p.vehicle = t.vehicle AND p.date = t.date \
     ORDER BY p.vehicle, p.date";

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn chrono_date(days: i64) -> String {
    fleetflow_model::partition_dir(days * 86_400_000)
        .trim_start_matches("date=")
        .to_owned()
}
