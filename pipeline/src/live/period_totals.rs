//! Period totals: per vehicle, the sums of its trips that started in the current UTC day and
//! week, maintained as a differential collection that changes when trips change and when the
//! dataflow time crosses midnight, with no input.
//!
//! The result is what a temporal filter (a trip counts while the dataflow time is inside its
//! period's window) followed by a `count_total` per vehicle would give, and the reference test
//! compares it with a from-scratch sum at every timestamp. It is one operator because the two
//! would each hold a copy of every vehicle's sum: the filter its pending retraction at the
//! window's end, the `count_total` its accumulation. This operator holds the sum once and
//! retracts it itself at the window's end: every sum it holds for a period belongs to the
//! window containing the last time it completed (a sum from an earlier window was retracted
//! when that window ended), so a held sum needs no window and a period's expiry is one scan.
//!
//! Days and weeks are UTC (weeks start on Monday); a trip counts toward the day and week it
//! started in.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use differential_dataflow::AsCollection;
use differential_dataflow::collection::vec::Collection;
use fleetflow_live_store::{Epoch, Period, PeriodTotal, VehicleKey};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;

use crate::live::earliest_capability::EarliestCapability;
use crate::rows::TripRecord;
use crate::source::stable_hash::vehicle_route;

/// A signed sum of trips: trip versions come and go (an open trip is replaced as it grows), so
/// the running sum adds and subtracts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct TripSums {
    distance_mm: i64,
    driving_ms: i64,
    trips: i64,
}

impl TripSums {
    fn add(&mut self, trip: &crate::Trip, times: isize) {
        let n = times as i64;
        self.distance_mm += trip.distance_mm as i64 * n;
        self.driving_ms += trip.moving_ms * n;
        self.trips += n;
    }

    fn plus(&mut self, other: &TripSums) {
        self.distance_mm += other.distance_mm;
        self.driving_ms += other.driving_ms;
        self.trips += other.trips;
    }

    fn is_zero(&self) -> bool {
        *self == TripSums::default()
    }

    /// The served total (a sum of present trips is never negative).
    fn total(&self) -> PeriodTotal {
        PeriodTotal {
            distance_mm: self.distance_mm.max(0) as u64,
            driving_ms: self.driving_ms,
            trips: self.trips.max(0) as u32,
        }
    }
}

/// Both periods' sums of one vehicle (indexed by [`Period::index`]).
type Sums = [TripSums; 2];

/// Extension trait: per vehicle and period, the sums of the trips in the current window.
pub trait PeriodTotals<'scope> {
    /// `(period, vehicle, total)` for every vehicle with trips in the period's current window.
    fn period_totals(self) -> Collection<'scope, Epoch, (Period, VehicleKey, PeriodTotal)>;
}

impl<'scope> PeriodTotals<'scope> for Collection<'scope, Epoch, TripRecord> {
    fn period_totals(self) -> Collection<'scope, Epoch, (Period, VehicleKey, PeriodTotal)> {
        let by_vehicle = Exchange::new(|(t, _, _): &(TripRecord, Epoch, isize)| {
            vehicle_route(&t.company, &t.vehicle)
        });
        self.inner
            .unary_frontier(by_vehicle, "PeriodTotals", move |_initial, _info| {
                // Per vehicle, each period's sum over the current window (completed times).
                let mut sums: HashMap<VehicleKey, Sums> = HashMap::new();
                // Changes not yet complete, by the time they take effect: a trip counts from
                // its arrival or its window's start, whichever is later.
                let mut pending: BTreeMap<(Epoch, VehicleKey), Sums> = BTreeMap::new();
                // The ends of the windows the held sums belong to, per period.
                let mut expiries: BTreeSet<(Epoch, Period)> = BTreeSet::new();
                // A capability at the earliest pending or expiry time.
                let mut cap = EarliestCapability::default();
                // The earliest time of a pending change or expiry.
                let earliest =
                    |pending: &BTreeMap<(Epoch, VehicleKey), Sums>,
                     expiries: &BTreeSet<(Epoch, Period)>| {
                        let next_change = pending.first_key_value().map(|((at, _), _)| *at);
                        expiries
                            .first()
                            .map(|e| e.0)
                            .into_iter()
                            .chain(next_change)
                            .min()
                    };
                move |(input, frontier), output| {
                    input.for_each(|in_cap, data| {
                        for (record, t, r) in data.drain(..) {
                            let key = (record.company, record.vehicle);
                            for period in Period::ALL {
                                let (from, until) = period.window(record.trip.start_ms);
                                let on = t.max(from);
                                if on >= until {
                                    continue; // its window ended before it arrived
                                }
                                cap.hold(&in_cap, &on);
                                pending.entry((on, key.clone())).or_default()[period.index()]
                                    .add(&record.trip, r);
                            }
                        }
                    });
                    // Complete times in order; at a time, expiries before the changes.
                    while let Some(time) = earliest(&pending, &expiries) {
                        if frontier.less_equal(&time) {
                            break;
                        }
                        let at = cap.at(&time);
                        let mut session = output.session(&at);
                        while let Some(&(end, period)) = expiries.first() {
                            if end != time {
                                break;
                            }
                            expiries.pop_first();
                            let p = period.index();
                            sums.retain(|key, held| {
                                if !held[p].is_zero() {
                                    session.give((
                                        (period, key.clone(), held[p].total()),
                                        time,
                                        -1,
                                    ));
                                    held[p] = TripSums::default();
                                }
                                held.iter().any(|s| !s.is_zero())
                            });
                        }
                        while let Some(due) = pending.first_entry() {
                            if due.key().0 != time {
                                break;
                            }
                            let ((_, key), change) = due.remove_entry();
                            let held = sums.entry(key.clone()).or_default();
                            for period in Period::ALL {
                                let p = period.index();
                                if change[p].is_zero() {
                                    continue;
                                }
                                if !held[p].is_zero() {
                                    session.give((
                                        (period, key.clone(), held[p].total()),
                                        time,
                                        -1,
                                    ));
                                }
                                held[p].plus(&change[p]);
                                if !held[p].is_zero() {
                                    session.give(((period, key.clone(), held[p].total()), time, 1));
                                }
                                expiries.insert((period.window(time as i64).1, period));
                            }
                            if held.iter().all(TripSums::is_zero) {
                                sums.remove(&key);
                            }
                        }
                    }
                    cap.settle(earliest(&pending, &expiries).as_ref());
                }
            })
            .as_collection()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    use timely::dataflow::InputHandleVec;
    use timely::dataflow::operators::{Inspect, Probe};

    use fleetflow_live_store::{DAY_MS, WEEK_MS};

    use crate::{Trip, TripRule};

    fn trip(start_ms: i64, distance_mm: u64) -> TripRecord {
        TripRecord {
            vehicle: "v".into(),
            company: "c".into(),
            trip: Trip {
                start_ms,
                rule: TripRule::Ignition,
                start_pos: None,
                end_ms: start_ms + 60_000,
                end_pos: None,
                distance_mm,
                device_distance_m: None,
                moving_ms: 60_000,
                idle_ms: 0,
                max_speed_dkmh: 0,
                points: 2,
                closed_by: None,
            },
        }
    }

    /// The day's totals change with trip versions, count a trip that starts ahead of the
    /// dataflow time only from its day on, and go at midnight with no input; the week's stay.
    #[test]
    fn totals_follow_trips_and_the_clock() {
        // Sunday 2020-12-06 00:00 UTC: a day and a week end a day later.
        let sunday: Epoch = 1_607_212_800_000;
        let monday = sunday + DAY_MS;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        timely::execute_directly(move |worker| {
            let mut input = InputHandleVec::<Epoch, (TripRecord, Epoch, isize)>::new();
            let probe = worker.dataflow::<Epoch, _, _>(|scope| {
                input
                    .to_stream(scope)
                    .as_collection()
                    .period_totals()
                    .inner
                    .inspect(move |u| sink.lock().unwrap().push(u.clone()))
                    .probe()
                    .0
            });
            let t0 = sunday + 3_600_000;
            input.advance_to(t0);
            // An open trip, then its longer version; a trip stamped Monday, seen on Sunday.
            input.send((trip(t0 as i64, 1_000), t0, 1));
            input.send((trip(monday as i64 + 5, 7), t0, 1));
            input.advance_to(t0 + 1);
            input.send((trip(t0 as i64, 1_000), t0 + 1, -1));
            input.send((trip(t0 as i64, 3_000), t0 + 1, 1));
            input.advance_to(monday + 10);
            while probe.less_than(input.time()) {
                worker.step();
            }
        });
        let total = |distance_mm, trips| PeriodTotal {
            distance_mm,
            driving_ms: 60_000 * trips as i64,
            trips,
        };
        let key: VehicleKey = ("c".into(), "v".into());
        let today = |t: Epoch, d, n, r| ((Period::Today, key.clone(), total(d, n)), t, r);
        let week = |t: Epoch, d, n, r| ((Period::Week, key.clone(), total(d, n)), t, r);
        let t0 = sunday + 3_600_000;
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_by(|a, b| (a.1, &a.0, a.2).cmp(&(b.1, &b.0, b.2)));
        let mut expected = vec![
            today(t0, 1_000, 1, 1),
            week(t0, 1_000, 1, 1),
            today(t0 + 1, 1_000, 1, -1),
            today(t0 + 1, 3_000, 1, 1),
            week(t0 + 1, 1_000, 1, -1),
            week(t0 + 1, 3_000, 1, 1),
            // Midnight ends Sunday and its week; Monday's trip counts from then.
            today(monday, 3_000, 1, -1),
            week(monday, 3_000, 1, -1),
            today(monday, 7, 1, 1),
            week(monday, 7, 1, 1),
            // The input closed at the end: every window ends (Monday, then the week).
            today(monday + DAY_MS, 7, 1, -1),
            week(monday + WEEK_MS, 7, 1, -1),
        ];
        expected.sort_by(|a, b| (a.1, &a.0, a.2).cmp(&(b.1, &b.0, b.2)));
        assert_eq!(seen, expected);
    }
}
