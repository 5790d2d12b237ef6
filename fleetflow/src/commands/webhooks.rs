//! Webhooks in a process: the `/v1/webhooks` API (wherever SQL is served), and delivery
//! beside the pipeline's committer (`run`, and process 0 of `pipeline`), prepared before the
//! pipeline starts (its commit log takes the dispatcher's read hold) and started after.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use axum::Router;
use fleetflow_live_store::LiveStore;
use fleetflow_model::Tenants;
use fleetflow_query::SuppliedTable;
use fleetflow_tables::commit_log::ReadHold;
use fleetflow_webhooks::deliver::{DeadLetter, DeadLetters};
use fleetflow_webhooks::service::Prepared;
use fleetflow_webhooks::{Subscriptions, WebhookApi, Webhooks, webhook_routes};

use crate::config::Config;
use crate::error::AppError;
use crate::http::ops::WebhookView;

/// Webhooks, before the pipeline starts.
#[derive(Debug)]
pub struct WebhookSide {
    pub routes: Router,
    prepared: Option<Prepared>,
}

impl WebhookSide {
    /// The API over `<data-dir>/webhooks/subscriptions.json`; with `deliver`, delivery too
    /// (unless `webhooks.enabled` is off).
    pub fn prepare(
        config: &Config,
        tenants: Arc<Tenants>,
        deliver: bool,
    ) -> Result<WebhookSide, AppError> {
        let failed =
            |e: fleetflow_webhooks::WebhookError| AppError::Internal(format!("webhooks: {e}"));
        let subscriptions = Arc::new(Subscriptions::open(&config.data_dir).map_err(failed)?);
        let routes = webhook_routes(WebhookApi {
            subscriptions: subscriptions.clone(),
            tenants,
        });
        let prepared = if deliver && config.webhooks.enabled {
            Some(
                Webhooks::prepare(&config.data_dir, &config.webhooks, subscriptions)
                    .map_err(failed)?,
            )
        } else {
            None
        };
        Ok(WebhookSide { routes, prepared })
    }

    /// The hold the pipeline's commit log is to keep, when delivery runs here.
    pub fn hold(&self) -> Option<ReadHold> {
        self.prepared.as_ref().map(|p| p.hold.clone())
    }

    /// Starts delivery (when prepared, on a runtime of its own), with the alerts of
    /// `live` (the pipeline's live store, when it is in this process).
    pub fn start(
        self,
        live: Option<Arc<LiveStore>>,
    ) -> Result<(Router, Option<Webhooks>), AppError> {
        let webhooks = match self.prepared {
            Some(prepared) => Some(
                Webhooks::start(prepared, live)
                    .map_err(|e| AppError::Internal(format!("webhooks: {e}")))?,
            ),
            None => None,
        };
        Ok((self.routes, webhooks))
    }
}

/// What `/status` and `/metrics` show of running webhooks.
pub fn view(webhooks: Option<&Webhooks>) -> Option<WebhookView> {
    webhooks.map(|w| WebhookView {
        stats: w.stats.clone(),
        dead_letters: w.dead_letters.clone(),
    })
}

/// `webhook_dead_letters` for SQL, where webhooks are delivered.
pub fn sql_tables(webhooks: Option<&Webhooks>) -> Vec<Arc<dyn SuppliedTable>> {
    webhooks
        .map(|w| Arc::new(DeadLetterTable(w.dead_letters.clone())) as Arc<dyn SuppliedTable>)
        .into_iter()
        .collect()
}

/// The dead-letter list as a table: one row per event given up on.
#[derive(Debug)]
struct DeadLetterTable(Arc<DeadLetters>);

impl SuppliedTable for DeadLetterTable {
    fn name(&self) -> &'static str {
        "webhook_dead_letters"
    }

    fn schema(&self) -> SchemaRef {
        let time = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        Arc::new(Schema::new(vec![
            Field::new("company", DataType::Utf8, false),
            Field::new("subscription", DataType::Utf8, false),
            Field::new("url", DataType::Utf8, false),
            Field::new("event_id", DataType::Utf8, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("vehicle", DataType::Utf8, false),
            Field::new("time", time.clone(), false),
            Field::new("attempts", DataType::Int64, false),
            Field::new("error", DataType::Utf8, false),
            Field::new("dead_at", time, false),
        ]))
    }

    fn rows(&self) -> Result<RecordBatch, ArrowError> {
        let letters = self.0.read_all();
        let text = |f: &dyn Fn(&DeadLetter) -> &str| -> ArrayRef {
            Arc::new(letters.iter().map(|l| Some(f(l))).collect::<StringArray>())
        };
        let time = |f: &dyn Fn(&DeadLetter) -> i64| -> ArrayRef {
            Arc::new(
                letters
                    .iter()
                    .map(|l| Some(f(l)))
                    .collect::<TimestampMillisecondArray>()
                    .with_timezone("UTC"),
            )
        };
        RecordBatch::try_new(
            self.schema(),
            vec![
                text(&|l| &l.company),
                text(&|l| &l.subscription),
                text(&|l| &l.url),
                text(&|l| &l.event.id),
                text(&|l| &l.event.kind),
                text(&|l| &l.event.vehicle),
                time(&|l| l.event.time_ms),
                Arc::new(
                    letters
                        .iter()
                        .map(|l| Some(i64::from(l.attempts)))
                        .collect::<Int64Array>(),
                ),
                text(&|l| &l.error),
                time(&|l| l.at_ms),
            ],
        )
    }
}
