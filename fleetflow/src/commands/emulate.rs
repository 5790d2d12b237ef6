//! `fleetflow emulate`: Monicar-style vehicles against an ingest endpoint, with a live report.

use std::time::Duration;

use clap::Args;
use fleetflow_emulator::EmulatorConfig;

use crate::error::AppError;
use crate::http::server::shutdown_signal;

#[derive(Debug, Clone, Args)]
pub struct EmulateArgs {
    /// Number of vehicles.
    #[arg(long, default_value_t = 100)]
    pub vehicles: usize,
    /// Base URL of the ingest service.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// Seed: the same seed drives the same routes and sends the same bodies.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Time compression: simulated seconds per wall second (each vehicle posts its 60-point
    /// batch every 60/speedup wall seconds).
    #[arg(long, default_value_t = 1.0)]
    pub speedup: f64,
    /// At most this many requests per second, all vehicles together.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Stop after this many wall seconds (default: until Ctrl-C).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Company ingest token (sent as `Authorization: Bearer`).
    #[arg(long)]
    pub token: Option<String>,
    /// Start the simulated clock this many seconds before now (fleetflow refuses fixes more
    /// than 24 h in its future, so long runs at high speedup should start in the past).
    #[arg(long, default_value_t = 0)]
    pub start_ago: u64,
    /// Seconds between report lines.
    #[arg(long, default_value_t = 5)]
    pub report_every: u64,
    /// The first vehicle's mdn; vehicle i is mdn-base + i.
    #[arg(long, default_value_t = 2_254_690_000)]
    pub mdn_base: i64,
}

pub async fn emulate(args: EmulateArgs) -> Result<(), AppError> {
    if !(args.speedup.is_finite() && args.speedup > 0.0) {
        return Err(AppError::Config(
            "--speedup must be a positive number".to_owned(),
        ));
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| AppError::Internal(e.to_string()))?
        .as_millis() as i64;
    let defaults = EmulatorConfig::default();
    let config = EmulatorConfig {
        vehicles: args.vehicles,
        target: args.target,
        seed: args.seed,
        speedup: args.speedup,
        rate_limit: args.rate,
        duration: args.duration.map(Duration::from_secs),
        token: args.token,
        start_ms: Some(now_ms - (args.start_ago as i64) * 1_000),
        mdn_base: args.mdn_base,
        report_every: Duration::from_secs(args.report_every.max(1)),
        ..defaults
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    println!(
        "emulating {} vehicles against {} (speedup {}x)",
        config.vehicles, config.target, config.speedup
    );
    let report = fleetflow_emulator::run(config, stop_rx, |report| println!("{report}"))
        .await
        .map_err(|e| AppError::Emulator(e.to_string()))?;
    println!("total: {report}");
    Ok(())
}
