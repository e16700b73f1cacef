//! The alert rules are valid (`promtool check rules`) and behave as their unit tests say
//! (`promtool test rules`); the docker deployment's Prometheus and Alertmanager configs are
//! valid (`promtool check config`, `amtool check-config`). The tools come with the packages
//! that `scripts/services.sh install` installs; `PROMTOOL` and `AMTOOL` override their paths.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use e2e::repo_root;

fn promtool(args: &[&str], files: &[PathBuf]) -> Result<String> {
    tool("PROMTOOL", "promtool", args, files)
}

fn tool(env: &str, name: &str, args: &[&str], files: &[PathBuf]) -> Result<String> {
    let bin = std::env::var(env).unwrap_or_else(|_| name.to_owned());
    let out = Command::new(&bin)
        .current_dir(repo_root())
        .args(args)
        .args(files)
        .output()
        .with_context(|| {
            format!("running {bin} (install Prometheus: scripts/services.sh install)")
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.success(),
        "{name} {} failed ({}):\n{text}",
        args.join(" "),
        out.status
    );
    Ok(text)
}

fn yml_files(dir: &str) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join(dir))
        .with_context(|| format!("reading {dir}"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "yml"));
    files.sort();
    ensure!(!files.is_empty(), "no .yml files in {dir}");
    Ok(files)
}

#[test]
fn alert_rules_pass_promtool_check() -> Result<()> {
    let text = promtool(
        &["check", "rules"],
        &yml_files("dashboards/prometheus/rules")?,
    )?;
    ensure!(text.contains("SUCCESS"), "{text}");
    Ok(())
}

#[test]
fn alert_rules_pass_their_promtool_unit_tests() -> Result<()> {
    let text = promtool(
        &["test", "rules"],
        &yml_files("dashboards/prometheus/tests")?,
    )?;
    ensure!(text.contains("SUCCESS"), "{text}");
    Ok(())
}

/// Every alerting rule has a unit test that expects it to fire, and one that expects it
/// to stay quiet.
#[test]
fn every_alert_rule_has_firing_and_quiet_unit_tests() -> Result<()> {
    let mut alerts = Vec::new();
    for f in yml_files("dashboards/prometheus/rules")? {
        let doc: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&f)?)?;
        for group in doc["groups"].as_sequence().context("groups")? {
            for rule in group["rules"].as_sequence().context("rules")? {
                if let Some(name) = rule["alert"].as_str() {
                    alerts.push(name.to_owned());
                }
            }
        }
    }
    ensure!(alerts.len() >= 5, "alert rules: {alerts:?}");
    let mut firing = std::collections::BTreeSet::new();
    let mut quiet = std::collections::BTreeSet::new();
    for f in yml_files("dashboards/prometheus/tests")? {
        let doc: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&f)?)?;
        for test in doc["tests"].as_sequence().context("tests")? {
            for case in test["alert_rule_test"].as_sequence().into_iter().flatten() {
                let name = case["alertname"].as_str().context("alertname")?.to_owned();
                let expected = case["exp_alerts"].as_sequence().map_or(0, Vec::len);
                if expected > 0 {
                    firing.insert(name);
                } else {
                    quiet.insert(name);
                }
            }
        }
    }
    for a in &alerts {
        ensure!(firing.contains(a), "no unit test expects {a} to fire");
        ensure!(quiet.contains(a), "no unit test expects {a} to stay quiet");
    }
    Ok(())
}

#[test]
fn docker_prometheus_and_alertmanager_configs_are_valid() -> Result<()> {
    let docker = repo_root().join("docker");
    let text = promtool(&["check", "config"], &[docker.join("prometheus.yml")])?;
    ensure!(text.contains("SUCCESS"), "{text}");
    let text = tool(
        "AMTOOL",
        "amtool",
        &["check-config"],
        &[docker.join("alertmanager.yml")],
    )?;
    ensure!(text.contains("SUCCESS"), "{text}");
    Ok(())
}
