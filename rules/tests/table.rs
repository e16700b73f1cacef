//! Engine v2's record table (`rules::table`, D93) against `rules::lifecycle`: after every
//! step of random record streams (versions arriving, then records leaving in a random
//! order), every record's view equals what `resolve_enterprise` says of the enterprise's
//! winners, and `Table::update` reports exactly the records whose view changed. Packing is
//! lossless, a record with times before 2000 included.

use std::collections::{BTreeMap, BTreeSet};

// Shared builders, of which this test uses two.
#[allow(dead_code)]
mod common;

use chrono::NaiveDate;
use generator::ops::{log_of, op, op_crowded, op_in, op_near, Op};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use rules::catalogue::{Catalogue, RepairFlag, ROWS};
use rules::event::{Body, Feed, RegStatus, TaxGrade};
use rules::fact::{commitment_events, derive, CommitmentEvent, Fact, Ids, Place, Src, Text};
use rules::indicators::{local, local_by, Local};
use rules::lifecycle::{resolve_enterprise, resolve_versions, Accepted, Ending, Resolved};
use rules::reject::Reason;
use rules::rename::{self, Rename};
use rules::status::{of_enterprise, Step};
use rules::table::{
    collision, enterprise_facts, enterprise_steps, fact_changes, place, Changes, Context, Delta,
    Fields, KindSet, Packed, Seed, Table, TableError, View,
};
use rules::time::Ts;
use rules::uscc::Uscc;
use rules::CompactString;
use serde_json::{json, Value};

/// Payments against a record: time and amount, sorted.
type Payments = Vec<(Ts, Option<i64>)>;

const SEED: Seed = Seed::new(0x5eed_2026_1206);

/// The templates with lifecycle links (records that retractions and repairs name, the
/// retractions, repairs and revocations), in one enterprise: links form far more often.
const LINKED: &[u8] = &[
    0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 15, 16, 17, 18, 28, 33, 34, 35, 36, 37, 38, 39, 40, 41,
];

/// The templates with a business key (a penalty decision, a court case, a loan, an account,
/// a person, a commitment).
const KEYED: &[u8] = &[
    0, 1, 3, 12, 13, 14, 15, 16, 17, 18, 24, 25, 26, 27, 32, 37, 38, 42,
];

/// Commitments published, verified (often to RECTIFY, with a deadline 21 days on) and
/// rectified at midnight, within a month: rectifications tie, and fall on deadlines.
const COMMITTED: &[u8] = &[27, 32, 42];

/// Annual reports (of zero tax, and of zero staff or not) against the year's tax paid and
/// insured staff: the year's group (rows 15–16) reads the tax records only against a report
/// of zero.
const YEARLY: &[u8] = &[11, 30, 41];

/// The lifecycle of one enterprise in a form both sides give: by record fingerprint,
/// payments sorted, revocations by the latest revoking event time.
#[derive(Debug, Default, PartialEq)]
struct Canon {
    records: BTreeMap<u64, (Ending, Payments)>,
    letters: BTreeSet<(u64, Reason, Ts)>,
    repairs: BTreeSet<(u64, Option<u64>, Ts)>,
    flags: BTreeSet<(u64, RepairFlag)>,
    revoked: BTreeMap<u64, Ts>,
    known: bool,
}

fn rid(a: &Accepted) -> u64 {
    SEED.record(a.event.feed(), &a.event.event_id)
}

fn of_reference(res: &Resolved<'_>) -> Canon {
    let mut c = Canon {
        known: res.is_known(),
        ..Canon::default()
    };
    for (i, a) in res.records.iter().enumerate() {
        let mut pays: Payments = res
            .payments
            .get(&i)
            .into_iter()
            .flatten()
            .map(|p| (p.at, p.amount_fen))
            .collect();
        pays.sort();
        c.records.insert(rid(a), (res.endings[i], pays));
    }
    for d in &res.dead {
        c.letters
            .insert((SEED.record(d.id.0, &d.id.1), d.reason, d.at));
    }
    for (rep, target, at) in &res.repairs {
        c.repairs
            .insert((rid(rep), target.map(|i| rid(res.records[i])), *at));
    }
    for (rep, flag) in &res.flags {
        c.flags.insert((rid(rep), *flag));
    }
    for (id, t) in &res.revoked_repairs {
        c.revoked.insert(SEED.record(Feed::Rpr, id), *t);
    }
    c
}

fn of_table(table: &Table, cat: &Catalogue) -> Canon {
    let mut c = Canon {
        known: table.is_known(cat),
        letters: table.letters(cat).into_iter().collect(),
        ..Canon::default()
    };
    for (rid, view) in table.views(cat) {
        match view {
            View::Record { ending, payments } => {
                let pays = payments.iter().map(|p| (p.at, p.amount_fen)).collect();
                c.records.insert(rid, (ending, pays));
            }
            View::Retraction { revokes, .. } => {
                if let Some(p) = revokes {
                    let t = table.get(rid).expect("a viewed record").event_time;
                    let latest = c.revoked.entry(p).or_insert(t);
                    *latest = (*latest).max(t);
                }
            }
            View::Repair(r) => {
                if let Some((target, at)) = r.applied {
                    c.repairs.insert((rid, target, at));
                }
                c.flags.extend(r.flags.iter().map(|f| (rid, *f)));
            }
        }
    }
    c
}

/// The reference's names as the table's: keys as fingerprints, enterprises as packed
/// codes, a place as the codes its record carries, the source as its record's fingerprint.
struct ToPacked;

impl Rename<Text, Packed> for ToPacked {
    fn key(&self, key: &CompactString, feed: Feed, _: Option<&Src>) -> u64 {
        SEED.business_key(feed, key)
    }

    fn firm(&self, firm: &CompactString) -> Uscc {
        Uscc::admitted(firm)
    }

    fn place(&self, p: &Box<Place>, _: &Src) -> u8 {
        place(p.region.is_some(), p.industry.is_some())
    }

    fn src(&self, src: &Src) -> u64 {
        SEED.record(src.0, &src.1)
    }
}

/// A reference fact in the table's names.
fn packed(fact: &Fact) -> Fact<Packed> {
    rename::fact(fact, &ToPacked)
}

/// A reference commitment event in the table's names.
fn packed_event(e: &CommitmentEvent) -> CommitmentEvent<Packed> {
    rename::event(e, &ToPacked)
}

/// One enterprise's visible versions, its winners and its table.
struct Enterprise<'a> {
    own: Uscc,
    versions: BTreeMap<(Feed, String), Vec<&'a Accepted>>,
    table: Table,
    /// A second table, kept by `fact_changes`, and the facts its changes add up to.
    facts_table: Table,
    facts: BTreeMap<Fact<Packed>, usize>,
    /// The status steps its changes add up to.
    steps: BTreeMap<(u64, Step), usize>,
    /// The commitment events its changes add up to.
    events: BTreeMap<CommitmentEvent<Packed>, usize>,
    /// The dead letters its changes add up to.
    letters: BTreeMap<(u64, Reason, Ts), usize>,
    /// Every winner's event id, for ties on both times.
    ids: BTreeMap<u64, &'a str>,
}

impl<'a> Enterprise<'a> {
    fn winners(&self) -> Vec<&'a Accepted> {
        self.versions
            .values()
            .filter_map(|vs| resolve_versions(vs).winner)
            .collect()
    }

    fn winner(&self, id: &(Feed, String)) -> Option<&'a Accepted> {
        self.versions
            .get(id)
            .and_then(|vs| resolve_versions(vs).winner)
    }

    /// Makes `id`'s versions `vs`, updates the table by the winner's change and checks the
    /// step.
    fn set(
        &mut self,
        id: (Feed, String),
        vs: Vec<&'a Accepted>,
        cat: &Catalogue,
    ) -> Result<(), TestCaseError> {
        let old = self.winner(&id);
        if vs.is_empty() {
            self.versions.remove(&id);
        } else {
            self.versions.insert(id.clone(), vs);
        }
        let new = self.winner(&id);
        let mut changes = Vec::new();
        if let Some(o) = old {
            changes.push((Fields::of(o, SEED), -1));
        }
        if let Some(n) = new {
            changes.push((Fields::of(n, SEED), 1));
        }
        if changes.len() == 2 && changes[0].0 == changes[1].0 {
            changes.clear();
        }
        for a in old.into_iter().chain(new) {
            self.ids.insert(rid(a), a.event.event_id.as_str());
        }
        let ids = self.ids.clone();
        let ties = |x: u64, y: u64| ids[&x].cmp(ids[&y]);
        let offsite = KindSet::offsite(cat);
        let cx = Context {
            own: self.own,
            seed: SEED,
            ties: &ties,
            cat,
            offsite: &offsite,
        };
        let changed = fact_changes(&mut self.facts_table, &changes, &cx)
            .map_err(|e| TestCaseError::fail(format!("fact changes failed: {e}")))?;
        add_up(&mut self.steps, changed.steps)?;
        add_up(&mut self.events, changed.events)?;
        add_up(&mut self.letters, changed.letters)?;
        add_up(&mut self.facts, changed.facts)?;
        let before: BTreeMap<u64, View> = self.table.views(cat).into_iter().collect();
        let deltas = self
            .table
            .update(&changes, cat)
            .map_err(|e| TestCaseError::fail(format!("update failed: {e}")))?;
        let after: BTreeMap<u64, View> = self.table.views(cat).into_iter().collect();
        let rids: BTreeSet<u64> = before.keys().chain(after.keys()).copied().collect();
        let expected: Vec<Delta> = rids
            .into_iter()
            .filter_map(|rid| {
                let (b, a) = (before.get(&rid).cloned(), after.get(&rid).cloned());
                (b != a).then_some(Delta {
                    rid,
                    before: b,
                    after: a,
                })
            })
            .collect();
        let mut got = deltas;
        got.sort_by_key(|d| d.rid);
        prop_assert_eq!(got, expected, "the deltas are not the changes");
        let winners = self.winners();
        let resolved = resolve_enterprise(&winners, cat);
        let canon = of_table(&self.table, cat);
        let kept: BTreeSet<(u64, Reason, Ts)> = self.letters.keys().copied().collect();
        prop_assert!(self.letters.values().all(|n| *n == 1));
        prop_assert_eq!(&kept, &canon.letters, "dead letters kept by the changes");
        prop_assert_eq!(canon, of_reference(&resolved));
        prop_assert_eq!(self.table.len(), winners.len());
        let mut facts: Vec<Fact<Packed>> = derive(&resolved, cat).iter().map(packed).collect();
        facts.sort();
        let got = enterprise_facts(&self.table, &cx);
        prop_assert_eq!(&got.facts, &facts);
        // The commitment events, from scratch and kept by the changes.
        let mut events: Vec<CommitmentEvent<Packed>> = commitment_events(&resolved, cat)
            .iter()
            .map(packed_event)
            .collect();
        events.sort();
        events.dedup();
        prop_assert_eq!(&got.events, &events, "commitment events");
        let kept: Vec<CommitmentEvent<Packed>> = self.events.keys().cloned().collect();
        prop_assert!(self.events.values().all(|n| *n == 1));
        prop_assert_eq!(&kept, &events, "commitment events kept by the changes");
        let ids = &self.ids;
        // The facts kept by the changes alone are the same.
        let kept: Vec<Fact<Packed>> = self
            .facts
            .iter()
            .flat_map(|(f, n)| std::iter::repeat_n(f.clone(), *n))
            .collect();
        prop_assert_eq!(&kept, &facts);
        // The status steps, from scratch and kept by the changes.
        let text = derive(&resolved, cat);
        let mut want: Vec<(u64, Step)> = of_enterprise(&resolved, &text)
            .into_iter()
            .map(|(a, s)| (rid(a), s))
            .collect();
        want.sort();
        prop_assert_eq!(&enterprise_steps(&self.table, &facts, cat), &want, "steps");
        let kept: Vec<(u64, Step)> = self
            .steps
            .iter()
            .flat_map(|(s, n)| std::iter::repeat_n(*s, *n))
            .collect();
        prop_assert_eq!(&kept, &want, "steps kept by the changes");
        // The rows over them, at the instants where facts start and end.
        let by_rid: BTreeMap<u64, &Accepted> = winners.iter().map(|a| (rid(a), *a)).collect();
        let ties = |x: &u64, y: &u64| ids[x].cmp(ids[y]);
        for t in instants(&text) {
            let want: Vec<&Fact> = text.iter().filter(|f| f.active_at(t)).collect();
            let got: Vec<&Fact<Packed>> = facts.iter().filter(|f| f.active_at(t)).collect();
            prop_assert_eq!(
                Rows::of_packed(&local_by(&got, cat, &ties), &by_rid),
                Rows::of_text(&local(&want, cat)),
                "rows at {}",
                t
            );
        }
        Ok(())
    }
}

/// Applies `changes` to the multiset `kept`: nothing removed that was not there.
fn add_up<T: Ord>(kept: &mut BTreeMap<T, usize>, changes: Changes<T>) -> Result<(), TestCaseError> {
    for x in changes.removed {
        match kept.get_mut(&x) {
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                kept.remove(&x);
            }
            None => prop_assert!(false, "a change removed what was not there"),
        }
    }
    for x in changes.added {
        *kept.entry(x).or_default() += 1;
    }
    Ok(())
}

/// Up to eight instants where facts start or end, spread over them.
fn instants(facts: &[Fact]) -> Vec<Ts> {
    let all: BTreeSet<Ts> = facts
        .iter()
        .flat_map(|f| [f.start, f.end])
        .filter(|t| (Ts::MIN + 1..Ts::MAX).contains(t))
        .collect();
    let all: Vec<Ts> = all.into_iter().collect();
    let step = all.len().div_ceil(8).max(1);
    all.into_iter().step_by(step).collect()
}

/// What the rows decide, in names both sides give: records by fingerprint, persons by
/// their key's, enterprises packed, region and industry as codes.
#[derive(Debug, PartialEq)]
struct Rows {
    r: [f64; ROWS],
    evidence: Vec<BTreeSet<u64>>,
    counts: [i64; 3],
    flags_of_state: [bool; 3],
    grade: Option<TaxGrade>,
    legal_rep: Option<(u64, u64)>,
    relations: [BTreeSet<(Uscc, u64)>; 2],
    status: Option<RegStatus>,
    p: Option<i64>,
    codes: [Option<String>; 2],
    flags: BTreeSet<(RepairFlag, u64)>,
}

impl Rows {
    fn new<I: Ids>(l: &Local<I>, src: impl Fn(&I::Src) -> u64) -> Rows {
        Rows {
            r: l.r_values(),
            evidence: (1..=44)
                .map(|row| l.evidence(row).iter().map(&src).collect())
                .collect(),
            counts: [
                i64::from(l.serious_penalties),
                i64::from(l.broken_commitments),
                l.tax_paid_fen,
            ],
            flags_of_state: [l.overdue_over_90, l.established, l.young],
            grade: l.tax_grade,
            legal_rep: None,
            relations: [BTreeSet::new(), BTreeSet::new()],
            status: l.status,
            p: l.p,
            codes: [None, None],
            flags: BTreeSet::new(),
        }
    }

    fn of_text(l: &Local) -> Rows {
        let src = |s: &Src| SEED.record(s.0, &s.1);
        let firms = |xs: &[(CompactString, Src)]| -> BTreeSet<(Uscc, u64)> {
            xs.iter()
                .map(|(u, s)| (Uscc::admitted(u), src(s)))
                .collect()
        };
        Rows {
            legal_rep: l
                .legal_rep
                .as_ref()
                .map(|(p, s)| (SEED.business_key(Feed::Per, p), src(s))),
            relations: [firms(&l.shareholders), firms(&l.investments)],
            codes: [l.region.as_deref(), l.industry.as_deref()].map(|c| c.map(str::to_owned)),
            flags: l
                .flags()
                .iter()
                .map(|(f, id)| (*f, SEED.record(Feed::Rpr, id)))
                .collect(),
            ..Rows::new(l, src)
        }
    }

    fn of_packed(l: &Local<Packed>, records: &BTreeMap<u64, &Accepted>) -> Rows {
        let reg = |rid: &u64| match &records[rid].event.body {
            Body::Reg(r) => r.clone(),
            b => panic!("a place from {b:?}"),
        };
        Rows {
            legal_rep: l.legal_rep,
            relations: [
                l.shareholders.iter().copied().collect(),
                l.investments.iter().copied().collect(),
            ],
            codes: [
                l.region
                    .and_then(|rid| reg(&rid).region_code.map(|c| c.to_string())),
                l.industry
                    .and_then(|rid| reg(&rid).industry_code.map(|c| c.to_string())),
            ],
            flags: l.flags().iter().copied().collect(),
            ..Rows::new(l, |s| *s)
        }
    }
}

/// Feeds `log` record by record, then takes the records away in the order `leave` shuffles
/// them to, checking every step.
fn check(log: &[Accepted], leave: &[usize], cat: &Catalogue) -> Result<(), TestCaseError> {
    let mut ents: BTreeMap<String, Enterprise<'_>> = BTreeMap::new();
    let id = |a: &Accepted| (a.event.feed(), a.event.event_id.to_string());
    for a in log {
        let e = ents
            .entry(a.event.uscc.to_string())
            .or_insert_with(|| Enterprise {
                own: Uscc::admitted(&a.event.uscc),
                versions: BTreeMap::new(),
                table: Table::default(),
                facts_table: Table::default(),
                facts: BTreeMap::new(),
                steps: BTreeMap::new(),
                letters: BTreeMap::new(),
                events: BTreeMap::new(),
                ids: BTreeMap::new(),
            });
        let mut vs = e.versions.get(&id(a)).cloned().unwrap_or_default();
        vs.push(a);
        e.set(id(a), vs, cat)?;
    }
    let mut order: Vec<usize> = (0..log.len()).collect();
    for (i, j) in leave.iter().enumerate().take(log.len()) {
        order.swap(i, j % log.len());
    }
    for i in order {
        let a = &log[i];
        let e = ents.get_mut(a.event.uscc.as_str()).expect("an enterprise");
        let mut vs = e.versions.get(&id(a)).cloned().unwrap_or_default();
        vs.retain(|v| !std::ptr::eq(*v, a));
        e.set(id(a), vs, cat)?;
    }
    for e in ents.values() {
        prop_assert!(e.table.is_empty());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_table_equals_the_lifecycle_after_every_step(
        ops in proptest::collection::vec(op(), 1..60),
        leave in proptest::collection::vec(any::<usize>(), 60),
    ) {
        check(&log_of(&ops), &leave, &Catalogue::embedded())?;
    }

    #[test]
    fn the_table_equals_the_lifecycle_where_records_tie(
        ops in proptest::collection::vec(op_crowded(), 1..40),
        leave in proptest::collection::vec(any::<usize>(), 40),
    ) {
        check(&log_of(&ops), &leave, &Catalogue::embedded())?;
    }

    #[test]
    fn the_table_equals_the_lifecycle_where_links_are_dense(
        ops in proptest::collection::vec(op_in(LINKED), 1..40),
        leave in proptest::collection::vec(any::<usize>(), 40),
    ) {
        check(&log_of(&ops), &leave, &Catalogue::embedded())?;
    }

    #[test]
    fn the_table_equals_the_lifecycle_where_commitments_crowd(
        ops in proptest::collection::vec(op_near(COMMITTED, 30), 1..60),
        leave in proptest::collection::vec(any::<usize>(), 30),
    ) {
        check(&log_of(&ops), &leave, &Catalogue::embedded())?;
    }

    #[test]
    fn the_table_equals_the_lifecycle_where_reports_meet_taxes(
        ops in proptest::collection::vec(op_in(YEARLY), 1..40),
        leave in proptest::collection::vec(any::<usize>(), 40),
    ) {
        check(&log_of(&ops), &leave, &Catalogue::embedded())?;
    }

    /// A record packs into 48 bytes and back unchanged, also when its times lie before
    /// 2000 or after 2136, or its dates outside 2000–2179 (then it spills to the overflow
    /// list).
    #[test]
    fn packing_loses_nothing(
        ops in proptest::collection::vec(op(), 1..30),
        shifts in proptest::collection::vec(prop_oneof![Just(0i64), -2_000_000_000i64..5_000_000_000], 30),
        dates in proptest::collection::vec(proptest::option::of((0usize..3, -40_000i64..80_000)), 30),
    ) {
        let cat = Catalogue::embedded();
        let mut table = Table::default();
        let mut seen = BTreeSet::new();
        let day_zero = NaiveDate::from_ymd_opt(2000, 1, 1).expect("a date");
        for ((a, shift), date) in log_of(&ops).into_iter().zip(shifts).zip(dates) {
            let mut a = a;
            a.event.event_time += shift;
            let mut f = Fields::of(&a, SEED);
            if let Some((i, days)) = date {
                f.dates[i] = day_zero.checked_add_signed(chrono::TimeDelta::days(days));
            }
            if !seen.insert(f.rid) {
                prop_assert_eq!(table.update(&[(f, 1)], &cat), Err(TableError::Collision(f.rid)));
                continue;
            }
            table.update(&[(f, 1)], &cat).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(table.get(f.rid), Some(f));
        }
        let all: Vec<Fields> = table.iter().collect();
        for f in &all {
            prop_assert_eq!(table.get(f.rid), Some(*f));
        }
        let removals: Vec<(Fields, isize)> = all.iter().map(|f| (*f, -1)).collect();
        table.update(&removals, &cat).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(table.is_empty());
    }
}

/// A long fixed stream reaches every part of the lifecycle: letters of each reason,
/// payments, voided and revoked endings, repairs with and without targets, each flag and
/// revoked repairs; the table equals the reference all along.
#[test]
fn a_long_stream_reaches_every_case() {
    let cat = Catalogue::embedded();
    let mut runner = TestRunner::deterministic();
    // A penalty repaired ten days later, before its minimum publicity ends, then random
    // operations.
    let at = |template: u8, day: i64, id: u8| Op::at(template, day, id, 0);
    let ops: Vec<Op> = [at(0, 100, 0), at(28, 110, 1)]
        .into_iter()
        .chain((0..3000).map(|_| op().new_tree(&mut runner).expect("an op").current()))
        .collect();
    let log = log_of(&ops);
    let mut seen = Canon::default();
    let mut ents: BTreeMap<String, Vec<&Accepted>> = BTreeMap::new();
    let mut voided = false;
    let mut revocation_ending = false;
    for (n, a) in log.iter().enumerate() {
        ents.entry(a.event.uscc.to_string()).or_default().push(a);
        if n % 50 != 49 {
            continue;
        }
        for vs in ents.values() {
            let mut versions: BTreeMap<_, Vec<&Accepted>> = BTreeMap::new();
            for a in vs {
                versions.entry(a.id()).or_default().push(*a);
            }
            let winners: Vec<&Accepted> = versions
                .values()
                .filter_map(|v| resolve_versions(v).winner)
                .collect();
            let mut table = Table::default();
            let changes: Vec<(Fields, isize)> =
                winners.iter().map(|a| (Fields::of(a, SEED), 1)).collect();
            table.update(&changes, &cat).expect("no collision");
            let c = of_table(&table, &cat);
            assert_eq!(c, of_reference(&resolve_enterprise(&winners, &cat)));
            voided |= c.records.values().any(|(e, _)| e.voided);
            revocation_ending |= c.records.values().any(|(e, _)| e.revoked && !e.voided);
            seen.records
                .extend(c.records.into_iter().filter(|(_, (_, p))| !p.is_empty()));
            seen.letters.extend(c.letters);
            seen.repairs.extend(c.repairs);
            seen.flags.extend(c.flags);
            seen.revoked.extend(c.revoked);
        }
    }
    assert!(voided && revocation_ending);
    assert!(!seen.records.is_empty(), "no payments");
    let reasons: BTreeSet<Reason> = seen.letters.iter().map(|l| l.1).collect();
    assert_eq!(reasons.len(), 2, "letters: {reasons:?}");
    assert!(seen.repairs.iter().any(|r| r.1.is_some()));
    let flags: BTreeSet<RepairFlag> = seen.flags.iter().map(|f| f.1).collect();
    assert_eq!(flags.len(), 3, "flags: {flags:?}");
    assert!(!seen.revoked.is_empty());
}

/// D92's inventory, field by field: changing a field the engine reads changes the record's
/// `Fields`, and changing one it does not read leaves them as they were. Each case is a
/// kind, its other fields, the field and two values.
#[test]
fn the_fields_hold_what_the_engine_reads_and_nothing_else() {
    type Case = (
        &'static str,
        &'static str,
        Value,
        &'static str,
        Value,
        Value,
    );
    let d = |s: &str| json!(s);
    let read: Vec<Case> = vec![
        (
            "PEN",
            "DECIDED",
            json!({"decision_no": "D1"}),
            "fine_fen",
            json!(5),
            json!(6),
        ),
        (
            "PEN",
            "DECIDED",
            json!({"fine_fen": 1}),
            "confiscation_fen",
            json!(5),
            json!(6),
        ),
        ("PEN", "DECIDED", json!({}), "decision_no", d("D1"), d("D2")),
        (
            "PEN",
            "DECIDED",
            json!({}),
            "dishonesty_class",
            d("GENERAL"),
            d("SERIOUS"),
        ),
        (
            "PEN",
            "DECIDED",
            json!({}),
            "publicity_max_end",
            d("2024-01-01"),
            d("2024-01-02"),
        ),
        (
            "PEN",
            "DECIDED",
            json!({}),
            "publicity_min_end",
            d("2023-01-01"),
            d("1999-12-31"),
        ),
        (
            "PEN",
            "PERFORMED",
            json!({}),
            "due_date",
            d("2023-01-01"),
            d("2180-01-01"),
        ),
        (
            "PEN",
            "REVOKED",
            json!({}),
            "ref_event_id",
            d("p1"),
            d("p2"),
        ),
        (
            "LIST",
            "LISTED",
            json!({}),
            "list_kind",
            d("ABNORMAL"),
            d("SERIOUS_ILLEGAL"),
        ),
        (
            "TAX",
            "GRADE",
            json!({"grade": "A"}),
            "eval_year",
            json!(2021),
            json!(2022),
        ),
        (
            "TAX",
            "GRADE",
            json!({"eval_year": 2021}),
            "grade",
            d("A"),
            d("D"),
        ),
        (
            "TAX",
            "PAID",
            json!({"period": "2022-01"}),
            "amount_fen",
            json!(1),
            json!(2),
        ),
        (
            "TAX",
            "PAID",
            json!({"amount_fen": 1}),
            "period",
            d("2022-01"),
            d("2022-02"),
        ),
        (
            "TAX",
            "DECLARED",
            json!({"period": "2022-01"}),
            "sales_fen",
            json!(0),
            json!(2),
        ),
        (
            "TAX",
            "SOCIAL_INSURANCE",
            json!({}),
            "insured_count",
            json!(3),
            json!(4),
        ),
        (
            "TAX",
            "ARREARS_PAID",
            json!({"ref_event_id": "t"}),
            "amount_fen",
            json!(1),
            json!(2),
        ),
        (
            "JUD",
            "CASE_FILED",
            json!({"court_code": "C"}),
            "case_no",
            d("K1"),
            d("K2"),
        ),
        (
            "JUD",
            "CASE_FILED",
            json!({"case_no": "K"}),
            "court_code",
            d("C1"),
            d("C2"),
        ),
        (
            "JUD",
            "CASE_FILED",
            json!({}),
            "role",
            d("DEFENDANT"),
            d("PLAINTIFF"),
        ),
        (
            "JUD",
            "ENFORCEMENT_FILED",
            json!({}),
            "amount_fen",
            json!(1),
            json!(2),
        ),
        (
            "JUD",
            "ENFORCEMENT_FILED",
            json!({}),
            "due_date",
            d("2023-01-01"),
            d("2023-01-02"),
        ),
        (
            "JUD",
            "ENFORCEMENT_TERMINATED",
            json!({}),
            "unpaid_fen",
            json!(1),
            json!(2),
        ),
        (
            "JUD",
            "DISHONEST_LISTED",
            json!({}),
            "list_until",
            d("2023-01-01"),
            d("2023-01-02"),
        ),
        (
            "JUD",
            "CASE_CLOSED",
            json!({}),
            "close_reason",
            d("WITHDRAWN"),
            d("JUDGED"),
        ),
        (
            "FIN",
            "OVERDUE_LISTED",
            json!({}),
            "loan_id",
            d("L1"),
            d("L2"),
        ),
        (
            "FIN",
            "OVERDUE_LISTED",
            json!({}),
            "overdue_days",
            json!(1),
            json!(2),
        ),
        (
            "FIN",
            "OVERDUE_UPDATED",
            json!({}),
            "overdue_fen",
            json!(1),
            json!(2),
        ),
        (
            "FIN",
            "SUSPICIOUS_ACCOUNT",
            json!({}),
            "account_hash",
            d("A1"),
            d("A2"),
        ),
        (
            "REG",
            "CAPITAL",
            json!({}),
            "registered_capital_fen",
            json!(1),
            json!(2),
        ),
        (
            "REG",
            "CAPITAL",
            json!({}),
            "paid_in_fen",
            json!(1),
            json!(2),
        ),
        (
            "REG",
            "EQUITY_PLEDGE",
            json!({}),
            "share_bp",
            json!(1),
            json!(2),
        ),
        (
            "REG",
            "ADDRESS_CLUSTER",
            json!({}),
            "address_firm_count",
            json!(1),
            json!(2),
        ),
        (
            "REG",
            "ANNUAL_REPORT",
            json!({}),
            "report_year",
            json!(2021),
            json!(2022),
        ),
        (
            "REG",
            "ANNUAL_REPORT",
            json!({}),
            "reported_tax_fen",
            json!(0),
            json!(5),
        ),
        (
            "REG",
            "ANNUAL_REPORT",
            json!({}),
            "reported_staff",
            json!(0),
            json!(5),
        ),
        (
            "REG",
            "SHAREHOLDER",
            json!({"share_bp": 600}),
            "counterparty_uscc",
            json!(common::code(1)),
            json!(common::code(2)),
        ),
        (
            "REG",
            "INVESTMENT",
            json!({}),
            "share_bp",
            json!(1),
            json!(2),
        ),
        (
            "REG",
            "CHANGED",
            json!({}),
            "change_field",
            d("LEGAL_REP"),
            d("OTHER"),
        ),
        (
            "REG",
            "STATUS",
            json!({}),
            "status",
            d("ACTIVE"),
            d("REVOKED"),
        ),
        (
            "REG",
            "STATUS",
            json!({}),
            "region_code",
            json!(null),
            d("330802"),
        ),
        (
            "REG",
            "ESTABLISHED",
            json!({}),
            "industry_code",
            json!(null),
            d("I1"),
        ),
        ("PER", "SCORE", json!({}), "person_hash", d("P1"), d("P2")),
        ("PER", "SCORE", json!({}), "score", json!(1), json!(2)),
        (
            "PER",
            "SCORE",
            json!({}),
            "scale_max",
            json!(100),
            json!(1000),
        ),
        (
            "PER",
            "ROLE",
            json!({}),
            "role",
            d("LEGAL_REP"),
            d("EXECUTIVE"),
        ),
        ("PCS", "SCORE", json!({}), "score", json!(1), json!(2)),
        (
            "PCS",
            "HONOUR",
            json!({}),
            "valid_until",
            d("2023-01-01"),
            d("2023-01-02"),
        ),
        (
            "CMT",
            "PUBLISHED",
            json!({}),
            "commitment_id",
            d("K1"),
            d("K2"),
        ),
        (
            "CMT",
            "PUBLISHED",
            json!({}),
            "matter",
            d("FINANCING"),
            d("OTHER"),
        ),
        (
            "CMT",
            "PUBLISHED",
            json!({}),
            "type",
            d("APPROVAL"),
            d("VOLUNTARY"),
        ),
        (
            "CMT",
            "PUBLISHED",
            json!({}),
            "valid_until",
            d("2023-01-01"),
            d("2023-01-02"),
        ),
        (
            "CMT",
            "VERIFIED",
            json!({}),
            "result",
            d("NORMAL"),
            d("BROKEN"),
        ),
        (
            "CMT",
            "VERIFIED",
            json!({}),
            "rectify_deadline",
            d("2023-01-01"),
            d("2023-01-02"),
        ),
        (
            "CMT",
            "SCHEDULED",
            json!({}),
            "method",
            d("RANDOM"),
            d("ONSITE"),
        ),
        (
            "RPR",
            "COMPLETED",
            json!({"target_feed": "PEN"}),
            "target_event_id",
            d("p1"),
            d("p2"),
        ),
        (
            "RPR",
            "COMPLETED",
            json!({"target_event_id": "p1"}),
            "target_feed",
            d("PEN"),
            d("LIST"),
        ),
        (
            "RPR",
            "COMPLETED",
            json!({}),
            "effective_time",
            d("2023-01-01T00:00:00Z"),
            d("2023-01-02T00:00:00Z"),
        ),
        (
            "RPR",
            "REVOKED",
            json!({}),
            "ref_event_id",
            d("r1"),
            d("r2"),
        ),
        ("INSP", "RESULT", json!({}), "result", d("PASS"), d("FAIL")),
    ];
    let unread: Vec<Case> = vec![
        ("PEN", "DECIDED", json!({}), "source_org", d("A"), d("B")),
        (
            "PEN",
            "DECIDED",
            json!({}),
            "penalty_types",
            json!(["fine"]),
            json!(["warning"]),
        ),
        ("PEN", "DECIDED", json!({}), "domain", d("A"), d("B")),
        ("LIST", "LISTED", json!({}), "reason_code", d("A"), d("B")),
        (
            "TAX",
            "ARREARS_ASSESSED",
            json!({}),
            "late_fee_fen",
            json!(1),
            json!(2),
        ),
        (
            "JUD",
            "CASE_FILED",
            json!({}),
            "cause",
            d("CONTRACT"),
            d("LOAN"),
        ),
        (
            "FIN",
            "OVERDUE_LISTED",
            json!({}),
            "database",
            d("OVERDUE"),
            d("DEBT_EVASION"),
        ),
        (
            "FIN",
            "OVERDUE_LISTED",
            json!({}),
            "lender_code",
            d("B1"),
            d("B2"),
        ),
        (
            "REG",
            "ANNUAL_REPORT",
            json!({}),
            "reported_revenue_fen",
            json!(1),
            json!(2),
        ),
        (
            "REG",
            "STATUS",
            json!({"region_code": "1"}),
            "region_code",
            d("330802"),
            d("330803"),
        ),
        (
            "RPR",
            "COMPLETED",
            json!({}),
            "repair_type",
            d("TAX_CREDIT"),
            d("COMMITMENT"),
        ),
        ("INSP", "RESULT", json!({}), "campaign_id", d("C1"), d("C2")),
        ("PCS", "HONOUR", json!({}), "honour_type", d("A"), d("B")),
    ];
    let fields = |(feed, kind, base, field, _, _): &Case, value: &Value| {
        let mut extra = base.clone();
        if !value.is_null() {
            extra[*field] = value.clone();
        }
        let a = common::rec(0, feed, kind, "e1", "2022-03-01T00:00:00Z", extra);
        Fields::of(&a, SEED)
    };
    for case in &read {
        let (one, two) = (fields(case, &case.4), fields(case, &case.5));
        assert_ne!(one, two, "{} {} reads {}", case.0, case.1, case.3);
    }
    for case in &unread {
        let (one, two) = (fields(case, &case.4), fields(case, &case.5));
        assert_eq!(one, two, "{} {} does not read {}", case.0, case.1, case.3);
    }
}

/// A seed of `bits`-bit fingerprints under which `collide` holds (keys tried in turn).
fn weak_seed_where(bits: u32, collide: impl Fn(Seed) -> bool) -> Seed {
    (0..)
        .map(|k| Seed::weak(k, bits))
        .find(|s| collide(*s))
        .expect("some key makes two short fingerprints equal")
}

/// The first winner of each record id among `log`'s records of enterprise 0.
fn winners_of(log: &[Accepted]) -> Vec<&Accepted> {
    let mut by_id: BTreeMap<(Feed, &str), Vec<&Accepted>> = BTreeMap::new();
    for a in log {
        by_id
            .entry((a.event.feed(), a.event.event_id.as_str()))
            .or_default()
            .push(a);
    }
    by_id
        .values()
        .filter_map(|vs| resolve_versions(vs).winner)
        .collect()
}

/// D105's check from scratch: whether a fingerprint of `records` stands for two texts.
fn collides(records: &[&Accepted], seed: Seed, cat: &Catalogue) -> bool {
    let named: Vec<(Fields, &Accepted)> =
        records.iter().map(|a| (Fields::of(a, seed), *a)).collect();
    let none = |_: u64| -> &Accepted { unreachable!("an empty table stores no record") };
    collision(&Table::default(), &[], &named, &none, seed, cat).is_some()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// D105: under 8-bit fingerprints, so that ids, named ids and keys collide, a change
    /// (some records leaving an enterprise's table whose fingerprints each stand for one
    /// text, others entering) is found to make a fingerprint stand for two texts exactly
    /// when the records after it are, from scratch.
    #[test]
    fn a_change_is_found_to_collide_as_the_records_after_it_are(
        ops in prop_oneof![
            proptest::collection::vec(op_in(LINKED), 1..40),
            proptest::collection::vec(op_in(KEYED), 1..40),
        ],
        cut in 0usize..40,
        leave in proptest::collection::vec(any::<bool>(), 40),
        key in any::<u64>(),
    ) {
        let cat = Catalogue::embedded();
        let seed = Seed::weak(key, 8);
        let log = log_of(&ops);
        let winners = winners_of(&log);
        let (base, entering) = winners.split_at(cut.min(winners.len()));
        prop_assume!(!collides(base, seed, &cat));
        let mut table = Table::default();
        let fields: Vec<(Fields, isize)> = base.iter().map(|a| (Fields::of(a, seed), 1)).collect();
        prop_assume!(table.update(&fields, &cat).is_ok());
        let leaves = |i: usize| leave.get(i).copied().unwrap_or(false);
        let stay: Vec<&Accepted> = (0..base.len()).filter(|i| !leaves(*i)).map(|i| base[i]).collect();
        let mut gone: Vec<u64> = (0..base.len())
            .filter(|i| leaves(*i))
            .map(|i| Fields::of(base[i], seed).rid)
            .collect();
        gone.sort_unstable();
        let stored: BTreeMap<u64, &Accepted> = base.iter().map(|a| (Fields::of(a, seed).rid, *a)).collect();
        let stored = |rid: u64| stored[&rid];
        let named: Vec<(Fields, &Accepted)> = entering.iter().map(|a| (Fields::of(a, seed), *a)).collect();
        let found = collision(&table, &gone, &named, &stored, seed, &cat).is_some();
        let after: Vec<&Accepted> = stay.into_iter().chain(entering.iter().copied()).collect();
        prop_assert_eq!(found, collides(&after, seed, &cat));
    }
}

/// D105: a commitment's matter that the catalogue does not list, under a seed where its
/// fingerprint is a listed matter's, is a collision (it would read the listed matter's
/// kinds); the listed matter itself, or whole fingerprints, are not.
#[test]
fn a_matter_with_a_listed_matters_fingerprint_collides() {
    let cat = Catalogue::embedded();
    let listed = cat
        .commitments
        .matters
        .keys()
        .next()
        .expect("a listed matter")
        .clone();
    let unlisted = "NOT_A_LISTED_MATTER";
    assert!(!cat.commitments.matters.contains_key(unlisted));
    let op = Op::at(32, 10, 1, 0);
    let with_matter = |m: &str| {
        let mut a = generator::ops::record(&op).expect("a commitment");
        match &mut a.event.body {
            Body::Cmt(c) => c.matter = Some(m.into()),
            _ => unreachable!("template 32 is a commitment"),
        }
        a
    };
    let (a, b) = (with_matter(unlisted), with_matter(&listed));
    let weak = weak_seed_where(8, |s| {
        s.business_key(Feed::Cmt, unlisted) == s.business_key(Feed::Cmt, &listed)
    });
    assert!(collides(&[&a], weak, &cat));
    assert!(!collides(&[&b], weak, &cat));
    assert!(!collides(&[&a], SEED, &cat));
}
