//! A JSON value that borrows its strings from the input, for the decoder: one parse, few
//! allocations, and a serde `Deserializer` so the typed bodies are built from it directly.

use std::borrow::Cow;
use std::fmt;

use serde::de::value::{BorrowedStrDeserializer, Error, MapDeserializer, SeqDeserializer};
use serde::de::{self, Deserialize, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};

/// A parsed JSON value. Object members keep their input order; duplicates are kept and the
/// last one wins on lookup, as in `serde_json::Value`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    Array(Vec<Val<'a>>),
    Object(Vec<(Cow<'a, str>, Val<'a>)>),
}

impl<'a> Val<'a> {
    /// Parses JSON text.
    pub(crate) fn parse(text: &'a str) -> serde_json::Result<Self> {
        serde_json::from_str(text)
    }

    /// The last member of an object with this name.
    pub(crate) fn get(&self, name: &str) -> Option<&Val<'a>> {
        match self {
            Val::Object(members) => members
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_i64(&self) -> Option<i64> {
        match *self {
            Val::Int(i) => Some(i),
            Val::UInt(u) => i64::try_from(u).ok(),
            _ => None,
        }
    }

    pub(crate) fn as_u64(&self) -> Option<u64> {
        match *self {
            Val::Int(i) => u64::try_from(i).ok(),
            Val::UInt(u) => Some(u),
            _ => None,
        }
    }

    /// True for integers, including those too large for `i64`/`u64` (written as `1e30`).
    pub(crate) fn is_integer(&self) -> bool {
        match *self {
            Val::Int(_) | Val::UInt(_) => true,
            Val::Float(x) => x.fract() == 0.0,
            _ => false,
        }
    }

    /// The JSON type, for messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "a boolean",
            Val::Int(_) | Val::UInt(_) => "an integer",
            Val::Float(x) if x.fract() == 0.0 => "an integer",
            Val::Float(_) => "a non-integer number",
            Val::Str(_) => "a string",
            Val::Array(_) => "an array",
            Val::Object(_) => "an object",
        }
    }
}

/// Numbers as written, anything else by its type (messages never echo free text).
impl fmt::Display for Val<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Int(i) => write!(f, "{i}"),
            Val::UInt(u) => write!(f, "{u}"),
            Val::Float(x) => write!(f, "{x}"),
            other => f.write_str(other.type_name()),
        }
    }
}

impl<'de> Deserialize<'de> for Val<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValVisitor)
    }
}

struct ValVisitor;

impl<'de> Visitor<'de> for ValVisitor {
    type Value = Val<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Val<'de>, E> {
        Ok(Val::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Val<'de>, E> {
        Ok(Val::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Val<'de>, E> {
        Ok(Val::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Val<'de>, E> {
        Ok(Val::UInt(u))
    }
    /// A number with a zero fraction is an integer (JSON Schema: `1.0` is an integer).
    fn visit_f64<E>(self, x: f64) -> Result<Val<'de>, E> {
        const TWO_63: f64 = 9_223_372_036_854_775_808.0;
        Ok(match x {
            x if x.fract() != 0.0 => Val::Float(x),
            x if (-TWO_63..TWO_63).contains(&x) => Val::Int(x as i64),
            x if (0.0..2.0 * TWO_63).contains(&x) => Val::UInt(x as u64),
            x => Val::Float(x),
        })
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Val::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val<'de>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(24));
        while let Some((key, value)) = map.next_entry::<Val<'de>, Val<'de>>()? {
            match key {
                Val::Str(k) => members.push((k, value)),
                other => {
                    return Err(de::Error::custom(format!(
                        "object key is {}",
                        other.type_name()
                    )))
                }
            }
        }
        Ok(Val::Object(members))
    }
}

impl<'a> IntoDeserializer<'a, Error> for &'a Val<'_> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'a> Deserializer<'a> for &'a Val<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'a>>(self, v: V) -> Result<V::Value, Error> {
        match self {
            Val::Null => v.visit_unit(),
            Val::Bool(b) => v.visit_bool(*b),
            Val::Int(i) => v.visit_i64(*i),
            Val::UInt(u) => v.visit_u64(*u),
            Val::Float(x) => v.visit_f64(*x),
            Val::Str(s) => v.visit_borrowed_str(s),
            Val::Array(items) => v.visit_seq(SeqDeserializer::new(items.iter())),
            Val::Object(members) => v.visit_map(MapDeserializer::new(
                members.iter().map(|(k, v)| (k.as_ref(), v)),
            )),
        }
    }

    fn deserialize_option<V: Visitor<'a>>(self, v: V) -> Result<V::Value, Error> {
        match self {
            Val::Null => v.visit_none(),
            other => v.visit_some(other),
        }
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        match self {
            Val::Str(s) => v.visit_enum(BorrowedStrDeserializer::new(s)),
            other => Err(de::Error::invalid_type(
                de::Unexpected::Other(other.type_name()),
                &v,
            )),
        }
    }

    serde::forward_to_deserialize_any! {
        <W: Visitor<'a>>
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_borrowing_and_last_duplicate_wins() {
        let text = r#"{"a": "x", "b": [1, -2, 1.5, null, true], "a": "y\n", "c": {"d": 18446744073709551615}}"#;
        let v = Val::parse(text).unwrap();
        assert_eq!(v.get("a"), Some(&Val::Str(Cow::Owned("y\n".into()))));
        let b = v.get("b").unwrap();
        assert_eq!(
            b,
            &Val::Array(vec![
                Val::UInt(1),
                Val::Int(-2),
                Val::Float(1.5),
                Val::Null,
                Val::Bool(true)
            ])
        );
        assert_eq!(
            v.get("c").and_then(|c| c.get("d")).and_then(Val::as_u64),
            Some(u64::MAX)
        );
        assert_eq!(
            v.get("c").and_then(|c| c.get("d")).and_then(Val::as_i64),
            None
        );
        assert!(matches!(
            Val::parse(r#"{"k": "plain"}"#).unwrap().get("k"),
            Some(Val::Str(Cow::Borrowed(_)))
        ));
    }

    #[test]
    fn integral_numbers_are_integers() {
        let v = Val::parse("[5.0, -0.0, 1e3, -9223372036854775808.0, 1e19, 1e30, 2.5]").unwrap();
        let Val::Array(items) = v else {
            panic!("array")
        };
        let ints: Vec<Option<i64>> = items.iter().map(Val::as_i64).collect();
        assert_eq!(
            ints,
            [
                Some(5),
                Some(0),
                Some(1000),
                Some(i64::MIN),
                None,
                None,
                None
            ]
        );
        assert_eq!(items[4].as_u64(), Some(10_000_000_000_000_000_000));
        let integral: Vec<bool> = items.iter().map(Val::is_integer).collect();
        assert_eq!(integral, [true, true, true, true, true, true, false]);
    }

    #[test]
    fn deserialises_typed_values() {
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct T {
            n: i32,
            o: Option<u8>,
            e: crate::event::Feed,
            v: Vec<String>,
        }
        let text = r#"{"n": -7, "o": null, "e": "PEN", "v": ["a"], "extra": {}}"#;
        let v = Val::parse(text).unwrap();
        let t = T::deserialize(&v).unwrap();
        assert_eq!(
            t,
            T {
                n: -7,
                o: None,
                e: crate::event::Feed::Pen,
                v: vec!["a".into()]
            }
        );
        let bad = Val::parse(r#"{"n": 1, "o": 300, "e": "PEN", "v": []}"#).unwrap();
        assert!(T::deserialize(&bad).is_err());
        let bad = Val::parse(r#"{"n": 1, "e": 3, "v": []}"#).unwrap();
        assert!(T::deserialize(&bad).is_err());
    }
}
