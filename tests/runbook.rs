//! `docs/runbook.md` and the alert rules stay in step: every alert of
//! `dashboards/prometheus/rules/` has a `runbook_url` to its own section of the runbook, and
//! every section of the runbook is an alert's.

use std::collections::BTreeSet;

use anyhow::{ensure, Context, Result};
use e2e::repo_root;

#[test]
fn every_alert_has_a_runbook_section_and_every_section_an_alert() -> Result<()> {
    let path = repo_root().join("dashboards/prometheus/rules/steward.yml");
    let rules: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&path)?)?;
    let runbook = std::fs::read_to_string(repo_root().join("docs/runbook.md"))?;
    let sections: BTreeSet<&str> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .collect();
    let mut alerts = BTreeSet::new();
    for group in rules["groups"].as_sequence().context("groups")? {
        for rule in group["rules"].as_sequence().context("rules")? {
            let Some(name) = rule["alert"].as_str() else {
                continue;
            };
            alerts.insert(name);
            let url = rule["annotations"]["runbook_url"].as_str();
            // The section's anchor as Markdown renderers make it: the heading, lower-case.
            let want = format!("docs/runbook.md#{}", name.to_lowercase());
            ensure!(
                url == Some(want.as_str()),
                "{name}: runbook_url {url:?}, want {want}"
            );
        }
    }
    ensure!(
        alerts == sections,
        "alerts {alerts:?} and runbook sections {sections:?} differ"
    );
    Ok(())
}
