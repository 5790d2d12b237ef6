//! `/v1/history/*`: REST for dashboards over the Parquet history, built on the SQL engine (same
//! tenant scoping, timeout and row limit; plans built with DataFrame calls, parameters as
//! literals, never spliced into SQL text).
//!
//! - `route?vehicle=&from=&to=[&every=n]`: the vehicle's usable fixes (not invalid, not jumps)
//!   as GeoJSON: a `LineString` and, in `properties`, the parallel `times_ms` and
//!   `speeds_kmh`. `every=n` keeps every n-th fix (Monicar's `interval`).
//! - `trips?[vehicle=]&from=&to=`: trips (newest versions) that started in the range.
//! - `daily?[vehicle=][&from=YYYY-MM-DD&to=YYYY-MM-DD | &days=7]`: distance, driving seconds and
//!   trips per UTC day (a trip counts on the day it started), for a vehicle or the fleet; days
//!   without trips are listed with zeros.
//! - `top?from=&to=[&limit=10]`: vehicles by distance over the days.
//!
//! Times are epoch milliseconds or RFC 3339; ranges are `[from, to)`. The admin may narrow any
//! of them with `company=`.

use std::collections::{BTreeMap, HashMap};

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int32Type, Int64Type};
use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::expr_fn::sum;
use datafusion::logical_expr::{Expr, SortExpr, cast, col, lit, not};
use datafusion::prelude::DataFrame;
use fleetflow_model::Principal;
use serde_json::{Value, json};

use crate::error::QueryError;
use crate::params::Params;
use crate::sql::api::SqlApi;
use crate::sql::engine::SqlAnswer;

const DAY_MS: i64 = 86_400_000;
/// Longest range `daily` and `top` cover.
const MAX_DAYS: i64 = 366;

pub fn history_routes(api: SqlApi) -> Router {
    Router::new()
        .route("/v1/history/route", get(route))
        .route("/v1/history/trips", get(trips))
        .route("/v1/history/daily", get(daily))
        .route("/v1/history/top", get(top))
        .with_state(api)
}

type Raw = Query<HashMap<String, String>>;

/// The caller, checked parameters, and the companies filter an admin asked for.
fn open(
    api: &SqlApi,
    headers: &HeaderMap,
    raw: HashMap<String, String>,
    allowed: &[&str],
) -> Result<(Principal, Params, Option<Expr>), QueryError> {
    let mut names = allowed.to_vec();
    names.push("company");
    let p = Params::new(raw, &names)?;
    let principal = crate::caller::principal(&api.tenants, headers, None)?;
    let company = match p.text("company") {
        Some(c) if !principal.may_access(c) => {
            return Err(QueryError::bad(
                "company",
                format!("this token cannot see company {c:?}"),
            ));
        }
        Some(c) => Some(col("company").eq(lit(c.to_owned()))),
        None => None,
    };
    Ok((principal, p, company))
}

/// `vehicle = <?vehicle=>`, when given.
fn vehicle_filter(p: &Params) -> Option<Expr> {
    p.text("vehicle")
        .map(|v| col("vehicle").eq(lit(v.to_owned())))
}

/// A time parameter: epoch milliseconds or RFC 3339.
fn time_param(p: &Params, name: &'static str) -> Result<Option<i64>, QueryError> {
    let Some(raw) = p.text(name) else {
        return Ok(None);
    };
    if let Ok(ms) = raw.trim().parse::<i64>() {
        return Ok(Some(ms));
    }
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| Some(t.timestamp_millis()))
        .map_err(|_| {
            QueryError::bad(
                name,
                format!("{raw:?} is neither epoch milliseconds nor an RFC 3339 time"),
            )
        })
}

fn required_time(p: &Params, name: &'static str) -> Result<i64, QueryError> {
    time_param(p, name)?.ok_or_else(|| QueryError::bad(name, "required"))
}

/// A `YYYY-MM-DD` parameter, as days since the epoch.
fn date_param(p: &Params, name: &'static str) -> Result<Option<i64>, QueryError> {
    let Some(raw) = p.text(name) else {
        return Ok(None);
    };
    chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map(|d| {
            Some(
                d.signed_duration_since(chrono::NaiveDate::default())
                    .num_days(),
            )
        })
        .map_err(|_| QueryError::bad(name, format!("{raw:?} is not a date (YYYY-MM-DD)")))
}

fn ordered(from: i64, to: i64, what: &'static str) -> Result<(), QueryError> {
    if from >= to {
        return Err(QueryError::bad(what, "must be after from"));
    }
    Ok(())
}

fn timestamp(ms: i64) -> Expr {
    lit(ScalarValue::TimestampMillisecond(
        Some(ms),
        Some("UTC".into()),
    ))
}

fn date(days: i64) -> Expr {
    lit(ScalarValue::Date32(Some(days as i32)))
}

/// `column` in `[from_ms, to_ms)`, plus the partition range that holds it (so the scan reads
/// only those days' directories).
fn in_range(column: &str, from_ms: i64, to_ms: i64) -> Expr {
    col(column)
        .gt_eq(timestamp(from_ms))
        .and(col(column).lt(timestamp(to_ms)))
        .and(col("date").between(
            date(from_ms.div_euclid(DAY_MS)),
            date((to_ms - 1).div_euclid(DAY_MS)),
        ))
}

fn and_all(filters: impl IntoIterator<Item = Expr>) -> Expr {
    filters
        .into_iter()
        .reduce(Expr::and)
        .unwrap_or_else(|| lit(true))
}

/// What a route reads: `table`'s rows passing `filter`, shaped by `rows`, in `order`, at most
/// `limit`.
struct Read {
    table: &'static str,
    filter: Expr,
    rows: Rows,
    order: Vec<SortExpr>,
    limit: Option<usize>,
}

/// The rows a [`Read`] answers with.
enum Rows {
    /// These columns of each row.
    Columns(Vec<Expr>),
    /// Distance, driving seconds and trips per group of these keys, from a rollup view
    /// (`vehicle_daily`, `company_daily`).
    TotalsBy(Vec<Expr>),
}

/// Runs `read` as `principal` on the SQL engine (scoping, timeout, row limit).
async fn read(api: &SqlApi, principal: &Principal, read: Read) -> Result<SqlAnswer, QueryError> {
    let read = std::sync::Arc::new(read);
    api.engine
        .frame(principal, None, move |ctx| {
            let r = read.clone();
            Box::pin(async move {
                let rows = ctx.table(r.table).await?.filter(r.filter.clone())?;
                let rows = match &r.rows {
                    Rows::TotalsBy(group) => rollup_totals(rows, group.clone())?,
                    Rows::Columns(columns) => rows.select(columns.clone())?,
                };
                rows.sort(r.order.clone())?.limit(0, r.limit)
            })
        })
        .await
}

/// `GET /v1/history/route?vehicle=&from=&to=[&every=1]`
async fn route(
    State(api): State<SqlApi>,
    headers: HeaderMap,
    Query(raw): Raw,
) -> Result<Response, QueryError> {
    let (principal, p, company) = open(&api, &headers, raw, &["vehicle", "from", "to", "every"])?;
    let vehicle = p
        .text("vehicle")
        .ok_or_else(|| QueryError::bad("vehicle", "required"))?
        .to_owned();
    let (from, to) = (required_time(&p, "from")?, required_time(&p, "to")?);
    ordered(from, to, "to")?;
    let every = p.number("every", 1..=3600usize)?.unwrap_or(1);
    let filter = and_all(
        [
            Some(col("vehicle").eq(lit(vehicle.clone()))),
            Some(in_range("time", from, to)),
            Some(not(col("invalid"))),
            Some(not(col("jump"))),
            company,
        ]
        .into_iter()
        .flatten(),
    );
    let read_route = Read {
        table: "positions",
        filter,
        rows: Rows::Columns(vec![
            col("company"),
            cast(col("time"), DataType::Int64).alias("time_ms"),
            col("lat"),
            col("lon"),
            col("speed_kmh"),
        ]),
        order: vec![col("time_ms").sort(true, false)],
        limit: None,
    };
    let a = read(&api, &principal, read_route).await?;
    let mut coordinates = Vec::new();
    let mut times = Vec::new();
    let mut speeds = Vec::new();
    let mut owner = None;
    let mut n = 0usize;
    for b in &a.batches {
        let company = b.column(0).as_string::<i32>();
        let time = b.column(1).as_primitive::<Int64Type>();
        let lat = b.column(2).as_primitive::<Float64Type>();
        let lon = b.column(3).as_primitive::<Float64Type>();
        let speed = b.column(4).as_primitive::<Float32Type>();
        for i in 0..b.num_rows() {
            if n.is_multiple_of(every) {
                coordinates.push(json!([lon.value(i), lat.value(i)]));
                times.push(time.value(i));
                speeds.push(speed.value(i));
                owner.get_or_insert_with(|| company.value(i).to_owned());
            }
            n += 1;
        }
    }
    Ok(Json(json!({
        "type": "Feature",
        "geometry": { "type": "LineString", "coordinates": coordinates },
        "properties": {
            "company": owner,
            "vehicle": vehicle,
            "from_ms": from,
            "to_ms": to,
            "every": every,
            "points": times.len(),
            "truncated": a.truncated,
            "times_ms": times,
            "speeds_kmh": speeds,
        }
    }))
    .into_response())
}

/// `GET /v1/history/trips?[vehicle=]&from=&to=`
async fn trips(
    State(api): State<SqlApi>,
    headers: HeaderMap,
    Query(raw): Raw,
) -> Result<Response, QueryError> {
    let (principal, p, company) = open(&api, &headers, raw, &["vehicle", "from", "to"])?;
    let (from, to) = (required_time(&p, "from")?, required_time(&p, "to")?);
    ordered(from, to, "to")?;
    let vehicle = vehicle_filter(&p);
    let filter = and_all(
        [Some(in_range("start_time", from, to)), vehicle, company]
            .into_iter()
            .flatten(),
    );
    let read_trips = Read {
        table: "trips_latest",
        filter,
        rows: Rows::Columns(vec![
            col("company"),
            col("vehicle"),
            col("trip_id"),
            col("version"),
            col("open"),
            col("rule"),
            col("closed_by"),
            cast(col("start_time"), DataType::Int64).alias("start_ms"),
            cast(col("end_time"), DataType::Int64).alias("end_ms"),
            col("start_lat"),
            col("start_lon"),
            col("end_lat"),
            col("end_lon"),
            col("distance_m"),
            col("duration_s"),
            col("moving_s"),
            col("idle_s"),
            col("max_speed_kmh"),
            col("avg_speed_kmh"),
            col("points"),
        ]),
        order: vec![
            col("start_ms").sort(true, false),
            col("vehicle").sort(true, false),
        ],
        limit: None,
    };
    let a = read(&api, &principal, read_trips).await?;
    rows_response("trips", &a)
}

/// `{"<key>": [rows], "truncated": bool}`.
fn rows_response(key: &str, a: &SqlAnswer) -> Result<Response, QueryError> {
    let rows = crate::sql::format::json_rows(&a.batches)
        .map_err(|e| QueryError::Internal(format!("encoding rows: {e}")))?;
    let rows: Value = serde_json::from_slice(&rows)
        .map_err(|e| QueryError::Internal(format!("encoding rows: {e}")))?;
    Ok(Json(json!({ key: rows, "truncated": a.truncated })).into_response())
}

/// The days `[from, to]` of a `daily` or `top` request: `from`/`to` dates, or the last `days`
/// (default 7) up to today (UTC).
fn day_range(p: &Params) -> Result<(i64, i64), QueryError> {
    let today = chrono::Utc::now().timestamp_millis().div_euclid(DAY_MS);
    let to = date_param(p, "to")?.unwrap_or(today);
    let from = match (date_param(p, "from")?, p.number("days", 1..=MAX_DAYS)?) {
        (Some(_), Some(_)) => {
            return Err(QueryError::bad("days", "give from or days, not both"));
        }
        (Some(from), None) => from,
        (None, days) => to - days.unwrap_or(7) + 1,
    };
    if from > to {
        return Err(QueryError::bad("to", "must not be before from"));
    }
    if to - from >= MAX_DAYS {
        return Err(QueryError::bad(
            "from",
            format!("the range is longer than {MAX_DAYS} days"),
        ));
    }
    Ok((from, to))
}

/// Distance, driving seconds and trips of a rollup view's `rows` per `group`.
fn rollup_totals(rows: DataFrame, group: Vec<Expr>) -> datafusion::error::Result<DataFrame> {
    rows.aggregate(
        group,
        vec![
            sum(col("distance_m")).alias("distance_m"),
            sum(col("driving_s")).alias("driving_s"),
            sum(col("trips")).alias("trips"),
        ],
    )
}

/// `GET /v1/history/daily?[vehicle=][&from=&to= | &days=]`
async fn daily(
    State(api): State<SqlApi>,
    headers: HeaderMap,
    Query(raw): Raw,
) -> Result<Response, QueryError> {
    let (principal, p, company) = open(&api, &headers, raw, &["vehicle", "from", "to", "days"])?;
    let (from, to) = day_range(&p)?;
    let vehicle = vehicle_filter(&p);
    // The trips that started on each day, from the rollups.
    let table = match vehicle {
        Some(_) => "vehicle_daily",
        None => "company_daily",
    };
    let filter = and_all(
        [
            Some(col("date").between(date(from), date(to))),
            vehicle,
            company,
        ]
        .into_iter()
        .flatten(),
    );
    let per_day = Read {
        table,
        filter,
        rows: Rows::TotalsBy(vec![cast(col("date"), DataType::Int32).alias("day")]),
        order: vec![col("day").sort(true, false)],
        limit: None,
    };
    let a = read(&api, &principal, per_day).await?;
    let mut by_day: BTreeMap<i64, (f64, f64, i64)> =
        (from..=to).map(|d| (d, (0.0, 0.0, 0))).collect();
    for b in &a.batches {
        let day = b.column(0).as_primitive::<Int32Type>();
        let distance = b.column(1).as_primitive::<Float64Type>();
        let driving = b.column(2).as_primitive::<Float64Type>();
        let trips = b.column(3).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            let totals = (distance.value(i), driving.value(i), trips.value(i));
            by_day.insert(i64::from(day.value(i)), totals);
        }
    }
    let days: Vec<Value> = by_day
        .into_iter()
        .map(|(d, (distance_m, driving_s, trips))| {
            json!({
                "date": day_name(d),
                "distance_m": distance_m,
                "driving_s": driving_s,
                "trips": trips,
            })
        })
        .collect();
    Ok(Json(json!({ "from": day_name(from), "to": day_name(to), "days": days })).into_response())
}

/// `GET /v1/history/top?[from=&to= | days=][&limit=10]`
async fn top(
    State(api): State<SqlApi>,
    headers: HeaderMap,
    Query(raw): Raw,
) -> Result<Response, QueryError> {
    let (principal, p, company) = open(&api, &headers, raw, &["from", "to", "days", "limit"])?;
    let (from, to) = day_range(&p)?;
    let limit = p.number("limit", 1..=1000usize)?.unwrap_or(10);
    let filter = and_all(
        [Some(col("date").between(date(from), date(to))), company]
            .into_iter()
            .flatten(),
    );
    let by_vehicle = Read {
        table: "vehicle_daily",
        filter,
        rows: Rows::TotalsBy(vec![col("company"), col("vehicle")]),
        order: vec![
            col("distance_m").sort(false, false),
            col("vehicle").sort(true, false),
        ],
        limit: Some(limit),
    };
    let a = read(&api, &principal, by_vehicle).await?;
    rows_response("vehicles", &a)
}

fn day_name(days: i64) -> String {
    (chrono::NaiveDate::default() + chrono::Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}
