//! `trips_latest` (the `LatestVersion` operator) against a plain sequential reference: seeded
//! random trip versions, shuffled across batches and partitions, some keys with many versions,
//! some with a null version, some whose newest version is deleted. The reference picks each
//! key's newest row with a hash map; both sides then answer the same SQL (filters on the key,
//! which go below the operator, and on other columns, which must not; aggregates; a self-join)
//! at 1 and 3 partitions.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use fleetflow_query::sql::derived_views;
use fleetflow_query::sql::plan::latest_version;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

#[path = "support/sorted_answer.rs"]
mod sorted_answer;
use sorted_answer::answer;

/// `{t}` is the table: `trips_latest` on the operator's side, `expected` on the reference's.
const QUERIES: &[&str] = &[
    "SELECT company, vehicle, trip_id, version, day, distance_m FROM {t}",
    "SELECT trip_id, version, distance_m FROM {t} WHERE vehicle = 'v1'",
    "SELECT vehicle, trip_id, version FROM {t} WHERE company = 'b' AND trip_id IN ('t1', 't4')",
    "SELECT company, vehicle, trip_id, version FROM {t} WHERE day = 3",
    "SELECT company, vehicle, trip_id, version FROM {t} WHERE distance_m > 50",
    "SELECT day, count(*) AS n, sum(distance_m) AS m FROM {t} GROUP BY day",
    "SELECT count(*) AS n FROM {t} a JOIN {t} b
       ON a.company = b.company AND a.vehicle = b.vehicle AND a.trip_id = b.trip_id",
];

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("company", DataType::Utf8, false),
        Field::new("vehicle", DataType::Utf8, false),
        Field::new("trip_id", DataType::Utf8, false),
        Field::new("version", DataType::Int64, true),
        Field::new("deleted", DataType::Boolean, false),
        Field::new("day", DataType::Int32, false),
        Field::new("distance_m", DataType::Float64, false),
    ]))
}

#[derive(Clone, Debug)]
struct Row {
    company: &'static str,
    vehicle: String,
    trip_id: String,
    version: Option<i64>,
    deleted: bool,
    day: i32,
    distance_m: f64,
}

/// Every version of every trip, shuffled: distinct versions per key, at most one null.
fn versions(rng: &mut SmallRng) -> Vec<Row> {
    let mut rows = Vec::new();
    for company in ["a", "b"] {
        for v in 0..rng.random_range(1..6) {
            for t in 0..rng.random_range(1..8) {
                let count = if rng.random_ratio(1, 5) {
                    12
                } else {
                    rng.random_range(1..4)
                };
                let mut numbers: Vec<i64> = (1..=count).collect();
                numbers.shuffle(rng);
                for (i, n) in numbers.into_iter().enumerate() {
                    rows.push(Row {
                        company,
                        vehicle: format!("v{v}"),
                        trip_id: format!("t{t}"),
                        version: (i > 0 || !rng.random_ratio(1, 6)).then_some(n * 3),
                        deleted: rng.random_ratio(1, 5),
                        // A correction can move a trip to another day.
                        day: rng.random_range(1..5),
                        distance_m: f64::from(rng.random_range(0..100)),
                    });
                }
            }
        }
    }
    rows.shuffle(rng);
    rows
}

fn batch(rows: &[Row]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.company),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| &r.vehicle),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| &r.trip_id),
            )),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.version))),
            Arc::new(BooleanArray::from_iter(
                rows.iter().map(|r| Some(r.deleted)),
            )),
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.day))),
            Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|r| r.distance_m),
            )),
        ],
    )
    .expect("batch")
}

/// `rows` cut into batches of random sizes (some empty), dealt to `partitions`.
fn table(rng: &mut SmallRng, rows: &[Row], partitions: usize) -> MemTable {
    let mut parts = vec![Vec::new(); partitions];
    let mut start = 0;
    while start < rows.len() {
        let end = (start + rng.random_range(0..40)).min(rows.len());
        parts[rng.random_range(0..partitions)].push(batch(&rows[start..end]));
        start = end;
    }
    MemTable::try_new(schema(), parts).expect("table")
}

/// The reference: each key's row with the greatest version (a null loses), deleted ones out.
fn newest(rows: &[Row]) -> Vec<Row> {
    let mut best: HashMap<(&str, &str, &str), &Row> = HashMap::new();
    for row in rows {
        let key = (row.company, row.vehicle.as_str(), row.trip_id.as_str());
        let slot = best.entry(key).or_insert(row);
        if row.version > slot.version {
            *slot = row;
        }
    }
    best.into_values().filter(|r| !r.deleted).cloned().collect()
}

fn context(partitions: usize) -> SessionContext {
    let config = SessionConfig::new().with_target_partitions(partitions);
    let state = latest_version::with_planner(SessionStateBuilder::new())
        .with_config(config)
        .with_default_features()
        .build();
    SessionContext::new_with_state(state)
}

#[tokio::test]
async fn same_trips_as_the_sequential_reference() {
    for seed in 0..16u64 {
        for partitions in [1, 3] {
            let mut rng = SmallRng::seed_from_u64(seed);
            let rows = versions(&mut rng);
            let ctx = context(partitions);
            let scans = rng.random_range(1..4);
            let trips = Arc::new(table(&mut rng, &rows, scans));
            ctx.register_table("trips_latest", derived_views::view(trips).expect("view"))
                .expect("register");
            let expected = MemTable::try_new(schema(), vec![vec![batch(&newest(&rows))]]);
            ctx.register_table("expected", Arc::new(expected.expect("table")))
                .expect("register");
            for query in QUERIES {
                let (want, _) = answer(&ctx, &query.replace("{t}", "expected")).await;
                let (got, plan) = answer(&ctx, &query.replace("{t}", "trips_latest")).await;
                assert!(plan.contains("LatestVersionExec"), "{query}:\n{plan}");
                assert_eq!(
                    got, want,
                    "seed {seed}, {partitions} partitions, {query}\n{plan}"
                );
            }
        }
    }
}

/// A filter on the key goes below the operator (it keeps or drops whole keys); a filter on
/// another column stays above it (it must see the newest version first).
#[tokio::test]
async fn only_key_filters_go_below() {
    let ctx = context(2);
    let mut rng = SmallRng::seed_from_u64(7);
    let rows = versions(&mut rng);
    let trips = Arc::new(table(&mut rng, &rows, 2));
    ctx.register_table("trips_latest", derived_views::view(trips).expect("view"))
        .expect("register");
    let depth = |plan: &str, operator: &str| {
        let line = (plan.lines())
            .find(|l| l.trim_start().starts_with(operator))
            .unwrap_or_else(|| panic!("no {operator} in\n{plan}"));
        line.len() - line.trim_start().len()
    };
    let (_, plan) = answer(&ctx, "SELECT * FROM trips_latest WHERE vehicle = 'v1'").await;
    assert!(
        depth(&plan, "FilterExec: vehicle") > depth(&plan, "LatestVersionExec"),
        "{plan}"
    );
    let (_, plan) = answer(&ctx, "SELECT * FROM trips_latest WHERE day = 3").await;
    assert!(
        depth(&plan, "FilterExec") < depth(&plan, "LatestVersionExec"),
        "{plan}"
    );
}
