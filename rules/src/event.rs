//! Typed input records: the envelope every feed shares and one body per feed
//! (`events.md`). The JSON shape is flat: envelope fields, `feed`, `kind` and the feed's own
//! fields side by side in one object.
//!
//! These types describe a record that has passed validation ([`crate::decode`]). Fields that
//! only some kinds require are `Option`s here; the decoder enforces the per-kind required
//! set published in `rules/schemas/`.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::time::{rfc3339, rfc3339_opt, Period, Ts};
use crate::CompactString;

/// Defines a string enum with its wire names, `ALL` and `as_str`.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ::serde::Serialize, ::serde::Deserialize, ::schemars::JsonSchema)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $wire)] $var),+ }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            /// Every wire name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($wire),+];
            /// The wire name.
            pub fn as_str(self) -> &'static str { match self { $($name::$var => $wire),+ } }
            /// Parses the wire name.
            pub fn parse(s: &str) -> Option<Self> { match s { $($wire => Some($name::$var),)+ _ => None } }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}
pub(crate) use wire_enum;

wire_enum!(
    /// The eleven input feeds.
    Feed {
        Pen = "PEN", List = "LIST", Tax = "TAX", Jud = "JUD", Fin = "FIN", Reg = "REG",
        Per = "PER", Cmt = "CMT", Rpr = "RPR", Insp = "INSP", Pcs = "PCS",
    }
);

impl Feed {
    /// Default topic name `credit.in.<feed lower case>`.
    pub fn default_topic(self) -> String {
        format!("credit.in.{}", self.as_str().to_ascii_lowercase())
    }
}

wire_enum!(
    /// PEN kinds. `CORRECTED` is a new version of the `DECIDED` record and counts as it.
    PenKind { Decided = "DECIDED", Performed = "PERFORMED", Revoked = "REVOKED", Corrected = "CORRECTED" }
);
wire_enum!(
    /// Penalty types.
    PenaltyType {
        Warning = "warning", Fine = "fine", Confiscation = "confiscation", Suspension = "suspension",
        LicenceRevocation = "licence_revocation", PracticeBan = "practice_ban",
    }
);
wire_enum!(
    /// Dishonesty class of a penalty decision.
    DishonestyClass { Minor = "MINOR", General = "GENERAL", Serious = "SERIOUS" }
);
wire_enum!(
    /// LIST kinds.
    ListKind { Listed = "LISTED", Removed = "REMOVED" }
);
wire_enum!(
    /// Which regulatory list.
    ListType { Abnormal = "ABNORMAL", SeriousIllegal = "SERIOUS_ILLEGAL" }
);
wire_enum!(
    /// TAX kinds.
    TaxKind {
        Grade = "GRADE", Paid = "PAID", Declared = "DECLARED", ArrearsAssessed = "ARREARS_ASSESSED",
        ArrearsPaid = "ARREARS_PAID", AbnormalHousehold = "ABNORMAL_HOUSEHOLD",
        AbnormalLifted = "ABNORMAL_LIFTED", MajorViolation = "MAJOR_VIOLATION",
        MajorViolationRemoved = "MAJOR_VIOLATION_REMOVED", SocialInsurance = "SOCIAL_INSURANCE",
    }
);
wire_enum!(
    /// Tax credit grade.
    TaxGrade { A = "A", B = "B", M = "M", C = "C", D = "D" }
);
wire_enum!(
    /// JUD kinds.
    JudKind {
        CaseFiled = "CASE_FILED", CaseClosed = "CASE_CLOSED", EnforcementFiled = "ENFORCEMENT_FILED",
        EnforcementTerminated = "ENFORCEMENT_TERMINATED", EnforcementClosed = "ENFORCEMENT_CLOSED",
        Performed = "PERFORMED", DishonestListed = "DISHONEST_LISTED", DishonestRemoved = "DISHONEST_REMOVED",
        ConsumptionRestricted = "CONSUMPTION_RESTRICTED", ConsumptionLifted = "CONSUMPTION_LIFTED",
        Freeze = "FREEZE", Unfreeze = "UNFREEZE",
    }
);
wire_enum!(
    /// The enterprise's role in a court case.
    JudRole { Defendant = "DEFENDANT", Plaintiff = "PLAINTIFF", ThirdParty = "THIRD_PARTY" }
);
wire_enum!(
    /// Cause of action.
    JudCause { Contract = "CONTRACT", Loan = "LOAN", Labour = "LABOUR", Other = "OTHER" }
);
wire_enum!(
    /// Why a case was closed.
    CloseReason { Withdrawn = "WITHDRAWN", Dismissed = "DISMISSED", Judged = "JUDGED", Settled = "SETTLED" }
);
wire_enum!(
    /// FIN kinds.
    FinKind {
        OverdueListed = "OVERDUE_LISTED", OverdueUpdated = "OVERDUE_UPDATED", OverdueCleared = "OVERDUE_CLEARED",
        DebtEvasionListed = "DEBT_EVASION_LISTED", DebtEvasionRemoved = "DEBT_EVASION_REMOVED",
        PoliceListed = "POLICE_LISTED", PoliceRemoved = "POLICE_REMOVED",
        SuspiciousAccount = "SUSPICIOUS_ACCOUNT", SuspiciousAccountCleared = "SUSPICIOUS_ACCOUNT_CLEARED",
    }
);
wire_enum!(
    /// FIN source database; must match the kind.
    FinDatabase {
        Overdue = "OVERDUE", DebtEvasion = "DEBT_EVASION", PoliceDishonest = "POLICE_DISHONEST",
        SuspiciousAccount = "SUSPICIOUS_ACCOUNT",
    }
);
wire_enum!(
    /// REG kinds.
    RegKind {
        Established = "ESTABLISHED", Changed = "CHANGED", Capital = "CAPITAL", EquityPledge = "EQUITY_PLEDGE",
        PledgeReleased = "PLEDGE_RELEASED", Mortgage = "MORTGAGE", MortgageCancelled = "MORTGAGE_CANCELLED",
        AnnualReport = "ANNUAL_REPORT", AddressCluster = "ADDRESS_CLUSTER", Shareholder = "SHAREHOLDER",
        Investment = "INVESTMENT", Status = "STATUS",
    }
);
wire_enum!(
    /// Which registration field changed.
    ChangeField {
        LegalRep = "LEGAL_REP", Shareholder = "SHAREHOLDER", Address = "ADDRESS",
        CapitalDecrease = "CAPITAL_DECREASE", Other = "OTHER",
    }
);
wire_enum!(
    /// Registration status.
    RegStatus { Active = "ACTIVE", Revoked = "REVOKED", Deregistered = "DEREGISTERED" }
);
wire_enum!(
    /// PER kinds.
    PerKind {
        Score = "SCORE", DishonestListed = "DISHONEST_LISTED", DishonestRemoved = "DISHONEST_REMOVED",
        Role = "ROLE", RoleEnded = "ROLE_ENDED",
    }
);
wire_enum!(
    /// A person's role in the enterprise.
    PersonRole { LegalRep = "LEGAL_REP", Shareholder = "SHAREHOLDER", Executive = "EXECUTIVE" }
);
wire_enum!(
    /// CMT kinds.
    CmtKind { Published = "PUBLISHED", Scheduled = "SCHEDULED", Verified = "VERIFIED", Rectified = "RECTIFIED" }
);
wire_enum!(
    /// Commitment type.
    CommitmentType { Approval = "APPROVAL", Voluntary = "VOLUNTARY", Repair = "REPAIR" }
);
wire_enum!(
    /// Verification method.
    VerifyMethod { Random = "RANDOM", Onsite = "ONSITE", Offsite = "OFFSITE", Exempt = "EXEMPT" }
);
wire_enum!(
    /// Verification result.
    CmtResult { Normal = "NORMAL", Rectify = "RECTIFY", Broken = "BROKEN" }
);
wire_enum!(
    /// RPR kinds.
    RprKind { Completed = "COMPLETED", Revoked = "REVOKED" }
);
wire_enum!(
    /// Repair type.
    RepairType {
        TerminatePublicity = "TERMINATE_PUBLICITY", ListRemoval = "LIST_REMOVAL", TaxCredit = "TAX_CREDIT",
        Commitment = "COMMITMENT",
    }
);
wire_enum!(
    /// INSP kinds.
    InspKind { Result = "RESULT" }
);
wire_enum!(
    /// Inspection result.
    InspResult { Pass = "PASS", ProblemCorrected = "PROBLEM_CORRECTED", Fail = "FAIL", NotOperating = "NOT_OPERATING" }
);
wire_enum!(
    /// PCS kinds.
    PcsKind { Score = "SCORE", Honour = "HONOUR", HonourRevoked = "HONOUR_REVOKED" }
);

/// One accepted input record: envelope plus the feed's body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Event {
    /// Normalised 18-character USCC.
    pub uscc: CompactString,
    /// 1–64 characters, unique within the feed.
    pub event_id: CompactString,
    /// ≥ 1 (default 1); a higher version replaces the record.
    #[serde(default = "first_version")]
    pub version: u32,
    /// Business time, whole seconds.
    #[serde(with = "rfc3339")]
    pub event_time: Ts,
    /// When the source published it, whole seconds.
    #[serde(with = "rfc3339")]
    pub ingest_time: Ts,
    /// Issuing body code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_org: Option<CompactString>,
    /// For retraction and correction kinds: the record acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_event_id: Option<CompactString>,
    /// Feed, kind and the feed's fields.
    #[serde(flatten)]
    pub body: Body,
}

fn first_version() -> u32 {
    1
}

/// The feed-specific part of a record, tagged by `feed`. The bodies of the rarer, larger
/// feeds (penalties, courts, financial risk, registration) are boxed, so the enum is the
/// size of a tax record's body, the most common: a record held in the engine carries no
/// room for a registration record's fields (D82).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "feed")]
pub enum Body {
    /// Administrative penalties.
    #[serde(rename = "PEN")]
    Pen(Box<Pen>),
    /// Regulatory lists.
    #[serde(rename = "LIST")]
    List(List),
    /// Tax.
    #[serde(rename = "TAX")]
    Tax(Tax),
    /// Courts.
    #[serde(rename = "JUD")]
    Jud(Box<Jud>),
    /// Financial risk.
    #[serde(rename = "FIN")]
    Fin(Box<Fin>),
    /// Registration and annual reports.
    #[serde(rename = "REG")]
    Reg(Box<Reg>),
    /// Legal representative's personal credit.
    #[serde(rename = "PER")]
    Per(Per),
    /// Credit commitments.
    #[serde(rename = "CMT")]
    Cmt(Cmt),
    /// Credit repair.
    #[serde(rename = "RPR")]
    Rpr(Rpr),
    /// Inspections.
    #[serde(rename = "INSP")]
    Insp(Insp),
    /// Provincial public credit score.
    #[serde(rename = "PCS")]
    Pcs(Pcs),
}

impl Body {
    /// The feed this body belongs to.
    pub fn feed(&self) -> Feed {
        match self {
            Body::Pen(_) => Feed::Pen,
            Body::List(_) => Feed::List,
            Body::Tax(_) => Feed::Tax,
            Body::Jud(_) => Feed::Jud,
            Body::Fin(_) => Feed::Fin,
            Body::Reg(_) => Feed::Reg,
            Body::Per(_) => Feed::Per,
            Body::Cmt(_) => Feed::Cmt,
            Body::Rpr(_) => Feed::Rpr,
            Body::Insp(_) => Feed::Insp,
            Body::Pcs(_) => Feed::Pcs,
        }
    }

    /// The kind's wire name.
    pub fn kind_str(&self) -> &'static str {
        match self {
            Body::Pen(b) => b.kind.as_str(),
            Body::List(b) => b.kind.as_str(),
            Body::Tax(b) => b.kind.as_str(),
            Body::Jud(b) => b.kind.as_str(),
            Body::Fin(b) => b.kind.as_str(),
            Body::Reg(b) => b.kind.as_str(),
            Body::Per(b) => b.kind.as_str(),
            Body::Cmt(b) => b.kind.as_str(),
            Body::Rpr(b) => b.kind.as_str(),
            Body::Insp(b) => b.kind.as_str(),
            Body::Pcs(b) => b.kind.as_str(),
        }
    }

    /// True for the retraction kinds (bold in `events.md`).
    pub fn is_retraction(&self) -> bool {
        match self {
            Body::Pen(b) => b.kind == PenKind::Revoked,
            Body::List(b) => b.kind == ListKind::Removed,
            Body::Tax(b) => matches!(
                b.kind,
                TaxKind::ArrearsPaid | TaxKind::AbnormalLifted | TaxKind::MajorViolationRemoved
            ),
            Body::Jud(b) => matches!(
                b.kind,
                JudKind::CaseClosed
                    | JudKind::EnforcementClosed
                    | JudKind::Performed
                    | JudKind::DishonestRemoved
                    | JudKind::ConsumptionLifted
                    | JudKind::Unfreeze
            ),
            Body::Fin(b) => matches!(
                b.kind,
                FinKind::OverdueCleared
                    | FinKind::DebtEvasionRemoved
                    | FinKind::PoliceRemoved
                    | FinKind::SuspiciousAccountCleared
            ),
            Body::Reg(b) => matches!(b.kind, RegKind::PledgeReleased | RegKind::MortgageCancelled),
            Body::Per(b) => matches!(b.kind, PerKind::DishonestRemoved | PerKind::RoleEnded),
            Body::Rpr(b) => b.kind == RprKind::Revoked,
            Body::Pcs(b) => b.kind == PcsKind::HonourRevoked,
            Body::Cmt(_) | Body::Insp(_) => false,
        }
    }
}

impl Event {
    /// The record's feed.
    pub fn feed(&self) -> Feed {
        self.body.feed()
    }
}

/// PEN body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pen {
    /// Kind.
    pub kind: PenKind,
    /// Decision number; links follow-ups (`PERFORMED`) to the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_no: Option<CompactString>,
    /// Penalty types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub penalty_types: Vec<PenaltyType>,
    /// Fine in fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fine_fen: Option<i64>,
    /// Confiscation in fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confiscation_fen: Option<i64>,
    /// Dishonesty class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dishonesty_class: Option<DishonestyClass>,
    /// Regulatory domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<CompactString>,
    /// Payment due date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<NaiveDate>,
    /// Earliest end of publicity (repairs before it are flagged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publicity_min_end: Option<NaiveDate>,
    /// Latest end of publicity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publicity_max_end: Option<NaiveDate>,
}

/// LIST body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct List {
    /// Kind.
    pub kind: ListKind,
    /// Which list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_kind: Option<ListType>,
    /// Listing reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<CompactString>,
}

/// TAX body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tax {
    /// Kind.
    pub kind: TaxKind,
    /// Year a grade evaluates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_year: Option<i32>,
    /// Tax credit grade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<TaxGrade>,
    /// Tax period `YYYY-MM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// Amount in fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_fen: Option<i64>,
    /// Late fee in fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_fee_fen: Option<i64>,
    /// Declared sales in fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sales_fen: Option<i64>,
    /// Insured staff count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insured_count: Option<i64>,
}

/// JUD body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Jud {
    /// Kind.
    pub kind: JudKind,
    /// Case number; with `court_code` links follow-ups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_no: Option<CompactString>,
    /// Court code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub court_code: Option<CompactString>,
    /// The enterprise's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<JudRole>,
    /// Cause of action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<JudCause>,
    /// Amount in fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_fen: Option<i64>,
    /// Unpaid amount in fen (on termination).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpaid_fen: Option<i64>,
    /// Close reason (on `CASE_CLOSED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_reason: Option<CloseReason>,
    /// Due date (on `ENFORCEMENT_FILED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<NaiveDate>,
    /// Listing end (on `DISHONEST_LISTED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_until: Option<NaiveDate>,
}

/// FIN body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fin {
    /// Kind.
    pub kind: FinKind,
    /// Source database; must match the kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<FinDatabase>,
    /// Lender code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lender_code: Option<CompactString>,
    /// Loan id (on `OVERDUE_*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loan_id: Option<CompactString>,
    /// Days overdue at `event_time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue_days: Option<i64>,
    /// Overdue amount in fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue_fen: Option<i64>,
    /// Salted hash of the account number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_hash: Option<CompactString>,
}

/// REG body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Reg {
    /// Kind.
    pub kind: RegKind,
    /// Changed field (on `CHANGED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_field: Option<ChangeField>,
    /// Registered capital in fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_capital_fen: Option<i64>,
    /// Paid-in capital in fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_in_fen: Option<i64>,
    /// Share in basis points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_bp: Option<i64>,
    /// The other enterprise of a share, investment or pledge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparty_uscc: Option<CompactString>,
    /// Annual report year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_year: Option<i32>,
    /// Tax reported in the annual report, fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_tax_fen: Option<i64>,
    /// Staff reported in the annual report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_staff: Option<i64>,
    /// Revenue reported in the annual report, fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_revenue_fen: Option<i64>,
    /// Firms registered at the same address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_firm_count: Option<i64>,
    /// Registration status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RegStatus>,
    /// Region code (6 digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_code: Option<CompactString>,
    /// Industry code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub industry_code: Option<CompactString>,
}

/// PER body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Per {
    /// Kind.
    pub kind: PerKind,
    /// Salted hash of the person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_hash: Option<CompactString>,
    /// Role (on `ROLE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<PersonRole>,
    /// Personal score, `0..=scale_max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<i64>,
    /// The score's scale, > 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_max: Option<i64>,
}

/// CMT body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cmt {
    /// Kind.
    pub kind: CmtKind,
    /// Commitment id; links follow-ups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commitment_id: Option<CompactString>,
    /// Commitment type.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub commitment_type: Option<CommitmentType>,
    /// The matter committed to (selects the contradicting record kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matter: Option<CompactString>,
    /// Last day of validity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<NaiveDate>,
    /// Verification method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<VerifyMethod>,
    /// Verification result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<CmtResult>,
    /// Rectification deadline (on `RECTIFY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rectify_deadline: Option<NaiveDate>,
}

/// RPR body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Rpr {
    /// Kind.
    pub kind: RprKind,
    /// Feed of the repaired record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_feed: Option<Feed>,
    /// `event_id` of the repaired record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_event_id: Option<CompactString>,
    /// Repair type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair_type: Option<RepairType>,
    /// When the repair takes effect.
    #[serde(default, with = "rfc3339_opt", skip_serializing_if = "Option::is_none")]
    pub effective_time: Option<Ts>,
}

/// INSP body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Insp {
    /// Kind.
    pub kind: InspKind,
    /// Campaign id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<CompactString>,
    /// Result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<InspResult>,
}

/// PCS body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pcs {
    /// Kind.
    pub kind: PcsKind,
    /// Public credit score 0–1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<i64>,
    /// Honour type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honour_type: Option<CompactString>,
    /// Honour validity end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<NaiveDate>,
}
