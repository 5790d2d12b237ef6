//! The durable embedded broker of `fleetflow run`: Tansu, a Kafka-protocol broker, in this
//! process, with its log in SQLite under `<data-dir>/broker/`.
//!
//! - `tansu.db` (+ its WAL): every record ingest produced. A produce is answered only once its
//!   SQLite transaction committed, and ingest answers 200 only after that answer, so a 200 means
//!   the record is in this file: it survives kill -9 (the page cache outlives the process).
//! - `cluster_id`: the broker's identity, made once. The pipeline's commit log records it; a
//!   pipeline that finds a different one (the broker directory was replaced) refuses to start.
//! - `lock`: held while a fleetflow owns the broker, so two never write one log.
//!
//! Disk is bounded by the topic's retention (`kafka.retention_hours`, applied when fleetflow
//! creates the topic): Tansu deletes older records every 10 minutes.
//!
//! The broker runs on a tokio runtime of its own (threads `fleetflow-broker`). Its SQLite calls
//! run to completion inside async functions: on the runtime that serves HTTP they held ingest's
//! workers, and every request waited behind them (p99 ack latency 5-9x the in-memory broker's,
//! `benches/RESULTS.md`).

use std::fs::{File, OpenOptions};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tansu_broker::broker::Broker;
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_storage::StorageContainer;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use url::Url;

use crate::error::AppError;

/// A running Tansu broker inside this process.
pub struct DurableBroker {
    address: SocketAddr,
    cluster_id: String,
    storage: String,
    /// `None` only once [`DurableBroker::wait`] took it.
    task: Option<JoinHandle<()>>,
    /// The broker's own runtime; `None` only while dropping.
    runtime: Option<Runtime>,
    /// Held for the broker's lifetime (see the module doc).
    _lock: Option<File>,
}

impl std::fmt::Debug for DurableBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableBroker")
            .field("address", &self.address)
            .field("cluster_id", &self.cluster_id)
            .field("storage", &self.storage)
            .finish_non_exhaustive()
    }
}

/// Where a broker keeps its log.
#[derive(Debug, Clone)]
pub enum BrokerStorage {
    /// `<dir>/tansu.db`, identity in `<dir>/cluster_id`: the default of `fleetflow run`.
    Dir(PathBuf),
    /// A Tansu storage URL as given (`memory://tansu/`, `sqlite:///abs/path.db`): the standalone
    /// `fleetflow broker`, for tests and benchmarks.
    Url(String),
}

impl DurableBroker {
    /// Starts the broker on `listen` (port 0: a free loopback port) and waits until it accepts
    /// connections.
    pub async fn start(storage: BrokerStorage, listen: SocketAddr) -> Result<Self, AppError> {
        let (url, cluster_id, lock) = match &storage {
            BrokerStorage::Dir(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(AppError::io(format!("create broker dir {}", dir.display())))?;
                let lock = lock_dir(dir)?;
                let cluster_id = cluster_id(dir)?;
                let db = std::path::absolute(dir.join("tansu.db"))
                    .map_err(AppError::io("broker path"))?;
                // Tansu opens the URL's path as it is, without decoding it: a character the
                // URL would encode (a space, `%`, `?`, `#`, non-ASCII) would name another file.
                let plain = |c: char| c.is_ascii_alphanumeric() || "-._~/+,=@:".contains(c);
                if !db.to_str().is_some_and(|path| path.chars().all(plain)) {
                    return Err(AppError::Config(format!(
                        "the broker's log path {} holds characters the embedded broker cannot open \
                         (spaces, %, ?, #, non-ASCII): choose a data dir without them",
                        db.display()
                    )));
                }
                // Tansu reads the URL's path relative to its working directory after dropping
                // one leading `/`: `sqlite:///` + an absolute path is that absolute path.
                (
                    format!("sqlite:///{}", db.display()),
                    cluster_id,
                    Some(lock),
                )
            }
            BrokerStorage::Url(url) => (url.clone(), "fleetflow".to_owned(), None),
        };
        let address = resolve_port(listen)?;
        let listener = Url::parse(&format!("tcp://{address}"))
            .map_err(|e| AppError::Config(format!("broker listen address {address}: {e}")))?;
        let storage_url =
            Url::parse(&url).map_err(|e| AppError::Config(format!("broker storage {url}: {e}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            // Two: one can wait in SQLite while the other answers the network.
            .worker_threads(2)
            .thread_name("fleetflow-broker")
            .enable_all()
            .build()
            .map_err(AppError::io("broker runtime"))?;
        let built = runtime.spawn({
            let cluster_id = cluster_id.clone();
            async move {
                Broker::<Controller<StorageContainer>, StorageContainer>::builder()
                    .node_id(tansu_broker::NODE_ID)
                    .cluster_id(cluster_id)
                    .incarnation_id(uuid::Uuid::new_v4())
                    .advertised_listener(listener.clone())
                    .storage(storage_url)
                    .listener(listener)
                    .silent(true)
                    .build()
                    .await
                    .map_err(|e| e.to_string())
            }
        });
        let mut broker = match built.await {
            Ok(Ok(broker)) => broker,
            Ok(Err(e)) => {
                runtime.shutdown_background();
                return Err(AppError::Kafka(format!("embedded broker ({url}): {e}")));
            }
            Err(e) => {
                runtime.shutdown_background();
                return Err(AppError::Internal(format!("embedded broker start: {e}")));
            }
        };
        let task = runtime.spawn(async move {
            if let Err(error) = broker.serve(tokio::time::Instant::now()).await {
                tracing::error!(%error, "embedded broker stopped");
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let connects = || {
            tokio::time::timeout(
                Duration::from_millis(200),
                tokio::net::TcpStream::connect(address),
            )
        };
        while !matches!(connects().await, Ok(Ok(_))) {
            if task.is_finished() || Instant::now() > deadline {
                task.abort();
                runtime.shutdown_background();
                return Err(AppError::Kafka(format!(
                    "embedded broker did not listen on {address} (storage {url})"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::info!(%address, cluster_id, storage = url, "embedded broker listening");
        Ok(DurableBroker {
            address,
            cluster_id,
            storage: url,
            task: Some(task),
            runtime: Some(runtime),
            _lock: lock,
        })
    }

    pub fn bootstrap_servers(&self) -> String {
        self.address.to_string()
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The storage URL (`sqlite:///…/tansu.db`).
    pub fn storage(&self) -> &str {
        &self.storage
    }

    /// Runs until the broker task ends (the standalone `fleetflow broker`).
    pub async fn wait(mut self) -> Result<(), AppError> {
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(|e| AppError::Internal(format!("embedded broker task: {e}"))),
            None => Ok(()),
        }
    }
}

impl Drop for DurableBroker {
    fn drop(&mut self) {
        // Every acknowledged produce is already committed to SQLite: stopping is as safe here as
        // a kill.
        if let Some(task) = &self.task {
            task.abort();
        }
        // Not `Runtime::drop`: that blocks, which panics when dropped inside async code.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Port 0 becomes a free port now: Tansu advertises the address it is given, so it must be
/// known before it binds.
fn resolve_port(listen: SocketAddr) -> Result<SocketAddr, AppError> {
    if listen.port() != 0 {
        return Ok(listen);
    }
    let probe = TcpListener::bind(listen).map_err(AppError::io(format!("bind {listen}")))?;
    probe.local_addr().map_err(AppError::io("broker address"))
}

/// The broker's identity, made on first start.
fn cluster_id(dir: &Path) -> Result<String, AppError> {
    let path = dir.join("cluster_id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
        Ok(_) => Err(AppError::Config(format!(
            "{} is empty: the broker's identity is lost; restore it or remove {} to start a new, empty broker",
            path.display(),
            dir.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dir.join("tansu.db").exists() {
                return Err(AppError::Config(format!(
                    "{} holds a broker log but no cluster_id: restore it or remove the directory",
                    dir.display()
                )));
            }
            let id = format!("fleetflow-{}", uuid::Uuid::new_v4());
            let tmp = dir.join("cluster_id.tmp");
            std::fs::write(&tmp, format!("{id}\n"))
                .and_then(|()| File::open(&tmp)?.sync_all())
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(AppError::io(format!("write {}", path.display())))?;
            Ok(id)
        }
        Err(e) => Err(AppError::io(format!("read {}", path.display()))(e)),
    }
}

fn lock_dir(dir: &Path) -> Result<File, AppError> {
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(AppError::io(format!("open {}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(AppError::Config(format!(
            "{} is in use by another fleetflow (its lock is held): one process owns a data dir",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(AppError::io(format!("lock {}", path.display()))(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "fleetflow-broker-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn the_cluster_id_is_made_once_and_kept() {
        let dir = scratch("id");
        let first = cluster_id(&dir).expect("made");
        assert!(first.starts_with("fleetflow-"));
        assert_eq!(cluster_id(&dir).expect("kept"), first);
    }

    #[test]
    fn a_log_without_its_identity_is_refused() {
        let dir = scratch("orphan");
        std::fs::write(dir.join("tansu.db"), b"").expect("write");
        assert!(cluster_id(&dir).is_err());
    }

    /// The vendored storage reads the headers of a fetch's records in one query
    /// (`vendor/README.md`): each record comes back with its own headers, in order, and a record
    /// without any with none.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_come_back_with_their_headers() {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::message::{Header, Headers, OwnedHeaders};
        use rdkafka::producer::{FutureProducer, FutureRecord};
        use rdkafka::{Message, Offset, TopicPartitionList};

        use crate::config::{EmbeddedKind, KafkaConfig};
        use crate::kafka::clients::{ensure_topic, producer_config, reader_config};

        let broker = DurableBroker::start(
            BrokerStorage::Dir(scratch("headers")),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .await
        .expect("broker");
        let brokers = broker.bootstrap_servers();
        let kafka = KafkaConfig {
            topic: "headers".to_owned(),
            ..KafkaConfig::default()
        };
        ensure_topic(&brokers, &kafka, 1).await.expect("topic");
        let producer: FutureProducer =
            producer_config(&kafka, &brokers, Some(EmbeddedKind::Durable))
                .create()
                .expect("producer");
        let sent: [&[(&str, &str)]; 4] = [
            &[("a", "1"), ("b", "2")],
            &[],
            &[("c", "3")],
            &[("d", "4"), ("d", "5"), ("e", "6")],
        ];
        for (n, headers) in sent.iter().enumerate() {
            let owned = headers.iter().fold(OwnedHeaders::new(), |owned, (k, v)| {
                owned.insert(Header {
                    key: k,
                    value: Some(*v),
                })
            });
            let payload = format!("record {n}");
            producer
                .send(
                    FutureRecord::to("headers")
                        .key("k")
                        .payload(&payload)
                        .headers(owned),
                    Duration::from_secs(10),
                )
                .await
                .expect("delivered");
        }
        let got = tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = reader_config(&brokers, "headers-test")
                .create()
                .expect("consumer");
            let mut partitions = TopicPartitionList::new();
            partitions
                .add_partition_offset("headers", 0, Offset::Beginning)
                .expect("partition");
            consumer.assign(&partitions).expect("assign");
            let mut got = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            while got.len() < sent.len() && Instant::now() < deadline {
                let Some(message) = consumer.poll(Duration::from_millis(200)) else {
                    continue;
                };
                let message = message.expect("message");
                let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).expect("utf-8");
                let headers: Vec<(String, String)> = message
                    .headers()
                    .map(|headers| {
                        headers
                            .iter()
                            .map(|h| (h.key.to_owned(), text(h.value.unwrap_or_default())))
                            .collect()
                    })
                    .unwrap_or_default();
                got.push((text(message.payload().unwrap_or_default()), headers));
            }
            got
        })
        .await
        .expect("consumer thread");
        let want: Vec<(String, Vec<(String, String)>)> = sent
            .iter()
            .enumerate()
            .map(|(n, headers)| {
                let headers = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                (format!("record {n}"), headers)
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn one_owner_per_broker_dir() {
        let dir = scratch("lock");
        let held = lock_dir(&dir).expect("first lock");
        assert!(lock_dir(&dir).is_err());
        drop(held);
        lock_dir(&dir).expect("free again");
    }
}
