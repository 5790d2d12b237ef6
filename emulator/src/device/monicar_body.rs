//! Monicar event-hub request bodies (key-on, key-off, cycle-info), written straight into bytes
//! without an intermediate JSON tree: the emulator builds thousands of them per second.

use fleetflow_model::compact_time::civil_from_days;

/// The identity fields every Monicar body starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    pub mdn: i64,
    pub tid: String,
    pub mid: i64,
    pub pv: i64,
    pub did: i64,
}

impl DeviceIdentity {
    /// The emulator's identity for vehicle `index`: mdn = `mdn_base + index`, tid "TID" + index,
    /// mid, pv and did 1.
    pub fn for_vehicle(mdn_base: i64, index: usize) -> DeviceIdentity {
        DeviceIdentity {
            mdn: mdn_base.saturating_add(i64::try_from(index).unwrap_or(i64::MAX)),
            tid: format!("TID{index}"),
            mid: 1,
            pv: 1,
            did: 1,
        }
    }
}

/// One GPS fix as Monicar sends it (gcd is always "A": the emulator's fixes are valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpsPoint {
    /// Fix time, ms since the epoch (sent as `yyyyMMddHHmmss`, UTC).
    pub time_ms: i64,
    /// Degrees x 1,000,000.
    pub lat_e6: i32,
    pub lng_e6: i32,
    /// Heading, degrees 0-359.
    pub ang: u16,
    /// Speed, km/h.
    pub spd: u16,
    /// Metres travelled since the previous point.
    pub sum: u32,
}

/// Body of `POST /api/v1/event-hub/key-on`: the fix at `point.time_ms` (= onTime) and the total
/// odometer in metres.
pub fn key_on_body(id: &DeviceIdentity, point: &GpsPoint, odometer_m: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(192);
    write_identity(&mut out, id);
    out.extend_from_slice(b",\"onTime\":\"");
    write_compact_time(&mut out, point.time_ms);
    out.extend_from_slice(b"\",\"offTime\":null");
    write_fix_fields(&mut out, point, odometer_m);
    out.push(b'}');
    out
}

/// Body of `POST /api/v1/event-hub/key-off`: the fix at `point.time_ms` (= offTime), the trip's
/// onTime if known, and the metres driven since key-on.
pub fn key_off_body(
    id: &DeviceIdentity,
    on_ms: Option<i64>,
    point: &GpsPoint,
    trip_m: i64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(200);
    write_identity(&mut out, id);
    match on_ms {
        Some(ms) => {
            out.extend_from_slice(b",\"onTime\":\"");
            write_compact_time(&mut out, ms);
            out.push(b'"');
        }
        None => out.extend_from_slice(b",\"onTime\":null"),
    }
    out.extend_from_slice(b",\"offTime\":\"");
    write_compact_time(&mut out, point.time_ms);
    out.push(b'"');
    write_fix_fields(&mut out, point, trip_m);
    out.push(b'}');
    out
}

/// Body of `POST /api/v1/event-hub/cycle-info`: `cCnt` = the number of points, then the points.
pub fn cycle_info_body(id: &DeviceIdentity, points: &[GpsPoint]) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + points.len() * 100);
    write_identity(&mut out, id);
    out.extend_from_slice(b",\"cCnt\":");
    write_int(&mut out, points.len() as i64);
    out.extend_from_slice(b",\"cList\":[");
    for (i, point) in points.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"intervalAt\":\"");
        write_compact_time(&mut out, point.time_ms);
        out.push(b'"');
        write_fix_fields(&mut out, point, i64::from(point.sum));
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

/// `{"mdn":..,"tid":"..","mid":..,"pv":..,"did":..` (no closing brace).
fn write_identity(out: &mut Vec<u8>, id: &DeviceIdentity) {
    out.extend_from_slice(b"{\"mdn\":");
    write_int(out, id.mdn);
    out.extend_from_slice(b",\"tid\":\"");
    write_json_str_content(out, &id.tid);
    out.extend_from_slice(b"\",\"mid\":");
    write_int(out, id.mid);
    out.extend_from_slice(b",\"pv\":");
    write_int(out, id.pv);
    out.extend_from_slice(b",\"did\":");
    write_int(out, id.did);
}

/// `,"gcd":"A","lat":..,"lng":..,"ang":..,"spd":..,"sum":..`
fn write_fix_fields(out: &mut Vec<u8>, point: &GpsPoint, sum: i64) {
    out.extend_from_slice(b",\"gcd\":\"A\",\"lat\":");
    write_int(out, i64::from(point.lat_e6));
    out.extend_from_slice(b",\"lng\":");
    write_int(out, i64::from(point.lng_e6));
    out.extend_from_slice(b",\"ang\":");
    write_int(out, i64::from(point.ang));
    out.extend_from_slice(b",\"spd\":");
    write_int(out, i64::from(point.spd));
    out.extend_from_slice(b",\"sum\":");
    write_int(out, sum);
}

/// Appends a JSON string's content, escaping quotes, backslashes and control characters.
fn write_json_str_content(out: &mut Vec<u8>, text: &str) {
    for &b in text.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
}

/// Appends a decimal integer.
pub fn write_int(out: &mut Vec<u8>, value: i64) {
    let mut digits = [0u8; 20];
    let mut n = value.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if value < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends `time_ms` as Monicar's `yyyyMMddHHmmss` (UTC, sub-second precision truncated); the same
/// text as `fleetflow_model::format_compact_time` without allocating.
pub fn write_compact_time(out: &mut Vec<u8>, time_ms: i64) {
    let secs = time_ms.div_euclid(1_000);
    let (days, secs_of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let fields = [
        (year.clamp(0, 9_999), 4),
        (month, 2),
        (day, 2),
        (secs_of_day / 3_600, 2),
        (secs_of_day / 60 % 60, 2),
        (secs_of_day % 60, 2),
    ];
    for (value, width) in fields {
        let mut divisor = 10i64.pow(width - 1);
        while divisor > 0 {
            out.push(b'0' + (value / divisor % 10) as u8);
            divisor /= 10;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn point(time_ms: i64) -> GpsPoint {
        GpsPoint {
            time_ms,
            lat_e6: 37_500_704,
            lng_e6: 127_030_236,
            ang: 45,
            spd: 62,
            sum: 17,
        }
    }

    #[test]
    fn compact_time_matches_the_model() {
        for ms in [0i64, 1_739_873_730_999, 951_782_400_000, 4_102_444_799_000] {
            let mut out = Vec::new();
            write_compact_time(&mut out, ms);
            assert_eq!(
                String::from_utf8(out).ok(),
                Some(fleetflow_model::format_compact_time(ms))
            );
        }
    }

    #[test]
    fn integers() {
        for v in [0i64, 7, -7, 1_234_567, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            write_int(&mut out, v);
            assert_eq!(String::from_utf8(out).ok(), Some(v.to_string()));
        }
    }

    #[test]
    fn bodies_are_monicar_json() {
        let id = DeviceIdentity::for_vehicle(2_254_690_000, 422);
        let t = 1_739_873_730_000; // 2025-02-18 10:15:30 UTC
        let on: Value = serde_json::from_slice(&key_on_body(&id, &point(t), 123_456)).unwrap();
        assert_eq!(on["mdn"], 2_254_690_422i64);
        assert_eq!(on["tid"], "TID422");
        assert_eq!(
            (on["mid"].clone(), on["pv"].clone(), on["did"].clone()),
            (1.into(), 1.into(), 1.into())
        );
        assert_eq!(on["onTime"], "20250218101530");
        assert!(on["offTime"].is_null());
        assert_eq!(on["gcd"], "A");
        assert_eq!(on["sum"], 123_456);
        let off: Value =
            serde_json::from_slice(&key_off_body(&id, Some(t), &point(t + 60_000), 900)).unwrap();
        assert_eq!(off["onTime"], "20250218101530");
        assert_eq!(off["offTime"], "20250218101630");
        assert_eq!(off["sum"], 900);
        let off: Value = serde_json::from_slice(&key_off_body(&id, None, &point(t), 0)).unwrap();
        assert!(off["onTime"].is_null());
        let points: Vec<GpsPoint> = (1..=60).map(|i| point(t + i * 1_000)).collect();
        let cycle: Value = serde_json::from_slice(&cycle_info_body(&id, &points)).unwrap();
        assert_eq!(cycle["cCnt"], 60);
        let list = cycle["cList"].as_array().unwrap();
        assert_eq!(list.len(), 60);
        assert_eq!(list[0]["intervalAt"], "20250218101531");
        assert_eq!(list[0]["lat"], 37_500_704);
        assert_eq!(list[0]["lng"], 127_030_236);
        assert_eq!(list[0]["ang"], 45);
        assert_eq!(list[0]["spd"], 62);
        assert_eq!(list[59]["intervalAt"], "20250218101630");
    }
}
