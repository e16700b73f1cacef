//! Record status for the `records` output (`outputs.md`; `docs/decisions.md` D11): what
//! became of every accepted record, as a pure function of the lifecycle stages, so the
//! dataflow and the reference agree by construction.
//!
//! A record gets a list of [`Step`]s, each a status from a logical time on; its status at `t`
//! is the greatest step (by `(from, status)`) with `from ≤ t` ([`current`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::event::{Body, Feed};
use crate::fact::Fact;
use crate::lifecycle::{Accepted, Ending, RecordId, Resolved, VersionOutcome};
use crate::time::Ts;

/// What became of a record. The order breaks ties between steps of the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// In effect (retractions, follow-ups and repairs themselves included).
    Active,
    /// Its effect ended: every window or publicity period it counts in is over, or a
    /// follow-up record (paid, lifted, closed, removed …) ended it.
    Expired,
    /// An unrevoked `RPR.COMPLETED` ended its effect.
    Repaired,
    /// Revoked: `PEN.REVOKED`, a `CASE_CLOSED` as withdrawn or dismissed, or (for a repair)
    /// `RPR.REVOKED`.
    Revoked,
    /// A higher version (or an equal version with a smaller digest) replaced it.
    Superseded,
    /// Dead-lettered by the lifecycle (`version_kind_change`, `target_mismatch`,
    /// `unknown_target`).
    Rejected,
}

impl Status {
    /// The name written to ClickHouse.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Expired => "expired",
            Status::Repaired => "repaired",
            Status::Revoked => "revoked",
            Status::Superseded => "superseded",
            Status::Rejected => "rejected",
        }
    }
}

/// Which record: identity, version and digest (equal versions may differ in content).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordKey {
    /// `(feed, event_id)`.
    pub id: RecordId,
    /// The record's version.
    pub version: u32,
    /// SHA-256 of its canonical bytes.
    pub digest: [u8; 32],
}

/// Hashed by its digest's first eight bytes, as a [`Record`] is.
impl std::hash::Hash for RecordKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(digest_prefix(&self.digest));
    }
}

/// The first eight bytes of a digest, as a number.
fn digest_prefix(digest: &[u8; 32]) -> u64 {
    u64::from_le_bytes(digest[..8].try_into().expect("eight bytes"))
}

impl RecordKey {
    /// The key of `a`.
    pub fn of(a: &Accepted) -> Self {
        RecordKey {
            id: a.id(),
            version: a.event.version,
            digest: a.digest,
        }
    }
}

/// A status from a logical time on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Step {
    /// First logical time of the status.
    pub from: Ts,
    /// The status.
    pub status: Status,
}

/// A status step of a record, naming the record itself (borrowed from the lifecycle's
/// input) rather than a copy of its key: the dataflow maps it to the record it already
/// shares (D76). The enterprise it is filed under is the record's own USCC.
pub type Stepped<'a> = (&'a Accepted, Step);

/// One record's step as the reference keeps it: its key, the enterprise it is filed under
/// and the step.
pub type RecordStep = (RecordKey, String, Step);

/// The owned form of a step.
pub fn owned((a, step): Stepped<'_>) -> RecordStep {
    (RecordKey::of(a), a.event.uscc.to_string(), step)
}

fn step(a: &Accepted, from: Ts, status: Status) -> Stepped<'_> {
    (a, Step { from, status })
}

/// A record as the dataflow's status steps name it (D76): the shared record the stages
/// hold, compared, ordered and hashed as its [`RecordKey`] without building one. A step
/// that crosses to another process carries only the key (its serde form is the key's), so
/// there a `Record` is the key alone.
#[derive(Debug, Clone)]
pub enum Record {
    /// The record, shared with the stages.
    Shared(Arc<Accepted>),
    /// Its key alone, as it arrives from another process.
    Key(Box<RecordKey>),
}

/// A [`RecordKey`] borrowed from its record, serialized as the key is.
#[derive(Serialize)]
#[serde(rename = "RecordKey")]
struct KeyRef<'a> {
    id: (Feed, &'a str),
    version: u32,
    digest: &'a [u8; 32],
}

impl Record {
    /// The fields of its [`RecordKey`], borrowed, in the key's order.
    fn fields(&self) -> (Feed, &str, u32, &[u8; 32]) {
        match self {
            Record::Shared(a) => (
                a.event.feed(),
                a.event.event_id.as_str(),
                a.event.version,
                &a.digest,
            ),
            Record::Key(k) => (k.id.0, k.id.1.as_str(), k.version, &k.digest),
        }
    }

    /// Its `(feed, event_id)`.
    pub fn id(&self) -> (Feed, &str) {
        let (feed, id, _, _) = self.fields();
        (feed, id)
    }

    /// The first eight bytes of its digest, as a number: records ordered by it come in an
    /// order that says nothing, but is cheap to find and the same on every run.
    pub fn digest_prefix(&self) -> u64 {
        let (.., digest) = self.fields();
        digest_prefix(digest)
    }

    /// Its key, for the outputs.
    pub fn key(&self) -> RecordKey {
        match self {
            Record::Shared(a) => RecordKey::of(a),
            Record::Key(k) => (**k).clone(),
        }
    }
}

impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Record {}

impl PartialOrd for Record {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The order of [`RecordKey`]s.
impl Ord for Record {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if let (Record::Shared(a), Record::Shared(b)) = (self, other) {
            if Arc::ptr_eq(a, b) {
                return std::cmp::Ordering::Equal;
            }
        }
        self.fields().cmp(&other.fields())
    }
}

/// Hashed by its digest's first eight bytes alone, as its [`RecordKey`] is: equal records
/// have equal digests, and a digest is SHA-256 of the record's bytes, so those bytes spread
/// records as well as a hash of the whole key, without reading the id's text.
impl std::hash::Hash for Record {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.digest_prefix());
    }
}

impl Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (feed, id, version, digest) = self.fields();
        KeyRef {
            id: (feed, id),
            version,
            digest,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RecordKey::deserialize(d).map(|k| Record::Key(Box::new(k)))
    }
}

/// Steps decided by the version stage for the losing versions of one `(feed, event_id)`:
/// superseded, or rejected (from their `v`) when they switch kind class. The winner's steps
/// come from [`of_enterprise`].
pub fn of_versions<'a>(
    versions: &[&'a Accepted],
    outcome: &VersionOutcome<'_>,
) -> Vec<Stepped<'a>> {
    versions
        .iter()
        .copied()
        .filter(|a| !outcome.winner.is_some_and(|w| std::ptr::eq(*a, w)))
        .map(|a| {
            if outcome.superseded.iter().any(|s| std::ptr::eq(a, *s)) {
                step(a, Ts::MIN, Status::Superseded)
            } else {
                step(a, a.v, Status::Rejected)
            }
        })
        .collect()
}

/// The first step of a winning version: active from the start (the dataflow takes it from the
/// version stage, so that the per-enterprise stage only emits what ends a record).
pub fn active(winner: &Accepted) -> Stepped<'_> {
    step(winner, Ts::MIN, Status::Active)
}

/// The steps after [`active`] of every winning record of one enterprise, from its lifecycle
/// and its facts.
pub fn of_enterprise<'a>(res: &Resolved<'a>, facts: &[Fact]) -> Vec<Stepped<'a>> {
    // When each record's last fact ends.
    let mut fact_end: BTreeMap<(Feed, &str), Ts> = BTreeMap::new();
    for f in facts {
        let e = fact_end
            .entry((f.src.0, f.src.1.as_str()))
            .or_insert(Ts::MIN);
        *e = (*e).max(f.end);
    }
    let mut dead: BTreeMap<(Feed, &str, u32), Ts> = BTreeMap::new();
    for d in &res.dead {
        let at = dead
            .entry((d.id.0, d.id.1.as_str(), d.version))
            .or_insert(d.at);
        *at = (*at).min(d.at);
    }
    let revoked: BTreeMap<&str, Ts> = res.revoked_repairs.iter().copied().collect();
    let mut out = Vec::new();
    for (i, a) in res.records.iter().copied().enumerate() {
        let facts_end = fact_end
            .get(&(a.event.feed(), a.event.event_id.as_str()))
            .copied()
            .filter(|e| *e < Ts::MAX);
        record_steps(&res.endings[i], facts_end, |from, status| {
            out.push(step(a, from, status));
        });
    }
    let acts = res
        .winners
        .iter()
        .copied()
        .filter(|a| a.event.body.is_retraction() || matches!(a.event.body, Body::Rpr(_)));
    for a in acts {
        if a.event.feed() == Feed::Rpr {
            if let Some(at) = revoked.get(a.event.event_id.as_str()) {
                out.push(step(a, *at, Status::Revoked));
            }
        }
        let key = (a.event.feed(), a.event.event_id.as_str(), a.event.version);
        if let Some(at) = dead.get(&key) {
            out.push(step(a, *at, Status::Rejected));
        }
    }
    out
}

/// The steps of a record in effect that ends as `ending` says, and whose last fact ends at
/// `facts_end` (`None`: none, or one is open): expired when its last fact ends first, then
/// the end of its effect with its cause.
pub(crate) fn record_steps(
    ending: &Ending,
    facts_end: Option<Ts>,
    mut step: impl FnMut(Ts, Status),
) {
    let end = ending.end();
    if let Some(e) = facts_end.filter(|e| *e < end) {
        step(e, Status::Expired);
    }
    if end < Ts::MAX {
        let cause = if ending.retracted == Some(end) && ending.revoked {
            Status::Revoked
        } else if ending.repaired == Some(end) {
            Status::Repaired
        } else {
            Status::Expired
        };
        step(end, cause);
    }
}

/// The status at `t` of a record with these steps: the greatest step with `from ≤ t`.
pub fn current<'a>(steps: impl IntoIterator<Item = &'a Step>, t: Ts) -> Option<Status> {
    steps
        .into_iter()
        .filter(|s| s.from <= t)
        .max()
        .map(|s| s.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_step_wins_and_ties_go_to_the_later_status() {
        let steps = [
            Step {
                from: Ts::MIN,
                status: Status::Active,
            },
            Step {
                from: 100,
                status: Status::Expired,
            },
            Step {
                from: 100,
                status: Status::Revoked,
            },
            Step {
                from: 50,
                status: Status::Repaired,
            },
        ];
        assert_eq!(current(&steps, 10), Some(Status::Active));
        assert_eq!(current(&steps, 50), Some(Status::Repaired));
        assert_eq!(current(&steps, 99), Some(Status::Repaired));
        assert_eq!(current(&steps, 100), Some(Status::Revoked));
        assert_eq!(current(&[], 100), None);
    }
}
