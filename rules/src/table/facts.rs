//! Engine v2's facts from the record table (D95): what a record of the table says, with
//! its interval of event time, named by fingerprints ([`Packed`]) and read from its
//! [`Fields`] and its lifecycle [`View`] alone.
//!
//! This covers the kinds whose facts depend on their own record only; the kinds read in
//! groups (court cases, loans, accounts, periods, the establishment, annual reports,
//! obligations, commitments) come next. `tests/table.rs` compares them with
//! [`crate::fact::derive`]'s facts of the same records.

use crate::catalogue::Catalogue;
use crate::event::{
    ChangeField, DishonestyClass, Feed, InspResult, JudRole, ListType, PersonRole, RegStatus,
    TaxGrade,
};
use crate::fact::{Fact, Ids, PersonScore, What};
use crate::lifecycle::Ending;
use crate::time::{add_months, date_end, Ts, DAY};
use crate::uscc::Uscc;

use super::{decode, to_signed, Fields, Seed, View};

/// Facts named by fingerprints and packed codes: engine v2's (D95). A key is a fingerprint
/// by the table's [`Seed`], another enterprise its packed [`Uscc`], the source record its
/// fingerprint; a place is only where it comes from (the strings are read when a state row
/// is written, D92).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Packed;

impl Ids for Packed {
    type Key = u64;
    type Firm = Uscc;
    type Place = ();
    type Src = u64;
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
    fn is_kind(&self, feed: Feed, kinds: &[&str]) -> bool {
        self.kind.feed() == feed && kinds.contains(&self.kind.name())
    }

    /// A key that may be absent, as the reference groups it: absent is the empty text.
    fn key_or_empty(&self, seed: Seed) -> u64 {
        self.key
            .unwrap_or_else(|| seed.business_key(self.kind.feed(), ""))
    }

    /// The end of a counted penalty's publicity, `None` for MINOR or no class.
    fn publicity_end(&self, cat: &Catalogue) -> Option<Ts> {
        let months = match decode(DishonestyClass::ALL, self.x)? {
            DishonestyClass::Minor => return None,
            DishonestyClass::General => cat.publicity.general_max_months,
            DishonestyClass::Serious => cat.publicity.serious_max_months,
        };
        Some(self.dates[0].map_or_else(|| add_months(self.event_time, months), date_end))
    }

    /// For the negative records of row 30: when their effect ends (`Ts::MAX` if open).
    fn negative_end(&self, end: Ts, cat: &Catalogue) -> Option<Ts> {
        let negative = match self.kind.feed() {
            Feed::Pen => return self.publicity_end(cat).map(|p| p.min(end)),
            Feed::List => true,
            Feed::Tax => self.is_kind(Feed::Tax, &["ABNORMAL_HOUSEHOLD", "MAJOR_VIOLATION"]),
            Feed::Jud => self.is_kind(Feed::Jud, &["DISHONEST_LISTED", "CONSUMPTION_RESTRICTED"]),
            Feed::Fin => self.is_kind(Feed::Fin, &["DEBT_EVASION_LISTED", "POLICE_LISTED"]),
            _ => false,
        };
        if !negative {
            return None;
        }
        let until = match self.kind.feed() {
            Feed::Jud => self.dates[1].map_or(Ts::MAX, date_end),
            _ => Ts::MAX,
        };
        Some(end.min(until))
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
    if f.kind.feed() == Feed::Reg && f.place {
        out.push(What::Place(()), et, end);
    }
    let kind = f.kind.name();
    let amount = f.a.unwrap_or(0);
    match f.kind.feed() {
        Feed::Pen if matches!(kind, "DECIDED" | "CORRECTED") => {
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
        Feed::List => {
            let what = match decode(ListType::ALL, f.x) {
                Some(ListType::SeriousIllegal) => What::ListSerious,
                _ => What::ListAbnormal,
            };
            out.push(what, et, end);
        }
        Feed::Insp => {
            let pass = decode(InspResult::ALL, f.x) == Some(InspResult::Pass);
            if !pass {
                let window = add_months(et, w.inspection_fail_months).min(end);
                out.push(What::InspFail, et, window);
            }
            out.push(What::InspResult { pass }, et, end);
        }
        Feed::Tax => match kind {
            "GRADE" => {
                let year = f.a.and_then(|y| i32::try_from(y).ok());
                if let (Some(grade), Some(eval_year)) = (decode(TaxGrade::ALL, f.x), year) {
                    out.push(What::TaxGrade { eval_year, grade }, et, end);
                }
            }
            "ARREARS_ASSESSED" => arrears(out, amount, end, payments),
            "ABNORMAL_HOUSEHOLD" => out.push(What::TaxAbnormal, et, end),
            "MAJOR_VIOLATION" => out.push(What::TaxMajor, et, end),
            "PAID" => {
                let window = add_months(et, w.tax_paid_months).min(end);
                out.push(What::TaxPaid(amount), et, window);
            }
            _ => {}
        },
        Feed::Reg => match kind {
            "CHANGED" => {
                let field = decode(ChangeField::ALL, f.x);
                if field.is_some_and(|c| c != ChangeField::Other) {
                    let window = add_months(et, w.key_change_months).min(end);
                    out.push(What::KeyChange, et, window);
                }
            }
            "ADDRESS_CLUSTER" => out.push(What::AddressCluster(amount), et, end),
            "CAPITAL" => {
                let what = What::Capital {
                    registered: amount,
                    paid_in: f.b.map_or(0, to_signed),
                };
                out.push(what, et, end);
            }
            "EQUITY_PLEDGE" => out.push(What::Pledge(amount), et, end),
            "MORTGAGE" => out.push(What::Mortgage, et, end),
            "SHAREHOLDER" | "INVESTMENT" => {
                let counterparty = f.key.zip(f.a).map(|(high, low)| {
                    Uscc::from_bits(u128::from(high) << 64 | u128::from(low as u64))
                });
                if let Some(uscc) = counterparty.filter(|cp| *cp != own) {
                    let bp = f.b.map_or(0, to_signed);
                    let what = if kind == "INVESTMENT" {
                        What::Investment { uscc, bp }
                    } else {
                        What::Shareholder { uscc, bp }
                    };
                    out.push(what, et, end);
                }
            }
            "STATUS" => {
                if let Some(s) = decode(RegStatus::ALL, f.x) {
                    out.push(What::Status(s), et, end);
                }
            }
            _ => {}
        },
        Feed::Jud => match kind {
            "DISHONEST_LISTED" => {
                let until = f.dates[1].map_or(Ts::MAX, date_end);
                out.push(What::JudDishonest, et, end.min(until));
            }
            "CONSUMPTION_RESTRICTED" => out.push(What::Consumption, et, end),
            "FREEZE" if decode(JudRole::ALL, f.x & 15) == Some(JudRole::Defendant) => {
                out.push(What::Freeze(amount), et, end);
            }
            "CASE_FILED"
                if decode(JudRole::ALL, f.x & 15) == Some(JudRole::Defendant) && !ending.voided =>
            {
                let window = add_months(et, w.defendant_case_months).min(end);
                out.push(What::DefendantCase, et, window);
            }
            _ => {}
        },
        Feed::Fin => match kind {
            "DEBT_EVASION_LISTED" => out.push(What::DebtEvasion, et, end),
            "POLICE_LISTED" => out.push(What::Police, et, end),
            _ => {}
        },
        Feed::Per => {
            let person = f.key_or_empty(seed);
            match kind {
                "SCORE" => {
                    let what = What::PersonScore(Box::new(PersonScore {
                        person,
                        score: amount,
                        scale_max: f.b.map_or(1, to_signed),
                    }));
                    let stale = et.saturating_add(w.person_score_days * DAY);
                    out.push(what, et, stale.min(end));
                }
                "DISHONEST_LISTED" => out.push(What::PersonDishonest(person), et, end),
                "ROLE" if decode(PersonRole::ALL, f.x) == Some(PersonRole::LegalRep) => {
                    out.push(What::LegalRep(person), et, end);
                }
                _ => {}
            }
        }
        Feed::Pcs => match kind {
            "SCORE" => out.push(What::Pcs(amount), et, end),
            "HONOUR" => {
                let until = f.dates[0].map_or(Ts::MAX, date_end);
                out.push(What::Honour, et, end.min(until));
            }
            _ => {}
        },
        _ => {}
    }
}

/// Row 9: an arrears assessment's unpaid balance, step by step as payments arrive.
fn arrears(out: &mut Out<'_>, assessed: i64, end: Ts, payments: &[crate::lifecycle::Payment]) {
    let mut balance = assessed;
    let mut from = out.f.event_time;
    // The view lists payments by time (and amount), as `fact::arrears` takes them.
    for p in payments {
        if balance <= 0 {
            break;
        }
        out.push(What::Arrears(balance), from, p.at.min(end));
        from = from.max(p.at);
        balance = p.amount_fen.map_or(0, |x| balance - x);
    }
    if balance > 0 {
        out.push(What::Arrears(balance), from, end);
    }
}
