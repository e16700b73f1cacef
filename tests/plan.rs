//! `steward plan` against real ClickHouse and Kafka.
//!
//! - On generated data run through the pipeline, a campaign selects each enterprise exactly
//!   when the test's own SHA-256 draw says so, writes the selections to ClickHouse and the
//!   plans topic, prints the realised rates (the pooled low-risk rate near 10 %), refuses to
//!   plan the same campaign twice, and a second campaign respects the frequency caps.
//! - Targeted overrides: a row-16 mismatch with ≥ 100M CNY capital is always selected.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use clickhouse::Row;
use connectors::clickhouse::{ClickHouse, PlanRow, RecordRow};
use e2e::serve::read_topic;
use e2e::{conforming, load_generated, steward_bin, Namespace};
use generator::GenConfig;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The test's own sampling hash (supervision.md), written from the spec.
fn u(seed: u64, uscc: &str) -> f64 {
    let d = Sha256::digest(format!("{seed}{uscc}").as_bytes());
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes")) as f64 / 2f64.powi(64)
}

fn p(colour: &str) -> f64 {
    match colour {
        "blue" => 0.05,
        "green" => 0.10,
        "yellow" => 0.30,
        "red" => 1.0,
        _ => 0.0,
    }
}

fn plan(ns: &Namespace, args: &[&str]) -> std::process::Output {
    Command::new(steward_bin().expect("steward binary"))
        .args(["plan", "--config"])
        .arg(&ns.config)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run steward plan")
}

#[derive(Debug, Row, Deserialize)]
struct Colours {
    uscc: String,
    colour: String,
}

fn plan_rows(ch: &ClickHouse, campaign: &str) -> Vec<PlanRow> {
    e2e::runtime()
        .block_on(ch.fetch(&format!(
            "SELECT * FROM {}.inspection_plans WHERE campaign_id = '{campaign}' ORDER BY uscc",
            ch.database()
        )))
        .expect("plan rows")
}

#[test]
fn plans_on_generated_data() {
    let ns = Namespace::new("plan");
    let gen = GenConfig {
        enterprises: 1000,
        seed: 3,
        ..GenConfig::default()
    };
    load_generated(&ns, &gen).expect("load generated data");
    let ch = ClickHouse::new(&ns.cfg.clickhouse).expect("client");
    let colours: BTreeMap<String, String> = e2e::runtime()
        .block_on(ch.fetch::<Colours>(&format!(
            "SELECT uscc, colour FROM {}.enterprise_state FINAL WHERE deleted = 0",
            ch.database()
        )))
        .expect("colours")
        .into_iter()
        .map(|c| (c.uscc, c.colour))
        .collect();
    assert!(colours.len() > 900, "{} enterprises", colours.len());

    let out = plan(&ns, &["--campaign", "c1", "--seed", "42"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    let c1 = plan_rows(&ch, "c1");
    let selected: BTreeSet<&str> = c1.iter().map(|r| r.uscc.as_str()).collect();
    // Every enterprise with a colour: selected exactly when u < p (or an override applied).
    for (uscc, colour) in &colours {
        let x = u(42, uscc);
        if let Some(r) = c1.iter().find(|r| &r.uscc == uscc) {
            assert_eq!(r.u, x, "{uscc}");
            assert!(x < r.probability, "{uscc}");
            assert_eq!(&r.colour, colour);
            if r.reason == "colour" {
                assert_eq!(r.probability, p(colour));
            } else {
                assert!(r.reason.starts_with("override:"), "{}", r.reason);
            }
        } else {
            assert!(
                x >= p(colour),
                "{uscc} ({colour}, u = {x}) should be selected"
            );
        }
    }
    // The pooled low-risk rate, as printed and as recomputed here.
    let low: Vec<&String> = colours
        .iter()
        .filter(|(_, c)| *c == "blue" || *c == "green")
        .map(|(u, _)| u)
        .collect();
    let low_selected = low.iter().filter(|u| selected.contains(u.as_str())).count();
    let rate = 100.0 * low_selected as f64 / low.len() as f64;
    eprintln!(
        "pooled low-risk rate {rate:.1}% of {} enterprises",
        low.len()
    );
    assert!(
        stdout.contains(&format!("low-risk (blue + green) pooled rate {rate:.1}%")),
        "{stdout}"
    );
    assert!(
        (8.0..=12.0).contains(&rate),
        "pooled low-risk rate {rate:.1}%"
    );
    let reds = colours.values().filter(|c| *c == "red").count();
    let red_line: Vec<&str> = stdout
        .lines()
        .find(|l| l.starts_with("red "))
        .expect("a red line")
        .split_whitespace()
        .collect();
    assert_eq!(
        red_line[1..4],
        [reds.to_string(), reds.to_string(), "100.0%".into()]
    );

    // The plans topic has every selection and one campaign summary.
    let msgs: Vec<serde_json::Value> = read_topic(&ns.cfg, &ns.cfg.kafka.topics.plans)
        .into_iter()
        .map(|(_, v)| conforming("plan", &v))
        .collect();
    let topic_selected: BTreeSet<&str> = msgs
        .iter()
        .filter(|m| m["type"] == "inspection_selection")
        .map(|m| m["uscc"].as_str().expect("uscc"))
        .collect();
    assert_eq!(topic_selected, selected);
    let summary: Vec<_> = msgs
        .iter()
        .filter(|m| m["type"] == "inspection_campaign")
        .collect();
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0]["counts"]["red"]["selected"], reds as u64);

    // A campaign is planned once.
    let again = plan(&ns, &["--campaign", "c1", "--seed", "42"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already planned"));
    assert_eq!(plan_rows(&ch, "c1"), c1);

    // The same seed again, as another campaign at the same snapshot: blue and green were
    // selected at most once in their window, so none selected by colour in c1 comes back;
    // red comes back every time.
    let out = plan(&ns, &["--campaign", "c2", "--seed", "42"]);
    assert!(out.status.success());
    let c2 = plan_rows(&ch, "c2");
    for r in &c2 {
        let before = c1.iter().find(|x| x.uscc == r.uscc);
        match r.colour.as_str() {
            "blue" | "green" if r.reason == "colour" => {
                assert!(
                    before.is_none_or(|b| b.reason != "colour"),
                    "{} again",
                    r.uscc
                )
            }
            _ => {}
        }
    }
    assert_eq!(c2.iter().filter(|r| r.colour == "red").count(), reds);
    let capped = c1
        .iter()
        .filter(|r| r.reason == "colour" && (r.colour == "blue" || r.colour == "green"))
        .count();
    assert!(
        capped > 0 && c2.len() + capped == c1.len(),
        "{} {capped} {}",
        c2.len(),
        c1.len()
    );

    // A region filter plans only that region.
    let region = e2e::runtime()
        .block_on(ch.fetch::<Colours>(&format!(
            "SELECT region AS uscc, '' AS colour FROM {}.enterprise_state FINAL \
             WHERE deleted = 0 AND region != '' LIMIT 1",
            ch.database()
        )))
        .expect("a region")
        .remove(0)
        .uscc;
    let out = plan(
        &ns,
        &["--campaign", "c3", "--seed", "7", "--region", &region],
    );
    assert!(out.status.success());
    let c3 = plan_rows(&ch, "c3");
    assert!(!c3.is_empty() && c3.iter().all(|r| r.region == region));
}

#[test]
fn targeted_overrides() {
    let ns = Namespace::new("plan_override");
    let ch = ClickHouse::new(&ns.cfg.clickhouse).expect("client");
    e2e::runtime().block_on(ch.migrate()).expect("migrate");
    // 40 blue enterprises with an annual-report mismatch (row 16): half with 100M CNY of
    // registered capital; 40 in an address cluster of ≥ 10 firms (row 14).
    let mut states = Vec::new();
    let mut values = Vec::new();
    let mut records = Vec::new();
    for i in 0..80 {
        let uscc = format!("9133000000000{i:05}");
        let (mut state, mut v) = pipeline::rows::state_rows(
            &uscc,
            1_700_000_000,
            None,
            None,
            &rules::supervision::Supervision::embedded().pre_credit,
            &rules::catalogue::Catalogue::embedded(),
        );
        state.deleted = 0;
        state.colour = "blue".into();
        v.deleted = 0;
        v.level3 = vec![0.0; 49];
        v.level3[if i < 40 { 15 } else { 13 }] = 100.0;
        if i < 20 {
            records.push(RecordRow {
                feed: "REG".into(),
                event_id: format!("cap-{i}"),
                record_version: 1,
                uscc: uscc.clone(),
                kind: "CAPITAL".into(),
                event_time: 1_600_000_000,
                ingest_time: 1_600_000_000,
                v: 1_600_000_000,
                digest: String::new(),
                body: r#"{"kind":"CAPITAL","registered_capital_fen":10000000000,"paid_in_fen":1}"#
                    .into(),
                status: "accepted".into(),
                version: 1,
            });
        }
        states.push(state);
        values.push(v);
    }
    e2e::runtime()
        .block_on(async {
            ch.insert("enterprise_state", &states).await?;
            ch.insert("indicator_values", &values).await?;
            ch.insert("records", &records).await
        })
        .expect("insert");
    let out = plan(&ns, &["--campaign", "t", "--seed", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = plan_rows(&ch, "t");
    for i in 0..80 {
        let uscc = format!("9133000000000{i:05}");
        let x = u(1, &uscc);
        let row = rows.iter().find(|r| r.uscc == uscc);
        let want = match i {
            0..20 => Some((1.0, "override:annual_report_mismatch_large_capital")),
            20..40 => (x < 0.05).then_some((0.05, "colour")),
            _ => (x < 0.10).then_some((0.10, "override:address_cluster")),
        };
        assert_eq!(
            row.map(|r| (r.probability, r.reason.as_str())),
            want,
            "{uscc} u = {x}"
        );
    }
}
