//! The Kafka source: one rdkafka consumer per worker, reading the partitions `p` with
//! `p % workers == worker` (across all processes of a timely cluster), by manual assignment and
//! without consumer-group commits: the Parquet commit log owns the offsets.
//!
//! Timestamps are epochs: wall-clock milliseconds rounded down to `tick_ms`, never below
//! `min_epoch` (so they keep rising across restarts). At each epoch the source reports, per
//! partition, the next offset it will read: the sink commits those offsets with the files.
//!
//! On a restart, a partition is read from its `replay_from` offset; records before its
//! committed offset are emitted at timestamp 0 (replay: they rebuild state, the sink drops
//! their rows) and the source holds a timestamp-0 capability until every one of its partitions
//! has passed its committed offset.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::{Scope, StreamVec};

use crate::source::raw_record::RawRecord;
use crate::trips::sessionize_operator::Epoch;
use fleetflow_tables::commit_log::Commit;

/// What the source reads and how.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Consumer settings (bootstrap servers, client id, ...), commented where they are built.
    pub client: ClientConfig,
    pub topic: String,
    pub tick_ms: u64,
    /// Where to resume: the newest commit.
    pub resume: Option<Commit>,
    /// Stop once every assigned partition has been read up to the high watermark it had when
    /// the source started (batch runs, benchmarks).
    pub stop_when_caught_up: bool,
    /// Set to stop: the source reads up to the high watermarks of that moment, then stops; the
    /// dataflow drains and the sink commits what it has.
    pub shutdown: Arc<AtomicBool>,
    /// Records read, for `/metrics`.
    pub records_read: Arc<AtomicU64>,
    /// Flow control: stop reading while this many payload bytes are read but not committed
    /// (0: never stop). Replay is exempt: its records sit at timestamp 0, which cannot commit
    /// before replay ends.
    pub max_in_flight_bytes: u64,
    /// Milliseconds the source spent not reading because of the bound, for `/metrics`.
    pub throttled_ms: Arc<AtomicU64>,
}

/// Source errors: setup only; once reading, broker trouble is retried by librdkafka.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("Kafka consumer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("topic {0:?} not found on the broker after {1:?}")]
    NoTopic(String, Duration),
}

/// Polls a topic's partition count until it exists.
pub fn partition_count(
    consumer: &BaseConsumer,
    topic: &str,
    wait: Duration,
) -> Result<i32, SourceError> {
    let deadline = Instant::now() + wait;
    loop {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))?;
        let n = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map_or(0, |t| t.partitions().len() as i32);
        if n > 0 {
            return Ok(n);
        }
        if Instant::now() > deadline {
            return Err(SourceError::NoTopic(topic.to_owned(), wait));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// How many epochs the in-flight bound is at least spread over (see `epoch_budget`).
const EPOCH_SHARE_OF_BOUND: u64 = 16;
/// ... but never less than this: under a tiny bound the bound alone limits.
const EPOCH_BUDGET_FLOOR: u64 = 1 << 20;

/// Polls in a row that may answer nothing before the source ends a read. rust-rdkafka's `poll`
/// answers `None` both when the queue is empty and when it served a log or statistics event
/// from it (librdkafka's log lines share the consumer's queue), so one `None` does not mean
/// nothing is left: with librdkafka's `debug=fetch`, a source that stopped at the first one
/// read a record or so between log lines and stalled short of a backlog's end. An empty poll
/// costs a lock of the queue, well under a microsecond.
const EMPTY_POLLS: usize = 64;

/// `poll`'s next answer, passing over up to [`EMPTY_POLLS`] empty ones in a row.
fn poll_past_events<T>(mut poll: impl FnMut() -> Option<T>) -> Option<T> {
    (0..EMPTY_POLLS).find_map(|_| poll())
}

fn now_epoch(tick_ms: u64, floor: Epoch) -> Epoch {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    (ms / tick_ms * tick_ms).max(floor)
}

/// Per assigned partition: the next offset to read, and where replay ends.
#[derive(Debug, Clone, Copy)]
struct PartitionState {
    next: i64,
    replay_end: i64,
    /// High watermark when the source started (for `stop_when_caught_up`).
    start_high: i64,
}

/// The source's outputs: raw records, and (partition, next offset) at each epoch.
pub type SourceStreams<'scope> = (
    StreamVec<'scope, Epoch, RawRecord>,
    StreamVec<'scope, Epoch, (i32, i64)>,
);

/// Builds this worker's source: raw records, and (partition, next offset) progress reports.
///
/// `committed` is the sink's commit frontier: with it the source bounds what it has read but
/// the sink not yet committed (`max_in_flight_bytes`). While over the bound it does not poll,
/// so librdkafka's prefetch queue fills and its fetching stops: the backlog stays in Kafka. Its
/// epochs still advance with the clock, so windows close and commits free the budget.
pub fn kafka_source<'scope>(
    scope: Scope<'scope, Epoch>,
    config: SourceConfig,
    committed: ProbeHandle<Epoch>,
) -> Result<SourceStreams<'scope>, SourceError> {
    let consumer: BaseConsumer = config.client.create()?;
    let partitions = partition_count(&consumer, &config.topic, Duration::from_secs(60))?;
    let (worker, peers) = (scope.index(), scope.peers());
    let resume = config.resume.clone().unwrap_or_default();
    let mut owned: BTreeMap<i32, PartitionState> = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for p in (0..partitions).filter(|p| *p as usize % peers == worker) {
        let committed = resume.offsets.get(&p).copied();
        let replay_from = resume.replay_from.get(&p).copied().or(committed);
        let (low, high) = consumer.fetch_watermarks(&config.topic, p, Duration::from_secs(10))?;
        let start = replay_from.unwrap_or(low).max(low);
        assignment.add_partition_offset(&config.topic, p, Offset::Offset(start))?;
        owned.insert(
            p,
            PartitionState {
                next: start,
                replay_end: committed.unwrap_or(start).min(high),
                start_high: high,
            },
        );
    }
    consumer.assign(&assignment)?;
    tracing::info!(worker, partitions = ?owned.keys().collect::<Vec<_>>(), "Kafka source assigned");

    let mut builder = OperatorBuilder::new("KafkaSource".to_owned(), scope);
    let address = builder.operator_info().address;
    let (records_out, records) = builder.new_output::<Vec<RawRecord>>();
    let (progress_out, progress) = builder.new_output::<Vec<(i32, i64)>>();
    let mut records_out = OutputBuilder::from(records_out);
    let mut progress_out = OutputBuilder::from(progress_out);
    let activator = scope.activator_for(address);
    let tick_ms = config.tick_ms.max(1);
    let floor = resume.upto_epoch + 1;

    builder.build(move |mut caps: Vec<Capability<Epoch>>| {
        // Output 0 at time 0 (replay) and at the current epoch; output 1 at the current epoch.
        let progress_cap0 = caps.pop().expect("two outputs");
        let records_cap0 = caps.pop().expect("two outputs");
        let epoch = now_epoch(tick_ms, floor);
        let mut replay: Option<Capability<Epoch>> = owned
            .values()
            .any(|s| s.next < s.replay_end)
            .then(|| records_cap0.clone());
        let mut live: Option<(Capability<Epoch>, Capability<Epoch>)> =
            Some((records_cap0.delayed(&epoch), progress_cap0.delayed(&epoch)));
        drop((records_cap0, progress_cap0));
        let mut batch: Vec<RawRecord> = Vec::new();
        let mut replay_batch: Vec<RawRecord> = Vec::new();
        let mut draining = false;
        let mut last_warning: Option<Instant> = None;
        // Payload bytes read per epoch, oldest first, until the commit frontier passes it.
        let mut in_flight: VecDeque<(Epoch, u64)> = VecDeque::new();
        let mut in_flight_bytes = 0u64;
        let mut throttled_since: Option<Instant> = None;
        let bound = config.max_in_flight_bytes;
        move |_frontiers| {
            let Some((records_cap, progress_cap)) = live.as_mut() else {
                return;
            };
            while let Some(&(epoch, bytes)) = in_flight.front() {
                if committed.less_equal(&epoch) {
                    break;
                }
                in_flight.pop_front();
                in_flight_bytes -= bytes;
            }
            let throttled = bound > 0 && replay.is_none() && in_flight_bytes >= bound;
            match (throttled, throttled_since) {
                (true, None) => throttled_since = Some(Instant::now()),
                (false, Some(since)) => {
                    config
                        .throttled_ms
                        .fetch_add(since.elapsed().as_millis() as u64, Ordering::Relaxed);
                    throttled_since = None;
                }
                _ => {}
            }
            let started = Instant::now();
            let mut read = 0usize;
            let mut read_bytes = 0u64;
            // One epoch takes at most a sixteenth of the bound (outside replay, whose records all
            // sit at time 0). The sessionizer holds an epoch's decoded rows (about 14x the
            // payload) until the epoch completes, and each vehicle's timeline holds its share
            // beyond the horizon: a backlog read in one burst per commit gave every vehicle
            // ~700 items an epoch, and the rows and timelines of 15,000 vehicles ~3 GB.
            // 4 MiB an epoch still reads ~10M points/s per worker.
            let per_epoch = (bound / EPOCH_SHARE_OF_BOUND).max(EPOCH_BUDGET_FLOOR);
            let epoch_budget = match in_flight.back() {
                _ if bound == 0 || replay.is_some() => u64::MAX,
                Some(&(at, bytes)) if at == *records_cap.time() => per_epoch.saturating_sub(bytes),
                _ => per_epoch,
            };
            while !throttled
                && read < 100_000
                && (bound == 0 || in_flight_bytes + read_bytes < bound)
                && read_bytes < epoch_budget
                && started.elapsed() < Duration::from_millis(20)
            {
                match poll_past_events(|| consumer.poll(Duration::ZERO)) {
                    None => break,
                    Some(Err(e)) => {
                        // librdkafka reconnects by itself; say so once per 10 s, not per poll.
                        if last_warning.is_none_or(|at: Instant| at.elapsed() > Duration::from_secs(10)) {
                            tracing::warn!(error = %e, "Kafka source poll (librdkafka retries)");
                            last_warning = Some(Instant::now());
                        }
                        break;
                    }
                    Some(Ok(message)) => {
                        read += 1;
                        read_bytes += message.payload_len() as u64;
                        let p = message.partition();
                        let raw = RawRecord {
                            partition: p,
                            offset: message.offset(),
                            key: message.key().map(<[u8]>::to_vec),
                            payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                        };
                        let Some(state) = owned.get_mut(&p) else { continue };
                        state.next = state.next.max(raw.offset + 1);
                        if raw.offset < state.replay_end {
                            replay_batch.push(raw);
                        } else {
                            batch.push(raw);
                        }
                    }
                }
            }
            config.records_read.fetch_add(read as u64, Ordering::Relaxed);
            let mut records_h = records_out.activate();
            if !replay_batch.is_empty() {
                let cap = replay.as_ref().expect("replay records only while replaying");
                records_h.session(cap).give_container(&mut replay_batch);
            }
            if replay.is_some() && owned.values().all(|s| s.next >= s.replay_end) {
                tracing::info!(worker, "replay done");
                replay = None;
            }
            if !batch.is_empty() {
                records_h.session(&*records_cap).give_container(&mut batch);
            }
            drop(records_h);
            if read_bytes > 0 {
                // Replay's bytes too: once replay ends they sit at an epoch the frontier passes.
                let at = *records_cap.time();
                match in_flight.back_mut() {
                    Some((epoch, bytes)) if *epoch == at => *bytes += read_bytes,
                    _ => in_flight.push_back((at, read_bytes)),
                }
                in_flight_bytes += read_bytes;
            }

            if !draining && config.shutdown.load(Ordering::Relaxed) {
                // Shutdown drains: read what the broker holds now, then stop.
                draining = true;
                for (p, state) in owned.iter_mut() {
                    match consumer.fetch_watermarks(&config.topic, *p, Duration::from_secs(5)) {
                        Ok((_, high)) => state.start_high = high,
                        Err(e) => {
                            tracing::warn!(partition = p, error = %e, "no high watermark at shutdown");
                            state.start_high = state.next;
                        }
                    }
                }
            }
            let stopping = (config.stop_when_caught_up || draining) && owned.values().all(|s| s.next >= s.start_high);
            let now = now_epoch(tick_ms, floor);
            if now > *records_cap.time() || stopping {
                // Report where each partition stands at the closing epoch, then move on.
                progress_out
                    .activate()
                    .session(&*progress_cap)
                    .give_iterator(owned.iter().map(|(p, s)| (*p, s.next)));
                if stopping && replay.is_none() {
                    live = None;
                    return;
                }
                let next = now.max(*records_cap.time() + 1);
                records_cap.downgrade(&next);
                progress_cap.downgrade(&next);
            }
            if read > 0 {
                activator.activate();
            } else {
                activator.activate_after(Duration::from_millis(tick_ms.min(50)));
            }
        }
    });
    Ok((records, progress))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_served_event_does_not_end_the_read() {
        let mut answers = [None, None, Some(7), None].into_iter();
        assert_eq!(poll_past_events(|| answers.next().flatten()), Some(7));
        let mut polls = 0;
        let nothing = poll_past_events(|| {
            polls += 1;
            None::<u8>
        });
        assert_eq!((nothing, polls), (None, EMPTY_POLLS));
    }
}
