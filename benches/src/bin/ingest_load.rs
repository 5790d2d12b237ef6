//! Ingest load harness: accepted points/s and ack latency (p50/p99) for Monicar `cycle-info`
//! (60 points a request) and the native endpoint, over real HTTP on loopback, against the
//! embedded broker, a real broker (`--brokers`), or no broker at all (a baseline of ingest
//! alone). Afterwards it reads the records back out of the broker and reports that rate too.
//!
//! `benches/scripts/run ingest_load --seconds 10`

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use fleetflow::Config;
use fleetflow::commands::run::{Role, build};
use fleetflow_benches::load_bodies::{BodySet, BodyShape, Scenario};
use fleetflow_ingest::{IngestConfig, IngestMetrics, IngestState, NullSink, VehicleRegistry};
use fleetflow_model::Tenants;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio::net::TcpListener;

#[derive(Debug, Parser)]
struct Args {
    /// `embedded`, `none` (no broker: ingest alone), or bootstrap servers of a real broker.
    #[arg(long, default_value = "embedded")]
    broker: String,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Distinct vehicles in the generated bodies.
    #[arg(long, default_value_t = 15_000)]
    vehicles: usize,
    /// Vehicles per native request (60 points each).
    #[arg(long, default_value_t = 10)]
    native_vehicles: usize,
    /// Distinct request bodies, sent round-robin. Each carries fixes no other body has.
    #[arg(long, default_value_t = 2_000)]
    bodies: usize,
    /// Every request carries fixes no other request has: past the first `--bodies`, requests
    /// are copies with their fix times shifted (what the end-to-end benchmark needs: the
    /// pipeline drops re-sent fixes as duplicates). Without it, bodies are re-sent as they are.
    #[arg(long)]
    distinct: bool,
    /// Scenarios to run: cycle-info, native (comma-separated).
    #[arg(long, default_value = "cycle-info,native")]
    scenarios: String,
}

struct Outcome {
    requests: u64,
    points: u64,
    errors: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

/// Sends requests `next..` over `connections` connections for `duration`.
async fn drive(
    addr: std::net::SocketAddr,
    scenario: Scenario,
    bodies: Arc<BodySet>,
    next: Arc<AtomicU64>,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let stop = Arc::new(AtomicBool::new(false));
    let uri: hyper::Uri = format!("http://{addr}{}", scenario.path()).parse()?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (stop, next, bodies, uri) = (stop.clone(), next.clone(), bodies.clone(), uri.clone());
        tasks.push(tokio::spawn(async move {
            let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(1)
                .build_http();
            let mut latency = Histogram::<u64>::new(3).expect("histogram");
            let (mut requests, mut points, mut errors) = (0u64, 0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let (body, body_points) = bodies.request(next.fetch_add(1, Ordering::Relaxed));
                let request = hyper::Request::post(uri.clone())
                    .header("content-type", "application/json")
                    .body(Full::new(body))
                    .expect("request");
                let sent = Instant::now();
                match client.request(request).await {
                    Ok(response) => {
                        let ok = response.status().is_success();
                        let _ = response.into_body().collect().await;
                        if ok {
                            requests += 1;
                            points += body_points;
                            let _ = latency.record(sent.elapsed().as_micros() as u64);
                        } else {
                            errors += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (requests, points, errors, latency)
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut outcome = Outcome {
        requests: 0,
        points: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latency: Histogram::new(3)?,
    };
    for task in tasks {
        let (requests, points, errors, latency) = task.await?;
        outcome.requests += requests;
        outcome.points += points;
        outcome.errors += errors;
        outcome.latency.add(latency)?;
    }
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}

fn print(scenario: Scenario, broker: &str, outcome: &Outcome) {
    let secs = outcome.elapsed.as_secs_f64();
    let ms = |q: f64| outcome.latency.value_at_quantile(q) as f64 / 1_000.0;
    println!(
        "| {:<30} | {:<9} | {:>9.0} | {:>11.0} | {:>7.2} | {:>7.2} | {:>7.2} | {:>6} |",
        scenario.name(),
        broker,
        outcome.requests as f64 / secs,
        outcome.points as f64 / secs,
        ms(0.5),
        ms(0.99),
        ms(0.999),
        outcome.errors
    );
}

/// Reads every record on the topic back and reports records/s and MB/s.
fn drain(brokers: &str, topic: &str, expected: u64) -> anyhow::Result<(u64, u64, Duration)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "ingest-load-drain")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[topic])?;
    let started = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut idle = Instant::now();
    while records < expected && idle.elapsed() < Duration::from_secs(10) {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message?;
            records += 1;
            bytes += message.payload_len() as u64;
            idle = Instant::now();
        }
    }
    Ok((records, bytes, started.elapsed()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    // Defaults, then `FLEETFLOW_*` variables, as `fleetflow run` reads them: a producer setting
    // (`FLEETFLOW_KAFKA__LINGER_MS=20`) is measured without a rebuild.
    let mut config = Config::load(None).context("reading FLEETFLOW_* settings")?;
    config.data_dir = std::env::temp_dir().join(format!("fleetflow-bench-{}", std::process::id()));
    let (router, ingest, services) = if args.broker == "none" {
        let mut tenants = Tenants::new(&[], Some("admin"))?;
        tenants.ensure_company("default")?;
        let registry = prometheus::Registry::new();
        let ingest = IngestState::new(
            IngestConfig::default(),
            Arc::new(tenants),
            Arc::new(VehicleRegistry::default()),
            Arc::new(NullSink),
            IngestMetrics::new(&registry)?,
        )?;
        (fleetflow_ingest::app(ingest.clone()), ingest, None)
    } else {
        if args.broker != "embedded" {
            config.kafka.brokers = Some(args.broker.clone());
        }
        // Ingest alone: the pipeline would share the cores being measured.
        config.pipeline.enabled = false;
        // Nor Postgres: a pipeline process started beside it (end_to_end.sh) may hold the port.
        config.query.postgres = "off".to_owned();
        let services = build(&config, Role::Run)
            .await
            .context("starting fleetflow")?;
        (
            services.router.clone(),
            services.ingest.clone(),
            Some(services),
        )
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });

    println!(
        "ingest_load: {} connections, {} s per scenario, {} vehicles, {} cores",
        args.connections,
        args.seconds,
        args.vehicles,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!(
        "| scenario                       | broker    |   req/s   |  points/s   | p50 ms  | p99 ms  | p99.9ms | errors |"
    );
    println!(
        "|--------------------------------|-----------|-----------|-------------|---------|---------|---------|--------|"
    );
    let broker_label = match args.broker.as_str() {
        "embedded" | "none" => args.broker.clone(),
        _ => "external".to_owned(),
    };
    for name in args.scenarios.split(',') {
        let scenario = match name.trim() {
            "cycle-info" => Scenario::CycleInfo,
            "native" => Scenario::Native,
            other => anyhow::bail!("unknown scenario {other}"),
        };
        let shape = BodyShape {
            scenario,
            bodies: args.bodies,
            vehicles: args.vehicles,
            vehicles_per_body: args.native_vehicles,
            // Fixes from the last hour; with `--distinct`, from a day ago, so that the shifted
            // copies stay in the past (14 minutes a round of 20,000 native requests: about
            // 2 million requests). A fix from the future would stay on its vehicle's live
            // route until its time comes.
            start_ms: now_ms - if args.distinct { 86_400_000 } else { 3_600_000 },
        };
        let bodies = Arc::new(BodySet::generate(shape, args.distinct));
        println!("{name}: {} bodies ready", bodies.len());
        // A short warm-up so connection set-up and first allocations are not measured; the
        // run goes on with the requests after it.
        let next = Arc::new(AtomicU64::new(0));
        drive(
            addr,
            scenario,
            bodies.clone(),
            next.clone(),
            args.connections,
            Duration::from_secs(1),
        )
        .await?;
        let outcome = drive(
            addr,
            scenario,
            bodies,
            next,
            args.connections,
            Duration::from_secs(args.seconds),
        )
        .await?;
        print(scenario, &broker_label, &outcome);
    }
    let totals = ingest.metrics().totals();
    println!(
        "acknowledged in total: {} requests, {} points, {} records",
        totals.requests, totals.points, totals.records
    );
    if let Some(services) = &services {
        let brokers = services.brokers.clone();
        let topic = config.kafka.topic.clone();
        let expected = totals.records;
        let (records, bytes, elapsed) =
            tokio::task::spawn_blocking(move || drain(&brokers, &topic, expected)).await??;
        let secs = elapsed.as_secs_f64();
        println!(
            "read back from the broker: {records}/{expected} records, {:.0} records/s, {:.1} MB/s, {:.0} bytes/record",
            records as f64 / secs,
            bytes as f64 / secs / 1e6,
            bytes as f64 / records.max(1) as f64
        );
    }
    let _ = std::fs::remove_dir_all(&config.data_dir);
    Ok(())
}
