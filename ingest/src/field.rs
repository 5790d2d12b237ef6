//! Naming fields the way the client wrote them (`cList[3].lat`, `items[12].time`), and the
//! checks every door shares: required fields, ranges, times, vehicle ids.

use fleetflow_model::record::MAX_ID_LEN;
use fleetflow_model::{CompactTimeError, parse_compact_time};

use crate::error::IngestError;

/// Where a value sits in the request: top level, or item `index` of list `list`.
#[derive(Debug, Clone, Copy)]
pub struct At {
    list: &'static str,
    index: Option<usize>,
}

impl At {
    pub const TOP: At = At {
        list: "",
        index: None,
    };

    pub fn item(list: &'static str, index: usize) -> At {
        At {
            list,
            index: Some(index),
        }
    }

    /// The full name of field `name` here.
    pub fn field(&self, name: &str) -> String {
        match self.index {
            Some(index) => format!("{}[{index}].{name}", self.list),
            None => name.to_owned(),
        }
    }

    pub fn required<T>(&self, value: Option<T>, name: &str) -> Result<T, IngestError> {
        value.ok_or_else(|| IngestError::missing(self.field(name)))
    }

    pub fn in_range<T>(
        &self,
        value: T,
        range: std::ops::RangeInclusive<T>,
        name: &str,
    ) -> Result<T, IngestError>
    where
        T: PartialOrd + std::fmt::Display + Copy,
    {
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(IngestError::invalid(
                self.field(name),
                format!("{value} is outside {}..={}", range.start(), range.end()),
            ))
        }
    }

    /// A finite float within `range`.
    pub fn float_in_range(
        &self,
        value: f64,
        range: std::ops::RangeInclusive<f64>,
        name: &str,
    ) -> Result<f64, IngestError> {
        if value.is_finite() && value.abs() >= 1e9 && !range.contains(&value) {
            // Said short: `1e308`, not its 309 digits.
            Err(IngestError::invalid(
                self.field(name),
                format!("{value:e} is outside {}..={}", range.start(), range.end()),
            ))
        } else if value.is_finite() {
            self.in_range(value, range, name)
        } else {
            Err(IngestError::invalid(
                self.field(name),
                "must be a finite number",
            ))
        }
    }

    /// Monicar's `yyyyMMddHHmmss`.
    pub fn compact_time(&self, text: &str, name: &str) -> Result<i64, IngestError> {
        parse_compact_time(text).map_err(|error: CompactTimeError| {
            IngestError::invalid(self.field(name), format!("{text:?} {error}"))
        })
    }

    /// Refuses a fix time too far ahead of the server clock, or before `ingest.min_fix_date`.
    pub fn fix_time(&self, time_ms: i64, clock: &Clock, name: &str) -> Result<i64, IngestError> {
        if time_ms < clock.min_ms {
            let day = |ms: i64| {
                chrono::DateTime::from_timestamp_millis(ms)
                    .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d").to_string())
            };
            Err(IngestError::invalid(
                self.field(name),
                format!(
                    "fix time {} is before {}, the earliest accepted (ingest.min_fix_date): is the device's clock set?",
                    day(time_ms),
                    day(clock.min_ms)
                ),
            ))
        } else if time_ms > clock.now_ms + clock.max_future_ms {
            Err(IngestError::invalid(
                self.field(name),
                format!(
                    "fix time is {} s ahead of the server clock (limit {} s)",
                    (time_ms - clock.now_ms) / 1_000,
                    clock.max_future_ms / 1_000
                ),
            ))
        } else {
            Ok(time_ms)
        }
    }

    /// A vehicle id: 1-128 bytes, no control characters.
    pub fn vehicle_id<S: AsRef<str>>(&self, id: S, name: &str) -> Result<S, IngestError> {
        let text = id.as_ref();
        if text.is_empty() || text.len() > MAX_ID_LEN || text.chars().any(char::is_control) {
            Err(IngestError::invalid(
                self.field(name),
                format!("vehicle id must be 1-{MAX_ID_LEN} bytes without control characters"),
            ))
        } else {
            Ok(id)
        }
    }
}

/// The server time a request is judged against.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now_ms: i64,
    /// The earliest fix time accepted (`ingest.min_fix_date`).
    pub min_ms: i64,
    pub max_future_ms: i64,
}

/// Converts a JSON parse failure into an error that names the field, by parsing again with
/// path tracking (only on the error path: the fast path pays nothing for it).
pub fn json_error<'a, T: serde::Deserialize<'a>>(
    bytes: &'a [u8],
    error: serde_json::Error,
    list_prefix: &str,
) -> IngestError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Io | Category::Syntax | Category::Eof => {
            IngestError::UnreadableBody(format!("not valid JSON: {error}"))
        }
        Category::Data => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Err(with_path) => {
                    let path = with_path.path().to_string();
                    let field = if path == "." {
                        "body".to_owned()
                    } else if path.starts_with('[') {
                        format!("{list_prefix}{path}")
                    } else {
                        path
                    };
                    IngestError::invalid(field, with_path.into_inner().to_string())
                }
                Ok(_) => IngestError::UnreadableBody(error.to_string()),
            }
        }
    }
}
