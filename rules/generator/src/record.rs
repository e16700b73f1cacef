//! Compact generated records and their conversion to typed [`Event`]s and wire bytes.
//!
//! A [`Rec`] holds numbers only (identifiers are sequence numbers within the enterprise), so
//! that a whole window of records can be kept, sorted by arrival and then serialised.

use chrono::NaiveDate;
use rand::Rng;

use super::ids::hash_hex;
use rules::event::*;
use rules::time::{add_months, format_rfc3339, local_date, Period, Ts, DAY};
use rules::{format_compact, CompactString};

/// How a generated line is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Delivery {
    /// The record as generated.
    Original,
    /// A second delivery of identical bytes.
    Duplicate,
    /// A broken copy (own `event_id` suffix `-m`).
    Malformed(Malform),
}

/// The ways a malformed line is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Malform {
    /// Truncated JSON.
    InvalidJson,
    /// An envelope field removed.
    MissingField,
    /// A wrong USCC check character.
    BadUscc,
    /// An amount made negative (a bad USCC when the record has no amount).
    NegativeAmount,
    /// An unknown `kind`.
    UnknownKind,
    /// `event_time` more than one day after `ingest_time`.
    FutureEventTime,
}

impl Malform {
    /// Every way, drawn in equal parts.
    pub(super) const ALL: [Malform; 6] = [
        Malform::InvalidJson,
        Malform::MissingField,
        Malform::BadUscc,
        Malform::NegativeAmount,
        Malform::UnknownKind,
        Malform::FutureEventTime,
    ];
}

/// One generated record in compact form.
#[derive(Debug, Clone)]
pub(super) struct Rec {
    /// `ingest_time`.
    pub ingest: Ts,
    /// `event_time`.
    pub event_time: Ts,
    /// Arrival delay after `ingest_time` (out-of-order and duplicate deliveries).
    pub delay: u32,
    /// Enterprise index.
    pub ent: u32,
    /// Sequence number within the enterprise; the `event_id` is built from it.
    pub seq: u32,
    /// Sequence number of the head of the record's chain, which names its business key
    /// (decision, case, loan, account, commitment); its own `seq` for a head.
    pub key: u32,
    /// Sequence number of the record a retraction acts on (`ref_event_id`, same feed).
    pub reference: Option<u32>,
    /// `version`.
    pub version: u8,
    /// How the line is delivered.
    pub delivery: Delivery,
    /// Feed, kind and fields.
    pub body: P,
}

impl Rec {
    /// When the line arrives.
    pub fn arrival(&self) -> Ts {
        self.ingest + Ts::from(self.delay)
    }

    /// The total arrival order: by arrival time, then identity, then delivery.
    pub fn order_key(&self) -> (Ts, u32, u32, u8, Delivery) {
        (
            self.arrival(),
            self.ent,
            self.seq,
            self.version,
            self.delivery,
        )
    }
}

/// Feed, kind and fields of a compact record. Each variant lists the fields its kinds carry;
/// [`Rec::to_event`] decides per kind which of them go on the wire.
#[derive(Debug, Clone)]
pub(super) enum P {
    /// `PEN.DECIDED` (`CORRECTED` when `version` > 1).
    PenDecided {
        /// Dishonesty class.
        class: DishonestyClass,
        /// Bit set over [`PenaltyType::ALL`].
        types: u8,
        /// Index into [`DOMAINS`].
        domain: u8,
        /// Fine in fen.
        fine: i64,
        /// Confiscation in fen.
        confiscation: i64,
        /// Payment due date.
        due: NaiveDate,
        /// Whether publicity end dates are given.
        publicity: bool,
    },
    /// `PEN.PERFORMED` or `PEN.REVOKED`.
    Pen(PenKind),
    /// `LIST.*`.
    List {
        /// Kind.
        kind: ListKind,
        /// Which list.
        list: ListType,
        /// Index into the list's reason codes.
        reason: u8,
    },
    /// `TAX.GRADE`.
    TaxGrade {
        /// Evaluated year.
        year: i32,
        /// Grade.
        grade: TaxGrade,
    },
    /// `TAX.PAID` (amount), `DECLARED` (sales) or `SOCIAL_INSURANCE` (insured count).
    TaxMonthly {
        /// Kind.
        kind: TaxKind,
        /// Tax period.
        period: Period,
        /// The kind's value.
        value: i64,
    },
    /// `TAX.ARREARS_ASSESSED` or `ARREARS_PAID`.
    TaxArrears {
        /// Kind.
        kind: TaxKind,
        /// Amount in fen.
        amount: i64,
        /// Late fee in fen (assessed only).
        late_fee: i64,
    },
    /// The other TAX kinds, which carry no fields.
    Tax(TaxKind),
    /// `JUD.*`; the chain head's `seq` names the case.
    Jud {
        /// Kind.
        kind: JudKind,
        /// Court number.
        court: u8,
        /// The enterprise's role.
        role: JudRole,
        /// Cause of action.
        cause: JudCause,
        /// `amount_fen` on filings and freezes, `unpaid_fen` on termination.
        amount: i64,
        /// Close reason (on `CASE_CLOSED`).
        close: CloseReason,
        /// `due_date` on `ENFORCEMENT_FILED`, `list_until` on `DISHONEST_LISTED`.
        date: Option<NaiveDate>,
    },
    /// `FIN.*`; the chain head's `seq` names the loan or account.
    Fin {
        /// Kind.
        kind: FinKind,
        /// Lender number.
        lender: u8,
        /// Days overdue.
        days: i64,
        /// Overdue amount in fen.
        amount: i64,
    },
    /// `REG.ESTABLISHED`.
    Established {
        /// Index into [`INDUSTRIES`].
        industry: u8,
    },
    /// `REG.CHANGED`.
    Changed(ChangeField),
    /// `REG.CAPITAL`.
    Capital {
        /// Registered capital in fen.
        registered: i64,
        /// Paid-in capital in fen.
        paid_in: i64,
    },
    /// `REG.SHAREHOLDER`, `INVESTMENT` or `EQUITY_PLEDGE`.
    Share {
        /// Kind.
        kind: RegKind,
        /// Index of the other enterprise.
        counterparty: Option<u32>,
        /// Share in basis points.
        share_bp: i64,
    },
    /// REG kinds without fields (`PLEDGE_RELEASED`, `MORTGAGE`, `MORTGAGE_CANCELLED`).
    Reg(RegKind),
    /// `REG.ANNUAL_REPORT`.
    AnnualReport {
        /// Report year.
        year: i32,
        /// Reported tax in fen.
        tax: i64,
        /// Reported staff.
        staff: i64,
        /// Reported revenue in fen.
        revenue: i64,
    },
    /// `REG.ADDRESS_CLUSTER`.
    AddressCluster(i64),
    /// `REG.STATUS`.
    Status(RegStatus),
    /// `PER.SCORE` (scale 1000).
    PerScore {
        /// Person number.
        person: u32,
        /// Score.
        score: i64,
    },
    /// The other PER kinds.
    Per {
        /// Kind.
        kind: PerKind,
        /// Person number.
        person: u32,
        /// Role (on `ROLE`).
        role: Option<PersonRole>,
    },
    /// `CMT.*`; the chain head's `seq` names the commitment.
    Cmt {
        /// Kind.
        kind: CmtKind,
        /// Type (on `PUBLISHED`).
        ctype: CommitmentType,
        /// Index into [`MATTERS`].
        matter: u8,
        /// Last valid day (on `PUBLISHED`).
        valid_until: NaiveDate,
        /// Result (on `VERIFIED`).
        result: CmtResult,
        /// Rectification deadline (on `VERIFIED` `RECTIFY`).
        deadline: Option<NaiveDate>,
    },
    /// `RPR.COMPLETED`.
    Repair {
        /// Feed of the repaired record.
        target_feed: Feed,
        /// `seq` of the repaired record.
        target: u32,
        /// Repair type.
        repair: RepairType,
        /// When the repair takes effect.
        effective: Ts,
    },
    /// `RPR.REVOKED`.
    RepairRevoked,
    /// `INSP.RESULT`.
    Insp {
        /// Campaign number: year · 4 + quarter index.
        campaign: i32,
        /// Result.
        result: InspResult,
    },
    /// `PCS.SCORE`.
    PcsScore(i64),
    /// `PCS.HONOUR` or `HONOUR_REVOKED`.
    Honour {
        /// Kind.
        kind: PcsKind,
        /// Index into [`HONOURS`].
        honour: u8,
        /// Validity end.
        valid_until: NaiveDate,
    },
}

/// Penalty domains (`PEN.domain`).
pub(super) const DOMAINS: [&str; 7] = [
    "MARKET",
    "TAX",
    "ENVIRONMENT",
    "SAFETY",
    "FIRE",
    "TRANSPORT",
    "HEALTH",
];
/// Reason codes per list type, [`ListType::ALL`] order.
pub(super) const LIST_REASONS: [[&str; 3]; 2] = [
    [
        "ADDRESS_UNREACHABLE",
        "NO_ANNUAL_REPORT",
        "FALSE_DISCLOSURE",
    ],
    [
        "ABNORMAL_THREE_YEARS",
        "FALSE_REGISTRATION",
        "SERIOUS_VIOLATION",
    ],
];
/// Industry codes (GB/T 4754 divisions).
pub(super) const INDUSTRIES: [&str; 12] = [
    "C13", "C26", "C34", "E47", "F51", "F52", "G54", "H61", "I65", "K70", "L72", "M74",
];
/// Commitment matters.
pub(super) const MATTERS: [&str; 5] = [
    "LICENCE_APPROVAL",
    "TAX_FILING",
    "SAFETY_PRODUCTION",
    "PRODUCT_QUALITY",
    "ENVIRONMENT",
];
/// Honour types.
pub(super) const HONOURS: [&str; 3] =
    ["A_GRADE_TAXPAYER", "CONTRACT_HONOURING", "MODEL_ENTERPRISE"];

/// Lower-case feed codes for `event_id`s, [`Feed::ALL`] order.
const FEED_IDS: [&str; 11] = [
    "pen", "list", "tax", "jud", "fin", "reg", "per", "cmt", "rpr", "insp", "pcs",
];
/// Issuing body per feed, [`Feed::ALL`] order.
const SOURCE_ORGS: [&str; 11] = [
    "QZ-AMR", "QZ-AMR", "QZ-TAX", "QZ-COURT", "PBOC-QZ", "QZ-AMR", "ZJ-XINAN", "QZ-DRC", "QZ-DRC",
    "QZ-AMR", "ZJ-PCS",
];

/// What serialisation needs besides the record.
#[derive(Debug)]
pub(super) struct Ctx<'a> {
    /// Seed for person and account hashes.
    pub seed: u64,
    /// USCC of every enterprise.
    pub usccs: &'a [[u8; 18]],
}

impl Ctx<'_> {
    fn uscc(&self, ent: u32) -> CompactString {
        CompactString::from_utf8_lossy(&self.usccs[ent as usize])
    }
}

/// The `event_id` of record `seq` of enterprise `ent` in `feed`, e.g. `pen-000123-7`.
pub(super) fn event_id(feed: Feed, ent: u32, seq: u32) -> CompactString {
    format_compact!("{}-{ent:06}-{seq}", FEED_IDS[feed as usize])
}

impl P {
    /// The record's feed.
    pub fn feed(&self) -> Feed {
        match self {
            P::PenDecided { .. } | P::Pen(_) => Feed::Pen,
            P::List { .. } => Feed::List,
            P::TaxGrade { .. } | P::TaxMonthly { .. } | P::TaxArrears { .. } | P::Tax(_) => {
                Feed::Tax
            }
            P::Jud { .. } => Feed::Jud,
            P::Fin { .. } => Feed::Fin,
            P::Established { .. }
            | P::Changed(_)
            | P::Capital { .. }
            | P::Share { .. }
            | P::Reg(_)
            | P::AnnualReport { .. }
            | P::AddressCluster(_)
            | P::Status(_) => Feed::Reg,
            P::PerScore { .. } | P::Per { .. } => Feed::Per,
            P::Cmt { .. } => Feed::Cmt,
            P::Repair { .. } | P::RepairRevoked => Feed::Rpr,
            P::Insp { .. } => Feed::Insp,
            P::PcsScore(_) | P::Honour { .. } => Feed::Pcs,
        }
    }

    /// Turns the fields into a corrected version's fields (amounts, shares or scores scaled
    /// by `permille`/1000, kept in range); false for kinds that are never corrected.
    pub fn correct(&mut self, permille: i64) -> bool {
        let scale = |x: &mut i64, max: i64| *x = (*x * permille / 1000).clamp(0, max);
        match self {
            P::PenDecided { fine, .. } => scale(fine, i64::MAX),
            P::TaxMonthly { value, .. } => scale(value, i64::MAX),
            P::TaxArrears {
                kind: TaxKind::ArrearsAssessed,
                amount,
                ..
            } => scale(amount, i64::MAX),
            P::Jud {
                kind: JudKind::CaseFiled | JudKind::EnforcementFiled | JudKind::Freeze,
                amount,
                ..
            } => scale(amount, i64::MAX),
            P::Fin {
                kind: FinKind::OverdueListed | FinKind::OverdueUpdated,
                amount,
                ..
            } => scale(amount, i64::MAX),
            P::Capital {
                paid_in,
                registered,
            } => scale(paid_in, *registered),
            P::Share { share_bp, .. } => scale(share_bp, 10_000),
            P::AnnualReport { revenue, .. } => scale(revenue, i64::MAX),
            P::PerScore { score, .. } => scale(score, 1000),
            P::PcsScore(score) => scale(score, 1000),
            _ => return false,
        }
        true
    }
}

impl Rec {
    /// The typed record (malformed deliveries get their own `event_id`, suffix `-m`).
    pub fn to_event(&self, ctx: &Ctx<'_>) -> Event {
        let feed = self.body.feed();
        let id = |seq| event_id(feed, self.ent, seq);
        let key = || format_compact!("{:06}-{}", self.ent, self.key);
        let mut own_id = id(self.seq);
        if let Delivery::Malformed(_) = self.delivery {
            own_id.push_str("-m");
        }
        let body = match &self.body {
            P::PenDecided {
                class,
                types,
                domain,
                fine,
                confiscation,
                due,
                publicity,
            } => {
                let min_months = if *class == DishonestyClass::Serious {
                    12
                } else {
                    3
                };
                let max_months = if *class == DishonestyClass::Serious {
                    36
                } else {
                    12
                };
                let publicity_end =
                    |m| publicity.then(|| local_date(add_months(self.event_time, m)));
                Body::Pen(Box::new(Pen {
                    kind: if self.version > 1 {
                        PenKind::Corrected
                    } else {
                        PenKind::Decided
                    },
                    decision_no: Some(format_compact!("QZCF-{}", key())),
                    penalty_types: PenaltyType::ALL
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| types & (1 << i) != 0)
                        .map(|(_, t)| *t)
                        .collect(),
                    fine_fen: (*fine > 0).then_some(*fine),
                    confiscation_fen: (*confiscation > 0).then_some(*confiscation),
                    dishonesty_class: Some(*class),
                    domain: Some(DOMAINS[usize::from(*domain)].into()),
                    due_date: Some(*due),
                    publicity_min_end: publicity_end(min_months),
                    publicity_max_end: publicity_end(max_months),
                }))
            }
            P::Pen(kind) => Body::Pen(Box::new(Pen {
                kind: *kind,
                decision_no: Some(format_compact!("QZCF-{}", key())),
                penalty_types: Vec::new(),
                fine_fen: None,
                confiscation_fen: None,
                dishonesty_class: None,
                domain: None,
                due_date: None,
                publicity_min_end: None,
                publicity_max_end: None,
            })),
            P::List { kind, list, reason } => Body::List(List {
                kind: *kind,
                list_kind: Some(*list),
                reason_code: (*kind == ListKind::Listed)
                    .then(|| LIST_REASONS[*list as usize][usize::from(*reason)].into()),
            }),
            P::TaxGrade { year, grade } => Body::Tax(Tax {
                eval_year: Some(*year),
                grade: Some(*grade),
                ..tax(TaxKind::Grade)
            }),
            P::TaxMonthly {
                kind,
                period,
                value,
            } => {
                let mut t = Tax {
                    period: Some(*period),
                    ..tax(*kind)
                };
                let slot = match kind {
                    TaxKind::Paid => &mut t.amount_fen,
                    TaxKind::Declared => &mut t.sales_fen,
                    _ => &mut t.insured_count,
                };
                *slot = Some(*value);
                Body::Tax(t)
            }
            P::TaxArrears {
                kind,
                amount,
                late_fee,
            } => Body::Tax(Tax {
                amount_fen: Some(*amount),
                late_fee_fen: (*late_fee > 0).then_some(*late_fee),
                ..tax(*kind)
            }),
            P::Tax(kind) => Body::Tax(tax(*kind)),
            P::Jud {
                kind,
                court,
                role,
                cause,
                amount,
                close,
                date,
            } => {
                let filed = matches!(
                    kind,
                    JudKind::CaseFiled | JudKind::EnforcementFiled | JudKind::Freeze
                );
                Body::Jud(Box::new(Jud {
                    kind: *kind,
                    case_no: Some(format_compact!("ZJ{court:02}-{}", key())),
                    court_code: Some(format_compact!("QZC{court:02}")),
                    role: Some(*role),
                    cause: Some(*cause),
                    amount_fen: filed.then_some(*amount),
                    unpaid_fen: (*kind == JudKind::EnforcementTerminated).then_some(*amount),
                    close_reason: (*kind == JudKind::CaseClosed).then_some(*close),
                    due_date: date.filter(|_| *kind == JudKind::EnforcementFiled),
                    list_until: date.filter(|_| *kind == JudKind::DishonestListed),
                }))
            }
            P::Fin {
                kind,
                lender,
                days,
                amount,
            } => {
                let database = match kind {
                    FinKind::OverdueListed | FinKind::OverdueUpdated | FinKind::OverdueCleared => {
                        FinDatabase::Overdue
                    }
                    FinKind::DebtEvasionListed | FinKind::DebtEvasionRemoved => {
                        FinDatabase::DebtEvasion
                    }
                    FinKind::PoliceListed | FinKind::PoliceRemoved => FinDatabase::PoliceDishonest,
                    FinKind::SuspiciousAccount | FinKind::SuspiciousAccountCleared => {
                        FinDatabase::SuspiciousAccount
                    }
                };
                let amounts = matches!(kind, FinKind::OverdueListed | FinKind::OverdueUpdated);
                Body::Fin(Box::new(Fin {
                    kind: *kind,
                    database: Some(database),
                    lender_code: Some(format_compact!("B{lender:03}")),
                    loan_id: (database == FinDatabase::Overdue)
                        .then(|| format_compact!("LN-{}", key())),
                    overdue_days: amounts.then_some(*days),
                    overdue_fen: amounts.then_some(*amount),
                    account_hash: (database == FinDatabase::SuspiciousAccount).then(|| {
                        hash_hex(ctx.seed, 2, u64::from(self.ent) << 32 | u64::from(self.key))
                            .into()
                    }),
                }))
            }
            P::Established { industry } => Body::Reg(Box::new(Reg {
                region_code: Some(CompactString::from_utf8_lossy(
                    &ctx.usccs[self.ent as usize][2..8],
                )),
                industry_code: Some(INDUSTRIES[usize::from(*industry)].into()),
                ..reg(RegKind::Established)
            })),
            P::Changed(field) => Body::Reg(Box::new(Reg {
                change_field: Some(*field),
                ..reg(RegKind::Changed)
            })),
            P::Capital {
                registered,
                paid_in,
            } => Body::Reg(Box::new(Reg {
                registered_capital_fen: Some(*registered),
                paid_in_fen: Some(*paid_in),
                ..reg(RegKind::Capital)
            })),
            P::Share {
                kind,
                counterparty,
                share_bp,
            } => Body::Reg(Box::new(Reg {
                share_bp: Some(*share_bp),
                counterparty_uscc: counterparty.map(|c| ctx.uscc(c)),
                ..reg(*kind)
            })),
            P::Reg(kind) => Body::Reg(Box::new(reg(*kind))),
            P::AnnualReport {
                year,
                tax,
                staff,
                revenue,
            } => Body::Reg(Box::new(Reg {
                report_year: Some(*year),
                reported_tax_fen: Some(*tax),
                reported_staff: Some(*staff),
                reported_revenue_fen: Some(*revenue),
                ..reg(RegKind::AnnualReport)
            })),
            P::AddressCluster(n) => Body::Reg(Box::new(Reg {
                address_firm_count: Some(*n),
                ..reg(RegKind::AddressCluster)
            })),
            P::Status(status) => Body::Reg(Box::new(Reg {
                status: Some(*status),
                ..reg(RegKind::Status)
            })),
            P::PerScore { person, score } => Body::Per(Per {
                kind: PerKind::Score,
                person_hash: Some(hash_hex(ctx.seed, 1, u64::from(*person)).into()),
                role: None,
                score: Some(*score),
                scale_max: Some(1000),
            }),
            P::Per { kind, person, role } => Body::Per(Per {
                kind: *kind,
                person_hash: Some(hash_hex(ctx.seed, 1, u64::from(*person)).into()),
                role: *role,
                score: None,
                scale_max: None,
            }),
            P::Cmt {
                kind,
                ctype,
                matter,
                valid_until,
                result,
                deadline,
            } => {
                let published = *kind == CmtKind::Published;
                let verified = *kind == CmtKind::Verified;
                Body::Cmt(Cmt {
                    kind: *kind,
                    commitment_id: Some(format_compact!("CMT-{}", key())),
                    commitment_type: published.then_some(*ctype),
                    matter: published.then(|| MATTERS[usize::from(*matter)].into()),
                    valid_until: published.then_some(*valid_until),
                    method: None,
                    result: verified.then_some(*result),
                    rectify_deadline: deadline.filter(|_| verified),
                })
            }
            P::Repair {
                target_feed,
                target,
                repair,
                effective,
            } => Body::Rpr(Rpr {
                kind: RprKind::Completed,
                target_feed: Some(*target_feed),
                target_event_id: Some(event_id(*target_feed, self.ent, *target)),
                repair_type: Some(*repair),
                effective_time: Some(*effective),
            }),
            P::RepairRevoked => Body::Rpr(Rpr {
                kind: RprKind::Revoked,
                target_feed: None,
                target_event_id: None,
                repair_type: None,
                effective_time: None,
            }),
            P::Insp { campaign, result } => Body::Insp(Insp {
                kind: InspKind::Result,
                campaign_id: Some(format_compact!(
                    "INSP-{}-Q{}",
                    campaign / 4,
                    campaign % 4 + 1
                )),
                result: Some(*result),
            }),
            P::PcsScore(score) => Body::Pcs(Pcs {
                kind: PcsKind::Score,
                score: Some(*score),
                honour_type: None,
                valid_until: None,
            }),
            P::Honour {
                kind,
                honour,
                valid_until,
            } => Body::Pcs(Pcs {
                kind: *kind,
                score: None,
                honour_type: Some(HONOURS[usize::from(*honour)].into()),
                valid_until: Some(*valid_until),
            }),
        };
        Event {
            uscc: ctx.uscc(self.ent),
            event_id: own_id,
            version: u32::from(self.version),
            event_time: self.event_time,
            ingest_time: self.ingest,
            source_org: Some(SOURCE_ORGS[feed as usize].into()),
            ref_event_id: self.reference.map(id),
            body,
        }
    }

    /// The wire bytes: one JSON object, no newline; broken as configured for malformed
    /// deliveries (`rng` picks where).
    pub fn to_line(&self, ctx: &Ctx<'_>, rng: &mut impl Rng) -> Vec<u8> {
        let line = encode(&self.to_event(ctx));
        match self.delivery {
            Delivery::Malformed(how) => malform(line, how, rng),
            Delivery::Original | Delivery::Duplicate => line,
        }
    }
}

/// The bytes of `serde_json::to_vec(event)`, produced faster: the envelope is written
/// directly (with a calendar computation instead of `chrono` formatting for its two
/// timestamps) and only the body goes through serde. Tests check the equality.
pub(super) fn encode(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(384);
    let field = |out: &mut Vec<u8>, name: &str| {
        out.push(if out.is_empty() { b'{' } else { b',' });
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
    };
    let string = |out: &mut Vec<u8>, s: &str| {
        serde_json::to_writer(&mut *out, s).expect("strings serialise");
    };
    field(&mut out, "uscc");
    string(&mut out, &event.uscc);
    field(&mut out, "event_id");
    string(&mut out, &event.event_id);
    field(&mut out, "version");
    out.extend_from_slice(event.version.to_string().as_bytes());
    for (name, t) in [
        ("event_time", event.event_time),
        ("ingest_time", event.ingest_time),
    ] {
        field(&mut out, name);
        push_timestamp(&mut out, t);
    }
    for (name, value) in [
        ("source_org", &event.source_org),
        ("ref_event_id", &event.ref_event_id),
    ] {
        if let Some(value) = value {
            field(&mut out, name);
            string(&mut out, value);
        }
    }
    let body = out.len();
    serde_json::to_writer(&mut out, &event.body).expect("bodies serialise");
    out[body] = b',';
    out
}

/// Appends `"…Z"`, the canonical form of [`format_rfc3339`].
pub(super) fn push_timestamp(out: &mut Vec<u8>, t: Ts) {
    let (days, secs) = (t.div_euclid(DAY), t.rem_euclid(DAY));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        out.push(b'"');
        out.extend_from_slice(format_rfc3339(t).as_bytes());
        out.push(b'"');
        return;
    }
    let mut buf = *b"\"0000-00-00T00:00:00Z\"";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(1, 4, year);
    put(6, 2, month);
    put(9, 2, day);
    put(12, 2, secs / 3600);
    put(15, 2, secs / 60 % 60);
    put(18, 2, secs % 60);
    out.extend_from_slice(&buf);
}

fn tax(kind: TaxKind) -> Tax {
    Tax {
        kind,
        eval_year: None,
        grade: None,
        period: None,
        amount_fen: None,
        late_fee_fen: None,
        sales_fen: None,
        insured_count: None,
    }
}

fn reg(kind: RegKind) -> Reg {
    Reg {
        kind,
        change_field: None,
        registered_capital_fen: None,
        paid_in_fen: None,
        share_bp: None,
        counterparty_uscc: None,
        report_year: None,
        reported_tax_fen: None,
        reported_staff: None,
        reported_revenue_fen: None,
        address_firm_count: None,
        status: None,
        region_code: None,
        industry_code: None,
    }
}

/// Breaks a valid line in the given way.
fn malform(mut line: Vec<u8>, how: Malform, rng: &mut impl Rng) -> Vec<u8> {
    if how == Malform::InvalidJson {
        line.truncate(rng.random_range(1..line.len()));
        return line;
    }
    let serde_json::Value::Object(mut obj) =
        serde_json::from_slice(&line).expect("generated lines are JSON")
    else {
        unreachable!("events serialise to objects")
    };
    let str_of = |obj: &serde_json::Map<_, _>, k: &str| {
        obj.get(k)
            .and_then(|v: &serde_json::Value| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let bad_uscc = |obj: &mut serde_json::Map<String, serde_json::Value>| {
        let mut code = str_of(obj, "uscc").into_bytes();
        let last = code.len() - 1;
        code[last] = if code[last] == b'0' { b'1' } else { b'0' };
        obj.insert(
            "uscc".into(),
            String::from_utf8_lossy(&code).into_owned().into(),
        );
    };
    match how {
        Malform::MissingField => {
            let field =
                ["uscc", "event_id", "kind", "event_time", "ingest_time"][rng.random_range(0..5)];
            obj.remove(field);
        }
        Malform::BadUscc => bad_uscc(&mut obj),
        Malform::NegativeAmount => {
            match obj
                .iter_mut()
                .find(|(k, v)| k.ends_with("_fen") && v.is_i64())
            {
                Some((_, v)) => *v = (-1 - v.as_i64().unwrap_or_default()).into(),
                None => bad_uscc(&mut obj),
            }
        }
        Malform::UnknownKind => {
            obj.insert("kind".into(), "UNKNOWN".into());
        }
        Malform::FutureEventTime => {
            let ingest = rules::time::parse_rfc3339(&str_of(&obj, "ingest_time")).unwrap_or(0);
            let t = ingest + DAY + rng.random_range(3600..10 * DAY);
            obj.insert("event_time".into(), format_rfc3339(t).into());
        }
        Malform::InvalidJson => {}
    }
    serde_json::to_vec(&obj).expect("maps serialise")
}
