//! The ingest service's shared state and the one path every door ends in: resolve each vehicle's
//! company, then produce one record per vehicle and answer after every delivery report.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::http::{HeaderMap, header};
use fleetflow_model::{Item, ItemAttributes, Principal, Source, TelemetryRecord, Tenants, encode};

use crate::config::{AuthMode, IngestConfig, UnknownVehiclePolicy};
use crate::error::IngestError;
use crate::field::{At, Clock};
use crate::metrics::{Accepted, Endpoint, IngestMetrics};
use crate::registry::VehicleRegistry;
use crate::sink::{OutRecord, RecordSink, SinkError};

/// Milliseconds since the Unix epoch; replaceable in tests.
pub type ClockFn = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Everything the ingest handlers share. Cheap to clone.
#[derive(Clone)]
pub struct IngestState {
    inner: Arc<Inner>,
}

struct Inner {
    config: IngestConfig,
    tenants: Arc<Tenants>,
    registry: Arc<VehicleRegistry>,
    sink: Arc<dyn RecordSink>,
    metrics: IngestMetrics,
    default_company: Arc<str>,
    clock: ClockFn,
    /// `config.min_fix_date` as milliseconds since the epoch.
    min_fix_ms: i64,
}

impl std::fmt::Debug for IngestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestState")
            .field("config", &self.inner.config)
            .field("vehicles", &self.inner.registry.len())
            .finish_non_exhaustive()
    }
}

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No token, with authentication off.
    Anonymous,
    Principal(Principal),
}

/// One vehicle's items from one request, and where the request named the vehicle first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VehicleBatch {
    pub vehicle: String,
    pub field: String,
    pub items: Vec<Item>,
    /// Attributes of some items that no column holds (OsmAnd JSON), in item order.
    pub attributes: Vec<ItemAttributes>,
}

impl IngestState {
    /// `tenants` must know `config.default_company` (see [`Tenants::ensure_company`]).
    pub fn new(
        config: IngestConfig,
        tenants: Arc<Tenants>,
        registry: Arc<VehicleRegistry>,
        sink: Arc<dyn RecordSink>,
        metrics: IngestMetrics,
    ) -> Result<IngestState, IngestError> {
        let default_company = tenants
            .company(&config.default_company)
            .ok_or_else(|| IngestError::UnknownCompany(config.default_company.clone()))?;
        let min_fix_ms = chrono::NaiveDate::parse_from_str(&config.min_fix_date, "%Y-%m-%d")
            .map_err(|e| {
                IngestError::Config(format!(
                    "ingest.min_fix_date {:?} is not a YYYY-MM-DD day: {e}",
                    config.min_fix_date
                ))
            })?
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis();
        Ok(IngestState {
            inner: Arc::new(Inner {
                config,
                tenants,
                registry,
                sink,
                metrics,
                default_company,
                clock: Arc::new(|| chrono::Utc::now().timestamp_millis()),
                min_fix_ms,
            }),
        })
    }

    /// Replaces the clock (tests pin "now").
    pub fn with_clock(self, clock: ClockFn) -> IngestState {
        let inner = Arc::try_unwrap(self.inner)
            .unwrap_or_else(|_| panic!("with_clock must be called before the state is shared"));
        IngestState {
            inner: Arc::new(Inner { clock, ..inner }),
        }
    }

    pub fn config(&self) -> &IngestConfig {
        &self.inner.config
    }

    pub fn tenants(&self) -> &Tenants {
        &self.inner.tenants
    }

    pub fn registry(&self) -> &VehicleRegistry {
        &self.inner.registry
    }

    pub fn sink(&self) -> &dyn RecordSink {
        &*self.inner.sink
    }

    pub fn metrics(&self) -> &IngestMetrics {
        &self.inner.metrics
    }

    /// The server clock and the fix-time limits a request is judged by.
    pub fn clock(&self) -> Clock {
        Clock {
            min_ms: self.inner.min_fix_ms,
            now_ms: (self.inner.clock)(),
            max_future_ms: i64::try_from(self.inner.config.max_future_secs)
                .unwrap_or(i64::MAX / 4)
                .saturating_mul(1_000),
        }
    }

    /// Who is calling: the bearer token (or `query_token`, for clients that cannot set headers).
    /// A token that is given must be valid even when authentication is off.
    pub fn caller(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
    ) -> Result<Caller, IngestError> {
        let token = bearer_token(headers).or(query_token);
        match (token, self.inner.config.auth) {
            (Some(token), _) => self
                .inner
                .tenants
                .authenticate(token)
                .map(|principal| Caller::Principal(principal.clone()))
                .ok_or(IngestError::Unauthorized),
            (None, AuthMode::Off) => Ok(Caller::Anonymous),
            (None, AuthMode::Token) => Err(IngestError::Unauthorized),
        }
    }

    /// Runs one request's work, recording its outcome in the metrics.
    pub async fn observe<F>(&self, endpoint: Endpoint, work: F) -> Result<Accepted, IngestError>
    where
        F: Future<Output = Result<Accepted, IngestError>>,
    {
        let started = Instant::now();
        let outcome = work.await;
        match &outcome {
            Ok(accepted) => self
                .inner
                .metrics
                .accepted(endpoint, accepted, started.elapsed()),
            Err(error) => self.inner.metrics.rejected(endpoint, error),
        }
        outcome
    }

    /// Produces `batches` (already validated) as one record per vehicle and waits for every
    /// delivery report. Either all vehicles resolve to a company the caller may write, or
    /// nothing is produced.
    pub async fn accept(
        &self,
        caller: &Caller,
        source: Source,
        received_ms: i64,
        batches: Vec<VehicleBatch>,
    ) -> Result<Accepted, IngestError> {
        // Resolve every vehicle before any side effect.
        let mut companies = Vec::with_capacity(batches.len());
        for batch in &batches {
            companies.push(self.resolve(caller, batch)?);
        }
        let mut outcome = Accepted::default();
        let mut records = Vec::with_capacity(batches.len());
        for (batch, company) in batches.into_iter().zip(companies) {
            let company = match company {
                Resolved::Registered(company) => company,
                Resolved::Add(company) => {
                    self.inner
                        .registry
                        .add(&batch.vehicle, &company)
                        .map_err(|e| IngestError::Internal(format!("vehicle registry: {e}")))?;
                    company
                }
                Resolved::Claim(target) => {
                    let companies = self
                        .inner
                        .registry
                        .register_if_absent(&batch.vehicle, &target)
                        .map_err(|e| IngestError::Internal(format!("vehicle registry: {e}")))?;
                    // Another request may have registered it first, elsewhere.
                    sole_company(companies, &batch)?
                }
            };
            outcome.items += batch.items.len();
            outcome.points += batch
                .items
                .iter()
                .filter(|item| matches!(item, Item::Fix(_)))
                .count();
            let record = TelemetryRecord {
                source,
                received_ms,
                company: company.to_string(),
                vehicle: batch.vehicle,
                items: batch.items,
                attributes: batch.attributes,
            };
            let mut value = Vec::new();
            encode(&record, &mut value);
            records.push(OutRecord {
                key: record.vehicle,
                value,
            });
        }
        outcome.records = records.len();
        let retry_after_secs = self.inner.config.retry_after_secs;
        self.inner
            .sink
            .send(records)
            .await
            .map_err(|error| match error {
                SinkError::QueueFull => IngestError::Backpressure { retry_after_secs },
                SinkError::TooLarge { key } => IngestError::RecordTooLarge { vehicle: key },
                SinkError::NotDelivered(detail) => {
                    tracing::warn!(detail = %detail, "delivery not confirmed");
                    IngestError::DeliveryFailed { retry_after_secs }
                }
                SinkError::Fatal(detail) => IngestError::Internal(format!("kafka: {detail}")),
            })?;
        Ok(outcome)
    }

    /// Which company `batch`'s vehicle is in. A company token names it: the same vehicle id
    /// may be in several companies, each its own vehicle. Without one (auth off, or the admin
    /// token) the registry decides.
    fn resolve(&self, caller: &Caller, batch: &VehicleBatch) -> Result<Resolved, IngestError> {
        let registry = &self.inner.registry;
        if let Caller::Principal(Principal::Company(own)) = caller {
            return if registry.contains(own, &batch.vehicle) {
                Ok(Resolved::Registered(own.clone()))
            } else {
                match self.inner.config.unknown_vehicle {
                    UnknownVehiclePolicy::Reject => Err(unknown(batch)),
                    UnknownVehiclePolicy::Register => Ok(Resolved::Add(own.clone())),
                }
            };
        }
        let companies = registry.companies_of(&batch.vehicle);
        if !companies.is_empty() {
            return sole_company(companies, batch).map(Resolved::Registered);
        }
        match self.inner.config.unknown_vehicle {
            UnknownVehiclePolicy::Reject => Err(unknown(batch)),
            UnknownVehiclePolicy::Register => {
                Ok(Resolved::Claim(self.inner.default_company.clone()))
            }
        }
    }
}

enum Resolved {
    /// Registered in this company.
    Registered(Arc<str>),
    /// A company token's new vehicle: registered in its company, whoever else has the id.
    Add(Arc<str>),
    /// A new vehicle without a company token: into this (the default) company, unless another
    /// request registers it somewhere first.
    Claim(Arc<str>),
}

/// The one company in `companies` (a vehicle without a company token); several are ambiguous.
fn sole_company(companies: Vec<Arc<str>>, batch: &VehicleBatch) -> Result<Arc<str>, IngestError> {
    match <[Arc<str>; 1]>::try_from(companies) {
        Ok([company]) => Ok(company),
        Err(_) => Err(IngestError::AmbiguousVehicle {
            field: batch.field.clone(),
            vehicle: batch.vehicle.clone(),
        }),
    }
}

fn unknown(batch: &VehicleBatch) -> IngestError {
    IngestError::UnknownVehicle {
        field: batch.field.clone(),
        vehicle: batch.vehicle.clone(),
    }
}

/// `Authorization: Bearer <token>`.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    fleetflow_model::tenancy::bearer(headers.get(header::AUTHORIZATION)?.to_str().ok()?)
}

/// Groups items by vehicle, first-seen order, keeping each vehicle's items in request order.
pub fn group_by_vehicle<'a>(
    items: impl IntoIterator<Item = (Cow<'a, str>, At, Item)>,
) -> Vec<VehicleBatch> {
    let mut batches: Vec<VehicleBatch> = Vec::new();
    let mut index: HashMap<Cow<'a, str>, usize> = HashMap::new();
    // Items of one vehicle usually come together: the run's batch needs no lookup.
    let mut last: Option<(Cow<'a, str>, usize)> = None;
    for (vehicle, at, item) in items {
        if let Some((name, i)) = &last
            && *name == vehicle
        {
            batches[*i].items.push(item);
            continue;
        }
        let i = match index.get(&vehicle) {
            Some(&i) => {
                batches[i].items.push(item);
                i
            }
            None => {
                let i = batches.len();
                index.insert(vehicle.clone(), i);
                batches.push(VehicleBatch {
                    vehicle: vehicle.to_string(),
                    field: at.field("vehicle"),
                    items: vec![item],
                    attributes: Vec::new(),
                });
                i
            }
        };
        last = Some((vehicle, i));
    }
    batches
}
