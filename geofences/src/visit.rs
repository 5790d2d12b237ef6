//! Visits: a vehicle inside a geofence, from its first accepted fix inside (the enter) to its
//! first accepted fix outside (the exit). The dataflow's trip machine walks each vehicle's fixes
//! in event-time order and hands every fix it accepts (usable, not a GPS jump) to the vehicle's
//! [`VisitTrack`], with the geofences that hold it; fixes it rejects never enter or exit.
//!
//! A track is small (the visits open now, usually none) and cheap to copy, so the sessionizer
//! checkpoints it beside the trip machine and re-runs it with the machine when a late fix
//! arrives: a late fix moves, splits or merges visits exactly as it does trips.

use std::cmp::Ordering;
use std::sync::Arc;

/// One visit of one vehicle to one geofence.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Visit {
    pub geofence: Arc<str>,
    pub enter_ms: i64,
    /// Degrees x 10^7 (lat, lon) of the fix that entered.
    pub enter_pos: (i32, i32),
    /// The first accepted fix outside: its time and position; `None` while inside.
    pub exit: Option<(i64, (i32, i32))>,
}

impl Visit {
    pub fn is_open(&self) -> bool {
        self.exit.is_none()
    }

    /// Seconds inside: to the exit, or (while open) to `now_ms`.
    pub fn seconds_inside(&self, now_ms: i64) -> f64 {
        let end = self.exit.map_or(now_ms, |(t, _)| t);
        (end - self.enter_ms).max(0) as f64 / 1000.0
    }
}

/// The visits open after the fixes seen so far, by geofence id.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VisitTrack {
    open: Vec<Visit>,
}

impl VisitTrack {
    /// The visits open now, sorted by geofence.
    pub fn open(&self) -> &[Visit] {
        &self.open
    }

    /// One accepted fix at `time_ms`, `pos`, held by the geofences `inside` (sorted, no
    /// repeats): visits of geofences not holding it end here and go to `closed`; geofences
    /// holding it that had no open visit get one.
    pub fn step(
        &mut self,
        time_ms: i64,
        pos: (i32, i32),
        inside: &[Arc<str>],
        closed: &mut Vec<Visit>,
    ) {
        if self.open.is_empty() && inside.is_empty() {
            return;
        }
        let mut open = std::mem::take(&mut self.open).into_iter().peekable();
        let mut inside = inside.iter().peekable();
        let mut kept = Vec::with_capacity(open.len().max(inside.len()));
        loop {
            let order = match (open.peek(), inside.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(visit), Some(g)) => visit.geofence.cmp(g),
            };
            match order {
                Ordering::Less => {
                    let mut visit = open.next().expect("peeked");
                    visit.exit = Some((time_ms, pos));
                    closed.push(visit);
                }
                Ordering::Equal => {
                    kept.push(open.next().expect("peeked"));
                    inside.next();
                }
                Ordering::Greater => kept.push(Visit {
                    geofence: inside.next().expect("peeked").clone(),
                    enter_ms: time_ms,
                    enter_pos: pos,
                    exit: None,
                }),
            }
        }
        self.open = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<Arc<str>> {
        names.iter().map(|n| Arc::from(*n)).collect()
    }

    #[test]
    fn visits_open_on_the_first_fix_inside_and_close_on_the_first_outside() {
        let mut track = VisitTrack::default();
        let mut closed = Vec::new();
        track.step(1, (0, 0), &ids(&[]), &mut closed);
        track.step(2, (1, 1), &ids(&["a"]), &mut closed);
        track.step(3, (2, 2), &ids(&["a", "b"]), &mut closed);
        track.step(4, (3, 3), &ids(&["b"]), &mut closed);
        assert_eq!(
            closed,
            [Visit {
                geofence: "a".into(),
                enter_ms: 2,
                enter_pos: (1, 1),
                exit: Some((4, (3, 3))),
            }]
        );
        assert_eq!(track.open().len(), 1);
        assert_eq!(track.open()[0].enter_ms, 3);
        assert!(track.open()[0].is_open());
        assert_eq!(track.open()[0].seconds_inside(5_003), 5.0);
        track.step(5, (4, 4), &ids(&[]), &mut closed);
        assert!(track.open().is_empty());
        assert_eq!(closed.len(), 2);
    }
}
