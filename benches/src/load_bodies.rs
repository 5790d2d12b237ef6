//! The load generator's request bodies: a set of pre-serialized bodies, sent round-robin, and
//! (for runs that must deliver only distinct fixes) copies of them whose fix times are shifted
//! past every time the set holds, so the n-th request of a run carries fixes no other request
//! has, however long the run, without holding a body per request in memory.
//!
//! A shifted copy costs one copy of the body and a rewrite of its time fields in place (fixed
//! width: 13 digits of epoch ms, or Monicar's 14-character `yyyyMMddHHmmss`), a few
//! microseconds, against the hundreds a body costs to serialize.

use bytes::Bytes;
use fleetflow_model::{format_compact_time, parse_compact_time};
use serde_json::json;

/// Which endpoint the bodies are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Monicar `cycle-info`: one vehicle, 60 points a request.
    CycleInfo,
    /// Native NDJSON: `vehicles_per_body` vehicles, 60 points each.
    Native,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::CycleInfo => "cycle-info (60 points/request)",
            Scenario::Native => "native NDJSON",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Scenario::CycleInfo => fleetflow_ingest::CYCLE_INFO_PATH,
            Scenario::Native => fleetflow_ingest::NATIVE_PATH,
        }
    }

    /// How a fix time is written, and what comes just before it.
    fn time_field(self) -> (&'static str, TimeFormat) {
        match self {
            Scenario::CycleInfo => ("\"intervalAt\":\"", TimeFormat::Compact),
            Scenario::Native => ("\"time\":", TimeFormat::EpochMs),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeFormat {
    /// 13 digits of epoch milliseconds.
    EpochMs,
    /// `yyyyMMddHHmmss`.
    Compact,
}

impl TimeFormat {
    fn width(self) -> usize {
        match self {
            TimeFormat::EpochMs => 13,
            TimeFormat::Compact => 14,
        }
    }

    fn parse(self, text: &[u8]) -> Option<i64> {
        let text = std::str::from_utf8(text).ok()?;
        match self {
            TimeFormat::EpochMs => text.parse().ok(),
            TimeFormat::Compact => parse_compact_time(text).ok(),
        }
    }

    fn write(self, ms: i64, out: &mut [u8]) {
        match self {
            TimeFormat::EpochMs => {
                let mut rest = ms;
                for digit in out.iter_mut().rev() {
                    *digit = b'0' + (rest % 10) as u8;
                    rest /= 10;
                }
            }
            TimeFormat::Compact => out.copy_from_slice(format_compact_time(ms).as_bytes()),
        }
    }
}

/// One body, with where its fix times are.
#[derive(Debug)]
struct Body {
    bytes: Bytes,
    points: u64,
    /// (byte offset, fix time in ms) of every time field.
    times: Vec<(usize, i64)>,
}

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct BodyShape {
    pub scenario: Scenario,
    /// Distinct bodies generated (each carries fixes no other body has).
    pub bodies: usize,
    /// Distinct vehicles across the bodies.
    pub vehicles: usize,
    /// Vehicles per native body (60 points each).
    pub vehicles_per_body: usize,
    /// The first fix time, ms.
    pub start_ms: i64,
}

/// The bodies of a run.
#[derive(Debug)]
pub struct BodySet {
    scenario: Scenario,
    bodies: Vec<Body>,
    /// How far the times of each round past the first are shifted: past every time the set
    /// holds (whole minutes).
    round_ms: i64,
    /// Whether later rounds shift their times (false: they re-send the bodies as they are).
    distinct: bool,
}

impl BodySet {
    /// Generates the bodies. With `distinct`, request `n` past the set is body `n % len`
    /// with its times shifted by `n / len` rounds; otherwise it is that body as is.
    pub fn generate(shape: BodyShape, distinct: bool) -> Self {
        let vehicles = shape.vehicles.max(1);
        let per_body = match shape.scenario {
            Scenario::CycleInfo => 1,
            Scenario::Native => shape.vehicles_per_body.max(1),
        };
        let (marker, format) = shape.scenario.time_field();
        let bodies = (0..shape.bodies.max(1))
            .map(|n| {
                let text = body_text(shape.scenario, n, per_body, vehicles, shape.start_ms);
                let times = time_fields(&text, marker, format);
                Body {
                    points: times.len() as u64,
                    bytes: Bytes::from(text),
                    times,
                }
            })
            .collect::<Vec<_>>();
        let minutes = (bodies.len() * per_body).div_ceil(vehicles) as i64;
        BodySet {
            scenario: shape.scenario,
            bodies,
            round_ms: minutes * 60_000,
            distinct,
        }
    }

    pub fn len(&self) -> usize {
        self.bodies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }

    /// Request `n`'s body and its points.
    pub fn request(&self, n: u64) -> (Bytes, u64) {
        let len = self.bodies.len() as u64;
        let body = &self.bodies[(n % len) as usize];
        let round = (n / len) as i64;
        if !self.distinct || round == 0 {
            return (body.bytes.clone(), body.points);
        }
        let shift = round * self.round_ms;
        let (_, format) = self.scenario.time_field();
        let mut bytes = body.bytes.to_vec();
        for (at, ms) in &body.times {
            format.write(ms + shift, &mut bytes[*at..*at + format.width()]);
        }
        (Bytes::from(bytes), body.points)
    }
}

/// Body `n`: cycle-info is vehicle `n % vehicles` at minute `n / vehicles`; native body `n`
/// holds the (vehicle, minute) pairs `n * per_body ..` in the same order. Each (vehicle,
/// minute) appears in one body only.
fn body_text(scenario: Scenario, n: usize, per_body: usize, vehicles: usize, start: i64) -> String {
    match scenario {
        Scenario::CycleInfo => {
            let (vehicle, minute) = (n % vehicles, (n / vehicles) as i64);
            let list: Vec<_> = (0..60i64)
                .map(|s| {
                    json!({"intervalAt": format_compact_time(start + minute * 60_000 + s * 1_000),
                           "gcd":"A","lat":37_500_000 + (vehicle as i64 % 1000) * 100 + s * 12,
                           "lng":127_000_000 + s * 9,"ang":45,"spd":50 + s % 20,"sum":14})
                })
                .collect();
            json!({"mdn": 2_254_690_000i64 + vehicle as i64,"tid":"TID001","mid":1,
                   "pv":1,"did":1,"cCnt":60,"cList":list})
            .to_string()
        }
        Scenario::Native => {
            let mut text = String::new();
            for v in 0..per_body {
                let index = n * per_body + v;
                let (vehicle, minute) = (index % vehicles, (index / vehicles) as i64);
                for s in 0..60i64 {
                    let item = json!({"vehicle": format!("veh-{vehicle}"),
                        "time": start + minute * 60_000 + s * 1_000,
                        "lat": 37.5 + vehicle as f64 * 1e-4 + s as f64 * 1.2e-5,
                        "lon": 127.0 + s as f64 * 9e-6, "speed": 50.0, "heading": 45.0, "gps": "A"});
                    text.push_str(&item.to_string());
                    text.push('\n');
                }
            }
            text
        }
    }
}

/// (offset, ms) of every time written after `marker` in `text`.
fn time_fields(text: &str, marker: &str, format: TimeFormat) -> Vec<(usize, i64)> {
    text.match_indices(marker)
        .map(|(i, _)| {
            let at = i + marker.len();
            let ms = format
                .parse(&text.as_bytes()[at..at + format.width()])
                .expect("a fixed-width time after the marker");
            (at, ms)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn fixes(scenario: Scenario, body: &[u8]) -> Vec<(String, i64)> {
        let text = std::str::from_utf8(body).unwrap();
        match scenario {
            Scenario::Native => text
                .lines()
                .map(|line| {
                    let v: serde_json::Value = serde_json::from_str(line).unwrap();
                    (
                        v["vehicle"].as_str().unwrap().to_owned(),
                        v["time"].as_i64().unwrap(),
                    )
                })
                .collect(),
            Scenario::CycleInfo => {
                let v: serde_json::Value = serde_json::from_str(text).unwrap();
                let list = v["cList"].as_array().unwrap();
                list.iter()
                    .map(|p| {
                        let at = p["intervalAt"].as_str().unwrap();
                        (v["mdn"].to_string(), parse_compact_time(at).unwrap())
                    })
                    .collect()
            }
        }
    }

    #[test]
    fn distinct_requests_never_repeat_a_fix() {
        for scenario in [Scenario::Native, Scenario::CycleInfo] {
            let shape = BodyShape {
                scenario,
                bodies: 7,
                vehicles: 5,
                vehicles_per_body: 3,
                start_ms: 1_606_780_800_000,
            };
            let set = BodySet::generate(shape, true);
            let mut seen = HashSet::new();
            for n in 0..40 {
                let (body, points) = set.request(n);
                let fixes = fixes(scenario, &body);
                assert_eq!(fixes.len() as u64, points);
                for fix in fixes {
                    assert!(
                        seen.insert(fix.clone()),
                        "{scenario:?} request {n}: {fix:?} again"
                    );
                }
            }
            let again = BodySet::generate(shape, false);
            assert_eq!(again.request(7).0, again.request(0).0, "re-sent as is");
        }
    }
}
