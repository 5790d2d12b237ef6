//! The emulator run: one tokio task per vehicle pulling events from its [`Vehicle`] and sending
//! each when the simulated clock reaches it, plus the reporting loop and an orderly stop.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::EmulatorConfig;
use crate::device::vehicle::{Vehicle, VehicleParams};
use crate::error::EmulatorError;
use crate::fleet::delivery::{Delivery, halted};
use crate::fleet::http_client::MonicarClient;
use crate::fleet::rate_limit::RateLimiter;
use crate::fleet::report::Report;
use crate::fleet::stats::{LiveStats, Reporter};
use crate::world::road_grid::RoadGrid;
use crate::world::sim_clock::{SimClock, now_epoch_ms};

/// How long vehicles get, beyond one request timeout, to wind down after the stop.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Runs the fleet until `stop` turns true or `config.duration` passes, calling `on_report` every
/// `config.report_every`, and returns the cumulative report.
pub async fn run(
    config: EmulatorConfig,
    mut stop: watch::Receiver<bool>,
    mut on_report: impl FnMut(&Report) + Send,
) -> Result<Report, EmulatorError> {
    config.validate()?;
    let client = MonicarClient::new(
        &config.target,
        config.token.as_deref(),
        config.request_timeout,
        config.max_in_flight,
    )?;
    let histogram_error = |e: hdrhistogram::CreationError| EmulatorError::BadConfig(e.to_string());
    let stats = Arc::new(LiveStats::new().map_err(histogram_error)?);
    let mut reporter = Reporter::new(config.vehicles).map_err(histogram_error)?;
    let delivery = Arc::new(Delivery {
        client,
        stats: stats.clone(),
        rate: config.rate_limit.and_then(RateLimiter::new),
        in_flight: Semaphore::new(config.max_in_flight.min(Semaphore::MAX_PERMITS)),
    });
    let grid = Arc::new(RoadGrid::new(
        config.seed,
        config.center,
        config.city_span_m,
    ));
    let clock = SimClock::new(config.start_ms.unwrap_or_else(now_epoch_ms), config.speedup);
    tracing::info!(
        vehicles = config.vehicles,
        target = %config.target,
        speedup = config.speedup,
        streets = u32::from(grid.columns()) + u32::from(grid.rows()),
        "emulator starting"
    );

    let (halt_tx, halt_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for index in 0..config.vehicles {
        let params = VehicleParams {
            seed: config.seed,
            index,
            start_ms: clock.start_ms(),
            mdn_base: config.mdn_base,
        };
        let vehicle = Vehicle::new(grid.clone(), params);
        tasks.spawn(drive(vehicle, clock, delivery.clone(), halt_rx.clone()));
    }
    drop(halt_rx);

    let start = clock.wall_start();
    let deadline = config.duration.and_then(|d| start.checked_add(d));
    let mut ticker = tokio::time::interval_at(start + config.report_every, config.report_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = halted(&mut stop) => break,
            () = until(deadline) => break,
            _ = ticker.tick() => {
                let report = reporter.interval(&stats, start.elapsed(), clock.sim_now_ms());
                on_report(&report);
            }
        }
    }

    let _ = halt_tx.send(true);
    let wind_down = async {
        while let Some(joined) = tasks.join_next().await {
            if let Err(error) = joined
                && error.is_panic()
            {
                tracing::error!(%error, "a vehicle task panicked");
            }
        }
    };
    // Requests already sent finish (each within the request timeout) and are counted.
    let grace = config.request_timeout.saturating_add(STOP_GRACE);
    if tokio::time::timeout(grace, wind_down).await.is_err() {
        tasks.abort_all();
    }
    Ok(reporter.finish(&stats, start.elapsed(), clock.sim_now_ms()))
}

/// One vehicle: wait for each event's simulated time, then deliver it; strictly one at a time.
async fn drive(
    mut vehicle: Vehicle,
    clock: SimClock,
    delivery: Arc<Delivery>,
    mut halt: watch::Receiver<bool>,
) {
    loop {
        // Wait first and build the body when due: sleeping vehicles hold no bodies.
        let due = clock.wall_due(vehicle.next_due_ms());
        tokio::select! {
            biased;
            () = halted(&mut halt) => return,
            () = tokio::time::sleep_until(due) => {}
        }
        let event = vehicle.next_event();
        if !delivery.deliver(&event, &mut halt).await {
            return;
        }
    }
}

/// Resolves at `deadline`, or never.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
