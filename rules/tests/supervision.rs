//! Hand-built cases for what the colour drives, through the reference computation: review
//! flags of credit repairs (applied or held as the catalogue says, D47) and the commitment
//! loop's decisions and verification results (D46).

mod common;

use common::{code, rec, ts};
use rules::catalogue::{Catalogue, RepairFlag, DEFAULT_TOML};
use rules::event::{CmtResult, VerifyMethod};
use rules::fact::Checker;
use rules::indicators::ReviewFlag;
use rules::lifecycle::Accepted;
use rules::reference::{evaluate_at, run};
use rules::reject::Reason;
use rules::score::{Colour, Evaluation};
use rules::supervision::Supervision;
use rules::time::{Ts, DAY};
use serde_json::json;

const E: u8 = 23;

fn at(log: &[Accepted], t: &str, cat: &Catalogue) -> Evaluation {
    evaluate_at(log, ts(t), None, cat)
        .remove(&code(E))
        .expect("the enterprise is known")
        .1
}

fn flag(flag: RepairFlag, repair: &str) -> ReviewFlag {
    ReviewFlag {
        flag,
        repair_event_id: repair.into(),
    }
}

fn with(from: &str, to: &str) -> Catalogue {
    assert!(DEFAULT_TOML.contains(from), "{from}");
    Catalogue::from_toml(&DEFAULT_TOML.replacen(from, to, 1)).expect("valid catalogue")
}

/// A GENERAL penalty decision `p1` (row 1) decided at `et`.
fn penalty(et: &str) -> Accepted {
    rec(
        E,
        "PEN",
        "DECIDED",
        "p1",
        et,
        json!({"decision_no": "D1", "dishonesty_class": "GENERAL", "penalty_types": ["warning"]}),
    )
}

fn repair(id: &str, et: &str, feed: &str, target: &str, effective: &str) -> Accepted {
    rec(
        E,
        "RPR",
        "COMPLETED",
        id,
        et,
        json!({"target_feed": feed, "target_event_id": target, "repair_type": "TERMINATE_PUBLICITY", "effective_time": effective}),
    )
}

#[test]
fn early_repair_is_applied_and_flagged() {
    let cat = Catalogue::embedded();
    let decided = penalty("2024-01-01T00:00:00+08:00");
    // GENERAL: minimum publicity 3 months; this repair takes effect after one.
    let early = repair(
        "r1",
        "2024-01-20T00:00:00+08:00",
        "PEN",
        "p1",
        "2024-02-01T00:00:00+08:00",
    );
    let log = vec![decided.clone(), early];
    let e = at(&log, "2024-01-25T00:00:00+08:00", &cat);
    assert_eq!(
        e.review_flags,
        [flag(RepairFlag::RepairBeforeMinPublicity, "r1")]
    );
    assert!(e.r[0] > 0.0, "row 1 before the effective time");
    assert_eq!(
        at(&log, "2024-02-01T00:00:00+08:00", &cat).r[0],
        0.0,
        "applied"
    );
    // Held when the catalogue says so: the penalty keeps counting.
    let held = with(
        "before_min_publicity = \"apply\"",
        "before_min_publicity = \"hold\"",
    );
    let e = at(&log, "2024-03-01T00:00:00+08:00", &held);
    assert!(e.r[0] > 0.0, "held: no effect");
    assert_eq!(
        e.review_flags,
        [flag(RepairFlag::RepairBeforeMinPublicity, "r1")]
    );
    // A repair after the minimum publicity end is not flagged.
    let late = repair(
        "r2",
        "2024-05-01T00:00:00+08:00",
        "PEN",
        "p1",
        "2024-05-01T00:00:00+08:00",
    );
    let e = at(&[decided, late], "2024-05-02T00:00:00+08:00", &cat);
    assert!(e.review_flags.is_empty(), "{:?}", e.review_flags);
    assert_eq!(e.r[0], 0.0);
}

#[test]
fn unknown_target_is_held_and_flagged_or_applied_as_configured() {
    let cat = Catalogue::embedded();
    // A negative record that ended without repair: row 30 is 100 with nothing repaired.
    let listed = rec(
        E,
        "LIST",
        "LISTED",
        "l1",
        "2024-01-01T00:00:00+08:00",
        json!({"list_kind": "ABNORMAL"}),
    );
    let removed = rec(
        E,
        "LIST",
        "REMOVED",
        "l2",
        "2024-01-10T00:00:00+08:00",
        json!({"ref_event_id": "l1"}),
    );
    let unknown = repair(
        "r9",
        "2024-02-01T00:00:00+08:00",
        "PEN",
        "never-seen",
        "2024-02-01T00:00:00+08:00",
    );
    let log = vec![listed, removed, unknown.clone()];
    let e = at(&log, "2024-02-02T00:00:00+08:00", &cat);
    assert_eq!(
        e.review_flags,
        [flag(RepairFlag::RepairUnknownTarget, "r9")]
    );
    assert_eq!(e.r[29], 100.0, "held: the repair does not count in row 30");
    assert_eq!(common::r(&log, E, "2024-02-02T00:00:00+08:00", 30), 100.0);
    let until = unknown.v + cat.lifecycle.hold_secs;
    let out = run(
        &log,
        until,
        None,
        &cat,
        &Supervision::embedded().commitments,
    );
    assert!(
        out.dead
            .iter()
            .any(|d| d.id.1 == "r9" && d.reason == Reason::UnknownTarget && d.at == until),
        "dead-lettered when the hold ends: {:?}",
        out.dead
    );
    // Applied: counts as a repair (1 repaired, 1 unrepaired), and no dead letter.
    let apply = with("unknown_target = \"hold\"", "unknown_target = \"apply\"");
    let e = at(&log, "2024-02-02T00:00:00+08:00", &apply);
    assert_eq!(
        e.review_flags,
        [flag(RepairFlag::RepairUnknownTarget, "r9")]
    );
    assert_eq!(e.r[29], 50.0);
    let out = run(
        &log,
        until,
        None,
        &apply,
        &Supervision::embedded().commitments,
    );
    assert!(out.dead.iter().all(|d| d.id.1 != "r9"), "{:?}", out.dead);
}

#[test]
fn target_arriving_within_the_hold_clears_the_unknown_flag() {
    let cat = Catalogue::embedded();
    let early = repair(
        "r1",
        "2024-06-01T00:00:00+08:00",
        "LIST",
        "l1",
        "2024-06-01T00:00:00+08:00",
    );
    let mut listed = rec(
        E,
        "LIST",
        "LISTED",
        "l1",
        "2024-05-01T00:00:00+08:00",
        json!({"list_kind": "ABNORMAL"}),
    );
    listed.v = ts("2024-06-03T00:00:00+08:00");
    // Known only through a repair waiting for its target: no state yet (D52).
    let waiting = vec![early.clone(), listed.clone()];
    assert!(
        !evaluate_at(&waiting, ts("2024-06-02T00:00:00+08:00"), None, &cat).contains_key(&code(E))
    );
    // Known through another record: the waiting repair is flagged.
    let other = penalty("2024-01-01T00:00:00+08:00");
    let log = vec![other, early, listed];
    let e = at(&log, "2024-06-02T00:00:00+08:00", &cat);
    assert_eq!(
        e.review_flags,
        [flag(RepairFlag::RepairUnknownTarget, "r1")]
    );
    let e = at(&log, "2024-06-03T00:00:00+08:00", &cat);
    assert!(e.review_flags.is_empty(), "{:?}", e.review_flags);
    assert_eq!(e.r[3], 0.0, "the repair applies once its target is known");
}

#[test]
fn non_repairable_class_is_held_and_flagged_until_revoked() {
    let cat = Catalogue::embedded();
    let listed = rec(
        E,
        "JUD",
        "DISHONEST_LISTED",
        "j1",
        "2024-01-01T00:00:00+08:00",
        json!({"court_code": "C", "case_no": "K1"}),
    );
    let rep = repair(
        "r1",
        "2025-03-01T00:00:00+08:00",
        "JUD",
        "j1",
        "2025-03-01T00:00:00+08:00",
    );
    let log = vec![listed.clone(), rep.clone()];
    let e = at(&log, "2025-04-01T00:00:00+08:00", &cat);
    assert_eq!(
        e.review_flags,
        [flag(RepairFlag::RepairNonRepairable, "r1")]
    );
    assert_eq!(e.r[33], 100.0, "held: still a dishonest debtor (row 34)");
    assert!(e.triggers.contains("R1"));
    // Applied when the catalogue says so.
    let apply = with(
        "non_repairable_target = \"hold\"",
        "non_repairable_target = \"apply\"",
    );
    let e = at(&log, "2025-04-01T00:00:00+08:00", &apply);
    assert_eq!(
        e.review_flags,
        [flag(RepairFlag::RepairNonRepairable, "r1")]
    );
    assert_eq!(e.r[33], 0.0);
    // Not in the list: an ordinary repair.
    let open = with(
        "non_repairable = [\"JUD.DISHONEST_LISTED\", \"JUD.CONSUMPTION_RESTRICTED\"]",
        "non_repairable = [\"PEN.SERIOUS\"]",
    );
    let e = at(&log, "2025-04-01T00:00:00+08:00", &open);
    assert!(e.review_flags.is_empty());
    // The reviewer's decision: revoking the repair removes it and its flag.
    let revoke = rec(
        E,
        "RPR",
        "REVOKED",
        "r2",
        "2025-05-01T00:00:00+08:00",
        json!({"ref_event_id": "r1"}),
    );
    let e = at(&[listed, rep, revoke], "2025-05-02T00:00:00+08:00", &cat);
    assert!(e.review_flags.is_empty(), "{:?}", e.review_flags);
}

fn established() -> Accepted {
    rec(
        E,
        "REG",
        "ESTABLISHED",
        "e1",
        "2015-01-01T00:00:00+08:00",
        json!({"region_code": "330802"}),
    )
}

fn published(id: &str, et: &str, cid: &str, matter: &str, valid_until: &str) -> Accepted {
    rec(
        E,
        "CMT",
        "PUBLISHED",
        id,
        et,
        json!({"commitment_id": cid, "type": "APPROVAL", "matter": matter, "valid_until": valid_until}),
    )
}

#[test]
fn commitments_are_scheduled_from_the_colour_after_the_records_of_that_time() {
    let cat = Catalogue::embedded();
    let rules = Supervision::embedded().commitments;
    let t1 = "2024-01-10T00:00:00+08:00";
    let t2 = "2024-03-01T00:00:00+08:00";
    let serious = rec(
        E,
        "LIST",
        "LISTED",
        "l1",
        t2,
        json!({"list_kind": "SERIOUS_ILLEGAL"}),
    );
    let log = vec![
        established(),
        published("c1", t1, "K1", "LICENCE_APPROVAL", "2025-01-01"),
        // Published at the same logical time as a record that turns the enterprise red.
        published("c2", t2, "K2", "LICENCE_APPROVAL", "2025-01-01"),
        serious,
    ];
    let out = run(&log, ts("2024-06-01T00:00:00+08:00"), None, &cat, &rules);
    let colour_at = |t: &str| {
        run(&log, ts(t), None, &cat, &rules).last[&code(E)]
            .1
            .expect("a colour")
    };
    assert_eq!(out.scheduled.len(), 2, "{:?}", out.scheduled);
    let (a, b) = (&out.scheduled[0], &out.scheduled[1]);
    assert_eq!((a.commitment_id.as_str(), a.as_of), ("K1", ts(t1)));
    assert_eq!(a.colour, colour_at(t1));
    assert_ne!(a.colour, Colour::Red);
    assert_eq!(*a, rules.schedule(&code(E), "K1", a.colour, ts(t1)));
    assert_eq!((b.commitment_id.as_str(), b.colour), ("K2", Colour::Red));
    assert_eq!(
        (b.method, b.task, b.due),
        (VerifyMethod::Onsite, true, Some(ts(t2) + 30 * DAY))
    );
    // The pipeline's own SCHEDULED record changes nothing and schedules nothing again.
    let mut looped = log.clone();
    let mut back = Accepted {
        v: ts("2024-03-02T00:00:00+08:00"),
        digest: [0; 32],
        event: b.event(),
        origin: None,
    };
    back.digest = rules::decode::digest(&back.event);
    looped.push(back);
    let again = run(&looped, ts("2024-06-01T00:00:00+08:00"), None, &cat, &rules);
    assert_eq!(again.scheduled, out.scheduled);
    assert_eq!(again.changes, out.changes);
    assert_eq!(again.last[&code(E)].0, out.last[&code(E)].0);
}

#[test]
fn verification_results_are_reported_when_visible_and_in_effect() {
    let cat = Catalogue::embedded();
    let rules = Supervision::embedded().commitments;
    let until: Ts = ts("2025-06-01T00:00:00+08:00");
    // K1 is kept: NORMAL off-site at the end of its validity.
    // K2 is broken by a penalty decided within its validity but visible only after it.
    let mut late = penalty("2024-04-01T00:00:00+08:00");
    late.v = ts("2024-07-01T00:00:00+08:00");
    let inspected = rec(
        E,
        "CMT",
        "VERIFIED",
        "v1",
        "2024-03-01T00:00:00+08:00",
        json!({"commitment_id": "K1", "result": "RECTIFY", "method": "ONSITE"}),
    );
    // K2 is also inspected: RECTIFY, rectified before its deadline.
    let inspected2 = rec(
        E,
        "CMT",
        "VERIFIED",
        "v2",
        "2024-02-01T00:00:00+08:00",
        json!({"commitment_id": "K2", "result": "RECTIFY", "rectify_deadline": "2024-02-20"}),
    );
    let rectified = rec(
        E,
        "CMT",
        "RECTIFIED",
        "r2",
        "2024-02-10T00:00:00+08:00",
        json!({"commitment_id": "K2"}),
    );
    let log = vec![
        established(),
        published(
            "c1",
            "2024-01-10T00:00:00+08:00",
            "K1",
            "TAX_FILING",
            "2024-05-31",
        ),
        published(
            "c2",
            "2024-01-10T00:00:00+08:00",
            "K2",
            "LICENCE_APPROVAL",
            "2024-05-31",
        ),
        inspected,
        inspected2,
        rectified,
        late,
    ];
    let out = run(&log, until, None, &cat, &rules);
    let got: Vec<(&str, Checker, CmtResult, Ts, &str)> = out
        .checks
        .iter()
        .map(|v| {
            let c = &v.check;
            (
                c.commitment_id.as_str(),
                c.checker,
                c.result,
                v.as_of,
                c.record.1.as_str(),
            )
        })
        .collect();
    let valid_end = ts("2024-06-01T00:00:00+08:00");
    assert_eq!(
        got,
        [
            (
                "K2",
                Checker::Inspector,
                CmtResult::Rectify,
                ts("2024-02-01T00:00:00+08:00"),
                "v2"
            ),
            // Rectified before the deadline: NORMAL when the RECTIFIED record says so.
            (
                "K2",
                Checker::Rectified,
                CmtResult::Normal,
                ts("2024-02-10T00:00:00+08:00"),
                "r2"
            ),
            (
                "K1",
                Checker::Inspector,
                CmtResult::Rectify,
                ts("2024-03-01T00:00:00+08:00"),
                "v1"
            ),
            // Not rectified: BROKEN at the default 30-day deadline.
            (
                "K1",
                Checker::Deadline,
                CmtResult::Broken,
                ts("2024-03-31T00:00:00+08:00"),
                "v1"
            ),
            ("K1", Checker::Offsite, CmtResult::Normal, valid_end, "c1"),
            ("K2", Checker::Offsite, CmtResult::Normal, valid_end, "c2"),
            (
                "K2",
                Checker::Offsite,
                CmtResult::Broken,
                ts("2024-07-01T00:00:00+08:00"),
                "p1"
            ),
        ]
    );
    assert_eq!(out.checks[4].check.method, Some(VerifyMethod::Offsite));
    assert_eq!(out.checks[2].check.method, Some(VerifyMethod::Onsite));
}
