//! Live-view benchmark (issue 4): how long after its HTTP ack a point is visible in the live
//! views, under load, and what a full-state poll and a cursor poll cost with 15,000 vehicles;
//! memory per tracked vehicle is measured by `live_memory`.
//!
//! `benches/scripts/run live_latency --seconds 20 --rate 100000`
//!
//! One process runs `fleetflow run` (embedded broker, pipeline, live store, HTTP) and the load:
//! paced Monicar `cycle-info` requests of 60 points over `--vehicles` vehicles. An SSE client
//! on `/v1/live/stream` notes when each vehicle's newest fix time first appears; a point's
//! latency is that moment minus the moment its request was acknowledged. A poller times
//! `GET /v1/live/vehicles` (the full state) and `GET /v1/live/changes?since=` every 250 ms.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use fleetflow::Config;
use fleetflow::commands::run::{Role, build};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::net::TcpListener;

#[derive(Debug, Parser)]
struct Args {
    /// Seconds of load.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Offered load, points per second (60 per request).
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    #[arg(long, default_value_t = 15_000)]
    vehicles: usize,
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// `pipeline.tick_ms`: dataflow timestamp granularity (the live store applies whole ticks).
    #[arg(long, default_value_t = fleetflow_pipeline::PipelineConfig::default().tick_ms)]
    tick_ms: u64,
    /// `pipeline.flush_secs`: how often the Parquet sink writes and commits.
    #[arg(long, default_value_t = fleetflow_pipeline::PipelineConfig::default().flush_secs)]
    flush_secs: f64,
    /// No poller (the SSE follower only): separates the polls' cost from the rest.
    #[arg(long)]
    no_poll: bool,
}

const ADMIN: &str = "bench-admin";

fn quantiles(name: &str, h: &Histogram<u64>, unit: f64, label: &str) {
    let q = |p: f64| h.value_at_quantile(p) as f64 / unit;
    println!(
        "| {name:<34} | {:>7} | {:>8.1} | {:>8.1} | {:>8.1} | {:>8.1} | {label}",
        h.len(),
        q(0.5),
        q(0.9),
        q(0.99),
        h.max() as f64 / unit
    );
}

fn cycle_body(vehicle: usize, minute: i64, start_ms: i64) -> (Bytes, i64) {
    let list: Vec<Value> = (0..60i64)
        .map(|s| {
            json!({"intervalAt": fleetflow_model::format_compact_time(start_ms + minute * 60_000 + s * 1_000),
                   "gcd":"A","lat":37_400_000 + (vehicle as i64 % 300) * 1_000 + s * 12,
                   "lng":126_900_000 + (vehicle as i64 / 300) * 1_000 + s * 9,
                   "ang":45,"spd":50 + s % 20,"sum":14})
        })
        .collect();
    let body = json!({"mdn": 1_000_000_000i64 + vehicle as i64,"tid":"T","mid":1,"pv":1,"did":1,
                      "cCnt":60,"cList":list});
    (
        Bytes::from(body.to_string()),
        start_ms + minute * 60_000 + 59_000,
    )
}

/// Per vehicle: (newest fix time seen, when) each time it grew.
type Seen = Arc<Mutex<HashMap<String, Vec<(i64, Instant)>>>>;

/// Follows the SSE stream, noting when each vehicle's newest fix time appears.
async fn follow(
    addr: std::net::SocketAddr,
    seen: Seen,
    ready: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: hyper::Uri = format!("http://{addr}/v1/live/stream?token={ADMIN}").parse()?;
    let response = client
        .request(hyper::Request::get(uri).body(Empty::new())?)
        .await?;
    let mut body = response.into_body();
    let mut text = String::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        let now = Instant::now();
        text.push_str(std::str::from_utf8(&data)?);
        while let Some(end) = text.find("\n\n") {
            let message: String = text.drain(..end + 2).collect();
            let Some(data) = message.lines().find_map(|l| l.strip_prefix("data:")) else {
                continue;
            };
            let event: Value = serde_json::from_str(data.trim())?;
            let states: Vec<&Value> = match event.get("changes").and_then(Value::as_array) {
                Some(changes) => changes.iter().map(|c| &c["state"]).collect(),
                None => match event.get("vehicles").and_then(Value::as_array) {
                    Some(vehicles) => {
                        ready.store(true, Ordering::Relaxed);
                        vehicles.iter().collect()
                    }
                    None => continue,
                },
            };
            let mut seen = seen.lock().expect("seen");
            for state in states {
                let (Some(id), Some(t)) = (
                    state["vehicle"].as_str(),
                    state["position"]["time_ms"].as_i64(),
                ) else {
                    continue;
                };
                let slot = seen.entry(id.to_owned()).or_default();
                if slot.last().is_none_or(|(last, _)| *last < t) {
                    slot.push((t, now));
                }
            }
        }
    }
    Ok(())
}

/// Times `GET path` on `client`; returns (latency µs, body bytes, body).
async fn timed_get(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    uri: &str,
) -> anyhow::Result<(u64, usize, Value)> {
    let request = hyper::Request::get(uri)
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Empty::new())?;
    let started = Instant::now();
    let response = client.request(request).await?;
    let bytes = response.into_body().collect().await?.to_bytes();
    let micros = started.elapsed().as_micros() as u64;
    Ok((micros, bytes.len(), serde_json::from_slice(&bytes)?))
}

async fn load_run(args: &Args) -> anyhow::Result<()> {
    let mut config = Config {
        data_dir: std::env::temp_dir().join(format!("fleetflow-live-{}", std::process::id())),
        admin_token: Some(ADMIN.to_owned()),
        ..Config::default()
    };
    config.pipeline.tick_ms = args.tick_ms;
    config.pipeline.flush_secs = args.flush_secs;
    let services = build(&config, Role::Run)
        .await
        .context("starting fleetflow")?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = services.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let rss_start = fleetflow_benches::resident_bytes();

    let seen: Seen = Arc::default();
    let ready = Arc::new(AtomicBool::new(false));
    tokio::spawn(follow(addr, seen.clone(), ready.clone()));
    while !ready.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    // Each vehicle's minutes follow on from an hour ago, so every request adds newer fixes.
    // Whole seconds: Monicar's `intervalAt` has no milliseconds.
    let start_ms = (now_ms - 3_600_000) / 1_000 * 1_000;
    let requests_per_sec = (args.rate as f64 / 60.0).max(1.0);
    let total = (requests_per_sec * args.seconds as f64) as u64;
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let began = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (next, vehicles) = (next.clone(), args.vehicles);
        let uri: hyper::Uri =
            format!("http://{addr}{}", fleetflow_ingest::CYCLE_INFO_PATH).parse()?;
        tasks.push(tokio::spawn(async move {
            let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
            let mut acks: Vec<(usize, i64, Instant)> = Vec::new();
            let mut errors = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let due = began + Duration::from_secs_f64(i as f64 / requests_per_sec);
                tokio::time::sleep_until(due.into()).await;
                let vehicle = i as usize % vehicles;
                let (body, last_fix) =
                    cycle_body(vehicle, (i as usize / vehicles) as i64, start_ms);
                let request = hyper::Request::post(uri.clone())
                    .header("content-type", "application/json")
                    .body(Full::new(body))
                    .expect("request");
                match client.request(request).await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.into_body().collect().await;
                        acks.push((vehicle, last_fix, Instant::now()));
                    }
                    _ => errors += 1,
                }
            }
            (acks, errors)
        }));
    }
    // The poller: a full-state poll and a cursor poll every 250 ms while the load runs.
    let poll = !args.no_poll;
    let poller = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let client: Client<_, Empty<Bytes>> =
                Client::builder(TokioExecutor::new()).build_http();
            let mut full = Histogram::<u64>::new(3).expect("histogram");
            let mut cursor_polls = Histogram::<u64>::new(3).expect("histogram");
            let (mut full_bytes, mut cursor_bytes, mut changes, mut vehicles_seen) = (0, 0, 0, 0);
            let mut cursor = None;
            while poll && !stop.load(Ordering::Relaxed) {
                if let Ok((us, bytes, body)) =
                    timed_get(&client, &format!("http://{addr}/v1/live/vehicles")).await
                {
                    let _ = full.record(us);
                    full_bytes = bytes;
                    vehicles_seen = body["count"].as_u64().unwrap_or(0);
                    cursor = cursor.or(body["cursor"].as_u64());
                }
                tokio::time::sleep(Duration::from_millis(125)).await;
                if let Some(c) = cursor {
                    let uri = format!("http://{addr}/v1/live/changes?since={c}");
                    if let Ok((us, bytes, body)) = timed_get(&client, &uri).await {
                        let _ = cursor_polls.record(us);
                        cursor_bytes += bytes;
                        changes += body["changes"].as_array().map_or(0, Vec::len);
                        cursor = body["cursor"].as_u64();
                    }
                }
                tokio::time::sleep(Duration::from_millis(125)).await;
            }
            (
                full,
                full_bytes,
                vehicles_seen,
                cursor_polls,
                cursor_bytes,
                changes,
            )
        })
    };
    let mut acks = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (a, e) = task.await?;
        acks.extend(a);
        errors += e;
    }
    let load_secs = began.elapsed().as_secs_f64();
    // Let the tail become visible.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let (full, full_bytes, vehicles_seen, cursor_polls, cursor_bytes, changes) = poller.await?;
    let rss_loaded = fleetflow_benches::resident_bytes();

    let mut visible = Histogram::<u64>::new(3)?;
    let (mut missing, mut early) = (0u64, 0u64);
    {
        let seen = seen.lock().expect("seen");
        for (vehicle, last_fix, acked) in &acks {
            let id = (1_000_000_000usize + vehicle).to_string();
            let first = seen
                .get(&id)
                .and_then(|s| s.iter().find(|(t, _)| t >= last_fix))
                .map(|(_, at)| *at);
            match first {
                Some(at) if at >= *acked => {
                    let _ = visible.record((at - *acked).as_micros() as u64);
                }
                Some(_) => {
                    // Visible before the client had its ack (the pipeline read it from Kafka
                    // while the delivery report travelled back).
                    early += 1;
                    let _ = visible.record(0);
                }
                None => missing += 1,
            }
        }
    }
    let acked_points = acks.len() as f64 * 60.0;
    println!(
        "live_latency: {} vehicles, offered {} points/s for {} s, tick {} ms, {} connections, {} cores",
        args.vehicles,
        args.rate,
        args.seconds,
        args.tick_ms,
        args.connections,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "acked {:.0} points/s ({} requests, {errors} errors); {missing} acked requests never seen, {early} seen before their ack",
        acked_points / load_secs,
        acks.len()
    );
    println!(
        "| measure                            | samples |  p50     |  p90     |  p99     |  max     | unit"
    );
    println!(
        "|------------------------------------|---------|----------|----------|----------|----------|-----"
    );
    quantiles("ack -> visible in the live views", &visible, 1_000.0, "ms");
    quantiles(
        &format!("poll full state ({vehicles_seen} vehicles)"),
        &full,
        1_000.0,
        &format!("ms, {:.1} MB", full_bytes as f64 / 1e6),
    );
    quantiles(
        "poll changes since cursor (250 ms)",
        &cursor_polls,
        1_000.0,
        &format!(
            "ms, {:.0} changes and {:.0} KB per poll",
            changes as f64 / cursor_polls.len().max(1) as f64,
            cursor_bytes as f64 / 1e3 / cursor_polls.len().max(1) as f64
        ),
    );
    println!(
        "process RSS: {:.0} MB at start, {:.0} MB after load ({:.1} KB per vehicle for ingest, broker, pipeline and views together)",
        rss_start as f64 / 1e6,
        rss_loaded as f64 / 1e6,
        (rss_loaded.saturating_sub(rss_start)) as f64 / 1e3 / args.vehicles as f64
    );
    let _ = std::fs::remove_dir_all(&config.data_dir);
    std::process::exit(0);
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(load_run(&args))
}
