//! `GET /v1/live/routes`: the live routes of active trips, each the open trip's fixes inside
//! the route window (`[pipeline.live] route_secs`), read from the same snapshot as the
//! vehicles' states (see `fleetflow_pipeline::live::routes`).
//!
//! Points are `[lat, lon, time_ms, speed_kmh]` arrays, oldest first: a 15,000-vehicle fleet's
//! routes are large, so a map asks for what it draws (`bbox`, `points`) and, once it holds
//! them, only the new tails (`after_ms`).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Json;
use fleetflow_live_store::store::LiveSnapshot;
use fleetflow_live_store::vehicle::LiveFix;
use fleetflow_live_store::vehicles::VehicleEntry;
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::QueryError;
use crate::live::api::{LiveApi, parse_bbox, statuses};
use crate::live::json::degrees;

/// Most points per route an answer may ask for.
pub const MAX_POINTS: usize = 100_000;

/// One active trip's live route.
#[derive(Debug, Serialize)]
pub struct RouteView {
    pub company: String,
    pub vehicle: String,
    pub status: &'static str,
    pub trip_id: String,
    pub trip_start_ms: i64,
    /// Points in the window (before thinning and `after_ms`).
    pub total_points: usize,
    /// `[lat, lon, time_ms, speed_kmh]`, oldest first.
    pub points: Vec<[f64; 4]>,
}

/// `GET /v1/live/routes[?vehicle=id][&bbox=min_lon,min_lat,max_lon,max_lat][&status=moving]
/// [&points=n][&after_ms=t][&limit=n][&company=c]`
pub(crate) async fn routes(
    State(api): State<LiveApi>,
    headers: HeaderMap,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, QueryError> {
    let (store, viewer, p) = api.open(
        &headers,
        raw,
        &["vehicle", "bbox", "status", "points", "after_ms", "limit"],
    )?;
    let bbox = p.text("bbox").map(parse_bbox).transpose()?;
    let filter = RouteFilter {
        vehicle: p.text("vehicle").map(str::to_owned),
        statuses: statuses(&p)?,
        points: p.number("points", 2..=MAX_POINTS)?.unwrap_or(MAX_POINTS),
        after_ms: p.number("after_ms", i64::MIN..=i64::MAX)?,
        limit: p.number("limit", 1..=1_000_000usize)?.unwrap_or(usize::MAX),
    };
    Ok(Json(store.read(|s| {
        let sees = |company: &str| viewer.sees(company);
        let vehicles: Vec<&VehicleEntry> = match &bbox {
            Some(bbox) => {
                let mut near: Vec<&VehicleEntry> = s
                    .near(bbox)
                    .into_iter()
                    .filter(|e| sees(e.company()))
                    .filter(|e| {
                        e.live
                            .and_then(|l| l.fix)
                            .is_some_and(|f| bbox.contains(f.lat_e7, f.lon_e7))
                    })
                    .collect();
                near.sort_unstable_by(|a, b| a.key.cmp(&b.key));
                near
            }
            None => s.vehicles.iter_where(sees).collect(),
        };
        let mut count = 0usize;
        let mut routes = Vec::new();
        for entry in vehicles {
            if filter
                .vehicle
                .as_ref()
                .is_some_and(|v| **v != **entry.vehicle())
            {
                continue;
            }
            if let Some(wanted) = &filter.statuses
                && !entry.status().is_some_and(|st| wanted.contains(&st))
            {
                continue;
            }
            // Only the routes returned are read: counting the rest is a check each.
            if routes.len() < filter.limit {
                let Some(route) = route_view(s, entry, &filter) else {
                    continue;
                };
                routes.push(route);
            } else if entry.live.is_none_or(|l| l.open_trip.is_none()) {
                continue;
            }
            count += 1;
        }
        json!({ "upto_ms": s.upto, "count": count, "routes": routes })
    })))
}

/// Which routes an answer shows, and how much of each.
#[derive(Debug)]
struct RouteFilter {
    vehicle: Option<String>,
    statuses: Option<Vec<fleetflow_live_store::Status>>,
    points: usize,
    after_ms: Option<i64>,
    limit: usize,
}

/// A vehicle's route, if it has an open trip.
fn route_view(s: &LiveSnapshot, entry: &VehicleEntry, filter: &RouteFilter) -> Option<RouteView> {
    let (trip_start_ms, fixes) = s.route(entry)?;
    let total_points = fixes.len();
    // The fixes are in time order: the newer tail is a slice.
    let newer = filter
        .after_ms
        .map_or(0, |after| fixes.partition_point(|f| f.time_ms <= after));
    let points = thin(&fixes[newer..], filter.points)
        .map(|f| {
            [
                degrees(f.lat_e7),
                degrees(f.lon_e7),
                f.time_ms as f64,
                f64::from(f.speed_dkmh) / 10.0,
            ]
        })
        .collect();
    Some(RouteView {
        company: entry.company().to_string(),
        vehicle: entry.vehicle().to_string(),
        status: entry.status()?.as_str(),
        trip_id: format!("{}:{trip_start_ms}", entry.vehicle()),
        trip_start_ms,
        total_points,
        points,
    })
}

/// At most `n` (>= 2) of `fixes`, evenly spaced, always with the first and the last.
fn thin<'a>(fixes: &'a [&'a LiveFix], n: usize) -> impl Iterator<Item = &'a LiveFix> + 'a {
    let len = fixes.len();
    let picks = len.min(n.max(2));
    (0..picks).map(move |i| {
        let at = if picks <= 1 {
            0
        } else {
            i * (len - 1) / (picks - 1)
        };
        fixes[at]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_the_ends_and_spaces_the_rest() {
        let fixes: Vec<LiveFix> = (0..10)
            .map(|t| LiveFix {
                time_ms: t,
                lat_e7: 0,
                lon_e7: 0,
                speed_dkmh: 0,
            })
            .collect();
        let refs: Vec<&LiveFix> = fixes.iter().collect();
        let times = |n| thin(&refs, n).map(|f| f.time_ms).collect::<Vec<_>>();
        assert_eq!(times(2), [0, 9]);
        assert_eq!(times(4), [0, 3, 6, 9]);
        assert_eq!(times(100), (0..10).collect::<Vec<_>>());
        assert_eq!(thin(&refs[..1], 5).count(), 1);
        assert_eq!(thin(&[], 5).count(), 0);
    }
}
