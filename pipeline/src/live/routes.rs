//! Live routes: the fixes of each vehicle's open trip over the last N minutes.
//!
//! The dataflow maintains `recent`, every usable fix whose time is within the route window of
//! the dataflow time: a temporal filter ([`crate::live::temporal_filter`]) holds a fix from its
//! arrival until `time_ms + window` (rounded up to a whole second, so that expiries share
//! timestamps) and retracts it then, with no input. The store keeps `recent` per vehicle,
//! ordered by time (`fleetflow_live_store::routes`); a route is read as the vehicle's recent fixes from its open trip's start
//! on, in the same snapshot as the vehicle's state, so the two are always consistent with one
//! dataflow time. Joining at read time costs one range scan per route served, and nothing per
//! fix: no arrangement of the fixes, and no work when a vehicle's state changes.
//!
//! A route shows the raw usable fixes (GPS status valid, inside the coordinate range): a
//! position the trip machine takes for a jump stays on the live route, since whether a fix is
//! a jump can change when a late fix arrives before it, and the route is what the device sent.
//! Fixes beyond the sessionizer's horizon are not on it (the trip cannot hold them either).

use differential_dataflow::AsCollection;
use differential_dataflow::collection::vec::Collection;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;

use fleetflow_live_store::{Epoch, LiveFix, RecentFix};

use crate::live::temporal_filter::ValidDuring;
use crate::rows::{PositionRow, flags};

/// The dataflow times during which a fix taken at `time_ms` is on a live route: from its
/// arrival until `time_ms + window_ms`, rounded up to a whole second.
pub fn route_window(time_ms: i64, window_ms: u64) -> (Epoch, Epoch) {
    let until = (time_ms.max(0) as u64).saturating_add(window_ms);
    (0, until.div_ceil(1000).saturating_mul(1000))
}

/// Whether a positions row is on live routes: usable, and admitted to the vehicle's timeline.
pub fn on_route(row: &PositionRow) -> bool {
    row.flags & (flags::INVALID | flags::BEYOND_HORIZON) == 0
}

/// The usable fixes within `window_ms` of the dataflow time (empty when `window_ms` is 0), and
/// `positions` passed on unchanged for the Parquet sink.
///
/// The rows pass through this operator, by moving their containers, rather than the sink
/// reading `positions` beside it: timely copies a stream's every container for each consumer
/// but the last, and that copy of every row, into fresh memory, showed in the
/// workers' profile. A fix whose window already closed at its arrival (it is older than the
/// window) is not sent on: the window filter would drop it anyway.
pub fn recent_fixes<'scope>(
    positions: StreamVec<'scope, Epoch, PositionRow>,
    window_ms: u64,
) -> (
    Collection<'scope, Epoch, RecentFix>,
    StreamVec<'scope, Epoch, PositionRow>,
) {
    let mut builder = OperatorBuilder::new("RecentFixes".to_owned(), positions.scope());
    let mut input = builder.new_input(positions, Pipeline);
    let (recent_out, recent) = builder.new_output::<Vec<(RecentFix, Epoch, isize)>>();
    let (rows_out, rows) = builder.new_output::<Vec<PositionRow>>();
    let mut recent_out = OutputBuilder::from(recent_out);
    let mut rows_out = OutputBuilder::from(rows_out);
    builder.build(move |initial| {
        drop(initial);
        move |_frontiers| {
            let mut recent_h = recent_out.activate();
            let mut rows_h = rows_out.activate();
            input.for_each(|cap, data| {
                let time = *cap.time();
                if window_ms > 0 {
                    let open = |row: &&PositionRow| {
                        on_route(row) && route_window(row.time_ms, window_ms).1 > time
                    };
                    recent_h
                        .session(&cap.retain(0))
                        .give_iterator(data.iter().filter(open).map(|row| {
                            let fix = RecentFix {
                                fix: LiveFix {
                                    time_ms: row.time_ms,
                                    lat_e7: row.lat_e7,
                                    lon_e7: row.lon_e7,
                                    speed_dkmh: row.speed_dkmh,
                                },
                                company: row.company().clone(),
                                vehicle: row.vehicle().clone(),
                            };
                            (fix, time, 1isize)
                        }));
                }
                rows_h.session(&cap.retain(1)).give_container(data);
            });
        }
    });
    let recent = recent
        .as_collection()
        .valid_during("RouteWindow", move |f: RecentFix| {
            (route_window(f.fix.time_ms, window_ms), f)
        });
    (recent, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_end_on_whole_seconds() {
        assert_eq!(route_window(1_500, 60_000), (0, 62_000));
        assert_eq!(route_window(2_000, 60_000), (0, 62_000));
        assert_eq!(route_window(-5, 1_000), (0, 1_000));
    }
}
