//! Time: logical time in whole seconds, RFC 3339 parsing, dates that end at the next
//! midnight in Asia/Shanghai (+08:00), calendar-month arithmetic and `YYYY-MM` periods.
//!
//! `semantics.md` §1: logical time has a resolution of one second. Sub-second parts of a
//! timestamp are dropped (floor), so `…T10:00:00.900+08:00` is second `…T10:00:00`.

use std::fmt;

use chrono::{
    DateTime, Datelike, FixedOffset, Months, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Seconds since the Unix epoch (UTC). All logical times and event times are `Ts`.
pub type Ts = i64;

/// One day in seconds.
pub const DAY: Ts = 86_400;

/// The credit centre's calendar offset, Asia/Shanghai (no daylight saving).
pub fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset")
}

/// Parses an RFC 3339 timestamp with offset into whole seconds (floor).
pub fn parse_rfc3339(s: &str) -> Option<Ts> {
    DateTime::parse_from_rfc3339(s).ok().map(|d| d.timestamp())
}

/// Formats seconds as RFC 3339 in UTC (`2024-01-31T16:00:00Z`), the canonical form.
pub fn format_rfc3339(t: Ts) -> String {
    match Utc.timestamp_opt(t, 0).single() {
        // chrono's RFC 3339 writer, about ten times faster than a format string that is
        // parsed at every call; both write the same for four-digit years.
        Some(d) if (0..=9999).contains(&d.year()) => d.to_rfc3339_opts(SecondsFormat::Secs, true),
        Some(d) => d.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => format!("@{t}"),
    }
}

/// The instant a date-only field ends: `D + 1 day` at 00:00 +08:00 (exclusive).
pub fn date_end(d: NaiveDate) -> Ts {
    midnight(d) + DAY
}

/// 00:00 +08:00 at the start of the date.
pub fn midnight(d: NaiveDate) -> Ts {
    d.and_hms_opt(0, 0, 0)
        .and_then(|n| shanghai().from_local_datetime(&n).single())
        .map(|d| d.timestamp())
        .unwrap_or(Ts::MAX)
}

/// The Shanghai calendar date of an instant.
pub fn local_date(t: Ts) -> NaiveDate {
    shanghai()
        .timestamp_opt(t, 0)
        .single()
        .map(|d| d.date_naive())
        .unwrap_or(NaiveDate::MAX)
}

/// Shifts `t` by calendar months in Shanghai local time, clamped to the month's end;
/// `fallback` when out of range.
fn shift_months(t: Ts, shift: impl Fn(NaiveDateTime) -> Option<NaiveDateTime>, fallback: Ts) -> Ts {
    shanghai()
        .timestamp_opt(t, 0)
        .single()
        .and_then(|local| shift(local.naive_local()))
        .and_then(|n| shanghai().from_local_datetime(&n).single())
        .map_or(fallback, |d| d.timestamp())
}

/// `t` plus `n` calendar months in Shanghai local time, clamped to the month's end
/// (Jan 31 + 1 month = Feb 28/29). Saturates at `Ts::MAX`.
pub fn add_months(t: Ts, n: u32) -> Ts {
    shift_months(t, |d| d.checked_add_months(Months::new(n)), Ts::MAX)
}

/// `t` plus `n` calendar years (12·n months).
pub fn add_years(t: Ts, n: u32) -> Ts {
    add_months(t, n.saturating_mul(12))
}

/// `t` minus `n` calendar months in Shanghai local time, clamped to the month's end.
pub fn sub_months(t: Ts, n: u32) -> Ts {
    shift_months(t, |d| d.checked_sub_months(Months::new(n)), Ts::MIN)
}

/// 00:00 +08:00 on the given calendar date, if it exists.
pub fn ymd(year: i32, month: u32, day: u32) -> Ts {
    NaiveDate::from_ymd_opt(year, month, day)
        .map(midnight)
        .unwrap_or(Ts::MAX)
}

/// The Shanghai calendar year of an instant.
pub fn local_year(t: Ts) -> i32 {
    local_date(t).year()
}

/// A calendar month `YYYY-MM`, stored as months since year 0 so that `period − 6` is
/// plain subtraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period(pub i32);

impl Period {
    /// Builds a period from a year and a month 1–12.
    pub fn new(year: i32, month: u32) -> Option<Self> {
        (1..=12)
            .contains(&month)
            .then(|| Period(year * 12 + month as i32 - 1))
    }
    /// The calendar year.
    pub fn year(self) -> i32 {
        self.0.div_euclid(12)
    }
    /// The month, 1–12.
    pub fn month(self) -> u32 {
        self.0.rem_euclid(12) as u32 + 1
    }
    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Option<Self> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        Period::new(y.parse().ok()?, m.parse().ok()?)
    }
    /// The period that contains an instant (Shanghai calendar).
    pub fn of(t: Ts) -> Self {
        let d = local_date(t);
        Period(d.year() * 12 + d.month() as i32 - 1)
    }
    /// 00:00 +08:00 on the first day of the period.
    pub fn start(self) -> Ts {
        ymd(self.year(), self.month(), 1)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Period::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("bad period {s:?}, want YYYY-MM")))
    }
}

/// The JSON Schema of a [`Ts`] written by [`rfc3339`]: an RFC 3339 string (`date-time`),
/// for `#[schemars(with = "Rfc3339")]`.
#[derive(Debug)]
pub struct Rfc3339;

impl schemars::JsonSchema for Rfc3339 {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rfc3339".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339, UTC, to the second: 2024-01-06T17:44:16Z"
        })
    }
}

/// Serde for a required RFC 3339 timestamp stored as [`Ts`].
pub mod rfc3339 {
    use super::*;

    /// Writes the canonical UTC form.
    pub fn serialize<S: Serializer>(t: &Ts, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_rfc3339(*t))
    }
    /// Reads RFC 3339 with offset.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Ts, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse_rfc3339(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("bad RFC 3339 timestamp {s:?}")))
    }
}

/// Serde for an optional RFC 3339 timestamp.
pub mod rfc3339_opt {
    use super::*;

    /// Writes the canonical UTC form.
    pub fn serialize<S: Serializer>(t: &Option<Ts>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            // `serialize_some`: the same JSON, and binary formats (timely's bincode between
            // processes) keep the option's tag.
            Some(t) => s.serialize_some(&format_rfc3339(*t)),
            None => s.serialize_none(),
        }
    }
    /// Reads RFC 3339 with offset.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Ts>, D::Error> {
        let s = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        s.map(|s| {
            parse_rfc3339(&s)
                .ok_or_else(|| serde::de::Error::custom(format!("bad RFC 3339 timestamp {s:?}")))
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The canonical form is the format string's, for any second chrono can hold (years
        /// −262143 to 262142) and for those it cannot.
        #[test]
        fn the_canonical_form_is_the_format_strings(
            t in prop_oneof![-62_167_219_200i64..253_402_300_800, any::<i64>(), -8_300_000_000_000i64..8_200_000_000_000],
        ) {
            let want = match Utc.timestamp_opt(t, 0).single() {
                Some(d) => d.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                None => format!("@{t}"),
            };
            prop_assert_eq!(format_rfc3339(t), want);
        }
    }

    #[test]
    fn month_end_is_clamped() {
        let jan31 = ymd(2024, 1, 31);
        assert_eq!(add_months(jan31, 1), ymd(2024, 2, 29));
        assert_eq!(add_months(ymd(2023, 1, 31), 1), ymd(2023, 2, 28));
        assert_eq!(add_years(ymd(2024, 2, 29), 1), ymd(2025, 2, 28));
        assert_eq!(sub_months(ymd(2024, 3, 31), 1), ymd(2024, 2, 29));
    }

    #[test]
    fn dates_end_at_next_shanghai_midnight() {
        let d = NaiveDate::from_ymd_opt(2024, 6, 30).unwrap();
        // 2024-07-01T00:00+08:00 = 2024-06-30T16:00Z
        assert_eq!(format_rfc3339(date_end(d)), "2024-06-30T16:00:00Z");
    }

    #[test]
    fn rfc3339_floors_to_seconds_and_keeps_offset() {
        let a = parse_rfc3339("2024-01-01T08:00:00.999+08:00").unwrap();
        let b = parse_rfc3339("2024-01-01T00:00:00Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(parse_rfc3339("2024-01-01"), None);
    }

    #[test]
    fn periods() {
        let p = Period::parse("2024-03").unwrap();
        assert_eq!(p.to_string(), "2024-03");
        assert_eq!(Period(p.0 - 6).to_string(), "2023-09");
        assert_eq!(Period::parse("2024-13"), None);
        assert_eq!(Period::parse("24-03"), None);
        assert_eq!(Period::of(ymd(2024, 3, 1)), p);
        assert_eq!(
            Period::of(ymd(2024, 3, 1) - 1),
            Period::parse("2024-02").unwrap()
        );
    }
}
