//! The partition key aggregate against DataFusion's hash aggregate, by reference: the same
//! queries over the same seeded random tables, with the rule replacing every aggregate it can
//! (keys that change within batches, nulls, filters, expressions of keys, several keys) and
//! without it, at 1 partition (`Single` aggregates) and 3 (`Partial` + `Final`). Over the
//! Parquet history, the engine's plan uses it for a fleet-wide `GROUP BY date`.

use std::sync::Arc;

use arrow::array::{Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_plan::displayable;
use datafusion::prelude::{SessionConfig, SessionContext};
use fleetflow_model::Principal;
use fleetflow_query::sql::plan::partition_key_aggregate::PartitionKeyAggregate;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[path = "support/sorted_answer.rs"]
mod sorted_answer;
use sorted_answer::answer;

#[path = "support/history_fixture.rs"]
mod history_fixture;

const QUERIES: &[&str] = &[
    "SELECT k, count(*), count(v), sum(v), avg(v), min(v), max(i) FROM t GROUP BY k",
    "SELECT k, s, count(*), sum(i), max(v) FROM t GROUP BY k, s",
    "SELECT k % 3 AS m, count(*), avg(i) FROM t GROUP BY k % 3",
    "SELECT s, min(i), max(i), sum(v) FROM t WHERE v > 20 GROUP BY s",
    "SELECT k, count(*) FROM t WHERE i % 2 = 0 GROUP BY k HAVING count(*) > 3",
    "SELECT k, bool_and(v > 10), bool_or(i > 90) FROM t GROUP BY k",
];

/// `batches` of `rows`: keys in runs (as files give them), sometimes changing mid-batch,
/// sometimes null; values small integers (exact as floats, so sums agree in any order).
fn table(rng: &mut SmallRng, partitions: usize) -> MemTable {
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int32, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("v", DataType::Float64, true),
        Field::new("i", DataType::Int64, false),
    ]));
    let mut parts = vec![Vec::new(); partitions];
    for part in &mut parts {
        for _ in 0..rng.random_range(1..6) {
            let rows = rng.random_range(0..200);
            let (mut k, mut s, mut v, mut i) = (vec![], vec![], vec![], vec![]);
            let mut key = rng.random_range(0..8);
            for _ in 0..rows {
                if rng.random_ratio(1, 25) {
                    key = rng.random_range(0..8);
                }
                k.push((key != 7).then_some(key));
                s.push((!rng.random_ratio(1, 30)).then(|| ["x", "y", "z"][rng.random_range(0..3)]));
                v.push((!rng.random_ratio(1, 10)).then(|| f64::from(rng.random_range(0..50))));
                i.push(rng.random_range(0..100));
            }
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int32Array::from(k)),
                    Arc::new(StringArray::from(s)),
                    Arc::new(Float64Array::from(v)),
                    Arc::new(Int64Array::from(i)),
                ],
            )
            .expect("batch");
            part.push(batch);
        }
    }
    MemTable::try_new(schema, parts).expect("table")
}

fn context(partitions: usize, rule: bool) -> SessionContext {
    let config = SessionConfig::new().with_target_partitions(partitions);
    let mut state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features();
    if rule {
        state = state.with_physical_optimizer_rule(Arc::new(PartitionKeyAggregate::for_any_keys()));
    }
    SessionContext::new_with_state(state.build())
}

#[tokio::test]
async fn same_answers_as_the_hash_aggregate() {
    for seed in 0..12u64 {
        for partitions in [1, 3] {
            let mut rng = SmallRng::seed_from_u64(seed);
            let table = Arc::new(table(&mut rng, partitions));
            let (with, without) = (context(partitions, true), context(partitions, false));
            with.register_table("t", table.clone()).expect("register");
            without.register_table("t", table).expect("register");
            for sql in QUERIES {
                let (expected, plain) = answer(&without, sql).await;
                let (got, plan) = answer(&with, sql).await;
                assert!(
                    plan.contains("PartitionKeyAggregateExec"),
                    "seed {seed}, {partitions} partitions, {sql}: not replaced:\n{plan}"
                );
                assert!(!plain.contains("PartitionKeyAggregateExec"));
                assert_eq!(
                    got, expected,
                    "seed {seed}, {partitions} partitions, {sql}\n{plan}"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_engine_uses_it_for_partition_keys_only() {
    let history = history_fixture::history("partition-key-aggregate", None);
    let plan = |sql: &'static str| {
        let engine = history.engine.clone();
        async move {
            let (ctx, _) = engine
                .session(&Principal::Company("acme".into()))
                .expect("session");
            let df = ctx.sql(sql).await.expect(sql);
            let plan = df.create_physical_plan().await.expect(sql);
            displayable(plan.as_ref()).indent(true).to_string()
        }
    };
    let daily = plan("SELECT date, count(*), avg(speed_kmh) FROM positions GROUP BY date").await;
    assert!(daily.contains("PartitionKeyAggregateExec"), "{daily}");
    let weekly = plan("SELECT date_trunc('week', date), count(*) FROM positions GROUP BY 1").await;
    assert!(weekly.contains("PartitionKeyAggregateExec"), "{weekly}");
    let per_vehicle = plan("SELECT vehicle, count(*) FROM positions GROUP BY vehicle").await;
    assert!(
        !per_vehicle.contains("PartitionKeyAggregateExec"),
        "{per_vehicle}"
    );
    let mixed = plan("SELECT date, vehicle, count(*) FROM positions GROUP BY date, vehicle").await;
    assert!(!mixed.contains("PartitionKeyAggregateExec"), "{mixed}");
}
