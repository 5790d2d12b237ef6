//! What the reference tests share: a seeded synthetic fleet delivered out of order, with
//! duplicates and late records; its arrival cut into epochs of varying size; and one epoch of
//! the sessionizer alone.

// Each test binary uses part of what is here.
#![allow(dead_code)]

use fleetflow_model::{TelemetryRecord, encode_to_vec};
use fleetflow_pipeline::rows::{EventKind, EventRow};
use fleetflow_pipeline::synthetic::{Delivery, FleetShape, deliver, generate};
use fleetflow_pipeline::{Outputs, Provenance, RawRecord, Sessionizer};

/// The synthetic fleet starts at 2020-12-01 23:50 UTC, so trips and "today" cross midnight.
pub const FLEET_START_MS: i64 = 1_606_866_600_000;

pub fn fleet(seed: u64) -> Vec<TelemetryRecord> {
    let shape = FleetShape {
        vehicles: 12,
        fixes_per_vehicle: 3_000,
        seed,
        start_ms: FLEET_START_MS,
        ..FleetShape::default()
    };
    let delivery = Delivery {
        late_share: 0.15,
        max_delay: 300,
        duplicate_share: 0.08,
        seed: seed + 1,
    };
    deliver(generate(&shape), &delivery)
}

/// Splits arrival order into epochs of varying size.
pub fn epochs(records: &[TelemetryRecord], seed: u64) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut step = 1 + (seed as usize % 7);
    while at < records.len() {
        let end = (at + step).min(records.len());
        out.push(at..end);
        at = end;
        step = 1 + (step * 31 + 17) % 40;
    }
    out
}

/// Admits `records[range]` (each at its index as its offset, partition 0), then settles: one
/// epoch of the sessionizer alone.
pub fn admit_and_settle(
    s: &mut Sessionizer,
    records: &[TelemetryRecord],
    range: std::ops::Range<usize>,
) -> Outputs {
    let mut out = Outputs::default();
    for (offset, r) in range.clone().zip(&records[range]) {
        s.admit(
            r,
            Provenance {
                partition: 0,
                offset: offset as i64,
            },
            &mut out,
        );
    }
    s.settle(&mut out);
    out
}

/// `records` as the Kafka source reads them, one batch per epoch of `ranges`: record `i` at
/// offset `i` of partition `i % 3`, keyed by its vehicle.
pub fn raw_batches(
    records: &[TelemetryRecord],
    ranges: &[std::ops::Range<usize>],
) -> Vec<Vec<RawRecord>> {
    ranges
        .iter()
        .map(|range| {
            range
                .clone()
                .map(|i| RawRecord {
                    partition: (i % 3) as i32,
                    offset: i as i64,
                    key: Some(records[i].vehicle.clone().into_bytes()),
                    payload: encode_to_vec(&records[i]),
                })
                .collect()
        })
        .collect()
}

/// Whether the trip machine made the event (not an ignition or geofence one).
pub fn machine_made(e: &EventRow) -> bool {
    matches!(
        e.kind,
        EventKind::TripStart
            | EventKind::TripEnd
            | EventKind::Overspeed
            | EventKind::MaintenanceDue
    )
}
