//! Builders shared by the hand-built model tests.

use rules::catalogue::Catalogue;
use rules::lifecycle::Accepted;
use rules::reference::evaluate_at;
use rules::time::{parse_rfc3339, Ts};
use serde_json::Value;

/// A valid Quzhou USCC numbered `n`.
pub fn code(n: u8) -> String {
    rules::uscc::with_check(&format!("91330802MA2A000{n:02}")).expect("valid prefix")
}

/// A test timestamp.
pub fn ts(s: &str) -> Ts {
    parse_rfc3339(s).expect("test timestamp")
}

/// A record of enterprise `n` from JSON fields; `v = ingest_time = event_time`.
pub fn rec(n: u8, feed: &str, kind: &str, id: &str, et: &str, extra: Value) -> Accepted {
    generator::hand_made(&code(n), feed, kind, id, et, extra).expect("valid test record")
}

/// Row `row` of enterprise `n` at `t` (NaN when the enterprise is unknown then).
pub fn r(log: &[Accepted], n: u8, t: &str, row: usize) -> f64 {
    let states = evaluate_at(log, ts(t), None, &Catalogue::embedded());
    states.get(&code(n)).map_or(f64::NAN, |(_, e)| e.r[row - 1])
}
