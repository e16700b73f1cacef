//! Decoding: raw record bytes → a validated, typed [`Event`], or a [`Rejection`].
//!
//! The bytes are parsed once into a JSON tree that borrows its strings, validated against
//! the tables of [`crate::schema`] in the order below (the first failing step decides the
//! reason), and the typed event is then built from the same tree.
//!
//! 1. size (`oversized`), UTF-8 and JSON object (`invalid_json`);
//! 2. `feed` known (`unknown_feed`) and equal to the topic's feed (`feed_topic_mismatch`);
//! 3. `kind` known for the feed (`unknown_kind`);
//! 4. required fields of the kind (`missing_field`; a required array must be non-empty);
//! 5. JSON types (`bad_type`), then enum values and date/time/period formats (`bad_value`),
//!    then value checks (`negative_amount`, `bad_value`: ranges, `PER.score ≤ scale_max`,
//!    FIN `database` matches the kind);
//! 6. `uscc` and `counterparty_uscc`, normalised and checked (`bad_uscc` unless allow-listed);
//! 7. `event_time ≤ ingest_time + 1 day` (`future_event_time`);
//! 8. `event_id` of 1–64 characters and `version` in `1..=u32::MAX` (`bad_value`).
//!
//! A missing or non-string `feed` or `kind` is reported in step 2 or 3. Unknown extra fields
//! are ignored. `null` is a value like any other, so it is a `bad_type` for a listed field.
//! With duplicate keys the last one counts.

use std::collections::BTreeSet;

use serde::de::value::MapDeserializer;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::event::{Body, Event, Feed};
use crate::raw::Val;
use crate::reject::{Reason, Rejection};
use crate::schema::{feed_schema, FieldDef, KindRule, Ty, ENVELOPE_REQUIRED};
use crate::time::{parse_rfc3339, Period, Ts, DAY};
use crate::uscc;
use crate::CompactString;

/// Decoder settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeConfig {
    /// Largest accepted record in bytes (default 64 KiB).
    pub max_bytes: usize,
    /// Known legacy codes, in normalised form, that fail the USCC check but are accepted
    /// (only those the engine's keys hold: up to 20 characters `0-9`, `A-Z`, see
    /// [`uscc::Uscc`]; another is rejected as `bad_uscc`).
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

/// Validation steps over individual fields, each applied to all fields before the next.
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

/// The listed fields present in a record, in table order.
type Present<'r, 'a> = Vec<(&'static FieldDef, &'r Val<'a>)>;

fn lookup<'r, 'a>(present: &Present<'r, 'a>, name: &str) -> Option<&'r Val<'a>> {
    present
        .iter()
        .find(|(def, _)| def.name == name)
        .map(|(_, v)| *v)
}

fn reject<T>(reason: Reason, message: String) -> Result<T, Rejection> {
    Err(Rejection::new(reason, message))
}

/// Decodes and validates one record. `expected_feed` is the feed of the topic it came from.
pub fn decode(
    bytes: &[u8],
    expected_feed: Option<Feed>,
    cfg: &DecodeConfig,
) -> Result<Decoded, Rejection> {
    let record = parse(bytes, cfg)?;
    let (feed, rule) = identify(&record, expected_feed)?;
    let schema = feed_schema(feed);
    require(&record, feed, rule)?;
    let present: Present = schema
        .all_fields()
        .filter_map(|def| record.get(def.name).map(|v| (def, v)))
        .collect();
    for step in [Step::Type, Step::Domain, Step::Range] {
        for &(def, value) in &present {
            check(step, def, value, &present)?;
        }
    }
    fixed_values(&present, feed, rule)?;
    let (normalised, legacy_uscc) = usccs(&present, cfg)?;
    let (event_time, ingest_time) = times(&present)?;
    for &(def, value) in &present {
        check(Step::Envelope, def, value, &present)?;
    }

    let field = |name: &str| {
        normalised
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .or_else(|| record.get(name))
    };
    let event = build(feed, &field, event_time, ingest_time).map_err(|e| {
        // Unreachable when the tables match the types (a test checks that they do).
        let msg = format!("record does not fit the {feed} event type: {e}");
        Rejection::new(Reason::BadType, msg)
    })?;
    Ok(Decoded { event, legacy_uscc })
}

/// Size, UTF-8, JSON, object.
fn parse<'a>(bytes: &'a [u8], cfg: &DecodeConfig) -> Result<Val<'a>, Rejection> {
    if bytes.len() > cfg.max_bytes {
        let (n, max) = (bytes.len(), cfg.max_bytes);
        return reject(
            Reason::Oversized,
            format!("record is {n} bytes, the limit is {max}"),
        );
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Rejection::new(Reason::InvalidJson, format!("not UTF-8: {e}")))?;
    match Val::parse(text) {
        Ok(record @ Val::Object(_)) => Ok(record),
        Ok(other) => {
            let what = other.type_name();
            reject(Reason::InvalidJson, format!("not a JSON object but {what}"))
        }
        Err(e) => reject(Reason::InvalidJson, format!("not JSON: {e}")),
    }
}

/// The feed (known, and the topic's) and the kind's rule.
fn identify(
    record: &Val<'_>,
    expected_feed: Option<Feed>,
) -> Result<(Feed, &'static KindRule), Rejection> {
    let feed_name = envelope_str(record, "feed")?;
    let Some(feed) = Feed::parse(feed_name) else {
        return reject(
            Reason::UnknownFeed,
            format!("unknown feed {}", quote(feed_name)),
        );
    };
    if let Some(topic) = expected_feed.filter(|&t| t != feed) {
        let msg = format!("feed {feed} does not match the topic's feed {topic}");
        return reject(Reason::FeedTopicMismatch, msg);
    }
    let kind_name = envelope_str(record, "kind")?;
    match feed_schema(feed).kind(kind_name) {
        Some(rule) => Ok((feed, rule)),
        None => {
            let msg = format!("unknown kind {} for feed {feed}", quote(kind_name));
            reject(Reason::UnknownKind, msg)
        }
    }
}

/// Every field the kind requires is present; a required array is non-empty.
fn require(record: &Val<'_>, feed: Feed, rule: &KindRule) -> Result<(), Rejection> {
    let required = ENVELOPE_REQUIRED
        .iter()
        .copied()
        .chain(feed_schema(feed).required(rule));
    for name in required {
        let missing = match record.get(name) {
            None => true,
            Some(Val::Array(items)) => items.is_empty(),
            Some(_) => false,
        };
        if missing {
            let msg = format!("missing field \"{name}\" required for {feed}.{}", rule.kind);
            return reject(Reason::MissingField, msg);
        }
    }
    Ok(())
}

/// Fields whose value the kind fixes (FIN `database`).
fn fixed_values(present: &Present, feed: Feed, rule: &KindRule) -> Result<(), Rejection> {
    for &(name, want) in rule.fixed {
        if let Some(got) = lookup(present, name)
            .and_then(Val::as_str)
            .filter(|g| *g != want)
        {
            let kind = rule.kind;
            let msg = format!(
                "field \"{name}\" is {} but {feed}.{kind} needs {want}",
                quote(got)
            );
            return reject(Reason::BadValue, msg);
        }
    }
    Ok(())
}

/// USCC fields with their normalised values.
type Normalised<'a> = Vec<(&'static str, Val<'a>)>;

/// Normalises and checks the USCC fields: their normalised values, and whether one was
/// accepted only through the legacy allow-list.
fn usccs<'a>(present: &Present, cfg: &DecodeConfig) -> Result<(Normalised<'a>, bool), Rejection> {
    let mut legacy = false;
    let mut normalised = Vec::new();
    for &(def, value) in present.iter().filter(|(def, _)| def.ty == Ty::Uscc) {
        let raw = value.as_str().unwrap_or_default();
        let code = if raw
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            raw.to_owned() // already normalised: the common case, without a char-by-char pass
        } else {
            uscc::normalise(raw)
        };
        if let Err(e) = uscc::check(&code) {
            if !cfg.legacy_usccs.contains(&code) || uscc::Uscc::new(&code).is_none() {
                let msg = format!(
                    "field \"{}\" {} is not a valid USCC: {e}",
                    def.name,
                    quote(raw)
                );
                return reject(Reason::BadUscc, msg);
            }
            legacy = true;
        }
        normalised.push((def.name, Val::Str(code.into())));
    }
    Ok((normalised, legacy))
}

/// `event_time` and `ingest_time`; the first at most one day after the second.
fn times(present: &Present) -> Result<(Ts, Ts), Rejection> {
    let time = |name: &str| {
        lookup(present, name)
            .and_then(Val::as_str)
            .and_then(parse_rfc3339)
    };
    let (Some(event_time), Some(ingest_time)) = (time("event_time"), time("ingest_time")) else {
        // Both are required and passed the format check, so this does not happen.
        return reject(
            Reason::BadValue,
            "event_time or ingest_time unreadable".into(),
        );
    };
    if event_time > ingest_time.saturating_add(DAY) {
        let ahead = event_time.saturating_sub(ingest_time);
        let msg = format!("event_time is {ahead} s after ingest_time, at most {DAY} s allowed");
        return reject(Reason::FutureEventTime, msg);
    }
    Ok((event_time, ingest_time))
}

/// The canonical bytes of a record (`docs/decisions.md` D1): its typed re-encoding.
pub fn encode(e: &Event) -> Vec<u8> {
    // Serialising an `Event` cannot fail: every field is a string, an integer, an array or
    // a struct with string keys, and timestamps always format.
    serde_json::to_vec(e).expect("an Event always serialises to JSON")
}

/// SHA-256 of the canonical bytes; duplicate detection and the equal-version tie-break use it.
pub fn digest(e: &Event) -> [u8; 32] {
    digest_of(&encode(e))
}

/// SHA-256 of canonical bytes already made by [`encode`] (the same as [`digest`]).
pub fn digest_of(canonical: &[u8]) -> [u8; 32] {
    Sha256::digest(canonical).into()
}

/// Builds the typed event from validated fields: the envelope directly, the body by
/// deserialising the feed's struct from the fields the table lists.
fn build<'r, 'a: 'r>(
    feed: Feed,
    field: &impl Fn(&str) -> Option<&'r Val<'a>>,
    event_time: Ts,
    ingest_time: Ts,
) -> Result<Event, String> {
    let text = |name: &str| field(name).and_then(Val::as_str).map(CompactString::from);
    let fields = std::iter::once("kind")
        .chain(feed_schema(feed).fields.iter().map(|def| def.name))
        .filter_map(|name| field(name).map(|v| (name, v)));
    let body = body(feed, MapDeserializer::new(fields)).map_err(|e| e.to_string())?;
    Ok(Event {
        uscc: text("uscc").ok_or("no uscc")?,
        event_id: text("event_id").ok_or("no event_id")?,
        version: match field("version") {
            Some(v) => v
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or("bad version")?,
            None => 1,
        },
        event_time,
        ingest_time,
        source_org: text("source_org"),
        ref_event_id: text("ref_event_id"),
        body,
    })
}

/// Deserialises the body struct of a feed from its fields.
fn body<'de, D: serde::Deserializer<'de>>(feed: Feed, fields: D) -> Result<Body, D::Error> {
    macro_rules! bodies {
        ($($variant:ident),+) => {
            match feed { $(Feed::$variant => Body::$variant(Deserialize::deserialize(fields)?)),+ }
        };
    }
    Ok(bodies!(
        Pen, List, Tax, Jud, Fin, Reg, Per, Cmt, Rpr, Insp, Pcs
    ))
}

/// Reads `feed` or `kind`, which decide everything else and are checked before the rest.
fn envelope_str<'r>(record: &'r Val<'_>, name: &str) -> Result<&'r str, Rejection> {
    match record.get(name) {
        Some(Val::Str(s)) => Ok(s),
        Some(other) => {
            let msg = format!(
                "field \"{name}\" must be a string, got {}",
                other.type_name()
            );
            reject(Reason::BadType, msg)
        }
        None => reject(
            Reason::MissingField,
            format!("missing field \"{name}\" required for every record"),
        ),
    }
}

/// Applies one validation step to one present field.
fn check(step: Step, def: &FieldDef, value: &Val<'_>, present: &Present) -> Result<(), Rejection> {
    let name = def.name;
    let bad_value = |what: String| reject(Reason::BadValue, format!("field \"{name}\" {what}"));
    match (step, def.ty) {
        (Step::Type, ty) => {
            let (ok, want) = match ty {
                Ty::Int { .. } | Ty::Amount | Ty::Version => (value.is_integer(), "an integer"),
                Ty::EnumArray(_) => (
                    matches!(value, Val::Array(items) if items.iter().all(|i| i.as_str().is_some())),
                    "an array of strings",
                ),
                Ty::Text
                | Ty::EventId
                | Ty::Uscc
                | Ty::Date
                | Ty::Timestamp
                | Ty::Period
                | Ty::Enum(_) => (value.as_str().is_some(), "a string"),
            };
            if ok {
                Ok(())
            } else {
                let msg = format!("field \"{name}\" must be {want}, got {}", value.type_name());
                reject(Reason::BadType, msg)
            }
        }
        (Step::Domain, Ty::Enum(values)) => one_of(name, value, values),
        (Step::Domain, Ty::EnumArray(values)) => match value {
            Val::Array(items) => items.iter().try_for_each(|item| one_of(name, item, values)),
            _ => Ok(()),
        },
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
            Some(v) if v < 0 => {
                let msg = format!("field \"{name}\" is a negative amount ({v} fen)");
                reject(Reason::NegativeAmount, msg)
            }
            Some(_) => Ok(()),
            None => bad_value(format!("is out of range ({value})")),
        },
        (Step::Range, Ty::Int { min, max, at_most }) => {
            let Some(v) = value.as_i64().filter(|v| (min..=max).contains(v)) else {
                return bad_value(format!("must be in {min}..={max}, got {value}"));
            };
            let bound = at_most.and_then(|other| Some((other, lookup(present, other)?.as_i64()?)));
            match bound {
                Some((other, b)) if v > b => bad_value(format!("is {v}, above {other} ({b})")),
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
        (Step::Envelope, Ty::Version) => {
            match value
                .as_u64()
                .filter(|v| (1..=u64::from(u32::MAX)).contains(v))
            {
                Some(_) => Ok(()),
                None => bad_value(format!(
                    "must be an integer in 1..={}, got {value}",
                    u32::MAX
                )),
            }
        }
        _ => Ok(()),
    }
}

fn one_of(name: &str, value: &Val<'_>, values: &[&str]) -> Result<(), Rejection> {
    let s = value.as_str().unwrap_or_default();
    if values.contains(&s) {
        Ok(())
    } else {
        let msg = format!(
            "field \"{name}\" has unknown value {} (one of {})",
            quote(s),
            values.join(", ")
        );
        reject(Reason::BadValue, msg)
    }
}

/// Strictly `YYYY-MM-DD` (what the JSON Schema format `date` means), and a real date.
fn is_date(s: &str) -> bool {
    let shape = s.len() == 10
        && s.bytes().enumerate().all(|(i, c)| match i {
            4 | 7 => c == b'-',
            _ => c.is_ascii_digit(),
        });
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|t| t.parse::<u32>().ok());
    shape
        && match (num(0..4), num(5..7), num(8..10)) {
            (Some(y), Some(m), Some(d)) => i32::try_from(y)
                .ok()
                .and_then(|y| chrono::NaiveDate::from_ymd_opt(y, m, d))
                .is_some(),
            _ => false,
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
