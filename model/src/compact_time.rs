//! Monicar's `yyyyMMddHHmmss` times: UTC, second precision, exactly 14 ASCII digits.

use std::fmt::Write as _;

/// Why a compact time was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CompactTimeError {
    #[error("must be exactly 14 digits yyyyMMddHHmmss, got {0} characters")]
    Length(usize),
    #[error("must contain only digits yyyyMMddHHmmss")]
    NotDigits,
    #[error("is not a real calendar date and time")]
    NoSuchTime,
}

/// Parses `yyyyMMddHHmmss` (UTC) into ms since the Unix epoch.
pub fn parse_compact_time(text: &str) -> Result<i64, CompactTimeError> {
    let bytes = text.as_bytes();
    if bytes.len() != 14 {
        return Err(CompactTimeError::Length(text.chars().count()));
    }
    if !bytes.iter().all(u8::is_ascii_digit) {
        return Err(CompactTimeError::NotDigits);
    }
    let num = |range: std::ops::Range<usize>| {
        bytes[range]
            .iter()
            .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0'))
    };
    let (year, month, day) = (num(0..4), num(4..6), num(6..8));
    let (hour, minute, second) = (num(8..10), num(10..12), num(12..14));
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(CompactTimeError::NoSuchTime);
    }
    let days = days_from_civil(year, month, day);
    Ok(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1_000)
}

/// Formats ms since the epoch as `yyyyMMddHHmmss` (UTC), truncating sub-second precision.
pub fn format_compact_time(time_ms: i64) -> String {
    let secs = time_ms.div_euclid(1_000);
    let (days, secs_of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let mut out = String::with_capacity(14);
    let _ = write!(
        out,
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}",
        secs_of_day / 3_600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    );
    out
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_monicar_example() {
        // 2025-02-18T10:15:30Z
        assert_eq!(parse_compact_time("20250218101530"), Ok(1_739_873_730_000));
        assert_eq!(format_compact_time(1_739_873_730_999), "20250218101530");
    }

    #[test]
    fn rejects_bad_shapes_and_impossible_dates() {
        assert_eq!(
            parse_compact_time("2025021810153"),
            Err(CompactTimeError::Length(13))
        );
        assert_eq!(
            parse_compact_time("2025-02-18T101"),
            Err(CompactTimeError::NotDigits)
        );
        assert_eq!(
            parse_compact_time("20250230101530"),
            Err(CompactTimeError::NoSuchTime)
        );
        assert_eq!(
            parse_compact_time("20250218246030"),
            Err(CompactTimeError::NoSuchTime)
        );
        assert_eq!(parse_compact_time("20240229000000"), Ok(1_709_164_800_000));
        assert_eq!(
            parse_compact_time("20230229000000"),
            Err(CompactTimeError::NoSuchTime)
        );
    }

    #[test]
    fn civil_round_trip() {
        for days in -800_000..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
