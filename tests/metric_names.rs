//! Every metric a dashboard panel or an alert rule names is one steward exports: a real
//! `steward run` serves `/metrics`, the test scrapes it and checks each PromQL expression of
//! `dashboards/grafana/dashboards/*.json` and `dashboards/prometheus/rules/*.yml`. It also
//! checks `/livez` and `/readyz`, and that the exported values agree with the run's output
//! files.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use e2e::promql::metric_names;
use e2e::{
    free_port, http_get, parse_scrape, repo_root, steward_bin, sum_of, wait_for, ChildGuard,
    Sample, TempDir,
};

/// Series that Prometheus makes itself rather than scraping them from steward.
const PROMETHEUS_OWN: [&str; 2] = ["up", "ALERTS"];

/// Every Prometheus expression of the dashboards and the alert rules, with where it is.
fn expressions() -> Result<Vec<(String, String)>> {
    let root = repo_root();
    let mut out = Vec::new();
    let dir = root.join("dashboards/grafana/dashboards");
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("parsing {}", path.display()))?;
        for panel in doc["panels"].as_array().into_iter().flatten() {
            if panel["datasource"]["type"] != "prometheus" {
                continue;
            }
            for t in panel["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"]
                    .as_str()
                    .context("a Prometheus target without expr")?;
                let at = format!("{} panel {:?}", path.display(), panel["title"]);
                out.push((at, expr.to_owned()));
            }
        }
    }
    let dir = root.join("dashboards/prometheus/rules");
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let doc: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&path)?)?;
        for group in doc["groups"].as_sequence().into_iter().flatten() {
            for rule in group["rules"].as_sequence().into_iter().flatten() {
                let name = rule["alert"]
                    .as_str()
                    .or(rule["record"].as_str())
                    .unwrap_or("?");
                let expr = rule["expr"].as_str().context("a rule without expr")?;
                out.push((format!("{} rule {name}", path.display()), expr.to_owned()));
            }
        }
    }
    Ok(out)
}

#[test]
fn the_parser_finds_metric_names_only() -> Result<()> {
    let names = metric_names(
        r#"histogram_quantile(0.95, sum by (le, table) (rate(x_bucket{table=~"a|b", q="}"}[5m])))
           / on (table) group_left (version) y offset 5m > 1e-9 and z or absent(up{job="s"}) * Inf"#,
    )?;
    let expected: BTreeSet<String> = ["x_bucket", "y", "z", "up"].map(String::from).into();
    ensure!(names == expected, "{names:?}");
    Ok(())
}

#[test]
fn dashboards_and_rules_name_only_exported_metrics() -> Result<()> {
    let out = TempDir::new("e2e_metric_names")?;
    let port = free_port()?;
    let log = out.0.join("steward.log");
    let mut steward = ChildGuard::spawn(
        "steward",
        std::process::Command::new(steward_bin()?).args([
            "run",
            "--enterprises",
            "200",
            "--output",
            &out.0.join("out").display().to_string(),
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
            "--hold",
            "120",
        ]),
        &log,
    )?;
    let base = format!("http://127.0.0.1:{port}");
    let show_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // Live and ready (no dependency in file mode) while it runs.
    wait_for("steward's /livez", Duration::from_secs(60), || {
        http_get(&format!("{base}/livez"))
            .ok()
            .filter(|(s, _)| *s == 200)
    })
    .with_context(show_log)?;
    let (status, body) = http_get(&format!("{base}/readyz"))?;
    ensure!(status == 200, "/readyz: {status} {body}");

    // Wait until the run has finished and only holds, so the values are final.
    wait_for("the run to finish", Duration::from_secs(300), || {
        show_log().contains("serving metrics on").then_some(())
    })
    .with_context(show_log)?;
    ensure!(steward.running(), "steward exited early:\n{}", show_log());
    let (status, text) = http_get(&format!("{base}/metrics"))?;
    ensure!(status == 200, "/metrics: {status}");
    let samples = parse_scrape(&text)?;
    let exported: BTreeSet<&str> = samples.iter().map(|s| s.name.as_str()).collect();

    let exprs = expressions()?;
    ensure!(exprs.len() >= 20, "only {} expressions found", exprs.len());
    let mut referenced = BTreeSet::new();
    let mut missing = Vec::new();
    for (at, expr) in &exprs {
        let names = metric_names(expr).with_context(|| at.clone())?;
        ensure!(!names.is_empty(), "{at}: no metric in {expr}");
        for n in names {
            if !exported.contains(n.as_str()) && !PROMETHEUS_OWN.contains(&n.as_str()) {
                missing.push(format!("{at}: {n}"));
            }
            referenced.insert(n);
        }
    }
    ensure!(
        missing.is_empty(),
        "not exported by steward:\n{}",
        missing.join("\n")
    );
    // The dashboards and rules cover the spec's metrics.
    for n in [
        "steward_records_read_total",
        "steward_records_rejected_total",
        "steward_consumer_lag_records",
        "steward_colour_change_latency_seconds_bucket",
        "steward_enterprises",
        "steward_colour_changes_total",
        "steward_dead_letters_total",
        "steward_clickhouse_write_errors_total",
        "steward_clickhouse_write_duration_seconds_bucket",
        "steward_checkpoint_age_seconds",
    ] {
        ensure!(referenced.contains(n), "no dashboard or rule uses {n}");
    }
    // The process's own figures, beside the pipeline's (issue 19 item 6).
    for n in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        ensure!(exported.contains(n), "{n} is not exported");
    }
    let rss = samples
        .iter()
        .find(|s| s.name == "process_resident_memory_bytes")
        .map_or(0.0, |s| s.value);
    ensure!(rss > 1e6, "resident memory {rss} bytes");
    check_values(&samples, &out.0.join("out"))?;
    Ok(())
}

fn lines(path: &std::path::Path) -> Result<f64> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .lines()
        .count() as f64)
}

/// The exported values agree with the files the run wrote.
fn check_values(samples: &[Sample], out: &std::path::Path) -> Result<()> {
    let no_labels: &[(&str, &str)] = &[];
    let states = lines(&out.join("state.jsonl"))?;
    ensure!(states == 200.0, "{states} states");
    ensure!(sum_of(samples, "steward_enterprises", no_labels) == states);
    let changes = lines(&out.join("colour_changes.jsonl"))?;
    ensure!(sum_of(samples, "steward_colour_changes_total", no_labels) == changes);
    ensure!(
        sum_of(
            samples,
            "steward_colour_change_latency_seconds_count",
            no_labels
        ) == changes,
        "one latency observation per colour change"
    );
    ensure!(
        sum_of(
            samples,
            "steward_colour_changes_total",
            &[("direction", "first")]
        ) == states,
        "every enterprise's first colour is a change"
    );
    let alerts = lines(&out.join("alerts.jsonl"))?;
    ensure!(sum_of(samples, "steward_alerts_total", no_labels) == alerts);
    let dead = lines(&out.join("dead_letters.jsonl"))?;
    ensure!(sum_of(samples, "steward_dead_letters_total", no_labels) == dead);
    let read = sum_of(samples, "steward_records_read_total", no_labels);
    let applied = sum_of(samples, "steward_records_applied_total", no_labels);
    let duplicate = sum_of(samples, "steward_records_duplicate_total", no_labels);
    let rejected = sum_of(samples, "steward_records_rejected_total", no_labels);
    let withdrawn = sum_of(samples, "steward_records_withdrawn_total", no_labels);
    ensure!(read > 10_000.0 && applied > 0.0 && duplicate > 0.0 && rejected > 0.0);
    // D52: every record read ends applied, duplicate or rejected; one applied when admitted
    // and found a duplicate or dead-lettered later is withdrawn from applied.
    ensure!(
        applied - withdrawn + duplicate + rejected == read,
        "read {read} ≠ applied {applied} − withdrawn {withdrawn} + duplicate {duplicate} + \
         rejected {rejected}"
    );
    ensure!(sum_of(samples, "steward_watermark_timestamp_seconds", no_labels) > 1.6e9);
    ensure!(sum_of(samples, "steward_build_info", no_labels) == 1.0);
    Ok(())
}
