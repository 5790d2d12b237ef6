//! Temporal filters: a record of a collection holds only while the dataflow time (wall-clock
//! epoch milliseconds, see `kafka_source.rs`) is inside a window computed from the record, as
//! Materialize's `mz_now()` filters do. "Offline" is a last-heard time that holds from
//! `heard + silence` on; "today's trips" hold from the start of their UTC day to its end.
//!
//! An update `(d, t, r)` with window `[from, until)` becomes `(d, max(t, from), r)` and
//! `(d, max(t, until), -r)`: at any time `s` the record is present iff it was present in the
//! input at `s` and `from <= s < until`. A half due at the input's own time passes straight
//! through (a live-route fix is on its route from its arrival); the others are held back until
//! the frontier passes their time, so the filter fires on the clock alone, with no input.
//!
//! Held updates are consolidated as they arrive, in one map ordered by (time, data): a
//! last-heard time that is replaced before its silence ran out cancels its own pending
//! insertion, so the operator holds about one update per key rather than every report of the
//! silence period. Times are milliseconds and most held ones are distinct (each device's
//! silence runs out at its own millisecond), so nothing is kept per time: one entry per held
//! update, and one capability, at the earliest held time, for the whole operator. The
//! difference may be any abelian group, not only a count.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use differential_dataflow::AsCollection;
use differential_dataflow::collection::vec::Collection;
use differential_dataflow::difference::Abelian;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;

use crate::live::earliest_capability::EarliestCapability;
use crate::trips::sessionize_operator::Epoch;

/// The end of a window that never closes.
pub const FOREVER: Epoch = Epoch::MAX;

/// Extension trait: hold each record only during a window of dataflow time.
pub trait ValidDuring<'scope, D, R> {
    /// Keeps each record while the dataflow time is in its window `[from, until)` (`until` =
    /// [`FOREVER`]: no end). `window` maps a record to its window and the data to hold and
    /// send, so what only served to compute the window is not held until it closes.
    fn valid_during<D2>(
        self,
        name: &str,
        window: impl Fn(D) -> ((Epoch, Epoch), D2) + 'static,
    ) -> Collection<'scope, Epoch, D2, R>
    where
        D2: Clone + Ord + 'static;
}

impl<'scope, D, R> ValidDuring<'scope, D, R> for Collection<'scope, Epoch, D, R>
where
    D: Clone + 'static,
    R: Abelian + 'static,
{
    fn valid_during<D2>(
        self,
        name: &str,
        window: impl Fn(D) -> ((Epoch, Epoch), D2) + 'static,
    ) -> Collection<'scope, Epoch, D2, R>
    where
        D2: Clone + Ord + 'static,
    {
        self.inner
            .unary_frontier(Pipeline, name, move |_initial, _info| {
                // The updates due, by time; a capability at the earliest of their times.
                let mut held: BTreeMap<(Epoch, D2), R> = BTreeMap::new();
                let mut cap = EarliestCapability::default();
                move |(input, frontier), output| {
                    input.for_each(|in_cap, data| {
                        let mut now = output.session(&in_cap);
                        for (d, t, r) in data.drain(..) {
                            let ((from, until), d) = window(d);
                            let (on, off) = (t.max(from), t.max(until));
                            if on >= off {
                                continue; // the window closed before the update: never present
                            }
                            if until != FOREVER {
                                let mut retract = r.clone();
                                retract.negate();
                                cap.hold(&in_cap, &off);
                                hold(&mut held, off, d.clone(), retract);
                            }
                            if on == t && t == *in_cap.time() {
                                now.give((d, t, r)); // the window is open already
                            } else {
                                cap.hold(&in_cap, &on);
                                hold(&mut held, on, d, r);
                            }
                        }
                    });
                    while let Some(first) = held.first_entry() {
                        let time = first.key().0;
                        if frontier.less_equal(&time) {
                            break;
                        }
                        let at = cap.at(&time);
                        let mut session = output.session(&at);
                        while let Some(due) = held.first_entry() {
                            if due.key().0 != time {
                                break;
                            }
                            let ((_, d), r) = due.remove_entry();
                            session.give((d, time, r));
                        }
                    }
                    cap.settle(held.first_key_value().map(|((earliest, _), _)| earliest));
                }
            })
            .as_collection()
    }
}

/// Adds `r` to the update held for `d` at `at`, removing it when that cancels it (also used
/// by the local top, which holds its updates the same way).
pub(crate) fn hold<D: Ord, R: Abelian>(held: &mut BTreeMap<(Epoch, D), R>, at: Epoch, d: D, r: R) {
    if r.is_zero() {
        return;
    }
    match held.entry((at, d)) {
        Entry::Occupied(mut pending) => {
            pending.get_mut().plus_equals(&r);
            if pending.get().is_zero() {
                pending.remove();
            }
        }
        Entry::Vacant(empty) => {
            empty.insert(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use timely::dataflow::InputHandleVec;
    use timely::dataflow::operators::{Inspect, Probe};

    /// Records with windows; the collection at each time is exactly those inside theirs.
    #[test]
    fn a_record_holds_only_inside_its_window_and_fires_without_input() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        timely::execute_directly(move |worker| {
            let mut input = InputHandleVec::<Epoch, ((u32, Epoch, Epoch), Epoch, isize)>::new();
            let probe = worker.dataflow::<Epoch, _, _>(|scope| {
                input
                    .to_stream(scope)
                    .as_collection()
                    .valid_during("Test", |d: (u32, Epoch, Epoch)| ((d.1, d.2), d))
                    .inner
                    .inspect(move |u| sink.lock().unwrap().push(*u))
                    .probe()
                    .0
            });
            // a: [5, 8); b: [0, forever) but retracted at 6; c: window already passed.
            input.send(((1, 5, 8), 0, 1));
            input.send(((2, 0, FOREVER), 0, 1));
            input.send(((3, 0, 2), 3, 1));
            input.advance_to(6);
            input.send(((2, 0, FOREVER), 6, -1));
            input.advance_to(20);
            while probe.less_than(input.time()) {
                worker.step();
            }
        });
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_by_key(|u| (u.1, u.0));
        assert_eq!(
            seen,
            [
                ((2, 0, FOREVER), 0, 1),
                ((1, 5, 8), 5, 1),
                ((2, 0, FOREVER), 6, -1),
                ((1, 5, 8), 8, -1),
            ]
        );
    }
}
