//! Query-string parameters, parsed one by one so that a bad one gets a 400 naming it and
//! saying what was expected; unknown parameters are errors too (a typo is not silently
//! ignored).

use std::collections::HashMap;
use std::str::FromStr;

use crate::error::QueryError;

/// The parameters of one request, checked against the names the endpoint takes.
#[derive(Debug)]
pub struct Params {
    values: HashMap<String, String>,
}

impl Params {
    pub fn new(values: HashMap<String, String>, allowed: &[&str]) -> Result<Params, QueryError> {
        let first_unknown = values
            .keys()
            .map(String::as_str)
            .filter(|k| !allowed.contains(k))
            .min();
        if let Some(first) = first_unknown {
            return Err(QueryError::BadParameter {
                parameter: "query",
                reason: format!(
                    "unknown parameter {first:?} (this endpoint takes: {})",
                    allowed.join(", ")
                ),
            });
        }
        Ok(Params { values })
    }

    pub fn text(&self, name: &'static str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A number in `range`, if present.
    pub fn number<T>(
        &self,
        name: &'static str,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<Option<T>, QueryError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(raw) = self.text(name) else {
            return Ok(None);
        };
        let value: T = raw
            .trim()
            .parse()
            .map_err(|_| QueryError::bad(name, format!("{raw:?} is not a number")))?;
        if !range.contains(&value) {
            return Err(QueryError::bad(
                name,
                format!(
                    "{value} is out of range {}..={}",
                    range.start(),
                    range.end()
                ),
            ));
        }
        Ok(Some(value))
    }

    pub fn required<T>(
        &self,
        name: &'static str,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, QueryError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        self.number(name, range)?
            .ok_or_else(|| QueryError::bad(name, "required"))
    }

    /// A comma-separated list of names that `parse` knows.
    pub fn list<T>(
        &self,
        name: &'static str,
        parse: impl Fn(&str) -> Option<T>,
        known: &[&str],
    ) -> Result<Option<Vec<T>>, QueryError> {
        let Some(raw) = self.text(name) else {
            return Ok(None);
        };
        raw.split(',')
            .map(|s| {
                parse(s.trim()).ok_or_else(|| {
                    QueryError::bad(name, format!("{s:?} is not one of {}", known.join(", ")))
                })
            })
            .collect::<Result<Vec<T>, _>>()
            .map(Some)
    }
}
