//! The internal log: what the ingest stage decided, in order, on one Kafka partition.
//!
//! Every input record ends up as one entry: accepted with its visibility time `v`, or
//! rejected as a dead letter. Each entry carries the watermark after it, so the dataflow
//! stage advances logical time exactly as the ingest stage did. Replaying the log gives the
//! same outputs (`semantics.md` §1: "`v` is stored with the record, so a replay from the
//! stored log reproduces it").
//!
//! An entry is stored in a versioned binary format (D72): a first byte naming the format,
//! then bincode of its envelope, with the record as its canonical JSON bytes. Entries of
//! the first format (a JSON object) still decode, so a log written by an earlier version
//! replays unchanged.

use connectors::dead_letter::DeadLetter;
use rules::event::Event;
use rules::lifecycle::Accepted;
use rules::time::Ts;
use serde::{Deserialize, Serialize};

pub use rules::lifecycle::Origin;

/// What the ingest stage decided about one record, or a watermark step.
///
/// Its `Deserialize` reads the log's first format (a JSON object), which [`Entry::decode`]
/// still accepts; entries are written as [`Outgoing`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "entry", rename_all = "lowercase")]
pub enum Body {
    /// An accepted record.
    Accepted {
        /// Visibility time.
        v: Ts,
        /// SHA-256 of the canonical bytes (hex in the JSON format).
        #[serde(deserialize_with = "hex_digest")]
        digest: [u8; 32],
        /// Where it was read.
        origin: Origin,
        /// The record, canonical.
        record: Box<Event>,
    },
    /// A rejected record.
    Rejected {
        /// The dead letter.
        letter: Box<DeadLetter>,
    },
    /// The watermark moved with no record (live clock, or the input was declared complete).
    Watermark,
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Entry {
    /// The watermark after this entry: every later accepted record has `v ≥ wm`.
    pub wm: Ts,
    /// What happened.
    #[serde(flatten)]
    pub body: Body,
}

/// The first byte of an entry in the log's binary format, version 1 (D72): bincode of
/// [`Wire`]. An entry of the first format is a JSON object, so it starts with `{`.
const FORMAT_BINARY_1: u8 = 1;

/// An entry as the binary format stores it. The record stays its canonical JSON bytes
/// (the bytes its digest is taken of): its flat, feed-tagged shape needs a self-describing
/// format, and only its envelope is binary.
#[derive(Debug, Serialize, Deserialize)]
enum Wire {
    Accepted {
        wm: Ts,
        v: Ts,
        digest: [u8; 32],
        origin: Origin,
        record: Vec<u8>,
    },
    Rejected {
        wm: Ts,
        letter: Box<DeadLetter>,
    },
    Watermark {
        wm: Ts,
    },
}

/// Why a log entry does not decode.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// An entry of the first format (JSON) that does not parse.
    #[error("a JSON log entry does not parse: {0}")]
    Json(#[from] serde_json::Error),
    /// A binary entry that does not parse.
    #[error("a binary log entry (format {FORMAT_BINARY_1}) does not parse: {0}")]
    Binary(#[from] bincode::Error),
    /// An entry of a format this program does not know (a newer one).
    #[error("log entry format {0} is unknown to this version of steward")]
    Format(u8),
    /// An empty message.
    #[error("an empty log entry")]
    Empty,
}

impl Entry {
    /// The accepted record, if this entry holds one.
    pub fn into_record(self) -> Option<Accepted> {
        match self.body {
            Body::Accepted {
                v,
                digest,
                record,
                origin,
            } => Some(Accepted {
                v,
                digest,
                event: *record,
                origin: Some(Box::new(origin)),
            }),
            _ => None,
        }
    }

    /// Parses an entry of either format: binary (current) or JSON (the first one, which
    /// logs written before D72 hold).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_keeping(bytes).map(|(entry, _)| entry)
    }

    /// [`Entry::decode`], also giving an accepted record's canonical bytes as the binary
    /// format stores them (the bytes its digest was taken of), so that a reader need not
    /// encode the record again; `None` for other entries and for the first format.
    pub fn decode_keeping(bytes: &[u8]) -> Result<(Self, Option<Vec<u8>>), DecodeError> {
        match bytes.first() {
            None => Err(DecodeError::Empty),
            Some(&FORMAT_BINARY_1) => {
                let entry = match bincode::deserialize(&bytes[1..])? {
                    Wire::Accepted {
                        wm,
                        v,
                        digest,
                        origin,
                        record,
                    } => {
                        let event = Box::new(serde_json::from_slice(&record)?);
                        let body = Body::Accepted {
                            v,
                            digest,
                            origin,
                            record: event,
                        };
                        return Ok((Entry { wm, body }, Some(record)));
                    }
                    Wire::Rejected { wm, letter } => Entry {
                        wm,
                        body: Body::Rejected { letter },
                    },
                    Wire::Watermark { wm } => Entry {
                        wm,
                        body: Body::Watermark,
                    },
                };
                Ok((entry, None))
            }
            Some(b'{') => Ok((serde_json::from_slice(bytes)?, None)),
            Some(&other) => Err(DecodeError::Format(other)),
        }
    }
}

/// An entry on its way into the log, in the current format. Its watermark can still move:
/// the last entry of a batch carries the watermark the batch moved to.
#[derive(Debug)]
pub struct Outgoing(Wire);

impl Outgoing {
    /// An accepted record with its canonical bytes ([`rules::decode::encode`], which the
    /// ingest stage took its digest of).
    pub fn accepted(a: &Accepted, canonical: Vec<u8>, origin: Origin, wm: Ts) -> Self {
        Outgoing(Wire::Accepted {
            wm,
            v: a.v,
            digest: a.digest,
            origin,
            record: canonical,
        })
    }

    /// A rejected record.
    pub fn rejected(letter: DeadLetter, wm: Ts) -> Self {
        Outgoing(Wire::Rejected {
            wm,
            letter: Box::new(letter),
        })
    }

    /// A watermark step.
    pub fn watermark(wm: Ts) -> Self {
        Outgoing(Wire::Watermark { wm })
    }

    /// Moves the watermark after this entry to `wm`.
    pub fn set_wm(&mut self, wm: Ts) {
        match &mut self.0 {
            Wire::Accepted { wm: w, .. }
            | Wire::Rejected { wm: w, .. }
            | Wire::Watermark { wm: w } => *w = wm,
        }
    }

    /// The entry's bytes: the format byte, then bincode of its wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![FORMAT_BINARY_1];
        // Writing to a vector fails only on allocation, which aborts anyway.
        bincode::serialize_into(&mut bytes, &self.0).expect("a log entry serialises");
        bytes
    }
}

/// The digest as hex in the JSON format.
fn hex_digest<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
    let text = String::deserialize(d)?;
    let mut digest = [0u8; 32];
    hex::decode_to_slice(&text, &mut digest).map_err(serde::de::Error::custom)?;
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rules::decode::{decode, digest, encode, DecodeConfig};

    /// An accepted LIST record, read at `credit.in.list` 1/7.
    fn accepted() -> (Accepted, Origin) {
        let line = serde_json::json!({
            "uscc": rules::uscc::with_check("91330802MA2A00017").expect("prefix"),
            "feed": "LIST", "kind": "LISTED", "event_id": "x1", "list_kind": "ABNORMAL",
            "event_time": "2024-01-01T00:00:00Z", "ingest_time": "2024-01-01T00:00:05Z",
        });
        let e = decode(line.to_string().as_bytes(), None, &DecodeConfig::default())
            .expect("valid")
            .event;
        let origin = Origin {
            topic: "credit.in.list".into(),
            partition: 1,
            offset: 7,
        };
        let a = Accepted {
            v: 1_704_067_300,
            digest: digest(&e),
            event: e,
            origin: Some(Box::new(origin.clone())),
        };
        (a, origin)
    }

    /// The entry of an accepted record.
    fn entry_of(a: &Accepted, origin: Origin, wm: Ts) -> Entry {
        Entry {
            wm,
            body: Body::Accepted {
                v: a.v,
                digest: a.digest,
                origin,
                record: Box::new(a.event.clone()),
            },
        }
    }

    #[test]
    fn entries_round_trip_with_the_record_and_its_digest() {
        let (a, origin) = accepted();
        let mut out = Outgoing::accepted(&a, encode(&a.event), origin.clone(), 1);
        out.set_wm(1_704_067_000);
        let bytes = out.encode();
        assert_eq!(bytes[0], FORMAT_BINARY_1);
        let (back, canonical) = Entry::decode_keeping(&bytes).expect("decodes");
        assert_eq!(canonical, Some(encode(&a.event)));
        assert_eq!(back, entry_of(&a, origin, 1_704_067_000));
        assert_eq!(back.into_record(), Some(a));
        let w = Outgoing::watermark(5).encode();
        let want = Entry {
            wm: 5,
            body: Body::Watermark,
        };
        assert_eq!(Entry::decode(&w).expect("decodes"), want);
        let letter = DeadLetter {
            original: b"{not json".to_vec(),
            source_topic: "credit.in.pen".into(),
            partition: 0,
            offset: 3,
            reason: "malformed_json".into(),
            message: "expected value at line 1".into(),
            time: 1_704_067_301,
        };
        let back = Entry::decode(&Outgoing::rejected(letter.clone(), 9).encode());
        let want = Entry {
            wm: 9,
            body: Body::Rejected {
                letter: Box::new(letter),
            },
        };
        assert_eq!(back.expect("decodes"), want);
    }

    /// A log written before D72 holds JSON entries: they decode to the same entries, and
    /// the binary form of an accepted record is smaller.
    #[test]
    fn entries_of_the_first_format_still_decode() {
        let (a, origin) = accepted();
        // Bytes as the first format wrote them (`steward` before D72).
        let old = format!(
            r#"{{"wm":1704067000,"entry":"accepted","v":1704067300,"digest":"{}","origin":{{"topic":"credit.in.list","partition":1,"offset":7}},"record":{}}}"#,
            hex::encode(a.digest),
            String::from_utf8(encode(&a.event)).expect("UTF-8"),
        );
        let (entry, canonical) = Entry::decode_keeping(old.as_bytes()).expect("decodes");
        assert_eq!(
            canonical, None,
            "the first format keeps no canonical bytes apart"
        );
        assert_eq!(entry, entry_of(&a, origin.clone(), 1_704_067_000));
        let new = Outgoing::accepted(&a, encode(&a.event), origin, 1_704_067_000).encode();
        assert!(
            new.len() < old.len(),
            "binary {} bytes, JSON {}",
            new.len(),
            old.len()
        );
        let w = Entry::decode(br#"{"wm":5,"entry":"watermark"}"#).expect("decodes");
        assert_eq!(
            w,
            Entry {
                wm: 5,
                body: Body::Watermark
            }
        );
    }

    #[test]
    fn an_unknown_format_or_a_broken_entry_is_refused_by_name() {
        let e = Entry::decode(&[7, 0, 0]).expect_err("unknown format");
        assert_eq!(
            e.to_string(),
            "log entry format 7 is unknown to this version of steward"
        );
        let mut bytes = Outgoing::watermark(5).encode();
        bytes.truncate(3);
        assert!(matches!(Entry::decode(&bytes), Err(DecodeError::Binary(_))));
        assert!(matches!(
            Entry::decode(b"{\"wm\":"),
            Err(DecodeError::Json(_))
        ));
        assert!(matches!(Entry::decode(b""), Err(DecodeError::Empty)));
    }
}
