//! Facts: what the indicators read, each with the interval of event time in which it holds.
//!
//! [`derive()`] turns one enterprise's resolved records into facts. Every time-dependence of
//! the model (windows, publicity periods, deadlines, overdue days growing, firm age, the
//! 1 July annual-report date, staleness) is an interval boundary here, so the indicators
//! are a pure function of the facts active at `t`. The pipeline turns a fact derived at
//! logical time `v` into `+1` at `max(v, start)` and `−1` at `max(v, end)`; the reference
//! keeps the facts with `start ≤ t < end` of the records visible at `t`. Both agree.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use serde::{Deserialize, Serialize};

use crate::catalogue::{Catalogue, RepairFlag, Windows};
use crate::event::{
    Body, ChangeField, Cmt, CmtKind, CmtResult, CommitmentType, DishonestyClass, Feed, FinKind,
    InspResult, JudKind, JudRole, ListType, PcsKind, PenKind, PerKind, PersonRole, RegKind,
    RegStatus, TaxGrade, TaxKind, VerifyMethod,
};
use crate::lifecycle::{is_pen_decision, Accepted, Resolved};
use crate::time::{add_months, add_years, date_end, ymd, Period, Ts, DAY};
use crate::CompactString;

/// The record a fact comes from, for explanations: `(feed, event_id)`.
pub type Src = (Feed, CompactString);

/// How a fact names what lies outside its own record: a key (a commitment, a loan, an
/// account, a person), another enterprise, a place, and its source record. The reference
/// names them by their texts ([`Text`]); engine v2's record table by fingerprints and
/// packed codes ([`crate::table::Packed`], D95).
pub trait Ids: Clone + std::fmt::Debug + Ord + std::hash::Hash {
    /// A commitment, loan, account or person.
    type Key: Name;
    /// Another enterprise.
    type Firm: Name;
    /// A region and an industry.
    type Place: Name;
    /// The source record.
    type Src: Name;
    /// A record as the state names it: a repair that a review flag names, the record a
    /// region or an industry code comes from.
    type Id: Name;
    /// A region or an industry code as the state holds it.
    type Code: Name;

    /// The id of source record `src`.
    fn id(src: &Self::Src) -> Self::Id;

    /// The region and the industry code that a place fact of record `src` carries.
    fn codes(place: &Self::Place, src: &Self::Src) -> [Option<Self::Code>; 2];
}

/// Compares two source records by their event ids: the "latest" order's last key, read
/// only when two records tie on `(event_time, ingest_time)` (D98).
pub type Tie<'a, S> = &'a dyn Fn(&S, &S) -> std::cmp::Ordering;

/// [`Tie`] of records named by their texts.
pub fn by_event_id(a: &Src, b: &Src) -> std::cmp::Ordering {
    a.1.cmp(&b.1)
}

/// What a fact's names are: compared, hashed, printed and serialized with it.
pub trait Name:
    Clone + std::fmt::Debug + Ord + std::hash::Hash + Serialize + for<'de> Deserialize<'de>
{
}

impl<T> Name for T where
    T: Clone + std::fmt::Debug + Ord + std::hash::Hash + Serialize + for<'de> Deserialize<'de>
{
}

/// Facts named by texts: the reference's and the present engine's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Text;

impl Ids for Text {
    type Key = CompactString;
    type Firm = CompactString;
    type Place = Box<Place>;
    type Src = Src;
    type Id = CompactString;
    type Code = CompactString;

    fn id(src: &Src) -> CompactString {
        src.1.clone()
    }

    fn codes(place: &Box<Place>, _: &Src) -> [Option<CompactString>; 2] {
        [place.region.clone(), place.industry.clone()]
    }
}

/// One fact with its interval `[start, end)` in event time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Fact<I: Ids = Text> {
    /// What holds.
    pub what: What<I>,
    /// First second it holds.
    pub start: Ts,
    /// First second it no longer holds (`Ts::MAX` = open).
    pub end: Ts,
    /// "Latest" order of the source record: `(event_time, ingest_time)`; `src.1` breaks ties.
    pub order: (Ts, Ts),
    /// The source record.
    pub src: I::Src,
}

impl<I: Ids> Fact<I> {
    /// Whether the fact holds at `t`.
    pub fn active_at(&self, t: Ts) -> bool {
        self.start <= t && t < self.end
    }
}

impl Fact {
    /// The full "latest" key `(event_time, ingest_time, event_id)`.
    pub fn latest_key(&self) -> (Ts, Ts, &str) {
        (self.order.0, self.order.1, &self.src.1)
    }
}

/// The facts the indicators read. Person-scoped facts carry the `person_hash`; relations
/// carry the other enterprise's USCC.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum What<I: Ids = Text> {
    /// Row 1: a GENERAL penalty in publicity.
    PenGeneral,
    /// Row 2: a SERIOUS penalty in publicity.
    PenSerious,
    /// Row 3: fine + confiscation within 36 months, fen.
    PenAmount(i64),
    /// Row 4: on the abnormal-operations list.
    ListAbnormal,
    /// Row 5: on the serious-illegal list.
    ListSerious,
    /// Row 6: an inspection result other than PASS within 24 months.
    InspFail,
    /// Row 7: an inspection result (for the PASS streak).
    InspResult {
        /// Result was PASS.
        pass: bool,
    },
    /// Row 8: a tax grade.
    TaxGrade {
        /// Evaluated year (orders grades before event time).
        eval_year: i32,
        /// The grade.
        grade: TaxGrade,
    },
    /// Row 9: an arrears assessment's unpaid balance, fen.
    Arrears(i64),
    /// Row 10: abnormal tax household.
    TaxAbnormal,
    /// Row 11: major tax violation.
    TaxMajor,
    /// Row 12: whole years since establishment (5 = five or more).
    FirmAge(u8),
    /// Trigger R8: established less than 2 years ago.
    Young,
    /// Row 13: a key registration change within 12 months.
    KeyChange,
    /// Row 14: firms at the same address.
    AddressCluster(i64),
    /// Row 15: annual reports are due (from the first 1 July after establishment).
    AnnualDue,
    /// Row 15: the report for the year now due is filed.
    AnnualFiled,
    /// Row 16: annual report contradicts tax records.
    AnnualMismatch,
    /// Rows 17–18: capital, fen.
    Capital {
        /// Registered capital.
        registered: i64,
        /// Paid-in capital.
        paid_in: i64,
    },
    /// Row 19: pledged equity, basis points.
    Pledge(i64),
    /// Row 20: frozen amount, fen.
    Freeze(i64),
    /// Row 21: a chattel mortgage.
    Mortgage,
    /// Row 22: tax paid within 12 months, fen.
    TaxPaid(i64),
    /// Row 23: declared sales of a period in the last 12 periods, fen.
    SalesRecent(i64),
    /// Row 23: declared sales of a period in the 12 periods before those, fen.
    SalesPrior(i64),
    /// Row 24: a zero declaration in the last 12 periods.
    ZeroDecl,
    /// Rows 25–26: insured staff of a period.
    Insured {
        /// The period.
        period: Period,
        /// Insured staff.
        count: i64,
    },
    /// Row 27, R5, R7: a commitment broken within 24 months.
    CmtBroken(I::Key),
    /// Row 28: a rectification open before its deadline.
    RectifyOpen,
    /// Row 28: a rectification past its deadline.
    RectifyOverdue,
    /// Row 29: a verification within 36 months.
    CmtVerified {
        /// Result counts as NORMAL.
        normal: bool,
    },
    /// Row 30: an unrevoked repair effective within 36 months.
    RepairDone,
    /// Row 30: a negative record whose effect ended without repair within 36 months.
    NegUnrepaired,
    /// Row 31: an obligation performed within 36 months.
    Obligation {
        /// Performed before the due date ended.
        on_time: bool,
    },
    /// Row 32: an honour in force.
    Honour,
    /// Row 33: a voluntary commitment in force and unbroken.
    Voluntary,
    /// Row 34, R1: dishonest judgement debtor.
    JudDishonest,
    /// Row 35: consumption restriction.
    Consumption,
    /// Row 36: terminated enforcement with unpaid amount.
    TerminatedUnpaid,
    /// Rows 37–38: an open enforcement case with its amount, fen.
    EnforcedOpen(i64),
    /// Row 39: a case against the enterprise within 12 months.
    DefendantCase,
    /// Rows 40–41: an overdue loan's state (boxed, as the other large variants: `What`
    /// is the size of its largest variant, and every fact carries one, D86).
    Overdue(Box<Overdue<I>>),
    /// Row 42: debt evasion list.
    DebtEvasion,
    /// Row 43: police dishonesty list.
    Police,
    /// Row 44: a suspicious account.
    Suspicious(I::Key),
    /// Row 45 (person-scoped): a personal score (boxed).
    PersonScore(Box<PersonScore<I>>),
    /// Row 46 (person-scoped): personal dishonesty.
    PersonDishonest(I::Key),
    /// `LR(E)` candidate: a legal-representative role.
    LegalRep(I::Key),
    /// Rows 48: a shareholder (another enterprise) with its share of this one, bp.
    Shareholder {
        /// The shareholder.
        uscc: I::Firm,
        /// Share, bp (0 ends it).
        bp: i64,
    },
    /// Row 49: an investment in another enterprise, bp.
    Investment {
        /// The affiliate.
        uscc: I::Firm,
        /// Share, bp (0 ends it).
        bp: i64,
    },
    /// R9: registration status.
    Status(RegStatus),
    /// `P`: provincial public credit score.
    Pcs(i64),
    /// Region and industry (latest REG record that carries them; boxed).
    Place(I::Place),
    /// A review flag on the source repair (D47), from the repair's event time.
    ReviewFlag(RepairFlag),
}

impl<I: Ids> What<I> {
    /// The person a person-scoped fact is about (rows 45–46), if it is one.
    pub fn person(&self) -> Option<&I::Key> {
        match self {
            What::PersonScore(s) => Some(&s.person),
            What::PersonDishonest(person) => Some(person),
            _ => None,
        }
    }
}

/// [`What::Overdue`]: an overdue loan's state.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Overdue<I: Ids = Text> {
    /// Loan id.
    pub loan: I::Key,
    /// Row 40 value of the days band: 0, 30, 60 or 100.
    pub band: u8,
    /// Overdue amount, fen.
    pub amount: i64,
}

/// [`What::PersonScore`]: a personal score.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct PersonScore<I: Ids = Text> {
    /// The person.
    pub person: I::Key,
    /// Score.
    pub score: i64,
    /// Scale.
    pub scale_max: i64,
}

/// [`What::Place`]: region and industry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Place {
    /// Region code.
    pub region: Option<CompactString>,
    /// Industry code.
    pub industry: Option<CompactString>,
}

/// Collects facts, clipping each interval and dropping empty ones.
struct Out<'c> {
    facts: Vec<Fact>,
    cat: &'c Catalogue,
}

impl Out<'_> {
    fn push(&mut self, what: What, start: Ts, end: Ts, a: &Accepted) {
        if start < end {
            self.facts.push(Fact {
                what,
                start,
                end,
                order: (a.event.event_time, a.event.ingest_time),
                src: a.id(),
            });
        }
    }
}

/// Derives every fact of one enterprise from its resolved records.
pub fn derive(res: &Resolved<'_>, cat: &Catalogue) -> Vec<Fact> {
    let mut out = Out {
        facts: Vec::new(),
        cat,
    };
    let mut cases: BTreeMap<(CompactString, CompactString), Vec<usize>> = BTreeMap::new();
    let mut loans: BTreeMap<CompactString, Vec<usize>> = BTreeMap::new();
    let mut accounts: BTreeMap<CompactString, Vec<usize>> = BTreeMap::new();
    let mut declared: BTreeMap<Period, usize> = BTreeMap::new();
    let mut insured: BTreeMap<Period, usize> = BTreeMap::new();
    let mut established: Option<usize> = None;

    for (i, a) in res.records.iter().enumerate() {
        let ending = res.endings[i];
        let end = ending.end();
        let et = a.event.event_time;
        if let Some(neg_end) = negative_end(a, end, cat) {
            if ending.repaired.is_none() && neg_end < Ts::MAX {
                out.push(
                    What::NegUnrepaired,
                    neg_end,
                    add_months(neg_end, cat.windows.history_months),
                    a,
                );
            }
        }
        match &a.event.body {
            Body::Pen(p) if is_pen_decision(&a.event) => {
                if let Some(pub_end) = publicity_end(a, cat) {
                    let what = match p.dishonesty_class {
                        Some(DishonestyClass::Serious) => What::PenSerious,
                        _ => What::PenGeneral,
                    };
                    out.push(what, et, pub_end.min(end), a);
                }
                let amount = p.fine_fen.unwrap_or(0) + p.confiscation_fen.unwrap_or(0);
                if amount > 0 {
                    let w = add_months(et, cat.windows.penalty_amount_months).min(end);
                    out.push(What::PenAmount(amount), et, w, a);
                }
            }
            Body::Pen(_) => {}
            Body::List(l) => {
                let what = match l.list_kind {
                    Some(ListType::SeriousIllegal) => What::ListSerious,
                    _ => What::ListAbnormal,
                };
                out.push(what, et, end, a);
            }
            Body::Insp(x) => {
                let pass = x.result == Some(InspResult::Pass);
                if !pass {
                    let w = add_months(et, cat.windows.inspection_fail_months).min(end);
                    out.push(What::InspFail, et, w, a);
                }
                out.push(What::InspResult { pass }, et, end, a);
            }
            Body::Tax(t) => match t.kind {
                TaxKind::Grade => {
                    if let (Some(grade), Some(eval_year)) = (t.grade, t.eval_year) {
                        out.push(What::TaxGrade { eval_year, grade }, et, end, a);
                    }
                }
                TaxKind::ArrearsAssessed => arrears(&mut out, a, end, res.payments.get(&i)),
                TaxKind::AbnormalHousehold => out.push(What::TaxAbnormal, et, end, a),
                TaxKind::MajorViolation => out.push(What::TaxMajor, et, end, a),
                TaxKind::Paid => {
                    let w = add_months(et, cat.windows.tax_paid_months).min(end);
                    out.push(What::TaxPaid(t.amount_fen.unwrap_or(0)), et, w, a);
                }
                TaxKind::Declared => latest_per_period(&mut declared, t.period, i, res),
                TaxKind::SocialInsurance => latest_per_period(&mut insured, t.period, i, res),
                _ => {}
            },
            Body::Reg(r) => {
                if r.region_code.is_some() || r.industry_code.is_some() {
                    let place = What::Place(Box::new(Place {
                        region: r.region_code.clone(),
                        industry: r.industry_code.clone(),
                    }));
                    out.push(place, et, end, a);
                }
                match r.kind {
                    RegKind::Established
                        if established.is_none_or(|e| res.records[e].order() < a.order()) =>
                    {
                        established = Some(i);
                    }
                    RegKind::Changed if r.change_field.is_some_and(|f| f != ChangeField::Other) => {
                        let w = add_months(et, cat.windows.key_change_months).min(end);
                        out.push(What::KeyChange, et, w, a);
                    }
                    RegKind::AddressCluster => out.push(
                        What::AddressCluster(r.address_firm_count.unwrap_or(0)),
                        et,
                        end,
                        a,
                    ),
                    RegKind::Capital => {
                        let what = What::Capital {
                            registered: r.registered_capital_fen.unwrap_or(0),
                            paid_in: r.paid_in_fen.unwrap_or(0),
                        };
                        out.push(what, et, end, a);
                    }
                    RegKind::EquityPledge => {
                        out.push(What::Pledge(r.share_bp.unwrap_or(0)), et, end, a)
                    }
                    RegKind::Mortgage => out.push(What::Mortgage, et, end, a),
                    RegKind::AnnualReport => annual_report(&mut out, res, i, end),
                    // Every share record; the rows take the latest per counterparty at `t`.
                    RegKind::Shareholder | RegKind::Investment => {
                        if let Some(uscc) =
                            r.counterparty_uscc.clone().filter(|cp| *cp != a.event.uscc)
                        {
                            let bp = r.share_bp.unwrap_or(0);
                            let what = if r.kind == RegKind::Investment {
                                What::Investment { uscc, bp }
                            } else {
                                What::Shareholder { uscc, bp }
                            };
                            out.push(what, et, end, a);
                        }
                    }
                    RegKind::Status => {
                        if let Some(s) = r.status {
                            out.push(What::Status(s), et, end, a);
                        }
                    }
                    _ => {}
                }
            }
            Body::Jud(j) => {
                let key = (
                    j.court_code.clone().unwrap_or_default(),
                    j.case_no.clone().unwrap_or_default(),
                );
                cases.entry(key).or_default().push(i);
                match j.kind {
                    JudKind::DishonestListed => {
                        let until = j.list_until.map_or(Ts::MAX, date_end);
                        out.push(What::JudDishonest, et, end.min(until), a);
                    }
                    JudKind::ConsumptionRestricted => out.push(What::Consumption, et, end, a),
                    JudKind::Freeze if j.role == Some(JudRole::Defendant) => {
                        out.push(What::Freeze(j.amount_fen.unwrap_or(0)), et, end, a)
                    }
                    JudKind::CaseFiled if j.role == Some(JudRole::Defendant) && !ending.voided => {
                        let w = add_months(et, cat.windows.defendant_case_months).min(end);
                        out.push(What::DefendantCase, et, w, a);
                    }
                    _ => {}
                }
            }
            Body::Fin(f) => match f.kind {
                FinKind::OverdueListed | FinKind::OverdueUpdated => loans
                    .entry(f.loan_id.clone().unwrap_or_default())
                    .or_default()
                    .push(i),
                FinKind::DebtEvasionListed => out.push(What::DebtEvasion, et, end, a),
                FinKind::PoliceListed => out.push(What::Police, et, end, a),
                FinKind::SuspiciousAccount => accounts
                    .entry(f.account_hash.clone().unwrap_or_default())
                    .or_default()
                    .push(i),
                _ => {}
            },
            Body::Per(p) => {
                let person = p.person_hash.clone().unwrap_or_default();
                match p.kind {
                    PerKind::Score => {
                        let what = What::PersonScore(Box::new(PersonScore {
                            person,
                            score: p.score.unwrap_or(0),
                            scale_max: p.scale_max.unwrap_or(1),
                        }));
                        let stale = et.saturating_add(cat.windows.person_score_days * DAY);
                        out.push(what, et, stale.min(end), a);
                    }
                    PerKind::DishonestListed => out.push(What::PersonDishonest(person), et, end, a),
                    PerKind::Role if p.role == Some(PersonRole::LegalRep) => {
                        out.push(What::LegalRep(person), et, end, a)
                    }
                    _ => {}
                }
            }
            Body::Pcs(p) => match p.kind {
                PcsKind::Score => out.push(What::Pcs(p.score.unwrap_or(0)), et, end, a),
                PcsKind::Honour => {
                    let until = p.valid_until.map_or(Ts::MAX, date_end);
                    out.push(What::Honour, et, end.min(until), a);
                }
                PcsKind::HonourRevoked => {}
            },
            Body::Cmt(_) | Body::Rpr(_) => {}
        }
    }

    if let Some(i) = established {
        firm_age(&mut out, res.records[i], res.endings[i].end());
    } else {
        // Unknown establishment date counts as established: reports are always due.
        let first = res.records.first().or(res.winners.first());
        if let Some(a) = first {
            out.push(What::AnnualDue, Ts::MIN, Ts::MAX, a);
        }
    }
    periods(&mut out, res, &declared, &insured);
    for idx in cases.values() {
        enforcement(&mut out, res, idx);
    }
    for idx in loans.values() {
        overdue(&mut out, res, idx);
    }
    for (account, idx) in &accounts {
        suspicious(&mut out, res, account, idx);
    }
    obligations(&mut out, res);
    commitments(&mut out, res);
    for (rep, flag) in &res.flags {
        out.push(What::ReviewFlag(*flag), rep.event.event_time, Ts::MAX, rep);
    }
    for (rep, _, at) in &res.repairs {
        out.push(
            What::RepairDone,
            *at,
            add_months(*at, cat.windows.history_months),
            rep,
        );
    }
    let mut facts = out.facts;
    facts.sort();
    facts
}

/// The publicity end of a counted penalty decision, or `None` for MINOR.
fn publicity_end(a: &Accepted, cat: &Catalogue) -> Option<Ts> {
    let Body::Pen(p) = &a.event.body else {
        return None;
    };
    publicity_end_of(
        p.dishonesty_class,
        p.publicity_max_end,
        a.event.event_time,
        cat,
    )
}

/// For the negative records of row 30: when their effect ends (`Ts::MAX` if open).
fn negative_end(a: &Accepted, end: Ts, cat: &Catalogue) -> Option<Ts> {
    let e = &a.event;
    if let Body::Pen(_) = &e.body {
        return publicity_end(a, cat).map(|p| p.min(end));
    }
    let until = match &e.body {
        Body::Jud(j) => j.list_until,
        _ => None,
    };
    negative_until(e.feed(), e.body.kind_str(), end, until)
}

// What the reference's facts and engine v2's (`crate::table`, D95) compute alike, over the
// values each reads from its own records; each passes the facts to its own `push`.

/// The publicity end of a PEN record of dishonesty class `class` with its
/// `publicity_max_end`, from `event_time`; `None` for MINOR or no class.
pub(crate) fn publicity_end_of(
    class: Option<DishonestyClass>,
    max_end: Option<NaiveDate>,
    event_time: Ts,
    cat: &Catalogue,
) -> Option<Ts> {
    let months = match class? {
        DishonestyClass::Minor => return None,
        DishonestyClass::General => cat.publicity.general_max_months,
        DishonestyClass::Serious => cat.publicity.serious_max_months,
    };
    Some(max_end.map_or_else(|| add_months(event_time, months), date_end))
}

/// For the negative records of row 30 other than penalties: when their effect ends
/// (`end`, or a court list's `list_until`); `None` for a kind that is not negative.
pub(crate) fn negative_until(
    feed: Feed,
    kind: &str,
    end: Ts,
    list_until: Option<NaiveDate>,
) -> Option<Ts> {
    let negative = match feed {
        Feed::List => true,
        Feed::Tax => matches!(kind, "ABNORMAL_HOUSEHOLD" | "MAJOR_VIOLATION"),
        Feed::Jud => matches!(kind, "DISHONEST_LISTED" | "CONSUMPTION_RESTRICTED"),
        Feed::Fin => matches!(kind, "DEBT_EVASION_LISTED" | "POLICE_LISTED"),
        _ => false,
    };
    negative.then(|| end.min(list_until.map_or(Ts::MAX, date_end)))
}

/// Row 9: an assessment's unpaid balance from `from`, step by step as the payments
/// (sorted by time) arrive, until `end`.
pub(crate) fn arrears_steps<I: Ids>(
    assessed: i64,
    from: Ts,
    end: Ts,
    payments: &[crate::lifecycle::Payment],
    push: &mut impl FnMut(What<I>, Ts, Ts),
) {
    let (mut balance, mut from) = (assessed, from);
    for p in payments {
        if balance <= 0 {
            break;
        }
        push(What::Arrears(balance), from, p.at.min(end));
        from = from.max(p.at);
        balance = p.amount_fen.map_or(0, |x| balance - x);
    }
    if balance > 0 {
        push(What::Arrears(balance), from, end);
    }
}

/// Rows 12 and 15 and trigger R8 from an establishment at `et` in effect until `end`.
pub(crate) fn firm_age_steps<I: Ids>(
    et: Ts,
    end: Ts,
    cat: &Catalogue,
    push: &mut impl FnMut(What<I>, Ts, Ts),
) {
    for k in 0..5u8 {
        let from = add_years(et, u32::from(k));
        push(
            What::FirmAge(k),
            from,
            add_years(et, u32::from(k) + 1).min(end),
        );
    }
    push(What::FirmAge(5), add_years(et, 5), end);
    push(
        What::Young,
        et,
        add_years(et, cat.windows.young_firm_years).min(end),
    );
    // Reports are due from 1 July of the year after the establishment year.
    let year = crate::time::local_year(et);
    push(What::AnnualDue, ymd(year + 1, 7, 1), Ts::MAX);
}

/// Rows 23–24 from a period's latest declaration of `sales`, or rows 25–26 from its latest
/// insured staff (`declared` false), at `et` in effect until `end`.
pub(crate) fn period_steps<I: Ids>(
    p: Period,
    amount: i64,
    (et, end): (Ts, Ts),
    declared: bool,
    push: &mut impl FnMut(What<I>, Ts, Ts),
) {
    if !declared {
        push(
            What::Insured {
                period: p,
                count: amount,
            },
            et,
            end,
        );
        return;
    }
    let recent = (Period(p.0 + 1).start(), Period(p.0 + 13).start());
    let prior = (Period(p.0 + 13).start(), Period(p.0 + 25).start());
    push(
        What::SalesRecent(amount),
        et.max(recent.0),
        recent.1.min(end),
    );
    push(What::SalesPrior(amount), et.max(prior.0), prior.1.min(end));
    if amount == 0 {
        push(What::ZeroDecl, et.max(recent.0), recent.1.min(end));
    }
}

/// Rows 15–16 from an annual report of year `y` at `et` in effect until `end`, with the
/// first tax record that contradicts it.
pub(crate) fn annual_steps<I: Ids>(
    y: i32,
    (et, end): (Ts, Ts),
    contradiction: Option<Ts>,
    push: &mut impl FnMut(What<I>, Ts, Ts),
) {
    let (due, next_due) = (ymd(y + 1, 7, 1), ymd(y + 2, 7, 1));
    push(What::AnnualFiled, et.max(due), next_due.min(end));
    if let Some(tax_time) = contradiction {
        push(What::AnnualMismatch, et.max(tax_time), next_due.min(end));
    }
}

/// A court case's first enforcement filing or termination: its event time, when its
/// effect ends, its amount (the termination's unpaid amount) and role.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CaseStep {
    pub(crate) et: Ts,
    pub(crate) end: Ts,
    pub(crate) amount: i64,
    pub(crate) role: Option<JudRole>,
}

/// Rows 36–38 for one court case, from its first filing and first termination; `push`
/// is told whether the fact comes from the filing (`true`) or the termination.
pub(crate) fn enforcement_steps<I: Ids>(
    filed: Option<CaseStep>,
    terminated: Option<CaseStep>,
    push: &mut impl FnMut(bool, What<I>, Ts, Ts),
) {
    let defendant = filed
        .or(terminated)
        .is_some_and(|c| c.role.unwrap_or(JudRole::Defendant) == JudRole::Defendant);
    if !defendant {
        return;
    }
    if let Some(f) = filed {
        match terminated {
            Some(t) => {
                push(true, What::EnforcedOpen(f.amount), f.et, t.et.min(f.end));
                push(true, What::EnforcedOpen(t.amount), t.et.max(f.et), f.end);
            }
            None => push(true, What::EnforcedOpen(f.amount), f.et, f.end),
        }
    }
    if let Some(t) = terminated {
        if filed.is_none() {
            push(false, What::EnforcedOpen(t.amount), t.et, t.end);
        }
        if t.amount > 0 {
            push(false, What::TerminatedUnpaid, t.et, t.end);
        }
    }
}

/// Rows 40–41: one state of a loan at `et`, `d0` days overdue, until `end`, with the days
/// band growing with time.
pub(crate) fn overdue_steps<I: Ids>(
    loan: &I::Key,
    (et, end): (Ts, Ts),
    d0: i64,
    amount: i64,
    push: &mut impl FnMut(What<I>, Ts, Ts),
) {
    // days(t) = d0 + whole days since et; band edges at days 1, 31 and 91.
    let edge = |days: i64| et.saturating_add((days - d0).max(0).saturating_mul(DAY));
    let bands = [
        (0u8, Ts::MIN, edge(1)),
        (30, edge(1), edge(31)),
        (60, edge(31), edge(91)),
        (100, edge(91), Ts::MAX),
    ];
    for (band, from, to) in bands {
        let what = What::Overdue(Box::new(Overdue {
            loan: loan.clone(),
            band,
            amount,
        }));
        push(what, from.max(et), to.min(end));
    }
}

/// Rows 28–29 from an inspector's verification at `et` with `result`; a RECTIFY result's
/// deadline is its `rectify_deadline` (or the catalogue's default) and it is fixed by the
/// first of `rectified` at or after it. `broken` is told when the commitment broke.
pub(crate) fn verification_steps<I: Ids>(
    (et, result): (Ts, Option<CmtResult>),
    deadline: Option<NaiveDate>,
    rectified: &[Ts],
    w: &Windows,
    push: &mut impl FnMut(What<I>, Ts, Ts),
    broken: &mut impl FnMut(Ts),
) {
    let verified_end = add_months(et, w.commitment_kept_months);
    match result {
        Some(CmtResult::Broken) => {
            broken(et);
            push(What::CmtVerified { normal: false }, et, verified_end);
        }
        Some(CmtResult::Normal) => push(What::CmtVerified { normal: true }, et, verified_end),
        Some(CmtResult::Rectify) => {
            let (deadline, fixed) = rectify_window(et, deadline, rectified, w);
            push(What::RectifyOpen, et, deadline.min(fixed));
            push(What::RectifyOverdue, deadline, fixed);
            if fixed >= deadline {
                broken(deadline);
            }
            push(
                What::CmtVerified { normal: false },
                et,
                fixed.min(verified_end),
            );
            push(What::CmtVerified { normal: true }, fixed, verified_end);
        }
        None => {}
    }
}

/// Until when a commitment published at `et` is valid: its `valid_until`, else a year.
pub(crate) fn valid_until(et: Ts, valid_until: Option<NaiveDate>) -> Ts {
    valid_until.map_or_else(|| add_years(et, 1), date_end)
}

fn latest_per_period(
    map: &mut BTreeMap<Period, usize>,
    p: Option<Period>,
    i: usize,
    res: &Resolved<'_>,
) {
    if let Some(p) = p {
        let keep = map
            .get(&p)
            .is_none_or(|&j| res.records[j].order() < res.records[i].order());
        if keep {
            map.insert(p, i);
        }
    }
}

fn arrears(
    out: &mut Out<'_>,
    a: &Accepted,
    end: Ts,
    payments: Option<&Vec<crate::lifecycle::Payment>>,
) {
    let Body::Tax(t) = &a.event.body else { return };
    let mut pays: Vec<_> = payments.cloned().unwrap_or_default();
    pays.sort_by_key(|p| p.at);
    let mut push = |what, start, end| out.push(what, start, end, a);
    arrears_steps(
        t.amount_fen.unwrap_or(0),
        a.event.event_time,
        end,
        &pays,
        &mut push,
    );
}

fn firm_age(out: &mut Out<'_>, a: &Accepted, end: Ts) {
    let cat = out.cat;
    firm_age_steps(a.event.event_time, end, cat, &mut |what, start, end| {
        out.push(what, start, end, a)
    });
}

fn annual_report(out: &mut Out<'_>, res: &Resolved<'_>, i: usize, end: Ts) {
    let a = res.records[i];
    let Body::Reg(r) = &a.event.body else { return };
    let Some(y) = r.report_year else { return };
    // Row 16: reported tax or staff is 0 while TAX shows payments / insured staff that year.
    let contradiction = res
        .records
        .iter()
        .filter(|t| match &t.event.body {
            Body::Tax(x) => {
                let in_year = x.period.is_some_and(|p| p.year() == y);
                in_year
                    && ((x.kind == TaxKind::Paid
                        && x.amount_fen.unwrap_or(0) > 0
                        && r.reported_tax_fen == Some(0))
                        || (x.kind == TaxKind::SocialInsurance
                            && x.insured_count.unwrap_or(0) > 0
                            && r.reported_staff == Some(0)))
            }
            _ => false,
        })
        .map(|t| t.event.event_time)
        .min();
    let span = (a.event.event_time, end);
    annual_steps(y, span, contradiction, &mut |what, start, end| {
        out.push(what, start, end, a)
    });
}

fn periods(
    out: &mut Out<'_>,
    res: &Resolved<'_>,
    declared: &BTreeMap<Period, usize>,
    insured: &BTreeMap<Period, usize>,
) {
    let groups = [(declared, true), (insured, false)];
    for (latest, is_declared) in groups {
        for (&p, &i) in latest {
            let a = res.records[i];
            let Body::Tax(t) = &a.event.body else {
                continue;
            };
            let amount = if is_declared {
                t.sales_fen
            } else {
                t.insured_count
            };
            let span = (a.event.event_time, res.endings[i].end());
            let mut push = |what, start, end| out.push(what, start, end, a);
            period_steps(p, amount.unwrap_or(0), span, is_declared, &mut push);
        }
    }
}

/// Rows 36–38 for one court case.
fn enforcement(out: &mut Out<'_>, res: &Resolved<'_>, idx: &[usize]) {
    let first = |kind: JudKind| {
        idx.iter()
            .copied()
            .find_map(|i| match &res.records[i].event.body {
                Body::Jud(j) if j.kind == kind => Some((i, j)),
                _ => None,
            })
    };
    let filed = first(JudKind::EnforcementFiled);
    let terminated = first(JudKind::EnforcementTerminated);
    let step = |(i, j): (usize, &crate::event::Jud), amount: Option<i64>| CaseStep {
        et: res.records[i].event.event_time,
        end: res.endings[i].end(),
        amount: amount.unwrap_or(0),
        role: j.role,
    };
    enforcement_steps(
        filed.map(|f| step((f.0, &**f.1), f.1.amount_fen)),
        terminated.map(|t| step((t.0, &**t.1), t.1.unpaid_fen)),
        &mut |from_filing, what, start, end| {
            let i = if from_filing { filed } else { terminated };
            if let Some((i, _)) = i {
                out.push(what, start, end, res.records[i]);
            }
        },
    );
}

/// Rows 40–41: the states of one loan, with the days band growing with time.
fn overdue(out: &mut Out<'_>, res: &Resolved<'_>, idx: &[usize]) {
    let mut chain: Vec<usize> = idx.to_vec();
    chain.sort_by(|&a, &b| res.records[a].order().cmp(&res.records[b].order()));
    for (n, &i) in chain.iter().enumerate() {
        let a = res.records[i];
        let Body::Fin(f) = &a.event.body else {
            continue;
        };
        let next = chain
            .get(n + 1)
            .map_or(Ts::MAX, |&j| res.records[j].event.event_time);
        let span = (a.event.event_time, res.endings[i].end().min(next));
        let loan = f.loan_id.clone().unwrap_or_default();
        let (d0, amount) = (f.overdue_days.unwrap_or(0), f.overdue_fen.unwrap_or(0));
        overdue_steps(&loan, span, d0, amount, &mut |what, start, end| {
            out.push(what, start, end, a)
        });
    }
}

/// Row 44: one account, active until cleared or 12 months without an update.
fn suspicious(out: &mut Out<'_>, res: &Resolved<'_>, account: &str, idx: &[usize]) {
    let mut chain: Vec<usize> = idx.to_vec();
    chain.sort_by(|&a, &b| res.records[a].order().cmp(&res.records[b].order()));
    for (n, &i) in chain.iter().enumerate() {
        let a = res.records[i];
        let et = a.event.event_time;
        let next = chain
            .get(n + 1)
            .map_or(Ts::MAX, |&j| res.records[j].event.event_time);
        let stale = add_months(et, out.cat.windows.suspicious_stale_months);
        let end = res.endings[i].end().min(next).min(stale);
        out.push(What::Suspicious(account.into()), et, end, a);
    }
}

/// Row 31: performed obligations against their due dates.
fn obligations(out: &mut Out<'_>, res: &Resolved<'_>) {
    let months = out.cat.windows.history_months;
    for perf in &res.winners {
        let due = match &perf.event.body {
            Body::Pen(p) if p.kind == PenKind::Performed => res
                .records
                .iter()
                .filter(|d| is_pen_decision(&d.event))
                .filter_map(|d| match &d.event.body {
                    Body::Pen(x) if x.decision_no == p.decision_no => x.due_date,
                    _ => None,
                })
                .min(),
            Body::Jud(j) if j.kind == JudKind::Performed => res
                .records
                .iter()
                .filter_map(|d| match &d.event.body {
                    Body::Jud(x)
                        if x.kind == JudKind::EnforcementFiled
                            && x.case_no == j.case_no
                            && x.court_code == j.court_code =>
                    {
                        x.due_date
                    }
                    _ => None,
                })
                .min(),
            _ => None,
        };
        if let Some(due) = due {
            let et = perf.event.event_time;
            let what = What::Obligation {
                on_time: et < date_end(due),
            };
            out.push(what, et, add_months(et, months), perf);
        }
    }
}

/// A `VERIFIED` `RECTIFY` result's deadline (its `rectify_deadline`, or the catalogue's
/// default after its event time) and when it was rectified: the first of `rectified` (the
/// event times of the commitment's `RECTIFIED` records) at or after it, `Ts::MAX` if none.
fn rectification(a: &Accepted, c: &Cmt, rectified: &[Ts], w: &Windows) -> (Ts, Ts) {
    rectify_window(a.event.event_time, c.rectify_deadline, rectified, w)
}

/// A RECTIFY result's deadline at `et` (its `rectify_deadline`, or the catalogue's default)
/// and when it was rectified: the first of `rectified` at or after `et`, `Ts::MAX` if none.
pub(crate) fn rectify_window(
    et: Ts,
    deadline: Option<NaiveDate>,
    rectified: &[Ts],
    w: &Windows,
) -> (Ts, Ts) {
    let deadline =
        deadline.map_or_else(|| et.saturating_add(w.rectify_default_days * DAY), date_end);
    let fixed = rectified
        .iter()
        .copied()
        .filter(|&r| r >= et)
        .min()
        .unwrap_or(Ts::MAX);
    (deadline, fixed)
}

fn cmt(a: &Accepted) -> Option<&Cmt> {
    match &a.event.body {
        Body::Cmt(c) => Some(c),
        _ => None,
    }
}

/// Rows 27–29 and 33 from the CMT records of each commitment.
fn commitments(out: &mut Out<'_>, res: &Resolved<'_>) {
    let cat = out.cat;
    let w = &cat.windows;
    let mut by_id: BTreeMap<&str, Vec<&Accepted>> = BTreeMap::new();
    for a in &res.winners {
        if let Body::Cmt(c) = &a.event.body {
            by_id
                .entry(c.commitment_id.as_deref().unwrap_or(""))
                .or_default()
                .push(a);
        }
    }
    for (cid, recs) in by_id {
        let rectified: Vec<Ts> = recs
            .iter()
            .filter(|a| cmt(a).is_some_and(|c| c.kind == CmtKind::Rectified))
            .map(|a| a.event.event_time)
            .collect();
        let mut broken: Option<(Ts, &Accepted)> = None;
        let mut note_broken = |at: Ts, a| {
            if broken.is_none_or(|(b, _)| at < b) {
                broken = Some((at, a));
            }
        };
        for a in recs.iter().copied() {
            let Some(c) = cmt(a) else { continue };
            if c.kind != CmtKind::Verified {
                continue;
            }
            verification_steps(
                (a.event.event_time, c.result),
                c.rectify_deadline,
                &rectified,
                w,
                &mut |what, start, end| out.push(what, start, end, a),
                &mut |at| note_broken(at, a),
            );
        }
        // Off-site verification (D45): BROKEN at the first contradicting record, else
        // NORMAL at `valid_until`. An inspector's result replaces it for rows 28–29.
        let inspected = recs
            .iter()
            .any(|a| cmt(a).is_some_and(|c| c.kind == CmtKind::Verified));
        for p in recs.iter().copied() {
            let Some((result, at, x)) = offsite(res, cat, p) else {
                continue;
            };
            let normal = result == CmtResult::Normal;
            if !normal {
                note_broken(at, x);
            }
            if !inspected {
                let end = add_months(at, w.commitment_kept_months);
                out.push(What::CmtVerified { normal }, at, end, x);
            }
        }
        let broken_at = broken.map_or(Ts::MAX, |(b, _)| b);
        if let Some((b, a)) = broken {
            out.push(
                What::CmtBroken(cid.into()),
                b,
                add_months(b, w.commitment_broken_months),
                a,
            );
        }
        for a in recs.iter().copied() {
            let Some(c) = cmt(a) else { continue };
            if c.kind == CmtKind::Published && c.commitment_type == Some(CommitmentType::Voluntary)
            {
                let et = a.event.event_time;
                let valid = valid_until(et, c.valid_until);
                out.push(What::Voluntary, et, valid.min(broken_at), a);
            }
        }
    }
}

/// The automatic off-site result of a `PUBLISHED` record (D45): `BROKEN` at the event time of
/// the first (by event time, then event id) unretracted record of its matter's kinds with an
/// event time in `[published, valid_until)`, else `NORMAL` at `valid_until` (default 1 year);
/// with the record that decided it. `None` for other records.
fn offsite<'a>(
    res: &Resolved<'a>,
    cat: &Catalogue,
    p: &'a Accepted,
) -> Option<(CmtResult, Ts, &'a Accepted)> {
    let c = cmt(p).filter(|c| c.kind == CmtKind::Published)?;
    let from = p.event.event_time;
    let valid = valid_until(from, c.valid_until);
    let contra = res
        .records
        .iter()
        .enumerate()
        .filter(|(i, _)| res.endings.get(*i).is_none_or(|e| e.retracted.is_none()))
        .map(|(_, a)| *a)
        .filter(|a| {
            (from..valid).contains(&a.event.event_time)
                && cat.commitments.contradicted_by(
                    c.matter.as_deref(),
                    a.event.feed(),
                    a.event.body.kind_str(),
                )
        })
        .min_by_key(|a| (a.event.event_time, a.event.event_id.clone()));
    Some(match contra {
        Some(x) => (CmtResult::Broken, x.event.event_time, x),
        None => (CmtResult::Normal, valid, p),
    })
}

/// Who verified a commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Checker {
    /// The automatic off-site verification (D45).
    Offsite,
    /// An inspector (`CMT.VERIFIED`).
    Inspector,
    /// A `RECTIFIED` record before the rectification deadline (`NORMAL`).
    Rectified,
    /// The rectification deadline, passed with no `RECTIFIED` (`BROKEN` at the deadline).
    Deadline,
}

/// One verification result of a commitment, its commitment and record named as `I` names
/// them (D100).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Check<I: Ids = Text> {
    /// The commitment.
    pub commitment_id: I::Key,
    /// Who verified it.
    pub checker: Checker,
    /// The method: `OFFSITE` for the automatic result, the inspector's record's `method`
    /// when it names one.
    pub method: Option<VerifyMethod>,
    /// The result.
    pub result: CmtResult,
    /// When it takes effect (event time).
    pub at: Ts,
    /// The record that decided it: the contradicting record (off-site `BROKEN`), the
    /// `PUBLISHED` record (off-site `NORMAL`) or the `VERIFIED` record.
    pub record: I::Src,
}

/// What the commitment loop reads about one enterprise's commitments (D46).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum CommitmentEvent<I: Ids = Text> {
    /// A commitment with a `PUBLISHED` record in effect: its verification method is decided
    /// when it first appears.
    Published(I::Key),
    /// A verification result, which counts from its time `at`.
    Checked(Check<I>),
}

impl<I: Ids> CommitmentEvent<I> {
    /// The earliest logical time it can appear: a result not before it takes effect.
    pub fn from(&self) -> Ts {
        match self {
            CommitmentEvent::Published(_) => Ts::MIN,
            CommitmentEvent::Checked(c) => c.at,
        }
    }
}

/// The published commitments of one enterprise and every verification result: the
/// automatic off-site result of each `PUBLISHED` record, each inspector's `VERIFIED` result,
/// and the outcome of each `RECTIFY`: `NORMAL` when a `RECTIFIED` came before the deadline,
/// else `BROKEN` at the deadline. Sorted, without repeats.
pub fn commitment_events(res: &Resolved<'_>, cat: &Catalogue) -> Vec<CommitmentEvent> {
    let mut out = Vec::new();
    // Each commitment's RECTIFIED records, by event time.
    let mut rectified: BTreeMap<&str, Vec<(Ts, &Accepted)>> = BTreeMap::new();
    for a in &res.records {
        if let Some(c) = cmt(a).filter(|c| c.kind == CmtKind::Rectified) {
            rectified
                .entry(c.commitment_id.as_deref().unwrap_or(""))
                .or_default()
                .push((a.event.event_time, a));
        }
    }
    for a in &res.records {
        let Some(c) = cmt(a) else { continue };
        let id = c.commitment_id.clone().unwrap_or_default();
        if let Some((result, at, x)) = offsite(res, cat, a) {
            out.push(CommitmentEvent::Published(id.clone()));
            out.push(CommitmentEvent::Checked(Check {
                commitment_id: id,
                checker: Checker::Offsite,
                method: Some(VerifyMethod::Offsite),
                result,
                at,
                record: x.id(),
            }));
        } else if let (CmtKind::Verified, Some(result)) = (c.kind, c.result) {
            out.push(CommitmentEvent::Checked(Check {
                commitment_id: id.clone(),
                checker: Checker::Inspector,
                method: c.method,
                result,
                at: a.event.event_time,
                record: a.id(),
            }));
            if result == CmtResult::Rectify {
                let fixes = rectified.get(id.as_str()).map_or(&[][..], Vec::as_slice);
                let times: Vec<Ts> = fixes.iter().map(|(t, _)| *t).collect();
                let (deadline, fixed) = rectification(a, c, &times, &cat.windows);
                let check = if fixed < deadline {
                    let by = fixes
                        .iter()
                        .filter(|(t, _)| *t == fixed)
                        .map(|(_, r)| r.id())
                        .min()
                        .unwrap_or_else(|| a.id());
                    (Checker::Rectified, CmtResult::Normal, fixed, by)
                } else {
                    (Checker::Deadline, CmtResult::Broken, deadline, a.id())
                };
                out.push(CommitmentEvent::Checked(Check {
                    commitment_id: id,
                    checker: check.0,
                    method: None,
                    result: check.1,
                    at: check.2,
                    record: check.3,
                }));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
