//! What geofences cost the dataflow, printed as a report:
//!
//! 1. building the index of `--geofences` geofences (half circles of 50-200 m, half squares of
//!    100-400 m, over the synthetic fleet's area);
//! 2. the per-fix cost of asking it which geofences hold a fix, at random points of the area;
//! 3. the sessionizer alone on one thread (admit + settle) over a seeded synthetic fleet,
//!    without geofences and with them, alternated, and the visits and events they made.

use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use fleetflow_geofences::{Geofence, GeofenceIndex, NewGeofence};
use fleetflow_model::geo::LatLonE7;
use fleetflow_model::{TelemetryRecord, TripRules};
use fleetflow_pipeline::synthetic::{Delivery, FleetShape, deliver, generate};
use fleetflow_pipeline::{Outputs, Provenance, RuleBook, Sessionizer};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    geofences: usize,
    #[arg(long, default_value_t = 2_000)]
    vehicles: usize,
    #[arg(long, default_value_t = 1_500)]
    fixes_per_vehicle: usize,
    /// Random points for the per-fix cost.
    #[arg(long, default_value_t = 2_000_000)]
    points: usize,
    /// Sessionizer runs of each kind (alternated).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// The synthetic fleet's area (`fleetflow_pipeline::synthetic`): lat 37.40-37.70, lon
/// 126.80-127.20 at the start, and its vehicles' companies `co0`..`co2`.
fn geofences(n: usize) -> Vec<Geofence> {
    let mut rng = SmallRng::seed_from_u64(42);
    (0..n)
        .map(|i| {
            let lat = 37.40 + rng.random::<f64>() * 0.3;
            let lon = 126.80 + rng.random::<f64>() * 0.4;
            let request = if i % 2 == 0 {
                json!({"name": "site", "center": {"lat": lat, "lon": lon},
                    "radius_m": 50.0 + rng.random::<f64>() * 150.0})
            } else {
                let d = (100.0 + rng.random::<f64>() * 300.0) / 111_000.0;
                let e = d / lat.to_radians().cos();
                json!({"name": "depot", "geometry": {"type": "Polygon", "coordinates": [[
                    [lon, lat], [lon + e, lat], [lon + e, lat + d], [lon, lat + d], [lon, lat]
                ]]}})
            };
            let version = serde_json::from_value::<NewGeofence>(request)
                .expect("a request")
                .validate(0)
                .expect("a valid geofence");
            Geofence {
                id: format!("g{i}"),
                company: format!("co{}", i % 3),
                versions: vec![version],
                deleted_ms: None,
            }
        })
        .collect()
}

/// One sessionizer pass over `records` in batches of 2,000; returns (seconds, visit updates,
/// geofence events).
fn sessionize(
    records: &[TelemetryRecord],
    index: Option<Arc<GeofenceIndex>>,
) -> (f64, usize, usize) {
    let mut s = Sessionizer::new(RuleBook::new(&TripRules::default()), 3_600_000);
    if let Some(index) = index {
        s.set_geofences(index, None);
    }
    let (mut visits, mut events) = (0, 0);
    let started = Instant::now();
    for (n, chunk) in records.chunks(2_000).enumerate() {
        let mut out = Outputs::default();
        for (i, r) in chunk.iter().enumerate() {
            let from = Provenance {
                partition: 0,
                offset: (n * 2_000 + i) as i64,
            };
            s.admit(r, from, &mut out);
        }
        s.settle(&mut out);
        visits += out.visits.len();
        events += out.events.iter().filter(|e| e.geofence.is_some()).count();
    }
    (started.elapsed().as_secs_f64(), visits, events)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!("geofence_bench: {} geofences", args.geofences);

    let fences = geofences(args.geofences);
    let started = Instant::now();
    let index = Arc::new(GeofenceIndex::build(&fences));
    println!(
        "index: {} versions built in {:.1} ms",
        index.len(),
        started.elapsed().as_secs_f64() * 1e3
    );

    let mut rng = SmallRng::seed_from_u64(7);
    let points: Vec<LatLonE7> = (0..args.points)
        .map(|_| {
            LatLonE7::new(
                ((37.40 + rng.random::<f64>() * 0.3) * 1e7) as i32,
                ((126.80 + rng.random::<f64>() * 0.4) * 1e7) as i32,
            )
        })
        .collect();
    let mut inside = Vec::new();
    let mut hits = 0;
    let started = Instant::now();
    let companies: Vec<_> = ["co0", "co1", "co2"]
        .iter()
        .map(|c| index.company(c).expect("each company has geofences"))
        .collect();
    for (i, p) in points.iter().enumerate() {
        companies[i % 3].containing(*p, 1, &mut inside);
        hits += inside.len();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "per fix: {:.0} ns ({} points, {:.3} geofences hold a point on average)",
        secs * 1e9 / args.points as f64,
        args.points,
        hits as f64 / args.points as f64
    );

    let shape = FleetShape {
        vehicles: args.vehicles,
        fixes_per_vehicle: args.fixes_per_vehicle,
        seed: 11,
        start_ms: 1_606_866_600_000,
        ..FleetShape::default()
    };
    let delivery = Delivery {
        late_share: 0.1,
        max_delay: 300,
        duplicate_share: 0.05,
        seed: 12,
    };
    let records = deliver(generate(&shape), &delivery);
    let fixes: usize = records.iter().map(TelemetryRecord::fix_count).sum();
    println!(
        "sessionizer alone, {} vehicles, {fixes} fixes, {} runs each, alternated:",
        args.vehicles, args.runs
    );
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        let (secs, _, _) = sessionize(&records, None);
        without.push(fixes as f64 / secs);
        let (secs, visits, events) = sessionize(&records, Some(index.clone()));
        with.push(fixes as f64 / secs);
        println!(
            "  without: {:.2}M fixes/s   with: {:.2}M fixes/s   ({visits} visit updates, {events} geofence events)",
            without.last().copied().unwrap_or(0.0) / 1e6,
            with.last().copied().unwrap_or(0.0) / 1e6,
        );
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    println!(
        "best: without {:.2}M fixes/s, with {:.2}M fixes/s ({:+.1}%)",
        best(&without) / 1e6,
        best(&with) / 1e6,
        (best(&with) / best(&without) - 1.0) * 100.0
    );
    Ok(())
}
