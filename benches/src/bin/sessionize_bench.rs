//! Sessionization throughput, printed as a report:
//!
//! 1. the sessionizer alone on one thread (admit + settle, records already decoded), and what
//!    the sink's rollup changes add to it (each epoch's fixes and trip changes accumulated, the
//!    rows of every rollup made every 10 epochs, about one flush window of fixes);
//! 2. the sessionizer alone with its archive and a 10-minute horizon: in order (without and with
//!    the archive), and with 1% of records arriving beyond the horizon (repairs), with the cost
//!    of one repair (`--only repair`);
//! 3. the timely dataflow (decode, exchange by vehicle, sessionize) at 1 and 2 workers;
//! 4. the same dataflow with the Parquet sink (sorted zstd files, commits), and bytes per point.
//!
//! Input: a seeded synthetic fleet (`fleetflow_pipeline::synthetic`): vehicles that park, drive,
//! lose GPS and jump, half with ignition, 60-fix records, 10% delivered late, 5% twice.
//! `--export FILE` also writes the fixes as CSV for the DuckDB/Pathway comparison
//! (`benches/compare/sessions_compare.py`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use fleetflow_model::{Item, Rollup, TelemetryRecord, TripRules, encode_to_vec};
use fleetflow_pipeline::rollups::rollup_changes::RollupChanges;
use fleetflow_pipeline::sink::parquet_sink::{SinkConfig, WriteParquet};
use fleetflow_pipeline::synthetic::{Delivery, FleetShape, deliver, generate};
use fleetflow_pipeline::trips::archive::Archive;
use fleetflow_pipeline::{
    Epoch, Outputs, Provenance, RawRecord, RuleBook, Sessionize, Sessionizer,
};
use timely::dataflow::InputHandleVec;
use timely::dataflow::operators::Probe;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value_t = 2_000)]
    vehicles: usize,
    #[arg(long, default_value_t = 2_500)]
    fixes_per_vehicle: usize,
    /// Records per dataflow epoch.
    #[arg(long, default_value_t = 2_000)]
    epoch_records: usize,
    /// Gap (s) for the trip rules, to match the comparison's session gap.
    #[arg(long, default_value_t = 3600)]
    gap_secs: u32,
    /// Write the fixes as CSV (vehicle,time_ms,lat,lon,speed_kmh) in arrival order and exit.
    #[arg(long)]
    export: Option<PathBuf>,
    /// Only the named stages (alone, repair, dataflow, parquet); default all.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

fn rules(gap_secs: u32) -> RuleBook {
    RuleBook::new(&TripRules {
        gap_secs,
        ..TripRules::default()
    })
}

fn points(records: &[TelemetryRecord]) -> usize {
    records.iter().map(TelemetryRecord::fix_count).sum()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let shape = FleetShape {
        vehicles: args.vehicles,
        fixes_per_vehicle: args.fixes_per_vehicle,
        ..FleetShape::default()
    };
    let started = Instant::now();
    // Late records arrive up to three rounds of the fleet after their turn.
    let delivery = Delivery {
        max_delay: args.vehicles * 3,
        ..Delivery::default()
    };
    let records = deliver(generate(&shape), &delivery);
    let n_points = points(&records);
    eprintln!(
        "input: {} vehicles, {} records, {} fixes (with late and duplicate deliveries), generated in {:.1}s",
        args.vehicles,
        records.len(),
        n_points,
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.export {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(out, "vehicle,time_ms,lat,lon,speed_kmh")?;
        for r in &records {
            for item in &r.items {
                if let Item::Fix(f) = item {
                    writeln!(
                        out,
                        "{},{},{},{},{}",
                        r.vehicle,
                        f.time_ms,
                        f.lat(),
                        f.lon(),
                        f32::from(f.speed_dkmh) / 10.0
                    )?;
                }
            }
        }
        out.flush()?;
        eprintln!("exported {n_points} fixes to {}", path.display());
        return Ok(());
    }
    let want = |stage: &str| args.only.is_empty() || args.only.iter().any(|s| s == stage);
    println!(
        "machine: {} cores; fixes: {n_points}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    if want("alone") {
        let started = Instant::now();
        let mut s = Sessionizer::new(rules(args.gap_secs), i64::MAX);
        let mut trips = 0isize;
        let mut rollups = RollupChanges::default();
        let mut rollup_secs = 0.0;
        for (e, chunk) in records.chunks(args.epoch_records).enumerate() {
            let mut out = Outputs::default();
            for (i, r) in chunk.iter().enumerate() {
                s.admit(
                    r,
                    Provenance {
                        partition: 0,
                        offset: (e * args.epoch_records + i) as i64,
                    },
                    &mut out,
                );
            }
            s.settle(&mut out);
            trips += out.trips.iter().map(|(_, d)| d).sum::<isize>();
            let rolled = Instant::now();
            rollups.add_positions(&out.positions);
            rollups.add_trips(out.trips.iter().map(|(t, d)| (t, *d)));
            if e % 10 == 9 {
                for rollup in Rollup::ALL {
                    std::hint::black_box(rollups.rows(rollup));
                }
                rollups = RollupChanges::default();
            }
            rollup_secs += rolled.elapsed().as_secs_f64();
        }
        let secs = started.elapsed().as_secs_f64() - rollup_secs;
        println!(
            "sessionizer alone, 1 thread: {:.2}M fixes/s ({secs:.2}s; {trips} trips; {:?})",
            n_points as f64 / secs / 1e6,
            s.stats()
        );
        println!(
            "rollup changes of its output, 1 thread: {:.1}M fixes/s ({rollup_secs:.3}s, {:.1}% of the sessionizer's time)",
            n_points as f64 / rollup_secs / 1e6,
            100.0 * rollup_secs / secs
        );
    }

    if want("repair") {
        repair_stage(&shape, &args)?;
    }

    let raw: Arc<Vec<Vec<RawRecord>>> = Arc::new(
        records
            .chunks(args.epoch_records)
            .enumerate()
            .map(|(e, chunk)| {
                chunk
                    .iter()
                    .enumerate()
                    .map(|(i, r)| RawRecord {
                        partition: 0,
                        offset: (e * args.epoch_records + i) as i64,
                        key: Some(r.vehicle.clone().into_bytes()),
                        payload: encode_to_vec(r),
                    })
                    .collect()
            })
            .collect(),
    );
    let bytes: usize = raw.iter().flatten().map(|r| r.payload.len()).sum();
    println!(
        "encoded records: {:.1} MB ({:.1} B/fix)",
        bytes as f64 / 1e6,
        bytes as f64 / n_points as f64
    );

    for workers in [1, 2] {
        if want("dataflow") {
            let secs = run_dataflow(workers, raw.clone(), None, args.gap_secs);
            println!(
                "dataflow (decode + exchange + sessionize), {workers} worker(s): {:.2}M fixes/s ({:.2}M/s per worker; {secs:.2}s)",
                n_points as f64 / secs / 1e6,
                n_points as f64 / secs / 1e6 / workers as f64
            );
        }
        if want("parquet") {
            let dir = std::env::temp_dir()
                .join(format!("fleetflow-bench-{}-{workers}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let secs = run_dataflow(workers, raw.clone(), Some(dir.clone()), args.gap_secs);
            let sizes = table_sizes(&dir);
            let positions = sizes
                .iter()
                .find(|(t, _)| t == "positions")
                .map_or(0, |(_, b)| *b);
            println!(
                "dataflow + Parquet sink, {workers} worker(s): {:.2}M fixes/s ({secs:.2}s); positions {:.1} B/fix; all tables {}",
                n_points as f64 / secs / 1e6,
                positions as f64 / n_points as f64,
                sizes
                    .iter()
                    .map(|(t, b)| format!("{t}={:.1}MB", *b as f64 / 1e6))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    Ok(())
}

/// The sessionizer alone with its archive and a 10-minute horizon, on the fleet in order, then
/// with 1% of the records delivered beyond the horizon (each moved later by twice the horizon of
/// fleet time): throughput of both, and the cost of one repair.
fn repair_stage(shape: &FleetShape, args: &Args) -> anyhow::Result<()> {
    const HORIZON_MS: i64 = 600_000;
    let in_order = generate(shape);
    // Records per second of fleet time: one 60-fix record per vehicle per minute.
    let per_horizon = args.vehicles * (HORIZON_MS / 60_000) as usize;
    let mut keyed: Vec<(usize, TelemetryRecord)> = in_order.iter().cloned().enumerate().collect();
    for (i, slot) in keyed.iter_mut().enumerate() {
        // 1% of the records, picked by a hash of the index (so spread over the vehicles).
        if ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) & 0xffff < 656 {
            slot.0 = i + 2 * per_horizon;
        }
    }
    keyed.sort_by_key(|(at, _)| *at);
    let late: Vec<TelemetryRecord> = keyed.into_iter().map(|(_, r)| r).collect();
    let n_points = points(&in_order);
    let runs = [
        ("in order, no archive", &in_order, false),
        ("in order", &in_order, true),
        ("1% beyond the horizon", &late, true),
    ];
    for (name, records, archived) in runs {
        let dir =
            std::env::temp_dir().join(format!("fleetflow-bench-archive-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = Sessionizer::new(rules(args.gap_secs), HORIZON_MS);
        if archived {
            s = s.with_archive(Archive::open(&dir, 0, 1, 0, true)?);
        }
        let started = Instant::now();
        for (e, chunk) in records.chunks(args.epoch_records).enumerate() {
            s.begin_epoch(e as u64 + 1);
            let mut out = Outputs::default();
            for (i, r) in chunk.iter().enumerate() {
                let from = Provenance {
                    partition: 0,
                    offset: (e * args.epoch_records + i) as i64,
                };
                s.admit(r, from, &mut out);
            }
            s.settle(&mut out);
        }
        let secs = started.elapsed().as_secs_f64();
        let stats = s.stats();
        let archived = s.archive_stats().unwrap_or_default();
        drop(s);
        let disk: u64 = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        let repairs = stats.repairs.max(1) as f64;
        println!(
            "sessionizer + archive, horizon 10 min, {name}: {:.2}M fixes/s ({secs:.2}s); {} repairs, {} items merged, {:.2} ms and {:.0} archived entries re-read per repair; chunks {:.1} B per fix archived, archive files {:.1} B ({} chunks written)",
            n_points as f64 / secs / 1e6,
            stats.repairs,
            stats.repaired_items,
            stats.repair_ns as f64 / 1e6 / repairs,
            archived.entries_read as f64 / repairs,
            archived.bytes_written as f64 / archived.entries_written.max(1) as f64,
            disk as f64 / archived.entries_written.max(1) as f64,
            archived.chunks_written,
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Runs the dataflow over the prepared epochs; returns seconds.
fn run_dataflow(
    workers: usize,
    raw: Arc<Vec<Vec<RawRecord>>>,
    parquet: Option<PathBuf>,
    gap_secs: u32,
) -> f64 {
    let started = Instant::now();
    timely::execute(timely::Config::process(workers), move |worker| {
        let mut input = InputHandleVec::<Epoch, RawRecord>::new();
        let parquet = parquet.clone();
        let probe = worker.dataflow::<Epoch, _, _>(|scope| {
            let streams = input
                .to_stream(scope)
                .sessionize(move || Sessionizer::new(rules(gap_secs), i64::MAX));
            // Flow control on the sessionizer's output; the sink closes a window every 5 epochs.
            let (probe, positions) = streams.positions.probe();
            if let Some(dir) = parquet {
                let offsets = timely::dataflow::operators::generic::operator::empty(scope);
                let config =
                    SinkConfig::new(fleetflow_tables::commit_log::CommitLog::new(dir), 5, None);
                let streams = fleetflow_pipeline::SessionStreams {
                    positions,
                    ..streams
                };
                streams.write_parquet(offsets, config);
            }
            probe
        });
        let peers = worker.peers();
        // Timestamp 0 means replay (the sink drops it): start at 1.
        input.advance_to(1);
        for (epoch, batch) in raw.iter().enumerate() {
            let epoch = epoch + 1;
            // Each worker feeds its share, as each would read its own Kafka partitions.
            for (i, r) in batch.iter().enumerate() {
                if i % peers == worker.index() {
                    input.send(r.clone());
                }
            }
            input.advance_to(epoch as Epoch + 1);
            worker.step_while(|| probe.less_than(&(epoch as Epoch).saturating_sub(4)));
        }
        input.close();
        while worker.step() {}
    })
    .expect("timely");
    started.elapsed().as_secs_f64()
}

fn table_sizes(dir: &std::path::Path) -> Vec<(String, u64)> {
    fleetflow_model::Table::ALL
        .iter()
        .map(|t| {
            let bytes = fleetflow_tables::table_reader::table_files(dir, *t)
                .unwrap_or_default()
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum();
            (t.name().to_owned(), bytes)
        })
        .collect()
}
