//! Decoding: raw record bytes → a validated, typed [`Event`], or a [`Rejection`].
//!
//! The bytes are parsed once into a JSON object and validated against the tables of
//! [`crate::schema`] in the order below; the first failing step decides the reason.
//!
//! 1. size (`oversized`), UTF-8 and JSON object (`invalid_json`);
//! 2. `feed` known (`unknown_feed`) and equal to the topic's feed (`feed_topic_mismatch`);
//! 3. `kind` known for the feed (`unknown_kind`);
//! 4. required fields of the kind (`missing_field`; a required array must be non-empty);
//! 5. JSON types (`bad_type`), then enum values and date/time/period formats (`bad_value`),
//!    then value checks (`negative_amount`, `bad_value`; FIN `database` matches the kind,
//!    ranges, `PER.score ≤ scale_max`);
//! 6. `uscc` and `counterparty_uscc`, normalised and checked (`bad_uscc` unless allow-listed);
//! 7. `event_time ≤ ingest_time + 1 day` (`future_event_time`);
//! 8. `event_id` of 1–64 characters and `version` in `1..=u32::MAX` (`bad_value`).
//!
//! `missing_field` and `bad_type` for `feed` and `kind` themselves are reported in step 2
//! and 3. Unknown extra fields are ignored. `null` is a value like any other, so it is a
//! `bad_type` wherever a field is listed.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::event::{Event, Feed};
use crate::reject::{Reason, Rejection};
use crate::schema::{feed_schema, FieldDef, Ty, ENVELOPE_REQUIRED};
use crate::time::{parse_rfc3339, Period, DAY};
use crate::uscc;

/// Decoder settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeConfig {
    /// Largest accepted record in bytes (default 64 KiB).
    pub max_bytes: usize,
    /// Known legacy codes, in normalised form, that fail the USCC check but are accepted.
    pub legacy_usccs: BTreeSet<String>,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            max_bytes: 65_536,
            legacy_usccs: BTreeSet::new(),
        }
    }
}

/// An accepted record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The typed record, with normalised USCCs.
    pub event: Event,
    /// True if `uscc` or `counterparty_uscc` was accepted only through the allow-list.
    pub legacy_uscc: bool,
}

/// Validation steps over individual fields, in the order they are applied to all fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// JSON type.
    Type,
    /// Enum membership and string formats.
    Domain,
    /// Amounts, ranges and cross-field bounds.
    Range,
    /// `event_id` length and `version` range, checked last.
    Envelope,
}

/// Decodes and validates one record. `expected_feed` is the feed of the topic it came from.
pub fn decode(
    bytes: &[u8],
    expected_feed: Option<Feed>,
    cfg: &DecodeConfig,
) -> Result<Decoded, Rejection> {
    if bytes.len() > cfg.max_bytes {
        return Err(Rejection::new(
            Reason::Oversized,
            format!(
                "record is {} bytes, the limit is {}",
                bytes.len(),
                cfg.max_bytes
            ),
        ));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Rejection::new(Reason::InvalidJson, format!("not UTF-8: {e}")))?;
    let mut map = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map,
        Ok(other) => {
            return Err(Rejection::new(
                Reason::InvalidJson,
                format!("not a JSON object but {}", type_name(&other)),
            ))
        }
        Err(e) => {
            return Err(Rejection::new(
                Reason::InvalidJson,
                format!("not JSON: {e}"),
            ))
        }
    };

    let feed_name = envelope_str(&map, "feed")?;
    let feed = Feed::parse(feed_name).ok_or_else(|| {
        Rejection::new(
            Reason::UnknownFeed,
            format!("unknown feed {}", quote(feed_name)),
        )
    })?;
    if let Some(topic) = expected_feed.filter(|&t| t != feed) {
        return Err(Rejection::new(
            Reason::FeedTopicMismatch,
            format!("feed {feed} does not match the topic's feed {topic}"),
        ));
    }
    let schema = feed_schema(feed);
    let kind_name = envelope_str(&map, "kind")?;
    let rule = schema.kind(kind_name).ok_or_else(|| {
        Rejection::new(
            Reason::UnknownKind,
            format!("unknown kind {} for feed {feed}", quote(kind_name)),
        )
    })?;

    for name in ENVELOPE_REQUIRED
        .iter()
        .copied()
        .chain(schema.required(rule))
    {
        let missing = match map.get(name) {
            None => true,
            Some(Value::Array(items)) => items.is_empty(),
            Some(_) => false,
        };
        if missing {
            return Err(Rejection::new(
                Reason::MissingField,
                format!("missing field \"{name}\" required for {feed}.{}", rule.kind),
            ));
        }
    }

    let present: Vec<(&FieldDef, &Value)> = schema
        .all_fields()
        .filter_map(|def| map.get(def.name).map(|v| (def, v)))
        .collect();
    for step in [Step::Type, Step::Domain, Step::Range] {
        for &(def, value) in &present {
            check(step, def, value, &map)?;
        }
    }
    for &(name, want) in rule.fixed {
        if let Some(got) = map
            .get(name)
            .and_then(Value::as_str)
            .filter(|got| *got != want)
        {
            return Err(Rejection::new(
                Reason::BadValue,
                format!(
                    "field \"{name}\" is {} but {feed}.{} needs {want}",
                    quote(got),
                    rule.kind
                ),
            ));
        }
    }

    let mut legacy_uscc = false;
    let mut normalised = Vec::new();
    for &(def, value) in present.iter().filter(|(def, _)| def.ty == Ty::Uscc) {
        let raw = value.as_str().unwrap_or_default();
        let code = uscc::normalise(raw);
        if let Err(e) = uscc::check(&code) {
            if !cfg.legacy_usccs.contains(&code) {
                return Err(Rejection::new(
                    Reason::BadUscc,
                    format!(
                        "field \"{}\" {} is not a valid USCC: {e}",
                        def.name,
                        quote(raw)
                    ),
                ));
            }
            legacy_uscc = true;
        }
        if code != raw {
            normalised.push((def.name, code));
        }
    }

    let time = |name: &str| {
        map.get(name)
            .and_then(Value::as_str)
            .and_then(parse_rfc3339)
    };
    if let (Some(event_time), Some(ingest_time)) = (time("event_time"), time("ingest_time")) {
        if event_time > ingest_time.saturating_add(DAY) {
            return Err(Rejection::new(
                Reason::FutureEventTime,
                format!(
                    "event_time is {} s after ingest_time, at most {DAY} s allowed",
                    event_time.saturating_sub(ingest_time)
                ),
            ));
        }
    }

    for &(def, value) in &present {
        check(Step::Envelope, def, value, &map)?;
    }
    drop(present);

    for (name, code) in normalised {
        map.insert(name.to_owned(), Value::String(code));
    }
    let event = Event::deserialize(Value::Object(map)).map_err(|e| {
        // Unreachable when the tables match the types (a test checks that they do).
        Rejection::new(
            Reason::BadType,
            format!("record does not fit the {feed} event type: {e}"),
        )
    })?;
    Ok(Decoded { event, legacy_uscc })
}

/// The canonical bytes of a record (`docs/decisions.md` D1): its typed re-encoding.
pub fn encode(e: &Event) -> Vec<u8> {
    // Serialising an `Event` cannot fail: every field is a string, integer, array or a
    // struct with string keys, and timestamps always format.
    serde_json::to_vec(e).expect("an Event always serialises to JSON")
}

/// SHA-256 of the canonical bytes; duplicate detection and the equal-version tie-break use it.
pub fn digest(e: &Event) -> [u8; 32] {
    Sha256::digest(encode(e)).into()
}

/// Reads `feed` or `kind`, which decide everything else and are checked before the rest.
fn envelope_str<'a>(map: &'a Map<String, Value>, name: &str) -> Result<&'a str, Rejection> {
    match map.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(Rejection::new(
            Reason::BadType,
            format!(
                "field \"{name}\" must be a string, got {}",
                type_name(other)
            ),
        )),
        None => Err(Rejection::new(
            Reason::MissingField,
            format!("missing field \"{name}\" required for every record"),
        )),
    }
}

/// Applies one validation step to one present field.
fn check(
    step: Step,
    def: &FieldDef,
    value: &Value,
    map: &Map<String, Value>,
) -> Result<(), Rejection> {
    let name = def.name;
    let bad_value = |what: String| {
        Err(Rejection::new(
            Reason::BadValue,
            format!("field \"{name}\" {what}"),
        ))
    };
    match (step, def.ty) {
        (Step::Type, ty) => {
            let (ok, want) = match ty {
                Ty::Int { .. } | Ty::Amount | Ty::Version => {
                    (value.is_i64() || value.is_u64(), "an integer")
                }
                Ty::EnumArray(_) => (
                    value
                        .as_array()
                        .is_some_and(|items| items.iter().all(Value::is_string)),
                    "an array of strings",
                ),
                Ty::Text
                | Ty::EventId
                | Ty::Uscc
                | Ty::Date
                | Ty::Timestamp
                | Ty::Period
                | Ty::Enum(_) => (value.is_string(), "a string"),
            };
            if ok {
                Ok(())
            } else {
                Err(Rejection::new(
                    Reason::BadType,
                    format!("field \"{name}\" must be {want}, got {}", type_name(value)),
                ))
            }
        }
        (Step::Domain, Ty::Enum(values)) => one_of(name, value, values),
        (Step::Domain, Ty::EnumArray(values)) => value
            .as_array()
            .into_iter()
            .flatten()
            .try_for_each(|item| one_of(name, item, values)),
        (Step::Domain, Ty::Date | Ty::Timestamp | Ty::Period) => {
            let s = value.as_str().unwrap_or_default();
            let (ok, want) = match def.ty {
                Ty::Date => (is_date(s), "a date YYYY-MM-DD"),
                Ty::Period => (Period::parse(s).is_some(), "a month YYYY-MM"),
                _ => (
                    parse_rfc3339(s).is_some(),
                    "an RFC 3339 timestamp with offset",
                ),
            };
            if ok {
                Ok(())
            } else {
                bad_value(format!("must be {want}, got {}", quote(s)))
            }
        }
        (Step::Range, Ty::Amount) => match value.as_i64() {
            Some(v) if v < 0 => Err(Rejection::new(
                Reason::NegativeAmount,
                format!("field \"{name}\" is a negative amount ({v} fen)"),
            )),
            Some(_) => Ok(()),
            None => bad_value(format!("is out of range ({value})")),
        },
        (Step::Range, Ty::Int { min, max, at_most }) => {
            let Some(v) = value.as_i64().filter(|v| (min..=max).contains(v)) else {
                return bad_value(format!("must be in {min}..={max}, got {value}"));
            };
            match at_most.and_then(|other| Some((other, map.get(other)?.as_i64()?))) {
                Some((other, bound)) if v > bound => {
                    bad_value(format!("is {v}, above {other} ({bound})"))
                }
                _ => Ok(()),
            }
        }
        (Step::Envelope, Ty::EventId) => {
            let n = value.as_str().map_or(0, |s| s.chars().count());
            if (1..=64).contains(&n) {
                Ok(())
            } else {
                bad_value(format!("must have 1-64 characters, has {n}"))
            }
        }
        (Step::Envelope, Ty::Version) => match value
            .as_u64()
            .filter(|v| *v >= 1 && *v <= u64::from(u32::MAX))
        {
            Some(_) => Ok(()),
            None => bad_value(format!(
                "must be an integer in 1..={}, got {value}",
                u32::MAX
            )),
        },
        _ => Ok(()),
    }
}

fn one_of(name: &str, value: &Value, values: &[&str]) -> Result<(), Rejection> {
    let s = value.as_str().unwrap_or_default();
    if values.contains(&s) {
        Ok(())
    } else {
        Err(Rejection::new(
            Reason::BadValue,
            format!(
                "field \"{name}\" has unknown value {} (one of {})",
                quote(s),
                values.join(", ")
            ),
        ))
    }
}

/// Strictly `YYYY-MM-DD` (what the JSON Schema format `date` means), and a real date.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
        && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a non-integer number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Quotes untrusted text for a message, cut to 64 characters.
fn quote(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", s.get(..cut).unwrap_or_default()),
        None => format!("{s:?}"),
    }
}
