//! Records stated one by one, for tests that need an exact history rather than a generated
//! one.

use rules::decode::digest;
use rules::event::Event;
use rules::lifecycle::Accepted;
use serde_json::{json, Value};

/// An accepted record of enterprise `uscc`: feed, kind, event id and time (RFC 3339) as
/// given, the feed's fields from the object `fields`, version 1, and visible at its event
/// time (`v = ingest_time = event_time`). Fails when `fields` is not an object or the
/// fields do not make a record.
pub fn hand_made(
    uscc: &str,
    feed: &str,
    kind: &str,
    id: &str,
    at: &str,
    fields: Value,
) -> Result<Accepted, serde_json::Error> {
    let mut obj = json!({
        "uscc": uscc, "feed": feed, "kind": kind, "event_id": id, "version": 1,
        "event_time": at, "ingest_time": at,
    });
    let Value::Object(fields) = fields else {
        return Err(serde::de::Error::custom(
            "a record's fields are a JSON object",
        ));
    };
    for (k, v) in fields {
        obj[k] = v;
    }
    let event: Event = serde_json::from_value(obj)?;
    Ok(Accepted {
        v: event.ingest_time,
        digest: digest(&event),
        event,
        origin: None,
    })
}
