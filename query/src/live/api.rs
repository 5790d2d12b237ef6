//! `/v1/live/*`: the live views over HTTP, for dashboards and dispatchers.
//!
//! Every answer is read from one snapshot of the [`LiveStore`] and carries `upto_ms`, the
//! dataflow time it is consistent with (every record read before it is reflected, none after).
//! Vehicle answers also carry `cursor`: `?since=<cursor>` (or `/v1/live/changes`) returns only
//! the vehicles that changed after it; an SSE stream (`/v1/live/stream`) pushes the same.
//!
//! A company token sees its own company's vehicles only; the admin token sees all, optionally
//! narrowed with `?company=`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use fleetflow_live_store::Period;
use fleetflow_live_store::Status;
use fleetflow_live_store::alerts::AlertKind;
use fleetflow_live_store::grid::{BoxE7, cluster, distance_m};
use fleetflow_live_store::store::{LiveSnapshot, LiveStore};
use fleetflow_live_store::vehicles::VehicleEntry;
use fleetflow_model::{Principal, Tenants};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::QueryError;
use crate::live::json::{AlertView, ChangeView, SummaryView, VehicleView, vehicle_view};
use crate::params::Params;

/// Largest `radius_m` for `nearby`.
pub const MAX_RADIUS_M: f64 = 100_000.0;

/// What the live endpoints read.
#[derive(Debug, Clone)]
pub struct LiveApi {
    /// `None` when this process runs no pipeline (`fleetflow ingest`): answers are 503.
    store: Option<Arc<LiveStore>>,
    tenants: Arc<Tenants>,
}

impl LiveApi {
    pub fn new(store: Option<Arc<LiveStore>>, tenants: Arc<Tenants>) -> Self {
        LiveApi { store, tenants }
    }

    /// Checks a request's parameters (`allowed`, plus `company`) and caller.
    pub(crate) fn open(
        &self,
        headers: &HeaderMap,
        raw: HashMap<String, String>,
        allowed: &[&str],
    ) -> Result<(Arc<LiveStore>, Viewer, Params), QueryError> {
        let mut names = allowed.to_vec();
        names.push("company");
        let p = Params::new(raw, &names)?;
        let token = if allowed.contains(&"token") {
            p.text("token")
        } else {
            None
        };
        let (store, viewer) = self.caller(headers, token, p.text("company"))?;
        Ok((store, viewer, p))
    }

    /// The store and who is asking. `token` is the `?token=` fallback, for browsers'
    /// `EventSource`, which cannot set headers.
    fn caller(
        &self,
        headers: &HeaderMap,
        token: Option<&str>,
        company: Option<&str>,
    ) -> Result<(Arc<LiveStore>, Viewer), QueryError> {
        let principal = crate::caller::principal(&self.tenants, headers, token)?;
        if let Some(company) = company
            && !principal.may_access(company)
        {
            return Err(QueryError::bad(
                "company",
                format!("this token cannot see company {company:?}"),
            ));
        }
        let store = self.store.clone().ok_or(QueryError::Unavailable)?;
        Ok((
            store,
            Viewer {
                principal,
                company: company.map(str::to_owned),
            },
        ))
    }
}

/// Which companies an answer may show.
#[derive(Debug, Clone)]
pub struct Viewer {
    principal: Principal,
    company: Option<String>,
}

impl Viewer {
    pub fn sees(&self, company: &str) -> bool {
        self.principal.may_access(company) && self.company.as_deref().is_none_or(|c| c == company)
    }
}

/// The routes answered from one snapshot (all but `/v1/live/routes` and `/v1/live/stream`);
/// [`super::live_routes`] adds those.
pub(crate) fn snapshot_routes() -> Router<LiveApi> {
    Router::new()
        .route("/v1/live/vehicles", get(vehicles))
        .route("/v1/live/vehicles/{id}", get(vehicle))
        .route("/v1/live/summary", get(summary))
        .route("/v1/live/nearby", get(nearby))
        .route("/v1/live/clusters", get(clusters))
        .route("/v1/live/leaderboard", get(leaderboard))
        .route("/v1/live/alerts", get(alerts))
        .route("/v1/live/geofences", get(geofences))
        .route("/v1/live/changes", get(changes))
}

type Raw = Query<HashMap<String, String>>;

pub(crate) fn statuses(p: &Params) -> Result<Option<Vec<Status>>, QueryError> {
    p.list("status", Status::parse, &Status::ALL.map(Status::as_str))
}

/// `GET /v1/live/vehicles[?status=moving,idle][&q=text][&limit=n][&company=c][&since=cursor]`
async fn vehicles(
    State(api): State<LiveApi>,
    headers: HeaderMap,
    Query(raw): Raw,
) -> Result<Response, QueryError> {
    let (store, viewer, p) = api.open(&headers, raw, &["status", "q", "limit", "since"])?;
    if let Some(since) = p.number("since", 0..=u64::MAX)? {
        return store
            .read(|s| changes_answer(s, &viewer, since))
            .map(|v| Json(v).into_response());
    }
    let filter = VehicleFilter {
        statuses: statuses(&p)?,
        text: p.text("q").map(str::to_lowercase),
        limit: p.number("limit", 1..=1_000_000usize)?.unwrap_or(usize::MAX),
    };
    // Only the views are built under the store's read lock; JSON is written after it, so a
    // large answer does not hold up the dataflow's next apply.
    Ok(Json(store.read(|s| vehicles_answer(s, &viewer, &filter))).into_response())
}

/// The full state a cursor continues from.
#[derive(Debug, Serialize)]
pub(crate) struct VehiclesAnswer {
    pub upto_ms: u64,
    pub cursor: u64,
    pub count: usize,
    pub vehicles: Vec<VehicleView>,
}

/// Which vehicles a list shows.
#[derive(Debug, Default)]
pub(crate) struct VehicleFilter {
    pub statuses: Option<Vec<Status>>,
    /// Lower-case text the vehicle id must contain.
    pub text: Option<String>,
    pub limit: usize,
}

/// `{upto_ms, cursor, count, vehicles: [...]}`: the full state a cursor continues from.
pub(crate) fn vehicles_answer(
    s: &LiveSnapshot,
    viewer: &Viewer,
    filter: &VehicleFilter,
) -> VehiclesAnswer {
    let mut matched = 0usize;
    let mut out = Vec::new();
    for entry in s.vehicles.iter_where(|company| viewer.sees(company)) {
        if filter
            .text
            .as_ref()
            .is_some_and(|q| !entry.vehicle().to_lowercase().contains(q))
        {
            continue;
        }
        if let Some(wanted) = &filter.statuses
            && !entry.status().is_some_and(|st| wanted.contains(&st))
        {
            continue;
        }
        matched += 1;
        if out.len() < filter.limit {
            out.extend(vehicle_view(entry));
        }
    }
    VehiclesAnswer {
        upto_ms: s.upto,
        cursor: s.seq,
        count: matched,
        vehicles: out,
    }
}

/// `GET /v1/live/vehicles/{id}[?company=c]`. A vehicle is a company and an id: when the caller
/// sees the id in several companies (the admin token), `company` must say which.
async fn vehicle(
    State(api): State<LiveApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(raw): Raw,
) -> Result<Json<Value>, QueryError> {
    let (store, viewer, _) = api.open(&headers, raw, &[])?;
    store.read(|s| {
        let entry = s
            .vehicles
            .find(&id, |company| viewer.sees(company))
            .ok_or_else(|| QueryError::NotFound(format!("vehicle {id:?}")))?;
        let first = entry.company();
        if let Some(other) = s
            .vehicles
            .find(&id, |company| viewer.sees(company) && company != &**first)
        {
            return Err(QueryError::BadParameter {
                parameter: "company",
                reason: format!(
                    "vehicle {id:?} is in several companies ({first}, {}, ...): name one with ?company=",
                    other.company()
                ),
            });
        }
        Ok(Json(json!({
            "upto_ms": s.upto,
            "cursor": s.seq,
            "vehicle": vehicle_view(entry),
        })))
    })
}

/// `GET /v1/live/summary[?company=c]`: per company, and the total over what the caller sees.
async fn summary(
    State(api): State<LiveApi>,
    headers: HeaderMap,
    Query(raw): Raw,
) -> Result<Json<Value>, QueryError> {
    let (store, viewer, _) = api.open(&headers, raw, &[])?;
    Ok(Json(store.read(|s| {
        let mut companies: BTreeMap<&str, SummaryView> = BTreeMap::new();
        let mut total = SummaryView {
            company: "*".into(),
            ..SummaryView::default()
        };
        for ((company, ignition, status), n) in &s.summary {
            if !viewer.sees(company) {
                continue;
            }
            let slot = companies.entry(company).or_insert_with(|| SummaryView {
                company: company.to_string(),
                ..SummaryView::default()
            });
            slot.add(*ignition, *status, *n as i64);
            total.add(*ignition, *status, *n as i64);
        }
        let companies: Vec<SummaryView> = companies.into_values().collect();
        json!({ "upto_ms": s.upto, "companies": companies, "total": total })
    })))
}

/// `GET /v1/live/geofences[?company=c]`: each geofence with a vehicle inside now, with those
/// vehicles and when each entered.
async fn geofences(
    State(api): State<LiveApi>,
    headers: HeaderMap,
    Query(raw): Raw,
) -> Result<Json<Value>, QueryError> {
    let (store, viewer, _) = api.open(&headers, raw, &[])?;
    Ok(Json(store.read(|s| {
        let mut inside: BTreeMap<(&str, &str), Vec<Value>> = BTreeMap::new();
        for entry in s.vehicles.iter_where(|c| viewer.sees(c)) {
            if entry.live.is_none() {
                continue;
            }
            for (geofence, since_ms) in &entry.geofences {
                inside
                    .entry((entry.company(), geofence))
                    .or_default()
                    .push(json!({ "vehicle": entry.vehicle(), "since_ms": since_ms }));
            }
        }
        let geofences: Vec<Value> = inside
            .into_iter()
            .map(|((company, id), vehicles)| {
                json!({ "company": company, "id": id, "count": vehicles.len(), "vehicles": vehicles })
            })
            .collect();
        json!({ "upto_ms": s.upto, "geofences": geofences })
    })))
}

/// `GET /v1/live/nearby?lat=&lon=[&radius_m=1000][&status=][&limit=10][&company=]`: vehicles
/// within the radius, nearest first.
async fn nearby(
    State(api): State<LiveApi>,
    headers: HeaderMap,
    Query(raw): Raw,
) -> Result<Json<Value>, QueryError> {
    let (store, viewer, p) = api.open(
        &headers,
        raw,
        &["lat", "lon", "radius_m", "status", "limit"],
    )?;
    let lat: f64 = p.required("lat", -90.0..=90.0)?;
    let lon: f64 = p.required("lon", -180.0..=180.0)?;
    let radius = p.number("radius_m", 1.0..=MAX_RADIUS_M)?.unwrap_or(1_000.0);
    let limit = p.number("limit", 1..=10_000usize)?.unwrap_or(10);
    let wanted = statuses(&p)?;
    let centre = ((lat * 1e7).round() as i32, (lon * 1e7).round() as i32);
    Ok(Json(store.read(|s| {
        let mut found: Vec<(f64, &VehicleEntry)> = s
            .near(&BoxE7::around(centre.0, centre.1, radius))
            .into_iter()
            .filter(|e| viewer.sees(e.company()))
            .filter(|e| {
                wanted
                    .as_ref()
                    .is_none_or(|w| e.status().is_some_and(|st| w.contains(&st)))
            })
            .filter_map(|e| {
                let fix = e.live?.fix?;
                let d = distance_m(centre, (fix.lat_e7, fix.lon_e7));
                (d <= radius).then_some((d, e))
            })
            .collect();
        found.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.key.cmp(&b.1.key)));
        let vehicles: Vec<Value> = found
            .into_iter()
            .take(limit)
            .filter_map(|(d, e)| {
                let mut v = serde_json::to_value(vehicle_view(e)?).ok()?;
                v["distance_m"] = json!((d * 10.0).round() / 10.0);
                Some(v)
            })
            .collect();
        json!({ "upto_ms": s.upto, "vehicles": vehicles })
    })))
}

/// `GET /v1/live/clusters?bbox=min_lon,min_lat,max_lon,max_lat&zoom=z[&company=]`: vehicle
/// counts per cell, by status, with the members' mean position.
async fn clusters(
    State(api): State<LiveApi>,
    headers: HeaderMap,
    Query(raw): Raw,
) -> Result<Json<Value>, QueryError> {
    let (store, viewer, p) = api.open(&headers, raw, &["bbox", "zoom"])?;
    let zoom: u8 = p.required("zoom", 0..=22)?;
    let bbox = parse_bbox(
        p.text("bbox")
            .ok_or_else(|| QueryError::bad("bbox", "required"))?,
    )?;
    Ok(Json(store.read(|s| {
        let members = s
            .near(&bbox)
            .into_iter()
            .filter(|e| viewer.sees(e.company()))
            .filter_map(|e| {
                let fix = e.live?.fix?;
                bbox.contains(fix.lat_e7, fix.lon_e7)
                    .then(|| ((fix.lat_e7, fix.lon_e7), e.status()))
            });
        let cells: Vec<Value> = cluster(members, zoom)
            .into_values()
            .map(|c| {
                let n = |st| c.members.iter().filter(|s| **s == Some(st)).count();
                json!({
                    "lat": c.lat, "lon": c.lon, "count": c.count,
                    "moving": n(Status::Moving), "idle": n(Status::Idle),
                    "parked": n(Status::Parked), "offline": n(Status::Offline),
                })
            })
            .collect();
        json!({ "upto_ms": s.upto, "zoom": zoom, "clusters": cells })
    })))
}

pub(crate) fn parse_bbox(raw: &str) -> Result<BoxE7, QueryError> {
    let bad = || {
        QueryError::bad(
            "bbox",
            format!("{raw:?} is not min_lon,min_lat,max_lon,max_lat in degrees"),
        )
    };
    let v: Vec<f64> = raw
        .split(',')
        .map(|x| x.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let [min_lon, min_lat, max_lon, max_lat] = v[..] else {
        return Err(bad());
    };
    let lon_ok = |x: f64| (-180.0..=180.0).contains(&x);
    let lat_ok = |x: f64| (-90.0..=90.0).contains(&x);
    if !(lon_ok(min_lon) && lon_ok(max_lon) && lat_ok(min_lat) && lat_ok(max_lat))
        || min_lon > max_lon
        || min_lat > max_lat
    {
        return Err(bad());
    }
    let e7 = |x: f64| (x * 1e7).round() as i32;
    Ok(BoxE7 {
        min_lat: e7(min_lat),
        min_lon: e7(min_lon),
        max_lat: e7(max_lat),
        max_lon: e7(max_lon),
    })
}

/// `GET /v1/live/leaderboard[?period=today|week][&limit=n][&company=]`: per company, the top
/// vehicles by distance in the current UTC day or week.
async fn leaderboard(
    State(api): State<LiveApi>,
    headers: HeaderMap,
    Query(raw): Raw,
) -> Result<Json<Value>, QueryError> {
    let (store, viewer, p) = api.open(&headers, raw, &["period", "limit"])?;
    let period = match p.text("period") {
        None => Period::Today,
        Some(raw) => Period::parse(raw)
            .ok_or_else(|| QueryError::bad("period", format!("{raw:?} is not today or week")))?,
    };
    let limit = p.number("limit", 1..=1_000u32)?.unwrap_or(u32::MAX);
    Ok(Json(store.read(|s| {
        let mut boards: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for ((company, p, rank), leader) in &s.leaders {
            if *p != period || *rank > limit || !viewer.sees(company) {
                continue;
            }
            boards.entry(company).or_default().push(json!({
                "rank": rank,
                "vehicle": leader.vehicle,
                "distance_m": leader.distance_mm as f64 / 1000.0,
            }));
        }
        let boards: Vec<Value> = boards
            .into_iter()
            .map(|(company, entries)| json!({ "company": company, "entries": entries }))
            .collect();
        json!({ "upto_ms": s.upto, "period": period.as_str(), "boards": boards })
    })))
}

/// `GET /v1/live/alerts[?since=seq][&kind=offline,overspeed][&limit=100][&company=]`: the
/// alerts after `since` (oldest first), or the newest `limit` without it.
async fn alerts(
    State(api): State<LiveApi>,
    headers: HeaderMap,
    Query(raw): Raw,
) -> Result<Json<Value>, QueryError> {
    let (store, viewer, p) = api.open(&headers, raw, &["since", "kind", "limit"])?;
    let kinds = p.list(
        "kind",
        AlertKind::parse,
        &AlertKind::ALL.map(AlertKind::as_str),
    )?;
    let since = p.number("since", 0..=u64::MAX)?;
    let limit = p.number("limit", 1..=10_000usize)?.unwrap_or(100);
    Ok(Json(store.read(|s| {
        let visible = s.alerts_since(since.unwrap_or(0)).filter(|a| {
            viewer.sees(&a.company) && kinds.as_ref().is_none_or(|k| k.contains(&a.kind))
        });
        let picked: Vec<AlertView> = match since {
            Some(_) => visible.take(limit).map(AlertView::from).collect(),
            None => {
                let all: Vec<_> = visible.collect();
                all[all.len().saturating_sub(limit)..]
                    .iter()
                    .map(|a| AlertView::from(*a))
                    .collect()
            }
        };
        // Page on: the last alert returned, or the feed's head when nothing was.
        let cursor = match since {
            Some(_) => picked.last().map_or(s.alert_seq, |a| a.seq),
            None => s.alert_seq,
        };
        json!({ "upto_ms": s.upto, "cursor": cursor, "alerts": picked })
    })))
}

/// `GET /v1/live/changes?since=cursor[&company=]`: the vehicles that changed after the cursor.
async fn changes(
    State(api): State<LiveApi>,
    headers: HeaderMap,
    Query(raw): Raw,
) -> Result<Response, QueryError> {
    let (store, viewer, p) = api.open(&headers, raw, &["since"])?;
    let since = p.required("since", 0..=u64::MAX)?;
    store
        .read(|s| changes_answer(s, &viewer, since))
        .map(|v| Json(v).into_response())
}

/// The change answer for a cursor: `{upto_ms, cursor, changes: [{company, vehicle, state}]}`.
pub(crate) fn changes_answer(
    s: &LiveSnapshot,
    viewer: &Viewer,
    since: u64,
) -> Result<Value, QueryError> {
    let changed = s
        .changes_since(since)
        .map_err(|e| QueryError::CursorExpired {
            cursor: e.cursor,
            oldest: e.oldest,
            newest: e.newest,
        })?;
    let changes: Vec<ChangeView> = changed
        .into_iter()
        .filter(|c| viewer.sees(c.entry.company()))
        .map(|c| ChangeView {
            company: c.entry.company().to_string(),
            vehicle: c.entry.vehicle().to_string(),
            state: vehicle_view(c.entry),
        })
        .collect();
    Ok(json!({ "upto_ms": s.upto, "cursor": s.seq, "changes": changes }))
}
