//! `steward report` against real ClickHouse: the JSON report of a generated enterprise holds
//! its whole colour history, every record and a digest that verifies; a period narrows it;
//! the HTML report, rendered by headless Chromium, shows the enterprise, the chart, one row
//! per colour change and per record, the explanation and the same digest.

use std::collections::BTreeSet;
use std::process::Command;

use clickhouse::Row;
use connectors::clickhouse::ClickHouse;
use e2e::{load_generated, steward_bin, Namespace, TempDir};
use rules::generate::GenConfig;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

#[derive(Debug, Row, Deserialize)]
struct Most {
    uscc: String,
    n: u64,
}

#[derive(Debug, Row, Deserialize)]
struct Key {
    feed: String,
    event_id: String,
}

fn report(ns: &Namespace, args: &[&str]) -> Vec<u8> {
    let out = Command::new(steward_bin().expect("steward binary"))
        .args(["report", "--config"])
        .arg(&ns.config)
        .args(args)
        .output()
        .expect("run steward report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[test]
fn report_json_and_html() {
    let ns = Namespace::new("report");
    let gen = GenConfig {
        enterprises: 150,
        seed: 5,
        ..GenConfig::default()
    };
    load_generated(&ns, &gen).expect("load generated data");
    let ch = ClickHouse::new(&ns.cfg.clickhouse).expect("client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let db = ch.database().to_owned();
    let most: Most = rt
        .block_on(ch.fetch::<Most>(&format!(
            "SELECT uscc, count() AS n FROM {db}.colour_history GROUP BY uscc \
             ORDER BY n DESC, uscc LIMIT 1"
        )))
        .expect("colour history")
        .remove(0);
    assert!(most.n >= 2, "{most:?}");
    let uscc = most.uscc.as_str();
    let keys: BTreeSet<(String, String)> = rt
        .block_on(ch.fetch::<Key>(&format!(
            "SELECT feed, event_id FROM {db}.records FINAL WHERE uscc = '{uscc}'"
        )))
        .expect("records")
        .into_iter()
        .map(|k| (k.feed, k.event_id))
        .collect();

    // JSON: everything, and a digest over the canonical content.
    let r: Value = serde_json::from_slice(&report(&ns, &["--uscc", uscc, "--format", "json"]))
        .expect("json report");
    assert_eq!(r["uscc"], uscc);
    assert_eq!(
        r["history"].as_array().expect("history").len() as u64,
        most.n
    );
    let recs = r["records"].as_array().expect("records");
    let got: BTreeSet<(String, String)> = recs
        .iter()
        .map(|x| {
            (
                x["feed"].as_str().unwrap().to_owned(),
                x["event_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(got, keys);
    assert!(recs.iter().all(|x| x["issuing_body"].is_string()));
    assert!(r["current"]["colour"].is_string());
    assert!(r["current"]["explanation"].is_array());
    let mut content = r.clone();
    let digest = content.as_object_mut().unwrap().remove("digest").unwrap();
    assert_eq!(
        digest.as_str().unwrap(),
        hex::encode(Sha256::digest(content.to_string().as_bytes()))
    );
    // The same report again has the same digest.
    let again: Value = serde_json::from_slice(&report(&ns, &["--uscc", uscc, "--format", "json"]))
        .expect("json report");
    assert_eq!(again, r);

    // A period: only the changes and records in it.
    let first = r["history"][0]["as_of"].as_str().unwrap()[..10].to_owned();
    let narrow: Value = serde_json::from_slice(&report(
        &ns,
        &[
            "--uscc", uscc, "--format", "json", "--from", &first, "--to", &first,
        ],
    ))
    .expect("json report");
    let n = narrow["history"].as_array().unwrap().len();
    assert!(n >= 1 && (n as u64) < most.n, "{n} of {}", most.n);
    assert!(narrow["records"].as_array().unwrap().len() < recs.len());
    assert_ne!(narrow["digest"], r["digest"]);

    // HTML, rendered by headless Chromium.
    let dir = TempDir::new("report_html").expect("temp dir");
    let page = dir.0.join("report.html");
    let out = page.to_str().unwrap();
    report(&ns, &["--uscc", uscc, "--format", "html", "--out", out]);
    // A fresh profile, and no background connections (the machine has no network).
    let profile = dir.0.join("chromium-profile");
    let dom = Command::new("chromium")
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{out}"))
        .output()
        .expect("chromium, which `scripts/services.sh install` installs");
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains(&format!("<span id=\"uscc\">{uscc}</span>")),
        "{dom}"
    );
    assert!(dom.contains(&format!(
        "<code id=\"digest\">{}</code>",
        digest.as_str().unwrap()
    )));
    assert!(dom.contains("<svg") && dom.contains("<circle"), "no chart");
    assert_eq!(count(&dom, "<tr class=\"change\">") as u64, most.n);
    assert_eq!(count(&dom, "<tr class=\"record\">"), recs.len());
    assert!(dom.contains(&format!(
        "<strong id=\"colour\">{}</strong>",
        r["current"]["colour"].as_str().unwrap()
    )));
    assert_eq!(
        count(&dom, "<table id=\"explanation\">"),
        1,
        "explanation table"
    );
}
