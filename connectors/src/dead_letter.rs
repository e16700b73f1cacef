//! Dead letters: a rejected record with its original bytes, where it came from and why.
//! The same letter goes to the dead-letter topic (JSON) and to ClickHouse `dead_letters`.

use base64::Engine as _;
use rules::contract::{Versioned, FORMAT_VERSION};
use rules::time::{Rfc3339, Ts};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clickhouse::{datetime, DeadLetterRow};

/// Header: the topic the record was read from.
pub const HEADER_TOPIC: &str = "steward.errors.topic";
/// Header: the partition it was read from (−1 when not known).
pub const HEADER_PARTITION: &str = "steward.errors.partition";
/// Header: the offset it was read at (−1 when not known).
pub const HEADER_OFFSET: &str = "steward.errors.offset";
/// Header: the bounded reason code.
pub const HEADER_REASON: &str = "steward.errors.reason";
/// Header: the output contract's format version of the message.
pub const HEADER_FORMAT_VERSION: &str = "steward.format_version";

/// A dead-letter message: the record's bytes, where it was read and why it was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct LetterMessage {
    /// Deterministic id: hex SHA-256 of `source_topic|partition|offset|reason|message`.
    pub letter_id: String,
    /// The record's bytes as text (UTF-8, invalid sequences replaced).
    pub original: String,
    /// The record's exact bytes, base64 (standard alphabet, padded).
    pub original_base64: String,
    /// Topic it was read from (in file mode: the feed's topic name).
    pub source_topic: String,
    /// Partition it was read from (−1 when not known).
    pub partition: i32,
    /// Offset it was read at (in file mode: the 0-based line; −1 when not known).
    pub offset: i64,
    /// Bounded reason code.
    pub reason: String,
    /// What exactly was wrong.
    pub message: String,
    /// When it was rejected: wall clock for decoder rejects, the logical time it was decided
    /// for lifecycle rejects.
    #[serde(with = "rules::time::rfc3339")]
    #[schemars(with = "Rfc3339")]
    pub time: Ts,
}

/// A rejected record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The record's bytes as read (for lifecycle rejects: its canonical bytes).
    #[serde(with = "b64")]
    pub original: Vec<u8>,
    /// Topic it was read from.
    pub source_topic: String,
    /// Partition it was read from (−1 when not known).
    pub partition: i32,
    /// Offset it was read at (−1 when not known).
    pub offset: i64,
    /// Bounded reason code (`rules::reject::Reason`).
    pub reason: String,
    /// What exactly was wrong.
    pub message: String,
    /// When it was rejected: wall clock for decoder rejects, logical time for lifecycle
    /// rejects.
    pub time: Ts,
}

mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(serde::de::Error::custom)
    }
}

impl DeadLetter {
    /// Deterministic id: hex SHA-256 of `source_topic|partition|offset|reason|message`.
    pub fn letter_id(&self) -> String {
        let id = format!(
            "{}|{}|{}|{}|{}",
            self.source_topic, self.partition, self.offset, self.reason, self.message
        );
        hex::encode(Sha256::digest(id.as_bytes()))
    }

    /// The message for the dead-letter topic (and `dead_letters.jsonl`).
    pub fn message(&self) -> LetterMessage {
        LetterMessage {
            letter_id: self.letter_id(),
            original: String::from_utf8_lossy(&self.original).into_owned(),
            original_base64: base64::engine::general_purpose::STANDARD.encode(&self.original),
            source_topic: self.source_topic.clone(),
            partition: self.partition,
            offset: self.offset,
            reason: self.reason.clone(),
            message: self.message.clone(),
            time: self.time,
        }
    }

    /// The message's JSON bytes, with the contract's format version.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&Versioned::new(self.message())).unwrap_or_default()
    }

    /// The Kafka headers of the letter on the dead-letter topic, as Kafka Connect's
    /// dead-letter queues give them: where the record was read and why it was rejected, so
    /// that a consumer can route or count letters without parsing them. Values are UTF-8.
    pub fn headers(&self) -> [(&'static str, String); 5] {
        [
            (HEADER_TOPIC, self.source_topic.clone()),
            (HEADER_PARTITION, self.partition.to_string()),
            (HEADER_OFFSET, self.offset.to_string()),
            (HEADER_REASON, self.reason.clone()),
            (HEADER_FORMAT_VERSION, FORMAT_VERSION.to_string()),
        ]
    }

    /// The ClickHouse row.
    pub fn row(&self) -> DeadLetterRow {
        DeadLetterRow {
            letter_id: self.letter_id(),
            original: String::from_utf8_lossy(&self.original).into_owned(),
            source_topic: self.source_topic.clone(),
            partition: self.partition,
            offset: self.offset,
            reason: self.reason.clone(),
            message: self.message.clone(),
            time: datetime(self.time),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_exact_bytes_and_names_the_origin() {
        let d = DeadLetter {
            original: vec![b'{', 0xff, b'x'],
            source_topic: "credit.in.pen".into(),
            partition: 2,
            offset: 41,
            reason: "invalid_json".into(),
            message: "expected value".into(),
            time: 1_700_000_000,
        };
        let j: serde_json::Value = serde_json::from_slice(&d.to_json()).expect("json");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(j["original_base64"].as_str().expect("b64"))
            .expect("decodes");
        assert_eq!(bytes, d.original);
        assert_eq!(j["partition"], 2);
        assert_eq!(j["offset"], 41);
        assert_eq!(j["reason"], "invalid_json");
        assert_eq!(j["time"], "2023-11-14T22:13:20Z");
        assert_eq!(j["format_version"], FORMAT_VERSION);
        let headers = d.headers();
        assert_eq!(headers[0], (HEADER_TOPIC, "credit.in.pen".to_owned()));
        assert_eq!(headers[1], (HEADER_PARTITION, "2".to_owned()));
        assert_eq!(headers[2], (HEADER_OFFSET, "41".to_owned()));
        assert_eq!(headers[3], (HEADER_REASON, "invalid_json".to_owned()));
        let back: DeadLetter =
            serde_json::from_str(&serde_json::to_string(&d).expect("ser")).expect("round trip");
        assert_eq!(back, d);
        let other = DeadLetter {
            offset: 42,
            ..d.clone()
        };
        assert_ne!(d.letter_id(), other.letter_id());
    }
}
