//! Webhook delivery benchmark (issue 41): events committed into the `events` table as the
//! pipeline commits them, dispatched into a subscription's outbox and POSTed to a local receiver
//! that answers 200. Prints how fast events reach outboxes (dispatch) and the receiver
//! (delivery), end to end from the first commit. With `--dead` the receiver answers 503 to
//! everything: how fast the dead-letter list fills once the receiver is down.
//!
//! `benches/scripts/run webhook_bench [--events N] [--commits C] [--max-requests R] [--dead]`

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use clap::Parser;
use fleetflow_tables::commit_log::{CommitLog, CommitWriter};
use fleetflow_webhooks::subscription::NewSubscription;
use fleetflow_webhooks::synthetic::commit_events;
use fleetflow_webhooks::{Format, Subscriptions, WebhookConfig, Webhooks};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
struct Args {
    /// Events to deliver.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Commits they arrive in (the pipeline commits once per flush window).
    #[arg(long, default_value_t = 100)]
    commits: usize,
    /// Requests in flight at once (`webhooks.max_requests`).
    #[arg(long, default_value_t = 4)]
    max_requests: usize,
    /// Events in their retry schedules at once (`webhooks.max_pending`).
    #[arg(long, default_value_t = 256)]
    max_pending: usize,
    /// A receiver that answers every request 503: how fast the dead-letter list fills.
    #[arg(long)]
    dead: bool,
    /// `webhooks.max_attempts`.
    #[arg(long, default_value_t = 8)]
    max_attempts: u32,
    /// `webhooks.initial_backoff_ms` (the retry window is about 2^max_attempts times it).
    #[arg(long, default_value_t = 1000)]
    initial_backoff_ms: u64,
}

const T0: i64 = 1_606_780_800_000;

async fn receive(State((count, dead)): State<(Arc<AtomicU64>, bool)>) -> StatusCode {
    count.fetch_add(1, Ordering::Relaxed);
    if dead {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("ff-webhook-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;

    let received = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state((received.clone(), args.dead));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    let subs = Arc::new(Subscriptions::open(&dir)?);
    subs.create(
        "acme",
        &NewSubscription {
            url: format!("http://{addr}/hook"),
            events: vec!["trip_end".into()],
            format: Format::Json,
            secret: Some("bench".into()),
            company: None,
        },
        0,
    )?;
    let config = WebhookConfig {
        poll_ms: 20,
        max_requests: args.max_requests,
        max_pending: args.max_pending,
        max_attempts: args.max_attempts,
        initial_backoff_ms: args.initial_backoff_ms,
        ..WebhookConfig::default()
    };
    let writer = CommitWriter::new(CommitLog::new(&dir), None);
    let prepared = Webhooks::prepare(&dir, &config, subs.clone())?;
    let webhooks = Webhooks::start(prepared, None)?;

    // The clock runs from the first commit (each writes its events file, as the sink does).
    let per_commit = args.events.div_ceil(args.commits.max(1));
    let vehicles: Vec<String> = (0..1000).map(|v| format!("v{v}")).collect();
    let start = Instant::now();
    let mut committed = 0;
    while committed < args.events {
        let n = per_commit.min(args.events - committed);
        let rows: Vec<(&str, &str, &str, i64)> = (committed..committed + n)
            .map(|i| {
                (
                    "acme",
                    vehicles[i % 1000].as_str(),
                    "trip_end",
                    T0 + i as i64,
                )
            })
            .collect();
        commit_events(&writer, &rows).map_err(anyhow::Error::msg)?;
        committed += n;
    }
    let committed_at = start.elapsed();
    let mut dispatched_at = None;
    loop {
        let counts = webhooks.stats.counts();
        if dispatched_at.is_none() && counts.dispatched >= args.events as u64 {
            dispatched_at = Some(start.elapsed());
        }
        let done = if args.dead {
            webhooks.dead_letters.total() >= args.events as u64
        } else {
            received.load(Ordering::Relaxed) >= args.events as u64 && counts.owed == 0
        };
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let delivered_at = start.elapsed();
    let rate = |d: Duration| args.events as f64 / d.as_secs_f64();
    let dispatched_at = dispatched_at.unwrap_or(delivered_at);
    println!(
        "{} events in {} commits, max_requests {}, max_pending {}",
        args.events, args.commits, args.max_requests, args.max_pending
    );
    println!(
        "committed in {:.2} s; dispatched to the outbox in {:.2} s ({:.0} events/s)",
        committed_at.as_secs_f64(),
        dispatched_at.as_secs_f64(),
        rate(dispatched_at)
    );
    let received = received.load(Ordering::Relaxed);
    if args.dead {
        println!(
            "dead-lettered in {:.2} s: {:.0} events/s into the dead-letter list (retry window {:.1} s); the receiver got {received} requests",
            delivered_at.as_secs_f64(),
            rate(delivered_at),
            fleetflow_webhooks::deliver::retry_window(&config).as_secs_f64()
        );
    } else {
        println!(
            "delivered in {:.2} s: {:.0} deliveries/s (first commit -> last 200)",
            delivered_at.as_secs_f64(),
            rate(delivered_at)
        );
        println!(
            "receiver got {received} requests ({} repeated)",
            received.saturating_sub(args.events as u64)
        );
    }
    tokio::task::spawn_blocking(move || webhooks.stop()).await?;
    let _ = std::fs::remove_dir_all(PathBuf::from(&dir));
    Ok(())
}
