//! Facts and commitment events named one way, named another (D101): engine v2's packed
//! facts ([`crate::table::Packed`]) as the reference names them ([`crate::fact::Text`]),
//! for the stages that still read texts, and the reference's in packed names, for the
//! tests. A [`Rename`] says how each name maps; the functions here map every variant.

use crate::event::Feed;
use crate::fact::{Check, CommitmentEvent, Fact, Ids, Overdue, PersonScore, What};

/// How the names of `I` are the names of `J`.
pub trait Rename<I: Ids, J: Ids> {
    /// A key that records of `feed` carry (a commitment, a loan, an account, a person),
    /// named in a fact of record `src` (`None`: a commitment event's, which names no
    /// record of its own); `src` need not carry it.
    fn key(&self, key: &I::Key, feed: Feed, src: Option<&I::Src>) -> J::Key;
    /// Another enterprise.
    fn firm(&self, firm: &I::Firm) -> J::Firm;
    /// The place record `src` carries.
    fn place(&self, place: &I::Place, src: &I::Src) -> J::Place;
    /// A source record.
    fn src(&self, src: &I::Src) -> J::Src;
}

/// `fact` named by `J`.
pub fn fact<I: Ids, J: Ids>(fact: &Fact<I>, n: &impl Rename<I, J>) -> Fact<J> {
    Fact {
        what: what(&fact.what, &fact.src, n),
        start: fact.start,
        end: fact.end,
        order: fact.order,
        src: n.src(&fact.src),
    }
}

/// `event` named by `J`.
pub fn event<I: Ids, J: Ids>(
    event: &CommitmentEvent<I>,
    n: &impl Rename<I, J>,
) -> CommitmentEvent<J> {
    match event {
        CommitmentEvent::Published(id) => CommitmentEvent::Published(n.key(id, Feed::Cmt, None)),
        CommitmentEvent::Checked(c) => CommitmentEvent::Checked(Check {
            commitment_id: n.key(&c.commitment_id, Feed::Cmt, Some(&c.record)),
            checker: c.checker,
            method: c.method,
            result: c.result,
            at: c.at,
            record: n.src(&c.record),
        }),
    }
}

/// `w`, of a fact of record `src`, named by `J`.
fn what<I: Ids, J: Ids>(w: &What<I>, src: &I::Src, n: &impl Rename<I, J>) -> What<J> {
    let key = |k: &I::Key, feed: Feed| n.key(k, feed, Some(src));
    match w {
        What::CmtBroken(cid) => What::CmtBroken(key(cid, Feed::Cmt)),
        What::Suspicious(account) => What::Suspicious(key(account, Feed::Fin)),
        What::Overdue(o) => What::Overdue(Box::new(Overdue {
            loan: key(&o.loan, Feed::Fin),
            band: o.band,
            amount: o.amount,
        })),
        What::PersonScore(p) => What::PersonScore(Box::new(PersonScore {
            person: key(&p.person, Feed::Per),
            score: p.score,
            scale_max: p.scale_max,
        })),
        What::PersonDishonest(p) => What::PersonDishonest(key(p, Feed::Per)),
        What::LegalRep(p) => What::LegalRep(key(p, Feed::Per)),
        What::Shareholder { uscc, bp } => What::Shareholder {
            uscc: n.firm(uscc),
            bp: *bp,
        },
        What::Investment { uscc, bp } => What::Investment {
            uscc: n.firm(uscc),
            bp: *bp,
        },
        What::Place(p) => What::Place(n.place(p, src)),
        // The rest name nothing: the same value.
        What::PenGeneral => What::PenGeneral,
        What::PenSerious => What::PenSerious,
        What::PenAmount(x) => What::PenAmount(*x),
        What::ListAbnormal => What::ListAbnormal,
        What::ListSerious => What::ListSerious,
        What::InspFail => What::InspFail,
        What::InspResult { pass } => What::InspResult { pass: *pass },
        What::TaxGrade { eval_year, grade } => What::TaxGrade {
            eval_year: *eval_year,
            grade: *grade,
        },
        What::Arrears(x) => What::Arrears(*x),
        What::TaxAbnormal => What::TaxAbnormal,
        What::TaxMajor => What::TaxMajor,
        What::FirmAge(x) => What::FirmAge(*x),
        What::Young => What::Young,
        What::KeyChange => What::KeyChange,
        What::AddressCluster(x) => What::AddressCluster(*x),
        What::AnnualDue => What::AnnualDue,
        What::AnnualFiled => What::AnnualFiled,
        What::AnnualMismatch => What::AnnualMismatch,
        What::Capital {
            registered,
            paid_in,
        } => What::Capital {
            registered: *registered,
            paid_in: *paid_in,
        },
        What::Pledge(x) => What::Pledge(*x),
        What::Freeze(x) => What::Freeze(*x),
        What::Mortgage => What::Mortgage,
        What::TaxPaid(x) => What::TaxPaid(*x),
        What::SalesRecent(x) => What::SalesRecent(*x),
        What::SalesPrior(x) => What::SalesPrior(*x),
        What::ZeroDecl => What::ZeroDecl,
        What::Insured { period, count } => What::Insured {
            period: *period,
            count: *count,
        },
        What::RectifyOpen => What::RectifyOpen,
        What::RectifyOverdue => What::RectifyOverdue,
        What::CmtVerified { normal } => What::CmtVerified { normal: *normal },
        What::RepairDone => What::RepairDone,
        What::NegUnrepaired => What::NegUnrepaired,
        What::Obligation { on_time } => What::Obligation { on_time: *on_time },
        What::Honour => What::Honour,
        What::Voluntary => What::Voluntary,
        What::JudDishonest => What::JudDishonest,
        What::Consumption => What::Consumption,
        What::TerminatedUnpaid => What::TerminatedUnpaid,
        What::EnforcedOpen(x) => What::EnforcedOpen(*x),
        What::DefendantCase => What::DefendantCase,
        What::DebtEvasion => What::DebtEvasion,
        What::Police => What::Police,
        What::Status(s) => What::Status(*s),
        What::Pcs(x) => What::Pcs(*x),
        What::ReviewFlag(f) => What::ReviewFlag(*f),
    }
}
