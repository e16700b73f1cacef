//! Why a record is dead-lettered: a bounded set of reason codes plus a human-readable
//! message (`events.md`, "Validation").
//!
//! The decoder ([`crate::decode`]) produces every reason up to `future_event_time`; the
//! reader of a record gives `future_ingest_time` against its own wall clock (the decoder is
//! a pure function of the bytes); the lifecycle reasons (`version_kind_change`, `target_mismatch`, `unknown_target`) are
//! produced later, when a record meets the records it acts on.

use crate::event::wire_enum;

wire_enum!(
    /// A dead-letter reason code; `as_str` is the snake_case code written to the
    /// dead-letter topic and used as a metrics label.
    Reason {
        /// Not UTF-8, not JSON, or not a JSON object.
        InvalidJson = "invalid_json",
        /// Larger than the configured limit.
        Oversized = "oversized",
        /// `feed` is not one of the feed codes.
        UnknownFeed = "unknown_feed",
        /// `feed` is not the feed of the topic the record came from.
        FeedTopicMismatch = "feed_topic_mismatch",
        /// `kind` is not one of the feed's kinds.
        UnknownKind = "unknown_kind",
        /// A field the kind requires is absent.
        MissingField = "missing_field",
        /// A field has the wrong JSON type.
        BadType = "bad_type",
        /// A field has the right type but a value outside its domain.
        BadValue = "bad_value",
        /// An amount in fen is negative.
        NegativeAmount = "negative_amount",
        /// `uscc` or `counterparty_uscc` fails the GB 32100-2015 check and is not allow-listed.
        BadUscc = "bad_uscc",
        /// `event_time` is more than one day after `ingest_time`.
        FutureEventTime = "future_event_time",
        /// `ingest_time` is more than the configured tolerance after the wall clock of the
        /// process that reads the record.
        FutureIngestTime = "future_ingest_time",
        /// A new version switches between a retraction and a non-retraction kind.
        VersionKindChange = "version_kind_change",
        /// A retraction's or follow-up's target has another `uscc` or an unpaired kind.
        TargetMismatch = "target_mismatch",
        /// A retraction's or follow-up's target never arrived within the hold time.
        UnknownTarget = "unknown_target",
    }
);

impl Reason {
    /// Whether the lifecycle (not the decoder) gives this reason.
    pub fn is_lifecycle(self) -> bool {
        matches!(
            self,
            Reason::VersionKindChange | Reason::TargetMismatch | Reason::UnknownTarget
        )
    }
}

/// A rejected record: the reason code and a message naming the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct Rejection {
    /// The reason code.
    pub reason: Reason,
    /// Human-readable detail, e.g. `missing field "decision_no" required for PEN.DECIDED`.
    pub message: String,
}

impl Rejection {
    /// Builds a rejection.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Rejection {
            reason,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_and_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for r in Reason::ALL {
            let s = r.as_str();
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            assert_eq!(Reason::parse(s), Some(*r));
            assert!(seen.insert(s));
        }
    }

    #[test]
    fn display_is_reason_then_message() {
        let r = Rejection::new(Reason::MissingField, "missing field \"x\"");
        assert_eq!(r.to_string(), "missing_field: missing field \"x\"");
    }
}
