//! How the enterprise stage resolves one enterprise's records: engine v2's record table
//! ([`TableLife`], D101).
//!
//! [`TableLife`] keeps the records packed in a [`Table`] and asks [`fact_changes`] what a
//! change does to the facts, the commitment events, the status steps and the dead letters:
//! only the records and groups the change reaches are derived again. The table names
//! records and keys by fingerprints; the stages after this one still read texts, so each
//! change is named as the reference names it, from the enterprise's records (the winners
//! the version stage holds, shared). Before a change applies, [`collision`] checks that each
//! fingerprint it brings stands for one text (D105). The oracle test checks the output
//! against the reference. (It replaced the parts of D65, which resolved and derived again
//! every record of each part a change touched; D102.)

use std::cmp::Ordering;
use std::sync::Arc;

use differential_dataflow::consolidation::consolidate;
use rules::event::{Body, Feed};
use rules::fact::{CommitmentEvent, Fact, Place, Src, Text};
use rules::lifecycle::{dead, Accepted};
use rules::rename::{self, Rename};
use rules::status::{Record, Step};
use rules::table::{
    collision, enterprise_facts, enterprise_steps, fact_changes, key_text, Fields, Letters, Packed,
    Seed, Table,
};
use rules::uscc::Uscc;
use rules::{format_compact, CompactString};

use crate::dataflow::{Derived, Routed, Stage};

/// The records of one enterprise by fingerprint, sorted.
type Records = Vec<(u64, Arc<Accepted>)>;

/// One enterprise's lifecycle on the record table (D101): whether it is known, its facts,
/// dead letters, commitment events and status steps.
#[derive(Default)]
pub(crate) struct TableLife {
    table: Table,
    /// Its records, by fingerprint: what its outputs name.
    records: Records,
    /// How many times its table was built again under another seed (its seed is the
    /// stage's seed, [`Seed::next`] that many times).
    reseeded: u8,
    /// Whether it is known (it has facts and commitment events only then).
    known: bool,
}

impl TableLife {
    /// Whether it holds no record.
    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Applies the changes of enterprise `own`'s winning records at one time (drained) and
    /// pushes the differences of its output.
    pub(crate) fn step(
        &mut self,
        own: Uscc,
        changes: &mut Vec<(Arc<Accepted>, isize)>,
        stage: &Stage,
        out: &mut Vec<(Derived, isize)>,
    ) {
        let seed = self.seed(stage);
        let with_sign = |sign: bool| {
            fingerprinted(
                changes
                    .iter()
                    .filter(|(_, d)| (*d > 0) == sign)
                    .map(|(a, _)| a),
                seed,
            )
        };
        let (leaving, entering) = (with_sign(false), with_sign(true));
        changes.clear();
        let fields: Vec<(Fields, isize)> = leaving
            .iter()
            .map(|(f, _)| (*f, -1))
            .chain(entering.iter().map(|(f, _)| (*f, 1)))
            .collect();
        let leaving = by_rid(leaving);
        let gone: Vec<u64> = leaving.iter().map(|(rid, _)| *rid).collect();
        // The records stored now (those leaving among them) name what the table holds.
        let old = Names::new(&leaving, &self.records, seed);
        let stored = |rid: u64| -> &Accepted { old.record(rid) };
        let apart = collision(&self.table, &gone, &entering, &stored, seed, &stage.cat).is_none();
        let entering = by_rid(entering);
        let new = Names::new(&entering, &self.records, seed);
        let ties = |a: u64, b: u64| new.by_event_id(a, b);
        let cx = stage.context(own, seed, &ties);
        // An empty table derives nothing, so what a change to it begins is all it derives.
        let was_empty = self.table.is_empty();
        let applied = apart
            .then(|| fact_changes(&mut self.table, &fields, &cx).ok())
            .flatten();
        let Some(fc) = applied else {
            // Two of its records share a fingerprint, or a fingerprint would stand for two
            // texts (D105), and the table applied nothing: the enterprise's table is built
            // again from its records under another seed.
            self.rebuild(own, &leaving, entering, stage, out);
            return;
        };
        let known = self.table.is_known(&stage.cat);
        let renamed_facts = |facts: &[Fact<Packed>], n: &Names<'_>, r: isize, out: &mut Vec<_>| {
            for f in facts {
                out.push((Derived::Fact(Arc::new(rename::fact(f, n))), r));
            }
        };
        let renamed_events =
            |events: &[CommitmentEvent<Packed>], n: &Names<'_>, r: isize, out: &mut Vec<_>| {
                for e in events {
                    out.push((Derived::Commitment(Box::new(rename::event(e, n))), r));
                }
            };
        match (self.known, known) {
            (true, true) => {
                renamed_facts(&fc.facts.removed, &old, -1, out);
                renamed_facts(&fc.facts.added, &new, 1, out);
                renamed_events(&fc.events.removed, &old, -1, out);
                renamed_events(&fc.events.added, &new, 1, out);
            }
            (false, true) if was_empty => {
                // Its first records (or the first since it had none): not derived again.
                renamed_facts(&fc.facts.added, &new, 1, out);
                renamed_events(&fc.events.added, &new, 1, out);
            }
            (false, true) => {
                let all = enterprise_facts(&self.table, &cx);
                renamed_facts(&all.facts, &new, 1, out);
                renamed_events(&all.events, &new, 1, out);
            }
            (true, false) => {
                // What it had: what it has, less what began, with what ended.
                let all = enterprise_facts(&self.table, &cx);
                let facts = before(all.facts, &fc.facts.added, fc.facts.removed);
                let events = before(all.events, &fc.events.added, fc.events.removed);
                renamed_facts(&facts, &old, -1, out);
                renamed_events(&events, &old, -1, out);
            }
            (false, false) => {}
        }
        if self.known != known {
            out.push((Derived::Known, if known { 1 } else { -1 }));
            self.known = known;
        }
        push_steps(&fc.steps.removed, &old, -1, out);
        push_steps(&fc.steps.added, &new, 1, out);
        push_letters(&fc.letters.removed, &old, -1, out);
        push_letters(&fc.letters.added, &new, 1, out);
        self.records = store(std::mem::take(&mut self.records), &leaving, entering);
    }

    fn seed(&self, stage: &Stage) -> Seed {
        (0..self.reseeded).fold(stage.seed, |s, _| s.next())
    }

    /// Applies the changes by building the table again from its records under the next seed
    /// under which no two share a fingerprint and no fingerprint stands for two texts
    /// (D105), and pushes the differences of the whole output.
    fn rebuild(
        &mut self,
        own: Uscc,
        leaving: &Records,
        entering: Records,
        stage: &Stage,
        out: &mut Vec<(Derived, isize)>,
    ) {
        self.outputs(own, stage, -1, out);
        let records = store(std::mem::take(&mut self.records), leaving, entering);
        loop {
            self.reseeded = self.reseeded.wrapping_add(1);
            let seed = self.seed(stage);
            let rs = fingerprinted(records.iter().map(|(_, a)| a), seed);
            let fields: Vec<(Fields, isize)> = rs.iter().map(|(f, _)| (*f, 1)).collect();
            let mut table = Table::default();
            let none = |_: u64| -> &Accepted { unreachable!("an empty table stores no record") };
            let apart = || collision(&table, &[], &rs, &none, seed, &stage.cat).is_none();
            if apart() && table.update(&fields, &stage.cat).is_ok() {
                self.table = table;
                self.records = by_rid(rs);
                break;
            }
        }
        self.known = self.table.is_known(&stage.cat);
        self.outputs(own, stage, 1, out);
        consolidate(out);
    }

    /// Pushes its whole output with `r`, from scratch.
    fn outputs(&self, own: Uscc, stage: &Stage, r: isize, out: &mut Vec<(Derived, isize)>) {
        let seed = self.seed(stage);
        let names = Names::new(&[], &self.records, seed);
        let ties = |a: u64, b: u64| names.by_event_id(a, b);
        let cx = stage.context(own, seed, &ties);
        let all = enterprise_facts(&self.table, &cx);
        if self.known {
            out.push((Derived::Known, r));
            for f in &all.facts {
                out.push((Derived::Fact(Arc::new(rename::fact(f, &names))), r));
            }
            for e in &all.events {
                out.push((Derived::Commitment(Box::new(rename::event(e, &names))), r));
            }
        }
        push_steps(
            &enterprise_steps(&self.table, &all.facts, &stage.cat),
            &names,
            r,
            out,
        );
        push_letters(&self.table.letters(&stage.cat), &names, r, out);
    }
}

/// The fields of `records` under `seed`, sorted by fingerprint.
fn fingerprinted<'a>(
    records: impl Iterator<Item = &'a Arc<Accepted>>,
    seed: Seed,
) -> Vec<(Fields, Arc<Accepted>)> {
    let mut rs: Vec<(Fields, Arc<Accepted>)> = records
        .map(|a| (Fields::of(a, seed), Arc::clone(a)))
        .collect();
    rs.sort_unstable_by_key(|(f, _)| f.rid);
    rs
}

/// Records with their fields, as records by fingerprint.
fn by_rid(rs: Vec<(Fields, Arc<Accepted>)>) -> Records {
    rs.into_iter().map(|(f, a)| (f.rid, a)).collect()
}

/// `records` without `leaving` and with `entering` (each sorted by fingerprint).
fn store(mut records: Records, leaving: &Records, entering: Records) -> Records {
    if !leaving.is_empty() {
        records.retain(|(rid, a)| {
            leaving
                .binary_search_by_key(rid, |(r, _)| *r)
                .map_or(true, |i| !Arc::ptr_eq(&leaving[i].1, a))
        });
    }
    rules::reserve_kept(&mut records, entering.len());
    for (rid, a) in entering {
        let i = records.partition_point(|(r, _)| *r <= rid);
        records.insert(i, (rid, a));
    }
    records
}

/// The sorted multiset `now − added + removed` (all three sorted): what there was before a
/// change that added `added` and removed `removed`.
fn before<T: Ord>(now: Vec<T>, added: &[T], removed: Vec<T>) -> Vec<T> {
    let mut added = added.iter().peekable();
    let mut out: Vec<T> = now
        .into_iter()
        .filter(|x| {
            while added.next_if(|a| *a < x).is_some() {}
            added.next_if(|a| *a == x).is_none()
        })
        .collect();
    out.extend(removed);
    out.sort();
    out
}

fn push_steps(steps: &[(u64, Step)], n: &Names<'_>, r: isize, out: &mut Vec<(Derived, isize)>) {
    for (rid, step) in steps {
        let record = Routed::new(Record::Shared(Arc::clone(n.record(*rid))));
        out.push((Derived::Status(Box::new((record, *step))), r));
    }
}

fn push_letters(letters: &Letters, n: &Names<'_>, r: isize, out: &mut Vec<(Derived, isize)>) {
    for (rid, reason, at) in letters {
        out.push((
            Derived::Dead(Box::new(dead(n.record(*rid), *reason, *at))),
            r,
        ));
    }
}

/// The texts of an enterprise's fingerprints: its records (`first` before `rest`, both
/// sorted by fingerprint), fingerprinted with `seed`.
struct Names<'a> {
    first: &'a [(u64, Arc<Accepted>)],
    rest: &'a [(u64, Arc<Accepted>)],
    seed: Seed,
}

impl<'a> Names<'a> {
    fn new(
        first: &'a [(u64, Arc<Accepted>)],
        rest: &'a [(u64, Arc<Accepted>)],
        seed: Seed,
    ) -> Self {
        Names { first, rest, seed }
    }

    /// The record with fingerprint `rid`.
    fn record(&self, rid: u64) -> &'a Arc<Accepted> {
        let find = |rs: &'a [(u64, Arc<Accepted>)]| {
            rs.binary_search_by_key(&rid, |(r, _)| *r)
                .ok()
                .map(|i| &rs[i].1)
        };
        find(self.first)
            .or_else(|| find(self.rest))
            .expect("the table names only the enterprise's records")
    }

    /// Two records compared by event id: the tie-break of the "latest" order.
    fn by_event_id(&self, a: u64, b: u64) -> Ordering {
        self.record(a)
            .event
            .event_id
            .cmp(&self.record(b).event.event_id)
    }

    /// Record `a`'s key text, if it is of `feed` and its key's fingerprint is `key`: an
    /// absent key is the empty text, as the table groups it.
    fn key_of(&self, a: &Accepted, feed: Feed, key: u64) -> Option<CompactString> {
        if a.event.feed() != feed {
            return None;
        }
        let text = key_text(&a.event).unwrap_or_default();
        (self.seed.business_key(feed, &text) == key).then_some(text)
    }
}

impl Rename<Packed, Text> for Names<'_> {
    fn key(&self, key: &u64, feed: Feed, src: Option<&u64>) -> CompactString {
        // Almost always the source record's own key; else another record's (a broken
        // commitment's, from the record that broke it).
        src.and_then(|s| self.key_of(self.record(*s), feed, *key))
            .or_else(|| {
                self.first
                    .iter()
                    .chain(self.rest)
                    .find_map(|(_, a)| self.key_of(a, feed, *key))
            })
            .unwrap_or_else(|| {
                debug_assert!(false, "a key no record of the enterprise carries");
                format_compact!("#{key:016x}")
            })
    }

    fn firm(&self, firm: &Uscc) -> CompactString {
        format_compact!("{firm}")
    }

    fn place(&self, _: &u8, src: &u64) -> Box<Place> {
        let (region, industry) = match &self.record(*src).event.body {
            Body::Reg(r) => (r.region_code.clone(), r.industry_code.clone()),
            _ => (None, None),
        };
        Box::new(Place { region, industry })
    }

    fn src(&self, src: &u64) -> Src {
        let e = &self.record(*src).event;
        (e.feed(), e.event_id.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use generator::ops::{log_of, op, Op};
    use proptest::prelude::*;
    use rules::catalogue::Catalogue;
    use rules::lifecycle::resolve_versions;

    use super::*;

    /// The winning records of `ops` with every record filed under one enterprise.
    fn winners(ops: &[Op]) -> (Uscc, Vec<Arc<Accepted>>) {
        let ops: Vec<Op> = ops
            .iter()
            .map(|o| Op {
                ent: 0,
                ..o.clone()
            })
            .collect();
        let log = log_of(&ops);
        let mut by_id: BTreeMap<_, Vec<&Accepted>> = BTreeMap::new();
        for a in &log {
            by_id.entry(a.id()).or_default().push(a);
        }
        let winners: Vec<Arc<Accepted>> = by_id
            .values()
            .filter_map(|vs| resolve_versions(vs).winner.cloned().map(Arc::new))
            .collect();
        let own = winners
            .first()
            .map_or(Uscc::admitted(&generator::ops::code(0)), |a| {
                Uscc::admitted(&a.event.uscc)
            });
        (own, winners)
    }

    /// The stage's state of one enterprise, and what its steps pushed, added up.
    struct Stepped {
        own: Uscc,
        stage: Stage,
        life: TableLife,
        pushed: Vec<(Derived, isize)>,
    }

    impl Stepped {
        fn step(&mut self, changes: &[(Arc<Accepted>, isize)]) {
            self.life.step(
                self.own,
                &mut changes.to_vec(),
                &self.stage,
                &mut self.pushed,
            );
            consolidate(&mut self.pushed);
        }

        /// Its whole output from scratch.
        fn scratch(&self) -> Vec<(Derived, isize)> {
            let mut all = Vec::new();
            self.life.outputs(self.own, &self.stage, 1, &mut all);
            consolidate(&mut all);
            all
        }
    }

    /// One enterprise's records arriving in two steps (the first `cut`), some of the
    /// first leaving (`fate` 1) or replaced by new versions (2), then the table built again
    /// under another seed, then every record leaving, under `seed`: after each step what the
    /// stage pushed adds up to its output from scratch (which the oracle compares with the
    /// reference), and building again changes nothing. What it pushed after each step.
    fn steps(
        seed: Seed,
        ops: &[Op],
        cut: usize,
        fate: &[u8],
    ) -> Result<Vec<Vec<(Derived, isize)>>, TestCaseError> {
        let (own, winners) = winners(ops);
        let cat = Arc::new(Catalogue::embedded());
        let mut firm = Stepped {
            own,
            stage: Stage::new(&cat, seed),
            life: TableLife::default(),
            pushed: Vec::new(),
        };
        let mut seen = Vec::new();
        let cut = cut.min(winners.len());
        let add = |rs: &[Arc<Accepted>]| rs.iter().map(|a| (Arc::clone(a), 1)).collect::<Vec<_>>();
        firm.step(&add(&winners[..cut]));
        prop_assert_eq!(&firm.pushed, &firm.scratch());
        seen.push(firm.pushed.clone());
        // Of the first records, a `1` leaves and a `2` is replaced by a new version (the
        // same fingerprint, another record: its steps and letters must name the new one).
        let mut changes = add(&winners[cut..]);
        let mut winners = winners.clone();
        let mut leaving: Vec<Arc<Accepted>> = Vec::new();
        for (a, f) in winners[..cut].iter_mut().zip(fate) {
            if *f == 0 {
                continue;
            }
            changes.push((Arc::clone(a), -1));
            leaving.push(Arc::clone(a));
            if *f == 2 {
                let mut next = (**a).clone();
                next.event.version += 1;
                next.digest[0] ^= 1;
                *a = Arc::new(next);
                changes.push((Arc::clone(a), 1));
            }
        }
        firm.step(&changes);
        prop_assert_eq!(&firm.pushed, &firm.scratch());
        seen.push(firm.pushed.clone());

        let mut rebuilt = Vec::new();
        let before = firm.life.reseeded;
        firm.life
            .rebuild(own, &Vec::new(), Vec::new(), &firm.stage, &mut rebuilt);
        prop_assert!(rebuilt.is_empty(), "building again changed {:?}", rebuilt);
        prop_assert!(firm.life.reseeded > before);
        let seed = firm.life.seed(&firm.stage);
        let rids: Vec<u64> = firm.life.table.iter().map(|f| f.rid).collect();
        let records: Vec<u64> = firm.life.records.iter().map(|(rid, _)| *rid).collect();
        prop_assert_eq!(&rids, &records);
        for (rid, a) in &firm.life.records {
            prop_assert_eq!(*rid, seed.record(a.event.feed(), &a.event.event_id));
        }

        let staying: Vec<(Arc<Accepted>, isize)> = winners
            .iter()
            .filter(|a| !leaving.iter().any(|l| Arc::ptr_eq(a, l)))
            .map(|a| (Arc::clone(a), -1))
            .collect();
        firm.step(&staying);
        prop_assert_eq!(&firm.pushed, &firm.scratch());
        prop_assert!(firm.pushed.is_empty(), "left over: {:?}", firm.pushed);
        prop_assert!(firm.life.is_empty());
        Ok(seen)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// [`steps`] under one seed.
        #[test]
        fn the_changes_add_up_to_the_output_from_scratch(
            ops in proptest::collection::vec(op(), 1..40),
            cut in 0usize..40,
            fate in proptest::collection::vec(0u8..3, 40),
        ) {
            steps(Seed::new(7), &ops, cut, &fate)?;
        }

        /// D105: under fingerprints cut to 10 bits, an enterprise's ids, the ids its
        /// retractions and repairs name, and its keys collide often; the stage pushes what
        /// it pushes under whole fingerprints after every step (the table is built again
        /// under the next seed wherever a fingerprint would stand for two texts).
        #[test]
        fn colliding_fingerprints_change_nothing(
            ops in proptest::collection::vec(op(), 1..40),
            cut in 0usize..40,
            fate in proptest::collection::vec(0u8..3, 40),
        ) {
            let whole = steps(Seed::new(7), &ops, cut, &fate)?;
            let weak = steps(Seed::weak(7, 10), &ops, cut, &fate)?;
            prop_assert_eq!(weak, whole);
        }
    }

    /// A seed of 8-bit fingerprints under which `collide` holds (keys tried in turn).
    fn weak_seed_where(collide: impl Fn(Seed) -> bool) -> Seed {
        (0..)
            .map(|k| Seed::weak(k, 8))
            .find(|s| collide(*s))
            .expect("some key makes two 8-bit fingerprints equal")
    }

    /// What the stage pushed after each step of `steps` under `seed`, and how many times it
    /// built the table again.
    fn pushed(
        seed: Seed,
        steps: &[Vec<(Arc<Accepted>, isize)>],
    ) -> (Vec<Vec<(Derived, isize)>>, u8) {
        let (own, _) = winners(&[]);
        let mut firm = Stepped {
            own,
            stage: Stage::new(&Arc::new(Catalogue::embedded()), seed),
            life: TableLife::default(),
            pushed: Vec::new(),
        };
        let seen = steps
            .iter()
            .map(|changes| {
                firm.step(changes);
                firm.pushed.clone()
            })
            .collect();
        (seen, firm.life.reseeded)
    }

    /// D105: two loans whose keys collide, and a revocation naming a penalty that is not
    /// there by an id that collides with another penalty's, arriving one by one in either
    /// order or together: the table is built again under the next seed, and the stage
    /// pushes what it pushes under whole fingerprints (two loans overdue; the revocation a
    /// dead letter, the other penalty in effect).
    #[test]
    fn a_key_or_a_named_id_standing_for_two_texts_builds_the_table_again() {
        let record = |template, id, other, day| {
            Arc::new(generator::ops::record(&Op::at(template, day, id, other)).expect("a record"))
        };
        let loans = (
            [record(17, 1, 1, 10), record(17, 2, 2, 20)],
            weak_seed_where(|s| s.business_key(Feed::Fin, "L1") == s.business_key(Feed::Fin, "L2")),
        );
        let revoked = (
            [record(0, 2, 0, 10), record(2, 0, 1, 20)],
            weak_seed_where(|s| s.record(Feed::Pen, "p1") == s.record(Feed::Pen, "p2")),
        );
        for ([a, b], seed) in [loans, revoked] {
            let enter = |rs: &[&Arc<Accepted>]| rs.iter().map(|a| (Arc::clone(a), 1)).collect();
            let orders = [
                vec![enter(&[&a]), enter(&[&b])],
                vec![enter(&[&b]), enter(&[&a])],
                vec![enter(&[&a, &b])],
            ];
            for steps in orders {
                let (whole, _) = pushed(Seed::new(7), &steps);
                let (weak, reseeded) = pushed(seed, &steps);
                assert_eq!(weak, whole);
                assert!(reseeded > 0, "the table was not built again");
            }
        }
    }
}
