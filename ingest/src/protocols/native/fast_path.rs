//! A scanner for the common shape of native items, tried before serde.
//!
//! Machine-written native bodies are flat objects of known keys, plain strings and plain
//! numbers. [`scan_item`] reads exactly that shape in one pass over the bytes and gives up
//! (`None`) on anything else: an escape or a control character in a string, `null`, an
//! unknown or repeated key, a number serde would read differently or refuse, a time chrono
//! refuses, any syntax error. The caller then parses the same bytes with serde, which accepts
//! or refuses them as it always did and names the field in its error. So the scanner changes
//! speed, never meaning: what it accepts, serde accepts with the same value (the tests compare
//! both on seeded random, mutated and truncated items).
//!
//! Numbers follow serde_json's reading: an integer token is an unsigned or a signed integer
//! when it fits (`-0` and negatives below `i64::MIN` are floats), anything else is a float.
//! Floats are correctly rounded: by Clinger's fast path (a mantissa below 2^53 times or divided
//! by an exact power of ten, as serde_json computes them too), else by the standard library.
//! serde_json without its `float_roundtrip` feature may differ from the latter in the last bit
//! for more than 15 significant digits, which no stored value (degrees to 1e-7, km/h to 0.1)
//! can tell apart.

use std::borrow::Cow;

use super::{NativeItem, VehicleId, parse_rfc3339};

/// A number token as serde_json classifies it.
enum Number {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
}

impl Number {
    fn as_f64(&self) -> f64 {
        match *self {
            Number::Unsigned(n) => n as f64,
            Number::Signed(n) => n as f64,
            Number::Float(f) => f,
        }
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(byte)).then(|| self.pos += 1)
    }

    /// A string without escapes or control characters, as its raw bytes.
    fn plain_bytes(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = &self.bytes[self.pos..];
        let len = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[len] != b'"' {
            return None;
        }
        self.pos += len + 1;
        Some(&rest[..len])
    }

    fn plain_str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.plain_bytes()?).ok()
    }

    /// Reads digits into `mantissa` (flagging overflow); returns how many there were.
    fn digits(&mut self, mantissa: &mut u64, overflow: &mut bool) -> i64 {
        let start = self.pos;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            match mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(u64::from(digit - b'0')))
            {
                Some(m) => *mantissa = m,
                None => *overflow = true,
            }
            self.pos += 1;
        }
        (self.pos - start) as i64
    }

    /// A number by JSON's grammar (`-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`).
    fn number(&mut self) -> Option<Number> {
        let start = self.pos;
        let negative = self.eat(b'-').is_some();
        let (mut mantissa, mut overflow) = (0u64, false);
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => {
                self.digits(&mut mantissa, &mut overflow);
            }
            _ => return None,
        }
        let mut integer = true;
        let mut fraction_digits = 0;
        if self.eat(b'.').is_some() {
            integer = false;
            fraction_digits = self.digits(&mut mantissa, &mut overflow);
            if fraction_digits == 0 {
                return None;
            }
        }
        let mut exponent = 0i64;
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            integer = false;
            let sign = match self.peek() {
                Some(b'-') => -1,
                Some(b'+') => 1,
                _ => 0,
            };
            if sign != 0 {
                self.pos += 1;
            }
            let (mut magnitude, mut too_large) = (0u64, false);
            if self.digits(&mut magnitude, &mut too_large) == 0 {
                return None;
            }
            exponent = if too_large || magnitude > 100_000 {
                // Far outside a float's range either way: the standard library decides.
                i64::MAX
            } else if sign < 0 {
                -(magnitude as i64)
            } else {
                magnitude as i64
            };
        }
        // A digit after a leading zero is serde's "invalid number".
        if let Some(b'0'..=b'9') = self.peek() {
            return None;
        }
        if integer && !overflow {
            if !negative {
                return Some(Number::Unsigned(mantissa));
            }
            if mantissa != 0 && mantissa <= 1 << 63 {
                return Some(Number::Signed((mantissa as i64).wrapping_neg()));
            }
        }
        // Clinger's fast path: an exact mantissa and an exact power of ten, one rounding, so
        // correctly rounded.
        const POW10: [f64; 23] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
            1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
        ];
        if !overflow && mantissa <= 1 << 53 && exponent != i64::MAX {
            let scale = exponent - fraction_digits;
            let value = if (0..=22).contains(&scale) {
                Some(mantissa as f64 * POW10[scale as usize])
            } else if (-22..0).contains(&scale) {
                Some(mantissa as f64 / POW10[(-scale) as usize])
            } else {
                None
            };
            if let Some(value) = value {
                return Some(Number::Float(if negative { -value } else { value }));
            }
        }
        // The token is ASCII by construction.
        let float = std::str::from_utf8(&self.bytes[start..self.pos])
            .ok()?
            .parse::<f64>()
            .ok()?;
        // serde refuses what overflows a float ("number out of range").
        float.is_finite().then_some(Number::Float(float))
    }

    fn float(&mut self) -> Option<f64> {
        Some(self.number()?.as_f64())
    }

    fn vehicle(&mut self) -> Option<VehicleId<'a>> {
        if self.peek()? == b'"' {
            return Some(VehicleId(Cow::Borrowed(self.plain_str()?)));
        }
        match self.number()? {
            Number::Unsigned(n) => Some(VehicleId(Cow::Owned(n.to_string()))),
            Number::Signed(n) => Some(VehicleId(Cow::Owned(n.to_string()))),
            Number::Float(_) => None,
        }
    }

    fn item(&mut self) -> Option<NativeItem<'a>> {
        let mut item = NativeItem::default();
        let mut seen = 0u16;
        self.skip_whitespace();
        self.eat(b'{')?;
        self.skip_whitespace();
        if self.eat(b'}').is_some() {
            return Some(item);
        }
        loop {
            let key = self.plain_bytes()?;
            self.skip_whitespace();
            self.eat(b':')?;
            self.skip_whitespace();
            let bit = match key {
                b"vehicle" => {
                    item.vehicle = Some(self.vehicle()?);
                    0
                }
                b"type" => {
                    item.kind = Some(Cow::Borrowed(self.plain_str()?));
                    1
                }
                b"time" => {
                    item.time = Some(super::FlexTime(self.time()?));
                    2
                }
                b"lat" => {
                    item.lat = Some(self.float()?);
                    3
                }
                b"lon" => {
                    item.lon = Some(self.float()?);
                    4
                }
                b"speed" => {
                    item.speed = Some(self.float()?);
                    5
                }
                b"heading" => {
                    item.heading = Some(self.float()?);
                    6
                }
                b"gps" => {
                    item.gps = Some(Cow::Borrowed(self.plain_str()?));
                    7
                }
                b"altitude" => {
                    item.altitude = Some(self.float()?);
                    8
                }
                b"accuracy" => {
                    item.accuracy = Some(self.float()?);
                    9
                }
                b"battery" => {
                    item.battery = Some(self.float()?);
                    10
                }
                b"odometer" => {
                    item.odometer = Some(self.float()?);
                    11
                }
                _ => return None,
            };
            // A repeated key is serde's "duplicate field".
            if seen & (1 << bit) != 0 {
                return None;
            }
            seen |= 1 << bit;
            self.skip_whitespace();
            if self.eat(b',').is_none() {
                self.eat(b'}')?;
                return Some(item);
            }
            self.skip_whitespace();
        }
    }

    fn time(&mut self) -> Option<i64> {
        if self.peek()? == b'"' {
            return parse_rfc3339(self.plain_str()?).ok();
        }
        match self.number()? {
            Number::Unsigned(n) => i64::try_from(n).ok(),
            Number::Signed(n) => Some(n),
            Number::Float(_) => None,
        }
    }
}

/// Scans one item object after optional whitespace: the item and where it ends, or `None`
/// when serde must judge the bytes.
pub(super) fn scan_item(bytes: &[u8], from: usize) -> Option<(NativeItem<'_>, usize)> {
    let mut s = Scanner { bytes, pos: from };
    let item = s.item()?;
    Some((item, s.pos))
}

/// Scans a whole JSON array of items, or gives up.
pub(super) fn scan_array(bytes: &[u8], max_items: usize) -> Option<Vec<NativeItem<'_>>> {
    let mut s = Scanner { bytes, pos: 0 };
    s.skip_whitespace();
    s.eat(b'[')?;
    let mut items = Vec::new();
    s.skip_whitespace();
    if s.eat(b']').is_none() {
        loop {
            items.push(s.item()?);
            if items.len() > max_items {
                // serde would read them all before the count is checked: let it.
                return None;
            }
            s.skip_whitespace();
            if s.eat(b',').is_none() {
                s.eat(b']')?;
                break;
            }
        }
    }
    s.skip_whitespace();
    (s.pos == bytes.len()).then_some(items)
}

#[cfg(test)]
mod tests {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    use super::super::{
        LIST, json_error, not_items, parse_ndjson_serde, read_items, validate_items,
    };
    use super::*;
    use crate::error::IngestError;
    use crate::field::Clock;

    const CLOCK: Clock = Clock {
        min_ms: 946_684_800_000,
        now_ms: 1_739_900_000_000,
        max_future_ms: 86_400_000,
    };

    fn pick<'s>(rng: &mut SmallRng, options: &[&'s str]) -> &'s str {
        options[rng.random_range(0..options.len())]
    }

    fn space(rng: &mut SmallRng) -> &'static str {
        pick(rng, &["", "", "", " ", "\n", "\t ", "\r\n"])
    }

    /// A number as text: mostly plain, sometimes in every form serde reads differently or refuses.
    fn number(rng: &mut SmallRng) -> String {
        match rng.random_range(0..60) {
            0..=5 => format!(
                "{:.*}",
                rng.random_range(0..8),
                rng.random_range(-200.0..200.0)
            ),
            6..=8 => rng.random_range(0..400u32).to_string(),
            9 => format!("-{}", rng.random_range(0..400u32)),
            10 => format!("{}e{}", rng.random_range(1..99), rng.random_range(-3..4)),
            11 => format!(
                "{}.{}E+{}",
                rng.random_range(0..9),
                rng.random_range(0..99),
                rng.random_range(0..3)
            ),
            12 => format!("{:.17}", rng.random::<f64>() * 100.0),
            13 => pick(
                rng,
                &[
                    "-0",
                    "0",
                    "-0.0",
                    "1e400",
                    "-1e400",
                    "1e-400",
                    "18446744073709551616",
                    "-9223372036854775808",
                    "-9223372036854775809",
                    "123456789012345678901234567890.5",
                ],
            )
            .to_owned(),
            14 => pick(
                rng,
                &[
                    "01", "1.", ".5", "1e", "+1", "-", "1.e3", "00", "--1", "1e+", "0x10",
                ],
            )
            .to_owned(),
            15 => pick(rng, &["null", "true", "\"3\"", "[]", "{}"]).to_owned(),
            _ => rng.random_range(0..1_800_000_000_000i64).to_string(),
        }
    }

    fn string(rng: &mut SmallRng, plain: &[&str]) -> String {
        match rng.random_range(0..30) {
            0 => "\"a\\\"b\"".to_owned(),
            1 => "\"\\u0041\"".to_owned(),
            2 => "\"tab\there\"".to_owned(),
            3 => "\"caf\u{e9} \u{1f695}\"".to_owned(),
            4 => "\"\"".to_owned(),
            5 => pick(
                rng,
                &[
                    "null",
                    "7",
                    "-3",
                    "1.5",
                    "-0",
                    "18446744073709551616",
                    "true",
                ],
            )
            .to_owned(),
            _ => format!("\"{}\"", pick(rng, plain)),
        }
    }

    fn value(rng: &mut SmallRng, key: &str) -> String {
        match key {
            "vehicle" => string(rng, &["taxi-17", "veh-1", "x", "a b"]),
            "type" => string(rng, &["position", "ignition_on", "ignition_off", "parked"]),
            "gps" => string(rng, &["A", "V", "0", "P", "Z", "AA"]),
            "time" => match rng.random_range(0..4) {
                0 => string(
                    rng,
                    &[
                        "2025-02-18T10:15:31Z",
                        "2025-02-18T10:15:31.250+09:00",
                        "2025-02-18 10:15",
                        "yesterday",
                    ],
                ),
                _ => number(rng),
            },
            _ => number(rng),
        }
    }

    /// A random item's text: mostly well formed, sometimes not at all.
    fn item_text(rng: &mut SmallRng) -> String {
        const KEYS: [&str; 12] = [
            "vehicle", "type", "time", "lat", "lon", "speed", "heading", "gps", "altitude",
            "accuracy", "battery", "odometer",
        ];
        let mut keys: Vec<&str> = KEYS
            .iter()
            .copied()
            .filter(|_| rng.random_bool(0.6))
            .collect();
        for i in (1..keys.len()).rev() {
            keys.swap(i, rng.random_range(0..=i));
        }
        if rng.random_bool(0.05) {
            keys.push(pick(rng, &KEYS));
        }
        if rng.random_bool(0.03) {
            keys.push("sped");
        }
        let mut text = format!("{}{{", space(rng));
        for (n, key) in keys.iter().enumerate() {
            if n > 0 {
                text.push_str(&format!("{},{}", space(rng), space(rng)));
            }
            let name = if rng.random_bool(0.02) {
                "l\\u0061t".to_owned()
            } else {
                (*key).to_owned()
            };
            text.push_str(&format!(
                "{}\"{name}\"{}:{}{}",
                space(rng),
                space(rng),
                space(rng),
                value(rng, key)
            ));
        }
        if rng.random_bool(0.02) {
            text.push(',');
        }
        text.push_str(&format!("{}}}", space(rng)));
        match rng.random_range(0..30) {
            0 => {
                let cut = rng.random_range(0..text.len());
                if text.is_char_boundary(cut) {
                    text.truncate(cut);
                }
            }
            1 => {
                let at = rng.random_range(0..=text.len());
                if text.is_char_boundary(at) {
                    text.insert(
                        at,
                        pick(rng, &["x", "\"", ",", "}", "{", ":", "0", "\\"])
                            .chars()
                            .next()
                            .unwrap_or('x'),
                    );
                }
            }
            _ => {}
        }
        text
    }

    fn close(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => a == b || (a - b).abs() <= f64::EPSILON * a.abs().max(b.abs()),
            (a, b) => a.is_none() && b.is_none(),
        }
    }

    fn same(a: &NativeItem<'_>, b: &NativeItem<'_>) -> bool {
        a.vehicle.as_ref().map(|v| &v.0) == b.vehicle.as_ref().map(|v| &v.0)
            && a.kind == b.kind
            && a.time.as_ref().map(|t| t.0) == b.time.as_ref().map(|t| t.0)
            && a.gps == b.gps
            && close(a.lat, b.lat)
            && close(a.lon, b.lon)
            && close(a.speed, b.speed)
            && close(a.heading, b.heading)
            && close(a.altitude, b.altitude)
            && close(a.accuracy, b.accuracy)
            && close(a.battery, b.battery)
            && close(a.odometer, b.odometer)
    }

    #[test]
    fn what_the_scanner_accepts_serde_accepts_alike() {
        let mut rng = SmallRng::seed_from_u64(17);
        let (mut scanned, mut total) = (0, 0);
        for _ in 0..50_000 {
            let text = item_text(&mut rng);
            let bytes = text.as_bytes();
            total += 1;
            let Some((item, end)) = scan_item(bytes, 0) else {
                continue;
            };
            scanned += 1;
            let mut stream =
                serde_json::Deserializer::from_slice(bytes).into_iter::<NativeItem<'_>>();
            match stream.next() {
                Some(Ok(by_serde)) => {
                    assert_eq!(stream.byte_offset(), end, "{text}");
                    assert!(same(&item, &by_serde), "{text}: {item:?} vs {by_serde:?}");
                }
                other => panic!("scanned {text:?} as {item:?}; serde: {other:?}"),
            }
        }
        // The generator must exercise the fast path, not only the fallback.
        assert!(
            scanned * 5 > total,
            "only {scanned} of {total} items scanned"
        );
    }

    fn read_items_serde(
        bytes: &[u8],
        max_items: usize,
    ) -> Result<Vec<NativeItem<'_>>, IngestError> {
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => serde_json::from_slice::<Vec<NativeItem<'_>>>(bytes)
                .map_err(|error| json_error::<Vec<NativeItem<'_>>>(bytes, error, LIST)),
            Some(b'{') => parse_ndjson_serde(bytes, max_items),
            _ => Err(not_items()),
        }
    }

    #[test]
    fn bodies_read_the_same_with_and_without_the_fast_path() {
        let mut rng = SmallRng::seed_from_u64(29);
        let mut accepted = 0;
        for case in 0..20_000 {
            // Mostly valid items, so that whole bodies get accepted too.
            let items: Vec<String> = (0..rng.random_range(0..7))
                .map(|_| {
                    if rng.random_bool(0.8) {
                        let vehicle = rng.random_range(0..3);
                        let time = 1_739_800_000_000i64 + rng.random_range(0..100_000);
                        let lat = rng.random_range(-90.0..90.0f64);
                        let lon = match rng.random_range(0..4) {
                            0 => rng.random_range(-180..180).to_string(),
                            1 => format!("{}e-1", rng.random_range(-1800..1800)),
                            2 => format!("{:.17}", rng.random_range(-180.0..180.0f64)),
                            _ => format!("{:.4}", rng.random_range(-180.0..180.0f64)),
                        };
                        format!(
                            "{{\"vehicle\":\"v{vehicle}\",{}\"time\":{time},\"lat\":{lat:.6},\"lon\":{lon},\"speed\":{}}}",
                            space(&mut rng),
                            rng.random_range(0..100)
                        )
                    } else {
                        item_text(&mut rng)
                    }
                })
                .collect();
            let body = if rng.random_bool(0.5) {
                format!(
                    "{}[{}]{}",
                    space(&mut rng),
                    items.join(","),
                    space(&mut rng)
                )
            } else {
                items.iter().map(|i| format!("{i}\n")).collect()
            };
            let max_items = rng.random_range(1..8);
            let bytes = body.as_bytes();
            let fast =
                read_items(bytes, max_items).and_then(|i| validate_items(i, max_items, &CLOCK));
            let slow = read_items_serde(bytes, max_items)
                .and_then(|i| validate_items(i, max_items, &CLOCK));
            match (&fast, &slow) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.len(), b.len(), "case {case}: {body}");
                    for (a, b) in a.iter().zip(b) {
                        assert_eq!((&a.vehicle, &a.field), (&b.vehicle, &b.field), "{body}");
                        assert_eq!(a.items, b.items, "case {case}: {body}");
                    }
                    accepted += 1;
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "case {case}: {body}"),
                _ => panic!("case {case}: {body:?}\nfast: {fast:?}\nserde: {slow:?}"),
            }
        }
        assert!(accepted > 2_000, "only {accepted} bodies accepted");
    }
}
