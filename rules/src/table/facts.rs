//! Engine v2's facts from the record table (D95–D97): what the records of a table say,
//! each with its interval of event time, named by fingerprints ([`Packed`]) and read from
//! their [`Fields`] and lifecycle [`View`]s.
//!
//! - [`record_facts`]: the facts of one record whose kind reads no other record.
//! - A [`Group`] of records whose facts are derived together (the establishment, a period,
//!   a court case, a loan, an account, a year's annual reports, a decision's obligations,
//!   the commitments). Every fact comes from one record or one group.
//! - [`enterprise_facts`]: every fact of a table, from scratch (for the tests).
//! - [`fact_changes`]: what a change does to the facts, deriving again only the records and
//!   groups it reaches.
//!
//! The steps both this and [`crate::fact::derive`] compute are shared in `fact` (D96).
//! `tests/table.rs` compares the facts with `fact::derive`'s after every step of random
//! streams, and the changes with the facts from scratch.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use crate::catalogue::Catalogue;
use crate::event::{
    ChangeField, CmtKind, CmtResult, CommitmentType, DishonestyClass, Feed, FinKind, InspResult,
    JudKind, JudRole, ListType, PcsKind, PenKind, PerKind, PersonRole, RegKind, RegStatus,
    TaxGrade, TaxKind, VerifyMethod,
};
use crate::fact::{
    annual_steps, arrears_steps, enforcement_steps, firm_age_steps, negative_until, overdue_steps,
    period_steps, publicity_end_of, rectify_window, valid_until, verification_steps, CaseStep,
    Check, Checker, CommitmentEvent, Fact, Ids, PersonScore, What,
};
use crate::lifecycle::Ending;
use crate::reject::Reason;
use crate::status::Step;
use crate::time::{add_months, date_end, Period, Ts, DAY};
use crate::uscc::Uscc;

use super::statuses::{end_of, facts_ends, steps, Basis};
use super::{
    decode, from_signed, listed_matters, to_signed, Fields, Kind, Letters, Seed, Table, TableError,
    Typed, View,
};

/// The kinds the groups select their members by, as bytes: compared without decoding.
const ESTABLISHED: Kind = Kind::of_typed(Typed::Reg(RegKind::Established));
const ANNUAL_REPORT: Kind = Kind::of_typed(Typed::Reg(RegKind::AnnualReport));
const DECLARED: Kind = Kind::of_typed(Typed::Tax(TaxKind::Declared));
const INSURED: Kind = Kind::of_typed(Typed::Tax(TaxKind::SocialInsurance));
const PAID: Kind = Kind::of_typed(Typed::Tax(TaxKind::Paid));
const OVERDUE_LISTED: Kind = Kind::of_typed(Typed::Fin(FinKind::OverdueListed));
const OVERDUE_UPDATED: Kind = Kind::of_typed(Typed::Fin(FinKind::OverdueUpdated));
const SUSPICIOUS: Kind = Kind::of_typed(Typed::Fin(FinKind::SuspiciousAccount));

/// Facts named by fingerprints and packed codes: engine v2's (D95). A key is a fingerprint
/// by the table's [`Seed`], another enterprise its packed [`Uscc`], the source record its
/// fingerprint; a place is which codes its record carries (the strings are read when a state row
/// is written, D92).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Packed;

impl Ids for Packed {
    type Key = u64;
    type Firm = Uscc;
    type Place = u8;
    type Src = u64;
    type Id = u64;
    type Code = u64;

    fn id(src: &u64) -> u64 {
        *src
    }

    /// The record itself for each code it carries ([`super::REGION`], [`super::INDUSTRY`]):
    /// the code is read from the store when a state row is written.
    fn codes(place: &u8, src: &u64) -> [Option<u64>; 2] {
        [super::REGION, super::INDUSTRY].map(|code| (place & code != 0).then_some(*src))
    }
}

/// Collects one record's facts, dropping empty intervals.
struct Out<'a> {
    f: &'a Fields,
    facts: &'a mut Vec<Fact<Packed>>,
}

impl Out<'_> {
    fn push(&mut self, what: What<Packed>, start: Ts, end: Ts) {
        if start < end {
            self.facts.push(Fact {
                what,
                start,
                end,
                order: (self.f.event_time, self.f.ingest_time),
                src: self.f.rid,
            });
        }
    }
}

impl Fields {
    /// A key that may be absent, as the reference groups it: absent is the empty text.
    pub(super) fn key_or_empty(&self, seed: Seed) -> u64 {
        self.key
            .unwrap_or_else(|| seed.business_key(self.kind.feed(), ""))
    }

    /// The end of a counted penalty's publicity, `None` for MINOR or no class.
    fn publicity_end(&self, cat: &Catalogue) -> Option<Ts> {
        let class = decode(DishonestyClass::ALL, self.x);
        publicity_end_of(class, self.dates[0], self.event_time, cat)
    }

    /// For the negative records of row 30: when their effect ends (`Ts::MAX` if open).
    fn negative_end(&self, end: Ts, cat: &Catalogue) -> Option<Ts> {
        match self.kind.feed() {
            Feed::Pen => self.publicity_end(cat).map(|p| p.min(end)),
            Feed::Jud => negative_until(Feed::Jud, self.kind.name(), end, self.dates[1]),
            feed => negative_until(feed, self.kind.name(), end, None),
        }
    }
}

/// Appends the facts of record `f` (of enterprise `own`) whose kind depends on its own
/// record only, given its lifecycle view; a record of a kind read in groups adds only
/// its row-30 fact here.
pub fn record_facts(
    f: &Fields,
    view: &View,
    own: Uscc,
    seed: Seed,
    cat: &Catalogue,
    facts: &mut Vec<Fact<Packed>>,
) {
    let mut out = Out { f, facts };
    match view {
        View::Record { ending, payments } => record(&mut out, ending, payments, own, seed, cat),
        View::Repair(r) => {
            for flag in &r.flags {
                out.push(What::ReviewFlag(*flag), f.event_time, Ts::MAX);
            }
            if let Some((_, at)) = r.applied {
                out.push(
                    What::RepairDone,
                    at,
                    add_months(at, cat.windows.history_months),
                );
            }
        }
        View::Retraction { .. } => {}
    }
}

fn record(
    out: &mut Out<'_>,
    ending: &Ending,
    payments: &[crate::lifecycle::Payment],
    own: Uscc,
    seed: Seed,
    cat: &Catalogue,
) {
    let f = out.f;
    let w = &cat.windows;
    let end = ending.end();
    let et = f.event_time;
    if let Some(neg_end) = f.negative_end(end, cat) {
        if ending.repaired.is_none() && neg_end < Ts::MAX {
            out.push(
                What::NegUnrepaired,
                neg_end,
                add_months(neg_end, w.history_months),
            );
        }
    }
    if f.kind.feed() == Feed::Reg && f.place != 0 {
        out.push(What::Place(f.place), et, end);
    }
    let amount = f.a.unwrap_or(0);
    match f.kind.typed() {
        Typed::Pen(PenKind::Decided | PenKind::Corrected) => {
            if let Some(pub_end) = f.publicity_end(cat) {
                let what = match decode(DishonestyClass::ALL, f.x) {
                    Some(DishonestyClass::Serious) => What::PenSerious,
                    _ => What::PenGeneral,
                };
                out.push(what, et, pub_end.min(end));
            }
            if amount > 0 {
                let window = add_months(et, w.penalty_amount_months).min(end);
                out.push(What::PenAmount(amount), et, window);
            }
        }
        Typed::List(_) => {
            let what = match decode(ListType::ALL, f.x) {
                Some(ListType::SeriousIllegal) => What::ListSerious,
                _ => What::ListAbnormal,
            };
            out.push(what, et, end);
        }
        Typed::Insp(_) => {
            let pass = decode(InspResult::ALL, f.x) == Some(InspResult::Pass);
            if !pass {
                let window = add_months(et, w.inspection_fail_months).min(end);
                out.push(What::InspFail, et, window);
            }
            out.push(What::InspResult { pass }, et, end);
        }
        Typed::Tax(kind) => match kind {
            TaxKind::Grade => {
                let year = f.a.and_then(|y| i32::try_from(y).ok());
                if let (Some(grade), Some(eval_year)) = (decode(TaxGrade::ALL, f.x), year) {
                    out.push(What::TaxGrade { eval_year, grade }, et, end);
                }
            }
            TaxKind::ArrearsAssessed => arrears(out, amount, end, payments),
            TaxKind::AbnormalHousehold => out.push(What::TaxAbnormal, et, end),
            TaxKind::MajorViolation => out.push(What::TaxMajor, et, end),
            TaxKind::Paid => {
                let window = add_months(et, w.tax_paid_months).min(end);
                out.push(What::TaxPaid(amount), et, window);
            }
            _ => {}
        },
        Typed::Reg(kind) => match kind {
            RegKind::Changed => {
                let field = decode(ChangeField::ALL, f.x);
                if field.is_some_and(|c| c != ChangeField::Other) {
                    let window = add_months(et, w.key_change_months).min(end);
                    out.push(What::KeyChange, et, window);
                }
            }
            RegKind::AddressCluster => out.push(What::AddressCluster(amount), et, end),
            RegKind::Capital => {
                let what = What::Capital {
                    registered: amount,
                    paid_in: f.b.map_or(0, to_signed),
                };
                out.push(what, et, end);
            }
            RegKind::EquityPledge => out.push(What::Pledge(amount), et, end),
            RegKind::Mortgage => out.push(What::Mortgage, et, end),
            RegKind::Shareholder | RegKind::Investment => {
                let counterparty = f.key.zip(f.a).map(|(high, low)| {
                    Uscc::from_bits(u128::from(high) << 64 | u128::from(low as u64))
                });
                if let Some(uscc) = counterparty.filter(|cp| *cp != own) {
                    let bp = f.b.map_or(0, to_signed);
                    let what = if kind == RegKind::Investment {
                        What::Investment { uscc, bp }
                    } else {
                        What::Shareholder { uscc, bp }
                    };
                    out.push(what, et, end);
                }
            }
            RegKind::Status => {
                if let Some(s) = decode(RegStatus::ALL, f.x) {
                    out.push(What::Status(s), et, end);
                }
            }
            _ => {}
        },
        Typed::Jud(kind) => match kind {
            JudKind::DishonestListed => {
                let until = f.dates[1].map_or(Ts::MAX, date_end);
                out.push(What::JudDishonest, et, end.min(until));
            }
            JudKind::ConsumptionRestricted => out.push(What::Consumption, et, end),
            JudKind::Freeze if decode(JudRole::ALL, f.x & 15) == Some(JudRole::Defendant) => {
                out.push(What::Freeze(amount), et, end);
            }
            JudKind::CaseFiled
                if decode(JudRole::ALL, f.x & 15) == Some(JudRole::Defendant) && !ending.voided =>
            {
                let window = add_months(et, w.defendant_case_months).min(end);
                out.push(What::DefendantCase, et, window);
            }
            _ => {}
        },
        Typed::Fin(kind) => match kind {
            FinKind::DebtEvasionListed => out.push(What::DebtEvasion, et, end),
            FinKind::PoliceListed => out.push(What::Police, et, end),
            _ => {}
        },
        Typed::Per(kind) => {
            let person = f.key_or_empty(seed);
            match kind {
                PerKind::Score => {
                    let what = What::PersonScore(Box::new(PersonScore {
                        person,
                        score: amount,
                        scale_max: f.b.map_or(1, to_signed),
                    }));
                    let stale = et.saturating_add(w.person_score_days * DAY);
                    out.push(what, et, stale.min(end));
                }
                PerKind::DishonestListed => out.push(What::PersonDishonest(person), et, end),
                PerKind::Role if decode(PersonRole::ALL, f.x) == Some(PersonRole::LegalRep) => {
                    out.push(What::LegalRep(person), et, end);
                }
                _ => {}
            }
        }
        Typed::Pcs(kind) => match kind {
            PcsKind::Score => out.push(What::Pcs(amount), et, end),
            PcsKind::Honour => {
                let until = f.dates[0].map_or(Ts::MAX, date_end);
                out.push(What::Honour, et, end.min(until));
            }
            _ => {}
        },
        _ => {}
    }
}

/// Row 9: an arrears assessment's unpaid balance, step by step as payments arrive (the view
/// lists them by time and amount, as `fact::arrears` takes them).
fn arrears(out: &mut Out<'_>, assessed: i64, end: Ts, payments: &[crate::lifecycle::Payment]) {
    let from = out.f.event_time;
    arrears_steps(assessed, from, end, payments, &mut |what, start, end| {
        out.push(what, start, end)
    });
}

/// Compares two records of the table by their event ids: the "latest" order's last key,
/// read only when two records tie on `(event_time, ingest_time)` (from the store, D92).
pub type Ties<'a> = &'a dyn Fn(u64, u64) -> Ordering;

/// One record of the table with its view, for the groups.
struct Row {
    f: Fields,
    view: View,
}

impl Row {
    /// The ending of a record in effect (`None` for a retraction or a repair).
    fn ending(&self) -> Option<&Ending> {
        match &self.view {
            View::Record { ending, .. } => Some(ending),
            _ => None,
        }
    }

    fn end(&self) -> Ts {
        self.ending().map_or(Ts::MAX, Ending::end)
    }
}

/// A group of records whose facts are derived together (D97): every fact of an enterprise
/// comes from one record ([`record_facts`]) or from one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    /// Firm age, youth and annual reports due: the latest establishment, else the first
    /// record.
    Establishment,
    /// A period's latest declaration (`true`) or insured staff.
    Period(bool, i64),
    /// A court case: its enforcement rows and its performed obligations.
    Case(u64),
    /// A loan's overdue states.
    Loan(u64),
    /// A suspicious account's states.
    Account(u64),
    /// The annual reports of a year, against the year's tax records.
    Year(i32),
    /// A penalty decision's performed obligations, by `decision_no`.
    Decision(Option<u64>),
    /// Every commitment: their off-site checks read every record of a contradicting kind.
    Commitments,
}

impl Fields {
    /// A period in `b` (a declaration, insured staff, tax paid).
    fn period(&self) -> Option<i64> {
        self.b.map(to_signed)
    }

    /// The year of an annual report's `b`.
    fn report_year(&self) -> Option<i32> {
        self.b.and_then(|y| i32::try_from(to_signed(y)).ok())
    }

    /// The year of a tax record's period.
    fn period_year(&self) -> Option<i32> {
        self.period()
            .and_then(|p| i32::try_from(p).ok())
            .map(|p| Period(p).year())
    }

    /// The groups whose facts this record may change, besides the establishment's when the
    /// enterprise has none in effect (see [`fact_changes`]).
    fn groups(&self, cx: &Context<'_>, out: &mut Vec<Group>) {
        let seed = cx.seed;
        let kind = self.kind.typed();
        if kind == Typed::Reg(RegKind::Established) {
            out.push(Group::Establishment);
        }
        let year = self.period_year().map(Group::Year);
        match kind {
            Typed::Tax(kind) => {
                let p = self.period();
                match kind {
                    TaxKind::Declared => out.extend(p.map(|p| Group::Period(true, p))),
                    TaxKind::SocialInsurance => {
                        out.extend(p.map(|p| Group::Period(false, p)));
                        out.extend(year);
                    }
                    TaxKind::Paid => out.extend(year),
                    _ => {}
                }
            }
            Typed::Reg(RegKind::AnnualReport) => out.extend(self.report_year().map(Group::Year)),
            Typed::Jud(_) => out.push(Group::Case(self.key_or_empty(seed))),
            Typed::Fin(
                FinKind::OverdueListed | FinKind::OverdueUpdated | FinKind::OverdueCleared,
            ) => {
                out.push(Group::Loan(self.key_or_empty(seed)));
            }
            Typed::Fin(FinKind::SuspiciousAccount | FinKind::SuspiciousAccountCleared) => {
                out.push(Group::Account(self.key_or_empty(seed)));
            }
            Typed::Pen(_) => out.push(Group::Decision(self.key)),
            _ => {}
        }
        if cx.offsite(self.kind) {
            out.push(Group::Commitments);
        }
    }
}

/// A set of kinds (of every feed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSet([u64; 4]);

impl KindSet {
    /// The kinds a commitment's off-site check reads (D45): `CMT`, and the kinds that
    /// break a commitment of some matter (a `CORRECTED` penalty counting as `DECIDED`).
    /// Computed once per catalogue: the catalogue holds the kinds as text.
    pub fn offsite(cat: &Catalogue) -> KindSet {
        let mut set = KindSet([0; 4]);
        for feed in Feed::ALL {
            for kind in super::kind_names(*feed) {
                let counted = match *kind {
                    "CORRECTED" => "DECIDED",
                    k => k,
                };
                if *feed == Feed::Cmt || cat.commitments.contradicts_any(feed.as_str(), counted) {
                    let k = Kind::named(*feed, kind).0;
                    set.0[usize::from(k >> 6)] |= 1 << (k & 63);
                }
            }
        }
        set
    }

    fn contains(&self, k: Kind) -> bool {
        self.0[usize::from(k.0 >> 6)] & 1 << (k.0 & 63) != 0
    }
}

/// How [`enterprise_facts`] and [`fact_changes`] read the enterprise: its owner, the
/// table's seed, the tie-break by event id and the catalogue.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The enterprise (its relations to itself are not facts).
    pub own: Uscc,
    /// The table's seed.
    pub seed: Seed,
    /// Event ids compared, for records that tie on both times.
    pub ties: Ties<'a>,
    /// The catalogue.
    pub cat: &'a Catalogue,
    /// [`KindSet::offsite`] of the catalogue.
    pub offsite: &'a KindSet,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("own", &self.own)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl Context<'_> {
    /// Whether a commitment's off-site check reads records of kind `k`.
    fn offsite(&self, k: Kind) -> bool {
        self.offsite.contains(k)
    }

    /// The records of `table` whose kinds lie in `kinds` that `keep` selects, with their
    /// views, in the "latest" order.
    fn rows(
        &self,
        table: &Viewed<'_>,
        kinds: RangeInclusive<Kind>,
        keep: impl Fn(&Fields) -> bool,
    ) -> Vec<Row> {
        self.ordered(
            table,
            table.table.of_kinds(kinds).filter(|f| keep(f)).collect(),
        )
    }

    /// `members` with their views, in the "latest" order. They are sorted before they are
    /// viewed: a view is larger than its record, and the rows are collected once, at their
    /// size.
    fn ordered(&self, table: &Viewed<'_>, mut members: Vec<Fields>) -> Vec<Row> {
        members.sort_by(|a, b| {
            (a.event_time, a.ingest_time)
                .cmp(&(b.event_time, b.ingest_time))
                .then_with(|| (self.ties)(a.rid, b.rid))
        });
        members
            .into_iter()
            .map(|f| Row {
                view: table.view(&f, self.cat),
                f,
            })
            .collect()
    }

    /// The facts of one group.
    fn group_facts(&self, table: &Viewed<'_>, group: Group, out: &mut Derived) {
        let facts = &mut out.facts;
        let (seed, cat) = (self.seed, self.cat);
        // The records in effect among a group's rows.
        fn in_effect(rows: &[Row]) -> Vec<&Row> {
            rows.iter().filter(|r| r.ending().is_some()).collect()
        }
        match group {
            Group::Establishment => {
                let rows = self.rows(table, ESTABLISHED..=ESTABLISHED, |_| true);
                if let Some(latest) = in_effect(&rows).last() {
                    let mut out = out_of(latest, facts);
                    let (et, end) = (latest.f.event_time, latest.end());
                    firm_age_steps(et, end, cat, &mut |what, start, end| {
                        out.push(what, start, end)
                    });
                } else {
                    // Unknown establishment counts as established: reports are always due,
                    // from the first record in effect, else the first record.
                    let all = self.rows(table, Kind::ALL, |_| true);
                    let first = all.iter().find(|r| r.ending().is_some()).or(all.first());
                    if let Some(first) = first {
                        out_of(first, facts).push(What::AnnualDue, Ts::MIN, Ts::MAX);
                    }
                }
            }
            Group::Period(declared, p) => {
                let kind = if declared { DECLARED } else { INSURED };
                let rows = self.rows(table, kind..=kind, |f| f.period() == Some(p));
                if let Some(latest) = in_effect(&rows).last() {
                    period_facts(facts, latest, p, declared);
                }
            }
            Group::Case(k) => {
                let rows = self.rows(table, Kind::of_feed(Feed::Jud), |f| {
                    f.key_or_empty(seed) == k
                });
                let case = in_effect(&rows);
                enforcement(facts, &case);
                obligations(facts, &rows, &case, cat);
            }
            Group::Loan(k) => {
                let rows = self.rows(table, OVERDUE_LISTED..=OVERDUE_UPDATED, |f| {
                    f.key_or_empty(seed) == k
                });
                overdue(facts, k, &in_effect(&rows));
            }
            Group::Account(k) => {
                let rows = self.rows(table, SUSPICIOUS..=SUSPICIOUS, |f| {
                    f.key_or_empty(seed) == k
                });
                suspicious(facts, k, &in_effect(&rows), cat);
            }
            Group::Year(y) => {
                // The year's reports first: the tax records matter only against a report
                // in effect that reports zero tax or staff, and only of the kinds it
                // contradicts.
                let reports = self.rows(table, ANNUAL_REPORT..=ANNUAL_REPORT, |f| {
                    f.report_year() == Some(y)
                });
                let reports = in_effect(&reports);
                let zero = reports.iter().fold(0, |z, r| z | r.f.x);
                let reads =
                    |k: Kind| (k == PAID && zero & 1 != 0) || (k == INSURED && zero & 2 != 0);
                let taxes = if zero & 3 == 0 {
                    Vec::new()
                } else {
                    self.rows(table, PAID.min(INSURED)..=PAID.max(INSURED), |f| {
                        reads(f.kind) && f.period_year() == Some(y)
                    })
                };
                let taxes = in_effect(&taxes);
                for r in reports {
                    annual_report(facts, r, &taxes);
                }
            }
            Group::Decision(key) => {
                let rows = self.rows(table, Kind::of_feed(Feed::Pen), |f| f.key == key);
                obligations(facts, &rows, &in_effect(&rows), cat);
            }
            Group::Commitments => {
                // Only commitments have checks.
                if !table.table.has(Kind::of_feed(Feed::Cmt)) {
                    return;
                }
                let members = table.table.of_kinds_where(Kind::ALL, |k| self.offsite(k));
                let rows = self.ordered(table, members.collect());
                let records = in_effect(&rows);
                let mut commitments: BTreeMap<u64, Vec<&Row>> = BTreeMap::new();
                for r in rows.iter().filter(|r| r.f.kind.feed() == Feed::Cmt) {
                    commitments
                        .entry(r.f.key_or_empty(seed))
                        .or_default()
                        .push(r);
                }
                for (cid, recs) in &commitments {
                    commitment(out, (*cid, recs), &records, (seed, self.ties), cat);
                }
            }
        }
    }
}

/// Every fact of an enterprise's table: [`record_facts`] of each record and the facts of
/// each [`Group`] its records form, as [`crate::fact::derive`] gives them (D95–D97), and
/// its commitment events, as [`crate::fact::commitment_events`] gives them (D100).
pub fn enterprise_facts(table: &Table, cx: &Context<'_>) -> Derived {
    let mut groups = vec![Group::Establishment];
    let mut rids = Vec::with_capacity(table.len());
    for f in table.iter() {
        rids.push(f.rid);
        f.groups(cx, &mut groups);
    }
    groups.sort();
    groups.dedup();
    unit_facts(table, &rids, &groups, cx).0
}

/// A table with the views of some of its records computed (the records a change touches,
/// which their groups read again).
struct Viewed<'t> {
    table: &'t Table,
    /// Views by fingerprint, sorted.
    views: Vec<(u64, View)>,
}

impl Viewed<'_> {
    fn view(&self, f: &Fields, cat: &Catalogue) -> View {
        match self.views.binary_search_by_key(&f.rid, |(rid, _)| *rid) {
            Ok(i) => self.views[i].1.clone(),
            Err(_) => self.table.view(f, cat),
        }
    }
}

/// What an enterprise's records derive: facts and commitment events, each sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Derived {
    /// The facts (D95–D97).
    pub facts: Vec<Fact<Packed>>,
    /// The published commitments and verification results (D100).
    pub events: Vec<CommitmentEvent<Packed>>,
}

/// What the records `rids` and `groups` derive, and the views of those records (by
/// fingerprint).
fn unit_facts(
    table: &Table,
    rids: &[u64],
    groups: &[Group],
    cx: &Context<'_>,
) -> (Derived, Vec<(u64, View)>) {
    let mut out = Derived::default();
    let mut views = Vec::with_capacity(rids.len());
    for f in rids.iter().filter_map(|rid| table.get(*rid)) {
        let view = table.view(&f, cx.cat);
        record_facts(&f, &view, cx.own, cx.seed, cx.cat, &mut out.facts);
        views.push((f.rid, view));
    }
    views.sort_unstable_by_key(|(rid, _)| *rid);
    let table = Viewed { table, views };
    for g in groups {
        cx.group_facts(&table, *g, &mut out);
    }
    out.facts.sort();
    out.events.sort();
    out.events.dedup();
    (out, table.views)
}

/// What ends and what begins with a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes<T> {
    /// No longer there.
    pub removed: Vec<T>,
    /// Newly there.
    pub added: Vec<T>,
}

impl<T> Default for Changes<T> {
    fn default() -> Self {
        Changes {
            removed: Vec::new(),
            added: Vec::new(),
        }
    }
}

impl<T: Ord + Clone> Changes<T> {
    /// Adds the multiset difference of two sorted lists.
    fn extend_difference(&mut self, before: &[T], after: &[T]) {
        let (mut i, mut j) = (0, 0);
        while i < before.len() || j < after.len() {
            match (before.get(i), after.get(j)) {
                (Some(b), Some(a)) if b == a => (i, j) = (i + 1, j + 1),
                (Some(b), Some(a)) if b < a => {
                    self.removed.push(b.clone());
                    i += 1;
                }
                (Some(b), None) => {
                    self.removed.push(b.clone());
                    i += 1;
                }
                (_, Some(a)) => {
                    self.added.push(a.clone());
                    j += 1;
                }
                (None, None) => break,
            }
        }
    }
}

/// What a change does to an enterprise's facts (D97) and to its records' status steps
/// (D99).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FactChanges {
    /// The facts that end and begin, sorted.
    pub facts: Changes<Fact<Packed>>,
    /// The status steps that end and begin, sorted.
    pub steps: Changes<(u64, Step)>,
    /// The commitment events that end and begin, sorted (D100).
    pub events: Changes<CommitmentEvent<Packed>>,
    /// The lifecycle dead letters that end and begin, sorted.
    pub letters: Changes<(u64, Reason, Ts)>,
}

/// Applies `changes` to `table` as [`Table::update`] does and returns what they did to the
/// enterprise's facts and its records' status steps: only the records whose view may change
/// and the groups they form are derived again, before and after, and the steps of the
/// records whose view or facts changed.
pub fn fact_changes(
    table: &mut Table,
    changes: &[(Fields, isize)],
    cx: &Context<'_>,
) -> Result<FactChanges, TableError> {
    let hold = cx.cat.lifecycle.hold_secs;
    let touched = table.touched(changes)?;
    // The records that leave and enter again as another version: their steps and letters
    // are the old version's that end and the new one's that begin, even where they agree.
    let mut replaced: Vec<u64> = changes
        .iter()
        .filter(|(f, d)| *d < 0 && changes.iter().any(|(g, e)| *e > 0 && g.rid == f.rid))
        .map(|(f, _)| f.rid)
        .collect();
    replaced.sort_unstable();
    let mut groups = Vec::new();
    for (f, _) in changes {
        f.groups(cx, &mut groups);
    }
    for f in touched.iter().filter_map(|rid| table.get(*rid)) {
        f.groups(cx, &mut groups);
    }
    // Without an establishment, reports are due from the first record, which any change
    // may move. (A change that removes the last establishment, or adds the first, is an
    // establishment's own and names the group itself.)
    if !table.has(ESTABLISHED..=ESTABLISHED) {
        groups.push(Group::Establishment);
    }
    groups.sort();
    groups.dedup();
    let bases = |table: &Table, views: Vec<(u64, View)>| -> Vec<(u64, Basis)> {
        views
            .into_iter()
            .filter_map(|(rid, view)| Some((rid, table.basis(&table.get(rid)?, view, hold))))
            .collect()
    };
    let (before, views) = unit_facts(table, &touched, &groups, cx);
    let letters_before = letters(&views);
    let bases_before = bases(table, views);
    table.apply(changes);
    let (after, views) = unit_facts(table, &touched, &groups, cx);
    let letters_after = letters(&views);
    let bases_after = bases(table, views);
    let mut out = FactChanges::default();
    let (old, kept_before): (Letters, Letters) = letters_before
        .into_iter()
        .partition(|l| replaced.binary_search(&l.0).is_ok());
    let (new, kept_after): (Letters, Letters) = letters_after
        .into_iter()
        .partition(|l| replaced.binary_search(&l.0).is_ok());
    out.letters.extend_difference(&kept_before, &kept_after);
    out.letters.removed.extend(old);
    out.letters.added.extend(new);
    out.letters.removed.sort_unstable();
    out.letters.added.sort_unstable();
    out.facts.extend_difference(&before.facts, &after.facts);
    out.events.extend_difference(&before.events, &after.events);

    // The records whose steps may change: those whose view or facts changed.
    let mut srcs = touched.clone();
    srcs.extend(
        out.facts
            .removed
            .iter()
            .chain(&out.facts.added)
            .map(|f| f.src),
    );
    srcs.sort_unstable();
    srcs.dedup();
    // Their facts from units not derived again (the same before and after): the record's
    // own, unless touched, and its groups among those not derived. (Without an
    // establishment, the establishment's group was derived.)
    let mut rest_rids = Vec::new();
    let mut rest_groups = Vec::new();
    for f in srcs.iter().filter_map(|rid| table.get(*rid)) {
        if !touched.contains(&f.rid) {
            rest_rids.push(f.rid);
            f.groups(cx, &mut rest_groups);
        }
    }
    rest_groups.sort();
    rest_groups.dedup();
    rest_groups.retain(|g| groups.binary_search(g).is_err());
    let (rest, views) = unit_facts(table, &rest_rids, &rest_groups, cx);
    // The untouched records' views, which the change left as they were.
    let bases_rest = bases(table, views);
    let (rest, before, after) = (
        facts_ends(&rest.facts),
        facts_ends(&before.facts),
        facts_ends(&after.facts),
    );
    let basis = |bases: &[(u64, Basis)], rid: u64| {
        bases
            .binary_search_by_key(&rid, |(r, _)| *r)
            .ok()
            .map(|i| bases[i].1.clone())
    };
    for rid in srcs {
        let (b, a) = match basis(&bases_rest, rid) {
            Some(b) => (Some(b.clone()), Some(b)),
            None => (basis(&bases_before, rid), basis(&bases_after, rid)),
        };
        let last = |ends: &[(u64, Ts)]| {
            end_of(ends, rid)
                .max(end_of(&rest, rid))
                .filter(|e| *e < Ts::MAX)
        };
        let (mut old, mut new) = (Vec::new(), Vec::new());
        if let Some(b) = b {
            steps(rid, &b, last(&before), &mut old);
        }
        if let Some(a) = a {
            steps(rid, &a, last(&after), &mut new);
        }
        old.sort_unstable();
        new.sort_unstable();
        if replaced.binary_search(&rid).is_ok() {
            out.steps.removed.extend(old);
            out.steps.added.extend(new);
        } else {
            out.steps.extend_difference(&old, &new);
        }
    }
    Ok(out)
}

/// The dead letters of the records whose views are `views` (sorted by fingerprint).
pub(super) fn letters(views: &[(u64, View)]) -> Letters {
    views
        .iter()
        .filter_map(|(rid, v)| v.letter().map(|(reason, at)| (*rid, reason, at)))
        .collect()
}

fn out_of<'a>(r: &'a Row, facts: &'a mut Vec<Fact<Packed>>) -> Out<'a> {
    Out { f: &r.f, facts }
}

/// Rows 23–26 from a period's latest declaration (`declared`) or insured staff.
fn period_facts(facts: &mut Vec<Fact<Packed>>, r: &Row, period: i64, declared: bool) {
    let Ok(p) = i32::try_from(period) else {
        return;
    };
    let span = (r.f.event_time, r.end());
    let mut out = out_of(r, facts);
    let amount = out.f.a.unwrap_or(0);
    period_steps(
        Period(p),
        amount,
        span,
        declared,
        &mut |what, start, end| out.push(what, start, end),
    );
}

/// Rows 36–38 for one court case (its records in the "latest" order).
fn enforcement(facts: &mut Vec<Fact<Packed>>, case: &[&Row]) {
    let first = |kind| {
        case.iter()
            .copied()
            .find(|r| r.f.kind.typed() == Typed::Jud(kind))
    };
    let (filed, terminated) = (
        first(JudKind::EnforcementFiled),
        first(JudKind::EnforcementTerminated),
    );
    let step = |r: &Row| CaseStep {
        et: r.f.event_time,
        end: r.end(),
        amount: r.f.a.unwrap_or(0),
        role: decode(JudRole::ALL, r.f.x & 15),
    };
    enforcement_steps(
        filed.map(step),
        terminated.map(step),
        &mut |from_filing, what, start, end| {
            if let Some(r) = if from_filing { filed } else { terminated } {
                out_of(r, facts).push(what, start, end);
            }
        },
    );
}

/// Rows 40–41: the states of one loan (its records in the "latest" order).
fn overdue(facts: &mut Vec<Fact<Packed>>, loan: u64, chain: &[&Row]) {
    for (n, r) in chain.iter().enumerate() {
        let next = chain.get(n + 1).map_or(Ts::MAX, |x| x.f.event_time);
        let span = (r.f.event_time, r.end().min(next));
        let (d0, amount) = (r.f.b.map_or(0, to_signed), r.f.a.unwrap_or(0));
        let mut out = out_of(r, facts);
        overdue_steps(&loan, span, d0, amount, &mut |what, start, end| {
            out.push(what, start, end)
        });
    }
}

/// Row 44: one account, active until cleared or stale.
fn suspicious(facts: &mut Vec<Fact<Packed>>, account: u64, chain: &[&Row], cat: &Catalogue) {
    for (n, r) in chain.iter().enumerate() {
        let et = r.f.event_time;
        let next = chain.get(n + 1).map_or(Ts::MAX, |x| x.f.event_time);
        let stale = add_months(et, cat.windows.suspicious_stale_months);
        let end = r.end().min(next).min(stale);
        out_of(r, facts).push(What::Suspicious(account), et, end);
    }
}

/// Rows 15–16 for one annual report.
fn annual_report(facts: &mut Vec<Fact<Packed>>, r: &Row, records: &[&Row]) {
    let Some(y) = r.f.report_year() else {
        return;
    };
    let (zero_tax, zero_staff) = (r.f.x & 1 != 0, r.f.x & 2 != 0);
    // Row 16: reported tax or staff is 0 while TAX shows payments / insured staff that year.
    let contradiction = records
        .iter()
        .filter(|t| {
            let positive = t.f.a.unwrap_or(0) > 0;
            t.f.period_year() == Some(y)
                && positive
                && match t.f.kind {
                    PAID => zero_tax,
                    INSURED => zero_staff,
                    _ => false,
                }
        })
        .map(|t| t.f.event_time)
        .min();
    let span = (r.f.event_time, r.end());
    let mut out = out_of(r, facts);
    annual_steps(y, span, contradiction, &mut |what, start, end| {
        out.push(what, start, end)
    });
}

/// Row 31: performed obligations against their due dates (a PEN decision's by its
/// `decision_no`; an enforcement's by its case: every JUD kind carries `court_code` and
/// `case_no`, so the case's key is theirs).
fn obligations(facts: &mut Vec<Fact<Packed>>, rows: &[Row], records: &[&Row], cat: &Catalogue) {
    for perf in rows {
        let p = &perf.f;
        let due_of = |decision: fn(Typed) -> bool, date: usize| {
            records
                .iter()
                .filter(|d| decision(d.f.kind.typed()) && d.f.key == p.key)
                .filter_map(|d| d.f.dates[date])
                .min()
        };
        let due = match p.kind.typed() {
            Typed::Pen(PenKind::Performed) if !p.retraction => due_of(
                |k| matches!(k, Typed::Pen(PenKind::Decided | PenKind::Corrected)),
                2,
            ),
            Typed::Jud(JudKind::Performed) => {
                due_of(|k| k == Typed::Jud(JudKind::EnforcementFiled), 0)
            }
            _ => None,
        };
        if let Some(due) = due {
            let et = p.event_time;
            let what = What::Obligation {
                on_time: et < date_end(due),
            };
            out_of(perf, facts).push(what, et, add_months(et, cat.windows.history_months));
        }
    }
}

/// An inspector's result `r` of commitment `cid` (D46): the result, and a `RECTIFY`'s
/// outcome (`NORMAL` at the first `RECTIFIED` before the deadline, by the least event id
/// among those at that time, else `BROKEN` at the deadline).
fn inspected_events(
    events: &mut Vec<CommitmentEvent<Packed>>,
    (cid, r, result): (u64, &Row, CmtResult),
    recs: &[&Row],
    ties: Ties<'_>,
    w: &crate::catalogue::Windows,
) {
    let et = r.f.event_time;
    let check = |checker, method, result, at, record| {
        CommitmentEvent::Checked(Check {
            commitment_id: cid,
            checker,
            method,
            result,
            at,
            record,
        })
    };
    let method = decode(VerifyMethod::ALL, r.f.x >> 8 & 15);
    events.push(check(Checker::Inspector, method, result, et, r.f.rid));
    if result != CmtResult::Rectify {
        return;
    }
    let fixes: Vec<&Row> = recs
        .iter()
        .copied()
        .filter(|x| x.f.kind.typed() == Typed::Cmt(CmtKind::Rectified))
        .collect();
    let times: Vec<Ts> = fixes.iter().map(|x| x.f.event_time).collect();
    let (deadline, fixed) = rectify_window(et, r.f.dates[1], &times, w);
    events.push(if fixed < deadline {
        let by = fixes
            .iter()
            .filter(|x| x.f.event_time == fixed)
            .map(|x| x.f.rid)
            .min_by(|a, b| ties(*a, *b))
            .unwrap_or(r.f.rid);
        check(Checker::Rectified, None, CmtResult::Normal, fixed, by)
    } else {
        check(
            Checker::Deadline,
            None,
            CmtResult::Broken,
            deadline,
            r.f.rid,
        )
    });
}

/// Rows 27–29 and 33 from the CMT records of one commitment (in the "latest" order), and
/// its commitment events (D100).
fn commitment(
    Derived { facts, events }: &mut Derived,
    (cid, recs): (u64, &[&Row]),
    records: &[&Row],
    (seed, ties): (Seed, Ties<'_>),
    cat: &Catalogue,
) {
    let w = &cat.windows;
    let kind = |r: &Row, k| r.f.kind.typed() == Typed::Cmt(k);
    let rectified: Vec<Ts> = recs
        .iter()
        .filter(|r| kind(r, CmtKind::Rectified))
        .map(|r| r.f.event_time)
        .collect();
    let mut broken: Option<(Ts, &Row)> = None;
    let mut note_broken = |at: Ts, r| {
        if broken.is_none_or(|(b, _)| at < b) {
            broken = Some((at, r));
        }
    };
    for r in recs.iter().copied().filter(|r| kind(r, CmtKind::Verified)) {
        let result = decode(CmtResult::ALL, r.f.x >> 4 & 15);
        if let Some(result) = result {
            inspected_events(events, (cid, r, result), recs, ties, w);
        }
        let mut out = out_of(r, facts);
        verification_steps(
            (r.f.event_time, result),
            r.f.dates[1],
            &rectified,
            w,
            &mut |what, start, end| out.push(what, start, end),
            &mut |at| note_broken(at, r),
        );
    }
    // Off-site verification (D45): BROKEN at the first contradicting record, else NORMAL
    // at `valid_until`; an inspector's result replaces it for rows 28–29.
    let inspected = recs.iter().any(|r| kind(r, CmtKind::Verified));
    for p in recs.iter().copied().filter(|r| kind(r, CmtKind::Published)) {
        let from = p.f.event_time;
        let valid = valid_until(from, p.f.dates[0]);
        // A matter the catalogue does not list reads its default kinds, as no matter does.
        let matter =
            p.f.a
                .and_then(|fp| listed_matters(cat, seed, from_signed(fp)).next());
        // The first unretracted contradicting record by event time, then event id.
        let contra = records
            .iter()
            .copied()
            .filter(|a| a.ending().is_some_and(|e| e.retracted.is_none()))
            .filter(|a| {
                (from..valid).contains(&a.f.event_time)
                    && cat
                        .commitments
                        .contradicted_by(matter, a.f.kind.feed(), a.f.kind.name())
            })
            .min_by(|a, b| {
                a.f.event_time
                    .cmp(&b.f.event_time)
                    .then_with(|| ties(a.f.rid, b.f.rid))
            });
        let (normal, at, x) = match contra {
            Some(x) => (false, x.f.event_time, x),
            None => (true, valid, p),
        };
        events.push(CommitmentEvent::Published(cid));
        events.push(CommitmentEvent::Checked(Check {
            commitment_id: cid,
            checker: Checker::Offsite,
            method: Some(VerifyMethod::Offsite),
            result: if normal {
                CmtResult::Normal
            } else {
                CmtResult::Broken
            },
            at,
            record: x.f.rid,
        }));
        if !normal {
            note_broken(at, x);
        }
        if !inspected {
            let end = add_months(at, w.commitment_kept_months);
            out_of(x, facts).push(What::CmtVerified { normal }, at, end);
        }
    }
    let broken_at = broken.map_or(Ts::MAX, |(b, _)| b);
    if let Some((b, r)) = broken {
        out_of(r, facts).push(
            What::CmtBroken(cid),
            b,
            add_months(b, w.commitment_broken_months),
        );
    }
    for p in recs.iter().copied().filter(|r| kind(r, CmtKind::Published)) {
        if decode(CommitmentType::ALL, p.f.x & 15) == Some(CommitmentType::Voluntary) {
            let et = p.f.event_time;
            let valid = valid_until(et, p.f.dates[0]);
            out_of(p, facts).push(What::Voluntary, et, valid.min(broken_at));
        }
    }
}
