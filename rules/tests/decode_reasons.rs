//! Hand-built records: every reason code the decoder produces, the order of checks, and a
//! minimal valid record of every kind of every feed, transcribed from `docs/decisions.md` D3
//! independently of `rules::schema`.

use std::collections::BTreeSet;

use rules::decode::{decode, digest, encode, DecodeConfig};
use rules::event::*;
use rules::reject::Reason;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const USCC: &str = "91110000600037341L";
const OTHER_USCC: &str = "91350200MA2YJ1XR9G";
const LEGACY_USCC: &str = "91350100M0001TGQXM";

/// `base` with the fields of `extra` added or replaced.
fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(map), Value::Object(extra)) = (base.as_object_mut(), extra) {
        map.extend(extra);
    }
    base
}

/// A valid envelope plus the given fields (which may override envelope fields).
fn record(feed: &str, kind: &str, fields: Value) -> Value {
    let envelope = json!({
        "uscc": USCC,
        "feed": feed,
        "kind": kind,
        "event_id": "e-1",
        "event_time": "2024-03-01T10:00:00+08:00",
        "ingest_time": "2024-03-01T12:00:00+08:00",
    });
    merge(envelope, fields)
}

fn run(r: &Value, cfg: &DecodeConfig) -> Result<rules::decode::Decoded, rules::reject::Rejection> {
    decode(&serde_json::to_vec(r).unwrap(), None, cfg)
}

fn reason_of(r: &Value) -> Option<Reason> {
    run(r, &DecodeConfig::default()).err().map(|e| e.reason)
}

/// (case, record bytes, feed of the topic, expected reason, text the message contains)
type Case = (&'static str, Vec<u8>, Option<Feed>, Reason, &'static str);

fn reason_cases() -> Vec<Case> {
    let bytes = |v: Value| serde_json::to_vec(&v).unwrap();
    let decided =
        json!({"decision_no": "D1", "dishonesty_class": "MINOR", "penalty_types": ["fine"]});
    let pen = |fields: Value| bytes(record("PEN", "DECIDED", merge(decided.clone(), fields)));
    vec![
        (
            "not utf-8",
            b"{\"uscc\": \"\xff\"}".to_vec(),
            None,
            Reason::InvalidJson,
            "UTF-8",
        ),
        (
            "not json",
            b"{uscc".to_vec(),
            None,
            Reason::InvalidJson,
            "not JSON",
        ),
        (
            "json array",
            b"[1, 2]".to_vec(),
            None,
            Reason::InvalidJson,
            "an array",
        ),
        (
            "oversized",
            vec![b' '; 65_537],
            None,
            Reason::Oversized,
            "65537",
        ),
        (
            "feed missing",
            bytes(json!({"kind": "DECIDED"})),
            None,
            Reason::MissingField,
            "\"feed\"",
        ),
        (
            "feed not a string",
            bytes(json!({"feed": 3})),
            None,
            Reason::BadType,
            "\"feed\"",
        ),
        (
            "unknown feed",
            bytes(record("XYZ", "DECIDED", json!({}))),
            None,
            Reason::UnknownFeed,
            "XYZ",
        ),
        (
            "topic mismatch",
            pen(json!({})),
            Some(Feed::Tax),
            Reason::FeedTopicMismatch,
            "TAX",
        ),
        (
            "unknown kind",
            bytes(record("PEN", "GRADE", json!({}))),
            None,
            Reason::UnknownKind,
            "GRADE",
        ),
        (
            "missing field",
            bytes(record("PEN", "PERFORMED", json!({}))),
            None,
            Reason::MissingField,
            "missing field \"decision_no\" required for PEN.PERFORMED",
        ),
        (
            "empty required array",
            pen(json!({"penalty_types": []})),
            None,
            Reason::MissingField,
            "penalty_types",
        ),
        (
            "retraction without ref",
            bytes(record("LIST", "REMOVED", json!({}))),
            None,
            Reason::MissingField,
            "ref_event_id",
        ),
        (
            "string for amount",
            pen(json!({"fine_fen": "100"})),
            None,
            Reason::BadType,
            "\"fine_fen\"",
        ),
        (
            "float for amount",
            pen(json!({"fine_fen": 1.5})),
            None,
            Reason::BadType,
            "\"fine_fen\"",
        ),
        (
            "huge integer",
            pen(json!({"fine_fen": 1e30})),
            None,
            Reason::BadValue,
            "\"fine_fen\"",
        ),
        (
            "null is not absent",
            pen(json!({"domain": null})),
            None,
            Reason::BadType,
            "\"domain\"",
        ),
        (
            "array of non-strings",
            pen(json!({"penalty_types": [1]})),
            None,
            Reason::BadType,
            "penalty_types",
        ),
        (
            "unknown enum value",
            pen(json!({"dishonesty_class": "HUGE"})),
            None,
            Reason::BadValue,
            "HUGE",
        ),
        (
            "unknown array item",
            pen(json!({"penalty_types": ["fine", "flogging"]})),
            None,
            Reason::BadValue,
            "flogging",
        ),
        (
            "bad date",
            pen(json!({"due_date": "2024-02-30"})),
            None,
            Reason::BadValue,
            "due_date",
        ),
        (
            "date with time",
            pen(json!({"due_date": "2024-02-01T00:00:00Z"})),
            None,
            Reason::BadValue,
            "due_date",
        ),
        (
            "bad timestamp",
            pen(json!({"event_time": "2024-03-01 10:00"})),
            None,
            Reason::BadValue,
            "event_time",
        ),
        (
            "bad period",
            bytes(record(
                "TAX",
                "PAID",
                json!({"period": "2024-13", "amount_fen": 1}),
            )),
            None,
            Reason::BadValue,
            "period",
        ),
        (
            "negative amount",
            pen(json!({"fine_fen": -1})),
            None,
            Reason::NegativeAmount,
            "\"fine_fen\"",
        ),
        (
            "amount beyond i64",
            pen(json!({"fine_fen": u64::MAX})),
            None,
            Reason::BadValue,
            "fine_fen",
        ),
        (
            "share above 10000",
            bytes(record("REG", "EQUITY_PLEDGE", json!({"share_bp": 10_001}))),
            None,
            Reason::BadValue,
            "share_bp",
        ),
        (
            "negative count",
            bytes(record(
                "TAX",
                "SOCIAL_INSURANCE",
                json!({"period": "2024-01", "insured_count": -3}),
            )),
            None,
            Reason::BadValue,
            "insured_count",
        ),
        (
            "year out of range",
            bytes(record(
                "TAX",
                "GRADE",
                json!({"eval_year": 1899, "grade": "A"}),
            )),
            None,
            Reason::BadValue,
            "eval_year",
        ),
        (
            "score above scale",
            bytes(record(
                "PER",
                "SCORE",
                json!({"person_hash": "p", "score": 101, "scale_max": 100}),
            )),
            None,
            Reason::BadValue,
            "scale_max",
        ),
        (
            "zero scale",
            bytes(record(
                "PER",
                "SCORE",
                json!({"person_hash": "p", "score": 0, "scale_max": 0}),
            )),
            None,
            Reason::BadValue,
            "scale_max",
        ),
        (
            "pcs score above 1000",
            bytes(record("PCS", "SCORE", json!({"score": 1001}))),
            None,
            Reason::BadValue,
            "score",
        ),
        (
            "fin database mismatch",
            bytes(record(
                "FIN",
                "POLICE_LISTED",
                json!({"database": "OVERDUE"}),
            )),
            None,
            Reason::BadValue,
            "POLICE_DISHONEST",
        ),
        (
            "bad uscc",
            pen(json!({"uscc": "91110000600037341A"})),
            None,
            Reason::BadUscc,
            "check character",
        ),
        (
            "bad counterparty",
            bytes(record(
                "REG",
                "SHAREHOLDER",
                json!({"counterparty_uscc": "91110000600037341A", "share_bp": 5}),
            )),
            None,
            Reason::BadUscc,
            "counterparty_uscc",
        ),
        (
            "future event time",
            pen(json!({"event_time": "2024-03-02T12:00:01+08:00"})),
            None,
            Reason::FutureEventTime,
            "86401",
        ),
        (
            "empty event id",
            pen(json!({"event_id": ""})),
            None,
            Reason::BadValue,
            "event_id",
        ),
        (
            "long event id",
            pen(json!({"event_id": "é".repeat(65)})),
            None,
            Reason::BadValue,
            "event_id",
        ),
        (
            "version 0",
            pen(json!({"version": 0})),
            None,
            Reason::BadValue,
            "version",
        ),
        (
            "version beyond u32",
            pen(json!({"version": 1_u64 << 32})),
            None,
            Reason::BadValue,
            "version",
        ),
        (
            "version not an integer",
            pen(json!({"version": "2"})),
            None,
            Reason::BadType,
            "version",
        ),
    ]
}

#[test]
fn every_decode_reason_has_a_case() {
    // The reasons the decoder does not give: the lifecycle's, and the reader's clock check
    // (`pipeline::ingest`).
    let lifecycle = [
        Reason::VersionKindChange,
        Reason::TargetMismatch,
        Reason::UnknownTarget,
        Reason::FutureIngestTime,
    ];
    let mut covered = BTreeSet::new();
    for (case, bytes, topic, want, text) in reason_cases() {
        let got = decode(&bytes, topic, &DecodeConfig::default());
        let err = got.expect_err(case);
        assert_eq!(err.reason, want, "{case}: {err}");
        assert!(err.message.contains(text), "{case}: {err}");
        assert!(err.to_string().starts_with(&format!("{}: ", want.as_str())));
        covered.insert(want);
    }
    for r in Reason::ALL {
        assert_eq!(covered.contains(r), !lifecycle.contains(r), "{r}");
    }
}

#[test]
fn checks_apply_in_order() {
    // Each record has two faults; the earlier step in the documented order wins.
    let cases = [
        (json!({"feed": "XYZ", "kind": "NOPE"}), Reason::UnknownFeed),
        (
            record("PEN", "NOPE", json!({"uscc": "bad"})),
            Reason::UnknownKind,
        ),
        (
            record("PEN", "PERFORMED", json!({"fine_fen": "x"})),
            Reason::MissingField,
        ),
        (
            record(
                "PEN",
                "PERFORMED",
                json!({"decision_no": 1, "dishonesty_class": "HUGE"}),
            ),
            Reason::BadType,
        ),
        (
            record(
                "PEN",
                "PERFORMED",
                json!({"decision_no": "D", "dishonesty_class": "HUGE", "fine_fen": -1}),
            ),
            Reason::BadValue,
        ),
        (
            record(
                "PEN",
                "PERFORMED",
                json!({"decision_no": "D", "fine_fen": -1, "uscc": "bad"}),
            ),
            Reason::NegativeAmount,
        ),
        (
            record(
                "PEN",
                "PERFORMED",
                json!({"decision_no": "D", "uscc": "bad", "event_time": "2030-01-01T00:00:00Z"}),
            ),
            Reason::BadUscc,
        ),
        (
            record(
                "PEN",
                "PERFORMED",
                json!({"decision_no": "D", "event_id": "", "event_time": "2030-01-01T00:00:00Z"}),
            ),
            Reason::FutureEventTime,
        ),
    ];
    for (r, want) in cases {
        assert_eq!(reason_of(&r), Some(want), "{r}");
    }
    let mismatch = serde_json::to_vec(&record("XYZ", "K", json!({}))).unwrap();
    assert_eq!(
        decode(&mismatch, Some(Feed::Pen), &DecodeConfig::default()).map_err(|e| e.reason),
        Err(Reason::UnknownFeed)
    );
}

#[test]
fn size_limit_is_configurable_and_inclusive() {
    let bytes = serde_json::to_vec(&record("TAX", "ABNORMAL_HOUSEHOLD", json!({}))).unwrap();
    let at = DecodeConfig {
        max_bytes: bytes.len(),
        ..DecodeConfig::default()
    };
    assert!(decode(&bytes, None, &at).is_ok());
    let below = DecodeConfig {
        max_bytes: bytes.len() - 1,
        ..DecodeConfig::default()
    };
    assert_eq!(
        decode(&bytes, None, &below).map_err(|e| e.reason),
        Err(Reason::Oversized)
    );
}

#[test]
fn integral_numbers_count_as_integers() {
    // JSON Schema treats 5.0 as an integer; so does the decoder (canonical form `5`).
    let r = record(
        "TAX",
        "PAID",
        json!({"period": "2024-02", "amount_fen": 5.0, "version": 2.0}),
    );
    let d = run(&r, &DecodeConfig::default()).unwrap();
    assert_eq!(d.event.version, 2);
    let canonical: Value = serde_json::from_slice(&encode(&d.event)).unwrap();
    assert_eq!(canonical["amount_fen"], json!(5));
}

#[test]
fn event_time_may_be_exactly_one_day_ahead() {
    let r = record(
        "TAX",
        "ABNORMAL_HOUSEHOLD",
        json!({"event_time": "2024-03-02T12:00:00+08:00"}),
    );
    assert!(run(&r, &DecodeConfig::default()).is_ok());
}

#[test]
fn usccs_are_normalised_and_legacy_codes_allow_listed() {
    let r = record(
        "REG",
        "SHAREHOLDER",
        json!({"uscc": " 9111-0000 6000 37341l ", "counterparty_uscc": "91350200ma2yj1xr9g", "share_bp": 100}),
    );
    let d = run(&r, &DecodeConfig::default()).unwrap();
    assert_eq!(d.event.uscc, USCC);
    assert!(!d.legacy_uscc);
    let Body::Reg(reg) = &d.event.body else {
        panic!("not REG")
    };
    assert_eq!(reg.counterparty_uscc.as_deref(), Some(OTHER_USCC));

    let legacy = DecodeConfig {
        legacy_usccs: BTreeSet::from([LEGACY_USCC.to_owned()]),
        ..DecodeConfig::default()
    };
    for field in ["uscc", "counterparty_uscc"] {
        let mut r = record(
            "REG",
            "INVESTMENT",
            json!({"counterparty_uscc": OTHER_USCC, "share_bp": 1}),
        );
        r[field] = json!("91350100-m0001tgqxm");
        assert_eq!(reason_of(&r), Some(Reason::BadUscc), "{field}");
        let d = run(&r, &legacy).unwrap();
        assert!(d.legacy_uscc, "{field}");
        assert_eq!(serde_json::to_value(&d.event).unwrap()[field], LEGACY_USCC);
    }

    // An allow-listed code that the engine's packed keys cannot hold (21 characters) is
    // still rejected, with its reason.
    let long = "91350100M0001TGQXM123";
    let too_long = DecodeConfig {
        legacy_usccs: BTreeSet::from([long.to_owned()]),
        ..DecodeConfig::default()
    };
    let mut r = record(
        "REG",
        "INVESTMENT",
        json!({"counterparty_uscc": OTHER_USCC, "share_bp": 1}),
    );
    r["uscc"] = json!(long);
    let e = run(&r, &too_long).unwrap_err();
    assert_eq!(e.reason, Reason::BadUscc);
}

#[test]
fn extras_ignored_version_defaults_and_canonical_form() {
    let a = record(
        "TAX",
        "PAID",
        json!({"period": "2024-02", "amount_fen": 5, "surprise": {"deep": [1, 2]}, "grade_note": null}),
    );
    let mut b = a.clone();
    b["event_time"] = json!("2024-03-01T02:00:00.750Z");
    b["version"] = json!(1);
    let (da, db) = (
        run(&a, &DecodeConfig::default()).unwrap(),
        run(&b, &DecodeConfig::default()).unwrap(),
    );
    assert_eq!(da.event.version, 1);
    assert_eq!(da, db);
    let canonical: Value = serde_json::from_slice(&encode(&da.event)).unwrap();
    assert_eq!(canonical["event_time"], "2024-03-01T02:00:00Z");
    assert_eq!(canonical.get("surprise"), None);
    assert_eq!(
        digest(&da.event),
        <[u8; 32]>::from(Sha256::digest(encode(&db.event)))
    );
    let mut c = da.event.clone();
    c.version = 2;
    assert_ne!(digest(&c), digest(&da.event));
}

/// Decodes the minimal record of every kind, then checks that dropping any one of its
/// fields (envelope included, `version` excepted) is `missing_field` naming that field.
fn minimal(f: Feed, all: &[&str], kinds: &[(&str, Value)]) {
    let feed = f.as_str();
    let names: Vec<&str> = kinds.iter().map(|(k, _)| *k).collect();
    assert_eq!(names, all, "{feed}: every kind, in order");
    for (kind, fields) in kinds {
        let r = record(feed, kind, fields.clone());
        let d = decode(
            &serde_json::to_vec(&r).unwrap(),
            Some(f),
            &DecodeConfig::default(),
        )
        .unwrap_or_else(|e| panic!("{feed}.{kind}: {e}"));
        assert_eq!((d.event.feed(), d.event.body.kind_str()), (f, *kind));
        for key in r.as_object().unwrap().keys() {
            let mut less = r.clone();
            less.as_object_mut().unwrap().remove(key);
            let err = run(&less, &DecodeConfig::default())
                .expect_err(&format!("{feed}.{kind} without {key}"));
            assert_eq!(
                err.reason,
                Reason::MissingField,
                "{feed}.{kind} without {key}: {err}"
            );
            assert!(err.message.contains(&format!("\"{key}\"")), "{err}");
        }
    }
}

#[test]
fn minimal_pen() {
    let decision =
        json!({"decision_no": "D", "dishonesty_class": "SERIOUS", "penalty_types": ["warning"]});
    minimal(
        Feed::Pen,
        PenKind::NAMES,
        &[
            ("DECIDED", decision.clone()),
            ("PERFORMED", json!({"decision_no": "D"})),
            ("REVOKED", json!({"ref_event_id": "e-0"})),
            ("CORRECTED", decision),
        ],
    );
}

#[test]
fn minimal_list() {
    minimal(
        Feed::List,
        ListKind::NAMES,
        &[
            ("LISTED", json!({"list_kind": "ABNORMAL"})),
            ("REMOVED", json!({"ref_event_id": "e-0"})),
        ],
    );
}

#[test]
fn minimal_tax() {
    let by_ref = json!({"ref_event_id": "e-0"});
    minimal(
        Feed::Tax,
        TaxKind::NAMES,
        &[
            ("GRADE", json!({"eval_year": 2023, "grade": "B"})),
            ("PAID", json!({"period": "2024-01", "amount_fen": 0})),
            ("DECLARED", json!({"period": "2024-01", "sales_fen": 10})),
            ("ARREARS_ASSESSED", json!({"amount_fen": 10})),
            ("ARREARS_PAID", by_ref.clone()),
            ("ABNORMAL_HOUSEHOLD", json!({})),
            ("ABNORMAL_LIFTED", by_ref.clone()),
            ("MAJOR_VIOLATION", json!({})),
            ("MAJOR_VIOLATION_REMOVED", by_ref),
            (
                "SOCIAL_INSURANCE",
                json!({"period": "2024-01", "insured_count": 0}),
            ),
        ],
    );
}

#[test]
fn minimal_jud() {
    let key = json!({"court_code": "C", "case_no": "N"});
    let with = |extra: Value| merge(key.clone(), extra);
    let filed = with(json!({"role": "DEFENDANT", "amount_fen": 100}));
    minimal(
        Feed::Jud,
        JudKind::NAMES,
        &[
            ("CASE_FILED", filed.clone()),
            ("CASE_CLOSED", with(json!({"close_reason": "SETTLED"}))),
            ("ENFORCEMENT_FILED", filed.clone()),
            ("ENFORCEMENT_TERMINATED", with(json!({"unpaid_fen": 1}))),
            ("ENFORCEMENT_CLOSED", key.clone()),
            ("PERFORMED", key.clone()),
            ("DISHONEST_LISTED", key.clone()),
            ("DISHONEST_REMOVED", key.clone()),
            ("CONSUMPTION_RESTRICTED", key.clone()),
            ("CONSUMPTION_LIFTED", key.clone()),
            ("FREEZE", filed),
            ("UNFREEZE", key.clone()),
        ],
    );
}

#[test]
fn minimal_fin() {
    let overdue =
        json!({"database": "OVERDUE", "loan_id": "L", "overdue_days": 3, "overdue_fen": 9});
    minimal(
        Feed::Fin,
        FinKind::NAMES,
        &[
            ("OVERDUE_LISTED", overdue.clone()),
            ("OVERDUE_UPDATED", overdue),
            (
                "OVERDUE_CLEARED",
                json!({"database": "OVERDUE", "loan_id": "L"}),
            ),
            ("DEBT_EVASION_LISTED", json!({"database": "DEBT_EVASION"})),
            (
                "DEBT_EVASION_REMOVED",
                json!({"database": "DEBT_EVASION", "ref_event_id": "e-0"}),
            ),
            ("POLICE_LISTED", json!({"database": "POLICE_DISHONEST"})),
            (
                "POLICE_REMOVED",
                json!({"database": "POLICE_DISHONEST", "ref_event_id": "e-0"}),
            ),
            (
                "SUSPICIOUS_ACCOUNT",
                json!({"database": "SUSPICIOUS_ACCOUNT", "account_hash": "h"}),
            ),
            (
                "SUSPICIOUS_ACCOUNT_CLEARED",
                json!({"database": "SUSPICIOUS_ACCOUNT", "account_hash": "h"}),
            ),
        ],
    );
}

#[test]
fn minimal_reg() {
    let by_ref = json!({"ref_event_id": "e-0"});
    let share = json!({"counterparty_uscc": OTHER_USCC, "share_bp": 500});
    minimal(
        Feed::Reg,
        RegKind::NAMES,
        &[
            ("ESTABLISHED", json!({})),
            ("CHANGED", json!({"change_field": "ADDRESS"})),
            (
                "CAPITAL",
                json!({"registered_capital_fen": 100, "paid_in_fen": 0}),
            ),
            ("EQUITY_PLEDGE", json!({"share_bp": 10_000})),
            ("PLEDGE_RELEASED", by_ref.clone()),
            ("MORTGAGE", json!({})),
            ("MORTGAGE_CANCELLED", by_ref),
            (
                "ANNUAL_REPORT",
                json!({"report_year": 2023, "reported_tax_fen": 1, "reported_staff": 2}),
            ),
            ("ADDRESS_CLUSTER", json!({"address_firm_count": 40})),
            ("SHAREHOLDER", share.clone()),
            ("INVESTMENT", share),
            ("STATUS", json!({"status": "DEREGISTERED"})),
        ],
    );
}

#[test]
fn minimal_per() {
    minimal(
        Feed::Per,
        PerKind::NAMES,
        &[
            (
                "SCORE",
                json!({"person_hash": "p", "score": 100, "scale_max": 100}),
            ),
            ("DISHONEST_LISTED", json!({"person_hash": "p"})),
            (
                "DISHONEST_REMOVED",
                json!({"person_hash": "p", "ref_event_id": "e-0"}),
            ),
            ("ROLE", json!({"person_hash": "p", "role": "LEGAL_REP"})),
            (
                "ROLE_ENDED",
                json!({"person_hash": "p", "ref_event_id": "e-0"}),
            ),
        ],
    );
}

#[test]
fn minimal_cmt() {
    minimal(
        Feed::Cmt,
        CmtKind::NAMES,
        &[
            (
                "PUBLISHED",
                json!({"commitment_id": "c", "type": "APPROVAL", "matter": "m"}),
            ),
            (
                "SCHEDULED",
                json!({"commitment_id": "c", "method": "EXEMPT"}),
            ),
            (
                "VERIFIED",
                json!({"commitment_id": "c", "result": "BROKEN"}),
            ),
            ("RECTIFIED", json!({"commitment_id": "c"})),
        ],
    );
}

#[test]
fn minimal_rpr() {
    let completed = json!({
        "target_feed": "PEN", "target_event_id": "e-0", "repair_type": "TERMINATE_PUBLICITY",
        "effective_time": "2024-03-01T00:00:00+08:00",
    });
    minimal(
        Feed::Rpr,
        RprKind::NAMES,
        &[
            ("COMPLETED", completed),
            ("REVOKED", json!({"ref_event_id": "r-0"})),
        ],
    );
}

#[test]
fn minimal_insp() {
    minimal(
        Feed::Insp,
        InspKind::NAMES,
        &[(
            "RESULT",
            json!({"campaign_id": "k", "result": "NOT_OPERATING"}),
        )],
    );
}

#[test]
fn minimal_pcs() {
    minimal(
        Feed::Pcs,
        PcsKind::NAMES,
        &[
            ("SCORE", json!({"score": 1000})),
            ("HONOUR", json!({"honour_type": "model_taxpayer"})),
            ("HONOUR_REVOKED", json!({"ref_event_id": "e-0"})),
        ],
    );
}
