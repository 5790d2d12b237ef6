//! Memory per tracked vehicle of the live views (issue 4).
//!
//! `benches/scripts/run live_memory --vehicles 100000`
//!
//! It builds the live views (the differential views with their arrangements and temporal-filter
//! buffers) and the live store (the vehicle table with states, offline flags and totals,
//! leaderboards, grid index, change log), and feeds them `--vehicles` vehicles as the
//! sessionizer would: a live state, a last-heard time and `--trips` trips each, in timestamps
//! of `--per-tick` vehicles. Then every vehicle reports once more over `--steady-ms` (its fix,
//! last-heard time and open trip replaced, as in a running pipeline), which leaves what
//! replaced state costs: arrangement history not yet merged away, and the allocator's free
//! pages. It reports, per vehicle, live heap bytes (what the program holds,
//! counted by a wrapper around the allocator, so the allocator's own slack is left out) and
//! resident memory (which includes the allocator's retained and fragmented pages), with the
//! dataflow alive; `--no-store` leaves the store out, and `--views offline,totals,...` builds
//! only those differential views (with what they are computed from), to see what each holds.
//!
//! It allocates with mimalloc, as the `fleetflow` binary does; built with the `system-alloc`
//! feature it uses the system allocator (glibc) instead, to compare.

use std::sync::Arc;

use cap::Cap;
use clap::Parser;
use differential_dataflow::collection::vec::Collection;
use differential_dataflow::input::InputSession;
use fleetflow_live_store::alerts::Alert;
use fleetflow_live_store::store::{LiveStore, LiveStoreConfig};
use fleetflow_pipeline::job::PipelineConfig;
use fleetflow_pipeline::live::period_totals::PeriodTotals;
use fleetflow_pipeline::live::publish::PublishLive;
use fleetflow_pipeline::live::routes::recent_fixes;
use fleetflow_pipeline::live::views::{
    LiveViewConfig, fleet_summary, leaderboards, live_views, offline,
};
use fleetflow_pipeline::rows::PositionRow;
use fleetflow_pipeline::{
    IgnitionState, LastHeard, LiveFix, MachineLive, Motion, Trip, TripRecord, TripRule, VehicleLive,
};
use timely::dataflow::InputHandleVec;
use timely::dataflow::operators::Probe;
use timely::dataflow::{ProbeHandle, Scope};

#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: Cap<mimalloc::MiMalloc> = Cap::new(mimalloc::MiMalloc, usize::MAX);
#[cfg(feature = "system-alloc")]
#[global_allocator]
static GLOBAL: Cap<std::alloc::System> = Cap::new(std::alloc::System, usize::MAX);

#[derive(Debug, Parser)]
struct Args {
    /// Vehicles tracked.
    #[arg(long, default_value_t = 100_000)]
    vehicles: usize,
    /// Vehicles per dataflow timestamp (the rest of the views' work is per timestamp).
    #[arg(long, default_value_t = 5_000)]
    per_tick: usize,
    /// Trips per vehicle (this week's, the newest today).
    #[arg(long, default_value_t = 1)]
    trips: usize,
    /// Companies the vehicles are spread over.
    #[arg(long, default_value_t = 20)]
    companies: usize,
    /// Leave the live store out: measure the differential views alone.
    #[arg(long)]
    no_store: bool,
    /// Build only these views, without the store (`summary` includes `offline`, `leaders`
    /// includes `totals`).
    #[arg(long, value_delimiter = ',')]
    views: Vec<View>,
    /// After loading, every vehicle reports once more (its fix, last-heard time and open trip
    /// replaced), spread over this many milliseconds at one timestamp per pipeline tick, and
    /// then it measures: the steady state of a running pipeline, whose state is replaced as
    /// devices report, rather than the state just after a bulk load. (mimalloc returns freed
    /// pages on later calls, once they have been free for its purge delay, 1 s by default.)
    #[arg(long, default_value_t = 10_000)]
    steady_ms: u64,
    /// How many times every vehicle reports again, `--steady-ms` each (0: measure right after
    /// loading).
    #[arg(long, default_value_t = 1)]
    rounds: u64,
}

/// A differential view that can be built alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum View {
    /// None: the inputs and the vehicles' names alone, the baseline of the others.
    Inputs,
    Offline,
    Summary,
    Totals,
    Leaders,
}

/// Bytes the program holds on the heap now.
fn heap() -> i64 {
    GLOBAL.allocated() as i64
}

fn main() {
    let args = Args::parse();
    let n = args.vehicles;
    let (heap_before, rss_before) = (heap(), fleetflow_benches::resident_bytes() as i64);
    let now_ms: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let store = Arc::new(LiveStore::new(LiveStoreConfig::default()));
    let worker_store = store.clone();
    let views = args.views.clone();
    let no_store = args.no_store || !views.is_empty();
    let (steady_ms, rounds) = (args.steady_ms, args.rounds);
    let (per_tick, companies, trips) = (
        args.per_tick.max(1),
        args.companies.max(1),
        args.trips.max(1),
    );
    let (heap_alive, rss_alive) = timely::execute_directly(move |worker| {
        let mut inputs = Inputs::new();
        let probe = worker.dataflow::<u64, _, _>(|scope| {
            if !views.is_empty() {
                return some_views(&views, &mut inputs, scope);
            }
            let views = live_views(
                inputs.vehicles.to_collection(scope),
                inputs.heard.to_collection(scope),
                inputs.trips.to_collection(scope),
                recent_fixes(
                    inputs.positions.to_stream(scope),
                    LiveViewConfig::default().route_window_ms,
                )
                .0,
                &LiveViewConfig::default(),
            );
            let rows = views.rows();
            let probe = rows.inner.clone().probe().0;
            if !no_store {
                rows.publish_live(inputs.alerts.to_stream(scope), worker_store.clone());
            }
            probe
        });
        // Every view has applied `time` (and the store too, unless left out).
        let settled = |time: u64| {
            !probe.less_than(&time) && (no_store || worker_store.read(|s| s.upto) >= time)
        };
        let names: Vec<Names> = (0..n).map(|i| names(i, companies)).collect();
        let mut time = now_ms;
        for start in (0..n).step_by(per_tick) {
            time += 1;
            let loading = start..(start + per_tick).min(n);
            inputs.feed(
                loading.map(|i| (vehicle(i, &names[i], trips, now_ms, 0), 1)),
                time,
            );
            while !settled(time) {
                worker.step();
            }
        }
        // Then the steady state: each vehicle's next report replaces the one before.
        let tick = PipelineConfig::default().tick_ms;
        let ticks = steady_ms.div_ceil(tick).max(1) as usize;
        let per_steady_tick = n.div_ceil(ticks);
        for (report, k) in (1..=rounds).flat_map(|r| (0..ticks).map(move |k| (r, k))) {
            std::thread::sleep(std::time::Duration::from_millis(tick));
            time += 1;
            let reporting = (k * per_steady_tick).min(n)..((k + 1) * per_steady_tick).min(n);
            inputs.feed(
                reporting.flat_map(|i| {
                    [
                        (vehicle(i, &names[i], trips, now_ms, report - 1), -1),
                        (vehicle(i, &names[i], trips, now_ms, report), 1),
                    ]
                }),
                time,
            );
            while !settled(time) {
                worker.step();
            }
        }
        // Measured while the dataflow and its arrangements are alive.
        (heap(), fleetflow_benches::resident_bytes() as i64)
    });
    let held = store.read(|s| s.vehicles.len());
    let per = |bytes: i64| bytes as f64 / n as f64;
    println!(
        "live views, {held} vehicles in {companies} companies, {trips} trip(s) each, {per_tick} per timestamp:"
    );
    println!(
        "  heap: {:.1} MB -> {:.1} MB, {:.0} bytes per vehicle",
        heap_before as f64 / 1e6,
        heap_alive as f64 / 1e6,
        per(heap_alive - heap_before),
    );
    println!(
        "  resident: {:.1} MB -> {:.1} MB, {:.0} bytes per vehicle",
        rss_before as f64 / 1e6,
        rss_alive as f64 / 1e6,
        per(rss_alive - rss_before),
    );
}

/// Builds the selected views alone; a probe of all of them.
fn some_views<'scope>(
    views: &[View],
    inputs: &mut Inputs,
    scope: Scope<'scope, u64>,
) -> ProbeHandle<u64> {
    let config = LiveViewConfig::default();
    let has = |v: View| views.contains(&v);
    // Every input is bound and drained (an unbound input would keep what it is sent).
    let vehicles = inputs.vehicles.to_collection(scope);
    let heard = inputs.heard.to_collection(scope);
    let trips = inputs.trips.to_collection(scope);
    let mut built: Vec<Collection<'scope, u64, ()>> = vec![
        vehicles.clone().map(|_| ()),
        heard.clone().map(|_| ()),
        trips.clone().map(|_| ()),
    ];
    if has(View::Offline) || has(View::Summary) {
        let gone = offline(heard, config.offline_after_ms);
        if has(View::Summary) {
            built.push(fleet_summary(vehicles, gone.clone()).map(|_| ()));
        }
        built.push(gone.map(|_| ()));
    }
    if has(View::Totals) || has(View::Leaders) {
        let totals = trips.period_totals();
        if has(View::Leaders) {
            built.push(leaderboards(totals.clone(), config.leaderboard_top).map(|_| ()));
        }
        built.push(totals.map(|_| ()));
    }
    let first = built.remove(0);
    first.concatenate(built).inner.probe().0
}

/// The sessionizer's output for vehicle `i` after its `report`-th report (one a minute from
/// `now_ms`): its live state, last-heard time and `trips` trips, one every 6 hours back from
/// now, the newest still open and growing.
fn vehicle(i: usize, names: &Names, trips: usize, now_ms: u64, report: u64) -> Fed {
    let at_ms = now_ms + report * 60_000;
    let (company, vehicle) = names.clone();
    let first = Trip {
        start_ms: now_ms as i64 - 600_000,
        rule: TripRule::Ignition,
        start_pos: Some((375_000_000, 1_270_000_000)),
        end_ms: now_ms as i64,
        end_pos: Some((375_100_000, 1_270_100_000)),
        distance_mm: 5_000_000 + i as u64,
        device_distance_m: None,
        moving_ms: 500_000,
        idle_ms: 100_000,
        max_speed_dkmh: 800,
        points: 600,
        closed_by: None,
    };
    // The open trip as of this report: a minute longer per report.
    let trip = Trip {
        end_ms: at_ms as i64,
        distance_mm: first.distance_mm + report * 1_000_000,
        moving_ms: first.moving_ms + report as i64 * 60_000,
        points: first.points + report as u32 * 60,
        ..first
    };
    let live = VehicleLive {
        vehicle: vehicle.clone(),
        company: company.clone(),
        state: MachineLive {
            fix: Some(LiveFix {
                time_ms: at_ms as i64,
                lat_e7: 375_000_000 + (i as i32 % 1000) * 1000,
                lon_e7: 1_270_000_000 + (i as i32 / 1000) * 1000,
                speed_dkmh: 300,
            }),
            ignition: IgnitionState::On,
            open_trip: Some(trip),
            odometer_m: Some(12_345_000),
            motion: Motion::Moving,
            motion_since_ms: now_ms as i64 - 600_000,
        },
    };
    // Devices report every 60 s at their own phase, so last-heard times (which the offline
    // filter holds until the silence runs out) spread over a minute, in epochs of the
    // pipeline's default tick (50 ms).
    let tick = PipelineConfig::default().tick_ms;
    let heard = LastHeard {
        company: company.clone(),
        vehicle: vehicle.clone(),
        at_ms: (at_ms - (i as u64 * 7_919) % 60_000) / tick * tick,
        live: Some((live.state.ignition, live.state.motion)),
    };
    // The newest trip is open; the older ones are closed and do not change.
    let trips = (0..trips as i64)
        .map(|k| TripRecord {
            vehicle: vehicle.clone(),
            company: company.clone(),
            trip: match k {
                0 => trip,
                _ => Trip {
                    start_ms: first.start_ms - k * 6 * 3_600_000,
                    end_ms: first.end_ms - k * 6 * 3_600_000,
                    ..first
                },
            },
        })
        .collect();
    (live, heard, trips)
}

/// A vehicle's company and id. The sessionizer keeps one of each per vehicle, shared by every
/// record it emits for the vehicle, so a report does not copy them.
type Names = (Arc<str>, Arc<str>);

/// Vehicle `i`'s names (the table of them costs 32 bytes per vehicle that `fleetflow` does not
/// spend: the benchmark's, counted in its heap figure).
fn names(i: usize, companies: usize) -> Names {
    (
        format!("co{}", i % companies).into(),
        format!("{}", 1_000_000_000 + i).into(),
    )
}

/// What the sessionizer emits for one vehicle.
type Fed = (VehicleLive, LastHeard, Vec<TripRecord>);

/// The live views' inputs, as the sessionizer and the alert operator feed them.
struct Inputs {
    vehicles: InputSession<u64, VehicleLive, isize>,
    heard: InputSession<u64, LastHeard, isize>,
    trips: InputSession<u64, TripRecord, isize>,
    alerts: InputHandleVec<u64, Alert>,
    positions: InputHandleVec<u64, PositionRow>,
}

impl Inputs {
    fn new() -> Self {
        Inputs {
            vehicles: InputSession::new(),
            heard: InputSession::new(),
            trips: InputSession::new(),
            alerts: InputHandleVec::new(),
            positions: InputHandleVec::new(),
        }
    }

    /// Adds each of `fed` with its difference and closes every time before `next`.
    fn feed(&mut self, fed: impl Iterator<Item = (Fed, isize)>, next: u64) {
        for ((live, last, trips), diff) in fed {
            self.vehicles.update(live, diff);
            self.heard.update(last, diff);
            for trip in trips {
                self.trips.update(trip, diff);
            }
        }
        self.vehicles.advance_to(next);
        self.heard.advance_to(next);
        self.trips.advance_to(next);
        self.alerts.advance_to(next);
        self.positions.advance_to(next);
        self.vehicles.flush();
        self.heard.flush();
        self.trips.flush();
    }
}
