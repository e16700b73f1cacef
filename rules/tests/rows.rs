//! Hand-built cases for every computation kind of the catalogue (bands, linear,
//! pass_streak, grade, firm_age, paid_in_ratio, yoy, staff_change, rectify, kept_ratio,
//! active_good, xinan, ratio) and for the cross-enterprise rows 45–49 and R9, checked
//! through the reference computation.

mod common;

use common::{code, r, rec, ts};
use rules::catalogue::Catalogue;
use rules::lifecycle::Accepted;
use rules::reference::evaluate_at;
use rules::score::Colour;
use serde_json::json;

/// A record that makes enterprise `n` known without touching the rows under test.
fn known(n: u8) -> Accepted {
    rec(
        n,
        "PCS",
        "SCORE",
        &format!("known{n}"),
        "2020-01-01T00:00:00+08:00",
        json!({"score": 800}),
    )
}

#[test]
fn pass_streak_row_7() {
    let insp = |id: &str, et: &str, result: &str| {
        rec(
            1,
            "INSP",
            "RESULT",
            id,
            et,
            json!({"campaign_id": "C", "result": result}),
        )
    };
    let mut log = vec![known(1)];
    assert_eq!(
        r(&log, 1, "2024-01-01T00:00:00Z", 7),
        30.0,
        "no result: default"
    );
    log.push(insp("i1", "2023-01-01T00:00:00+08:00", "FAIL"));
    assert_eq!(
        r(&log, 1, "2024-01-01T00:00:00Z", 7),
        60.0,
        "latest FAIL: streak 0"
    );
    log.push(insp("i2", "2023-03-01T00:00:00+08:00", "PASS"));
    log.push(insp("i3", "2023-06-01T00:00:00+08:00", "PASS"));
    assert_eq!(
        r(&log, 1, "2024-01-01T00:00:00Z", 7),
        20.0,
        "two passes: 60 − 40"
    );
    log.push(insp("i4", "2023-09-01T00:00:00+08:00", "PASS"));
    assert_eq!(r(&log, 1, "2024-01-01T00:00:00Z", 7), 0.0, "three passes");
}

#[test]
fn grade_row_8_orders_by_evaluated_year() {
    let grade = |id: &str, et: &str, year: i32, g: &str| {
        rec(
            1,
            "TAX",
            "GRADE",
            id,
            et,
            json!({"eval_year": year, "grade": g}),
        )
    };
    let mut log = vec![known(1)];
    assert_eq!(
        r(&log, 1, "2024-06-01T00:00:00Z", 8),
        40.0,
        "no grade: default"
    );
    log.push(grade("g1", "2024-04-01T00:00:00+08:00", 2023, "C"));
    // An older year's grade filed later does not replace the newer year's.
    log.push(grade("g2", "2024-05-01T00:00:00+08:00", 2022, "A"));
    assert_eq!(r(&log, 1, "2024-06-01T00:00:00Z", 8), 60.0);
    log.push(grade("g3", "2025-04-01T00:00:00+08:00", 2024, "D"));
    assert_eq!(r(&log, 1, "2025-04-02T00:00:00Z", 8), 100.0);
}

#[test]
fn firm_age_row_12_by_whole_years() {
    let log = vec![
        known(1),
        rec(
            1,
            "REG",
            "ESTABLISHED",
            "e1",
            "2020-06-01T00:00:00+08:00",
            json!({}),
        ),
    ];
    assert_eq!(
        r(&log, 1, "2020-05-31T00:00:00+08:00", 12),
        50.0,
        "before: default"
    );
    assert_eq!(r(&log, 1, "2020-06-01T00:00:00+08:00", 12), 100.0);
    assert_eq!(r(&log, 1, "2023-05-31T23:59:59+08:00", 12), 60.0);
    assert_eq!(r(&log, 1, "2023-06-01T00:00:00+08:00", 12), 40.0);
    assert_eq!(r(&log, 1, "2026-01-01T00:00:00+08:00", 12), 0.0);
}

#[test]
fn bands_rows_14_18_25() {
    let t = "2024-06-01T00:00:00Z";
    let cluster = |n: i64| {
        vec![
            known(1),
            rec(
                1,
                "REG",
                "ADDRESS_CLUSTER",
                "a",
                "2024-01-01T00:00:00+08:00",
                json!({"address_firm_count": n}),
            ),
        ]
    };
    assert_eq!(r(&cluster(4), 1, t, 14), 0.0);
    assert_eq!(r(&cluster(5), 1, t, 14), 50.0);
    assert_eq!(r(&cluster(10), 1, t, 14), 100.0);

    let capital = |reg: i64, paid: i64| {
        vec![
            known(1),
            rec(
                1,
                "REG",
                "CAPITAL",
                "c",
                "2024-01-01T00:00:00+08:00",
                json!({"registered_capital_fen": reg, "paid_in_fen": paid}),
            ),
        ]
    };
    assert_eq!(r(&[known(1)], 1, t, 18), 30.0, "no capital: default");
    assert_eq!(r(&capital(5_000_000, 0), 1, t, 18), 60.0, "50k CNY");
    assert_eq!(r(&capital(50_000_000, 0), 1, t, 18), 40.0, "500k CNY");
    assert_eq!(r(&capital(500_000_000, 0), 1, t, 18), 20.0, "5M CNY");
    assert_eq!(r(&capital(1_000_000_000, 0), 1, t, 18), 0.0, "10M CNY");

    let staff = |n: i64| {
        vec![
            known(1),
            rec(
                1,
                "TAX",
                "SOCIAL_INSURANCE",
                "s",
                "2024-02-10T00:00:00+08:00",
                json!({"period": "2024-01", "insured_count": n}),
            ),
        ]
    };
    assert_eq!(r(&[known(1)], 1, t, 25), 40.0, "no record: default");
    assert_eq!(r(&staff(0), 1, t, 25), 80.0);
    assert_eq!(r(&staff(5), 1, t, 25), 40.0);
    assert_eq!(r(&staff(20), 1, t, 25), 20.0);
    assert_eq!(r(&staff(60), 1, t, 25), 0.0);
}

#[test]
fn paid_in_ratio_row_17() {
    let t = "2024-06-01T00:00:00Z";
    let capital = |reg: i64, paid: i64| {
        vec![
            known(1),
            rec(
                1,
                "REG",
                "CAPITAL",
                "c",
                "2024-01-01T00:00:00+08:00",
                json!({"registered_capital_fen": reg, "paid_in_fen": paid}),
            ),
        ]
    };
    assert_eq!(r(&[known(1)], 1, t, 17), 30.0, "no capital: default");
    assert_eq!(r(&capital(1_000_000, 250_000), 1, t, 17), 75.0);
    assert_eq!(r(&capital(0, 0), 1, t, 17), 30.0, "registered 0: guard");
    assert_eq!(r(&capital(1_000, 5_000), 1, t, 17), 0.0, "clamped");
}

#[test]
fn linear_rows_19_21_24_44() {
    let t = "2024-06-01T00:00:00Z";
    let et = "2024-01-01T00:00:00+08:00";
    let log = vec![
        known(1),
        rec(
            1,
            "REG",
            "EQUITY_PLEDGE",
            "p1",
            et,
            json!({"share_bp": 2500}),
        ),
        rec(
            1,
            "REG",
            "EQUITY_PLEDGE",
            "p2",
            et,
            json!({"share_bp": 1000}),
        ),
        rec(1, "REG", "MORTGAGE", "m1", et, json!({})),
        rec(1, "REG", "MORTGAGE", "m2", et, json!({})),
        rec(1, "REG", "MORTGAGE", "m3", et, json!({})),
    ];
    assert_eq!(r(&log, 1, t, 19), 35.0, "Σ share_bp / 100");
    assert_eq!(r(&log, 1, t, 21), 75.0, "25 per mortgage");

    let zero = |id: &str, p: &str| {
        rec(
            1,
            "TAX",
            "DECLARED",
            id,
            "2024-05-10T00:00:00+08:00",
            json!({"period": p, "sales_fen": 0}),
        )
    };
    let log = vec![
        known(1),
        zero("z1", "2024-01"),
        zero("z2", "2024-02"),
        zero("z3", "2024-03"),
    ];
    assert_eq!(r(&log, 1, t, 24), 25.0, "3 of 12 months");

    let acct = |id: &str, h: &str, et: &str| {
        rec(
            1,
            "FIN",
            "SUSPICIOUS_ACCOUNT",
            id,
            et,
            json!({"database": "SUSPICIOUS_ACCOUNT", "account_hash": h}),
        )
    };
    let log = vec![
        known(1),
        acct("a1", "h1", et),
        acct("a2", "h1", "2024-02-01T00:00:00+08:00"),
        acct("a3", "h2", et),
    ];
    assert_eq!(r(&log, 1, t, 44), 100.0, "two distinct accounts");
    // h1 was updated on 2024-02-01; h2 goes stale 12 months after 2024-01-01.
    assert_eq!(r(&log, 1, "2025-01-15T00:00:00+08:00", 44), 50.0);
    assert_eq!(r(&log, 1, "2025-02-01T00:00:00+08:00", 44), 0.0);
}

#[test]
fn yoy_row_23() {
    let decl = |id: &str, p: &str, sales: i64| {
        rec(
            1,
            "TAX",
            "DECLARED",
            id,
            "2024-12-10T00:00:00+08:00",
            json!({"period": p, "sales_fen": sales}),
        )
    };
    // (sales of 2024-06, sales of 2023-06 if declared, r, case)
    let cases = [
        (150, None, 50.0, "no prior year"),
        (150, Some(100), 0.0, "+50%"),
        (50, Some(100), 100.0, "−50%"),
        (90, Some(100), 60.0, "−10%"),
        (0, Some(0), 50.0, "both 0"),
        (10, Some(0), 0.0, "prior 0"),
    ];
    for (recent, prior, want, case) in cases {
        let mut log = vec![known(1), decl("d1", "2024-06", recent)];
        log.extend(prior.map(|p| decl("d0", "2023-06", p)));
        assert_eq!(r(&log, 1, "2025-01-15T00:00:00+08:00", 23), want, "{case}");
    }
}

#[test]
fn staff_change_row_26() {
    let si = |id: &str, et: &str, p: &str, n: i64| {
        rec(
            1,
            "TAX",
            "SOCIAL_INSURANCE",
            id,
            et,
            json!({"period": p, "insured_count": n}),
        )
    };
    let t = "2024-09-01T00:00:00+08:00";
    let base = si("s1", "2024-02-10T00:00:00+08:00", "2024-01", 100);
    assert_eq!(
        r(
            &[
                known(1),
                base.clone(),
                si("s2", "2024-08-10T00:00:00+08:00", "2024-07", 80)
            ],
            1,
            t,
            26
        ),
        40.0,
        "−20%"
    );
    assert_eq!(
        r(
            &[
                known(1),
                base.clone(),
                si("s2", "2024-08-10T00:00:00+08:00", "2024-07", 120)
            ],
            1,
            t,
            26
        ),
        0.0,
        "growth"
    );
    assert_eq!(
        r(
            &[
                known(1),
                base.clone(),
                si("s2", "2024-08-10T00:00:00+08:00", "2024-06", 10)
            ],
            1,
            t,
            26
        ),
        0.0,
        "no record 6 periods before"
    );
    let zero = si("s1", "2024-02-10T00:00:00+08:00", "2024-01", 0);
    assert_eq!(
        r(
            &[
                known(1),
                zero,
                si("s2", "2024-08-10T00:00:00+08:00", "2024-07", 10)
            ],
            1,
            t,
            26
        ),
        0.0,
        "N₆ₘ = 0"
    );
}

#[test]
fn rectify_row_28_and_broken_row_27() {
    let verified = rec(
        1,
        "CMT",
        "VERIFIED",
        "v1",
        "2024-03-01T00:00:00+08:00",
        json!({"commitment_id": "K1", "result": "RECTIFY", "rectify_deadline": "2024-03-31"}),
    );
    let log = vec![known(1), verified.clone()];
    assert_eq!(r(&log, 1, "2024-03-31T23:59:59+08:00", 28), 40.0, "open");
    assert_eq!(r(&log, 1, "2024-03-31T23:59:59+08:00", 27), 0.0);
    assert_eq!(r(&log, 1, "2024-04-01T00:00:00+08:00", 28), 80.0, "overdue");
    assert_eq!(
        r(&log, 1, "2024-04-01T00:00:00+08:00", 27),
        63.21,
        "overdue RECTIFY is BROKEN"
    );
    let fixed = rec(
        1,
        "CMT",
        "RECTIFIED",
        "v2",
        "2024-03-20T00:00:00+08:00",
        json!({"commitment_id": "K1"}),
    );
    let log = vec![known(1), verified, fixed];
    assert_eq!(
        r(&log, 1, "2024-03-20T00:00:00+08:00", 28),
        0.0,
        "rectified"
    );
    assert_eq!(r(&log, 1, "2024-04-01T00:00:00+08:00", 27), 0.0);
}

#[test]
fn kept_ratio_rows_29_30_31() {
    let t = "2024-06-01T00:00:00+08:00";
    let v = |id: &str, k: &str, result: &str| {
        rec(
            1,
            "CMT",
            "VERIFIED",
            id,
            "2024-02-01T00:00:00+08:00",
            json!({"commitment_id": k, "result": result}),
        )
    };
    assert_eq!(r(&[known(1)], 1, t, 29), 30.0, "none verified: default");
    assert_eq!(
        r(
            &[known(1), v("v1", "K1", "NORMAL"), v("v2", "K2", "BROKEN")],
            1,
            t,
            29
        ),
        50.0
    );

    // Row 30: one repaired list entry, one removed without repair.
    let listed = |id: &str| {
        rec(
            1,
            "LIST",
            "LISTED",
            id,
            "2024-01-01T00:00:00+08:00",
            json!({"list_kind": "ABNORMAL"}),
        )
    };
    let repair = rec(
        1,
        "RPR",
        "COMPLETED",
        "r1",
        "2024-02-01T00:00:00+08:00",
        json!({"target_feed": "LIST", "target_event_id": "l1", "repair_type": "LIST_REMOVAL", "effective_time": "2024-02-01T00:00:00+08:00"}),
    );
    let removed = rec(
        1,
        "LIST",
        "REMOVED",
        "x2",
        "2024-03-01T00:00:00+08:00",
        json!({"ref_event_id": "l2"}),
    );
    assert_eq!(r(&[known(1), listed("l1")], 1, t, 30), 0.0, "none: 0");
    assert_eq!(
        r(
            &[
                known(1),
                listed("l1"),
                listed("l2"),
                repair.clone(),
                removed.clone()
            ],
            1,
            t,
            30
        ),
        50.0
    );
    assert_eq!(r(&[known(1), listed("l2"), removed], 1, t, 30), 100.0);

    // Row 31: one decision paid on time, one late.
    let decided = |id: &str, no: &str| {
        rec(
            1,
            "PEN",
            "DECIDED",
            id,
            "2024-01-10T00:00:00+08:00",
            json!({"decision_no": no, "dishonesty_class": "MINOR", "penalty_types": ["fine"], "due_date": "2024-03-31"}),
        )
    };
    let performed = |id: &str, no: &str, et: &str| {
        rec(1, "PEN", "PERFORMED", id, et, json!({"decision_no": no}))
    };
    let on_time = performed("f1", "D1", "2024-03-31T23:00:00+08:00");
    let late = performed("f2", "D2", "2024-04-01T00:00:00+08:00");
    assert_eq!(
        r(&[known(1), decided("p1", "D1"), on_time.clone()], 1, t, 31),
        0.0
    );
    assert_eq!(
        r(
            &[
                known(1),
                decided("p1", "D1"),
                decided("p2", "D2"),
                on_time,
                late
            ],
            1,
            t,
            31
        ),
        50.0
    );
}

#[test]
fn active_good_rows_32_33() {
    let t = "2024-06-01T00:00:00+08:00";
    assert_eq!(r(&[known(1)], 1, t, 32), 30.0);
    assert_eq!(r(&[known(1)], 1, t, 33), 20.0);
    let log = vec![
        known(1),
        rec(
            1,
            "PCS",
            "HONOUR",
            "h1",
            "2024-01-01T00:00:00+08:00",
            json!({"honour_type": "A", "valid_until": "2024-12-31"}),
        ),
        rec(
            1,
            "CMT",
            "PUBLISHED",
            "c1",
            "2024-01-01T00:00:00+08:00",
            json!({"commitment_id": "K1", "type": "VOLUNTARY", "matter": "M", "valid_until": "2024-12-31"}),
        ),
    ];
    assert_eq!(r(&log, 1, t, 32), 0.0);
    assert_eq!(r(&log, 1, t, 33), 0.0);
    assert_eq!(
        r(&log, 1, "2025-01-01T00:00:00+08:00", 32),
        30.0,
        "honour expired"
    );
    assert_eq!(
        r(&log, 1, "2025-01-01T00:00:00+08:00", 33),
        20.0,
        "commitment expired"
    );
}

#[test]
fn legal_representative_rows_45_46_47() {
    let et = "2024-01-01T00:00:00+08:00";
    let role = |n: u8, id: &str| {
        rec(
            n,
            "PER",
            "ROLE",
            id,
            et,
            json!({"person_hash": "P1", "role": "LEGAL_REP"}),
        )
    };
    let mut log = vec![
        known(1),
        known(2),
        role(1, "r1"),
        role(2, "r2"),
        // The score and the dishonesty record are filed under enterprise 2.
        rec(
            2,
            "PER",
            "SCORE",
            "s1",
            et,
            json!({"person_hash": "P1", "score": 650, "scale_max": 1000}),
        ),
    ];
    assert_eq!(
        r(&log, 1, "2024-02-01T00:00:00+08:00", 45),
        50.0,
        "(800 − 650) / 3"
    );
    assert_eq!(
        r(&log, 1, "2024-03-31T00:00:00+08:00", 45),
        30.0,
        "older than 90 days"
    );
    assert_eq!(r(&log, 1, "2024-02-01T00:00:00+08:00", 46), 0.0);
    log.push(rec(
        2,
        "PER",
        "DISHONEST_LISTED",
        "d1",
        et,
        json!({"person_hash": "P1"}),
    ));
    assert_eq!(r(&log, 1, "2024-02-01T00:00:00+08:00", 46), 100.0);
    assert_eq!(
        r(&log, 1, "2024-02-01T00:00:00+08:00", 47),
        0.0,
        "no red trigger yet"
    );
    log.push(rec(
        2,
        "JUD",
        "DISHONEST_LISTED",
        "j1",
        et,
        json!({"court_code": "C", "case_no": "K"}),
    ));
    assert_eq!(
        r(&log, 1, "2024-02-01T00:00:00+08:00", 47),
        50.0,
        "the other firm has R1"
    );
    assert_eq!(
        r(&log, 2, "2024-02-01T00:00:00+08:00", 47),
        0.0,
        "its own trigger does not count"
    );
}

#[test]
fn related_enterprise_rows_48_49_and_r9() {
    let et = "2024-01-01T00:00:00+08:00";
    let t = "2024-02-01T00:00:00+08:00";
    let red = |n: u8| {
        rec(
            n,
            "FIN",
            "DEBT_EVASION_LISTED",
            &format!("de{n}"),
            et,
            json!({"database": "DEBT_EVASION"}),
        )
    };
    let share = |kind: &str, id: &str, cp: u8, bp: i64| {
        rec(
            1,
            "REG",
            kind,
            id,
            et,
            json!({"counterparty_uscc": code(cp), "share_bp": bp}),
        )
    };
    let mut log = vec![known(1), known(2), known(3), red(2)];
    log.push(share("SHAREHOLDER", "sh2", 2, 400));
    assert_eq!(r(&log, 1, t, 48), 0.0, "below 5%");
    log.push(share("SHAREHOLDER", "sh2b", 2, 600));
    assert_eq!(r(&log, 1, t, 48), 60.0, "latest share 6%, shareholder red");
    log.push(share("INVESTMENT", "in2", 2, 3000));
    log.push(share("INVESTMENT", "in3", 3, 3000));
    assert_eq!(r(&log, 1, t, 49), 50.0, "one of two affiliates red");
    // R9: a revoked affiliate leaves the ratio and gets colour none.
    log.push(rec(
        3,
        "REG",
        "STATUS",
        "st3",
        et,
        json!({"status": "REVOKED"}),
    ));
    assert_eq!(r(&log, 1, t, 49), 100.0, "revoked affiliate left out");
    let states = evaluate_at(&log, ts(t), None, &Catalogue::embedded());
    let (_, e3) = &states[&code(3)];
    assert_eq!(e3.s, None);
    assert_eq!(e3.colour_without_hysteresis(), Colour::None);
    assert!(e3.triggers.contains("R9"));
}
