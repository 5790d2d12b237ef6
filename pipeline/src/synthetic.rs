//! Seeded synthetic fleets for tests and benchmarks: vehicles that park, drive, lose GPS, jump,
//! go silent for hours and (some of them) report ignition, batched into records the way devices
//! send them, then disordered, duplicated and delayed the way networks and retries deliver them.

use fleetflow_model::{Fix, GpsStatus, Item, Source, TelemetryRecord};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct FleetShape {
    pub vehicles: usize,
    /// Fixes per vehicle (1 Hz).
    pub fixes_per_vehicle: usize,
    /// Fixes per record (Monicar sends 60).
    pub batch: usize,
    /// Share of vehicles that report ignition on/off.
    pub ignition_share: f64,
    /// Share of fixes that are invalid ((0,0) or GPS status V).
    pub invalid_share: f64,
    /// Share of fixes that are GPS jumps (tens of km off).
    pub jump_share: f64,
    pub seed: u64,
    /// First fix time, ms.
    pub start_ms: i64,
}

impl Default for FleetShape {
    fn default() -> Self {
        FleetShape {
            vehicles: 20,
            fixes_per_vehicle: 2_000,
            batch: 60,
            ignition_share: 0.5,
            invalid_share: 0.01,
            jump_share: 0.002,
            seed: 7,
            // 2020-12-01T00:00:00Z
            start_ms: 1_606_780_800_000,
        }
    }
}

pub fn vehicle_id(i: usize) -> String {
    format!("car-{i:05}")
}

pub fn company_of(i: usize) -> String {
    format!("co{}", i % 3)
}

/// Every vehicle's records in device order, vehicles interleaved by time.
pub fn generate(shape: &FleetShape) -> Vec<TelemetryRecord> {
    let mut per_vehicle: Vec<Vec<TelemetryRecord>> = (0..shape.vehicles)
        .map(|i| vehicle_records(shape, i))
        .collect();
    // Interleave round-robin: the n-th record of every vehicle, then the (n+1)-th.
    let mut out = Vec::with_capacity(per_vehicle.iter().map(Vec::len).sum());
    let longest = per_vehicle.iter().map(Vec::len).max().unwrap_or(0);
    for n in 0..longest {
        for records in &mut per_vehicle {
            if let Some(r) = records.get_mut(n) {
                out.push(std::mem::replace(
                    r,
                    TelemetryRecord {
                        source: Source::Native,
                        received_ms: 0,
                        company: String::new(),
                        vehicle: String::new(),
                        items: Vec::new(),
                        attributes: Vec::new(),
                    },
                ));
            }
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Parked { left: u32 },
    Driving { left: u32 },
}

fn vehicle_records(shape: &FleetShape, index: usize) -> Vec<TelemetryRecord> {
    let mut rng = SmallRng::seed_from_u64(
        shape.seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let uses_ignition = rng.random_bool(shape.ignition_share.clamp(0.0, 1.0));
    let vehicle = vehicle_id(index);
    let company = company_of(index);
    // Around Seoul.
    let mut lat = 37.40 + rng.random::<f64>() * 0.3;
    let mut lon = 126.80 + rng.random::<f64>() * 0.4;
    let mut heading: f64 = rng.random::<f64>() * 360.0;
    let mut t = shape.start_ms + rng.random_range(0..60_000);
    let mut phase = Phase::Parked {
        left: rng.random_range(10..400),
    };
    let mut items: Vec<Item> = Vec::new();
    let mut records = Vec::new();
    let mut fixes_in_batch = 0;
    let flush = |items: &mut Vec<Item>, records: &mut Vec<TelemetryRecord>, t: i64| {
        if !items.is_empty() {
            records.push(TelemetryRecord {
                source: Source::Native,
                received_ms: t,
                company: company.clone(),
                vehicle: vehicle.clone(),
                items: std::mem::take(items),
                attributes: Vec::new(),
            });
        }
    };
    for _ in 0..shape.fixes_per_vehicle {
        t += 1000;
        // Occasionally the device goes silent for 1-3 hours.
        if rng.random_bool(0.0005) {
            t += rng.random_range(3_600_000..10_800_000);
            // ...and may have been towed meanwhile.
            if rng.random_bool(0.5) {
                lat += 0.02;
            }
        }
        let speed_kmh = match &mut phase {
            Phase::Parked { left } => {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    phase = Phase::Driving {
                        left: rng.random_range(60..1200),
                    };
                    if uses_ignition {
                        items.push(Item::IgnitionOn {
                            at: valid_fix(t - 500, lat, lon, 0.0),
                            odometer_m: Some(
                                9_990_000 + index as u64 * 1000 + (t / 1000) as u64 % 20_000,
                            ),
                        });
                    }
                }
                0.0
            }
            Phase::Driving { left } => {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    phase = Phase::Parked {
                        left: rng.random_range(200..900),
                    };
                    if uses_ignition {
                        items.push(Item::IgnitionOff {
                            at: valid_fix(t - 500, lat, lon, 0.0),
                            trip_distance_m: Some(rng.random_range(100..50_000)),
                        });
                    }
                    0.0
                } else {
                    heading += rng.random_range(-15.0..15.0);
                    // Mostly city speeds, sometimes a highway stretch over the limit.
                    let v: f64 = if rng.random_bool(0.02) {
                        130.0
                    } else {
                        rng.random_range(5.0..90.0)
                    };
                    let metres = v / 3.6;
                    lat += metres * heading.to_radians().cos() / 111_320.0;
                    lon +=
                        metres * heading.to_radians().sin() / (111_320.0 * lat.to_radians().cos());
                    v
                }
            }
        };
        // GPS noise of a few metres, parked or not.
        let mut fix = valid_fix(t, lat + small(&mut rng), lon + small(&mut rng), speed_kmh);
        let roll: f64 = rng.random();
        if roll < shape.invalid_share {
            if rng.random_bool(0.5) {
                fix.lat_e7 = 0;
                fix.lon_e7 = 0;
            } else {
                fix.gps = GpsStatus::Invalid;
            }
        } else if roll < shape.invalid_share + shape.jump_share {
            fix.lat_e7 = fix.lat_e7.saturating_add(3_000_000);
        }
        items.push(Item::Fix(fix));
        fixes_in_batch += 1;
        if fixes_in_batch == shape.batch {
            flush(&mut items, &mut records, t + 200);
            fixes_in_batch = 0;
        }
    }
    flush(&mut items, &mut records, t + 200);
    records
}

fn small(rng: &mut SmallRng) -> f64 {
    (rng.random::<f64>() - 0.5) * 0.00006
}

fn valid_fix(time_ms: i64, lat: f64, lon: f64, speed_kmh: f64) -> Fix {
    let mut fix = Fix::new(
        time_ms,
        (lat * fleetflow_model::E7).round() as i32,
        (lon * fleetflow_model::E7).round() as i32,
    );
    fix.gps = GpsStatus::Valid;
    fix.speed_dkmh = (speed_kmh * 10.0).round() as u16;
    fix
}

/// How delivery mangles the device order.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// Share of records delivered late, up to `max_delay` positions after their turn.
    pub late_share: f64,
    pub max_delay: usize,
    /// Share of records delivered twice (a retried request).
    pub duplicate_share: f64,
    pub seed: u64,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            late_share: 0.1,
            max_delay: 500,
            duplicate_share: 0.05,
            seed: 11,
        }
    }
}

/// Reorders and duplicates `records` as `delivery` says; the result is the arrival order.
pub fn deliver(records: Vec<TelemetryRecord>, delivery: &Delivery) -> Vec<TelemetryRecord> {
    let mut rng = SmallRng::seed_from_u64(delivery.seed);
    let mut keyed: Vec<(usize, u32, TelemetryRecord)> = Vec::with_capacity(records.len() * 11 / 10);
    for (i, record) in records.into_iter().enumerate() {
        let at = if rng.random_bool(delivery.late_share) {
            i + rng.random_range(1..=delivery.max_delay.max(1))
        } else {
            i
        };
        if rng.random_bool(delivery.duplicate_share) {
            let again = at + rng.random_range(0..=delivery.max_delay.max(1));
            keyed.push((again, 1, record.clone()));
        }
        keyed.push((at, 0, record));
    }
    keyed.sort_by_key(|(at, n, _)| (*at, *n));
    keyed.into_iter().map(|(_, _, r)| r).collect()
}
