//! The commitment loop in `steward serve` on real Kafka and ClickHouse (D46): firms of
//! different colours publish commitments; each decision travels as a `CMT.SCHEDULED`
//! record on the internal commitments topic (byte for byte the reference's), comes back
//! through the feed stage into the log, issues a plans-topic task when drawn, and is written
//! to `commitment_checks` with the off-site results. A returning inspector's `CMT.VERIFIED`
//! then changes rows 28–29 as the reference computes them.

use std::collections::BTreeSet;
use std::time::Duration;

use connectors::clickhouse::{CommitmentCheckRow, IndicatorRow};
use e2e::serve::{final_time, is_steward, produce_records, read_log, read_topic, serve, wait};
use e2e::{conforming, Namespace};
use rules::catalogue::Catalogue;
use rules::decode::encode;
use rules::event::{Feed, VerifyMethod};
use rules::fact::Checker;
use rules::lifecycle::Accepted;
use rules::reference::{run, RunOutput};
use rules::score::Colour;
use rules::supervision::Supervision;
use rules::time::DAY;
use serde_json::{json, Value};

const PER_FIRM: usize = 20;

fn code(n: u8) -> String {
    rules::uscc::with_check(&format!("91330802MA2C000{n:02}")).expect("valid prefix")
}

fn record(n: u8, feed: Feed, kind: &str, id: &str, at: &str, extra: Value) -> (Feed, Vec<u8>) {
    let mut obj = json!({
        "uscc": code(n), "feed": feed.as_str(), "kind": kind, "event_id": id,
        "event_time": at, "ingest_time": at,
    });
    for (k, v) in extra.as_object().expect("object") {
        obj[k] = v.clone();
    }
    (feed, serde_json::to_vec(&obj).expect("json"))
}

/// Four firms: 0 clean, 1 on the abnormal list (yellow cap), 2 on the serious-illegal list
/// (red cap), 3 with a general penalty (green cap); each publishes commitments in February
/// valid until the end of April. Firm 1's first commitment is broken by an overdue loan.
fn phase_one() -> Vec<(Feed, Vec<u8>)> {
    let mut v = Vec::new();
    for n in 0..4u8 {
        v.push(record(
            n,
            Feed::Reg,
            "ESTABLISHED",
            &format!("e{n}"),
            "2015-01-01T00:00:00+08:00",
            json!({"region_code": "330802", "industry_code": "C13"}),
        ));
        v.push(record(
            n,
            Feed::Pcs,
            "SCORE",
            &format!("s{n}"),
            "2023-12-01T00:00:00+08:00",
            json!({"score": 950}),
        ));
    }
    let at = "2024-01-05T00:00:00+08:00";
    v.push(record(
        1,
        Feed::List,
        "LISTED",
        "l1",
        at,
        json!({"list_kind": "ABNORMAL"}),
    ));
    v.push(record(
        2,
        Feed::List,
        "LISTED",
        "l2",
        at,
        json!({"list_kind": "SERIOUS_ILLEGAL"}),
    ));
    v.push(record(
        3,
        Feed::Pen,
        "DECIDED",
        "p3",
        at,
        json!({"decision_no": "D3", "dishonesty_class": "GENERAL", "penalty_types": ["warning"]}),
    ));
    for n in 0..4u8 {
        for i in 0..PER_FIRM {
            let matter = if n == 1 && i == 0 {
                "FINANCING"
            } else {
                "LICENCE_APPROVAL"
            };
            v.push(record(
                n,
                Feed::Cmt,
                "PUBLISHED",
                &format!("c{n}-{i}"),
                &format!("2024-02-01T{:02}:00:00+08:00", i),
                json!({"commitment_id": format!("K{n}-{i}"), "type": "APPROVAL", "matter": matter, "valid_until": "2024-04-30"}),
            ));
        }
    }
    v.push(record(
        1,
        Feed::Fin,
        "OVERDUE_LISTED",
        "f1",
        "2024-03-01T00:00:00+08:00",
        json!({"database": "OVERDUE", "loan_id": "L1", "overdue_days": 5, "overdue_fen": 100_000}),
    ));
    // Moves the clock past the end of validity.
    for n in 0..4u8 {
        v.push(record(
            n,
            Feed::Pcs,
            "SCORE",
            &format!("t{n}"),
            "2024-06-01T00:00:00+08:00",
            json!({"score": 940}),
        ));
    }
    v
}

/// The inspector's results for firm 2's first two commitments.
fn phase_two() -> Vec<(Feed, Vec<u8>)> {
    let at = "2024-07-01T00:00:00+08:00";
    vec![
        record(
            2,
            Feed::Cmt,
            "VERIFIED",
            "v2-0",
            at,
            json!({"commitment_id": "K2-0", "result": "RECTIFY", "method": "ONSITE", "rectify_deadline": "2024-12-31"}),
        ),
        record(
            2,
            Feed::Cmt,
            "VERIFIED",
            "v2-1",
            at,
            json!({"commitment_id": "K2-1", "result": "NORMAL", "method": "ONSITE"}),
        ),
    ]
}

fn reference(log: &[Accepted]) -> RunOutput {
    let rules = Supervision::embedded().commitments;
    run(log, final_time(log), None, &Catalogue::embedded(), &rules)
}

fn fetch<T: clickhouse::RowOwned + clickhouse::RowRead>(ns: &Namespace, sql: &str) -> Vec<T> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(ns.clickhouse().query(sql).fetch_all())
        .expect("query")
}

fn checks(ns: &Namespace) -> Vec<CommitmentCheckRow> {
    fetch(
        ns,
        "SELECT ?fields FROM commitment_checks ORDER BY check_id",
    )
}

fn expected_checks(r: &RunOutput) -> Vec<CommitmentCheckRow> {
    let mut rows: Vec<CommitmentCheckRow> = r
        .scheduled
        .iter()
        .map(pipeline::rows::scheduled_row)
        .chain(r.checks.iter().map(pipeline::rows::check_row))
        .collect();
    rows.sort_by(|a, b| a.check_id.cmp(&b.check_id));
    rows
}

/// Rows 28 and 29 of firm 2 in `indicator_values`.
fn rows_28_29(ns: &Namespace) -> (f64, f64) {
    let rows: Vec<IndicatorRow> = fetch(
        ns,
        &format!(
            "SELECT ?fields FROM indicator_values FINAL WHERE uscc = '{}'",
            code(2)
        ),
    );
    let r = &rows[0].level3;
    (r[27], r[28])
}

#[test]
fn the_commitment_loop_closes_through_kafka() {
    let ns = Namespace::new("cmtloop");
    let first = phase_one();
    produce_records(&ns.cfg, &first);
    wait(serve(&ns), Duration::from_secs(300));
    let (log, rejected) = read_log(&ns.cfg);
    assert_eq!(rejected, 0);
    let want = reference(&log);

    // Decisions from every colour; red always ONSITE within 30 days, blue never a task.
    assert_eq!(
        want.scheduled.len(),
        4 * PER_FIRM,
        "one decision per commitment"
    );
    let colours: BTreeSet<Colour> = want.scheduled.iter().map(|s| s.colour).collect();
    assert!(
        colours.contains(&Colour::Red) && colours.contains(&Colour::Yellow),
        "{colours:?}"
    );
    assert!(colours.len() >= 3, "{colours:?}");
    for s in &want.scheduled {
        match s.colour {
            Colour::Red => assert_eq!(
                (s.method, s.task, s.due),
                (VerifyMethod::Onsite, true, Some(s.as_of + 30 * DAY))
            ),
            Colour::Blue => assert!(!s.task && s.method == VerifyMethod::Exempt),
            _ => {}
        }
    }

    // The internal topic holds each decision's record once, byte for byte.
    let mut published: Vec<Vec<u8>> = read_topic(&ns.cfg, &ns.cfg.kafka.topics.commitments)
        .into_iter()
        .map(|(key, value)| {
            let e: rules::event::Event = serde_json::from_slice(&value).expect("CMT");
            assert_eq!(key, e.uscc.as_bytes(), "keyed by USCC");
            value
        })
        .collect();
    published.sort();
    let mut records: Vec<Vec<u8>> = want.scheduled.iter().map(|s| encode(&s.event())).collect();
    records.sort();
    assert_eq!(
        published, records,
        "CMT.SCHEDULED records on the internal topic"
    );

    // The feed stage accepted them as CMT input, visible after their decision.
    let back: Vec<&Accepted> = log.iter().filter(|a| is_steward(a)).collect();
    assert_eq!(back.len(), want.scheduled.len());
    for s in &want.scheduled {
        let e = s.event();
        let a = back
            .iter()
            .find(|a| a.event == e)
            .unwrap_or_else(|| panic!("{} accepted", e.event_id));
        assert!(a.v >= s.as_of);
    }
    let stored: u64 = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(
            ns.clickhouse()
                .query(
                    "SELECT count() FROM records FINAL WHERE feed = 'CMT' AND kind = 'SCHEDULED'",
                )
                .fetch_one(),
        )
        .expect("count");
    assert_eq!(stored as usize, want.scheduled.len(), "records table");

    // Plans-topic tasks: one per drawn decision.
    let mut tasks: Vec<(String, String, String, Value)> =
        read_topic(&ns.cfg, &ns.cfg.kafka.topics.plans)
            .into_iter()
            .filter_map(|(key, value)| {
                let m = conforming("plan", &value);
                (m["type"] == "verification_task").then(|| {
                    assert_eq!(key, m["uscc"].as_str().expect("uscc").as_bytes());
                    (
                        m["uscc"].as_str().expect("uscc").to_owned(),
                        m["commitment_id"].as_str().expect("id").to_owned(),
                        m["method"].as_str().expect("method").to_owned(),
                        m["due"].clone(),
                    )
                })
            })
            .collect();
    tasks.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut want_tasks: Vec<(String, String, String, Value)> = want
        .scheduled
        .iter()
        .filter(|s| s.task)
        .map(|s| {
            (
                s.uscc.clone(),
                s.commitment_id.clone(),
                s.method.as_str().to_owned(),
                json!(s.due.map(rules::time::format_rfc3339)),
            )
        })
        .collect();
    want_tasks.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    assert!(want_tasks.len() >= PER_FIRM, "{} tasks", want_tasks.len());
    assert_eq!(tasks, want_tasks, "verification tasks on the plans topic");

    // commitment_checks: every decision and every off-site result, as the reference says.
    let got = checks(&ns);
    assert_eq!(got, expected_checks(&want));
    let offsite: Vec<&CommitmentCheckRow> = got.iter().filter(|c| c.kind == "offsite").collect();
    assert_eq!(offsite.len(), 4 * PER_FIRM, "{offsite:?}");
    assert!(offsite
        .iter()
        .any(|c| c.commitment_id == "K1-0" && c.result == "BROKEN" && c.record == "f1"));
    assert!(want
        .checks
        .iter()
        .all(|c| c.check.checker == Checker::Offsite));

    // The inspector's results return: rows 28–29 change as the reference says.
    let before = rows_28_29(&ns);
    produce_records(&ns.cfg, &phase_two());
    wait(serve(&ns), Duration::from_secs(300));
    let (log, _) = read_log(&ns.cfg);
    let want = reference(&log);
    let e = &want.last[&code(2)].0;
    let after = rows_28_29(&ns);
    assert_eq!(after, (e.r[27], e.r[28]), "rows 28–29 = the reference");
    assert_ne!(after, before, "the inspector's results changed rows 28–29");
    assert_eq!(after.0, 40.0, "one open rectification");
    let got = checks(&ns);
    assert_eq!(got, expected_checks(&want));
    let inspector: Vec<(&str, &str, &str)> = got
        .iter()
        .filter(|c| c.kind == "inspector")
        .map(|c| {
            (
                c.commitment_id.as_str(),
                c.result.as_str(),
                c.method.as_str(),
            )
        })
        .collect();
    assert_eq!(
        inspector.iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([("K2-0", "RECTIFY", "ONSITE"), ("K2-1", "NORMAL", "ONSITE")])
    );
    // The restart published no decision twice.
    assert_eq!(
        read_topic(&ns.cfg, &ns.cfg.kafka.topics.commitments).len(),
        4 * PER_FIRM
    );
}
