//! Engine v2's record table (D92–D97): an enterprise's winning records in 48 bytes each,
//! its lifecycle (`semantics.md` §2) as rules between pairs of them, and its facts.
//!
//! - [`Fields`] is what the engine reads of a record; [`Fields::of`] takes it from an
//!   accepted record, with its identity, keys and targets as keyed 64-bit fingerprints
//!   ([`Seed`]). No string is kept.
//! - [`Table`] holds the records packed in 48 bytes ([`Rec`]), sorted by fingerprint. A record
//!   whose times or dates do not fit the packed form is kept whole in a small overflow list,
//!   so nothing is approximated.
//! - The lifecycle is a set of relations between two records: a retraction acts on a record,
//!   a revocation voids a repair, a repair ends its target. [`Table::view`] derives what
//!   became of one record from them, and [`Table::update`] applies a change and reports the
//!   records whose [`View`] changed, with the old and new views: the deltas the engine
//!   hands on, instead of resolving the enterprise's whole history again.
//! - `facts` derives the facts and the commitment events from the fields and views, and
//!   what a change does to them and to the records' status steps ([`fact_changes`]);
//!   `statuses` gives the steps (D99, D100).
//!
//! [`crate::lifecycle::resolve_enterprise`] and [`crate::fact::derive`] stay the reference:
//! `tests/table.rs` checks that the views and facts equal theirs, and that the reported
//! deltas and fact changes are exactly the changes, after every step of random streams.

mod facts;
mod names;
mod statuses;

pub use facts::{
    enterprise_facts, fact_changes, record_facts, Changes, Context, Derived, FactChanges, Group,
    KindSet, Packed, Ties,
};
pub use names::collision;
pub use statuses::{enterprise_steps, Steps};

use std::ops::RangeInclusive;
use std::sync::OnceLock;

use twox_hash::XxHash3_64;

use crate::catalogue::{Catalogue, RepairAction, RepairFlag};
use chrono::NaiveDate;

use crate::event::{
    Body, ChangeField, CloseReason, CmtKind, CmtResult, CommitmentType, DishonestyClass, Event,
    Feed, FinKind, InspKind, InspResult, JudKind, JudRole, ListKind, ListType, PcsKind, PenKind,
    PerKind, PersonRole, RegKind, RegStatus, RprKind, TaxGrade, TaxKind, VerifyMethod,
};
use crate::lifecycle::{business_key, paired_kinds, set_retracted, Accepted, Ending, Payment};
use crate::reject::Reason;
use crate::time::{date_end, Period, Ts};
use crate::uscc::Uscc;
use crate::CompactString;

/// The key of the table's fingerprints, kept with a checkpoint: a feed publisher who does
/// not know it cannot make two ids collide on purpose.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Seed {
    key: u64,
    /// The bits of a fingerprint that are kept: all of them, but for [`Seed::weak`].
    mask: u64,
}

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed(..)")
    }
}

impl Seed {
    /// The seed of key `key`.
    pub const fn new(key: u64) -> Seed {
        Seed {
            key,
            mask: u64::MAX,
        }
    }

    /// A seed of key `key` whose fingerprints keep only their low `bits` bits (1 to 64), so
    /// that ids and keys collide: for the tests of what a collision does (D101, D105).
    pub const fn weak(key: u64, bits: u32) -> Seed {
        Seed {
            key,
            mask: u64::MAX >> (64 - bits),
        }
    }

    /// The fingerprint of a record's identity `(feed, event_id)`.
    pub fn record(self, feed: Feed, event_id: &str) -> u64 {
        self.hash(feed_index(feed), event_id)
    }

    /// The fingerprint of a business key of `feed` (a case, a loan, an account).
    pub fn business_key(self, feed: Feed, key: &str) -> u64 {
        self.hash(0x80 | feed_index(feed), key)
    }

    /// Another seed, for an enterprise whose records share a fingerprint under this one: its
    /// table is built again under the next seed (D101).
    pub fn next(self) -> Seed {
        Seed {
            key: self.full(0xff, "next seed"),
            ..self
        }
    }

    fn hash(self, tag: u8, text: &str) -> u64 {
        self.full(tag, text) & self.mask
    }

    /// XXH3 of `tag` then `text`, in one call on a stack buffer for short texts: a
    /// streaming hasher with a seed allocates and derives a secret each time, about 300
    /// instructions of the 540 a fingerprint took (`BENCHMARKS.md`).
    fn full(self, tag: u8, text: &str) -> u64 {
        let mut buf = [0u8; 64];
        match buf.get_mut(1..=text.len()) {
            Some(rest) => {
                rest.copy_from_slice(text.as_bytes());
                buf[0] = tag;
                XxHash3_64::oneshot_with_seed(self.key, &buf[..=text.len()])
            }
            None => {
                let bytes: Vec<u8> = std::iter::once(tag).chain(text.bytes()).collect();
                XxHash3_64::oneshot_with_seed(self.key, &bytes)
            }
        }
    }
}

/// The matters the catalogue lists whose fingerprint under `seed` is `fp`: the matter a
/// commitment's fingerprint names, and whether another listed matter shares it (D105).
fn listed_matters(cat: &Catalogue, seed: Seed, fp: u64) -> impl Iterator<Item = &str> {
    cat.commitments
        .matters
        .keys()
        .map(String::as_str)
        .filter(move |m| seed.business_key(Feed::Cmt, m) == fp)
}

const fn feed_index(feed: Feed) -> u8 {
    // `Feed::ALL` lists the feeds in declaration order.
    feed as u8
}

/// The wire names of `feed`'s kinds, in declaration order.
fn kind_names(feed: Feed) -> &'static [&'static str] {
    match feed {
        Feed::Pen => PenKind::NAMES,
        Feed::List => ListKind::NAMES,
        Feed::Tax => TaxKind::NAMES,
        Feed::Jud => JudKind::NAMES,
        Feed::Fin => FinKind::NAMES,
        Feed::Reg => RegKind::NAMES,
        Feed::Per => PerKind::NAMES,
        Feed::Cmt => CmtKind::NAMES,
        Feed::Rpr => RprKind::NAMES,
        Feed::Insp => InspKind::NAMES,
        Feed::Pcs => PcsKind::NAMES,
    }
}

/// A record's feed and kind in one byte: the feed's index in the high four bits, the kind's
/// in the low four (no feed has more than 16 kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Kind(u8);

/// A kind as its feed's enum: what [`Kind`] packs, matched without comparing names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Typed {
    Pen(PenKind),
    List(ListKind),
    Tax(TaxKind),
    Jud(JudKind),
    Fin(FinKind),
    Reg(RegKind),
    Per(PerKind),
    Cmt(CmtKind),
    Rpr(RprKind),
    Insp(InspKind),
    Pcs(PcsKind),
}

impl Kind {
    /// The kind of `body`.
    pub fn of(body: &Body) -> Kind {
        Kind::of_typed(match body {
            Body::Pen(b) => Typed::Pen(b.kind),
            Body::List(b) => Typed::List(b.kind),
            Body::Tax(b) => Typed::Tax(b.kind),
            Body::Jud(b) => Typed::Jud(b.kind),
            Body::Fin(b) => Typed::Fin(b.kind),
            Body::Reg(b) => Typed::Reg(b.kind),
            Body::Per(b) => Typed::Per(b.kind),
            Body::Cmt(b) => Typed::Cmt(b.kind),
            Body::Rpr(b) => Typed::Rpr(b.kind),
            Body::Insp(b) => Typed::Insp(b.kind),
            Body::Pcs(b) => Typed::Pcs(b.kind),
        })
    }

    /// Every kind.
    pub const ALL: RangeInclusive<Kind> = Kind(0)..=Kind(u8::MAX);

    /// The kinds of `feed`.
    pub const fn of_feed(feed: Feed) -> RangeInclusive<Kind> {
        let f = feed_index(feed) << 4;
        Kind(f)..=Kind(f | 15)
    }

    /// The kind `t`.
    pub const fn of_typed(t: Typed) -> Kind {
        // A kind's index is its declaration order, as `ALL` and `NAMES` list it.
        let (feed, index) = match t {
            Typed::Pen(k) => (Feed::Pen, k as u8),
            Typed::List(k) => (Feed::List, k as u8),
            Typed::Tax(k) => (Feed::Tax, k as u8),
            Typed::Jud(k) => (Feed::Jud, k as u8),
            Typed::Fin(k) => (Feed::Fin, k as u8),
            Typed::Reg(k) => (Feed::Reg, k as u8),
            Typed::Per(k) => (Feed::Per, k as u8),
            Typed::Cmt(k) => (Feed::Cmt, k as u8),
            Typed::Rpr(k) => (Feed::Rpr, k as u8),
            Typed::Insp(k) => (Feed::Insp, k as u8),
            Typed::Pcs(k) => (Feed::Pcs, k as u8),
        };
        Kind(feed_index(feed) << 4 | index)
    }

    fn named(feed: Feed, kind: &str) -> Kind {
        let index = kind_names(feed)
            .iter()
            .position(|k| *k == kind)
            .and_then(|i| u8::try_from(i).ok())
            .unwrap_or(15);
        Kind(feed_index(feed) << 4 | index)
    }

    /// The feed.
    #[inline]
    pub fn feed(self) -> Feed {
        Feed::ALL[usize::from(self.0 >> 4)]
    }

    /// The kind's wire name.
    pub fn name(self) -> &'static str {
        kind_names(self.feed())[usize::from(self.0 & 15)]
    }

    /// The kind as its feed's enum.
    #[inline]
    pub fn typed(self) -> Typed {
        let i = usize::from(self.0 & 15);
        match self.feed() {
            Feed::Pen => Typed::Pen(PenKind::ALL[i]),
            Feed::List => Typed::List(ListKind::ALL[i]),
            Feed::Tax => Typed::Tax(TaxKind::ALL[i]),
            Feed::Jud => Typed::Jud(JudKind::ALL[i]),
            Feed::Fin => Typed::Fin(FinKind::ALL[i]),
            Feed::Reg => Typed::Reg(RegKind::ALL[i]),
            Feed::Per => Typed::Per(PerKind::ALL[i]),
            Feed::Cmt => Typed::Cmt(CmtKind::ALL[i]),
            Feed::Rpr => Typed::Rpr(RprKind::ALL[i]),
            Feed::Insp => Typed::Insp(InspKind::ALL[i]),
            Feed::Pcs => Typed::Pcs(PcsKind::ALL[i]),
        }
    }

    /// The kinds of its own feed a retraction of this kind acts on, as a mask of kind
    /// indices.
    fn targets(self) -> u16 {
        static MASKS: OnceLock<[u16; 256]> = OnceLock::new();
        MASKS.get_or_init(|| {
            let mut masks = [0; 256];
            for (f, feed) in Feed::ALL.iter().enumerate() {
                for (k, kind) in kind_names(*feed).iter().enumerate() {
                    masks[f << 4 | k] = paired_kinds(*feed, kind)
                        .iter()
                        .map(|t| 1 << (Kind::named(*feed, t).0 & 15))
                        .fold(0, |m, b| m | b);
                }
            }
            masks
        })[usize::from(self.0)]
    }
}

/// The kinds whose retractions end a record in their own way (`Fields::act`), as bytes.
const ARREARS_PAID: Kind = Kind::of_typed(Typed::Tax(TaxKind::ArrearsPaid));
const CASE_CLOSED: Kind = Kind::of_typed(Typed::Jud(JudKind::CaseClosed));

/// What the engine reads of a record (D92's inventory), unpacked. Which column holds what
/// depends on the kind (D93, D94):
///
/// | kind | `key` | `a` | `b` | `dates` | `x` |
/// | --- | --- | --- | --- | --- | --- |
/// | every retraction naming `ref_event_id` | (as its kind below) | (as below) | the target's fingerprint | | (as below) |
/// | PEN, not a retraction | `decision_no` | fine + confiscation | | `publicity_max_end`, `publicity_min_end`, `due_date` | dishonesty class |
/// | LIST | | | | | list kind |
/// | TAX `GRADE` | | `eval_year` | | | grade |
/// | TAX `PAID`, `ARREARS_*` | | `amount_fen` | `PAID`: period | | |
/// | TAX `DECLARED` | | `sales_fen` | period | | |
/// | TAX `SOCIAL_INSURANCE` | | `insured_count` | period | | |
/// | JUD | case (`court_code`, `case_no`) | `amount_fen` (`ENFORCEMENT_TERMINATED`: `unpaid_fen`) | | `due_date`, `list_until` | role, close reason |
/// | FIN overdue kinds | `loan_id` | `overdue_fen` | `overdue_days` | | |
/// | FIN suspicious-account kinds | `account_hash` | | | | |
/// | REG `CAPITAL` | | registered | paid in | | |
/// | REG `EQUITY_PLEDGE` | | `share_bp` | | | |
/// | REG `ADDRESS_CLUSTER` | | `address_firm_count` | | | |
/// | REG `ANNUAL_REPORT` | | | `report_year` | | reported tax 0, reported staff 0 (bits 0, 1) |
/// | REG `SHAREHOLDER`, `INVESTMENT` | counterparty (high half) | counterparty (low half) | `share_bp` | | |
/// | REG `CHANGED`, `STATUS` | | | | | change field, status |
/// | PER | `person_hash` | score | `scale_max` | | role |
/// | PCS | | score | | `valid_until` | |
/// | CMT | `commitment_id` | `matter` | | `valid_until`, `rectify_deadline` | type, result, method |
/// | RPR `COMPLETED` | the target's fingerprint | | effective time | | |
/// | INSP | | | | | result |
///
/// Texts (ids, keys, persons, a matter) are fingerprints by the table's [`Seed`]; a
/// counterparty is the packed [`Uscc`]. A small enum is its index plus one, 0 for none;
/// two or three share `x` in fields of four bits. Region and industry are not held, only
/// whether the record carries one (`place`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fields {
    /// The fingerprint of `(feed, event_id)`.
    pub rid: u64,
    /// Feed and kind.
    pub kind: Kind,
    /// Whether the kind is a retraction.
    pub retraction: bool,
    /// `event_time`.
    pub event_time: Ts,
    /// `ingest_time`.
    pub ingest_time: Ts,
    /// Visibility time `v`.
    pub v: Ts,
    /// A group or link key.
    pub key: Option<u64>,
    /// An amount or a count.
    pub a: Option<i64>,
    /// A target, a time, a period, a year or a second amount.
    pub b: Option<u64>,
    /// Up to three dates.
    pub dates: [Option<NaiveDate>; 3],
    /// Small enums.
    pub x: u16,
    /// Which codes the record carries: [`REGION`], [`INDUSTRY`].
    pub place: u8,
}

/// The text a record's [`Fields::key`] fingerprints, for the kinds whose key is a text: a
/// penalty decision, a court case, a loan, an account, a person or a commitment.
pub fn key_text(e: &Event) -> Option<CompactString> {
    match &e.body {
        Body::Pen(p) => p.decision_no.clone(),
        Body::Per(p) => p.person_hash.clone(),
        Body::Cmt(c) => c.commitment_id.clone(),
        _ => business_key(e),
    }
}

fn code<T: PartialEq + Copy>(all: &[T], v: Option<T>) -> u16 {
    v.and_then(|v| all.iter().position(|x| *x == v))
        .and_then(|i| u16::try_from(i + 1).ok())
        .unwrap_or(0)
}

fn decode<T: Copy>(all: &[T], x: u16) -> Option<T> {
    usize::from(x)
        .checked_sub(1)
        .and_then(|i| all.get(i).copied())
}

/// A signed value (a time, an amount) in `b`: its bits.
fn from_signed(x: i64) -> u64 {
    u64::from_ne_bytes(x.to_ne_bytes())
}

fn to_signed(b: u64) -> i64 {
    i64::from_ne_bytes(b.to_ne_bytes())
}

impl Fields {
    /// The fields of an accepted record, fingerprinted with `seed`.
    ///
    /// # Panics
    /// On a counterparty USCC that does not pack: a record the decoder did not admit.
    pub fn of(a: &Accepted, seed: Seed) -> Fields {
        let e = &a.event;
        let feed = e.feed();
        let retraction = e.body.is_retraction();
        let mut f = Fields {
            rid: seed.record(feed, &e.event_id),
            kind: Kind::of(&e.body),
            retraction,
            event_time: e.event_time,
            ingest_time: e.ingest_time,
            v: a.v,
            key: key_text(e).map(|k| seed.business_key(feed, &k)),
            a: None,
            b: None,
            dates: [None; 3],
            x: 0,
            place: 0,
        };
        let period = |p: Option<Period>| p.map(|p| from_signed(i64::from(p.0)));
        match &e.body {
            Body::Pen(p) => {
                f.a = Some(p.fine_fen.unwrap_or(0) + p.confiscation_fen.unwrap_or(0));
                f.dates = [p.publicity_max_end, p.publicity_min_end, p.due_date];
                f.x = code(DishonestyClass::ALL, p.dishonesty_class);
            }
            Body::List(l) => f.x = code(ListType::ALL, l.list_kind),
            Body::Tax(t) => match t.kind {
                TaxKind::Grade => {
                    f.a = t.eval_year.map(i64::from);
                    f.x = code(TaxGrade::ALL, t.grade);
                }
                TaxKind::Declared => (f.a, f.b) = (t.sales_fen, period(t.period)),
                TaxKind::SocialInsurance => (f.a, f.b) = (t.insured_count, period(t.period)),
                TaxKind::Paid => (f.a, f.b) = (t.amount_fen, period(t.period)),
                _ => f.a = t.amount_fen,
            },
            Body::Jud(j) => {
                f.a = match j.kind {
                    JudKind::EnforcementTerminated => j.unpaid_fen,
                    _ => j.amount_fen,
                };
                f.dates = [j.due_date, j.list_until, None];
                f.x = code(JudRole::ALL, j.role) | code(CloseReason::ALL, j.close_reason) << 4;
            }
            Body::Fin(x) => {
                f.a = x.overdue_fen;
                f.b = x.overdue_days.map(from_signed);
            }
            Body::Reg(r) => {
                f.place = place(r.region_code.is_some(), r.industry_code.is_some());
                match r.kind {
                    RegKind::Capital => {
                        f.a = r.registered_capital_fen;
                        f.b = r.paid_in_fen.map(from_signed);
                    }
                    RegKind::EquityPledge => f.a = r.share_bp,
                    RegKind::AddressCluster => f.a = r.address_firm_count,
                    RegKind::AnnualReport => {
                        f.b = r.report_year.map(|y| from_signed(i64::from(y)));
                        f.x = u16::from(r.reported_tax_fen == Some(0))
                            | u16::from(r.reported_staff == Some(0)) << 1;
                    }
                    RegKind::Shareholder | RegKind::Investment => {
                        if let Some(cp) = r.counterparty_uscc.as_deref() {
                            let bits = Uscc::admitted(cp).to_bits();
                            f.key = Some((bits >> 64) as u64);
                            f.a = Some(to_signed(bits as u64));
                        }
                        f.b = r.share_bp.map(from_signed);
                    }
                    RegKind::Changed => f.x = code(ChangeField::ALL, r.change_field),
                    RegKind::Status => f.x = code(RegStatus::ALL, r.status),
                    _ => {}
                }
            }
            Body::Per(p) => {
                f.a = p.score;
                f.b = p.scale_max.map(from_signed);
                f.x = code(PersonRole::ALL, p.role);
            }
            Body::Pcs(p) => {
                f.a = p.score;
                f.dates[0] = p.valid_until;
            }
            Body::Cmt(c) => {
                f.a = c
                    .matter
                    .as_deref()
                    .map(|m| to_signed(seed.business_key(feed, m)));
                f.dates = [c.valid_until, c.rectify_deadline, None];
                f.x = code(CommitmentType::ALL, c.commitment_type)
                    | code(CmtResult::ALL, c.result) << 4
                    | code(VerifyMethod::ALL, c.method) << 8;
            }
            Body::Rpr(r) => {
                if r.kind == RprKind::Completed {
                    f.key = r
                        .target_feed
                        .zip(r.target_event_id.as_deref())
                        .map(|(feed, id)| seed.record(feed, id));
                    f.b = r.effective_time.map(from_signed);
                }
            }
            Body::Insp(i) => f.x = code(InspResult::ALL, i.result),
        }
        if retraction {
            f.b = e.ref_event_id.as_deref().map(|r| seed.record(feed, r));
        }
        f
    }

    /// A record that a retraction may act on and a repair may end: neither a retraction
    /// nor a repair.
    fn is_record(&self) -> bool {
        !self.retraction && self.kind.feed() != Feed::Rpr
    }

    fn is_repair(&self) -> bool {
        !self.retraction && self.kind.feed() == Feed::Rpr
    }

    /// A retraction or a repair: a record that links to others.
    fn is_link(&self) -> bool {
        self.retraction || self.kind.feed() == Feed::Rpr
    }

    fn is_revocation(&self) -> bool {
        self.retraction && self.kind.feed() == Feed::Rpr
    }

    /// Whether retraction `self` names record `t` (by reference or by business key), its
    /// timing aside.
    fn names(&self, t: &Fields) -> bool {
        self.retraction
            && !self.is_revocation()
            && t.is_record()
            && match self.b {
                Some(target) => t.rid == target,
                None => {
                    self.key.is_some() && t.key == self.key && t.kind.feed() == self.kind.feed()
                }
            }
    }

    /// Whether retraction `self` acts on record `t`: it names it, `t` is of a kind it
    /// pairs with, and `t` became visible within the hold.
    fn acts_on(&self, t: &Fields, hold: Ts) -> bool {
        self.names(t)
            && self.kind.targets() & (1 << (t.kind.0 & 15)) != 0
            && t.v <= self.v.saturating_add(hold)
    }

    /// `TAX.ARREARS_PAID`, `CASE_CLOSED` as withdrawn or dismissed, or a PEN revocation:
    /// how a retraction acting on a record ends it.
    fn act(&self, t: &Fields, ending: &mut Ending, payments: &mut Vec<Payment>) {
        let at = t.event_time.max(self.event_time);
        if self.kind == ARREARS_PAID {
            payments.push(Payment {
                at,
                amount_fen: self.a,
            });
        } else if self.kind == CASE_CLOSED
            && matches!(
                decode(CloseReason::ALL, self.x >> 4),
                Some(CloseReason::Withdrawn | CloseReason::Dismissed)
            )
        {
            ending.voided = true;
            set_retracted(ending, at, true);
        } else {
            set_retracted(ending, at, self.kind.feed() == Feed::Pen);
        }
    }

    /// The instant before which a repair of this record is flagged (PEN only).
    fn min_publicity_end(&self, cat: &Catalogue) -> Ts {
        if self.kind.feed() != Feed::Pen {
            return Ts::MIN;
        }
        cat.pen_min_publicity_end(
            self.event_time,
            decode(DishonestyClass::ALL, self.x),
            self.dates[1].map(date_end),
        )
    }

    fn non_repairable(&self, cat: &Catalogue) -> bool {
        let qualifier = match self.kind.feed() {
            Feed::Pen => decode(DishonestyClass::ALL, self.x).map(DishonestyClass::as_str),
            Feed::List => decode(ListType::ALL, self.x).map(ListType::as_str),
            _ => None,
        };
        cat.repairs
            .non_repairable_class(self.kind.feed(), self.kind.name(), qualifier)
    }
}

/// [`Fields::place`]: the record carries a region code.
pub const REGION: u8 = 1;
/// [`Fields::place`]: the record carries an industry code.
pub const INDUSTRY: u8 = 2;

/// [`Fields::place`] of a record that carries a region code or not, and an industry code or
/// not.
pub fn place(region: bool, industry: bool) -> u8 {
    (u8::from(region) * REGION) | (u8::from(industry) * INDUSTRY)
}

/// Seconds from 2000-01-01T00:00:00Z: the packed times' origin.
const EPOCH: Ts = 946_684_800;

/// The packed dates' origin: a date is packed as its days after this one plus one (0: none).
const DAY_ZERO: NaiveDate = NaiveDate::from_ymd_opt(2000, 1, 1).expect("a date");

const KEY: u8 = 1;
const A: u8 = 2;
const B: u8 = 4;
/// `b` holds the three dates, 16 bits each.
const DATES: u8 = 8;
const RETRACTION: u8 = 16;
const WITH_REGION: u8 = 32;
const SPILLED: u8 = 64;
const WITH_INDUSTRY: u8 = 128;

/// A record packed in 48 bytes (D92): times as `u32` seconds from 2000, dates as `u16`
/// days from 2000 in `b` (a kind with dates has no other `b`). A record with a time or a
/// date outside that range, or with both dates and `b`, is spilled: only its
/// fingerprint and kind are here, its fields in the table's overflow list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Rec {
    rid: u64,
    key: u64,
    a: i64,
    b: u64,
    times: [u32; 3],
    kind: u8,
    bits: u8,
    x: u16,
}

const _: () = assert!(std::mem::size_of::<Rec>() == 48);

impl Rec {
    /// `f` packed, or `None` if it does not fit.
    fn pack(f: &Fields) -> Option<Rec> {
        let t = |t: Ts| t.checked_sub(EPOCH).and_then(|s| u32::try_from(s).ok());
        let bit = |on: bool, b: u8| if on { b } else { 0 };
        let dated = f.dates.iter().any(Option::is_some);
        let b = if dated {
            if f.b.is_some() {
                return None;
            }
            let mut b = 0u64;
            for d in f.dates.iter().rev() {
                let days = match d {
                    Some(d) => u16::try_from((*d - DAY_ZERO).num_days() + 1)
                        .ok()
                        .filter(|x| *x > 0)?,
                    None => 0,
                };
                b = b << 16 | u64::from(days);
            }
            b
        } else {
            f.b.unwrap_or(0)
        };
        Some(Rec {
            rid: f.rid,
            key: f.key.unwrap_or(0),
            a: f.a.unwrap_or(0),
            b,
            times: [t(f.event_time)?, t(f.ingest_time)?, t(f.v)?],
            kind: f.kind.0,
            bits: bit(f.key.is_some(), KEY)
                | bit(f.a.is_some(), A)
                | bit(f.b.is_some(), B)
                | bit(dated, DATES)
                | bit(f.retraction, RETRACTION)
                | bit(f.place & REGION != 0, WITH_REGION)
                | bit(f.place & INDUSTRY != 0, WITH_INDUSTRY),
            x: f.x,
        })
    }

    fn spilled(f: &Fields) -> Rec {
        Rec {
            rid: f.rid,
            key: 0,
            a: 0,
            b: 0,
            times: [0; 3],
            kind: f.kind.0,
            bits: SPILLED,
            x: 0,
        }
    }

    fn unpack(&self) -> Fields {
        let on = |b: u8| self.bits & b != 0;
        let t = |s: u32| EPOCH + Ts::from(s);
        let mut dates = [None; 3];
        if on(DATES) {
            for (i, d) in dates.iter_mut().enumerate() {
                let days = (self.b >> (16 * i)) & 0xffff;
                *d = days.checked_sub(1).map(|n| DAY_ZERO + chrono::Days::new(n));
            }
        }
        Fields {
            rid: self.rid,
            kind: Kind(self.kind),
            retraction: on(RETRACTION),
            event_time: t(self.times[0]),
            ingest_time: t(self.times[1]),
            v: t(self.times[2]),
            key: on(KEY).then_some(self.key),
            a: on(A).then_some(self.a),
            b: on(B).then_some(self.b),
            dates,
            x: self.x,
            place: place(on(WITH_REGION), on(WITH_INDUSTRY)),
        }
    }
}

/// A change the table cannot apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// Two records of the enterprise have one fingerprint: the caller compares their ids
    /// and resolves them apart (D92).
    #[error("two records of one enterprise share the fingerprint {0:016x}")]
    Collision(u64),
    /// A record to remove is not in the table (or differs from the one there).
    #[error("no record {0:016x} to remove")]
    Missing(u64),
}

/// What became of one record by the lifecycle, as [`crate::lifecycle::Resolved`] says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// A record in effect (neither a retraction nor a repair): how its effect ends, and the
    /// payments against it (an arrears assessment's), by time and amount.
    Record {
        /// How it ends.
        ending: Ending,
        /// Payments, sorted.
        payments: Vec<Payment>,
    },
    /// A retraction, a repair's revocation included.
    Retraction {
        /// Its dead letter, if it cannot act: `target_mismatch` or `unknown_target`, and
        /// when.
        letter: Option<(Reason, Ts)>,
        /// The repair it revokes.
        revokes: Option<u64>,
    },
    /// A completed repair.
    Repair(Repair),
}

impl View {
    /// The record's lifecycle dead letter, if it has one: why, and from when.
    pub fn letter(&self) -> Option<(Reason, Ts)> {
        match self {
            View::Record { .. } => None,
            View::Retraction { letter, .. } => *letter,
            View::Repair(r) => r.letter.map(|at| (Reason::UnknownTarget, at)),
        }
    }
}

/// What became of a completed repair.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repair {
    /// Revoked by an `RPR.REVOKED` in time: then nothing else applies.
    pub revoked: bool,
    /// Its review flags (D47).
    pub flags: Vec<RepairFlag>,
    /// Its `unknown_target` dead letter's time, when the catalogue holds such repairs.
    pub letter: Option<Ts>,
    /// Where and when it takes effect, if it does: the target's fingerprint (none for an
    /// unknown target) and the time.
    pub applied: Option<(Option<u64>, Ts)>,
}

/// Lifecycle dead letters as `(record, reason, time)`, by fingerprint.
pub type Letters = Vec<(u64, Reason, Ts)>;

/// One record's view before and after a change (`None`: not in the table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    /// The record's fingerprint.
    pub rid: u64,
    /// Its view before.
    pub before: Option<View>,
    /// Its view after.
    pub after: Option<View>,
}

/// An enterprise's winning records, packed and sorted by fingerprint (D92).
#[derive(Debug, Clone, Default)]
pub struct Table {
    rows: Vec<Rec>,
    /// The spilled records' fields, sorted by fingerprint.
    spill: Vec<Fields>,
    /// The retractions and repairs (copies of their rows), sorted by fingerprint: the few
    /// records that link to others, which a record's view reads (the other records' views
    /// never read it), read without a search.
    links: Vec<Rec>,
    /// The positions in `rows` ordered by kind, then fingerprint: the records of a kind (or
    /// of a feed, whose kinds are adjacent) read without a scan.
    by_kind: Vec<u32>,
}

impl Table {
    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The heap bytes it holds: its rows and overflow list, capacity included.
    pub fn heap_bytes(&self) -> usize {
        self.rows.capacity() * std::mem::size_of::<Rec>()
            + self.spill.capacity() * std::mem::size_of::<Fields>()
            + self.links.capacity() * std::mem::size_of::<Rec>()
            + self.by_kind.capacity() * std::mem::size_of::<u32>()
    }

    /// How many of its records are spilled.
    pub fn spilled(&self) -> usize {
        self.spill.len()
    }

    /// The record with fingerprint `rid`.
    pub fn get(&self, rid: u64) -> Option<Fields> {
        let i = self.rows.binary_search_by_key(&rid, |r| r.rid).ok()?;
        Some(self.fields(&self.rows[i]))
    }

    fn fields(&self, r: &Rec) -> Fields {
        if r.bits & SPILLED == 0 {
            return r.unpack();
        }
        let i = self
            .spill
            .binary_search_by_key(&r.rid, |f| f.rid)
            .expect("a spilled record's fields are in the overflow list");
        self.spill[i]
    }

    /// Every record, by fingerprint.
    pub fn iter(&self) -> impl Iterator<Item = Fields> + '_ {
        self.rows.iter().map(|r| self.fields(r))
    }

    /// The records whose kind lies in `kinds`, by kind and fingerprint (the others are not
    /// read).
    pub fn of_kinds(&self, kinds: RangeInclusive<Kind>) -> impl Iterator<Item = Fields> + '_ {
        self.of_kinds_where(kinds, |_| true)
    }

    /// The records whose kind lies in `kinds` and is one `only` selects, by kind and
    /// fingerprint (the others are not unpacked).
    pub fn of_kinds_where<'a>(
        &'a self,
        kinds: RangeInclusive<Kind>,
        only: impl Fn(Kind) -> bool + 'a,
    ) -> impl Iterator<Item = Fields> + 'a {
        let at = move |p: &u32| Kind(self.rows[*p as usize].kind);
        let from = self.by_kind.partition_point(|p| at(p) < *kinds.start());
        let to = self.by_kind.partition_point(|p| at(p) <= *kinds.end());
        self.by_kind[from..to.max(from)]
            .iter()
            .filter(move |p| only(at(p)))
            .map(|p| self.fields(&self.rows[*p as usize]))
    }

    /// Whether it holds a record whose kind lies in `kinds`.
    pub fn has(&self, kinds: RangeInclusive<Kind>) -> bool {
        self.of_kinds(kinds).next().is_some()
    }

    /// The retractions and repairs.
    fn links(&self) -> impl Iterator<Item = Fields> + '_ {
        self.links.iter().map(|r| self.fields(r))
    }

    /// Inserts `f`, whose fingerprint is not in the table, into the room [`Self::apply`]
    /// made for it.
    fn insert(&mut self, f: Fields) {
        let i = self
            .rows
            .binary_search_by_key(&f.rid, |r| r.rid)
            .unwrap_or_else(|i| i);
        let rec = Rec::pack(&f).unwrap_or_else(|| {
            let j = self
                .spill
                .binary_search_by_key(&f.rid, |s| s.rid)
                .unwrap_or_else(|j| j);
            self.spill.insert(j, f);
            Rec::spilled(&f)
        });
        self.rows.insert(i, rec);
        let at = u32::try_from(i).expect("fewer than 2^32 records in one enterprise");
        for p in &mut self.by_kind {
            *p += u32::from(*p >= at);
        }
        let key = |r: &Rec| (r.kind, r.rid);
        let j = self
            .by_kind
            .partition_point(|p| key(&self.rows[*p as usize]) < key(&rec));
        self.by_kind.insert(j, at);
        if f.is_link() {
            let j = self
                .links
                .binary_search_by_key(&f.rid, |r| r.rid)
                .unwrap_or_else(|j| j);
            self.links.insert(j, rec);
        }
    }

    /// Removes `f`, which is in the table.
    fn remove(&mut self, f: &Fields) {
        if let Ok(i) = self.rows.binary_search_by_key(&f.rid, |r| r.rid) {
            if self.rows.remove(i).bits & SPILLED != 0 {
                self.spill.retain(|s| s.rid != f.rid);
            }
            self.links.retain(|l| l.rid != f.rid);
            let at = u32::try_from(i).expect("fewer than 2^32 records in one enterprise");
            self.by_kind.retain(|p| *p != at);
            for p in &mut self.by_kind {
                *p -= u32::from(*p > at);
            }
        }
    }

    /// The records whose view `changes` may change (the changed records among them), or
    /// why they cannot apply.
    pub fn touched(&self, changes: &[(Fields, isize)]) -> Result<Vec<u64>, TableError> {
        let leaving = |rid: u64| changes.iter().any(|(f, d)| *d < 0 && f.rid == rid);
        for (i, (f, d)) in changes.iter().enumerate() {
            if *d < 0 && self.get(f.rid) != Some(*f) {
                return Err(TableError::Missing(f.rid));
            }
            let again = changes[..i].iter().any(|(g, e)| *e > 0 && g.rid == f.rid);
            if *d > 0 && (again || (self.get(f.rid).is_some() && !leaving(f.rid))) {
                return Err(TableError::Collision(f.rid));
            }
        }
        // Every link a change makes or breaks has an end in the table as it is, or is
        // between two changed records.
        let mut touched = Vec::new();
        for (f, _) in changes {
            self.touched_by(f, &mut touched);
        }
        Ok(touched)
    }

    /// Applies `changes` (a record with `+1` enters, with `-1` leaves; removals first) and
    /// returns the records whose view changed, with their views before and after. A
    /// change that cannot apply changes nothing.
    pub fn update(
        &mut self,
        changes: &[(Fields, isize)],
        cat: &Catalogue,
    ) -> Result<Vec<Delta>, TableError> {
        let touched = self.touched(changes)?;
        let before = self.views_of(&touched, cat);
        self.apply(changes);
        let after = self.views_of(&touched, cat);
        Ok(touched
            .into_iter()
            .zip(before.into_iter().zip(after))
            .filter(|(_, (before, after))| before != after)
            .map(|(rid, (before, after))| Delta { rid, before, after })
            .collect())
    }

    /// Applies changes that [`Self::touched`] accepted.
    fn apply(&mut self, changes: &[(Fields, isize)]) {
        for (f, _) in changes.iter().filter(|(_, d)| *d < 0) {
            self.remove(f);
        }
        // Room for every record that enters at once: a table built from many records (an
        // enterprise's first step, a restart) is not grown once per record.
        let entering = changes.iter().filter(|(_, d)| *d > 0).count();
        crate::reserve_kept(&mut self.rows, entering);
        crate::reserve_kept(&mut self.by_kind, entering);
        for (f, _) in changes.iter().filter(|(_, d)| *d > 0) {
            self.insert(*f);
        }
    }

    /// Adds to `touched` the records whose view a change of `x` may change: `x` itself,
    /// the records it names and the records naming it (and a revoked repair's target).
    fn touched_by(&self, x: &Fields, touched: &mut Vec<u64>) {
        let mut add = |rid: u64| {
            if !touched.contains(&rid) {
                touched.push(rid);
            }
        };
        add(x.rid);
        let repair_target = |p: &Fields| p.key.filter(|_| p.is_repair());
        // A record that does not link is linked to by retractions and repairs only.
        let others: Box<dyn Iterator<Item = Fields>> = if x.is_link() {
            Box::new(self.iter())
        } else {
            Box::new(self.links())
        };
        for t in others {
            let linked = x.names(&t)
                || t.names(x)
                || repair_target(x) == Some(t.rid)
                || repair_target(&t) == Some(x.rid)
                || (x.is_revocation() && x.b == Some(t.rid))
                || (t.is_revocation() && t.b == Some(x.rid));
            if linked {
                add(t.rid);
            }
        }
        // A revocation changes its repair's target too.
        if let Some(p) = x.b.filter(|_| x.is_revocation()).and_then(|r| self.get(r)) {
            if let Some(t) = repair_target(&p) {
                add(t);
            }
        }
    }

    fn views_of(&self, rids: &[u64], cat: &Catalogue) -> Vec<Option<View>> {
        rids.iter()
            .map(|rid| self.get(*rid).map(|f| self.view(&f, cat)))
            .collect()
    }

    /// What became of record `f` of this table.
    pub fn view(&self, f: &Fields, cat: &Catalogue) -> View {
        let hold = cat.lifecycle.hold_secs;
        if f.is_repair() {
            return View::Repair(self.repair(f, cat));
        }
        if f.is_revocation() {
            let target = f.b.and_then(|r| self.get(r));
            let (letter, revokes) = match target {
                Some(p) if p.is_repair() && p.v <= f.v.saturating_add(hold) => (None, Some(p.rid)),
                Some(w) if w.is_revocation() => {
                    (Some((Reason::TargetMismatch, f.v.max(w.v))), None)
                }
                _ => (Some(unknown(f, hold)), None),
            };
            return View::Retraction { letter, revokes };
        }
        if f.retraction {
            let letter = match f.b.and_then(|r| self.get(r)) {
                Some(t) if t.is_record() && f.kind.targets() & (1 << (t.kind.0 & 15)) == 0 => {
                    Some((Reason::TargetMismatch, f.v.max(t.v)))
                }
                Some(t) if f.acts_on(&t, hold) => None,
                _ if f.b.is_none() && self.iter().any(|t| f.acts_on(&t, hold)) => None,
                _ => Some(unknown(f, hold)),
            };
            return View::Retraction {
                letter,
                revokes: None,
            };
        }
        let mut ending = Ending::default();
        let mut payments = Vec::new();
        for r in self.links() {
            if r.acts_on(f, hold) {
                r.act(f, &mut ending, &mut payments);
            } else if r.is_repair() && r.key == Some(f.rid) {
                if let Some((Some(_), at)) = self.repair(&r, cat).applied {
                    ending.repaired = Some(ending.repaired.map_or(at, |x| x.min(at)));
                }
            }
        }
        payments.sort_by_key(|p| (p.at, p.amount_fen));
        View::Record { ending, payments }
    }

    /// What became of completed repair `p`.
    fn repair(&self, p: &Fields, cat: &Catalogue) -> Repair {
        let hold = cat.lifecycle.hold_secs;
        let in_time = |t: &Fields, r: &Fields| t.v <= r.v.saturating_add(hold);
        if self
            .links()
            .any(|r| r.is_revocation() && r.b == Some(p.rid) && in_time(p, &r))
        {
            return Repair {
                revoked: true,
                ..Repair::default()
            };
        }
        let target = p
            .key
            .and_then(|k| self.get(k))
            .filter(|t| t.is_record() && in_time(t, p));
        let effective = p.b.map_or(p.event_time, to_signed);
        let mut out = Repair::default();
        let applies = match &target {
            Some(t) => {
                if t.event_time.max(effective) < t.min_publicity_end(cat) {
                    out.flags.push(RepairFlag::RepairBeforeMinPublicity);
                }
                if t.non_repairable(cat) {
                    out.flags.push(RepairFlag::RepairNonRepairable);
                }
                out.flags
                    .iter()
                    .all(|f| cat.repairs.action(*f) == RepairAction::Apply)
            }
            None => {
                out.flags.push(RepairFlag::RepairUnknownTarget);
                let action = cat.repairs.action(RepairFlag::RepairUnknownTarget);
                if action == RepairAction::Hold {
                    out.letter = Some(p.v.saturating_add(hold));
                }
                action == RepairAction::Apply
            }
        };
        if applies {
            out.applied = Some(match target {
                Some(t) => (Some(t.rid), t.event_time.max(effective)),
                None => (None, effective),
            });
        }
        out
    }

    /// Every record's view, by fingerprint: the lifecycle from scratch.
    pub fn views(&self, cat: &Catalogue) -> Vec<(u64, View)> {
        self.iter().map(|f| (f.rid, self.view(&f, cat))).collect()
    }

    /// Every lifecycle dead letter, by fingerprint: `(record, reason, time)`.
    pub fn letters(&self, cat: &Catalogue) -> Letters {
        facts::letters(&self.views(cat))
    }

    /// Whether the enterprise is known: it has a record in effect or an applied repair
    /// ([`crate::lifecycle::Resolved::is_known`]).
    pub fn is_known(&self, cat: &Catalogue) -> bool {
        self.rows.len() > self.links.len()
            || self
                .links()
                .any(|f| f.is_repair() && self.repair(&f, cat).applied.is_some())
    }
}

fn unknown(f: &Fields, hold: Ts) -> (Reason, Ts) {
    (Reason::UnknownTarget, f.v.saturating_add(hold))
}

#[cfg(test)]
mod tests {
    use std::hash::Hasher;

    use super::*;

    /// A fingerprint is XXH3 of the tag then the text under the seed, for a text that fits
    /// the stack buffer and for one that does not, as a streaming hasher gives it.
    #[test]
    fn a_fingerprint_is_xxh3_of_the_tag_and_the_text() {
        let seed = Seed::new(0x5eed);
        for text in ["", "p1", &"x".repeat(63), &"y".repeat(64), &"z".repeat(300)] {
            let mut h = XxHash3_64::with_seed(0x5eed);
            h.write(&[7]);
            h.write(text.as_bytes());
            assert_eq!(seed.full(7, text), h.finish(), "{} bytes", text.len());
        }
        assert_eq!(
            Seed::weak(0x5eed, 8).hash(7, "p1"),
            seed.hash(7, "p1") & 0xff
        );
    }
}
