use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use super::*;
use rules::event::Event;
use rules::time::{format_rfc3339, DAY};
use rules::uscc;

/// `docs/decisions.md` D3: required fields per `feed.kind` (`*` = every kind of the feed).
const REQUIRED: &[(&str, &str, &[&str])] = &[
    (
        "PEN",
        "DECIDED",
        &["decision_no", "dishonesty_class", "penalty_types"],
    ),
    (
        "PEN",
        "CORRECTED",
        &["decision_no", "dishonesty_class", "penalty_types"],
    ),
    ("PEN", "PERFORMED", &["decision_no"]),
    ("LIST", "LISTED", &["list_kind"]),
    ("TAX", "GRADE", &["eval_year", "grade"]),
    ("TAX", "PAID", &["period", "amount_fen"]),
    ("TAX", "DECLARED", &["period", "sales_fen"]),
    ("TAX", "ARREARS_ASSESSED", &["amount_fen"]),
    ("TAX", "SOCIAL_INSURANCE", &["period", "insured_count"]),
    ("JUD", "*", &["court_code", "case_no"]),
    ("JUD", "CASE_FILED", &["role", "amount_fen"]),
    ("JUD", "ENFORCEMENT_FILED", &["role", "amount_fen"]),
    ("JUD", "FREEZE", &["role", "amount_fen"]),
    ("JUD", "ENFORCEMENT_TERMINATED", &["unpaid_fen"]),
    ("JUD", "CASE_CLOSED", &["close_reason"]),
    ("FIN", "*", &["database"]),
    (
        "FIN",
        "OVERDUE_LISTED",
        &["loan_id", "overdue_days", "overdue_fen"],
    ),
    (
        "FIN",
        "OVERDUE_UPDATED",
        &["loan_id", "overdue_days", "overdue_fen"],
    ),
    ("FIN", "OVERDUE_CLEARED", &["loan_id"]),
    ("FIN", "SUSPICIOUS_ACCOUNT", &["account_hash"]),
    ("FIN", "SUSPICIOUS_ACCOUNT_CLEARED", &["account_hash"]),
    ("REG", "CHANGED", &["change_field"]),
    ("REG", "CAPITAL", &["registered_capital_fen", "paid_in_fen"]),
    ("REG", "EQUITY_PLEDGE", &["share_bp"]),
    (
        "REG",
        "ANNUAL_REPORT",
        &["report_year", "reported_tax_fen", "reported_staff"],
    ),
    ("REG", "ADDRESS_CLUSTER", &["address_firm_count"]),
    ("REG", "SHAREHOLDER", &["counterparty_uscc", "share_bp"]),
    ("REG", "INVESTMENT", &["counterparty_uscc", "share_bp"]),
    ("REG", "STATUS", &["status"]),
    ("PER", "*", &["person_hash"]),
    ("PER", "SCORE", &["score", "scale_max"]),
    ("PER", "ROLE", &["role"]),
    ("CMT", "*", &["commitment_id"]),
    ("CMT", "PUBLISHED", &["type", "matter"]),
    ("CMT", "SCHEDULED", &["method"]),
    ("CMT", "VERIFIED", &["result"]),
    (
        "RPR",
        "COMPLETED",
        &[
            "target_feed",
            "target_event_id",
            "repair_type",
            "effective_time",
        ],
    ),
    ("INSP", "RESULT", &["campaign_id", "result"]),
    ("PCS", "SCORE", &["score"]),
    ("PCS", "HONOUR", &["honour_type"]),
];

/// `docs/decisions.md` D2: retraction → paired target kinds.
const PAIRS: &[(&str, &str, &[&str])] = &[
    ("PEN", "REVOKED", &["DECIDED", "CORRECTED"]),
    ("LIST", "REMOVED", &["LISTED"]),
    ("TAX", "ARREARS_PAID", &["ARREARS_ASSESSED"]),
    ("TAX", "ABNORMAL_LIFTED", &["ABNORMAL_HOUSEHOLD"]),
    ("TAX", "MAJOR_VIOLATION_REMOVED", &["MAJOR_VIOLATION"]),
    ("JUD", "CASE_CLOSED", &["CASE_FILED"]),
    (
        "JUD",
        "ENFORCEMENT_CLOSED",
        &["ENFORCEMENT_FILED", "ENFORCEMENT_TERMINATED"],
    ),
    (
        "JUD",
        "PERFORMED",
        &["ENFORCEMENT_FILED", "ENFORCEMENT_TERMINATED"],
    ),
    ("JUD", "DISHONEST_REMOVED", &["DISHONEST_LISTED"]),
    ("JUD", "CONSUMPTION_LIFTED", &["CONSUMPTION_RESTRICTED"]),
    ("JUD", "UNFREEZE", &["FREEZE"]),
    ("FIN", "OVERDUE_CLEARED", &["OVERDUE_LISTED"]),
    ("FIN", "DEBT_EVASION_REMOVED", &["DEBT_EVASION_LISTED"]),
    ("FIN", "POLICE_REMOVED", &["POLICE_LISTED"]),
    ("FIN", "SUSPICIOUS_ACCOUNT_CLEARED", &["SUSPICIOUS_ACCOUNT"]),
    ("REG", "PLEDGE_RELEASED", &["EQUITY_PLEDGE"]),
    ("REG", "MORTGAGE_CANCELLED", &["MORTGAGE"]),
    ("PER", "DISHONEST_REMOVED", &["DISHONEST_LISTED"]),
    ("PER", "ROLE_ENDED", &["ROLE"]),
    ("RPR", "REVOKED", &["COMPLETED"]),
    ("PCS", "HONOUR_REVOKED", &["HONOUR"]),
];

fn small(seed: u64) -> GenConfig {
    GenConfig {
        enterprises: 300,
        seed,
        years: 2,
        ..GenConfig::default()
    }
}

fn run(cfg: &GenConfig) -> (Vec<GenRecord>, GenSummary) {
    let mut lines = Vec::new();
    let summary = generate(cfg, &mut |_| {}, &mut |r| lines.push(r)).expect("valid config");
    (lines, summary)
}

/// The decoder's checks that generated data must pass: typed parse, USCCs, D3 required
/// fields, value ranges, the one-day rule, the topic's feed.
fn check(rec: &GenRecord) -> Result<Event, String> {
    let event: Event = serde_json::from_slice(&rec.line).map_err(|e| e.to_string())?;
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(&rec.line) else {
        return Err("not an object".into());
    };
    uscc::check(&event.uscc).map_err(|e| e.to_string())?;
    if let Some(c) = obj.get("counterparty_uscc").and_then(Value::as_str) {
        uscc::check(c).map_err(|e| e.to_string())?;
    }
    if event.feed() != rec.feed {
        return Err("feed_topic_mismatch".into());
    }
    if event.event_time > event.ingest_time + DAY {
        return Err("future_event_time".into());
    }
    for (k, v) in &obj {
        let number = v.as_i64();
        let bad = match k.as_str() {
            k if k.ends_with("_fen") => number.is_none_or(|n| n < 0),
            "share_bp" => number.is_none_or(|n| !(0..=10_000).contains(&n)),
            "eval_year" | "report_year" => number.is_none_or(|n| !(1900..=2200).contains(&n)),
            "insured_count" | "overdue_days" | "reported_staff" | "address_firm_count" => {
                number.is_none_or(|n| n < 0)
            }
            _ => false,
        };
        if bad {
            return Err(format!("bad value of {k}"));
        }
    }
    let (feed, kind) = (event.feed().as_str(), event.body.kind_str());
    match (feed, kind, obj.get("score").and_then(Value::as_i64)) {
        ("PCS", _, Some(s)) if !(0..=1000).contains(&s) => return Err("bad PCS score".into()),
        ("PER", _, Some(s)) => {
            let max = obj.get("scale_max").and_then(Value::as_i64).unwrap_or(0);
            if max <= 0 || !(0..=max).contains(&s) {
                return Err("bad PER score".into());
            }
        }
        _ => {}
    }
    let keyed = feed == "JUD" || kind == "OVERDUE_CLEARED" || kind == "SUSPICIOUS_ACCOUNT_CLEARED";
    if event.body.is_retraction() && !keyed && event.ref_event_id.is_none() {
        return Err("retraction without ref_event_id".into());
    }
    for (_, _, fields) in REQUIRED
        .iter()
        .filter(|(f, k, _)| *f == feed && (*k == kind || *k == "*"))
    {
        if let Some(missing) = fields
            .iter()
            .find(|f| obj.get(**f).is_none_or(Value::is_null))
        {
            return Err(format!("{feed}.{kind} misses {missing}"));
        }
    }
    if obj
        .get("penalty_types")
        .is_some_and(|t| t.as_array().is_none_or(Vec::is_empty))
    {
        return Err("empty penalty_types".into());
    }
    Ok(event)
}

#[test]
fn same_config_same_bytes_other_seed_other_bytes() {
    let (a, sa) = run(&small(7));
    let (b, sb) = run(&small(7));
    assert_eq!(sa, sb);
    assert!(a == b, "two runs differ");
    let (c, _) = run(&small(8));
    assert!(a != c, "another seed gives the same lines");
}

#[test]
fn windows_do_not_change_the_output() {
    let cfg = small(3);
    let (whole, summary) = run(&cfg);
    let mut windowed = Vec::new();
    let mut done = Vec::new();
    let again = run_windows(&cfg, 5_000, &mut |d| done.push(d), &mut |r| {
        windowed.push(r)
    });
    assert!(
        summary.records > 20_000,
        "several windows: {}",
        summary.records
    );
    assert_eq!(again, Ok(summary));
    assert!(whole == windowed, "windowed output differs");
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "progress goes back");
    assert_eq!(done.last(), Some(&u64::from(cfg.enterprises)));
}

#[test]
fn valid_lines_decode_and_malformed_ones_do_not() {
    let cfg = GenConfig {
        malformed_rate: 0.02,
        ..small(11)
    };
    let (lines, summary) = run(&cfg);
    let mut invalid = 0;
    let mut kinds = BTreeSet::new();
    for rec in &lines {
        match check(rec) {
            Ok(event) => {
                kinds.insert((event.feed(), event.body.kind_str()));
                let canonical = serde_json::to_vec(&event).expect("serialises");
                assert!(
                    canonical == rec.line,
                    "not canonical: {}",
                    String::from_utf8_lossy(&rec.line)
                );
            }
            Err(_) => invalid += 1,
        }
    }
    assert_eq!(invalid, summary.malformed);
    let share = summary.malformed as f64 / summary.records as f64;
    assert!((0.015..0.025).contains(&share), "malformed share {share}");
    assert_eq!(summary.records, lines.len() as u64);
    assert_eq!(summary.per_feed.values().sum::<u64>(), summary.records);
    // Every feed and most kinds occur.
    assert_eq!(
        kinds.iter().map(|(f, _)| *f).collect::<BTreeSet<_>>().len(),
        11
    );
    assert!(kinds.len() >= 55, "only {} kinds: {kinds:?}", kinds.len());
}

#[test]
fn arrival_order_is_ingest_order_within_the_lateness() {
    let cfg = small(5);
    let (lines, summary) = run(&cfg);
    let lateness = i64::from(cfg.lateness_secs);
    let mut newest = i64::MIN;
    let mut late = 0;
    for event in lines.iter().filter_map(|r| check(r).ok()) {
        assert!(
            event.ingest_time >= newest.saturating_sub(lateness),
            "{} too late",
            event.event_id
        );
        late += u64::from(event.ingest_time < newest);
        newest = newest.max(event.ingest_time);
    }
    assert!(late > 0 && summary.late > 0);
}

#[test]
fn identities_versions_and_links_are_consistent() {
    let (lines, summary) = run(&small(9));
    let events: Vec<Event> = lines.iter().filter_map(|r| check(r).ok()).collect();
    // (feed, event_id, version) names one byte string; duplicates repeat it.
    let mut bytes: HashMap<_, &[u8]> = HashMap::new();
    let mut repeats = 0;
    for (rec, e) in lines.iter().filter(|r| check(r).is_ok()).zip(&events) {
        let key = (e.feed(), e.event_id.clone(), e.version);
        if let Some(old) = bytes.insert(key, &rec.line) {
            assert!(old == rec.line.as_slice(), "{} differs", e.event_id);
            repeats += 1;
        }
    }
    assert_eq!(repeats, summary.duplicates);
    let corrections = bytes.keys().filter(|(_, _, version)| *version > 1).count();
    assert_eq!(corrections as u64, summary.corrections);
    assert!(summary.corrections > 0);

    let by_id: HashMap<_, &Event> = events
        .iter()
        .map(|e| ((e.feed(), e.event_id.as_str()), e))
        .collect();
    let mut heads: BTreeMap<(String, String), BTreeSet<&str>> = BTreeMap::new();
    for e in &events {
        for (field, is_head) in [
            ("decision_no", "DECIDED"),
            ("loan_id", "OVERDUE_LISTED"),
            ("account_hash", "SUSPICIOUS_ACCOUNT"),
            ("commitment_id", "PUBLISHED"),
            ("case_no", ""),
        ] {
            if let Some(key) = business_key(e, field) {
                if is_head.is_empty() || e.body.kind_str() == is_head {
                    heads
                        .entry((field.to_owned(), key))
                        .or_default()
                        .insert(&e.uscc);
                }
            }
        }
    }
    let mut checked = 0;
    for e in &events {
        let (feed, kind) = (e.feed().as_str(), e.body.kind_str());
        if let Some(target) = &e.ref_event_id {
            let t = by_id
                .get(&(e.feed(), target.as_str()))
                .unwrap_or_else(|| panic!("{} names missing {target}", e.event_id));
            assert_eq!(t.uscc, e.uscc);
            let (_, _, kinds) = PAIRS
                .iter()
                .find(|(f, k, _)| *f == feed && *k == kind)
                .unwrap_or_else(|| panic!("{feed}.{kind} is not a retraction"));
            assert!(
                kinds.contains(&t.body.kind_str()),
                "{} → {}",
                e.event_id,
                t.event_id
            );
            checked += 1;
        }
        if let rules::event::Body::Rpr(r) = &e.body {
            if let (Some(f), Some(id)) = (r.target_feed, &r.target_event_id) {
                assert_eq!(by_id[&(f, id.as_str())].uscc, e.uscc);
            }
        }
        for field in [
            "decision_no",
            "loan_id",
            "account_hash",
            "commitment_id",
            "case_no",
        ] {
            if let Some(key) = business_key(e, field) {
                let owners = &heads[&(field.to_owned(), key)];
                assert_eq!(owners.len(), 1, "{field} shared across enterprises");
                assert!(owners.contains(e.uscc.as_str()));
            }
        }
    }
    assert!(checked > 100, "only {checked} retractions");
}

fn business_key(e: &Event, field: &str) -> Option<String> {
    let v = serde_json::to_value(e).ok()?;
    let key = v.get(field)?.as_str()?.to_owned();
    Some(match field {
        "case_no" => format!("{}/{key}", v.get("court_code")?.as_str()?),
        _ => key,
    })
}

#[test]
fn config_errors_name_the_field() {
    let message = |cfg: GenConfig| cfg.validate().expect_err("invalid").to_string();
    assert!(GenConfig::default().validate().is_ok());
    assert!(message(GenConfig {
        duplicate_rate: 1.5,
        ..GenConfig::default()
    })
    .contains("duplicate_rate"));
    assert!(message(GenConfig {
        malformed_rate: f64::NAN,
        ..GenConfig::default()
    })
    .contains("malformed_rate"));
    assert!(message(GenConfig {
        enterprises: 0,
        ..GenConfig::default()
    })
    .contains("enterprises"));
    assert!(message(GenConfig {
        region: "33a8".into(),
        ..GenConfig::default()
    })
    .contains("region"));
    assert!(message(GenConfig {
        districts: vec!["1".into()],
        ..GenConfig::default()
    })
    .contains("districts"));
    let mut cfg = GenConfig::default();
    cfg.risk.medium.red_rate = -1.0;
    assert!(message(cfg).contains("risk.medium.red_rate"));
    let mut cfg = GenConfig::default();
    cfg.risk.high.share = 0.5;
    assert!(message(cfg).contains("share"));
    let mut cfg = GenConfig::default();
    cfg.risk.low.share = 2.0;
    assert!(message(cfg).contains("risk.low.share"));
    assert!(generate(
        &GenConfig {
            years: 0,
            ..GenConfig::default()
        },
        &mut |_| {},
        &mut |_| {}
    )
    .is_err());
}

#[test]
fn config_round_trips_through_json_with_defaults() {
    let cfg: GenConfig =
        serde_json::from_str(r#"{"enterprises": 5, "start": "2023-01-01T00:00:00+08:00"}"#)
            .expect("parses");
    assert_eq!(cfg.enterprises, 5);
    assert_eq!(format_rfc3339(cfg.start), "2022-12-31T16:00:00Z");
    let back: GenConfig =
        serde_json::from_str(&serde_json::to_string(&cfg).expect("serialises")).expect("parses");
    assert_eq!(back, cfg);
    assert!(serde_json::from_str::<GenConfig>(r#"{"enterprise": 5}"#).is_err());
}

#[test]
fn fast_timestamps_match_the_canonical_form() {
    for t in (-3_000_000_000i64..300_000_000_000)
        .step_by(7_919_993)
        .chain([0, -1, 253_402_300_799, 253_402_300_800, -62_167_219_201])
    {
        let mut out = Vec::new();
        record::push_timestamp(&mut out, t);
        assert_eq!(
            String::from_utf8(out).expect("ascii"),
            format!("\"{}\"", format_rfc3339(t)),
            "at {t}"
        );
    }
}
