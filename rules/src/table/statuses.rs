//! Record statuses from the table (D99): what became of each record, as
//! [`crate::status::of_enterprise`] says it, from the record's lifecycle [`View`] and the end
//! of its last fact.
//!
//! - [`enterprise_steps`]: every record's steps, from scratch (for the tests).
//! - [`super::fact_changes`] reports the steps that end and begin with the facts
//!   ([`Steps`]), deriving again only what a change reaches.

use crate::fact::Fact;
use crate::status::{record_steps, Status, Step};
use crate::time::Ts;

use super::{Fields, Packed, Table, View};

/// A record's status step, by fingerprint.
pub type Steps = Vec<(u64, Step)>;

/// What a record's steps read of the lifecycle: its view and, for a repair, when the last
/// revocation in time revoked it.
#[derive(Debug, Clone)]
pub(super) struct Basis {
    view: View,
    revoked_at: Option<Ts>,
}

impl Table {
    /// What record `f`'s steps read, given its view.
    pub(super) fn basis(&self, f: &Fields, view: View, hold: Ts) -> Basis {
        let revoked_at = match &view {
            View::Repair(repair) if repair.revoked => self
                .links()
                .filter(|x| {
                    x.is_revocation() && x.b == Some(f.rid) && f.v <= x.v.saturating_add(hold)
                })
                .map(|x| x.event_time)
                .max(),
            _ => None,
        };
        Basis { view, revoked_at }
    }
}

/// Appends record `rid`'s steps: its effect's end and its cause, the end of its last fact
/// when that comes first (`facts_end`, `None` when it has none or one is open), a repair's
/// revocation, and a dead letter's rejection.
pub(super) fn steps(rid: u64, b: &Basis, facts_end: Option<Ts>, out: &mut Steps) {
    let mut step = |from, status| out.push((rid, Step { from, status }));
    match &b.view {
        View::Record { ending, .. } => record_steps(ending, facts_end, step),
        View::Retraction { letter, .. } => {
            if let Some((_, at)) = letter {
                step(*at, Status::Rejected);
            }
        }
        View::Repair(r) => {
            if let Some(at) = b.revoked_at {
                step(at, Status::Revoked);
            }
            if let Some(at) = r.letter {
                step(at, Status::Rejected);
            }
        }
    }
}

/// The end of each record's last fact among `facts`, by fingerprint, sorted: `Ts::MAX`
/// when one is open.
pub(super) fn facts_ends(facts: &[Fact<Packed>]) -> Vec<(u64, Ts)> {
    let mut ends: Vec<(u64, Ts)> = facts.iter().map(|f| (f.src, f.end)).collect();
    ends.sort_unstable();
    // The last of each record's run is its latest end.
    ends.reverse();
    ends.dedup_by_key(|(rid, _)| *rid);
    ends.reverse();
    ends
}

/// The end of record `rid`'s last fact in `ends` ([`facts_ends`]).
pub(super) fn end_of(ends: &[(u64, Ts)], rid: u64) -> Option<Ts> {
    ends.binary_search_by_key(&rid, |(r, _)| *r)
        .ok()
        .map(|i| ends[i].1)
}

/// Every record's status steps in `table`, whose facts are `facts` (all of them), sorted.
pub fn enterprise_steps(
    table: &Table,
    facts: &[Fact<Packed>],
    cat: &crate::catalogue::Catalogue,
) -> Steps {
    let hold = cat.lifecycle.hold_secs;
    let ends = facts_ends(facts);
    let mut out = Vec::new();
    for f in table.iter() {
        let b = table.basis(&f, table.view(&f, cat), hold);
        let end = end_of(&ends, f.rid).filter(|e| *e < Ts::MAX);
        steps(f.rid, &b, end, &mut out);
    }
    out.sort();
    out
}
