//! Local tops: per key, the `n` least values among the records one worker holds, as a
//! differential collection.
//!
//! A top-`n` over a large group (a company's leaderboard over all its vehicles) as one
//! `reduce` arranges every record twice over, in the reduce's input trace, and those traces
//! hold each replaced record's history until their merges compact it: about 170 bytes per
//! vehicle and period once every vehicle has reported twice (`live_memory`). The `n` least
//! values of a group are among the union of each worker's `n` least, so this operator keeps
//! each worker's records in one ordered set per key and sends on only its local top; a
//! `reduce` over that union ranks at most `n` × workers values per key.
//!
//! Updates are held until the frontier passes their time and applied in time order; at each
//! time the operator sends the difference between a touched key's local top before and after.
//! The input must be a set (every record's count is 0 or 1 at every time), as the period
//! totals are: the operator holds each present record once, without a count.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;

use differential_dataflow::collection::vec::Collection;
use differential_dataflow::{AsCollection, ExchangeData};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;

use crate::live::earliest_capability::EarliestCapability;
use crate::live::temporal_filter::hold;
use crate::trips::sessionize_operator::Epoch;

/// Extension trait: per key, this worker's `n` least values.
pub trait LocalTop<'scope, K, V> {
    /// Per key, the `n` least values among the records `route` sends to each worker; `route`
    /// must send a record's insertion and retraction to the same worker.
    fn local_top(
        self,
        n: usize,
        route: impl Fn(&K, &V) -> u64 + 'static,
    ) -> Collection<'scope, Epoch, (K, V)>;
}

impl<'scope, K, V> LocalTop<'scope, K, V> for Collection<'scope, Epoch, (K, V)>
where
    K: ExchangeData + Hash,
    V: ExchangeData,
{
    fn local_top(
        self,
        n: usize,
        route: impl Fn(&K, &V) -> u64 + 'static,
    ) -> Collection<'scope, Epoch, (K, V)> {
        let exchange = Exchange::new(move |((k, v), _, _): &((K, V), Epoch, isize)| route(k, v));
        self.inner
            .unary_frontier(exchange, "LocalTop", move |_initial, _info| {
                // Per key, the records present at the last completed time.
                let mut present: HashMap<K, BTreeSet<V>> = HashMap::new();
                // Updates not yet complete, consolidated, by time.
                let mut pending: BTreeMap<(Epoch, (K, V)), isize> = BTreeMap::new();
                let mut cap = EarliestCapability::default();
                move |(input, frontier), output| {
                    input.for_each(|in_cap, data| {
                        for (record, t, r) in data.drain(..) {
                            cap.hold(&in_cap, &t);
                            hold(&mut pending, t, record, r);
                        }
                    });
                    while let Some(first) = pending.first_entry() {
                        let time = first.key().0;
                        if frontier.less_equal(&time) {
                            break;
                        }
                        // The touched keys' tops before this time's updates.
                        let mut before: BTreeMap<K, Vec<V>> = BTreeMap::new();
                        while let Some(due) = pending.first_entry() {
                            if due.key().0 != time {
                                break;
                            }
                            let ((_, (k, v)), r) = due.remove_entry();
                            let set = present.entry(k.clone()).or_default();
                            before
                                .entry(k)
                                .or_insert_with(|| set.iter().take(n).cloned().collect());
                            if r > 0 {
                                set.insert(v);
                            } else {
                                set.remove(&v);
                            }
                        }
                        let at = cap.at(&time);
                        let mut session = output.session(&at);
                        for (k, old) in before {
                            let new: Vec<V> = match present.get(&k) {
                                Some(set) if set.is_empty() => {
                                    present.remove(&k);
                                    Vec::new()
                                }
                                Some(set) => set.iter().take(n).cloned().collect(),
                                None => Vec::new(),
                            };
                            // Both are sorted: send what left and what entered.
                            for v in old.iter().filter(|v| new.binary_search(v).is_err()) {
                                session.give(((k.clone(), v.clone()), time, -1));
                            }
                            for v in new.iter().filter(|v| old.binary_search(v).is_err()) {
                                session.give(((k.clone(), v.clone()), time, 1));
                            }
                        }
                    }
                    cap.settle(pending.first_key_value().map(|((t, _), _)| t));
                }
            })
            .as_collection()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    use differential_dataflow::input::InputSession;
    use timely::dataflow::operators::{Inspect, Probe};

    /// Seeded random changes to a set of (group, value) records, with several workers: at every
    /// time, the union of the local tops holds each group's `n` least values, and each worker's
    /// part is exactly its own records' `n` least.
    #[test]
    fn local_tops_hold_each_groups_least_values() {
        const N: usize = 3;
        for workers in [1, 3] {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let sink = seen.clone();
            let changes = changes(7);
            let fed = changes.clone();
            timely::execute(timely::Config::process(workers), move |worker| {
                let sink = sink.clone();
                let mut input = InputSession::<Epoch, (u8, u32), isize>::new();
                let probe = worker.dataflow::<Epoch, _, _>(|scope| {
                    let index = scope.index();
                    input
                        .to_collection(scope)
                        .local_top(N, |_k, v| u64::from(*v))
                        .inner
                        .inspect(move |u| sink.lock().unwrap().push((index, *u)))
                        .probe()
                        .0
                });
                for (time, batch) in fed.iter().enumerate() {
                    if worker.index() == 0 {
                        for &(record, r) in batch {
                            input.update(record, r);
                        }
                    }
                    input.advance_to(time as Epoch + 1);
                    input.flush();
                    while probe.less_than(input.time()) {
                        worker.step();
                    }
                }
            })
            .unwrap();
            let seen = seen.lock().unwrap().clone();
            let mut set = BTreeSet::new();
            for (time, batch) in changes.iter().enumerate() {
                for &(record, r) in batch {
                    if r > 0 {
                        set.insert(record);
                    } else {
                        set.remove(&record);
                    }
                }
                for worker in 0..workers {
                    // What the worker sent up to this time, accumulated.
                    let mut sent: BTreeMap<(u8, u32), isize> = BTreeMap::new();
                    for (_, (d, _, r)) in seen
                        .iter()
                        .filter(|(w, (_, t, _))| *w == worker && *t <= time as Epoch)
                    {
                        *sent.entry(*d).or_default() += r;
                    }
                    sent.retain(|_, r| *r != 0);
                    let mut expected = BTreeMap::new();
                    for group in 0..4u8 {
                        let own = set.iter().filter(|(g, v)| {
                            *g == group && (u64::from(*v) % workers as u64) as usize == worker
                        });
                        for &record in own.take(N) {
                            expected.insert(record, 1);
                        }
                    }
                    assert_eq!(
                        sent, expected,
                        "{workers} workers, worker {worker}, t {time}"
                    );
                }
            }
        }
    }

    /// Per time, insertions and retractions that keep the collection a set.
    fn changes(seed: u64) -> Vec<Vec<((u8, u32), isize)>> {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state >> 33
        };
        let mut present = BTreeSet::new();
        (0..60)
            .map(|_| {
                let mut batch = Vec::new();
                for _ in 0..(next() % 8) {
                    let record = ((next() % 4) as u8, (next() % 20) as u32);
                    if present.remove(&record) {
                        batch.push((record, -1));
                    } else {
                        present.insert(record);
                        batch.push((record, 1));
                    }
                }
                batch
            })
            .collect()
    }
}
