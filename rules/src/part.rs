//! An enterprise's records in parts that resolve and derive on their own (D65).
//!
//! Stage 2 ([`crate::lifecycle::resolve_enterprise`], [`crate::fact::derive`],
//! [`crate::status::of_enterprise`], [`crate::fact::commitment_events`]) reads all of an
//! enterprise's records. Most records of a long history are of a few kinds whose facts
//! and statuses depend on nothing but themselves (and, for declarations, on the other
//! declarations of their period). [`Parts`] puts each such record in a **detached** part
//! of its own and every other record in the **core** part, and keeps them so as records
//! come and go; [`outcome`] of each part, taken together, equals the outcome of the whole
//! (`tests/parts.rs` checks it), so an engine re-runs only the parts a change touches.
//!
//! A record is detached only when nothing else reads it:
//! - its kind is `TAX.PAID`, `TAX.DECLARED` (part: its period's declarations),
//!   `TAX.SOCIAL_INSURANCE` (part: its period's) or `PER.SCORE` / `PCS.SCORE` (part: itself);
//! - the enterprise has an `ESTABLISHED` record (else the core part's `AnnualDue` falls back
//!   on the enterprise's first record, which may be any record);
//! - no record of the enterprise names its event id (as `ref_event_id` or a repair's
//!   target), in any member of its part;
//! - no commitment matter counts its kind as contradicting (the off-site check reads those);
//! - no annual report of its year reports zero tax (`PAID`) or zero staff
//!   (`SOCIAL_INSURANCE`): row 16 compares those.
//!
//! Parts are keyed by a hash: two detached parts that share a key are computed together,
//! which gives the same outcome (detached parts never read each other).

use std::borrow::Borrow;
use std::collections::{btree_map, BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::catalogue::Catalogue;
use crate::event::{Body, PcsKind, PerKind, RegKind, TaxKind};
use crate::fact::{commitment_events, derive_in, CommitmentEvent, Fact};
use crate::lifecycle::{resolve_enterprise, Accepted, Dead};
use crate::status::{self, RecordStep};

/// Which part of its enterprise a record is resolved and derived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// Every record that another record may read, and every record of an enterprise
    /// without an `ESTABLISHED` record.
    Core,
    /// A record (or a period's declarations) that nothing else reads, by a hash of its
    /// identity.
    Detached(u64),
}

/// Which bulk kinds a catalogue lets be detached: those that no commitment matter counts
/// as contradicting.
#[derive(Debug, Clone, Copy)]
pub struct Detachable {
    paid: bool,
    declared: bool,
    insured: bool,
    person_score: bool,
    pcs_score: bool,
}

impl Detachable {
    /// The kinds `cat` lets be detached.
    pub fn of(cat: &Catalogue) -> Self {
        let free = |feed, kind| !cat.commitments.contradicts_any(feed, kind);
        Detachable {
            paid: free("TAX", "PAID"),
            declared: free("TAX", "DECLARED"),
            insured: free("TAX", "SOCIAL_INSURANCE"),
            person_score: free("PER", "SCORE"),
            pcs_score: free("PCS", "SCORE"),
        }
    }
}

/// A bulk record's group before pinning: its part's key, and the year whose annual report
/// row 16 compares it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Group {
    key: u64,
    row16: Row16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row16 {
    None,
    /// A payment of this year (compared with a reported tax of 0).
    Tax(i32),
    /// Insured staff of this year (compared with reported staff of 0).
    Staff(i32),
}

/// The group of a record by its kind alone.
fn group(a: &Accepted, kinds: &Detachable) -> Option<Group> {
    let e = &a.event;
    let year = |p: Option<crate::time::Period>| p.map(|p| p.year());
    let (key, row16) = match &e.body {
        Body::Tax(t) => match t.kind {
            TaxKind::Paid if kinds.paid => (
                hash(&(0u8, &e.event_id)),
                year(t.period).map_or(Row16::None, Row16::Tax),
            ),
            TaxKind::Declared if kinds.declared => (hash(&(1u8, t.period)), Row16::None),
            TaxKind::SocialInsurance if kinds.insured => (
                hash(&(2u8, t.period)),
                year(t.period).map_or(Row16::None, Row16::Staff),
            ),
            _ => return None,
        },
        Body::Per(p) if p.kind == PerKind::Score && kinds.person_score => {
            (hash(&(3u8, &e.event_id)), Row16::None)
        }
        Body::Pcs(p) if p.kind == PcsKind::Score && kinds.pcs_score => {
            (hash(&(4u8, &e.event_id)), Row16::None)
        }
        _ => return None,
    };
    Some(Group { key, row16 })
}

fn hash<T: Hash>(x: &T) -> u64 {
    let mut h = DefaultHasher::new();
    x.hash(&mut h);
    h.finish()
}

/// What decides the parts besides a record's own kind, as counts over the enterprise's
/// records (so that records come and go).
#[derive(Debug, Default)]
struct Context {
    established: isize,
    /// Event ids named by a record (`ref_event_id`, a repair's target).
    named: BTreeMap<String, isize>,
    /// Years of annual reports with reported tax 0, and with reported staff 0.
    zero_tax: BTreeMap<i32, isize>,
    zero_staff: BTreeMap<i32, isize>,
}

impl Context {
    /// Counts `r` copies of `a`; true if what the context decides changed.
    fn update(&mut self, a: &Accepted, r: isize) -> bool {
        // Whether `k`'s count crosses zero.
        fn bump<K: Ord>(m: &mut BTreeMap<K, isize>, k: K, r: isize) -> bool {
            match m.entry(k) {
                btree_map::Entry::Occupied(mut e) => {
                    *e.get_mut() += r;
                    if *e.get() == 0 {
                        e.remove();
                        return true;
                    }
                    false
                }
                btree_map::Entry::Vacant(e) => {
                    e.insert(r);
                    true
                }
            }
        }
        let mut changed = false;
        let e = &a.event;
        if let Some(id) = &e.ref_event_id {
            changed |= bump(&mut self.named, id.clone(), r);
        }
        match &e.body {
            Body::Rpr(b) => {
                if let Some(id) = &b.target_event_id {
                    changed |= bump(&mut self.named, id.clone(), r);
                }
            }
            Body::Reg(b) if b.kind == RegKind::Established => {
                let was = self.established != 0;
                self.established += r;
                changed |= was != (self.established != 0);
            }
            Body::Reg(b) if b.kind == RegKind::AnnualReport => {
                if let Some(y) = b.report_year {
                    if b.reported_tax_fen == Some(0) {
                        changed |= bump(&mut self.zero_tax, y, r);
                    }
                    if b.reported_staff == Some(0) {
                        changed |= bump(&mut self.zero_staff, y, r);
                    }
                }
            }
            _ => {}
        }
        changed
    }

    fn named(&self, a: &Accepted) -> bool {
        self.named.contains_key(a.event.event_id.as_str())
    }
}

/// One record's count, group and part.
#[derive(Debug)]
struct Entry {
    count: isize,
    group: Option<Group>,
    /// `None` until assigned.
    part: Option<Part>,
}

/// An enterprise's winning records in their parts, kept up to date as records come and go
/// (an engine's state for the enterprise; `R` is how it holds a record).
#[derive(Debug)]
pub struct Parts<R> {
    records: BTreeMap<R, Entry>,
    context: Context,
    /// Keys of the groups with a named member: they stay in the core.
    pinned: BTreeSet<u64>,
    /// Each part's records, sorted.
    members: BTreeMap<Part, Vec<R>>,
}

impl<R> Default for Parts<R> {
    fn default() -> Self {
        Parts {
            records: BTreeMap::new(),
            context: Context::default(),
            pinned: BTreeSet::new(),
            members: BTreeMap::new(),
        }
    }
}

/// The record `r` holds.
fn record<R: Borrow<Accepted>>(r: &R) -> &Accepted {
    r.borrow()
}

impl<R: Borrow<Accepted> + Ord + Clone> Parts<R> {
    /// Counts each change (a record and how many copies come or go) and returns the parts
    /// whose members changed. Usually only the changed records are placed; a change of
    /// what decides the parts (an `ESTABLISHED` record, a named event id, an annual report
    /// with zero tax or staff) places every record again.
    pub fn update(
        &mut self,
        changes: impl IntoIterator<Item = (R, isize)>,
        kinds: &Detachable,
    ) -> BTreeSet<Part> {
        let mut dirty = BTreeSet::new();
        let mut again = false;
        let mut added = Vec::new();
        for (a, r) in changes {
            if r == 0 {
                continue;
            }
            again |= self.context.update(record(&a), r);
            match self.records.entry(a) {
                btree_map::Entry::Occupied(mut e) => {
                    e.get_mut().count += r;
                    if e.get().count == 0 {
                        let (a, entry) = e.remove_entry();
                        again |= entry.group.is_some() && self.context.named(record(&a));
                        if let Some(p) = entry.part {
                            self.leave(&a, p);
                            dirty.insert(p);
                        }
                    }
                }
                btree_map::Entry::Vacant(e) => {
                    let group = group(record(e.key()), kinds);
                    again |= group.is_some() && self.context.named(record(e.key()));
                    added.push(e.key().clone());
                    e.insert(Entry {
                        count: r,
                        group,
                        part: None,
                    });
                }
            }
        }
        if again {
            self.place_all(&mut dirty);
        } else {
            for a in added {
                let Some(group) = self.records.get::<R>(&a).map(|e| e.group) else {
                    continue;
                };
                let p = self.decide(group);
                if let Some(e) = self.records.get_mut::<R>(&a) {
                    e.part = Some(p);
                }
                self.join(a, p);
                dirty.insert(p);
            }
        }
        dirty
    }

    /// Each part with its records (sorted).
    pub fn parts(&self) -> impl Iterator<Item = (Part, &[R])> {
        self.members.iter().map(|(p, rs)| (*p, rs.as_slice()))
    }

    /// A part's records (sorted; empty if it has none).
    pub fn members(&self, p: Part) -> &[R] {
        self.members.get(&p).map_or(&[], Vec::as_slice)
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn decide(&self, group: Option<Group>) -> Part {
        let Some(g) = group else {
            return Part::Core;
        };
        let row16 = match g.row16 {
            Row16::None => false,
            Row16::Tax(y) => self.context.zero_tax.contains_key(&y),
            Row16::Staff(y) => self.context.zero_staff.contains_key(&y),
        };
        if self.context.established == 0 || row16 || self.pinned.contains(&g.key) {
            Part::Core
        } else {
            Part::Detached(g.key)
        }
    }

    /// Places every record again, marking the parts whose members change.
    fn place_all(&mut self, dirty: &mut BTreeSet<Part>) {
        self.pinned = self
            .records
            .iter()
            .filter_map(|(a, e)| e.group.filter(|_| self.context.named(record(a))))
            .map(|g| g.key)
            .collect();
        let moves: Vec<(R, Option<Part>, Part)> = self
            .records
            .iter()
            .map(|(a, e)| (a, e.part, self.decide(e.group)))
            .filter(|(_, old, new)| *old != Some(*new))
            .map(|(a, old, new)| (a.clone(), old, new))
            .collect();
        for (a, old, new) in moves {
            if let Some(p) = old {
                self.leave(&a, p);
                dirty.insert(p);
            }
            if let Some(e) = self.records.get_mut::<R>(&a) {
                e.part = Some(new);
            }
            self.join(a, new);
            dirty.insert(new);
        }
    }

    fn join(&mut self, a: R, p: Part) {
        let m = self.members.entry(p).or_default();
        if let Err(i) = m.binary_search(&a) {
            m.insert(i, a);
        }
    }

    fn leave(&mut self, a: &R, p: Part) {
        if let Some(m) = self.members.get_mut(&p) {
            if let Ok(i) = m.binary_search(a) {
                m.remove(i);
            }
            if m.is_empty() {
                self.members.remove(&p);
            }
        }
    }
}

/// What stage 2 makes of one part of an enterprise's records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Lifecycle dead letters.
    pub dead: Vec<Dead>,
    /// Status steps of the part's records (D11).
    pub statuses: Vec<RecordStep>,
    /// Whether the part has a record in effect or an applied repair; facts and commitment
    /// events are empty otherwise. The core part's says whether the enterprise is known
    /// (D52).
    pub known: bool,
    /// Facts, sorted.
    pub facts: Vec<Fact>,
    /// Published commitments and verification results (D46).
    pub commitments: Vec<CommitmentEvent>,
}

/// Stage 2 over the records of one part. A detached part exists only beside an
/// `ESTABLISHED` record, which is in the core part: the core part alone says whether the
/// enterprise is known (D52), and every part of a known enterprise has its facts.
pub fn outcome(records: &[&Accepted], part: Part, cat: &Catalogue) -> Outcome {
    let res = resolve_enterprise(records, cat);
    let facts = derive_in(&res, cat, part == Part::Core);
    let statuses = status::of_enterprise(&res, &facts);
    let known = res.is_known();
    let (facts, commitments) = if known {
        let c = commitment_events(&res, cat);
        (facts, c)
    } else {
        (Vec::new(), Vec::new())
    };
    Outcome {
        dead: res.dead,
        statuses,
        known,
        facts,
        commitments,
    }
}
