//! Hand-built cases for the model: windows and their edges, retractions, repairs,
//! versions, holds, growing overdue days, triggers and hysteresis, checked through the
//! reference computation.

mod common;

use common::ts;
use rules::catalogue::Catalogue;
use rules::lifecycle::Accepted;
use rules::reference::{evaluate_at, run};
use rules::reject::Reason;
use rules::score::Colour;
use rules::time::{add_months, Ts, DAY};
use serde_json::{json, Value};

/// The enterprise of these cases.
const E: u8 = 17;

/// A record of the enterprise; `v = ingest_time = event_time`.
fn rec(feed: &str, kind: &str, id: &str, et: &str, extra: Value) -> Accepted {
    common::rec(E, feed, kind, id, et, extra)
}

fn code() -> String {
    common::code(E)
}

fn rules() -> rules::supervision::CommitmentRules {
    rules::supervision::Supervision::embedded().commitments
}

fn r(log: &[Accepted], t: &str, row: usize) -> f64 {
    common::r(log, E, t, row)
}

#[test]
fn test_code_is_valid() {
    assert_eq!(rules::uscc::check(&code()), Ok(()));
}

#[test]
fn general_penalty_counts_during_publicity_only() {
    let log = vec![rec(
        "PEN",
        "DECIDED",
        "p1",
        "2024-03-01T10:00:00+08:00",
        json!({"decision_no": "D1", "dishonesty_class": "GENERAL", "penalty_types": ["fine"], "fine_fen": 5_000_000}),
    )];
    let cat = Catalogue::embedded();
    assert!(
        evaluate_at(&log, ts("2024-03-01T09:59:59+08:00"), None, &cat).is_empty(),
        "not yet visible"
    );
    assert_eq!(r(&log, "2024-03-01T10:00:00+08:00", 1), 39.35); // sat(1, 2)
    assert_eq!(r(&log, "2025-03-01T09:59:59+08:00", 1), 39.35);
    assert_eq!(r(&log, "2025-03-01T10:00:00+08:00", 1), 0.0); // 1-year publicity ends
                                                              // Row 3: 50,000 CNY = 5,000,000 fen → amt = 40, for 36 months.
    assert_eq!(r(&log, "2027-03-01T09:59:59+08:00", 3), 40.0);
    assert_eq!(r(&log, "2027-03-01T10:00:00+08:00", 3), 0.0);
}

#[test]
fn retraction_ends_effect_at_the_later_event_time() {
    let decided = rec(
        "PEN",
        "DECIDED",
        "p1",
        "2024-03-01T00:00:00+08:00",
        json!({"decision_no": "D1", "dishonesty_class": "SERIOUS", "penalty_types": ["fine"]}),
    );
    let revoked = rec(
        "PEN",
        "REVOKED",
        "p2",
        "2024-05-01T00:00:00+08:00",
        json!({"ref_event_id": "p1"}),
    );
    let log = vec![decided, revoked];
    assert_eq!(r(&log, "2024-04-30T23:59:59+08:00", 2), 63.21); // sat(1, 1)
    assert_eq!(r(&log, "2024-05-01T00:00:00+08:00", 2), 0.0);
}

#[test]
fn repair_ends_effect_and_revoking_it_restores() {
    let listed = rec(
        "LIST",
        "LISTED",
        "l1",
        "2024-01-10T00:00:00+08:00",
        json!({"list_kind": "ABNORMAL"}),
    );
    let repair = rec(
        "RPR",
        "COMPLETED",
        "r1",
        "2024-02-01T00:00:00+08:00",
        json!({"target_feed": "LIST", "target_event_id": "l1", "repair_type": "LIST_REMOVAL", "effective_time": "2024-02-15T00:00:00+08:00"}),
    );
    let log = vec![listed.clone(), repair.clone()];
    assert_eq!(r(&log, "2024-02-14T23:59:59+08:00", 4), 100.0);
    assert_eq!(r(&log, "2024-02-15T00:00:00+08:00", 4), 0.0);
    // Row 30 counts the repair.
    assert_eq!(r(&log, "2024-03-01T00:00:00+08:00", 30), 0.0);
    let revoke = rec(
        "RPR",
        "REVOKED",
        "r2",
        "2024-03-01T00:00:00+08:00",
        json!({"ref_event_id": "r1"}),
    );
    let log = vec![listed, repair, revoke];
    assert_eq!(
        r(&log, "2024-02-20T00:00:00+08:00", 4),
        0.0,
        "before the revocation is visible"
    );
    assert_eq!(r(&log, "2024-03-01T00:00:00+08:00", 4), 100.0, "restored");
}

#[test]
fn higher_version_replaces_and_equal_version_keeps_smaller_digest() {
    let v1 = rec(
        "LIST",
        "LISTED",
        "l1",
        "2024-01-10T00:00:00+08:00",
        json!({"list_kind": "ABNORMAL"}),
    );
    let mut v2 = rec(
        "LIST",
        "LISTED",
        "l1",
        "2024-01-10T00:00:00+08:00",
        json!({"list_kind": "SERIOUS_ILLEGAL", "version": 2}),
    );
    v2.v = ts("2024-02-01T00:00:00+08:00");
    let log = vec![v1.clone(), v2];
    assert_eq!(r(&log, "2024-01-20T00:00:00+08:00", 4), 100.0);
    assert_eq!(r(&log, "2024-01-20T00:00:00+08:00", 5), 0.0);
    assert_eq!(r(&log, "2024-02-01T00:00:00+08:00", 4), 0.0);
    assert_eq!(r(&log, "2024-02-01T00:00:00+08:00", 5), 100.0);

    let other = rec(
        "LIST",
        "LISTED",
        "l1",
        "2024-01-10T00:00:00+08:00",
        json!({"list_kind": "SERIOUS_ILLEGAL"}),
    );
    let winner_is_serious = other.digest < v1.digest;
    let log = vec![v1, other];
    let want = if winner_is_serious { 100.0 } else { 0.0 };
    assert_eq!(r(&log, "2024-01-20T00:00:00+08:00", 5), want);
    assert_eq!(r(&log, "2024-01-20T00:00:00+08:00", 4), 100.0 - want);
}

#[test]
fn version_switching_kind_class_is_dead_lettered() {
    let v1 = rec(
        "LIST",
        "LISTED",
        "l1",
        "2024-01-10T00:00:00+08:00",
        json!({"list_kind": "ABNORMAL"}),
    );
    let v2 = rec(
        "LIST",
        "REMOVED",
        "l1",
        "2024-01-11T00:00:00+08:00",
        json!({"ref_event_id": "l1", "version": 2}),
    );
    let cat = Catalogue::embedded();
    let out = run(
        &[v1, v2],
        ts("2024-02-01T00:00:00+08:00"),
        None,
        &cat,
        &rules(),
    );
    assert!(out
        .dead
        .iter()
        .any(|d| d.reason == Reason::VersionKindChange && d.version == 2));
    assert_eq!(out.last[&code()].0.r[3], 100.0);
}

/// A letter's time is when the records that decide it are all visible, never earlier: a
/// live sink has already made earlier times durable when the deciding record arrives
/// (issue 18 item 11, D53).
#[test]
fn a_dead_letter_is_decided_when_its_deciding_record_arrives() {
    let cat = Catalogue::embedded();
    let (early, late) = ("2024-01-10T00:00:00+08:00", "2024-01-12T00:00:00+08:00");
    let dead =
        |log: &[Accepted]| run(log, ts("2024-02-01T00:00:00+08:00"), None, &cat, &rules()).dead;
    // Version 1 twice, of both classes: whichever sets the class, the letter waits for both.
    let listed = rec(
        "LIST",
        "LISTED",
        "l1",
        early,
        json!({"list_kind": "ABNORMAL"}),
    );
    let removed = rec("LIST", "REMOVED", "l1", late, json!({"ref_event_id": "l0"}));
    let d = dead(&[listed, removed]);
    let kind: Vec<_> = d
        .iter()
        .filter(|d| d.reason == Reason::VersionKindChange)
        .collect();
    assert_eq!(kind.len(), 1, "{d:?}");
    assert_eq!(kind[0].at, ts(late), "{d:?}");
    // A payment naming a record of another kind, which arrives within the hold.
    let paid = rec(
        "TAX",
        "ARREARS_PAID",
        "p1",
        early,
        json!({"ref_event_id": "t9"}),
    );
    let other = rec("TAX", "ABNORMAL_HOUSEHOLD", "t9", late, json!({}));
    let d = dead(&[paid, other]);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!((d[0].reason, d[0].at), (Reason::TargetMismatch, ts(late)));
}

#[test]
fn unknown_target_is_held_then_dead_lettered() {
    let cat = Catalogue::embedded();
    let removed = rec(
        "LIST",
        "REMOVED",
        "x",
        "2024-01-01T00:00:00+08:00",
        json!({"ref_event_id": "late"}),
    );
    // Target arrives 3 days later: the removal applies.
    let mut target = rec(
        "LIST",
        "LISTED",
        "late",
        "2023-12-01T00:00:00+08:00",
        json!({"list_kind": "ABNORMAL"}),
    );
    target.v = removed.v + 3 * DAY;
    let log = vec![removed.clone(), target.clone()];
    let out = run(&log, removed.v + 30 * DAY, None, &cat, &rules());
    assert!(out.dead.is_empty(), "{:?}", out.dead);
    assert_eq!(out.last[&code()].0.r[3], 0.0);
    // Target arrives 8 days later: the removal was dead-lettered at v + 7 days.
    target.v = removed.v + 8 * DAY;
    let log = vec![removed.clone(), target];
    let out = run(&log, removed.v + 30 * DAY, None, &cat, &rules());
    let d = out
        .dead
        .iter()
        .find(|d| d.reason == Reason::UnknownTarget)
        .expect("dead letter");
    assert_eq!(d.at, removed.v + 7 * DAY);
    assert_eq!(
        out.last[&code()].0.r[3],
        100.0,
        "the late target stays listed"
    );
}

#[test]
fn key_change_window_edge() {
    let log = vec![rec(
        "REG",
        "CHANGED",
        "c1",
        "2024-01-31T12:00:00+08:00",
        json!({"change_field": "LEGAL_REP"}),
    )];
    let end = add_months(ts("2024-01-31T12:00:00+08:00"), 12);
    assert_eq!(rules::time::format_rfc3339(end), "2025-01-31T04:00:00Z");
    let cat = Catalogue::embedded();
    let at = |t: Ts| evaluate_at(&log, t, None, &cat)[&code()].1.r[12];
    assert_eq!(at(end - 1), 39.35);
    assert_eq!(at(end), 0.0);
}

#[test]
fn overdue_days_grow_into_bands() {
    let et = "2024-01-01T00:00:00+08:00";
    let log = vec![rec(
        "FIN",
        "OVERDUE_LISTED",
        "o1",
        et,
        json!({"database": "OVERDUE", "loan_id": "L1", "overdue_days": 20, "overdue_fen": 2_000_000}),
    )];
    let t0 = ts(et);
    let cat = Catalogue::embedded();
    let at = |t: Ts| evaluate_at(&log, t, None, &cat)[&code()].1.clone();
    assert_eq!(at(t0).r[39], 30.0);
    assert_eq!(at(t0 + 11 * DAY - 1).r[39], 30.0); // day 30
    assert_eq!(at(t0 + 11 * DAY).r[39], 60.0); // day 31
    assert_eq!(at(t0 + 71 * DAY - 1).r[39], 60.0); // day 90
    let late = at(t0 + 71 * DAY); // day 91
    assert_eq!(late.r[39], 100.0);
    assert!(late.triggers.contains("R7"));
    assert_eq!(late.r[40], 40.0); // 20,000 CNY overdue
}

#[test]
fn red_trigger_caps_the_colour_and_hysteresis_holds_on_recovery() {
    let cat = Catalogue::embedded();
    let mut log = vec![
        rec(
            "REG",
            "ESTABLISHED",
            "e1",
            "2010-01-01T00:00:00+08:00",
            json!({"region_code": "330802"}),
        ),
        rec(
            "TAX",
            "GRADE",
            "g1",
            "2024-01-01T00:00:00+08:00",
            json!({"eval_year": 2023, "grade": "A"}),
        ),
        rec(
            "PCS",
            "SCORE",
            "s1",
            "2024-01-01T00:00:00+08:00",
            json!({"score": 900}),
        ),
    ];
    log.push(rec(
        "JUD",
        "DISHONEST_LISTED",
        "j1",
        "2024-02-01T00:00:00+08:00",
        json!({"court_code": "C", "case_no": "K1"}),
    ));
    log.push(rec(
        "JUD",
        "DISHONEST_REMOVED",
        "j2",
        "2024-03-01T00:00:00+08:00",
        json!({"court_code": "C", "case_no": "K1"}),
    ));
    let out = run(&log, ts("2024-04-01T00:00:00+08:00"), None, &cat, &rules());
    let seq: Vec<(Option<Colour>, Colour)> = out.changes.iter().map(|c| (c.from, c.to)).collect();
    assert_eq!(
        seq[0],
        (None, Colour::Green),
        "{seq:?}: no tax grade yet caps at green (R8)"
    );
    assert!(seq.contains(&(Some(Colour::Blue), Colour::Red)), "{seq:?}");
    let red = out
        .changes
        .iter()
        .find(|c| c.to == Colour::Red)
        .expect("red");
    assert_eq!(red.as_of, ts("2024-02-01T00:00:00+08:00"));
    assert!(red.triggers.contains(&"R1".to_owned()));
    assert_eq!(red.reasons[0].indicator, "dishonest_debtor_active");
    assert_eq!(
        red.reasons[0].records,
        vec![(rules::event::Feed::Jud, "j1".into())]
    );
    // Lifting the trigger takes effect at once.
    let after = out.changes.last().expect("change");
    assert_eq!(after.as_of, ts("2024-03-01T00:00:00+08:00"));
    assert_ne!(after.to, Colour::Red);
    let ids: std::collections::BTreeSet<&str> =
        out.changes.iter().map(|c| c.change_id.as_str()).collect();
    assert_eq!(ids.len(), out.changes.len());
}

#[test]
fn annual_report_late_after_30_june() {
    let log = vec![
        rec(
            "REG",
            "ESTABLISHED",
            "e1",
            "2020-05-01T00:00:00+08:00",
            json!({}),
        ),
        rec(
            "REG",
            "ANNUAL_REPORT",
            "a1",
            "2023-08-01T00:00:00+08:00",
            json!({"report_year": 2022, "reported_tax_fen": 100, "reported_staff": 3}),
        ),
    ];
    assert_eq!(
        r(&log, "2023-06-30T23:59:59+08:00", 15),
        100.0,
        "2021 report missing since 2022-07-01"
    );
    assert_eq!(
        r(&log, "2023-07-01T00:00:00+08:00", 15),
        100.0,
        "2022 report now due, not filed"
    );
    assert_eq!(r(&log, "2023-08-01T00:00:00+08:00", 15), 0.0, "filed late");
    assert_eq!(
        r(&log, "2024-07-01T00:00:00+08:00", 15),
        100.0,
        "2023 report missing"
    );
}

#[test]
fn offsite_verification_breaks_a_commitment_and_a_revocation_unbreaks_it() {
    let published = rec(
        "CMT",
        "PUBLISHED",
        "c1",
        "2024-01-10T00:00:00+08:00",
        json!({"commitment_id": "K1", "type": "APPROVAL", "matter": "LICENCE_APPROVAL", "valid_until": "2024-12-31"}),
    );
    let penalty = rec(
        "PEN",
        "DECIDED",
        "p1",
        "2024-06-01T00:00:00+08:00",
        json!({"decision_no": "D1", "dishonesty_class": "MINOR", "penalty_types": ["warning"]}),
    );
    // A court case is not a contradiction for LICENCE_APPROVAL (PEN.DECIDED only).
    let case = rec(
        "JUD",
        "CASE_FILED",
        "j1",
        "2024-03-01T00:00:00+08:00",
        json!({"case_no": "C1", "court_code": "K", "role": "DEFENDANT", "cause": "CONTRACT"}),
    );
    let log = vec![published.clone(), penalty.clone(), case.clone()];
    // Row 27 (broken within 24 months, sat k = 1): from the penalty's event time on.
    assert_eq!(r(&log, "2024-05-31T23:59:59+08:00", 27), 0.0);
    assert_eq!(r(&log, "2024-06-01T00:00:00+08:00", 27), 63.21);
    assert_eq!(r(&log, "2026-05-31T23:59:59+08:00", 27), 63.21);
    assert_eq!(r(&log, "2026-06-01T00:00:00+08:00", 27), 0.0);
    // R7 (or R5) counts it.
    let cat = Catalogue::embedded();
    let e = &evaluate_at(&log, ts("2024-07-01T00:00:00+08:00"), None, &cat)[&code()];
    assert!(
        e.1.triggers.contains("R5") || e.1.triggers.contains("R7"),
        "{:?}",
        e.1.triggers
    );
    // Revoking the penalty un-breaks the commitment.
    let revoked = rec(
        "PEN",
        "REVOKED",
        "p2",
        "2024-07-01T00:00:00+08:00",
        json!({"ref_event_id": "p1"}),
    );
    let log = vec![published.clone(), penalty, case.clone(), revoked];
    assert_eq!(r(&log, "2024-08-01T00:00:00+08:00", 27), 0.0);
    // A penalty after the validity does not break it.
    let late = rec(
        "PEN",
        "DECIDED",
        "p3",
        "2025-01-01T00:00:00+08:00",
        json!({"decision_no": "D3", "dishonesty_class": "MINOR", "penalty_types": ["warning"]}),
    );
    let log = vec![published, case, late];
    assert_eq!(r(&log, "2025-02-01T00:00:00+08:00", 27), 0.0);
}
