//! The internal log: what the ingest stage decided, in order, on one Kafka partition.
//!
//! Every input record ends up as one entry: accepted with its visibility time `v`, or
//! rejected as a dead letter. Each entry carries the watermark after it, so the dataflow
//! stage advances logical time exactly as the ingest stage did. Replaying the log gives the
//! same outputs (`semantics.md` §1: "`v` is stored with the record, so a replay from the
//! stored log reproduces it").

use connectors::dead_letter::DeadLetter;
use rules::event::Event;
use rules::lifecycle::Accepted;
use rules::time::Ts;
use serde::{Deserialize, Serialize};

pub use rules::lifecycle::Origin;

/// What the ingest stage decided about one record, or a watermark step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "lowercase")]
pub enum Body {
    /// An accepted record.
    Accepted {
        /// Visibility time.
        v: Ts,
        /// Hex SHA-256 of the canonical bytes.
        digest: String,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The watermark after this entry: every later accepted record has `v ≥ wm`.
    pub wm: Ts,
    /// What happened.
    #[serde(flatten)]
    pub body: Body,
}

impl Entry {
    /// An accepted-record entry.
    pub fn accepted(a: &Accepted, origin: Origin, wm: Ts) -> Self {
        Entry {
            wm,
            body: Body::Accepted {
                v: a.v,
                digest: hex::encode(a.digest),
                origin,
                record: Box::new(a.event.clone()),
            },
        }
    }

    /// The accepted record, if this entry holds one.
    pub fn record(&self) -> Option<Accepted> {
        match &self.body {
            Body::Accepted {
                v,
                digest,
                record,
                origin,
            } => {
                let mut d = [0u8; 32];
                hex::decode_to_slice(digest, &mut d).ok()?;
                Some(Accepted {
                    v: *v,
                    digest: d,
                    event: (**record).clone(),
                    origin: Some(origin.clone()),
                })
            }
            _ => None,
        }
    }

    /// JSON bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses JSON bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rules::decode::{decode, digest, DecodeConfig};

    #[test]
    fn entries_round_trip_with_the_record_and_its_digest() {
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
            origin: Some(origin.clone()),
        };
        let entry = Entry::accepted(&a, origin, 1_704_067_000);
        let back = Entry::decode(&entry.encode()).expect("decodes");
        assert_eq!(back, entry);
        assert_eq!(back.record(), Some(a));
        let w = Entry {
            wm: 5,
            body: Body::Watermark,
        };
        assert_eq!(Entry::decode(&w.encode()).expect("decodes"), w);
    }
}
