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
use crate::status::{self, Stepped};
use crate::CompactString;

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
    named: BTreeMap<CompactString, isize>,
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

/// An enterprise's winning records in their parts, kept up to date as records come and go
/// (an engine's state for the enterprise; `R` is how it holds a record). The records are
/// kept sorted by part, then by record, in three parallel lists (28 bytes a record for an
/// `Arc`), so a part's members are one slice.
#[derive(Debug)]
pub struct Parts<R> {
    parts: Vec<Part>,
    records: Vec<R>,
    counts: Vec<isize>,
    context: Context,
    /// Keys of the groups with a named member: they stay in the core.
    pinned: BTreeSet<u64>,
}

impl<R> Default for Parts<R> {
    fn default() -> Self {
        Parts {
            parts: Vec::new(),
            records: Vec::new(),
            counts: Vec::new(),
            context: Context::default(),
            pinned: BTreeSet::new(),
        }
    }
}

/// The part of a record of `group` under `context`, with `pinned` groups in the core.
fn decide_with(context: &Context, pinned: &BTreeSet<u64>, group: Option<Group>) -> Part {
    let Some(g) = group else {
        return Part::Core;
    };
    let row16 = match g.row16 {
        Row16::None => false,
        Row16::Tax(y) => context.zero_tax.contains_key(&y),
        Row16::Staff(y) => context.zero_staff.contains_key(&y),
    };
    if context.established == 0 || row16 || pinned.contains(&g.key) {
        Part::Core
    } else {
        Part::Detached(g.key)
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
        for (a, r) in changes {
            if r == 0 {
                continue;
            }
            // Every held record is where `decide` puts it now, until the context changes.
            let g = group(record(&a), kinds);
            again |= g.is_some() && self.context.named(record(&a));
            let p = self.decide(g);
            let range = self.range(p);
            match self.records[range.clone()].binary_search(&a) {
                Ok(i) => {
                    let i = range.start + i;
                    self.counts[i] += r;
                    if self.counts[i] == 0 {
                        self.parts.remove(i);
                        self.records.remove(i);
                        self.counts.remove(i);
                    }
                }
                Err(i) => {
                    let i = range.start + i;
                    crate::reserve_kept(&mut self.parts, 1);
                    crate::reserve_kept(&mut self.records, 1);
                    crate::reserve_kept(&mut self.counts, 1);
                    self.parts.insert(i, p);
                    self.records.insert(i, a.clone());
                    self.counts.insert(i, r);
                }
            }
            dirty.insert(p);
            again |= self.context.update(record(&a), r);
        }
        if again {
            self.place_all(kinds, &mut dirty);
        }
        dirty
    }

    /// Each part with its records (sorted).
    pub fn parts(&self) -> impl Iterator<Item = (Part, &[R])> {
        self.parts.chunk_by(|a, b| a == b).scan(0, |at, run| {
            let start = *at;
            *at += run.len();
            Some((run[0], &self.records[start..*at]))
        })
    }

    /// A part's records (sorted; empty if it has none).
    pub fn members(&self, p: Part) -> &[R] {
        &self.records[self.range(p)]
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn range(&self, p: Part) -> std::ops::Range<usize> {
        self.parts.partition_point(|x| *x < p)..self.parts.partition_point(|x| *x <= p)
    }

    fn decide(&self, group: Option<Group>) -> Part {
        decide_with(&self.context, &self.pinned, group)
    }

    /// Places every record again, marking the parts whose members change.
    fn place_all(&mut self, kinds: &Detachable, dirty: &mut BTreeSet<Part>) {
        let groups: Vec<Option<Group>> = self
            .records
            .iter()
            .map(|a| group(record(a), kinds))
            .collect();
        self.pinned = self
            .records
            .iter()
            .zip(&groups)
            .filter_map(|(a, g)| g.filter(|_| self.context.named(record(a))))
            .map(|g| g.key)
            .collect();
        let mut all: Vec<(Part, R, isize)> = Vec::with_capacity(self.records.len());
        for (((old, a), n), g) in self
            .parts
            .drain(..)
            .zip(self.records.drain(..))
            .zip(self.counts.drain(..))
            .zip(groups)
        {
            all.push((old, a, n));
            let new = decide_with(&self.context, &self.pinned, g);
            if new != old {
                dirty.insert(old);
                dirty.insert(new);
                if let Some(last) = all.last_mut() {
                    last.0 = new;
                }
            }
        }
        all.sort_by(|x, y| (x.0, &x.1).cmp(&(y.0, &y.1)));
        // A record changed after the context did in one update may have been looked for in
        // the wrong part and held twice: its copies now meet, and their counts add up.
        for (p, a, n) in all {
            if self.records.last() == Some(&a) {
                if let Some(c) = self.counts.last_mut() {
                    *c += n;
                    if *c == 0 {
                        self.parts.pop();
                        self.records.pop();
                        self.counts.pop();
                    }
                }
                continue;
            }
            self.parts.push(p);
            self.records.push(a);
            self.counts.push(n);
        }
    }
}

/// What stage 2 makes of one part of an enterprise's records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome<'a> {
    /// Lifecycle dead letters.
    pub dead: Vec<Dead>,
    /// Status steps of the part's records (D11).
    pub statuses: Vec<Stepped<'a>>,
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
pub fn outcome<'a>(records: &[&'a Accepted], part: Part, cat: &Catalogue) -> Outcome<'a> {
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
