//! Before the dataflow starts: is the broker the one the commit log's offsets are positions in?
//!
//! The commit log says "every record before offset `o` of partition `p` is in the tables". That
//! holds only against the log it was read from. If the broker's log was lost or replaced (a new
//! empty broker, a restored backup, another cluster), resuming at `o` would silently skip the
//! new log's first `o` records or wait for offsets that will never come back; if retention
//! deleted records the pipeline had not read yet, they are gone. Each case is refused at
//! start-up with what was found, unless the operator asks to re-baseline (`--rebaseline`):
//! then the pipeline says loudly what it does and
//! - a replaced log (other cluster id, partition missing or ending before the committed offset)
//!   is read as new, from its first record;
//! - a partition whose unread records were deleted is read on from its oldest record.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::source::kafka_source::{SourceError, partition_count};
use fleetflow_tables::commit_log::Commit;

/// What the broker holds now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerView {
    /// The cluster id the broker reports (`None`: it reported none).
    pub cluster_id: Option<String>,
    /// Per partition: (low, high) watermarks, the first offset held and the next one written.
    pub watermarks: BTreeMap<i32, (i64, i64)>,
}

/// Asks the broker for its cluster id and the topic's watermarks (waiting up to a minute for
/// the topic to exist).
pub fn observe(client: &ClientConfig, topic: &str) -> Result<BrokerView, SourceError> {
    let consumer: BaseConsumer = client.create()?;
    let partitions = partition_count(&consumer, topic, Duration::from_secs(60))?;
    let cluster_id = consumer.client().fetch_cluster_id(Duration::from_secs(10));
    let mut watermarks = BTreeMap::new();
    for p in 0..partitions {
        watermarks.insert(
            p,
            consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?,
        );
    }
    Ok(BrokerView {
        cluster_id,
        watermarks,
    })
}

/// Why the commit log's offsets do not fit the broker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerMismatch {
    #[error(
        "the broker is Kafka cluster {found:?}, but the commit log's offsets are positions in cluster {expected:?}: the broker's log was replaced"
    )]
    OtherCluster {
        expected: String,
        found: Option<String>,
    },
    #[error(
        "partition {partition} is missing on the broker, but the commit log holds offset {committed} of it: the broker's log was replaced"
    )]
    MissingPartition { partition: i32, committed: i64 },
    #[error(
        "partition {partition} ends at offset {high} on the broker, behind the commit log's {committed}: the broker lost records the tables hold (its log was lost or replaced)"
    )]
    Behind {
        partition: i32,
        committed: i64,
        high: i64,
    },
    #[error(
        "partition {partition} starts at offset {low} on the broker, past the commit log's {committed}: records {committed}..{low} were deleted (retention) before the pipeline read them"
    )]
    Deleted {
        partition: i32,
        committed: i64,
        low: i64,
    },
}

/// What the pipeline resumes from, and what it should say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// The commit to resume from, with the broker's cluster id (recorded by the next commit).
    pub resume: Option<Commit>,
    /// Mismatches found (re-baselined when the caller allowed it; otherwise `reconcile` fails).
    pub mismatches: Vec<BrokerMismatch>,
    /// Partitions whose state replay starts after `replay_from` (retention deleted records the
    /// pipeline had committed but replays to rebuild state): some vehicles' live state and open
    /// trips are not rebuilt. No committed row is lost.
    pub short_replay: Vec<(i32, i64, i64)>,
}

/// Checks `resume` against `view`. Without `rebaseline`, any mismatch is an error (all of them
/// are returned); with it, the offsets are re-based as the module doc says.
pub fn reconcile(
    resume: Option<Commit>,
    view: &BrokerView,
    rebaseline: bool,
) -> Result<Reconciled, Vec<BrokerMismatch>> {
    let Some(mut commit) = resume else {
        return Ok(Reconciled {
            resume: None,
            mismatches: Vec::new(),
            short_replay: Vec::new(),
        });
    };
    let mut mismatches = Vec::new();
    let other_cluster = match (&commit.cluster_id, &view.cluster_id) {
        (Some(expected), found) if found.as_ref() != Some(expected) => {
            mismatches.push(BrokerMismatch::OtherCluster {
                expected: expected.clone(),
                found: found.clone(),
            });
            true
        }
        _ => false,
    };
    let mut reset = Vec::new();
    let mut skip_to = Vec::new();
    let mut short_replay = Vec::new();
    for (&partition, &committed) in &commit.offsets {
        match view.watermarks.get(&partition) {
            _ if other_cluster => reset.push(partition),
            None => {
                mismatches.push(BrokerMismatch::MissingPartition {
                    partition,
                    committed,
                });
                reset.push(partition);
            }
            Some(&(_, high)) if committed > high => {
                mismatches.push(BrokerMismatch::Behind {
                    partition,
                    committed,
                    high,
                });
                reset.push(partition);
            }
            Some(&(low, _)) if committed < low => {
                mismatches.push(BrokerMismatch::Deleted {
                    partition,
                    committed,
                    low,
                });
                skip_to.push((partition, low));
            }
            Some(&(low, _)) => {
                let from = commit.replay_from.get(&partition).copied().unwrap_or(low);
                if from < low {
                    short_replay.push((partition, from, low));
                }
            }
        }
    }
    if !mismatches.is_empty() && !rebaseline {
        return Err(mismatches);
    }
    for partition in reset {
        commit.offsets.remove(&partition);
        commit.replay_from.remove(&partition);
    }
    for (partition, low) in skip_to {
        commit.offsets.insert(partition, low);
        commit.replay_from.insert(partition, low);
    }
    commit.cluster_id.clone_from(&view.cluster_id);
    Ok(Reconciled {
        resume: Some(commit),
        mismatches,
        short_replay,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(cluster: Option<&str>, offsets: &[(i32, i64)], replay: &[(i32, i64)]) -> Commit {
        Commit {
            seq: 4,
            upto_epoch: 1000,
            offsets: offsets.iter().copied().collect(),
            replay_from: replay.iter().copied().collect(),
            cluster_id: cluster.map(str::to_owned),
            ..Commit::default()
        }
    }

    fn view(cluster: Option<&str>, marks: &[(i32, i64, i64)]) -> BrokerView {
        BrokerView {
            cluster_id: cluster.map(str::to_owned),
            watermarks: marks.iter().map(|&(p, l, h)| (p, (l, h))).collect(),
        }
    }

    #[test]
    fn a_fresh_data_dir_fits_any_broker() {
        let r = reconcile(None, &view(Some("a"), &[(0, 0, 9)]), false).expect("fits");
        assert_eq!(r.resume, None);
    }

    #[test]
    fn the_same_log_resumes_and_records_its_cluster() {
        let c = commit(None, &[(0, 5), (1, 7)], &[(0, 2), (1, 7)]);
        let r = reconcile(
            Some(c.clone()),
            &view(Some("a"), &[(0, 0, 9), (1, 0, 7)]),
            false,
        )
        .expect("fits");
        let resumed = r.resume.expect("resume");
        assert_eq!(resumed.offsets, c.offsets);
        assert_eq!(resumed.replay_from, c.replay_from);
        assert_eq!(resumed.cluster_id.as_deref(), Some("a"));
        assert!(r.mismatches.is_empty() && r.short_replay.is_empty());
    }

    #[test]
    fn another_cluster_is_refused_or_read_as_new() {
        let c = commit(Some("a"), &[(0, 5), (1, 7)], &[(0, 2), (1, 7)]);
        let v = view(Some("b"), &[(0, 0, 900), (1, 0, 900)]);
        let refused = reconcile(Some(c.clone()), &v, false).expect_err("refused");
        assert!(matches!(refused[..], [BrokerMismatch::OtherCluster { .. }]));
        let r = reconcile(Some(c), &v, true).expect("re-baselined");
        let resumed = r.resume.expect("resume");
        assert!(resumed.offsets.is_empty() && resumed.replay_from.is_empty());
        assert_eq!(resumed.cluster_id.as_deref(), Some("b"));
        assert_eq!(
            (resumed.seq, resumed.upto_epoch),
            (4, 1000),
            "epochs keep rising"
        );
    }

    #[test]
    fn a_log_behind_the_commit_log_is_refused() {
        let c = commit(Some("a"), &[(0, 5), (1, 7)], &[(0, 5), (1, 7)]);
        let v = view(Some("a"), &[(0, 0, 5), (1, 0, 3)]);
        let refused = reconcile(Some(c.clone()), &v, false).expect_err("refused");
        assert_eq!(
            refused,
            vec![BrokerMismatch::Behind {
                partition: 1,
                committed: 7,
                high: 3
            }]
        );
        let resumed = reconcile(Some(c), &v, true)
            .expect("ok")
            .resume
            .expect("resume");
        assert_eq!(resumed.offsets, [(0, 5)].into(), "partition 1 read as new");
    }

    #[test]
    fn a_missing_partition_is_refused() {
        let c = commit(None, &[(0, 5), (1, 7)], &[]);
        let refused = reconcile(Some(c), &view(None, &[(0, 0, 5)]), false).expect_err("refused");
        assert!(matches!(
            refused[..],
            [BrokerMismatch::MissingPartition { partition: 1, .. }]
        ));
    }

    #[test]
    fn unread_records_deleted_by_retention_are_refused_or_skipped_explicitly() {
        let c = commit(Some("a"), &[(0, 5)], &[(0, 1)]);
        let v = view(Some("a"), &[(0, 8, 20)]);
        assert!(reconcile(Some(c.clone()), &v, false).is_err());
        let resumed = reconcile(Some(c), &v, true)
            .expect("ok")
            .resume
            .expect("resume");
        assert_eq!(resumed.offsets, [(0, 8)].into());
        assert_eq!(resumed.replay_from, [(0, 8)].into());
    }

    #[test]
    fn a_replay_cut_short_by_retention_is_reported_not_refused() {
        let c = commit(Some("a"), &[(0, 50)], &[(0, 1)]);
        let r = reconcile(Some(c), &view(Some("a"), &[(0, 10, 60)]), false).expect("fits");
        assert_eq!(r.short_replay, vec![(0, 1, 10)]);
    }
}
