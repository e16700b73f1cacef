//! The Grafana dashboards read right (issue 19 item 6): stat panels have thresholds that
//! mean something, rates are in records per second, the two dashboards link to each
//! other, and the supervision dashboard filters by `$region` and `$industry`. That the
//! queries run is `metric_names.rs` (Prometheus) and `clickhouse_panels.rs` (ClickHouse).

use anyhow::{ensure, Context, Result};
use e2e::repo_root;
use serde_json::Value;

fn dashboard(name: &str) -> Result<Value> {
    let path = repo_root().join(format!("dashboards/grafana/dashboards/{name}.json"));
    Ok(serde_json::from_str(&std::fs::read_to_string(&path)?)?)
}

fn panels(d: &Value) -> impl Iterator<Item = &Value> {
    d["panels"].as_array().into_iter().flatten()
}

#[test]
fn stat_panels_have_thresholds_and_rates_read_as_records() -> Result<()> {
    let overview = dashboard("overview")?;
    let mut stats = 0;
    for p in panels(&overview) {
        let defaults = &p["fieldConfig"]["defaults"];
        let unit = defaults["unit"].as_str().unwrap_or_default();
        ensure!(
            unit != "reqps",
            "{}: steward counts records, not requests",
            p["title"]
        );
        if p["type"] == "stat" {
            let steps = defaults["thresholds"]["steps"]
                .as_array()
                .map_or(0, Vec::len);
            ensure!(steps >= 2, "stat panel {} has no threshold", p["title"]);
            stats += 1;
        }
    }
    ensure!(stats >= 2, "{stats} stat panels");
    let step = |title: &str, i: usize| -> Result<(String, Value)> {
        let p = panels(&overview)
            .find(|p| p["title"] == title)
            .with_context(|| format!("no panel {title}"))?;
        let s = &p["fieldConfig"]["defaults"]["thresholds"]["steps"][i];
        Ok((
            s["color"].as_str().unwrap_or_default().to_owned(),
            s["value"].clone(),
        ))
    };
    // One new red is already red; a dependency at 0 is red, at 1 green.
    ensure!(step("New reds (last hour)", 1)? == ("red".into(), 1.into()));
    ensure!(step("Dependencies up", 0)?.0 == "red");
    ensure!(step("Dependencies up", 1)? == ("green".into(), 1.into()));
    Ok(())
}

#[test]
fn the_dashboards_link_to_each_other() -> Result<()> {
    for (from, to) in [("overview", "supervision"), ("supervision", "overview")] {
        let d = dashboard(from)?;
        let target = format!("/d/steward-{to}");
        ensure!(
            d["links"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|l| l["url"] == target.as_str() && l["keepTime"] == true),
            "{from} does not link to {target}"
        );
        ensure!(dashboard(to)?["uid"] == format!("steward-{to}").as_str());
    }
    Ok(())
}

#[test]
fn supervision_panels_filter_by_region_and_industry() -> Result<()> {
    let d = dashboard("supervision")?;
    for name in ["region", "industry"] {
        ensure!(
            d["templating"]["list"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|v| v["name"] == name && v["includeAll"] == true),
            "no ${name} variable with All"
        );
    }
    let mut filtered = 0;
    for p in panels(&d) {
        let query = p["targets"][0]["query"].as_str().unwrap_or_default();
        if query.contains("v_plan_coverage") {
            continue; // campaigns choose their own region and industry
        }
        ensure!(
            query.contains("region = '$region'") && query.contains("industry = '$industry'"),
            "panel {} ignores $region or $industry",
            p["title"]
        );
        filtered += 1;
    }
    ensure!(filtered >= 8, "{filtered} filtered panels");
    let per_day = panels(&d)
        .find(|p| p["title"] == "Worsened per day by new colour")
        .context("no worsened-per-day panel")?;
    let q = per_day["targets"][0]["query"].as_str().unwrap_or_default();
    // Shanghai midnight: UTC+8, no daylight saving.
    ensure!(
        q.contains("intDiv(toUInt32(as_of) + 28800, 86400) * 86400 - 28800"),
        "{q}"
    );
    Ok(())
}
