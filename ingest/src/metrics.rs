//! Prometheus metrics of the ingest path, registered into the process registry.

use std::time::Duration;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

use crate::error::IngestError;

/// The ingest doors, as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    KeyOn,
    KeyOff,
    CycleInfo,
    Native,
    Osmand,
    Admin,
}

impl Endpoint {
    const ALL: [Endpoint; 6] = [
        Endpoint::KeyOn,
        Endpoint::KeyOff,
        Endpoint::CycleInfo,
        Endpoint::Native,
        Endpoint::Osmand,
        Endpoint::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::KeyOn => "key_on",
            Endpoint::KeyOff => "key_off",
            Endpoint::CycleInfo => "cycle_info",
            Endpoint::Native => "native",
            Endpoint::Osmand => "osmand",
            Endpoint::Admin => "admin",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone)]
struct PerEndpoint {
    accepted: IntCounter,
    points: IntCounter,
    items: IntCounter,
    ack_seconds: Histogram,
}

/// Counters and histograms, resolved per endpoint up front so the hot path only increments.
#[derive(Debug, Clone)]
pub struct IngestMetrics {
    per_endpoint: Vec<PerEndpoint>,
    rejected: IntCounterVec,
    records: IntCounter,
}

impl IngestMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<IngestMetrics> {
        let accepted = IntCounterVec::new(
            Opts::new(
                "fleetflow_ingest_requests_accepted_total",
                "Requests acknowledged after delivery.",
            ),
            &["endpoint"],
        )?;
        let points = IntCounterVec::new(
            Opts::new("fleetflow_ingest_points_total", "GPS fixes acknowledged."),
            &["endpoint"],
        )?;
        let items = IntCounterVec::new(
            Opts::new(
                "fleetflow_ingest_items_total",
                "Items (fixes and ignition events) acknowledged.",
            ),
            &["endpoint"],
        )?;
        let rejected = IntCounterVec::new(
            Opts::new(
                "fleetflow_ingest_requests_rejected_total",
                "Requests answered with an error, by reason.",
            ),
            &["endpoint", "reason"],
        )?;
        let ack_seconds = HistogramVec::new(
            HistogramOpts::new(
                "fleetflow_ingest_ack_seconds",
                "Request receipt to acknowledgement (after the delivery report).",
            )
            .buckets(vec![
                0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
            ]),
            &["endpoint"],
        )?;
        let records =
            IntCounter::new("fleetflow_ingest_records_total", "Kafka records delivered.")?;
        for collector in [
            Box::new(accepted.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(points.clone()),
            Box::new(items.clone()),
            Box::new(rejected.clone()),
            Box::new(ack_seconds.clone()),
            Box::new(records.clone()),
        ] {
            registry.register(collector)?;
        }
        let per_endpoint = Endpoint::ALL
            .iter()
            .map(|endpoint| {
                let label = [endpoint.as_str()];
                PerEndpoint {
                    accepted: accepted.with_label_values(&label),
                    points: points.with_label_values(&label),
                    items: items.with_label_values(&label),
                    ack_seconds: ack_seconds.with_label_values(&label),
                }
            })
            .collect();
        Ok(IngestMetrics {
            per_endpoint,
            rejected,
            records,
        })
    }

    pub fn accepted(&self, endpoint: Endpoint, outcome: &Accepted, elapsed: Duration) {
        let m = &self.per_endpoint[endpoint.index()];
        m.accepted.inc();
        m.points.inc_by(outcome.points as u64);
        m.items.inc_by(outcome.items as u64);
        m.ack_seconds.observe(elapsed.as_secs_f64());
        self.records.inc_by(outcome.records as u64);
    }

    pub fn rejected(&self, endpoint: Endpoint, error: &IngestError) {
        self.rejected
            .with_label_values(&[endpoint.as_str(), error.reason()])
            .inc();
    }

    /// Totals since start, for `/status` and load reports.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals {
            records: self.records.get(),
            ..Totals::default()
        };
        for m in &self.per_endpoint {
            totals.requests += m.accepted.get();
            totals.points += m.points.get();
        }
        totals
    }
}

/// What one accepted request carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accepted {
    pub records: usize,
    pub items: usize,
    pub points: usize,
}

/// Cumulative counts of acknowledged work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub requests: u64,
    pub points: u64,
    pub records: u64,
}
