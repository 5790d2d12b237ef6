//! Helpers for end-to-end tests: spawning fleetflow and Tansu as processes, a minimal HTTP
//! client, and a Kafka reader.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fleetflow_model::{TelemetryRecord, decode};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};

#[path = "../../../query/tests/support/test_python.rs"]
pub mod test_python;

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub name: &'static str,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Spawns `command`, forwarding its stdout lines (and stderr to ours).
    pub fn spawn(name: &'static str, mut command: Command) -> Proc {
        command.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("[{name}] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc { child, lines, name }
    }

    /// The first stdout line containing `needle` (within `timeout`).
    pub fn wait_line(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("{} did not print {needle:?} within {timeout:?}", self.name),
            }
        }
    }

    /// Sends SIGTERM (no effect once the process has exited).
    pub fn signal_term(&self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal_term();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "{} ignored SIGTERM", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn fleetflow_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fleetflow"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "fleetflow-{name}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A running fleetflow: its HTTP address and its broker.
pub struct Fleetflow {
    pub proc: Proc,
    pub http: SocketAddr,
    pub brokers: String,
    pub admin_token: Option<String>,
    /// Where the Postgres wire protocol listens, when it does.
    pub postgres: Option<SocketAddr>,
    /// The dedicated OsmAnd listener (`ingest.osmand_listen`), when configured.
    pub osmand: Option<SocketAddr>,
}

/// Starts `fleetflow <subcommand> --http 127.0.0.1:0 <extra>` and waits until it listens.
pub fn start_fleetflow(subcommand: &str, extra: &[&str], env: &[(&str, &str)]) -> Fleetflow {
    await_listening(spawn_fleetflow(subcommand, extra, env), subcommand)
}

/// Starts `fleetflow <subcommand> --http 127.0.0.1:0 <extra>` without waiting (the processes of
/// a timely cluster listen only once all have started).
pub fn spawn_fleetflow(subcommand: &str, extra: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut command = Command::new(fleetflow_bin());
    command.arg(subcommand);
    if !extra.contains(&"--http") {
        command.args(["--http", "127.0.0.1:0"]);
    }
    // Never the default port: tests run side by side.
    if !extra.contains(&"--postgres") {
        command.args(["--postgres", "127.0.0.1:0"]);
    }
    command.args(extra);
    command.env("RUST_LOG", "warn");
    for (key, value) in env {
        command.env(key, value);
    }
    Proc::spawn("fleetflow", command)
}

/// Waits until a spawned `fleetflow <subcommand>` listens, reading its start-up banner.
pub fn await_listening(proc: Proc, subcommand: &str) -> Fleetflow {
    let mut brokers = None;
    let mut admin_token = None;
    let mut postgres = None;
    let mut osmand = None;
    let http = loop {
        let line = proc
            .lines
            .recv_timeout(Duration::from_secs(60))
            .expect("fleetflow did not start listening within 60 s");
        if let Some(rest) = line.strip_prefix("embedded Kafka broker at ") {
            brokers = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some(rest) = line.strip_prefix("Kafka at ") {
            brokers = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some(rest) = line.strip_prefix("admin token: ") {
            admin_token = Some(rest.trim().to_owned());
        }
        if let Some(rest) = line.strip_prefix("OsmAnd on http://") {
            osmand = rest.split_whitespace().next().and_then(|a| a.parse().ok());
        }
        if let Some(rest) = line.strip_prefix("postgres wire on ") {
            postgres = rest.split_whitespace().next().and_then(|a| a.parse().ok());
        }
        if let Some(rest) = line.strip_prefix("listening on http://") {
            break rest
                .split_whitespace()
                .next()
                .expect("address")
                .parse()
                .expect("socket address");
        }
    };
    Fleetflow {
        proc,
        http,
        // `query` reads files only.
        brokers: match subcommand {
            "query" => brokers.unwrap_or_default(),
            _ => brokers.expect("fleetflow printed no broker address"),
        },
        admin_token,
        postgres,
        osmand,
    }
}

/// A Tansu broker process on a free loopback port.
pub struct Tansu {
    pub proc: Proc,
    pub brokers: String,
}

/// Starts Tansu with `storage` (`memory://tansu/` or `sqlite:///ABSOLUTE/DIR/tansu.db`).
pub fn start_tansu(storage: &str) -> Tansu {
    start_tansu_on(storage, free_port())
}

/// Starts Tansu on `port` (to restart one where it was).
pub fn start_tansu_on(storage: &str, port: u16) -> Tansu {
    // `fleetflow broker`: the Tansu library fleetflow embeds, as its own process.
    let mut command = Command::new(fleetflow_bin());
    command
        .arg("broker")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--storage", storage])
        .env("RUST_LOG", "warn");
    let proc = Proc::spawn("tansu", command);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the broker did not listen on {port} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Tansu {
        proc,
        brokers: format!("127.0.0.1:{port}"),
    }
}

/// A minimal HTTP/1.1 exchange: (status, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("write");
    stream.write_all(body).expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

pub fn post_json(addr: SocketAddr, path: &str, body: &serde_json::Value) -> (u16, String) {
    http(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

/// Reads `topic` from the beginning with an independent consumer until `count` records arrived.
///
/// The consumer assigns itself every partition rather than joining a group: a group consumer
/// dropped while its join is still in progress (as when this panics at the deadline) can block
/// forever in librdkafka's rebalance handling.
pub fn read_records(
    brokers: &str,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> Vec<(String, TelemetryRecord)> {
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("e2e-{}", free_port()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut list = TopicPartitionList::new();
    for p in 0..metadata.topics()[0].partitions().len() as i32 {
        list.add_partition_offset(topic, p, Offset::Beginning)
            .expect("assign");
    }
    consumer.assign(&list).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut records = Vec::new();
    while records.len() < count {
        assert!(
            Instant::now() < deadline,
            "read {} of {count} records from {topic} within {timeout:?}",
            records.len()
        );
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("kafka message");
            let key = String::from_utf8(message.key().expect("key").to_vec()).expect("utf8 key");
            let record = decode(message.payload().expect("payload")).expect("decodable record");
            records.push((key, record));
        }
    }
    records
}

/// Every record the topic holds, read partition by partition up to the high watermarks.
pub fn read_all_records(brokers: &str, topic: &str) -> Vec<TelemetryRecord> {
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("e2e-all-{}", free_port()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut ends = std::collections::HashMap::new();
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .expect("watermarks");
        if high > low {
            ends.insert(p, high);
            list.add_partition_offset(topic, p, Offset::Offset(low))
                .expect("assign");
        }
    }
    consumer.assign(&list).expect("assign");
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ends.is_empty() {
        assert!(Instant::now() < deadline, "topic not read within 120 s");
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("kafka message");
            records.push(decode(message.payload().expect("payload")).expect("decodable"));
            if message.offset() + 1 >= ends[&message.partition()] {
                ends.remove(&message.partition());
            }
        }
    }
    records
}

/// (vehicle, time) of every fix in `records`, each once.
pub fn distinct_fix_keys(records: &[TelemetryRecord]) -> Vec<(String, i64)> {
    let mut keys: Vec<(String, i64)> = records
        .iter()
        .flat_map(|r| {
            r.items.iter().filter_map(move |item| match item {
                fleetflow_model::Item::Fix(f) => Some((r.vehicle.clone(), f.time_ms)),
                _ => None,
            })
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Runs `fleetflow pipeline --until-caught-up` over `brokers` into `data_dir` and waits for it.
pub fn pipeline_until_caught_up(brokers: &str, data_dir: &std::path::Path) {
    pipeline_until_caught_up_with(brokers, data_dir, &[]);
}

/// [`pipeline_until_caught_up`] with `env` (`FLEETFLOW_*` settings).
pub fn pipeline_until_caught_up_with(
    brokers: &str,
    data_dir: &std::path::Path,
    env: &[(&str, &str)],
) {
    let status = Command::new(fleetflow_bin())
        .envs(env.iter().copied())
        .args(["pipeline", "--until-caught-up", "--http", "127.0.0.1:0"])
        .args(["--postgres", "off"])
        .args(["--brokers", brokers])
        .args(["--data-dir", data_dir.to_str().expect("utf8")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .status()
        .expect("pipeline");
    assert!(
        status.success(),
        "pipeline --until-caught-up failed: {status}"
    );
}

/// Starts `fleetflow emulate` against `target` in the background.
pub fn start_emulator(target: SocketAddr, vehicles: u32, seconds: u32) -> Proc {
    let mut command = Command::new(fleetflow_bin());
    command
        .args(["emulate", "--vehicles", &vehicles.to_string()])
        .args(["--speedup", "60", "--duration", &seconds.to_string()])
        .args([
            "--report-every",
            "5",
            "--target",
            &format!("http://{target}"),
        ])
        .env("RUST_LOG", "error");
    Proc::spawn("emulate", command)
}

/// Waits for a background emulator to finish; returns its `total:` line.
pub fn finish_emulator(mut emulator: Proc) -> String {
    let total = emulator.wait_line("total:", Duration::from_secs(300));
    let status = emulator.child.wait().expect("emulator exit");
    assert!(status.success(), "emulator failed: {total}");
    total
}

/// Stops a background emulator (SIGTERM: it stops sending and reports); returns its `total:`
/// line.
pub fn stop_emulator(emulator: Proc) -> String {
    emulator.signal_term();
    finish_emulator(emulator)
}

/// A `name=value` field of an emulator report line.
pub fn report_field(line: &str, name: &str) -> u64 {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(&format!("{name}=")))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in {line}"))
}
