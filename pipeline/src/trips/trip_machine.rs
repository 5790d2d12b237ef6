//! The trip state machine: one vehicle's accepted items, in event-time order, in; closed trips
//! and detected events out. It holds no references into the timeline, only values, so a copy of
//! it is a checkpoint the sessionizer can resume from after a late item.
//!
//! Rules (`shared/domain.md`; thresholds from [`TripRules`]):
//! - **ignition**: ignition-on opens a trip, ignition-off closes it; a second ignition-on closes
//!   the running trip first (a missed key-off).
//! - **dwell**, whenever no ignition trip runs: a stopped vehicle whose fix leaves the dwell
//!   radius around its stop point starts a trip, back-dated to where it really left: its last
//!   *still* fix (reported speed 0 and within [`STILL_M`] of the fix before), with the legs
//!   driven inside the radius since then. A moving vehicle whose fixes all stay within the dwell
//!   radius of the first of them (the arrival) for the dwell time has stopped: the trip ends
//!   where it came to rest, the first still fix since the arrival (the arrival if none was
//!   still), with its totals as they stood there.
//! - **gap**: an accepted fix more than the gap time after the previous one ends any running
//!   trip at that previous fix. If the gap covered more than the dwell radius (at a plausible
//!   speed, which the jump filter already checked) the gap itself is a trip.
//! - **quality**: fixes without a usable position are ignored; a fix whose implied speed from the
//!   previous accepted position exceeds the jump limit is a jump, ignored too.

use fleetflow_model::TripRules;
use serde::{Deserialize, Serialize};

use crate::trips::timeline::{Entry, EntryKind};
use fleetflow_live_store::trip::{CloseRule, Trip, TripRule};
use fleetflow_live_store::vehicle::{IgnitionState, LiveFix, MachineLive, Motion};
use fleetflow_model::geo::{GeoPoint, LatLonE7};

/// A stopped fix this close to the previous one, with reported speed 0, is *still*: the vehicle
/// has not begun to leave. Larger than GPS jitter at rest, smaller than a second of driving.
pub const STILL_M: f64 = 10.0;

/// [`TripRules`] in the units the machine compares in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub dwell_m: f64,
    pub dwell_ms: i64,
    pub gap_ms: i64,
    /// Jump limit, metres per second.
    pub jump_mps: f64,
    /// Overspeed limit, 0.1 km/h (0: off).
    pub overspeed_dkmh: u16,
    pub overspeed_ms: i64,
    /// Maintenance interval, metres (0: off).
    pub maintenance_m: u64,
}

impl From<&TripRules> for Limits {
    fn from(r: &TripRules) -> Self {
        Limits {
            dwell_m: r.dwell_distance_m,
            dwell_ms: i64::from(r.dwell_secs) * 1000,
            gap_ms: i64::from(r.gap_secs) * 1000,
            jump_mps: r.jump_kmh / 3.6,
            overspeed_dkmh: (r.overspeed_kmh * 10.0)
                .round()
                .clamp(0.0, f64::from(u16::MAX)) as u16,
            overspeed_ms: i64::from(r.overspeed_secs) * 1000,
            maintenance_m: u64::from(r.maintenance_interval_km) * 1000,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from(&TripRules::default())
    }
}

/// What the machine made of one fix: the quality verdict the `positions` table records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Used; inside the trip that started at this time, if any.
    Accepted { trip_start_ms: Option<i64> },
    /// No usable position: GPS status V/0/P or exactly (0,0).
    Unusable,
    /// Implied speed from the previous accepted position above the jump limit.
    Jump,
}

/// Something the machine noticed besides trips.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Detected {
    TripClosed(Trip),
    /// Speed above the limit for the minimum duration: one per episode, at the episode's start.
    Overspeed {
        since_ms: i64,
        speed_dkmh: u16,
        pos: LatLonE7,
    },
    /// An ignition-on odometer passed a multiple of the maintenance interval.
    MaintenanceDue {
        at_ms: i64,
        odometer_m: u64,
        pos: Option<LatLonE7>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Point {
    time_ms: i64,
    geo: GeoPoint,
    speed_dkmh: u16,
}

impl Point {
    fn pos(&self) -> LatLonE7 {
        self.geo.pos
    }

    fn distance_m(&self, other: &Point) -> f64 {
        self.geo.distance_m(&other.geo)
    }
}

/// A running trip's totals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Acc {
    rule: TripRule,
    start_ms: i64,
    start_pos: Option<LatLonE7>,
    end_ms: i64,
    end_pos: Option<LatLonE7>,
    distance_m: f64,
    device_distance_m: Option<u64>,
    moving_ms: i64,
    idle_ms: i64,
    max_speed_dkmh: u16,
    points: u32,
}

impl Acc {
    fn start(rule: TripRule, time_ms: i64, pos: Option<LatLonE7>) -> Acc {
        Acc {
            rule,
            start_ms: time_ms,
            start_pos: pos,
            end_ms: time_ms,
            end_pos: pos,
            distance_m: 0.0,
            device_distance_m: None,
            moving_ms: 0,
            idle_ms: 0,
            max_speed_dkmh: 0,
            points: 0,
        }
    }

    /// A dwell trip that would start at the still fix `p`.
    fn still_at(p: Point) -> Acc {
        let mut acc = Acc::start(TripRule::Dwell, p.time_ms, Some(p.pos()));
        acc.max_speed_dkmh = p.speed_dkmh;
        acc.points = 1;
        acc
    }

    /// Extends the trip to `p`, adding the leg from `prev` when it lies inside the trip.
    fn extend(&mut self, prev: Option<Leg>, p: Point, ignition_on: bool) {
        if let Some(Leg { from: prev, m: d }) = prev
            && prev.time_ms >= self.start_ms
        {
            let dt = p.time_ms - prev.time_ms;
            self.distance_m += d;
            // Moving: the device says so, or the leg covered >= 1 km/h (3600 m per hour).
            if p.speed_dkmh > 0 || d * 3600.0 >= dt as f64 {
                self.moving_ms += dt;
            } else if ignition_on {
                self.idle_ms += dt;
            }
        }
        self.start_pos.get_or_insert(p.pos());
        self.end_ms = p.time_ms;
        self.end_pos = Some(p.pos());
        self.max_speed_dkmh = self.max_speed_dkmh.max(p.speed_dkmh);
    }

    fn to_trip(self, closed_by: Option<CloseRule>) -> Trip {
        let pair = |p: LatLonE7| (p.lat_e7, p.lon_e7);
        Trip {
            start_ms: self.start_ms,
            rule: self.rule,
            start_pos: self.start_pos.map(pair),
            end_ms: self.end_ms,
            end_pos: self.end_pos.map(pair),
            distance_mm: (self.distance_m * 1000.0).round() as u64,
            device_distance_m: self.device_distance_m,
            moving_ms: self.moving_ms,
            idle_ms: self.idle_ms,
            max_speed_dkmh: self.max_speed_dkmh,
            points: self.points,
            closed_by,
        }
    }
}

/// The first fix of a possible stop, the trip as it stood there, and as it stood at the first
/// still fix after it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Arrival {
    at: Point,
    trip_there: Acc,
    trip_at_rest: Option<Acc>,
}

impl Arrival {
    fn new(at: Point, trip_there: Acc, prev: Option<Leg>) -> Arrival {
        Arrival {
            at,
            trip_there,
            trip_at_rest: is_still(prev, at).then_some(trip_there),
        }
    }
}

/// Reported speed 0 and within [`STILL_M`] of the previous fix.
fn is_still(prev: Option<Leg>, p: Point) -> bool {
    p.speed_dkmh == 0 && prev.is_none_or(|leg| leg.m <= STILL_M)
}

/// The previous accepted fix and the distance from it to the current one, measured once.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Leg {
    from: Point,
    m: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Ignition {
    Unknown,
    On,
    Off,
}

/// The machine's whole state: a value, copied to checkpoint it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    ignition: Ignition,
    /// The last accepted position: legs, jumps and gaps are measured from it.
    last: Option<Point>,
    /// While stopped: the stop point, centre of the dwell radius.
    anchor: Option<Point>,
    trip: Option<Acc>,
    /// While a dwell trip runs: the first fix of a possible stop.
    arrival: Option<Arrival>,
    /// While stopped: the trip as it would start if the vehicle left now, from its last still fix.
    departure: Option<Acc>,
    overspeed_since: Option<i64>,
    overspeed_reported: bool,
    odometer_m: Option<u64>,
    /// The motion after the last step and the item time it began at.
    motion: (Motion, i64),
}

impl Default for Machine {
    fn default() -> Self {
        Machine {
            ignition: Ignition::Unknown,
            last: None,
            anchor: None,
            trip: None,
            arrival: None,
            departure: None,
            overspeed_since: None,
            overspeed_reported: false,
            odometer_m: None,
            motion: (Motion::Parked, i64::MIN),
        }
    }
}

impl Machine {
    /// The running trip, as an open [`Trip`].
    pub fn open_trip(&self) -> Option<Trip> {
        self.trip.map(|acc| acc.to_trip(None))
    }

    /// What the live views need of this state.
    pub fn live(&self) -> MachineLive {
        MachineLive {
            fix: self.last.map(|p| LiveFix {
                time_ms: p.time_ms,
                lat_e7: p.pos().lat_e7,
                lon_e7: p.pos().lon_e7,
                speed_dkmh: p.speed_dkmh,
            }),
            ignition: match self.ignition {
                Ignition::Unknown => IgnitionState::Unknown,
                Ignition::On => IgnitionState::On,
                Ignition::Off => IgnitionState::Off,
            },
            open_trip: self.open_trip(),
            odometer_m: self.odometer_m,
            motion: self.motion.0,
            motion_since_ms: self.motion.1,
        }
    }

    /// Feeds the next entry in key order.
    pub fn step(&mut self, e: &Entry, limits: &Limits, out: &mut Vec<Detected>) -> Verdict {
        let verdict = match e.kind {
            EntryKind::IgnitionOn => self.ignition_on(e, limits, out),
            EntryKind::IgnitionOff => self.ignition_off(e, limits, out),
            EntryKind::Fix => self.fix(e, limits, out),
        };
        let motion = self.current_motion();
        if motion != self.motion.0 || self.motion.1 == i64::MIN {
            self.motion = (motion, e.time_ms);
        }
        verdict
    }

    /// Moving: a trip is open and the newest fix reports speed; idle: ignition on otherwise;
    /// parked: neither.
    fn current_motion(&self) -> Motion {
        let speed = self.last.map_or(0, |p| p.speed_dkmh);
        if self.trip.is_some() && speed > 0 {
            Motion::Moving
        } else if self.ignition == Ignition::On {
            Motion::Idle
        } else {
            Motion::Parked
        }
    }

    /// The entry's position if it is usable and not a jump, with the leg from the previous
    /// accepted fix.
    fn accept(&self, e: &Entry, limits: &Limits) -> Result<(Point, Option<Leg>), Verdict> {
        if !e.usable {
            return Err(Verdict::Unusable);
        }
        let p = Point {
            time_ms: e.time_ms,
            geo: GeoPoint::new(e.pos()),
            speed_dkmh: e.speed_dkmh,
        };
        let Some(prev) = self.last else {
            return Ok((p, None));
        };
        let m = prev.distance_m(&p);
        // Within one second any displacement above the limit's one-second reach is a jump.
        let dt_s = ((p.time_ms - prev.time_ms).max(1000)) as f64 / 1000.0;
        if m > limits.jump_mps * dt_s {
            return Err(Verdict::Jump);
        }
        Ok((p, Some(Leg { from: prev, m })))
    }

    fn close(&mut self, acc: Acc, rule: CloseRule, out: &mut Vec<Detected>) {
        out.push(Detected::TripClosed(acc.to_trip(Some(rule))));
    }

    fn ignition_on(&mut self, e: &Entry, limits: &Limits, out: &mut Vec<Detected>) -> Verdict {
        let p = self.accept(e, limits).ok().map(|(p, _)| p);
        if let Some(odometer) = e.device_m.get() {
            if let Some(before) = self.odometer_m
                && limits.maintenance_m > 0
                && odometer / limits.maintenance_m > before / limits.maintenance_m
            {
                out.push(Detected::MaintenanceDue {
                    at_ms: e.time_ms,
                    odometer_m: odometer,
                    pos: p.map(|p| p.pos()),
                });
            }
            self.odometer_m = Some(odometer);
        }
        if let Some(acc) = self.trip.take() {
            self.close(acc, CloseRule::IgnitionOn, out);
        }
        let mut acc = Acc::start(TripRule::Ignition, e.time_ms, p.map(|p| p.pos()));
        if let Some(p) = p {
            self.last = Some(p);
            acc.max_speed_dkmh = p.speed_dkmh;
        }
        self.trip = Some(acc);
        self.ignition = Ignition::On;
        self.anchor = None;
        self.arrival = None;
        self.departure = None;
        Verdict::Accepted {
            trip_start_ms: Some(e.time_ms),
        }
    }

    fn ignition_off(&mut self, e: &Entry, limits: &Limits, out: &mut Vec<Detected>) -> Verdict {
        let accepted = self.accept(e, limits).ok();
        let p = accepted.map(|(p, _)| p);
        let trip_start_ms = self.trip.map(|acc| acc.start_ms);
        if let Some(mut acc) = self.trip.take() {
            if let Some((p, leg)) = accepted {
                acc.extend(leg, p, self.ignition == Ignition::On);
            }
            acc.end_ms = e.time_ms;
            if acc.rule == TripRule::Ignition {
                acc.device_distance_m = e.device_m.get();
            }
            self.close(acc, CloseRule::IgnitionOff, out);
        }
        if let Some(p) = p {
            self.last = Some(p);
        }
        self.ignition = Ignition::Off;
        self.anchor = self.last;
        self.arrival = None;
        self.departure = None;
        Verdict::Accepted { trip_start_ms }
    }

    fn fix(&mut self, e: &Entry, limits: &Limits, out: &mut Vec<Detected>) -> Verdict {
        let (p, prev) = match self.accept(e, limits) {
            Ok(accepted) => accepted,
            Err(verdict) => return verdict,
        };
        self.last = Some(p);
        self.overspeed(p, limits, out);

        if let Some(leg) = prev
            && p.time_ms - leg.from.time_ms > limits.gap_ms
        {
            return self.after_gap(leg, p, limits, out);
        }

        let ignition_on = self.ignition == Ignition::On;
        let Some(mut acc) = self.trip else {
            return self.while_stopped(prev, p, limits);
        };
        acc.extend(prev, p, ignition_on);
        acc.points += 1;
        if acc.rule == TripRule::Dwell {
            match &mut self.arrival {
                Some(arrival) if arrival.at.distance_m(&p) <= limits.dwell_m => {
                    if arrival.trip_at_rest.is_none() && is_still(prev, p) {
                        arrival.trip_at_rest = Some(acc);
                    }
                    if p.time_ms - arrival.at.time_ms >= limits.dwell_ms {
                        let ended = arrival.trip_at_rest.unwrap_or(arrival.trip_there);
                        let stop = arrival.at;
                        self.trip = None;
                        self.arrival = None;
                        self.departure = None;
                        self.anchor = Some(stop);
                        self.close(ended, CloseRule::Dwell, out);
                        return Verdict::Accepted {
                            trip_start_ms: None,
                        };
                    }
                }
                _ => self.arrival = Some(Arrival::new(p, acc, prev)),
            }
        }
        self.trip = Some(acc);
        Verdict::Accepted {
            trip_start_ms: Some(acc.start_ms),
        }
    }

    /// An accepted fix after more than the gap time without one.
    fn after_gap(
        &mut self,
        leg: Leg,
        p: Point,
        limits: &Limits,
        out: &mut Vec<Detected>,
    ) -> Verdict {
        if let Some(acc) = self.trip.take() {
            if self.ignition == Ignition::On {
                // The key-off never came; what the ignition is now, nobody knows.
                self.ignition = Ignition::Unknown;
            }
            self.close(acc, CloseRule::Gap, out);
        }
        self.arrival = None;
        self.departure = None;
        self.anchor = Some(p);
        let prev = leg.from;
        if leg.m > limits.dwell_m {
            let mut acc = Acc::start(TripRule::Gap, prev.time_ms, Some(prev.pos()));
            acc.max_speed_dkmh = prev.speed_dkmh;
            acc.extend(Some(leg), p, false);
            acc.points = 2;
            self.close(acc, CloseRule::Gap, out);
            return Verdict::Accepted {
                trip_start_ms: Some(prev.time_ms),
            };
        }
        Verdict::Accepted {
            trip_start_ms: None,
        }
    }

    /// An accepted fix while no trip runs: does it leave the stop?
    fn while_stopped(&mut self, prev: Option<Leg>, p: Point, limits: &Limits) -> Verdict {
        let ignition_on = self.ignition == Ignition::On;
        let Some(anchor) = self.anchor else {
            self.anchor = Some(p);
            self.departure = Some(Acc::still_at(p));
            return Verdict::Accepted {
                trip_start_ms: None,
            };
        };
        if anchor.distance_m(&p) <= limits.dwell_m {
            match &mut self.departure {
                Some(departure) if !is_still(prev, p) => {
                    departure.extend(prev, p, ignition_on);
                    departure.points += 1;
                }
                _ => self.departure = Some(Acc::still_at(p)),
            }
            return Verdict::Accepted {
                trip_start_ms: None,
            };
        }
        // Leaving: the trip starts where the vehicle was last still (or, lacking one, at the
        // last fix inside the radius).
        let mut acc = self
            .departure
            .take()
            .unwrap_or_else(|| Acc::still_at(prev.map_or(anchor, |leg| leg.from)));
        acc.extend(prev, p, ignition_on);
        acc.points += 1;
        self.anchor = None;
        self.arrival = Some(Arrival::new(p, acc, prev));
        self.trip = Some(acc);
        Verdict::Accepted {
            trip_start_ms: Some(acc.start_ms),
        }
    }

    fn overspeed(&mut self, p: Point, limits: &Limits, out: &mut Vec<Detected>) {
        if limits.overspeed_dkmh == 0 || p.speed_dkmh <= limits.overspeed_dkmh {
            self.overspeed_since = None;
            self.overspeed_reported = false;
            return;
        }
        let since = *self.overspeed_since.get_or_insert(p.time_ms);
        if !self.overspeed_reported && p.time_ms - since >= limits.overspeed_ms {
            self.overspeed_reported = true;
            out.push(Detected::Overspeed {
                since_ms: since,
                speed_dkmh: p.speed_dkmh,
                pos: p.pos(),
            });
        }
    }
}
