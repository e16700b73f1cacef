//! Level-3 indicators: one shared function per row over the facts active at `t`
//! (`semantics.md` §3: floats only in per-enterprise functions of integer aggregates).
//!
//! [`local`] computes everything an enterprise's own facts decide (rows 1–44, the inputs
//! of triggers, `LR(E)`, relations, status, `P`). Rows 45–49 need other enterprises and
//! persons; [`Cross`] carries those joined inputs, and [`crate::score::evaluate`] finishes.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::catalogue::{Catalogue, RepairFlag, Transform, ROWS};
use crate::event::{RegStatus, TaxGrade};
use crate::fact::{by_event_id, Fact, Ids, Src, Text, Tie, What};
use crate::CompactString;

/// Rounds half away from zero to 0.01.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// An r-value (rounded to 0.01, in 0–100) as whole hundredths: exact, and
/// [`r_of_hundredths`] gives back the same `f64` bit for bit (the division [`round2`] does).
pub fn hundredths(r: f64) -> u16 {
    (r * 100.0).round() as u16
}

/// The r-values that [`hundredths`] holds (in place: reading them allocates nothing).
pub fn r_of_hundredths(h: &[u16; ROWS]) -> [f64; ROWS] {
    h.map(|x| f64::from(x) / 100.0)
}

/// What an enterprise's own active facts decide. Equal and ordered field by field, so that
/// a dataflow can carry it.
///
/// Generic over how facts name things ([`Ids`]): the reference's and the present engine's
/// by texts, engine v2's by fingerprints (D98), whose names are read from the store when a
/// state row is written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Local<I: Ids = Text> {
    /// r-values of rows 1–44 (45–49 are 0 here) in hundredths: each r is rounded to 0.01
    /// and lies in 0–100, so this holds it exactly, in place, with no allocation
    /// ([`Local::r_values`] gives the values).
    #[serde(with = "serde_big_array::BigArray")]
    r: [u16; ROWS],
    /// The records behind each row with a positive value, by row (a row at 0, which no
    /// explanation names, has none): most rows are 0, so only the others are listed.
    evidence: Vec<(u8, Arc<[I::Src]>)>,
    /// Latest tax grade, if any.
    pub tax_grade: Option<TaxGrade>,
    /// Active SERIOUS penalties.
    pub serious_penalties: u32,
    /// Distinct commitments broken within 24 months.
    pub broken_commitments: u32,
    /// Some loan is more than 90 days overdue.
    pub overdue_over_90: bool,
    /// An ESTABLISHED record is in effect.
    pub established: bool,
    /// Established less than 2 years ago.
    pub young: bool,
    /// `LR(E)`: the legal representative's `person_hash`, with the role record.
    pub legal_rep: Option<(I::Key, I::Src)>,
    /// Corporate shareholders at ≥ 500 bp, with the share record.
    pub shareholders: Vec<(I::Firm, I::Src)>,
    /// Affiliates invested in at > 0 bp, with the investment record.
    pub investments: Vec<(I::Firm, I::Src)>,
    /// Latest registration status.
    pub status: Option<RegStatus>,
    /// Latest provincial public credit score.
    pub p: Option<i64>,
    /// Region code from the latest REG record that carries one.
    pub region: Option<I::Code>,
    /// Industry code from the latest REG record that carries one.
    pub industry: Option<I::Code>,
    /// Review flags of the enterprise's repairs (D47) with the repair, sorted, each once
    /// ([`Local::review_flags`]).
    flags: Vec<(RepairFlag, I::Id)>,
    /// Σ `TAX.PAID` amount over the catalogue's `tax_paid_months` (the pre-credit line's base).
    pub tax_paid_fen: i64,
}

impl<I: Ids> Ord for Local<I> {
    fn cmp(&self, other: &Self) -> Ordering {
        // A state shared between stages meets itself most often.
        if std::ptr::eq(self, other) {
            return Ordering::Equal;
        }
        fn rest<I: Ids>(l: &Local<I>) -> impl Ord + '_ {
            (
                (
                    l.tax_grade,
                    l.serious_penalties,
                    l.broken_commitments,
                    l.overdue_over_90,
                    l.established,
                    l.young,
                ),
                (
                    &l.legal_rep,
                    &l.shareholders,
                    &l.investments,
                    l.status,
                    l.p,
                    &l.region,
                    &l.industry,
                    &l.flags,
                    l.tax_paid_fen,
                ),
            )
        }
        // The records behind a row are shared between copies: equal when they are one list.
        let rows = |(a, x): &(u8, Arc<[I::Src]>), (b, y): &(u8, Arc<[I::Src]>)| {
            a.cmp(b).then_with(|| {
                if Arc::ptr_eq(x, y) {
                    Ordering::Equal
                } else {
                    x.cmp(y)
                }
            })
        };
        // Hundredths order as the values they hold.
        self.r
            .cmp(&other.r)
            .then_with(|| lexicographic(&self.evidence, &other.evidence, rows))
            .then_with(|| rest(self).cmp(&rest(other)))
    }
}

/// `a` against `b` element by element with `cmp`, then by length.
fn lexicographic<T>(a: &[T], b: &[T], cmp: impl Fn(&T, &T) -> Ordering) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| cmp(x, y))
        .find(|o| o.is_ne())
        .unwrap_or(a.len().cmp(&b.len()))
}

impl<I: Ids> PartialOrd for Local<I> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<I: Ids> PartialEq for Local<I> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl<I: Ids> Eq for Local<I> {}

impl<I: Ids> Local<I> {
    /// The 49 r-values in hundredths, as [`hundredths`] gives them (rows 45–49 are 0 here:
    /// the joins decide them).
    pub fn r_hundredths(&self) -> &[u16; ROWS] {
        &self.r
    }

    /// The 49 r-values (rows 45–49 are 0 here: the joins decide them).
    pub fn r_values(&self) -> [f64; ROWS] {
        r_of_hundredths(&self.r)
    }

    /// The records behind row `row` (1–44) when its value is positive; none otherwise.
    pub fn evidence(&self, row: usize) -> Arc<[I::Src]> {
        self.evidence
            .binary_search_by_key(&(row as u8), |(r, _)| *r)
            .map_or_else(|_| Arc::from([]), |i| Arc::clone(&self.evidence[i].1))
    }

    /// The review flags of the enterprise's repairs (D47) with the repair, sorted, each
    /// once.
    pub fn flags(&self) -> &[(RepairFlag, I::Id)] {
        &self.flags
    }

    /// Scoring stopped: status `REVOKED` or `DEREGISTERED` (R9).
    pub fn stopped(&self) -> bool {
        matches!(
            self.status,
            Some(RegStatus::Revoked | RegStatus::Deregistered)
        )
    }
}

impl Local {
    /// The review flags of the enterprise's repairs (D47), sorted, each once.
    pub fn review_flags(&self) -> Vec<ReviewFlag> {
        self.flags()
            .iter()
            .map(|(flag, id)| ReviewFlag {
                flag: *flag,
                repair_event_id: id.clone(),
            })
            .collect()
    }
}

/// The inputs of rows 45–49 joined from persons and related enterprises.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cross {
    /// Latest personal score of `LR(E)` counting at `t`: `(score, scale_max, record)`.
    pub person_score: Option<(i64, i64, Src)>,
    /// `LR(E)`'s active personal dishonesty records.
    pub person_dishonest: Vec<Src>,
    /// Other enterprises of the same legal representative with a red trigger.
    pub rep_others_red: Vec<CompactString>,
    /// Corporate shareholders (≥ 500 bp) with a red trigger.
    pub shareholders_red: Vec<CompactString>,
    /// Affiliates with a red trigger.
    pub affiliates_red: Vec<CompactString>,
    /// All affiliates still scored.
    pub affiliates_all: u32,
}

/// What a row's own code measures before the catalogue's transform.
enum Measure {
    /// A count `n`.
    Count(f64),
    /// A sum in fen.
    Sum(i64),
    /// A flag.
    Flag(bool),
    /// A number the transform maps (bands) or a final value (row formulas).
    Value(f64),
    /// No record of that kind: the row's default.
    Missing,
}

fn amt(x: i64, cat: &Catalogue) -> f64 {
    let a = &cat.amounts;
    if x <= 0 {
        return 0.0;
    }
    let i = a.steps_fen.iter().take_while(|s| x >= **s).count();
    a.amt_values[i]
}

fn amt_rev(x: i64, cat: &Catalogue) -> f64 {
    let a = &cat.amounts;
    if x <= 0 {
        return a.amt_rev_values[0];
    }
    let i = a.steps_fen.iter().take(3).take_while(|s| x >= **s).count();
    a.amt_rev_values[i + 1]
}

fn bands(x: f64, thresholds: &[f64], values: &[f64]) -> f64 {
    let i = thresholds.iter().take_while(|th| x >= **th).count();
    values.get(i).copied().unwrap_or(0.0)
}

/// Applies row `row`'s catalogue transform to its measure, rounded to 0.01.
fn value(row: usize, m: Measure, cat: &Catalogue) -> f64 {
    let ind = cat.indicator(row);
    let v = match (ind.compute.transform(), m) {
        (_, Measure::Missing) => ind.default.unwrap_or(0.0),
        (Transform::Sat { k }, Measure::Count(n)) => 100.0 * (1.0 - (-n / k).exp()),
        (Transform::Flag, Measure::Flag(true)) => 100.0,
        (Transform::Amt, Measure::Sum(x)) => amt(x, cat),
        (Transform::AmtRev, Measure::Sum(x)) => amt_rev(x, cat),
        (Transform::Linear { per, cap }, Measure::Count(n)) => (per * n).min(*cap),
        (Transform::Bands { thresholds, values }, Measure::Value(x)) => {
            bands(x, thresholds, values)
        }
        (_, Measure::Value(x)) => x,
        _ => 0.0,
    };
    // `+ 0.0` turns −0 into 0 so outputs never print "-0".
    round2(v.clamp(0.0, 100.0)) + 0.0
}

/// Active facts of one enterprise, grouped for the rows, with the tie-break of their
/// records.
struct View<'a, 't, I: Ids> {
    facts: Vec<&'a Fact<I>>,
    ties: Tie<'t, I::Src>,
}

impl<'a, I: Ids> View<'a, '_, I> {
    /// The "latest" order of facts: by their records' `(event_time, ingest_time, event_id)`,
    /// then by the facts themselves, so that the latest of several facts of one record does
    /// not depend on the order in which they are listed.
    fn later(&self, a: &Fact<I>, b: &Fact<I>) -> Ordering {
        a.order
            .cmp(&b.order)
            .then_with(|| (self.ties)(&a.src, &b.src))
            .then_with(|| a.cmp(b))
    }
    fn all<'b, P: Fn(&What<I>) -> bool + 'b>(
        &'b self,
        pred: P,
    ) -> impl Iterator<Item = &'a Fact<I>> + 'b {
        self.facts.iter().copied().filter(move |f| pred(&f.what))
    }
    fn count(&self, pred: impl Fn(&What<I>) -> bool) -> f64 {
        self.all(pred).count() as f64
    }
    fn latest(&self, pred: impl Fn(&What<I>) -> bool) -> Option<&'a Fact<I>> {
        self.all(pred).max_by(|a, b| self.later(a, b))
    }
    /// The distinct records behind the matching facts, sorted.
    fn srcs(&self, pred: impl Fn(&What<I>) -> bool) -> Vec<I::Src> {
        let mut refs: Vec<&I::Src> = self.all(pred).map(|f| &f.src).collect();
        refs.sort_unstable();
        refs.dedup();
        refs.into_iter().cloned().collect()
    }
}

/// The rows among 1–44 whose values facts of this kind can change (`local`'s code, row by
/// row). Kinds that feed only the state's other fields (status, `P`, place, relations,
/// review flags, youth) or other enterprises' rows 45–49 read none.
pub fn rows_read<I: Ids>(what: &What<I>) -> &'static [usize] {
    match what {
        What::PenGeneral => &[1],
        What::PenSerious => &[2],
        What::PenAmount(_) => &[3],
        What::ListAbnormal => &[4],
        What::ListSerious => &[5],
        What::InspFail => &[6],
        What::InspResult { .. } => &[7],
        What::TaxGrade { .. } => &[8],
        What::Arrears(_) => &[9],
        What::TaxAbnormal => &[10],
        What::TaxMajor => &[11],
        What::FirmAge(_) => &[12],
        What::KeyChange => &[13],
        What::AddressCluster(_) => &[14],
        What::AnnualDue | What::AnnualFiled => &[15],
        What::AnnualMismatch => &[16],
        What::Capital { .. } => &[17, 18],
        What::Pledge(_) => &[19],
        What::Freeze(_) => &[20],
        What::Mortgage => &[21],
        What::TaxPaid(_) => &[22],
        What::SalesRecent(_) | What::SalesPrior(_) => &[23],
        What::ZeroDecl => &[24],
        What::Insured { .. } => &[25, 26],
        What::CmtBroken(_) => &[27],
        What::RectifyOpen | What::RectifyOverdue => &[28],
        What::CmtVerified { .. } => &[29],
        What::RepairDone | What::NegUnrepaired => &[30],
        What::Obligation { .. } => &[31],
        What::Honour => &[32],
        What::Voluntary => &[33],
        What::JudDishonest => &[34],
        What::Consumption => &[35],
        What::TerminatedUnpaid => &[36],
        What::EnforcedOpen(_) => &[37, 38],
        What::DefendantCase => &[39],
        What::Overdue(_) => &[40, 41],
        What::DebtEvasion => &[42],
        What::Police => &[43],
        What::Suspicious(_) => &[44],
        What::Young
        | What::PersonScore(_)
        | What::PersonDishonest(_)
        | What::LegalRep(_)
        | What::Shareholder { .. }
        | What::Investment { .. }
        | What::Status(_)
        | What::Pcs(_)
        | What::Place(_)
        | What::ReviewFlag(_) => &[],
    }
}

/// The groups of fact kinds that decide disjoint parts of [`Local`]: a part is a function
/// of its family's active facts alone, so a change of one fact recomputes one part
/// ([`LocalState`]). Person-scoped facts belong to none (rows 45–46 join them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)]
pub enum Family {
    PenGeneral,
    PenSerious,
    PenAmount,
    ListAbnormal,
    ListSerious,
    InspFail,
    InspResult,
    TaxGrade,
    Arrears,
    TaxAbnormal,
    TaxMajor,
    FirmAge,
    Young,
    KeyChange,
    AddressCluster,
    Annual,
    AnnualMismatch,
    Capital,
    Pledge,
    Freeze,
    Mortgage,
    TaxPaid,
    Sales,
    ZeroDecl,
    Insured,
    CmtBroken,
    Rectify,
    CmtVerified,
    Repair,
    Obligation,
    Honour,
    Voluntary,
    JudDishonest,
    Consumption,
    TerminatedUnpaid,
    EnforcedOpen,
    DefendantCase,
    Overdue,
    DebtEvasion,
    Police,
    Suspicious,
    LegalRep,
    Relations,
    Status,
    Pcs,
    Place,
    ReviewFlag,
}

impl Family {
    /// Every family, in the order of their discriminants.
    pub const ALL: [Family; 47] = {
        use Family::*;
        [
            PenGeneral,
            PenSerious,
            PenAmount,
            ListAbnormal,
            ListSerious,
            InspFail,
            InspResult,
            TaxGrade,
            Arrears,
            TaxAbnormal,
            TaxMajor,
            FirmAge,
            Young,
            KeyChange,
            AddressCluster,
            Annual,
            AnnualMismatch,
            Capital,
            Pledge,
            Freeze,
            Mortgage,
            TaxPaid,
            Sales,
            ZeroDecl,
            Insured,
            CmtBroken,
            Rectify,
            CmtVerified,
            Repair,
            Obligation,
            Honour,
            Voluntary,
            JudDishonest,
            Consumption,
            TerminatedUnpaid,
            EnforcedOpen,
            DefendantCase,
            Overdue,
            DebtEvasion,
            Police,
            Suspicious,
            LegalRep,
            Relations,
            Status,
            Pcs,
            Place,
            ReviewFlag,
        ]
    };

    /// The family of a fact kind; `None` for the person-scoped kinds, which [`local`] does
    /// not read.
    pub fn of<I: Ids>(what: &What<I>) -> Option<Family> {
        use Family as F;
        Some(match what {
            What::PenGeneral => F::PenGeneral,
            What::PenSerious => F::PenSerious,
            What::PenAmount(_) => F::PenAmount,
            What::ListAbnormal => F::ListAbnormal,
            What::ListSerious => F::ListSerious,
            What::InspFail => F::InspFail,
            What::InspResult { .. } => F::InspResult,
            What::TaxGrade { .. } => F::TaxGrade,
            What::Arrears(_) => F::Arrears,
            What::TaxAbnormal => F::TaxAbnormal,
            What::TaxMajor => F::TaxMajor,
            What::FirmAge(_) => F::FirmAge,
            What::Young => F::Young,
            What::KeyChange => F::KeyChange,
            What::AddressCluster(_) => F::AddressCluster,
            What::AnnualDue | What::AnnualFiled => F::Annual,
            What::AnnualMismatch => F::AnnualMismatch,
            What::Capital { .. } => F::Capital,
            What::Pledge(_) => F::Pledge,
            What::Freeze(_) => F::Freeze,
            What::Mortgage => F::Mortgage,
            What::TaxPaid(_) => F::TaxPaid,
            What::SalesRecent(_) | What::SalesPrior(_) => F::Sales,
            What::ZeroDecl => F::ZeroDecl,
            What::Insured { .. } => F::Insured,
            What::CmtBroken(_) => F::CmtBroken,
            What::RectifyOpen | What::RectifyOverdue => F::Rectify,
            What::CmtVerified { .. } => F::CmtVerified,
            What::RepairDone | What::NegUnrepaired => F::Repair,
            What::Obligation { .. } => F::Obligation,
            What::Honour => F::Honour,
            What::Voluntary => F::Voluntary,
            What::JudDishonest => F::JudDishonest,
            What::Consumption => F::Consumption,
            What::TerminatedUnpaid => F::TerminatedUnpaid,
            What::EnforcedOpen(_) => F::EnforcedOpen,
            What::DefendantCase => F::DefendantCase,
            What::Overdue(_) => F::Overdue,
            What::DebtEvasion => F::DebtEvasion,
            What::Police => F::Police,
            What::Suspicious(_) => F::Suspicious,
            What::LegalRep(_) => F::LegalRep,
            What::Shareholder { .. } | What::Investment { .. } => F::Relations,
            What::Status(_) => F::Status,
            What::Pcs(_) => F::Pcs,
            What::Place(_) => F::Place,
            What::ReviewFlag(_) => F::ReviewFlag,
            What::PersonScore(_) | What::PersonDishonest(_) => return None,
        })
    }
}

impl<I: Ids> Local<I> {
    /// The state of an enterprise with no facts, before any part is computed.
    fn blank() -> Local<I> {
        Local {
            r: [0; ROWS],
            evidence: Vec::new(),
            tax_grade: None,
            serious_penalties: 0,
            broken_commitments: 0,
            overdue_over_90: false,
            established: false,
            young: false,
            legal_rep: None,
            shareholders: Vec::new(),
            investments: Vec::new(),
            status: None,
            p: None,
            region: None,
            industry: None,
            flags: Vec::new(),
            tax_paid_fen: 0,
        }
    }

    /// Sets row `row` from its measure. A row's records are listed only when its value is
    /// positive: only such a row can be among the top five that an evaluation explains
    /// (`score::top_rows`).
    fn set(&mut self, row: usize, m: Measure, cat: &Catalogue, ev: impl FnOnce() -> Vec<I::Src>) {
        let x = value(row, m, cat);
        self.r[row - 1] = hundredths(x);
        let at = self
            .evidence
            .binary_search_by_key(&(row as u8), |(r, _)| *r);
        match (at, x > 0.0) {
            (Ok(i), true) => self.evidence[i].1 = ev().into(),
            (Ok(i), false) => {
                self.evidence.remove(i);
            }
            (Err(i), true) => {
                crate::reserve_kept(&mut self.evidence, 1);
                self.evidence.insert(i, (row as u8, ev().into()));
            }
            (Err(_), false) => {}
        }
    }
}

/// Computes rows 1–44 and the enterprise's own trigger inputs from its active facts.
pub fn local(active: &[&Fact], cat: &Catalogue) -> Local {
    local_by(active, cat, &by_event_id)
}

/// [`local`] of facts named by `I`, their records' ties broken by `ties`.
pub fn local_by<I: Ids>(active: &[&Fact<I>], cat: &Catalogue, ties: Tie<'_, I::Src>) -> Local<I> {
    let mut by_family: Vec<Vec<&Fact<I>>> = vec![Vec::new(); Family::ALL.len()];
    for f in active {
        if let Some(fam) = Family::of(&f.what) {
            by_family[fam as usize].push(f);
        }
    }
    let mut l = Local::blank();
    for (fam, facts) in Family::ALL.into_iter().zip(by_family) {
        part(fam, View { facts, ties }, cat, &mut l);
    }
    l
}

/// Sets the fields of `l` that family `fam` decides from the family's active `facts` (all
/// of them: an empty `facts` resets them).
fn part<I: Ids>(fam: Family, v: View<'_, '_, I>, cat: &Catalogue, l: &mut Local<I>) {
    macro_rules! count_row {
        ($row:expr, $pat:pat) => {
            l.set(
                $row,
                Measure::Count(v.count(|w| matches!(w, $pat))),
                cat,
                || v.srcs(|w| matches!(w, $pat)),
            )
        };
    }
    macro_rules! flag_row {
        ($row:expr, $pat:pat) => {
            l.set(
                $row,
                Measure::Flag(v.count(|w| matches!(w, $pat)) > 0.0),
                cat,
                || v.srcs(|w| matches!(w, $pat)),
            )
        };
    }
    macro_rules! sum_row {
        ($row:expr, $pat:pat => $x:expr) => {{
            let get = |w: &What<I>| match w {
                $pat => Some($x),
                _ => None,
            };
            let s: i64 = v.facts.iter().filter_map(|f| get(&f.what)).sum();
            l.set($row, Measure::Sum(s), cat, || v.srcs(|w| get(w).is_some()))
        }};
    }
    match fam {
        Family::PenGeneral => count_row!(1, What::PenGeneral),
        Family::PenSerious => {
            count_row!(2, What::PenSerious);
            l.serious_penalties = v.count(|w| matches!(w, What::PenSerious)) as u32;
        }
        Family::PenAmount => sum_row!(3, What::PenAmount(x) => *x),
        Family::ListAbnormal => flag_row!(4, What::ListAbnormal),
        Family::ListSerious => flag_row!(5, What::ListSerious),
        Family::InspFail => count_row!(6, What::InspFail),
        Family::InspResult => {
            // Row 7: streak of the latest PASS results.
            let mut results: Vec<&Fact<I>> =
                v.all(|w| matches!(w, What::InspResult { .. })).collect();
            results.sort_by(|a, b| v.later(b, a));
            let streak = results
                .iter()
                .take_while(|f| matches!(f.what, What::InspResult { pass: true }))
                .count() as f64;
            let c7 = &cat.indicator(7).compute;
            let m7 = if results.is_empty() {
                Measure::Missing
            } else {
                Measure::Value((c7.num("base") - c7.num("step") * streak).max(0.0))
            };
            l.set(7, m7, cat, || {
                results.iter().map(|f| f.src.clone()).take(1).collect()
            });
        }
        Family::TaxGrade => {
            // Row 8: latest grade, by evaluated year first.
            let grade = v
                .all(|w| matches!(w, What::TaxGrade { .. }))
                .max_by(|a, b| {
                    let y = |f: &Fact<I>| match f.what {
                        What::TaxGrade { eval_year, .. } => eval_year,
                        _ => 0,
                    };
                    y(a).cmp(&y(b)).then_with(|| v.later(a, b))
                });
            l.tax_grade = grade.and_then(|f| match f.what {
                What::TaxGrade { grade, .. } => Some(grade),
                _ => None,
            });
            let m8 = l.tax_grade.map_or(Measure::Missing, |g| {
                Measure::Value(cat.indicator(8).compute.num(g.as_str()))
            });
            l.set(8, m8, cat, || {
                grade.map(|f| vec![f.src.clone()]).unwrap_or_default()
            });
        }
        Family::Arrears => sum_row!(9, What::Arrears(x) => *x),
        Family::TaxAbnormal => flag_row!(10, What::TaxAbnormal),
        Family::TaxMajor => flag_row!(11, What::TaxMajor),
        Family::FirmAge => {
            let age = v.latest(|w| matches!(w, What::FirmAge(_)));
            let c12 = &cat.indicator(12).compute;
            let m12 = age.map_or(Measure::Missing, |f| match f.what {
                What::FirmAge(y) => {
                    Measure::Value((c12.num("base") - c12.num("per_year") * f64::from(y)).max(0.0))
                }
                _ => Measure::Missing,
            });
            l.set(12, m12, cat, || {
                age.map(|f| vec![f.src.clone()]).unwrap_or_default()
            });
            l.established = age.is_some();
        }
        Family::Young => l.young = v.count(|w| matches!(w, What::Young)) > 0.0,
        Family::KeyChange => count_row!(13, What::KeyChange),
        Family::AddressCluster => {
            let cluster = v.latest(|w| matches!(w, What::AddressCluster(_)));
            let m14 = match cluster.map(|f| &f.what) {
                Some(What::AddressCluster(n)) => Measure::Value(*n as f64),
                _ => Measure::Missing,
            };
            l.set(14, m14, cat, || {
                cluster.map(|f| vec![f.src.clone()]).unwrap_or_default()
            });
        }
        Family::Annual => {
            let due = v.count(|w| matches!(w, What::AnnualDue)) > 0.0;
            let filed = v.count(|w| matches!(w, What::AnnualFiled)) > 0.0;
            l.set(15, Measure::Flag(due && !filed), cat, || {
                v.srcs(|w| matches!(w, What::AnnualFiled))
            });
        }
        Family::AnnualMismatch => flag_row!(16, What::AnnualMismatch),
        Family::Capital => {
            let capital = v.latest(|w| matches!(w, What::Capital { .. }));
            let (m17, m18) = match capital.map(|f| &f.what) {
                Some(What::Capital {
                    registered,
                    paid_in,
                }) => {
                    let ratio = if *registered == 0 {
                        cat.indicator(17).compute.num("zero_capital")
                    } else {
                        100.0 * (1.0 - *paid_in as f64 / *registered as f64)
                    };
                    (Measure::Value(ratio), Measure::Value(*registered as f64))
                }
                _ => (Measure::Missing, Measure::Missing),
            };
            let cap_src = || capital.map(|f| vec![f.src.clone()]).unwrap_or_default();
            l.set(17, m17, cat, cap_src);
            l.set(18, m18, cat, cap_src);
        }
        Family::Pledge => {
            let pledged: i64 = v
                .all(|w| matches!(w, What::Pledge(_)))
                .map(|f| match f.what {
                    What::Pledge(bp) => bp,
                    _ => 0,
                })
                .sum();
            l.set(19, Measure::Count(pledged as f64), cat, || {
                v.srcs(|w| matches!(w, What::Pledge(_)))
            });
        }
        Family::Freeze => sum_row!(20, What::Freeze(x) => *x),
        Family::Mortgage => count_row!(21, What::Mortgage),
        Family::TaxPaid => {
            sum_row!(22, What::TaxPaid(x) => *x);
            l.tax_paid_fen = v
                .facts
                .iter()
                .map(|f| match f.what {
                    What::TaxPaid(x) => x,
                    _ => 0,
                })
                .sum();
        }
        Family::Sales => {
            // Row 23: sales year over year.
            let c23 = &cat.indicator(23).compute;
            let sum = |pat: fn(&What<I>) -> Option<i64>| -> (i64, usize) {
                let xs: Vec<i64> = v.facts.iter().filter_map(|f| pat(&f.what)).collect();
                (xs.iter().sum(), xs.len())
            };
            let (recent, _) = sum(|w| match w {
                What::SalesRecent(x) => Some(*x),
                _ => None,
            });
            let (prior, n_prior) = sum(|w| match w {
                What::SalesPrior(x) => Some(*x),
                _ => None,
            });
            let v23 = if n_prior == 0 {
                c23.num("no_prior")
            } else if prior == 0 && recent == 0 {
                c23.num("zero_both")
            } else if prior == 0 {
                c23.num("zero_prior")
            } else {
                let yoy = (recent - prior) as f64 / prior as f64;
                c23.num("base") - c23.num("scale") * yoy
            };
            l.set(23, Measure::Value(v23), cat, || {
                v.srcs(|w| matches!(w, What::SalesRecent(_) | What::SalesPrior(_)))
            });
        }
        Family::ZeroDecl => {
            let zero = v.count(|w| matches!(w, What::ZeroDecl)).min(12.0);
            l.set(24, Measure::Count(zero), cat, || {
                v.srcs(|w| matches!(w, What::ZeroDecl))
            });
        }
        Family::Insured => {
            // Rows 25–26: latest insured staff, and its change against period − 6.
            let staff = v.latest(|w| matches!(w, What::Insured { .. }));
            let (m25, m26, before) = match staff.map(|f| &f.what) {
                Some(What::Insured { period, count }) => {
                    let lag = cat.indicator(26).compute.num("lag_months") as i32;
                    let before = v
                        .all(|w| {
                            matches!(w, What::Insured { period: p, .. } if p.0 == period.0 - lag)
                        })
                        .max_by(|a, b| v.later(a, b));
                    let n6 = before.and_then(|f| match f.what {
                        What::Insured { count, .. } => Some(count),
                        _ => None,
                    });
                    let v26 = match n6 {
                        Some(n6) if n6 > 0 => {
                            let delta = (*count - n6) as f64 / n6 as f64;
                            -cat.indicator(26).compute.num("per_unit") * delta
                        }
                        _ => 0.0,
                    };
                    (Measure::Value(*count as f64), Measure::Value(v26), before)
                }
                _ => (Measure::Missing, Measure::Value(0.0), None),
            };
            l.set(25, m25, cat, || {
                staff.map(|f| vec![f.src.clone()]).unwrap_or_default()
            });
            l.set(26, m26, cat, || {
                staff
                    .iter()
                    .chain(before.iter())
                    .map(|f| f.src.clone())
                    .collect()
            });
        }
        Family::CmtBroken => {
            let broken: BTreeSet<&I::Key> = v
                .all(|w| matches!(w, What::CmtBroken(_)))
                .filter_map(|f| match &f.what {
                    What::CmtBroken(id) => Some(id),
                    _ => None,
                })
                .collect();
            l.broken_commitments = broken.len() as u32;
            l.set(27, Measure::Count(broken.len() as f64), cat, || {
                v.srcs(|w| matches!(w, What::CmtBroken(_)))
            });
        }
        Family::Rectify => {
            let c28 = &cat.indicator(28).compute;
            let open = v.count(|w| matches!(w, What::RectifyOpen));
            let overdue = v.count(|w| matches!(w, What::RectifyOverdue));
            let v28 = (c28.num("open") * open + c28.num("overdue") * overdue).min(c28.num("cap"));
            l.set(28, Measure::Value(v28), cat, || {
                v.srcs(|w| matches!(w, What::RectifyOpen | What::RectifyOverdue))
            });
        }
        Family::CmtVerified => {
            let normal = v.count(|w| matches!(w, What::CmtVerified { normal: true }));
            let verified = v.count(|w| matches!(w, What::CmtVerified { .. }));
            l.set(29, ratio(normal, verified), cat, || {
                v.srcs(|w| matches!(w, What::CmtVerified { .. }))
            });
        }
        Family::Repair => {
            let repaired = v.count(|w| matches!(w, What::RepairDone));
            let unrepaired = v.count(|w| matches!(w, What::NegUnrepaired));
            l.set(30, ratio(repaired, repaired + unrepaired), cat, || {
                v.srcs(|w| matches!(w, What::RepairDone | What::NegUnrepaired))
            });
        }
        Family::Obligation => {
            let on_time = v.count(|w| matches!(w, What::Obligation { on_time: true }));
            let obligations = v.count(|w| matches!(w, What::Obligation { .. }));
            l.set(31, ratio(on_time, obligations), cat, || {
                v.srcs(|w| matches!(w, What::Obligation { .. }))
            });
        }
        Family::Honour => {
            let active = v.count(|w| matches!(w, What::Honour)) > 0.0;
            l.set(32, good(32, active, cat), cat, || {
                v.srcs(|w| matches!(w, What::Honour))
            });
        }
        Family::Voluntary => {
            let active = v.count(|w| matches!(w, What::Voluntary)) > 0.0;
            l.set(33, good(33, active, cat), cat, || {
                v.srcs(|w| matches!(w, What::Voluntary))
            });
        }
        Family::JudDishonest => flag_row!(34, What::JudDishonest),
        Family::Consumption => flag_row!(35, What::Consumption),
        Family::TerminatedUnpaid => count_row!(36, What::TerminatedUnpaid),
        Family::EnforcedOpen => {
            count_row!(37, What::EnforcedOpen(_));
            sum_row!(38, What::EnforcedOpen(x) => *x);
        }
        Family::DefendantCase => count_row!(39, What::DefendantCase),
        Family::Overdue => {
            let band = v
                .all(|w| matches!(w, What::Overdue(_)))
                .filter_map(|f| match &f.what {
                    What::Overdue(o) => Some(o.band),
                    _ => None,
                })
                .max()
                .unwrap_or(0);
            l.set(40, Measure::Value(f64::from(band)), cat, || {
                v.srcs(|w| matches!(w, What::Overdue(o) if o.band > 0))
            });
            sum_row!(41, What::Overdue(o) => o.amount);
            l.overdue_over_90 = band >= 100;
        }
        Family::DebtEvasion => flag_row!(42, What::DebtEvasion),
        Family::Police => flag_row!(43, What::Police),
        Family::Suspicious => {
            let accounts: BTreeSet<&I::Key> = v
                .all(|w| matches!(w, What::Suspicious(_)))
                .filter_map(|f| match &f.what {
                    What::Suspicious(a) => Some(a),
                    _ => None,
                })
                .collect();
            l.set(44, Measure::Count(accounts.len() as f64), cat, || {
                v.srcs(|w| matches!(w, What::Suspicious(_)))
            });
        }
        Family::LegalRep => {
            l.legal_rep =
                v.latest(|w| matches!(w, What::LegalRep(_)))
                    .and_then(|f| match &f.what {
                        What::LegalRep(p) => Some((p.clone(), f.src.clone())),
                        _ => None,
                    });
        }
        Family::Relations => {
            let mut seen: BTreeMap<(bool, &I::Firm), &Fact<I>> = BTreeMap::new();
            for f in v.all(|w| matches!(w, What::Shareholder { .. } | What::Investment { .. })) {
                let key = match &f.what {
                    What::Shareholder { uscc, .. } => (false, uscc),
                    What::Investment { uscc, .. } => (true, uscc),
                    _ => continue,
                };
                if seen.get(&key).is_none_or(|g| v.later(g, f).is_lt()) {
                    seen.insert(key, f);
                }
            }
            l.shareholders.clear();
            l.investments.clear();
            for f in seen.values() {
                match &f.what {
                    What::Shareholder { uscc, bp } if *bp >= 500 => {
                        l.shareholders.push((uscc.clone(), f.src.clone()))
                    }
                    What::Investment { uscc, bp } if *bp > 0 => {
                        l.investments.push((uscc.clone(), f.src.clone()))
                    }
                    _ => {}
                }
            }
        }
        Family::Status => {
            l.status = v
                .latest(|w| matches!(w, What::Status(_)))
                .and_then(|f| match f.what {
                    What::Status(s) => Some(s),
                    _ => None,
                });
        }
        Family::Pcs => {
            l.p = v
                .latest(|w| matches!(w, What::Pcs(_)))
                .and_then(|f| match f.what {
                    What::Pcs(s) => Some(s),
                    _ => None,
                });
        }
        Family::Place => {
            // The latest record that carries each code.
            let code = |i: usize| {
                let of = |f: &Fact<I>| match &f.what {
                    What::Place(p) => I::codes(p, &f.src)[i].clone(),
                    _ => None,
                };
                v.facts
                    .iter()
                    .filter(|f| of(f).is_some())
                    .max_by(|a, b| v.later(a, b))
                    .and_then(|f| of(f))
            };
            l.region = code(0);
            l.industry = code(1);
        }
        Family::ReviewFlag => l.flags = review_flags(&v.facts),
    }
}

/// Rows 29–31: the share of good outcomes.
fn ratio(good: f64, all: f64) -> Measure {
    if all == 0.0 {
        Measure::Missing
    } else {
        Measure::Value(100.0 * (1.0 - good / all))
    }
}

/// Rows 32–33: 0 while a good record is in effect, else the row's `inactive` value.
fn good(row: usize, active: bool, cat: &Catalogue) -> Measure {
    if active {
        Measure::Value(0.0)
    } else {
        Measure::Value(cat.indicator(row).compute.num("inactive"))
    }
}

/// One enterprise's active facts with [`Local`] kept current: a change recomputes only the
/// part of the [`Family`] it touched, and equals [`local`] over the same facts (the same
/// part functions over the same facts per family).
#[derive(Debug, Clone)]
pub struct LocalState<F, I: Ids = Text> {
    /// The active facts that `local` reads (not the person-scoped ones), sorted, counts
    /// non-zero. Families are runs of kinds in the order of [`What`], so each family's
    /// facts are one run here, in the order of [`Family`].
    facts: Vec<(F, isize)>,
    /// Families changed since `current` was last brought up to date, one bit each.
    dirty: u64,
    /// `local` of the facts as of the last [`LocalState::local`], shared with its readers
    /// until a change (copy on write).
    current: Arc<Local<I>>,
}

impl<F: std::borrow::Borrow<Fact<I>> + Ord, I: Ids> Default for LocalState<F, I> {
    fn default() -> Self {
        LocalState {
            facts: Vec::new(),
            // Every part is computed once, for an enterprise with no facts.
            dirty: (1u64 << Family::ALL.len()) - 1,
            current: Arc::new(Local::blank()),
        }
    }
}

impl<F: std::borrow::Borrow<Fact<I>> + Ord, I: Ids> LocalState<F, I> {
    /// What no facts decide under `cat` and `ties`: the state to share among new ones
    /// ([`LocalState::with_empty`]).
    pub fn empty(cat: &Catalogue, ties: Tie<'_, I::Src>) -> Arc<Local<I>> {
        Arc::clone(Self::default().local(cat, ties))
    }

    /// A state with no facts whose [`LocalState::local`] is `empty`, shared. `empty` must be
    /// [`LocalState::empty`] under the catalogue and ties the state is read with, so that a
    /// new enterprise does not compute every part again (D108).
    pub fn with_empty(empty: Arc<Local<I>>) -> Self {
        LocalState {
            facts: Vec::new(),
            dirty: 0,
            current: empty,
        }
    }

    /// Adds `diff` copies of `fact` (removes when negative); a person-scoped fact is
    /// ignored, as [`local`] ignores it.
    pub fn update(&mut self, fact: F, diff: isize) {
        let Some(fam) = Family::of(&fact.borrow().what) else {
            return;
        };
        match self.facts.binary_search_by(|(x, _)| x.cmp(&fact)) {
            Ok(i) => {
                self.facts[i].1 += diff;
                if self.facts[i].1 == 0 {
                    self.facts.remove(i);
                }
            }
            Err(i) => {
                if diff != 0 {
                    crate::reserve_kept(&mut self.facts, 1);
                    self.facts.insert(i, (fact, diff));
                }
            }
        }
        self.dirty |= 1 << fam as u32;
    }

    /// Makes room for `additional` more facts at once (a step that adds many, such as an
    /// enterprise's first, then grows the list once, not once per fact).
    pub fn reserve(&mut self, additional: usize) {
        crate::reserve_kept(&mut self.facts, additional);
    }

    /// Whether no fact is held.
    pub fn is_empty(&self) -> bool {
        self.facts.is_empty()
    }

    /// [`local_by`] of the active facts: the parts of changed families are recomputed (in
    /// a copy, if a reader still holds the last one).
    pub fn local(&mut self, cat: &Catalogue, ties: Tie<'_, I::Src>) -> &Arc<Local<I>> {
        while self.dirty != 0 {
            let fam = Family::ALL[self.dirty.trailing_zeros() as usize];
            self.dirty &= self.dirty - 1;
            let rank = |(f, _): &(F, isize)| Family::of(&f.borrow().what);
            let lo = self.facts.partition_point(|x| rank(x) < Some(fam));
            let hi = lo + self.facts[lo..].partition_point(|x| rank(x) == Some(fam));
            let facts = self.facts[lo..hi]
                .iter()
                .flat_map(|(f, r)| std::iter::repeat_n(f.borrow(), (*r).max(0) as usize))
                .collect();
            let v = View { facts, ties };
            part(fam, v, cat, Arc::make_mut(&mut self.current));
        }
        &self.current
    }
}

/// How many rows (1–44) an enterprise's own facts decide; [`cross_rows`] writes the rest.
pub const OWN_ROWS: usize = 44;

/// Rows 45–49 from the joined inputs; writes them into `r`.
pub fn cross_rows(r: &mut [f64], cross: &Cross, cat: &Catalogue) {
    let m45 = match (&cross.person_score, cat.indicator(45).compute.transform()) {
        (Some((score, scale, _)), Transform::Xinan { pivot, divisor }) if *scale > 0 => {
            let s = *score as f64 * 1000.0 / *scale as f64;
            Measure::Value((pivot - s) / divisor)
        }
        _ => Measure::Missing,
    };
    r[44] = value(45, m45, cat);
    r[45] = value(46, Measure::Flag(!cross.person_dishonest.is_empty()), cat);
    r[46] = value(47, Measure::Count(cross.rep_others_red.len() as f64), cat);
    r[47] = value(48, Measure::Count(cross.shareholders_red.len() as f64), cat);
    let m49 = if cross.affiliates_all == 0 {
        Measure::Value(0.0)
    } else {
        Measure::Value(100.0 * cross.affiliates_red.len() as f64 / f64::from(cross.affiliates_all))
    };
    r[48] = value(49, m49, cat);
}

/// A review flag on a repair, as the enterprise's state shows it.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct ReviewFlag {
    /// `repair_before_min_publicity`, `repair_unknown_target` or `repair_non_repairable`.
    pub flag: RepairFlag,
    /// The repair's `event_id`.
    #[schemars(with = "String")]
    pub repair_event_id: CompactString,
}

/// The review flags among `facts` with their repairs, sorted, each once.
fn review_flags<I: Ids>(facts: &[&Fact<I>]) -> Vec<(RepairFlag, I::Id)> {
    let mut flags: Vec<(RepairFlag, I::Id)> = facts
        .iter()
        .filter_map(|f| match f.what {
            What::ReviewFlag(flag) => Some((flag, I::id(&f.src))),
            _ => None,
        })
        .collect();
    flags.sort();
    flags.dedup();
    flags
}
