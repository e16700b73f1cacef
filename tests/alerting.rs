//! Alerting end to end: a real Prometheus scrapes a running `steward run` and evaluates
//! `dashboards/prometheus/rules/`, and a real Alertmanager delivers the firing
//! `StewardNewRedEnterprises` alert to a webhook receiver inside this test.
//!
//! The test starts its own Prometheus and Alertmanager (the binaries `scripts/services.sh`
//! installs; `PROMETHEUS` and `ALERTMANAGER` override them) on free loopback ports, with
//! 1-second intervals and the rules of this checkout. So it does not depend on which
//! checkout the shared services were started from, and shares no port with other tests.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use e2e::{free_port, http_get, repo_root, steward_bin, wait_for, ChildGuard, TempDir};
use serde_json::Value;

const ALERT: &str = "StewardNewRedEnterprises";

/// The first of `names` found on `PATH`, or the value of `env`.
fn binary(env: &str, names: &[&str]) -> Result<String> {
    if let Ok(p) = std::env::var(env) {
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for n in names {
            if dir.join(n).is_file() {
                return Ok(dir.join(n).display().to_string());
            }
        }
    }
    bail!("none of {names:?} on PATH (install them: scripts/services.sh install), nor {env} set")
}

/// Receives Alertmanager's webhook posts on a thread and passes their JSON bodies on.
fn webhook(server: tiny_http::Server, tx: mpsc::Sender<Value>) {
    for mut rq in server.incoming_requests() {
        let mut body = String::new();
        let parsed = std::io::Read::read_to_string(rq.as_reader(), &mut body)
            .ok()
            .and_then(|_| serde_json::from_str(&body).ok());
        let ok = rq.url() == "/alerts" && *rq.method() == tiny_http::Method::Post;
        let _ = rq.respond(tiny_http::Response::empty(if ok { 200 } else { 404 }));
        if let (true, Some(v)) = (ok, parsed) {
            if tx.send(v).is_err() {
                return;
            }
        }
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// A Prometheus API query's result list.
fn prom_api(base: &str, path: &str) -> Result<Value> {
    let (status, body) = http_get(&format!("{base}{path}"))?;
    ensure!(status == 200, "{path}: {status} {body}");
    let v: Value = serde_json::from_str(&body)?;
    ensure!(v["status"] == "success", "{path}: {body}");
    Ok(v["data"].clone())
}

/// The state (`inactive`, `pending`, `firing`) of the alerting rule `name`.
fn rule_state(prom: &str, name: &str) -> Result<String> {
    let data = prom_api(prom, "/api/v1/rules?type=alert")?;
    for group in data["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            if rule["name"] == name {
                return Ok(rule["state"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    bail!("Prometheus has no rule {name}: {data}")
}

#[test]
fn new_red_enterprises_alert_reaches_the_webhook() -> Result<()> {
    let dir = TempDir::new("e2e_alerting")?;
    let d = &dir.0;
    let (steward_port, prom_port, am_port) = (free_port()?, free_port()?, free_port()?);

    let hook = tiny_http::Server::http("127.0.0.1:0").map_err(|e| anyhow::anyhow!("{e}"))?;
    let hook_port = hook
        .server_addr()
        .to_ip()
        .context("webhook address")?
        .port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || webhook(hook, tx));

    write(
        &d.join("alertmanager.yml"),
        &format!(
            "route:\n  receiver: test\n  group_by: [alertname]\n  group_wait: 1s\n  \
             group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: test\n    \
             webhook_configs:\n      - url: http://127.0.0.1:{hook_port}/alerts\n"
        ),
    )?;
    let rules = repo_root().join("dashboards/prometheus/rules");
    write(
        &d.join("prometheus.yml"),
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nalerting:\n  \
             alertmanagers:\n    - static_configs:\n        - targets: [\"127.0.0.1:{am_port}\"]\n\
             rule_files:\n  - \"{}/*.yml\"\nscrape_configs:\n  - job_name: steward\n    \
             static_configs:\n      - targets: [\"127.0.0.1:{steward_port}\"]\n",
            rules.display()
        ),
    )?;

    let am = format!("http://127.0.0.1:{am_port}");
    let prom = format!("http://127.0.0.1:{prom_port}");
    let _alertmanager = ChildGuard::spawn(
        "alertmanager",
        std::process::Command::new(binary(
            "ALERTMANAGER",
            &["prometheus-alertmanager", "alertmanager"],
        )?)
        .arg(format!(
            "--config.file={}",
            d.join("alertmanager.yml").display()
        ))
        .arg(format!("--storage.path={}", d.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
        .arg("--cluster.listen-address="),
        &d.join("alertmanager.log"),
    )?;
    let _prometheus = ChildGuard::spawn(
        "prometheus",
        std::process::Command::new(binary("PROMETHEUS", &["prometheus"])?)
            .arg(format!(
                "--config.file={}",
                d.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                d.join("prom-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}")),
        &d.join("prometheus.log"),
    )?;
    let log_of = |name: &str| std::fs::read_to_string(d.join(name)).unwrap_or_default();
    for (name, base) in [("alertmanager", &am), ("prometheus", &prom)] {
        wait_for(name, Duration::from_secs(60), || {
            http_get(&format!("{base}/-/ready"))
                .ok()
                .filter(|(s, _)| *s == 200)
        })
        .with_context(|| log_of(&format!("{name}.log")))?;
    }
    ensure!(
        rule_state(&prom, ALERT)? == "inactive",
        "{ALERT} fires before steward runs"
    );

    // `increase` needs a sample before the reds are counted: steward exports its counters at
    // zero from the start, so wait until Prometheus scrapes the target (down, for now; its
    // first scrape can come seconds after start-up) and then start a run that takes more
    // than a few 1 s scrapes (ingest alone does, at this size).
    wait_for(
        "a scrape of the steward target",
        Duration::from_secs(60),
        || {
            prom_api(&prom, "/api/v1/query?query=up%7Bjob%3D%22steward%22%7D")
                .ok()
                .filter(|r| r["result"][0]["value"][1] == "0")
        },
    )
    .with_context(|| log_of("prometheus.log"))?;
    let mut steward = ChildGuard::spawn(
        "steward",
        std::process::Command::new(steward_bin()?).args([
            "run",
            "--enterprises",
            "2500",
            "--output",
            &d.join("out").display().to_string(),
            "--metrics-addr",
            &format!("127.0.0.1:{steward_port}"),
            "--hold",
            "300",
        ]),
        &d.join("steward.log"),
    )?;

    // Alertmanager posts the alert to the webhook.
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let alert = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        ensure!(
            !left.is_zero(),
            "no {ALERT} at the webhook within 180 s; rule state {:?}\nsteward:\n{}\nprometheus:\n{}",
            rule_state(&prom, ALERT),
            log_of("steward.log"),
            log_of("prometheus.log")
        );
        ensure!(
            steward.running(),
            "steward exited:\n{}",
            log_of("steward.log")
        );
        let Ok(post) = rx.recv_timeout(left.min(Duration::from_secs(1))) else {
            continue;
        };
        let found = post["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["labels"]["alertname"] == ALERT && a["status"] == "firing")
            .cloned();
        if let Some(a) = found {
            ensure!(post["receiver"] == "test", "{post}");
            break a;
        }
    };
    let labels = &alert["labels"];
    ensure!(labels["severity"] == "critical", "{alert}");
    ensure!(labels["team"] == "supervision", "{alert}");
    ensure!(
        alert["annotations"]["summary"] == "New red enterprises",
        "{alert}"
    );
    let description = alert["annotations"]["description"]
        .as_str()
        .unwrap_or_default();
    ensure!(
        description.starts_with("About ") && description.contains("turned red"),
        "{alert}"
    );

    // Prometheus shows the rule firing, the scrape up, and the pipeline-down rule quiet.
    ensure!(rule_state(&prom, ALERT)? == "firing");
    ensure!(rule_state(&prom, "StewardPipelineDown")? == "inactive");
    let up = prom_api(&prom, "/api/v1/query?query=up%7Bjob%3D%22steward%22%7D")?;
    ensure!(up["result"][0]["value"][1] == "1", "up: {up}");
    let reds = prom_api(
        &prom,
        "/api/v1/query?query=sum(steward_colour_changes_total%7Bto%3D%22red%22%7D)",
    )?;
    let reds: f64 = reds["result"][0]["value"][1]
        .as_str()
        .context("no red changes scraped")?
        .parse()?;
    ensure!(reds > 0.0, "no red changes scraped");
    Ok(())
}
