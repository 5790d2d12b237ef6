//! The Kafka record: key = vehicle id (UTF-8), value = a [`TelemetryRecord`] in the versioned
//! binary encoding specified in `model/schema/telemetry-record-v1.md`.
//!
//! The encoding is compact on purpose (a 60-point Monicar batch is ~0.7 KB instead of ~4 KB of
//! JSON): times and coordinates are delta-encoded against the previous item as zig-zag LEB128
//! varints. Decoding is strict: an unknown version or item kind, an overlong varint, a
//! truncated value or trailing bytes are errors, never guesses.

use crate::telemetry::{Fix, GpsStatus, Item, ItemAttributes, Source, TelemetryRecord};

/// The encoding version this code writes. Readers accept exactly the versions they know.
pub const RECORD_VERSION: u8 = 1;

/// Longest company or vehicle id the encoding admits, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Longest attributes object of one item ([`ItemAttributes`]), in bytes.
pub const MAX_ATTRIBUTES_LEN: usize = 4096;

const KIND_MASK: u8 = 0b0000_0011;
const HAS_ALTITUDE: u8 = 0b0000_0100;
const HAS_ACCURACY: u8 = 0b0000_1000;
const HAS_BATTERY: u8 = 0b0001_0000;
const HAS_EXTRA: u8 = 0b0010_0000;
/// The time is the server's time of receipt ([`Fix::server_time`]).
const SERVER_TIME: u8 = 0b0100_0000;
/// The item carries attributes ([`ItemAttributes`]).
const HAS_ATTRIBUTES: u8 = 0b1000_0000;

const KIND_FIX: u8 = 0;
const KIND_IGNITION_ON: u8 = 1;
const KIND_IGNITION_OFF: u8 = 2;

/// Why a record value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty record value")]
    Empty,
    #[error("unknown record version {0} (this build reads version {RECORD_VERSION})")]
    UnknownVersion(u8),
    #[error("unknown source code {0}")]
    UnknownSource(u8),
    #[error("record ends early while reading {0}")]
    Truncated(&'static str),
    #[error("varint for {0} is too long or overflows")]
    BadVarint(&'static str),
    #[error("{field} of {len} bytes is longer than {max}")]
    TooLong {
        field: &'static str,
        len: u64,
        max: usize,
    },
    #[error("{0} is not valid UTF-8")]
    NotUtf8(&'static str),
    #[error("item {index}: unknown item kind {kind}")]
    UnknownKind { index: usize, kind: u8 },
    #[error("item {index}: a plain fix cannot carry an odometer value")]
    ExtraOnFix { index: usize },
    #[error("item {index}: unknown gps status code {code}")]
    UnknownGps { index: usize, code: u8 },
    #[error("item {index}: {field} out of range")]
    OutOfRange { index: usize, field: &'static str },
    #[error("{0} trailing bytes after the last item")]
    TrailingBytes(usize),
}

/// Appends the encoding of `record` to `out`.
///
/// # Panics
/// If an id is longer than [`MAX_ID_LEN`], an attributes object longer than
/// [`MAX_ATTRIBUTES_LEN`], or `attributes` is not in strictly increasing item order within
/// `items`: ingest builds records that way.
pub fn encode(record: &TelemetryRecord, out: &mut Vec<u8>) {
    assert!(record.company.len() <= MAX_ID_LEN && record.vehicle.len() <= MAX_ID_LEN);
    assert!(
        record
            .attributes
            .windows(2)
            .all(|pair| pair[0].item < pair[1].item)
            && record
                .attributes
                .last()
                .is_none_or(|a| (a.item as usize) < record.items.len())
            && record
                .attributes
                .iter()
                .all(|a| a.json.len() <= MAX_ATTRIBUTES_LEN),
        "attributes out of order, of no item, or too long"
    );
    let mut attributes = record.attributes.iter().peekable();
    out.reserve(16 + record.company.len() + record.vehicle.len() + record.items.len() * 14);
    out.push(RECORD_VERSION);
    out.push(source_code(record.source));
    put_uvarint(out, record.received_ms.max(0) as u64);
    put_str(out, &record.company);
    put_str(out, &record.vehicle);
    put_uvarint(out, record.items.len() as u64);
    let mut prev = (0i64, 0i32, 0i32);
    for (index, item) in record.items.iter().enumerate() {
        let fix = item.fix();
        let attributes = attributes.next_if(|a| a.item as usize == index);
        let (kind, extra) = match item {
            Item::Fix(_) => (KIND_FIX, None),
            Item::IgnitionOn { odometer_m, .. } => (KIND_IGNITION_ON, *odometer_m),
            Item::IgnitionOff {
                trip_distance_m, ..
            } => (KIND_IGNITION_OFF, *trip_distance_m),
        };
        let mut flags = kind;
        if fix.altitude_dm.is_some() {
            flags |= HAS_ALTITUDE;
        }
        if fix.accuracy_dm.is_some() {
            flags |= HAS_ACCURACY;
        }
        if fix.battery_dpct.is_some() {
            flags |= HAS_BATTERY;
        }
        if extra.is_some() {
            flags |= HAS_EXTRA;
        }
        if fix.server_time {
            flags |= SERVER_TIME;
        }
        if attributes.is_some() {
            flags |= HAS_ATTRIBUTES;
        }
        out.push(flags);
        put_ivarint(out, fix.time_ms.wrapping_sub(prev.0));
        put_ivarint(out, i64::from(fix.lat_e7) - i64::from(prev.1));
        put_ivarint(out, i64::from(fix.lon_e7) - i64::from(prev.2));
        put_uvarint(out, u64::from(fix.speed_dkmh));
        put_uvarint(out, u64::from(fix.heading_ddeg));
        out.push(fix.gps.code());
        if let Some(altitude) = fix.altitude_dm {
            put_ivarint(out, i64::from(altitude));
        }
        if let Some(accuracy) = fix.accuracy_dm {
            put_uvarint(out, u64::from(accuracy));
        }
        if let Some(battery) = fix.battery_dpct {
            put_uvarint(out, u64::from(battery));
        }
        if let Some(extra) = extra {
            put_uvarint(out, extra);
        }
        if let Some(attributes) = attributes {
            put_str(out, &attributes.json);
        }
        prev = (fix.time_ms, fix.lat_e7, fix.lon_e7);
    }
}

/// Encodes `record` into a fresh buffer.
pub fn encode_to_vec(record: &TelemetryRecord) -> Vec<u8> {
    let mut out = Vec::new();
    encode(record, &mut out);
    out
}

/// Decodes a record value.
pub fn decode(bytes: &[u8]) -> Result<TelemetryRecord, DecodeError> {
    let mut r = Reader { bytes, pos: 0 };
    let version = r.u8("version").map_err(|_| DecodeError::Empty)?;
    if version != RECORD_VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    let source = match r.u8("source")? {
        0 => Source::Native,
        1 => Source::Monicar,
        2 => Source::Osmand,
        other => return Err(DecodeError::UnknownSource(other)),
    };
    let received_ms = i64::try_from(r.uvarint("received_ms")?)
        .map_err(|_| DecodeError::BadVarint("received_ms"))?;
    let company = r.str("company", MAX_ID_LEN)?;
    let vehicle = r.str("vehicle", MAX_ID_LEN)?;
    let count = r.uvarint("item count")?;
    // Every item takes at least 7 bytes: refuse counts the remaining bytes cannot hold before
    // allocating for them.
    if count > (r.remaining() / 7) as u64 {
        return Err(DecodeError::Truncated("items"));
    }
    let mut items = Vec::with_capacity(count as usize);
    let mut attributes = Vec::new();
    let mut prev = (0i64, 0i32, 0i32);
    for index in 0..count as usize {
        let flags = r.u8("item flags")?;
        // All eight flag bits have a meaning: a new field needs a new record version.
        let time_ms = prev.0.wrapping_add(r.ivarint("time")?);
        let lat_e7 = add_coord(prev.1, r.ivarint("lat")?).ok_or(DecodeError::OutOfRange {
            index,
            field: "lat",
        })?;
        let lon_e7 = add_coord(prev.2, r.ivarint("lon")?).ok_or(DecodeError::OutOfRange {
            index,
            field: "lon",
        })?;
        let speed_dkmh = r.u16(index, "speed")?;
        let heading_ddeg = r.u16(index, "heading")?;
        let code = r.u8("gps")?;
        let gps = GpsStatus::from_code(code).ok_or(DecodeError::UnknownGps { index, code })?;
        let altitude_dm = if flags & HAS_ALTITUDE != 0 {
            Some(
                i32::try_from(r.ivarint("altitude")?).map_err(|_| DecodeError::OutOfRange {
                    index,
                    field: "altitude",
                })?,
            )
        } else {
            None
        };
        let accuracy_dm = if flags & HAS_ACCURACY != 0 {
            Some(
                u32::try_from(r.uvarint("accuracy")?).map_err(|_| DecodeError::OutOfRange {
                    index,
                    field: "accuracy",
                })?,
            )
        } else {
            None
        };
        let battery_dpct = if flags & HAS_BATTERY != 0 {
            Some(r.u16(index, "battery")?)
        } else {
            None
        };
        let extra = if flags & HAS_EXTRA != 0 {
            Some(r.uvarint("odometer")?)
        } else {
            None
        };
        if flags & HAS_ATTRIBUTES != 0 {
            attributes.push(ItemAttributes {
                item: index as u32,
                json: r.str("attributes", MAX_ATTRIBUTES_LEN)?,
            });
        }
        let at = Fix {
            time_ms,
            lat_e7,
            lon_e7,
            speed_dkmh,
            heading_ddeg,
            gps,
            altitude_dm,
            accuracy_dm,
            battery_dpct,
            server_time: flags & SERVER_TIME != 0,
        };
        let item = match flags & KIND_MASK {
            KIND_FIX if extra.is_some() => return Err(DecodeError::ExtraOnFix { index }),
            KIND_FIX => Item::Fix(at),
            KIND_IGNITION_ON => Item::IgnitionOn {
                at,
                odometer_m: extra,
            },
            KIND_IGNITION_OFF => Item::IgnitionOff {
                at,
                trip_distance_m: extra,
            },
            kind => return Err(DecodeError::UnknownKind { index, kind }),
        };
        items.push(item);
        prev = (time_ms, lat_e7, lon_e7);
    }
    if r.remaining() != 0 {
        return Err(DecodeError::TrailingBytes(r.remaining()));
    }
    Ok(TelemetryRecord {
        source,
        received_ms,
        company,
        vehicle,
        items,
        attributes,
    })
}

fn source_code(source: Source) -> u8 {
    match source {
        Source::Native => 0,
        Source::Monicar => 1,
        Source::Osmand => 2,
    }
}

fn add_coord(prev: i32, delta: i64) -> Option<i32> {
    i32::try_from(i64::from(prev).checked_add(delta)?).ok()
}

fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_ivarint(out: &mut Vec<u8>, value: i64) {
    put_uvarint(out, ((value << 1) ^ (value >> 63)) as u64);
}

fn put_str(out: &mut Vec<u8>, value: &str) {
    put_uvarint(out, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let byte = *self
            .bytes
            .get(self.pos)
            .ok_or(DecodeError::Truncated(what))?;
        self.pos += 1;
        Ok(byte)
    }

    fn uvarint(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8(what)?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(DecodeError::BadVarint(what));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::BadVarint(what))
    }

    fn ivarint(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        let raw = self.uvarint(what)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    fn u16(&mut self, index: usize, field: &'static str) -> Result<u16, DecodeError> {
        u16::try_from(self.uvarint(field)?).map_err(|_| DecodeError::OutOfRange { index, field })
    }

    fn str(&mut self, field: &'static str, max: usize) -> Result<String, DecodeError> {
        let len = self.uvarint(field)?;
        if len > max as u64 {
            return Err(DecodeError::TooLong { field, len, max });
        }
        let len = len as usize;
        if self.remaining() < len {
            return Err(DecodeError::Truncated(field));
        }
        let bytes = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::NotUtf8(field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    fn random_fix(rng: &mut SmallRng) -> Fix {
        Fix {
            time_ms: rng.random_range(-1_000_000_000_000i64..4_000_000_000_000),
            lat_e7: rng.random_range(-900_000_000..=900_000_000),
            lon_e7: rng.random_range(-1_800_000_000..=1_800_000_000),
            speed_dkmh: rng.random(),
            heading_ddeg: rng.random_range(0..=3650),
            gps: [
                GpsStatus::Valid,
                GpsStatus::Invalid,
                GpsStatus::NotFitted,
                GpsStatus::BadAtIgnition,
                GpsStatus::Unknown,
            ][rng.random_range(0..5)],
            altitude_dm: rng.random_bool(0.3).then(|| rng.random()),
            accuracy_dm: rng.random_bool(0.3).then(|| rng.random()),
            battery_dpct: rng.random_bool(0.3).then(|| rng.random()),
            server_time: rng.random_bool(0.1),
        }
    }

    fn random_record(rng: &mut SmallRng) -> TelemetryRecord {
        let items: Vec<Item> = (0..rng.random_range(0..80))
            .map(|_| {
                let at = random_fix(rng);
                match rng.random_range(0..3) {
                    0 => Item::Fix(at),
                    1 => Item::IgnitionOn {
                        at,
                        odometer_m: rng.random_bool(0.5).then(|| rng.random()),
                    },
                    _ => Item::IgnitionOff {
                        at,
                        trip_distance_m: rng.random_bool(0.5).then(|| rng.random()),
                    },
                }
            })
            .collect();
        let mut attributes = Vec::new();
        for item in 0..items.len() {
            if rng.random_ratio(1, 8) {
                attributes.push(ItemAttributes {
                    item: item as u32,
                    json: format!("{{\"odometer\":{}}}", rng.random::<u32>()),
                });
            }
        }
        TelemetryRecord {
            source: Source::ALL[rng.random_range(0..3)],
            received_ms: rng.random_range(0..i64::MAX),
            company: "acme".repeat(rng.random_range(0..5)),
            vehicle: format!("{}", rng.random::<u64>()),
            items,
            attributes,
        }
    }

    #[test]
    fn round_trips_random_records() {
        let mut rng = SmallRng::seed_from_u64(7);
        for _ in 0..2_000 {
            let record = random_record(&mut rng);
            let bytes = encode_to_vec(&record);
            assert_eq!(decode(&bytes), Ok(record));
        }
    }

    /// Issue 35: seeded random bytes and mutated records never panic the decoder, and what
    /// decodes encodes back to the same bytes (no two byte strings mean one record).
    fn fuzz_decode(cases: usize) {
        let mut rng = SmallRng::seed_from_u64(35);
        for _ in 0..cases {
            let mut bytes = if rng.random_ratio(1, 4) {
                let len = rng.random_range(0..64);
                (0..len).map(|_| rng.random()).collect::<Vec<u8>>()
            } else {
                encode_to_vec(&random_record(&mut rng))
            };
            for _ in 0..rng.random_range(0..4) {
                if bytes.is_empty() {
                    break;
                }
                let at = rng.random_range(0..bytes.len());
                match rng.random_range(0..3) {
                    0 => bytes[at] = rng.random(),
                    1 => bytes.insert(at, rng.random()),
                    _ => {
                        bytes.remove(at);
                    }
                }
            }
            if let Ok(record) = decode(&bytes) {
                assert_eq!(decode(&encode_to_vec(&record)), Ok(record));
            }
        }
    }

    #[test]
    fn random_bytes_never_panic_the_decoder() {
        fuzz_decode(50_000);
    }

    #[test]
    #[ignore = "1,000,000 cases: cargo test --release -p fleetflow-model -- --ignored"]
    fn a_million_random_inputs_never_panic_the_decoder() {
        fuzz_decode(1_000_000);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut rng = SmallRng::seed_from_u64(11);
        for _ in 0..200 {
            let bytes = encode_to_vec(&random_record(&mut rng));
            for cut in 0..bytes.len() {
                assert!(decode(&bytes[..cut]).is_err(), "cut at {cut} decoded");
            }
        }
    }

    #[test]
    fn rejects_unknown_version_flags_and_trailing_bytes() {
        let record = TelemetryRecord {
            source: Source::Monicar,
            received_ms: 1,
            company: "c".into(),
            vehicle: "v".into(),
            items: vec![Item::Fix(Fix::new(
                1_739_873_731_000,
                375_007_040,
                1_270_302_360,
            ))],
            attributes: Vec::new(),
        };
        let bytes = encode_to_vec(&record);
        let mut bad = bytes.clone();
        bad[0] = 2;
        assert_eq!(decode(&bad), Err(DecodeError::UnknownVersion(2)));
        let mut bad = bytes.clone();
        bad.push(0);
        assert_eq!(decode(&bad), Err(DecodeError::TrailingBytes(1)));
        // The first item's flags byte follows version, source, received_ms (1), company, vehicle
        // and the count.
        // Every flag bit has a meaning now: bit 7 promises attributes that are not there.
        let mut bad = bytes.clone();
        bad[8] |= 0b1000_0000;
        assert_eq!(decode(&bad), Err(DecodeError::Truncated("attributes")));
        let mut bad = bytes.clone();
        bad[8] |= 0b0000_0011;
        assert_eq!(
            decode(&bad),
            Err(DecodeError::UnknownKind { index: 0, kind: 3 })
        );
        assert_eq!(decode(&[]), Err(DecodeError::Empty));
    }

    #[test]
    fn a_monicar_batch_is_small() {
        let mut items = Vec::new();
        let mut fix = Fix::new(1_739_873_731_000, 375_007_040, 1_270_302_360);
        fix.gps = GpsStatus::Valid;
        for i in 0..60 {
            fix.time_ms += 1_000;
            fix.lat_e7 += 1_530;
            fix.lon_e7 += 1_210;
            fix.speed_dkmh = 620 + (i % 7) * 10;
            fix.heading_ddeg = 450;
            items.push(Item::Fix(fix));
        }
        let record = TelemetryRecord {
            source: Source::Monicar,
            received_ms: 1_739_873_791_000,
            company: "acme".into(),
            vehicle: "2254690422".into(),
            items,
            attributes: Vec::new(),
        };
        let len = encode_to_vec(&record).len();
        assert!(len < 800, "60-point record took {len} bytes");
    }
}
