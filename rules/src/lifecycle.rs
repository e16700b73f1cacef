//! Record lifecycle (`semantics.md` §2): versions and duplicates per `(feed, event_id)`,
//! then, per enterprise, retractions, repairs, holds and dead letters.
//!
//! Both stages are pure functions of a *set* of visible records, so the incremental
//! pipeline (which calls them inside `reduce`) and the reference (which calls them on the
//! log filtered to `v ≤ t`) agree by construction.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::catalogue::{Catalogue, RepairAction, RepairFlag};
use crate::event::{Body, CloseReason, Event, Feed, FinKind, JudKind, PenKind, RprKind, TaxKind};
use crate::reject::Reason;
use crate::time::Ts;
use crate::{format_compact, CompactString};

/// An accepted record and the logical time it became visible.
///
/// Serialized as `(v, digest, canonical JSON bytes, origin)`: the flat JSON shape of
/// [`Event`] needs a self-describing format, and timely exchanges data between processes
/// with bincode.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Accepted {
    /// Visibility time `v`.
    pub v: Ts,
    /// SHA-256 of the canonical bytes (tie-break between equal versions).
    pub digest: [u8; 32],
    /// The typed record.
    pub event: Event,
    /// Where it was read, when it came from a Kafka topic (lifecycle dead letters name it);
    /// boxed, as only a dead letter reads it (D82).
    pub origin: Option<Box<Origin>>,
}

/// Where an input record was read: topic, partition and offset.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

impl Serialize for Accepted {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let bytes = serde_json::to_vec(&self.event).map_err(serde::ser::Error::custom)?;
        (self.v, self.digest, bytes, &self.origin).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Accepted {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (v, digest, bytes, origin): (Ts, [u8; 32], Vec<u8>, Option<Box<Origin>>) =
            Deserialize::deserialize(d)?;
        let event = serde_json::from_slice(&bytes).map_err(serde::de::Error::custom)?;
        Ok(Accepted {
            v,
            digest,
            event,
            origin,
        })
    }
}

/// A record's identity: `(feed, event_id)`.
pub type RecordId = (Feed, CompactString);

impl Accepted {
    /// `(feed, event_id)`.
    pub fn id(&self) -> RecordId {
        (self.event.feed(), self.event.event_id.clone())
    }
    /// The "latest" order: `(event_time, ingest_time, event_id)`.
    pub fn order(&self) -> (Ts, Ts, &str) {
        (
            self.event.event_time,
            self.event.ingest_time,
            &self.event.event_id,
        )
    }
}

/// A lifecycle dead letter: which record, why, and from which logical time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dead {
    /// The record.
    pub id: RecordId,
    /// Its version.
    pub version: u32,
    /// Why: `version_kind_change`, `target_mismatch` or `unknown_target`.
    pub reason: Reason,
    /// Logical time of the decision: when the records that decide it are all visible (the
    /// record and the version that sets the class, or the retraction and the record of
    /// another kind it names), or `v + hold` for `unknown_target` (D53).
    pub at: Ts,
    /// Where the record was read, if it came from Kafka.
    pub origin: Option<Origin>,
    /// The SHA-256 of the record's canonical bytes: which of two versions with the same
    /// number was dead-lettered.
    pub digest: [u8; 32],
}

impl Dead {
    /// What the record is and why it was dead-lettered, for a person reading the letter:
    /// `<FEED> <event_id> version <n>: <why>`.
    pub fn message(&self) -> String {
        let why = match self.reason {
            Reason::VersionKindChange => {
                "a version of this event id switches between a record and a retraction; the \
                 lowest version decides which it is, and this one is of the other kind"
            }
            Reason::TargetMismatch => {
                "the record it names (ref_event_id, or its business key) is of a kind it cannot \
                 retract or repair"
            }
            Reason::UnknownTarget => {
                "the record it names (ref_event_id, or its business key) did not become visible \
                 within the hold period after it"
            }
            _ => "rejected",
        };
        format!(
            "{} {} version {}: {why}",
            self.id.0, self.id.1, self.version
        )
    }
}

/// Stage 1 for one `(feed, event_id)`: the winning version and the versions that are
/// dead-lettered because they switch kind class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionOutcome<'a> {
    /// The record in effect, if any.
    pub winner: Option<&'a Accepted>,
    /// Versions refused as `version_kind_change`.
    pub dead: Vec<Dead>,
    /// Versions of the winner's class that lost to it.
    pub superseded: Vec<&'a Accepted>,
}

/// Resolves the visible versions of one `(feed, event_id)`.
///
/// The lowest version (ties: smaller digest) fixes whether the record is a retraction;
/// versions of the other class are dead-lettered. Among the rest the highest version wins;
/// equal versions with different bytes keep the smaller SHA-256.
pub fn resolve_versions<'a>(versions: &[&'a Accepted]) -> VersionOutcome<'a> {
    let Some(first) = versions
        .iter()
        .min_by_key(|a| (a.event.version, a.digest))
        .copied()
    else {
        return VersionOutcome {
            winner: None,
            dead: Vec::new(),
            superseded: Vec::new(),
        };
    };
    let class = first.event.body.is_retraction();
    let (same, other): (Vec<&Accepted>, Vec<&Accepted>) = versions
        .iter()
        .partition(|a| a.event.body.is_retraction() == class);
    let winner = same
        .iter()
        .copied()
        .max_by_key(|a| (a.event.version, std::cmp::Reverse(a.digest)));
    let superseded = same
        .into_iter()
        .filter(|a| winner.is_some_and(|w| !std::ptr::eq(*a, w)))
        .collect();
    // Decided once both it and the record that sets the class are visible.
    let mut dead: Vec<Dead> = other
        .into_iter()
        .map(|a| dead(a, Reason::VersionKindChange, a.v.max(first.v)))
        .collect();
    dead.sort();
    dead.dedup();
    VersionOutcome {
        winner,
        dead,
        superseded,
    }
}

/// What became of one accepted record by the end of a run: every record read ends in
/// exactly one of applied, duplicate or rejected (spec principle 3; D52).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// In effect (or was, until a later version, retraction or ending).
    Applied,
    /// An equal version with other bytes that lost the tie to a smaller SHA-256
    /// (`semantics.md` §2).
    Duplicate,
    /// Dead-lettered by the lifecycle, with the letter's reason.
    Rejected(Reason),
}

/// Each accepted record's [`Outcome`], given the lifecycle dead letters of the final
/// visible set: a dead-lettered record is rejected; among the other records with the same
/// `(feed, event_id)`, version and kind class, the one with the smallest digest is applied
/// and the others are duplicates. The outcomes do not depend on the records' order.
pub fn outcomes<'a>(log: &[&'a Accepted], dead: &[Dead]) -> Vec<(&'a Accepted, Outcome)> {
    let letters: BTreeMap<(Feed, &str, u32, [u8; 32]), Reason> = dead
        .iter()
        .map(|d| ((d.id.0, d.id.1.as_str(), d.version, d.digest), d.reason))
        .collect();
    let tie = |a: &'a Accepted| {
        let e = &a.event;
        (
            e.feed(),
            e.event_id.as_str(),
            e.version,
            e.body.is_retraction(),
        )
    };
    let mut smallest: BTreeMap<(Feed, &str, u32, bool), [u8; 32]> = BTreeMap::new();
    for a in log {
        let d = smallest.entry(tie(a)).or_insert(a.digest);
        *d = (*d).min(a.digest);
    }
    log.iter()
        .map(|a| {
            let e = &a.event;
            let outcome = match letters.get(&(e.feed(), e.event_id.as_str(), e.version, a.digest)) {
                Some(reason) => Outcome::Rejected(*reason),
                None if smallest.get(&tie(a)) != Some(&a.digest) => Outcome::Duplicate,
                None => Outcome::Applied,
            };
            (*a, outcome)
        })
        .collect()
}

/// How a record's effect ends, as decided by retractions and repairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ending {
    /// Earliest end set by a retraction (`max(target.event_time, retraction.event_time)`).
    pub retracted: Option<Ts>,
    /// End set by an unrevoked, applied repair (`max(target.event_time, effective_time)`).
    pub repaired: Option<Ts>,
    /// `CASE_CLOSED` as `WITHDRAWN` / `DISMISSED`: void from the start for row 39.
    pub voided: bool,
    /// The earliest retraction is a revocation (`PEN.REVOKED`, or a voiding `CASE_CLOSED`),
    /// not a follow-up that ends the record's effect.
    pub revoked: bool,
}

impl Ending {
    /// The earliest end from retraction or repair.
    pub fn end(&self) -> Ts {
        self.retracted
            .unwrap_or(Ts::MAX)
            .min(self.repaired.unwrap_or(Ts::MAX))
    }
}

/// A paid amount against an arrears assessment (`ARREARS_PAID` subtracts, not ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payment {
    /// When it takes effect (`max(assessment.event_time, paid.event_time)`).
    pub at: Ts,
    /// Amount paid; `None` = fully paid.
    pub amount_fen: Option<i64>,
}

/// Stage 2 for one enterprise: every winning record with how it ends, plus dead letters.
#[derive(Debug, Clone, Default)]
pub struct Resolved<'a> {
    /// Every winning record of the enterprise, retractions and repairs included.
    pub winners: Vec<&'a Accepted>,
    /// Non-retraction records in effect (retractions only act on these).
    pub records: Vec<&'a Accepted>,
    /// Endings by index into `records`.
    pub endings: Vec<Ending>,
    /// Payments against arrears assessments by index into `records`.
    pub payments: BTreeMap<usize, Vec<Payment>>,
    /// Applied repairs: (repair record, index of target in `records` unless the target is
    /// unknown, effect time).
    pub repairs: Vec<(&'a Accepted, Option<usize>, Ts)>,
    /// Review flags of unrevoked repairs (D47), in repair order.
    pub flags: Vec<(&'a Accepted, RepairFlag)>,
    /// Repairs voided by an `RPR.REVOKED`: (repair's event id, the revocation's event time).
    pub revoked_repairs: Vec<(&'a str, Ts)>,
    /// Lifecycle dead letters. An `unknown_target` one lies `hold` after the record's `v`:
    /// until then the record is held, and a target that arrives in time removes it.
    pub dead: Vec<Dead>,
}

impl Resolved<'_> {
    /// Whether the enterprise is known: it has a record in effect or an applied repair. An
    /// enterprise whose only records are retractions or repairs waiting for a target, or
    /// dead-lettered, has no state, colour or alert (issue 18, D52).
    pub fn is_known(&self) -> bool {
        !self.records.is_empty() || !self.repairs.is_empty()
    }
}

/// The kinds (wire names, in the retraction's own feed) a retraction may act on.
fn paired_targets(body: &Body) -> &'static [&'static str] {
    paired_kinds(body.feed(), body.kind_str())
}

/// [`paired_targets`] of a retraction of `feed` and `kind` (a wire name).
pub(crate) fn paired_kinds(feed: Feed, kind: &str) -> &'static [&'static str] {
    match (feed, kind) {
        (Feed::Pen, _) => &["DECIDED", "CORRECTED"],
        (Feed::List, _) => &["LISTED"],
        (Feed::Tax, "ARREARS_PAID") => &["ARREARS_ASSESSED"],
        (Feed::Tax, "ABNORMAL_LIFTED") => &["ABNORMAL_HOUSEHOLD"],
        (Feed::Tax, _) => &["MAJOR_VIOLATION"],
        (Feed::Jud, "CASE_CLOSED") => &["CASE_FILED"],
        (Feed::Jud, "ENFORCEMENT_CLOSED" | "PERFORMED") => {
            &["ENFORCEMENT_FILED", "ENFORCEMENT_TERMINATED"]
        }
        (Feed::Jud, "DISHONEST_REMOVED") => &["DISHONEST_LISTED"],
        (Feed::Jud, "CONSUMPTION_LIFTED") => &["CONSUMPTION_RESTRICTED"],
        (Feed::Jud, _) => &["FREEZE"],
        (Feed::Fin, "OVERDUE_CLEARED") => &["OVERDUE_LISTED", "OVERDUE_UPDATED"],
        (Feed::Fin, "DEBT_EVASION_REMOVED") => &["DEBT_EVASION_LISTED"],
        (Feed::Fin, "POLICE_REMOVED") => &["POLICE_LISTED"],
        (Feed::Fin, _) => &["SUSPICIOUS_ACCOUNT"],
        (Feed::Reg, "PLEDGE_RELEASED") => &["EQUITY_PLEDGE"],
        (Feed::Reg, _) => &["MORTGAGE"],
        (Feed::Per, "DISHONEST_REMOVED") => &["DISHONEST_LISTED"],
        (Feed::Per, _) => &["ROLE"],
        (Feed::Rpr, _) => &["COMPLETED"],
        (Feed::Pcs, _) => &["HONOUR"],
        (Feed::Cmt | Feed::Insp, _) => &[],
    }
}

/// The business key a retraction without `ref_event_id` is linked by (docs D2).
pub(crate) fn business_key(e: &Event) -> Option<CompactString> {
    match &e.body {
        Body::Jud(b) => Some(format_compact!(
            "{}\u{1f}{}",
            b.court_code.as_deref().unwrap_or(""),
            b.case_no.as_deref().unwrap_or("")
        )),
        Body::Fin(b)
            if matches!(
                b.kind,
                FinKind::OverdueListed | FinKind::OverdueUpdated | FinKind::OverdueCleared
            ) =>
        {
            b.loan_id.clone()
        }
        Body::Fin(b)
            if matches!(
                b.kind,
                FinKind::SuspiciousAccount | FinKind::SuspiciousAccountCleared
            ) =>
        {
            b.account_hash.clone()
        }
        _ => None,
    }
}

/// Stage 2: resolves retractions and repairs among one enterprise's winning records.
///
/// A retraction or repair whose target is not visible is held; if the target does not
/// become visible by `v + hold`, the record is dead-lettered as `unknown_target` at
/// `v + hold` and never applies, even if the target arrives later.
pub fn resolve_enterprise<'a>(winners: &[&'a Accepted], cat: &Catalogue) -> Resolved<'a> {
    let hold = cat.lifecycle.hold_secs;
    let mut out = Resolved {
        winners: winners.to_vec(),
        ..Resolved::default()
    };
    out.winners.sort_by(|a, b| a.order().cmp(&b.order()));
    let mut retractions = Vec::new();
    for &a in winners {
        if a.event.body.is_retraction() {
            retractions.push(a);
        } else if !matches!(a.event.body, Body::Rpr(_)) {
            out.records.push(a);
        }
    }
    out.records.sort_by(|a, b| a.order().cmp(&b.order()));
    out.endings = vec![Ending::default(); out.records.len()];
    let by_id: BTreeMap<(Feed, &str), usize> = out
        .records
        .iter()
        .enumerate()
        .map(|(i, a)| ((a.event.feed(), a.event.event_id.as_str()), i))
        .collect();

    // Repairs first (their revocations are retractions of RPR records).
    let mut repairs: Vec<&Accepted> = winners
        .iter()
        .copied()
        .filter(|a| matches!(&a.event.body, Body::Rpr(r) if r.kind == RprKind::Completed))
        .collect();
    repairs.sort_by(|a, b| a.order().cmp(&b.order()));
    let repair_ids: BTreeMap<&str, &Accepted> = repairs
        .iter()
        .map(|a| (a.event.event_id.as_str(), *a))
        .collect();

    let records = out.records.clone();
    // Which targets a retraction names, or why it cannot act.
    enum Link {
        Targets(Vec<usize>),
        Repair,
        /// Names a record of another kind, visible from this time.
        Mismatch(Ts),
        Unknown,
    }
    let link = |r: &Accepted| -> Link {
        let feed = r.event.feed();
        let kinds = paired_targets(&r.event.body);
        if feed == Feed::Rpr {
            return match r
                .event
                .ref_event_id
                .as_deref()
                .and_then(|id| repair_ids.get(id))
            {
                Some(_) => Link::Repair,
                None => winners
                    .iter()
                    .find(|w| {
                        w.event.feed() == Feed::Rpr
                            && Some(w.event.event_id.as_str()) == r.event.ref_event_id.as_deref()
                    })
                    .map_or(Link::Unknown, |w| Link::Mismatch(w.v)),
            };
        }
        if let Some(rid) = r.event.ref_event_id.as_deref() {
            return match by_id.get(&(feed, rid)) {
                Some(&i) if kinds.contains(&records[i].event.body.kind_str()) => {
                    Link::Targets(vec![i])
                }
                Some(&i) => Link::Mismatch(records[i].v),
                None => Link::Unknown,
            };
        }
        let Some(key) = business_key(&r.event) else {
            return Link::Unknown;
        };
        let targets: Vec<usize> = records
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                t.event.feed() == feed
                    && kinds.contains(&t.event.body.kind_str())
                    && business_key(&t.event).as_deref() == Some(key.as_str())
            })
            .map(|(i, _)| i)
            .collect();
        if targets.is_empty() {
            Link::Unknown
        } else {
            Link::Targets(targets)
        }
    };
    // The target must have become visible within the hold period.
    let in_time = |r: &Accepted, target: &Accepted| target.v <= r.v.saturating_add(hold);

    let mut revoked_repairs: BTreeSet<&str> = BTreeSet::new();
    retractions.sort_by(|a, b| a.order().cmp(&b.order()));
    for r in &retractions {
        match link(r) {
            // Decided once both are visible.
            Link::Mismatch(seen) => out
                .dead
                .push(dead(r, Reason::TargetMismatch, r.v.max(seen))),
            Link::Unknown => out.dead.push(unknown_target(r, hold)),
            Link::Repair => {
                let target = r.event.ref_event_id.as_deref().unwrap_or_default();
                if let Some(t) = repair_ids.get(target).filter(|t| in_time(r, t)) {
                    revoked_repairs.insert(t.event.event_id.as_str());
                    out.revoked_repairs
                        .push((t.event.event_id.as_str(), r.event.event_time));
                } else {
                    out.dead.push(unknown_target(r, hold));
                }
            }
            Link::Targets(ts) => {
                let ts: Vec<usize> = ts
                    .into_iter()
                    .filter(|&i| in_time(r, out.records[i]))
                    .collect();
                if ts.is_empty() {
                    out.dead.push(unknown_target(r, hold));
                    continue;
                }
                for i in ts {
                    apply_retraction(&mut out, i, r);
                }
            }
        }
    }

    for rep in repairs {
        if revoked_repairs.contains(rep.event.event_id.as_str()) {
            continue;
        }
        let Body::Rpr(b) = &rep.event.body else {
            continue;
        };
        let target = b
            .target_feed
            .zip(b.target_event_id.as_deref())
            .and_then(|(f, id)| by_id.get(&(f, id)).copied())
            .filter(|&i| in_time(rep, out.records[i]));
        let effective = b.effective_time.unwrap_or(rep.event.event_time);
        let mut flags = Vec::new();
        let applies = match target {
            Some(i) => {
                let t = &out.records[i].event;
                if t.event_time.max(effective) < cat.min_publicity_end(t) {
                    flags.push(RepairFlag::RepairBeforeMinPublicity);
                }
                if cat.repairs.non_repairable(t) {
                    flags.push(RepairFlag::RepairNonRepairable);
                }
                flags
                    .iter()
                    .all(|f| cat.repairs.action(*f) == RepairAction::Apply)
            }
            None => {
                flags.push(RepairFlag::RepairUnknownTarget);
                let apply = cat.repairs.action(RepairFlag::RepairUnknownTarget);
                if apply == RepairAction::Hold {
                    out.dead.push(unknown_target(rep, hold));
                }
                apply == RepairAction::Apply
            }
        };
        out.flags.extend(flags.into_iter().map(|f| (rep, f)));
        if !applies {
            continue;
        }
        let at = match target {
            Some(i) => {
                let at = out.records[i].event.event_time.max(effective);
                let e = &mut out.endings[i];
                e.repaired = Some(e.repaired.map_or(at, |x| x.min(at)));
                at
            }
            None => effective,
        };
        out.repairs.push((rep, target, at));
    }
    out.dead.sort();
    out
}

/// Record `a`'s dead letter for `reason`, from `at`.
pub fn dead(a: &Accepted, reason: Reason, at: Ts) -> Dead {
    Dead {
        id: a.id(),
        version: a.event.version,
        reason,
        at,
        origin: a.origin.as_deref().cloned(),
        digest: a.digest,
    }
}

/// A retraction or repair whose target is not visible, or became visible only after the
/// hold: dead-lettered as `unknown_target` when the hold ends.
fn unknown_target(a: &Accepted, hold: Ts) -> Dead {
    dead(a, Reason::UnknownTarget, a.v.saturating_add(hold))
}

fn apply_retraction(out: &mut Resolved<'_>, i: usize, r: &Accepted) {
    let target = out.records[i];
    let at = target.event.event_time.max(r.event.event_time);
    match &r.event.body {
        Body::Tax(b) if b.kind == TaxKind::ArrearsPaid => {
            out.payments.entry(i).or_default().push(Payment {
                at,
                amount_fen: b.amount_fen,
            });
        }
        Body::Jud(b)
            if b.kind == JudKind::CaseClosed
                && matches!(
                    b.close_reason,
                    Some(CloseReason::Withdrawn | CloseReason::Dismissed)
                ) =>
        {
            out.endings[i].voided = true;
            set_retracted(&mut out.endings[i], at, true);
        }
        Body::Pen(_) => set_retracted(&mut out.endings[i], at, true),
        _ => set_retracted(&mut out.endings[i], at, false),
    }
}

pub(crate) fn set_retracted(e: &mut Ending, at: Ts, revocation: bool) {
    match e.retracted {
        Some(x) if x < at => {}
        Some(x) if x == at => e.revoked |= revocation,
        _ => {
            e.retracted = Some(at);
            e.revoked = revocation;
        }
    }
}

/// True for PEN decision records (`DECIDED`, or `CORRECTED` which counts as `DECIDED`).
pub fn is_pen_decision(e: &Event) -> bool {
    matches!(&e.body, Body::Pen(p) if matches!(p.kind, PenKind::Decided | PenKind::Corrected))
}
