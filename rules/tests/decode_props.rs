//! Properties of the decoder: it never panics and always explains a rejection, single
//! faults get their reason, and valid typed events round-trip through `encode`.

use proptest::prelude::*;
use proptest::sample::{select, Index};
use rules::decode::{decode, encode, DecodeConfig};
use rules::event::{Event, Feed};
use rules::reject::{Reason, Rejection};
use rules::schema::{feed_schema, FieldDef, Ty, ENVELOPE_REQUIRED};
use rules::time::{format_rfc3339, parse_rfc3339, Ts, DAY};
use rules::uscc;
use serde_json::{json, Map, Value};

/// 2000-01-01 .. 2100-01-01.
const TIME: std::ops::Range<Ts> = 946_684_800..4_102_444_800;

/// A valid USCC in Quzhou (region 3308xx).
fn valid_uscc() -> impl Strategy<Value = String> {
    let code = |set: &'static str| select(set.chars().collect::<Vec<_>>());
    let chars = std::str::from_utf8(uscc::CHARS).unwrap();
    (
        code("123456789ANY"),
        code(chars),
        0..100u32,
        proptest::collection::vec(code(chars), 9),
    )
        .prop_map(|(authority, kind, district, tail)| {
            let first17: String = format!(
                "{authority}{kind}3308{district:02}{}",
                tail.iter().collect::<String>()
            );
            uscc::with_check(&first17).expect("17 code characters")
        })
}

/// An RFC 3339 rendering of `t` in a random offset, sometimes with a fraction.
fn timestamp(t: Ts) -> impl Strategy<Value = String> {
    (-12 * 4..=14 * 4i32, 0..1000u32, any::<bool>()).prop_map(move |(quarters, millis, frac)| {
        let offset = chrono::FixedOffset::east_opt(quarters * 900).expect("offset within ±14 h");
        let d = chrono::DateTime::from_timestamp(t, millis * 1_000_000)
            .expect("in range")
            .with_timezone(&offset);
        if frac {
            d.to_rfc3339()
        } else {
            d.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
        }
    })
}

/// A valid JSON value for a field of this type.
fn value(ty: Ty, required: bool) -> BoxedStrategy<Value> {
    match ty {
        Ty::Text => "\\PC{0,12}".prop_map(Value::from).boxed(),
        Ty::EventId => "\\PC{1,64}".prop_map(Value::from).boxed(),
        Ty::Uscc => valid_uscc().prop_map(Value::from).boxed(),
        Ty::Int { min, max, .. } => prop_oneof![Just(min), Just(max), min..=max]
            .prop_map(Value::from)
            .boxed(),
        Ty::Amount => prop_oneof![Just(0), 0..1_000_000_000i64, 0..=i64::MAX]
            .prop_map(Value::from)
            .boxed(),
        Ty::Version => (1..=u32::MAX).prop_map(Value::from).boxed(),
        Ty::Date => (0..73_000i64)
            .prop_map(|days| {
                let d = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("date")
                    + chrono::Days::new(days as u64);
                Value::from(d.to_string())
            })
            .boxed(),
        Ty::Timestamp => TIME.prop_flat_map(timestamp).prop_map(Value::from).boxed(),
        Ty::Period => (1900..2200i32, 1..=12u32)
            .prop_map(|(y, m)| Value::from(format!("{y:04}-{m:02}")))
            .boxed(),
        Ty::Enum(values) => select(values).prop_map(Value::from).boxed(),
        Ty::EnumArray(values) => {
            proptest::collection::vec(select(values), usize::from(required)..4)
                .prop_map(Value::from)
                .boxed()
        }
    }
}

/// A valid record of some kind of some feed as raw JSON (not in canonical form): required
/// fields always, optional ones at random, values anywhere in their domain.
fn valid_record() -> impl Strategy<Value = Value> {
    let kinds: Vec<(Feed, &'static str)> = Feed::ALL
        .iter()
        .flat_map(|&f| feed_schema(f).kinds.iter().map(move |r| (f, r.kind)))
        .collect();
    select(kinds).prop_flat_map(|(feed, kind)| {
        let schema = feed_schema(feed);
        let rule = schema.kind(kind).expect("listed kind");
        let required: Vec<&str> = ENVELOPE_REQUIRED
            .iter()
            .copied()
            .chain(schema.required(rule))
            .collect();
        let fields: Vec<BoxedStrategy<Option<(&'static str, Value)>>> = schema
            .all_fields()
            .map(|def: &'static FieldDef| {
                let name = def.name;
                let v = value(def.ty, required.contains(&name));
                if required.contains(&name) {
                    v.prop_map(move |v| Some((name, v))).boxed()
                } else {
                    proptest::option::of(v.prop_map(move |v| (name, v))).boxed()
                }
            })
            .collect();
        (fields, 0..10 * 365 * DAY).prop_map(move |(fields, lag)| {
            let mut map: Map<String, Value> = fields
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            map.insert("feed".into(), feed.as_str().into());
            map.insert("kind".into(), kind.into());
            for (name, fixed) in rule.fixed {
                map.insert((*name).into(), (*fixed).into());
            }
            for def in schema.all_fields() {
                if let Ty::Int {
                    at_most: Some(bound),
                    ..
                } = def.ty
                {
                    if let (Some(v), Some(b)) = (
                        map.get(def.name).and_then(Value::as_i64),
                        map.get(bound).and_then(Value::as_i64),
                    ) {
                        map.insert(def.name.into(), v.min(b).into());
                    }
                }
            }
            // event_time at most one day after ingest_time.
            let ingest = map
                .get("ingest_time")
                .and_then(Value::as_str)
                .and_then(parse_rfc3339)
                .expect("timestamp");
            map.insert(
                "event_time".into(),
                format_rfc3339(ingest - lag + DAY).into(),
            );
            Value::Object(map)
        })
    })
}

/// A valid typed event.
fn valid_event() -> impl Strategy<Value = Event> {
    valid_record().prop_map(|r| serde_json::from_value(r).expect("a valid record is an Event"))
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("JSON")
}

fn explained(
    r: Result<rules::decode::Decoded, Rejection>,
) -> Result<rules::decode::Decoded, Reason> {
    r.map_err(|e| {
        assert!(
            !e.message.trim().is_empty(),
            "empty message for {}",
            e.reason
        );
        e.reason
    })
}

/// One fault injected into a valid record.
#[derive(Debug, Clone)]
enum Mutation {
    /// Remove a field.
    Drop(Index),
    /// Replace a field's value with one of a JSON type no field has.
    Retype(Index, Value),
    /// Negate an amount.
    Negate(Index),
    /// Replace one character of the USCC with another code character.
    Garble(Index, Index),
    /// Replace one byte of the encoded record.
    Flip(Index, u8),
    /// Cut the encoded record short.
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let alien = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        Just(json!(1.5)),
        Just(json!({}))
    ];
    prop_oneof![
        any::<Index>().prop_map(Mutation::Drop),
        (any::<Index>(), alien).prop_map(|(i, v)| Mutation::Retype(i, v)),
        any::<Index>().prop_map(Mutation::Negate),
        (any::<Index>(), any::<Index>()).prop_map(|(i, c)| Mutation::Garble(i, c)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// Applies the mutation; returns the bytes and the reason a single fault of this kind must
/// produce (`None` when the outcome is not determined, `Some(Ok)` when it stays valid).
fn apply(mut r: Value, m: &Mutation) -> (Vec<u8>, Option<Result<(), Reason>>) {
    let feed = r["feed"]
        .as_str()
        .and_then(Feed::parse)
        .expect("valid feed");
    let schema = feed_schema(feed);
    let rule = r["kind"]
        .as_str()
        .and_then(|k| schema.kind(k))
        .expect("valid kind");
    let map = r.as_object_mut().expect("object");
    let keys: Vec<String> = map.keys().cloned().collect();
    match m {
        Mutation::Drop(i) => {
            let key = i.get(&keys);
            map.remove(key);
            let required = ENVELOPE_REQUIRED
                .iter()
                .copied()
                .chain(schema.required(rule))
                .any(|n| n == key);
            (
                bytes(&r),
                Some(if required {
                    Err(Reason::MissingField)
                } else {
                    Ok(())
                }),
            )
        }
        Mutation::Retype(i, alien) => {
            map.insert(i.get(&keys).clone(), alien.clone());
            (bytes(&r), Some(Err(Reason::BadType)))
        }
        Mutation::Negate(i) => {
            let amounts: Vec<&String> = keys
                .iter()
                .filter(|k| schema.field(k).is_some_and(|f| f.ty.is_amount()))
                .collect();
            if amounts.is_empty() {
                return (bytes(&r), Some(Ok(())));
            }
            let key = *i.get(&amounts);
            let v = map[key].as_i64().expect("amount");
            map.insert(key.clone(), (-v).into());
            (
                bytes(&r),
                Some(if v > 0 {
                    Err(Reason::NegativeAmount)
                } else {
                    Ok(())
                }),
            )
        }
        Mutation::Garble(i, c) => {
            let code: Vec<u8> = map["uscc"].as_str().expect("uscc").bytes().collect();
            let pos = i.index(code.len());
            let others: Vec<u8> = uscc::CHARS
                .iter()
                .copied()
                .filter(|&x| x != code[pos])
                .collect();
            let mut garbled = code;
            garbled[pos] = *c.get(&others);
            map.insert(
                "uscc".into(),
                String::from_utf8(garbled).expect("ASCII").into(),
            );
            (bytes(&r), Some(Err(Reason::BadUscc)))
        }
        Mutation::Flip(i, b) => {
            let mut out = bytes(&r);
            let pos = i.index(out.len());
            out[pos] = *b;
            (out, None)
        }
        Mutation::Truncate(i) => {
            let out = bytes(&r);
            let cut = i.index(out.len());
            (out[..cut].to_vec(), Some(Err(Reason::InvalidJson)))
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = explained(decode(&input, None, &DecodeConfig::default()));
    }

    #[test]
    fn arbitrary_json_text_never_panics(input in "[{}\\[\\]\":,0-9a-z_ -]{0,200}") {
        let _ = explained(decode(input.as_bytes(), Some(Feed::Pen), &DecodeConfig::default()));
    }

    #[test]
    fn single_faults_get_their_reason(r in valid_record(), m in mutation()) {
        let (input, want) = apply(r, &m);
        let got = explained(decode(&input, None, &DecodeConfig::default()));
        if let Some(want) = want {
            prop_assert_eq!(got.as_ref().map(|_| ()).map_err(|e| *e), want, "{:?}", m);
        }
        if let Ok(d) = got {
            // Whatever is accepted re-decodes to itself from its canonical bytes.
            let again = decode(&encode(&d.event), Some(d.event.feed()), &DecodeConfig::default());
            prop_assert_eq!(again, Ok(d));
        }
    }

    #[test]
    fn raw_valid_records_decode_to_their_typed_event(r in valid_record()) {
        let typed: Event = serde_json::from_value(r.clone()).expect("valid record is an Event");
        let d = decode(&bytes(&r), Some(typed.feed()), &DecodeConfig::default());
        prop_assert_eq!(d.map(|d| (d.event, d.legacy_uscc)), Ok((typed, false)));
    }

    #[test]
    fn encode_then_decode_is_identity(e in valid_event()) {
        let d = decode(&encode(&e), Some(e.feed()), &DecodeConfig::default());
        prop_assert_eq!(d.map(|d| d.event), Ok(e));
    }
}
