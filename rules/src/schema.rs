//! The single source of truth for what a record must carry: every field of every feed with
//! its JSON type, and per `(feed, kind)` the required fields of `docs/decisions.md` D3.
//!
//! The decoder ([`crate::decode`]) validates against these tables, and [`json_schema`]
//! renders them as the JSON Schemas published in `rules/schemas/` (draft 2020-12).

use serde_json::{json, Map, Value};

use crate::event::{
    ChangeField, CloseReason, CmtResult, CommitmentType, DishonestyClass, Feed, FinDatabase,
    InspResult, JudCause, JudRole, ListType, PenaltyType, PersonRole, RegStatus, RepairType,
    TaxGrade, VerifyMethod,
};

/// The JSON type of a field and the values it admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// Any string.
    Text,
    /// A string of 1–64 characters (`event_id`).
    EventId,
    /// A USCC string: normalised, then checked (GB 32100-2015) unless allow-listed.
    Uscc,
    /// An integer in `min..=max`; with `at_most`, also at most that other field's value.
    Int {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
        /// Another integer field of the same record that bounds this one from above.
        at_most: Option<&'static str>,
    },
    /// An amount in fen (`*_fen`): an integer ≥ 0, else `negative_amount`.
    Amount,
    /// The record version: an integer in `1..=u32::MAX`, default 1.
    Version,
    /// A date `YYYY-MM-DD`.
    Date,
    /// An RFC 3339 timestamp with offset.
    Timestamp,
    /// A month `YYYY-MM`.
    Period,
    /// One of the listed wire names.
    Enum(&'static [&'static str]),
    /// An array of the listed wire names.
    EnumArray(&'static [&'static str]),
}

impl Ty {
    /// True for amounts in fen.
    pub fn is_amount(self) -> bool {
        self == Ty::Amount
    }
}

/// One field of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDef {
    /// JSON name.
    pub name: &'static str,
    /// JSON type and admitted values.
    pub ty: Ty,
    /// One-line description (becomes the schema's `description`).
    pub doc: &'static str,
}

/// How a kind finds the record it acts on (`docs/decisions.md` D2, D3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Not a retraction.
    None,
    /// A retraction that names its target by `ref_event_id`, which is therefore required.
    Ref,
    /// A retraction linked by the feed's business key, which it requires; `ref_event_id`
    /// is optional.
    Key,
}

/// The rules of one kind of a feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindRule {
    /// Wire name of the kind.
    pub kind: &'static str,
    /// Retraction and linking.
    pub link: Link,
    /// Fields this kind requires beyond the envelope and the feed-wide ones. A required
    /// array must be non-empty.
    pub required: &'static [&'static str],
    /// Fields that, when present, must have exactly this value (FIN `database`).
    pub fixed: &'static [(&'static str, &'static str)],
}

/// Everything the decoder and the published schema know about one feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedSchema {
    /// The feed.
    pub feed: Feed,
    /// The feed's own fields (besides the envelope, `feed` and `kind`).
    pub fields: &'static [FieldDef],
    /// Fields every kind of the feed requires (`JUD.*`, `FIN.*`, `PER.*`, `CMT.*` in D3).
    pub always: &'static [&'static str],
    /// Every kind, in the order of the feed's kind enum.
    pub kinds: &'static [KindRule],
}

/// Fields required by every record of every feed (`version` defaults to 1).
pub const ENVELOPE_REQUIRED: &[&str] = &[
    "uscc",
    "feed",
    "kind",
    "event_id",
    "event_time",
    "ingest_time",
];

/// The envelope fields shared by all feeds, except `feed` and `kind`.
pub const ENVELOPE: &[FieldDef] = &[
    f(
        "uscc",
        Ty::Uscc,
        "Unified social credit code, 18 characters after normalisation",
    ),
    f(
        "event_id",
        Ty::EventId,
        "Unique within the feed; (feed, event_id) identifies a record",
    ),
    f(
        "version",
        Ty::Version,
        "A higher version replaces the record; default 1",
    ),
    f(
        "event_time",
        Ty::Timestamp,
        "Business time; at most 1 day after ingest_time",
    ),
    f(
        "ingest_time",
        Ty::Timestamp,
        "When the source system published the record",
    ),
    f("source_org", Ty::Text, "Issuing body code"),
    f(
        "ref_event_id",
        Ty::Text,
        "The record a retraction acts on (same feed)",
    ),
];

const fn f(name: &'static str, ty: Ty, doc: &'static str) -> FieldDef {
    FieldDef { name, ty, doc }
}

const fn int(min: i64, max: i64) -> Ty {
    Ty::Int {
        min,
        max,
        at_most: None,
    }
}

const COUNT: Ty = int(0, i64::MAX);
const YEAR: Ty = int(1900, 2200);

const fn k(kind: &'static str, required: &'static [&'static str]) -> KindRule {
    KindRule {
        kind,
        link: Link::None,
        required,
        fixed: &[],
    }
}

const fn by_ref(kind: &'static str) -> KindRule {
    KindRule {
        link: Link::Ref,
        ..k(kind, &[])
    }
}

const fn by_key(kind: &'static str, required: &'static [&'static str]) -> KindRule {
    KindRule {
        link: Link::Key,
        ..k(kind, required)
    }
}

const fn fin(
    kind: &'static str,
    link: Link,
    required: &'static [&'static str],
    db: &'static [(&'static str, &'static str)],
) -> KindRule {
    KindRule {
        kind,
        link,
        required,
        fixed: db,
    }
}

const DECISION: &[&str] = &["decision_no", "dishonesty_class", "penalty_types"];
const FILED: &[&str] = &["role", "amount_fen"];
const OVERDUE: &[&str] = &["loan_id", "overdue_days", "overdue_fen"];
const DB_OVERDUE: &[(&str, &str)] = &[("database", "OVERDUE")];
const DB_EVASION: &[(&str, &str)] = &[("database", "DEBT_EVASION")];
const DB_POLICE: &[(&str, &str)] = &[("database", "POLICE_DISHONEST")];
const DB_ACCOUNT: &[(&str, &str)] = &[("database", "SUSPICIOUS_ACCOUNT")];
const SHARE: &[&str] = &["counterparty_uscc", "share_bp"];

/// Every feed's schema, in `Feed::ALL` order.
pub const FEEDS: &[FeedSchema] = &[
    FeedSchema {
        feed: Feed::Pen,
        fields: &[
            f(
                "decision_no",
                Ty::Text,
                "Decision number; links PERFORMED to DECIDED",
            ),
            f(
                "penalty_types",
                Ty::EnumArray(PenaltyType::NAMES),
                "Penalty types",
            ),
            f("fine_fen", Ty::Amount, "Fine in fen"),
            f("confiscation_fen", Ty::Amount, "Confiscation in fen"),
            f(
                "dishonesty_class",
                Ty::Enum(DishonestyClass::NAMES),
                "Dishonesty class",
            ),
            f("domain", Ty::Text, "Regulatory domain"),
            f("due_date", Ty::Date, "Payment due date"),
            f("publicity_min_end", Ty::Date, "Earliest end of publicity"),
            f("publicity_max_end", Ty::Date, "Latest end of publicity"),
        ],
        always: &[],
        kinds: &[
            k("DECIDED", DECISION),
            k("PERFORMED", &["decision_no"]),
            by_ref("REVOKED"),
            k("CORRECTED", DECISION),
        ],
    },
    FeedSchema {
        feed: Feed::List,
        fields: &[
            f(
                "list_kind",
                Ty::Enum(ListType::NAMES),
                "Which regulatory list",
            ),
            f("reason_code", Ty::Text, "Listing reason"),
        ],
        always: &[],
        kinds: &[k("LISTED", &["list_kind"]), by_ref("REMOVED")],
    },
    FeedSchema {
        feed: Feed::Tax,
        fields: &[
            f("eval_year", YEAR, "Year a grade evaluates"),
            f("grade", Ty::Enum(TaxGrade::NAMES), "Tax credit grade"),
            f("period", Ty::Period, "Tax period"),
            f("amount_fen", Ty::Amount, "Amount in fen"),
            f("late_fee_fen", Ty::Amount, "Late fee in fen"),
            f("sales_fen", Ty::Amount, "Declared sales in fen"),
            f("insured_count", COUNT, "Insured staff count"),
        ],
        always: &[],
        kinds: &[
            k("GRADE", &["eval_year", "grade"]),
            k("PAID", &["period", "amount_fen"]),
            k("DECLARED", &["period", "sales_fen"]),
            k("ARREARS_ASSESSED", &["amount_fen"]),
            by_ref("ARREARS_PAID"),
            k("ABNORMAL_HOUSEHOLD", &[]),
            by_ref("ABNORMAL_LIFTED"),
            k("MAJOR_VIOLATION", &[]),
            by_ref("MAJOR_VIOLATION_REMOVED"),
            k("SOCIAL_INSURANCE", &["period", "insured_count"]),
        ],
    },
    FeedSchema {
        feed: Feed::Jud,
        fields: &[
            f(
                "case_no",
                Ty::Text,
                "Case number; with court_code the case's business key",
            ),
            f("court_code", Ty::Text, "Court code"),
            f(
                "role",
                Ty::Enum(JudRole::NAMES),
                "The enterprise's role in the case",
            ),
            f("cause", Ty::Enum(JudCause::NAMES), "Cause of action"),
            f("amount_fen", Ty::Amount, "Amount in fen"),
            f(
                "unpaid_fen",
                Ty::Amount,
                "Unpaid amount in fen (on termination)",
            ),
            f(
                "close_reason",
                Ty::Enum(CloseReason::NAMES),
                "Why the case was closed",
            ),
            f("due_date", Ty::Date, "Due date (on ENFORCEMENT_FILED)"),
            f("list_until", Ty::Date, "Listing end (on DISHONEST_LISTED)"),
        ],
        always: &["court_code", "case_no"],
        kinds: &[
            k("CASE_FILED", FILED),
            by_key("CASE_CLOSED", &["close_reason"]),
            k("ENFORCEMENT_FILED", FILED),
            k("ENFORCEMENT_TERMINATED", &["unpaid_fen"]),
            by_key("ENFORCEMENT_CLOSED", &[]),
            by_key("PERFORMED", &[]),
            k("DISHONEST_LISTED", &[]),
            by_key("DISHONEST_REMOVED", &[]),
            k("CONSUMPTION_RESTRICTED", &[]),
            by_key("CONSUMPTION_LIFTED", &[]),
            k("FREEZE", FILED),
            by_key("UNFREEZE", &[]),
        ],
    },
    FeedSchema {
        feed: Feed::Fin,
        fields: &[
            f(
                "database",
                Ty::Enum(FinDatabase::NAMES),
                "Source database; must match the kind",
            ),
            f("lender_code", Ty::Text, "Lender code"),
            f("loan_id", Ty::Text, "Loan id; links OVERDUE_* records"),
            f("overdue_days", COUNT, "Days overdue at event_time"),
            f("overdue_fen", Ty::Amount, "Overdue amount in fen"),
            f(
                "account_hash",
                Ty::Text,
                "Salted hash of the account number; links SUSPICIOUS_ACCOUNT*",
            ),
        ],
        always: &["database"],
        kinds: &[
            fin("OVERDUE_LISTED", Link::None, OVERDUE, DB_OVERDUE),
            fin("OVERDUE_UPDATED", Link::None, OVERDUE, DB_OVERDUE),
            fin("OVERDUE_CLEARED", Link::Key, &["loan_id"], DB_OVERDUE),
            fin("DEBT_EVASION_LISTED", Link::None, &[], DB_EVASION),
            fin("DEBT_EVASION_REMOVED", Link::Ref, &[], DB_EVASION),
            fin("POLICE_LISTED", Link::None, &[], DB_POLICE),
            fin("POLICE_REMOVED", Link::Ref, &[], DB_POLICE),
            fin(
                "SUSPICIOUS_ACCOUNT",
                Link::None,
                &["account_hash"],
                DB_ACCOUNT,
            ),
            fin(
                "SUSPICIOUS_ACCOUNT_CLEARED",
                Link::Key,
                &["account_hash"],
                DB_ACCOUNT,
            ),
        ],
    },
    FeedSchema {
        feed: Feed::Reg,
        fields: &[
            f(
                "change_field",
                Ty::Enum(ChangeField::NAMES),
                "Changed field (on CHANGED)",
            ),
            f(
                "registered_capital_fen",
                Ty::Amount,
                "Registered capital in fen",
            ),
            f("paid_in_fen", Ty::Amount, "Paid-in capital in fen"),
            f("share_bp", int(0, 10_000), "Share in basis points"),
            f(
                "counterparty_uscc",
                Ty::Uscc,
                "The other enterprise of a share, investment or pledge",
            ),
            f("report_year", YEAR, "Annual report year"),
            f(
                "reported_tax_fen",
                Ty::Amount,
                "Tax reported in the annual report, fen",
            ),
            f(
                "reported_staff",
                COUNT,
                "Staff reported in the annual report",
            ),
            f(
                "reported_revenue_fen",
                Ty::Amount,
                "Revenue reported in the annual report, fen",
            ),
            f(
                "address_firm_count",
                COUNT,
                "Firms registered at the same address",
            ),
            f("status", Ty::Enum(RegStatus::NAMES), "Registration status"),
            f("region_code", Ty::Text, "Region code (6 digits)"),
            f("industry_code", Ty::Text, "Industry code"),
        ],
        always: &[],
        kinds: &[
            k("ESTABLISHED", &[]),
            k("CHANGED", &["change_field"]),
            k("CAPITAL", &["registered_capital_fen", "paid_in_fen"]),
            k("EQUITY_PLEDGE", &["share_bp"]),
            by_ref("PLEDGE_RELEASED"),
            k("MORTGAGE", &[]),
            by_ref("MORTGAGE_CANCELLED"),
            k(
                "ANNUAL_REPORT",
                &["report_year", "reported_tax_fen", "reported_staff"],
            ),
            k("ADDRESS_CLUSTER", &["address_firm_count"]),
            k("SHAREHOLDER", SHARE),
            k("INVESTMENT", SHARE),
            k("STATUS", &["status"]),
        ],
    },
    FeedSchema {
        feed: Feed::Per,
        fields: &[
            f("person_hash", Ty::Text, "Salted hash of the person"),
            f(
                "role",
                Ty::Enum(PersonRole::NAMES),
                "Role in the enterprise (on ROLE)",
            ),
            f(
                "score",
                Ty::Int {
                    min: 0,
                    max: i64::MAX,
                    at_most: Some("scale_max"),
                },
                "Personal credit score, 0..=scale_max",
            ),
            f("scale_max", int(1, i64::MAX), "The score's scale, > 0"),
        ],
        always: &["person_hash"],
        kinds: &[
            k("SCORE", &["score", "scale_max"]),
            k("DISHONEST_LISTED", &[]),
            by_ref("DISHONEST_REMOVED"),
            k("ROLE", &["role"]),
            by_ref("ROLE_ENDED"),
        ],
    },
    FeedSchema {
        feed: Feed::Cmt,
        fields: &[
            f(
                "commitment_id",
                Ty::Text,
                "Commitment id; links the commitment's records",
            ),
            f("type", Ty::Enum(CommitmentType::NAMES), "Commitment type"),
            f("matter", Ty::Text, "The matter committed to"),
            f("valid_until", Ty::Date, "Last day of validity"),
            f(
                "method",
                Ty::Enum(VerifyMethod::NAMES),
                "Verification method",
            ),
            f("result", Ty::Enum(CmtResult::NAMES), "Verification result"),
            f(
                "rectify_deadline",
                Ty::Date,
                "Rectification deadline (on RECTIFY)",
            ),
        ],
        always: &["commitment_id"],
        kinds: &[
            k("PUBLISHED", &["type", "matter"]),
            k("SCHEDULED", &["method"]),
            k("VERIFIED", &["result"]),
            k("RECTIFIED", &[]),
        ],
    },
    FeedSchema {
        feed: Feed::Rpr,
        fields: &[
            f(
                "target_feed",
                Ty::Enum(Feed::NAMES),
                "Feed of the repaired record",
            ),
            f(
                "target_event_id",
                Ty::Text,
                "event_id of the repaired record",
            ),
            f("repair_type", Ty::Enum(RepairType::NAMES), "Repair type"),
            f(
                "effective_time",
                Ty::Timestamp,
                "When the repair takes effect",
            ),
        ],
        always: &[],
        kinds: &[
            k(
                "COMPLETED",
                &[
                    "target_feed",
                    "target_event_id",
                    "repair_type",
                    "effective_time",
                ],
            ),
            by_ref("REVOKED"),
        ],
    },
    FeedSchema {
        feed: Feed::Insp,
        fields: &[
            f("campaign_id", Ty::Text, "Inspection campaign id"),
            f("result", Ty::Enum(InspResult::NAMES), "Inspection result"),
        ],
        always: &[],
        kinds: &[k("RESULT", &["campaign_id", "result"])],
    },
    FeedSchema {
        feed: Feed::Pcs,
        fields: &[
            f("score", int(0, 1000), "Public credit score"),
            f("honour_type", Ty::Text, "Honour type"),
            f("valid_until", Ty::Date, "Honour validity end"),
        ],
        always: &[],
        kinds: &[
            k("SCORE", &["score"]),
            k("HONOUR", &["honour_type"]),
            by_ref("HONOUR_REVOKED"),
        ],
    },
];

/// The schema of a feed.
pub fn feed_schema(feed: Feed) -> &'static FeedSchema {
    // `FEEDS` is in `Feed::ALL` (declaration) order; a test checks it.
    &FEEDS[feed as usize]
}

impl FeedSchema {
    /// The rule of a kind, by wire name.
    pub fn kind(&self, kind: &str) -> Option<&'static KindRule> {
        self.kinds.iter().find(|r| r.kind == kind)
    }

    /// Every field a record of this feed may carry (envelope first), except `feed`
    /// and `kind`.
    pub fn all_fields(&self) -> impl Iterator<Item = &'static FieldDef> {
        ENVELOPE.iter().chain(self.fields.iter())
    }

    /// A field by name, envelope or the feed's own.
    pub fn field(&self, name: &str) -> Option<&'static FieldDef> {
        self.all_fields().find(|f| f.name == name)
    }

    /// The fields a kind requires beyond the envelope: the feed-wide ones, the kind's own,
    /// and `ref_event_id` for retractions that do not link by business key.
    pub fn required(&self, rule: &KindRule) -> impl Iterator<Item = &'static str> {
        let by_ref: &'static [&'static str] = match rule.link {
            Link::Ref => &["ref_event_id"],
            Link::None | Link::Key => &[],
        };
        self.always
            .iter()
            .chain(rule.required)
            .chain(by_ref)
            .copied()
    }
}

/// The JSON Schema (draft 2020-12) of a feed's records, generated from the tables above.
pub fn json_schema(feed: Feed) -> Value {
    let s = feed_schema(feed);
    let mut properties = Map::new();
    properties.insert(
        "feed".into(),
        json!({ "const": feed.as_str(), "description": "Feed code; must match the topic's feed" }),
    );
    let kinds: Vec<&str> = s.kinds.iter().map(|r| r.kind).collect();
    properties.insert(
        "kind".into(),
        json!({ "type": "string", "enum": kinds, "description": "Kind of record" }),
    );
    for def in s.all_fields() {
        properties.insert(def.name.into(), property(def));
    }
    let all_of: Vec<Value> = s.kinds.iter().map(|rule| kind_clause(s, rule)).collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("{}.schema.json", feed.as_str().to_ascii_lowercase()),
        "title": format!("Credit Steward {} record", feed.as_str()),
        "description": "Generated from rules/src/schema.rs (docs/decisions.md D3). Fields not listed are ignored.",
        "type": "object",
        "properties": properties,
        "required": ENVELOPE_REQUIRED,
        "allOf": all_of,
    })
}

fn property(def: &FieldDef) -> Value {
    let mut p = match def.ty {
        Ty::Text | Ty::Uscc => json!({ "type": "string" }),
        Ty::EventId => json!({ "type": "string", "minLength": 1, "maxLength": 64 }),
        Ty::Int { min, max, at_most } => {
            let mut p = json!({ "type": "integer", "minimum": min });
            if max != i64::MAX {
                p["maximum"] = max.into();
            }
            if let Some(other) = at_most {
                // Not expressible in standard JSON Schema; an annotation the decoder enforces.
                p["x-maximum-field"] = other.into();
            }
            p
        }
        Ty::Amount => json!({ "type": "integer", "minimum": 0 }),
        Ty::Version => {
            json!({ "type": "integer", "minimum": 1, "maximum": u32::MAX, "default": 1 })
        }
        Ty::Date => json!({ "type": "string", "format": "date" }),
        Ty::Timestamp => json!({ "type": "string", "format": "date-time" }),
        Ty::Period => json!({ "type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$" }),
        Ty::Enum(values) => json!({ "type": "string", "enum": values }),
        Ty::EnumArray(values) => {
            json!({ "type": "array", "items": { "type": "string", "enum": values } })
        }
    };
    p["description"] = def.doc.into();
    p
}

fn kind_clause(s: &FeedSchema, rule: &KindRule) -> Value {
    let required: Vec<&str> = s.required(rule).collect();
    let mut then = Map::new();
    let mut props = Map::new();
    for name in &required {
        if let Some(FieldDef {
            ty: Ty::EnumArray(_),
            ..
        }) = s.field(name)
        {
            props.insert((*name).into(), json!({ "minItems": 1 }));
        }
    }
    for (name, value) in rule.fixed {
        props.insert((*name).into(), json!({ "const": value }));
    }
    then.insert("required".into(), json!(required));
    if !props.is_empty() {
        then.insert("properties".into(), Value::Object(props));
    }
    json!({
        "if": { "properties": { "kind": { "const": rule.kind } }, "required": ["kind"] },
        "then": then,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::event::*;

    #[test]
    fn feeds_are_in_feed_order() {
        let order: Vec<Feed> = FEEDS.iter().map(|s| s.feed).collect();
        assert_eq!(order, Feed::ALL);
        for &feed in Feed::ALL {
            assert_eq!(feed_schema(feed).feed, feed);
        }
    }

    /// Amounts are exactly the `_fen` fields.
    #[test]
    fn amounts_are_the_fen_fields() {
        for s in FEEDS {
            for def in s.all_fields() {
                assert_eq!(
                    def.ty.is_amount(),
                    def.name.ends_with("_fen"),
                    "{}",
                    def.name
                );
            }
        }
    }

    /// Every required name is a field of the feed, and no field is listed twice.
    #[test]
    fn required_fields_exist() {
        for s in FEEDS {
            let mut names: Vec<&str> = s.all_fields().map(|f| f.name).collect();
            names.sort_unstable();
            let n = names.len();
            names.dedup();
            assert_eq!(n, names.len(), "{} lists a field twice", s.feed);
            for rule in s.kinds {
                for name in s.required(rule).chain(rule.fixed.iter().map(|(n, _)| *n)) {
                    assert!(s.field(name).is_some(), "{}.{}: {name}", s.feed, rule.kind);
                }
            }
        }
    }

    /// The kinds of each feed are exactly its kind enum's, in order, and the link rule
    /// agrees with `Body::is_retraction`.
    #[test]
    fn kinds_match_event_types() {
        for s in FEEDS {
            for rule in s.kinds {
                let body: Body =
                    serde_json::from_value(json!({ "feed": s.feed.as_str(), "kind": rule.kind }))
                        .unwrap_or_else(|e| panic!("{}.{}: {e}", s.feed, rule.kind));
                assert_eq!(body.kind_str(), rule.kind);
                assert_eq!(
                    body.is_retraction(),
                    rule.link != Link::None,
                    "{}.{}",
                    s.feed,
                    rule.kind
                );
            }
            let unknown = json!({ "feed": s.feed.as_str(), "kind": "NOT_A_KIND" });
            assert!(serde_json::from_value::<Body>(unknown).is_err());
        }
        let enums = [
            PenKind::NAMES,
            ListKind::NAMES,
            TaxKind::NAMES,
            JudKind::NAMES,
            FinKind::NAMES,
            RegKind::NAMES,
            PerKind::NAMES,
            CmtKind::NAMES,
            RprKind::NAMES,
            InspKind::NAMES,
            PcsKind::NAMES,
        ];
        for (s, names) in FEEDS.iter().zip(enums) {
            let ours: Vec<&str> = s.kinds.iter().map(|r| r.kind).collect();
            assert_eq!(ours, names, "{}", s.feed);
        }
    }

    /// Records a struct's field names as serde's derive announces them.
    struct FieldNames;

    #[derive(Debug)]
    struct Fields(&'static [&'static str]);

    impl std::fmt::Display for Fields {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{:?}", self.0)
        }
    }
    impl std::error::Error for Fields {}
    impl serde::de::Error for Fields {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Fields(&[])
        }
    }

    impl<'de> serde::Deserializer<'de> for FieldNames {
        type Error = Fields;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Fields> {
            Err(Fields(&[]))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Fields> {
            Err(Fields(fields))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    fn struct_fields<'de, T: serde::Deserialize<'de>>() -> Vec<&'static str> {
        match T::deserialize(FieldNames) {
            Err(Fields(names)) => names.to_vec(),
            Ok(_) => Vec::new(),
        }
    }

    /// The table lists exactly the fields of the typed structs, so nothing the types carry
    /// escapes validation and nothing validated is dropped.
    #[test]
    fn table_matches_structs() {
        let structs = [
            struct_fields::<Pen>(),
            struct_fields::<List>(),
            struct_fields::<Tax>(),
            struct_fields::<Jud>(),
            struct_fields::<Fin>(),
            struct_fields::<Reg>(),
            struct_fields::<Per>(),
            struct_fields::<Cmt>(),
            struct_fields::<Rpr>(),
            struct_fields::<Insp>(),
            struct_fields::<Pcs>(),
        ];
        for (s, mut names) in FEEDS.iter().zip(structs) {
            names.retain(|n| *n != "kind");
            let ours: Vec<&str> = s.fields.iter().map(|f| f.name).collect();
            assert_eq!(ours, names, "{}", s.feed);
        }
        let mut envelope: Vec<&str> = ENVELOPE.iter().map(|f| f.name).collect();
        envelope.sort_unstable();
        let mut expected = vec![
            "uscc",
            "event_id",
            "version",
            "event_time",
            "ingest_time",
            "source_org",
            "ref_event_id",
        ];
        expected.sort_unstable();
        assert_eq!(envelope, expected);
    }

    #[test]
    fn d3_spot_checks() {
        let req = |feed: Feed, kind: &str| -> Vec<&str> {
            let s = feed_schema(feed);
            s.kind(kind)
                .map(|r| s.required(r).collect())
                .unwrap_or_default()
        };
        assert_eq!(
            req(Feed::Pen, "DECIDED"),
            ["decision_no", "dishonesty_class", "penalty_types"]
        );
        assert_eq!(req(Feed::Pen, "REVOKED"), ["ref_event_id"]);
        assert_eq!(
            req(Feed::Jud, "CASE_CLOSED"),
            ["court_code", "case_no", "close_reason"]
        );
        assert_eq!(req(Feed::Fin, "OVERDUE_CLEARED"), ["database", "loan_id"]);
        assert_eq!(
            req(Feed::Fin, "POLICE_REMOVED"),
            ["database", "ref_event_id"]
        );
        assert_eq!(req(Feed::Cmt, "RECTIFIED"), ["commitment_id"]);
        assert!(feed_schema(Feed::Tax).kind("NOPE").is_none());
    }

    /// Fails when a committed schema differs from the generated one; run with
    /// `UPDATE_SCHEMAS=1` to rewrite `rules/schemas/`.
    #[test]
    fn committed_schemas_are_current() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let update = std::env::var_os("UPDATE_SCHEMAS").is_some_and(|v| v == "1");
        let mut stale = Vec::new();
        for &feed in Feed::ALL {
            let path = dir.join(format!(
                "{}.schema.json",
                feed.as_str().to_ascii_lowercase()
            ));
            let mut text =
                serde_json::to_string_pretty(&json_schema(feed)).expect("schema serialises");
            text.push('\n');
            if update {
                std::fs::create_dir_all(&dir).expect("create rules/schemas");
                std::fs::write(&path, &text).expect("write schema");
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(path.display().to_string());
            }
        }
        assert!(
            stale.is_empty(),
            "stale schemas (regenerate with UPDATE_SCHEMAS=1 cargo test -p rules): {stale:?}"
        );
    }

    #[test]
    fn schema_has_kind_clauses_and_cross_field_checks() {
        let fin = json_schema(Feed::Fin);
        let clauses = fin["allOf"].as_array().map(Vec::len);
        assert_eq!(clauses, Some(FinKind::ALL.len()));
        let first = &fin["allOf"][0];
        assert_eq!(first["if"]["properties"]["kind"]["const"], "OVERDUE_LISTED");
        assert_eq!(first["then"]["properties"]["database"]["const"], "OVERDUE");
        assert_eq!(
            json_schema(Feed::Pcs)["properties"]["score"]["maximum"],
            1000
        );
        assert_eq!(
            json_schema(Feed::Per)["properties"]["score"]["x-maximum-field"],
            "scale_max"
        );
        let pen = json_schema(Feed::Pen);
        assert_eq!(
            pen["allOf"][0]["then"]["properties"]["penalty_types"]["minItems"],
            1
        );
        assert_eq!(pen["required"], json!(ENVELOPE_REQUIRED));
    }
}
