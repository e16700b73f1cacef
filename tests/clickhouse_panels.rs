//! Every ClickHouse SQL panel of the supervision dashboard and every analyst example
//! (`docs/analyst-queries.sql`) runs and returns rows, on the Debian ClickHouse server (18.16)
//! and on a current ClickHouse (26.x, in process through chdb): the schema
//! (`connectors/migrations`) is created in a database of its own, filled from a generated
//! `steward run` (state, colour changes, alerts) plus an inspection campaign and a few
//! records with their statuses, and each panel's query is run with the Grafana variables
//! and the ClickHouse plugin's macros expanded as the plugin expands them (issue 19, D57).
//! On both, `docs/clickhouse.md` documents every column of every table and view, and every
//! query of `steward web` runs.

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, ensure, Context, Result};
use connectors::metrics::direction;
use e2e::sql::{migrate_on, Chdb, Server, Sql};
use e2e::{clickhouse_http, repo_root, steward_run, unique_name};
use rules::score::Colour;
use serde_json::{json, Value};

/// Grafana's template variable for the database, and the plugin's macros, expanded for a
/// time range `[from, to]` (Unix seconds) and a group-by interval in seconds.
struct Expansion<'a> {
    db: &'a str,
    /// The `$region` and `$industry` variables: a code, or `*` for All.
    region: &'a str,
    industry: &'a str,
    from: i64,
    to: i64,
    interval: i64,
}

impl Expansion<'_> {
    fn expand(&self, sql: &str, target: &Value) -> Result<String> {
        let (from, to, interval) = (self.from, self.to, self.interval);
        // $timeFilterByColumn(col) first: it starts like $timeFilter.
        let mut out = String::new();
        let mut rest = sql;
        while let Some(i) = rest.find("$timeFilterByColumn(") {
            out.push_str(&rest[..i]);
            let after = &rest[i + "$timeFilterByColumn(".len()..];
            let end = after.find(')').context("unclosed $timeFilterByColumn(")?;
            let col = after[..end].trim();
            out.push_str(&format!(
                "{col} >= toDateTime({from}) AND {col} <= toDateTime({to})"
            ));
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        let dt = target["dateTimeColDataType"].as_str().unwrap_or_default();
        if out.contains("$timeSeries") || out.contains("$timeFilter") {
            ensure!(!dt.is_empty(), "a time macro without dateTimeColDataType");
        }
        let database = target["database"].as_str().unwrap_or_default();
        let table = target["table"].as_str().unwrap_or_default();
        let mut out = out
            .replace(
                "$timeSeries",
                &format!("(intDiv(toUInt32({dt}), {interval}) * {interval}) * 1000"),
            )
            .replace(
                "$timeFilter",
                &format!("{dt} >= toDateTime({from}) AND {dt} <= toDateTime({to})"),
            )
            .replace("$table", &format!("{database}.{table}"));
        out = out
            .replace("$database", self.db)
            .replace("$region", self.region)
            .replace("$industry", self.industry)
            .replace("$interval", &interval.to_string())
            .replace("$from", &from.to_string())
            .replace("$to", &to.to_string());
        ensure!(!out.contains('$'), "unexpanded macro or variable in {out}");
        Ok(out)
    }
}

fn read_jsonl(path: &std::path::Path) -> Result<Vec<Value>> {
    std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .lines()
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

fn insert(on: &mut dyn Sql, db: &str, table: &str, rows: &[Value]) -> Result<()> {
    ensure!(!rows.is_empty(), "no rows for {table}");
    let body: String = rows.iter().map(|r| format!("{r}\n")).collect();
    on.insert_json(&format!("{db}.{table}"), &body)
}

/// `2024-12-31T12:38:47Z` → Unix seconds.
fn unix(v: &Value) -> Result<i64> {
    match v {
        Value::Number(n) => n.as_i64().context("time"),
        Value::String(s) => Ok(rules::time::parse_rfc3339(s).context("time")?),
        _ => bail!("not a time: {v}"),
    }
}

fn reasons(v: &Value) -> (Vec<Value>, Vec<Value>) {
    let rs = v["reasons"].as_array().cloned().unwrap_or_default();
    (
        rs.iter().map(|r| r["indicator"].clone()).collect(),
        rs.iter().map(|r| r["contribution"].clone()).collect(),
    )
}

/// `state.jsonl`'s named values (`{"A": 0.9, …}`) in the catalogue's order, as the table keeps
/// them.
fn in_order<'a>(named: &Value, codes: impl Iterator<Item = &'a String>) -> Vec<Value> {
    codes.map(|c| named[c.as_str()].clone()).collect()
}

/// Fills the tables the panels read from the run's output in `out`; returns the earliest
/// and latest logical times.
fn load(on: &mut dyn Sql, db: &str, out: &std::path::Path) -> Result<(i64, i64)> {
    let cat = rules::catalogue::Catalogue::embedded();
    let states = read_jsonl(&out.join("state.jsonl"))?;
    let mut place: HashMap<String, (Value, Value)> = HashMap::new();
    let mut colours: BTreeMap<String, u64> = BTreeMap::new();
    let mut rows = Vec::new();
    let mut latest = 0;
    for s in &states {
        let as_of = unix(&s["as_of"])?;
        latest = latest.max(as_of);
        let uscc = s["uscc"].as_str().context("uscc")?.to_owned();
        place.insert(uscc.clone(), (s["region"].clone(), s["industry"].clone()));
        *colours
            .entry(s["colour"].as_str().context("colour")?.to_owned())
            .or_default() += 1;
        let (ind, con) = reasons(s);
        rows.push(json!({
            "uscc": uscc, "as_of": as_of.to_string(), "colour": s["colour"],
            "score_colour": s["score_colour"], "s": s["s"], "p": s["p"], "m": s["m"],
            "q": s["q"], "r": s["r"], "triggers": s["triggers"],
            "level1": in_order(&s["level1"], cat.level1.iter().map(|l| &l.code)),
            "level2": in_order(&s["level2"], cat.level2.iter().map(|l| &l.code)),
            "reason_indicators": ind, "reason_contributions": con,
            "reasons": s["reasons"].to_string(), "region": s["region"],
            "industry": s["industry"], "pre_credit": "", "pre_credit_line": null,
            "rules_version": s["rules_version"], "model_version": "", "deleted": 0,
            "version": as_of,
        }));
    }
    insert(on, db, "enterprise_state", &rows)?;

    let mut rows = Vec::new();
    let mut earliest = i64::MAX;
    for c in read_jsonl(&out.join("colour_changes.jsonl"))? {
        let as_of = unix(&c["as_of"])?;
        earliest = earliest.min(as_of);
        let uscc = c["uscc"].as_str().context("uscc")?;
        let (region, industry) = place.get(uscc).cloned().context("change of no state")?;
        let from: Option<Colour> = serde_json::from_value(c["from"].clone())?;
        let to: Colour = serde_json::from_value(c["to"].clone())?;
        let (ind, con) = reasons(&c);
        rows.push(json!({
            "change_id": c["change_id"], "uscc": uscc, "as_of": as_of.to_string(),
            "from_colour": from.map_or("", Colour::as_str), "to_colour": to.as_str(),
            "direction": direction(from, to), "score": c["score"],
            "score_colour": c["score_colour"], "triggers": c["triggers"],
            "reason_indicators": ind, "reason_contributions": con,
            "reasons": c["reasons"].to_string(), "region": region, "industry": industry,
            "model_version": c["model_version"].as_str().unwrap_or_default(),
            "rules_version": c["rules_version"],
        }));
    }
    insert(on, db, "colour_history", &rows)?;

    let mut rows = Vec::new();
    for a in read_jsonl(&out.join("alerts.jsonl"))? {
        let uscc = a["uscc"].as_str().context("uscc")?;
        let (region, industry) = place.get(uscc).cloned().context("alert of no state")?;
        rows.push(json!({
            "alert_id": a["alert_id"], "uscc": uscc, "rule": a["rule"],
            "severity": a["severity"], "state": a["state"],
            "as_of": unix(&a["as_of"])?.to_string(), "detail": a["detail"],
            "region": region, "industry": industry,
        }));
    }
    insert(on, db, "alerts", &rows)?;

    // One inspection campaign at the latest time: every red, half the yellows, a tenth of
    // the greens, a twentieth of the blues.
    let rows: Vec<Value> = colours
        .iter()
        .map(|(colour, &population)| {
            let share = match colour.as_str() {
                "red" => 1.0,
                "yellow" => 0.5,
                "green" => 0.1,
                "blue" => 0.05,
                _ => 0.0,
            };
            json!({
                "campaign_id": "e2e-campaign-1", "seed": 1, "snapshot": latest.to_string(),
                "colour": colour, "population": population,
                "selected": (population as f64 * share).ceil() as u64,
            })
        })
        .collect();
    insert(on, db, "inspection_campaigns", &rows)?;
    Ok((earliest, latest))
}

/// Hand-made rows that the generated run does not give: three records (one whose status
/// changed later, one still active, one superseded when it was written) and an alert at
/// 17:30 UTC, which is 01:30 the next day in Asia/Shanghai.
fn load_records(on: &mut dyn Sql, db: &str, uscc: &str) -> Result<()> {
    let record = |id: &str, status: &str| {
        json!({
            "feed": "PEN", "event_id": id, "record_version": 1, "uscc": uscc,
            "kind": "DECIDED", "event_time": "1704067200", "ingest_time": "1704067200",
            "v": "1704067200", "digest": format!("digest-{id}"), "body": "{}",
            "status": status, "version": 1,
        })
    };
    let rows = [
        record("e2e-changed", "active"),
        record("e2e-active", "active"),
        record("e2e-superseded", "superseded"),
    ];
    insert(on, db, "records", &rows)?;
    let status = json!({
        "feed": "PEN", "event_id": "e2e-changed", "record_version": 1,
        "digest": "digest-e2e-changed", "uscc": uscc, "status": "revoked",
        "as_of": "1706745600", "version": 1706745600,
    });
    insert(on, db, "record_status", &[status])?;
    let alert = json!({
        "alert_id": "e2e-tz-probe", "uscc": uscc, "rule": "e2e_tz_probe", "severity": "info",
        "state": "firing", "as_of": "1704130200", "detail": "", "region": "", "industry": "",
    });
    insert(on, db, "alerts", &[alert])
}

/// Runs `sql` with `FORMAT JSON` and returns its rows.
fn rows(on: &mut dyn Sql, sql: &str) -> Result<Vec<Value>> {
    let answer: Value = serde_json::from_str(&on.run(&format!("{sql}\nFORMAT JSON"))?)?;
    Ok(answer["data"].as_array().cloned().unwrap_or_default())
}

/// The schema on `on`, filled, and every panel query and analyst example run on it.
/// The columns `docs/clickhouse.md` documents, by table or view: each `### \`name\``
/// section's first table cells, and the names listed after "Columns:".
fn documented_columns() -> Result<BTreeMap<String, Vec<String>>> {
    let text = std::fs::read_to_string(repo_root().join("docs/clickhouse.md"))?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let ticked =
        |s: &str| -> Vec<String> { s.split('`').skip(1).step_by(2).map(str::to_owned).collect() };
    for section in text.split("\n### `").skip(1) {
        let (name, body) = section.split_once('`').context("section name")?;
        let mut columns = Vec::new();
        for paragraph in body.split("\n\n") {
            if let Some((_, listed)) = paragraph.split_once("Columns:") {
                columns.extend(ticked(listed.split("\n|").next().unwrap_or_default()));
            }
            for row in paragraph.lines().filter(|l| l.starts_with("| `")) {
                let cell = row.split('|').nth(1).unwrap_or_default();
                columns.extend(ticked(cell));
            }
        }
        columns.sort();
        out.insert(name.to_owned(), columns);
    }
    Ok(out)
}

/// `docs/clickhouse.md` names every column of every table and view of `db`, and nothing
/// else.
fn column_dictionary_is_complete(on: &mut dyn Sql, db: &str) -> Result<()> {
    let mut actual: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in rows(
        on,
        &format!("SELECT table, name FROM system.columns WHERE database = '{db}'"),
    )? {
        let (t, n) = (c["table"].as_str(), c["name"].as_str());
        let (t, n) = (t.context("table")?, n.context("name")?);
        actual.entry(t.to_owned()).or_default().push(n.to_owned());
    }
    for columns in actual.values_mut() {
        columns.sort();
    }
    let documented = documented_columns()?;
    ensure!(
        documented == actual,
        "docs/clickhouse.md and the schema differ:\n documented {documented:?}\n actual {actual:?}"
    );
    Ok(())
}

fn panels_and_examples_return_rows(on: &mut dyn Sql, db: &str) -> Result<()> {
    let server = migrate_on(on, db)?;
    column_dictionary_is_complete(on, db)?;
    let out = steward_run(200, "e2e_panels_run")?;
    let (earliest, latest) = load(on, db, &out.0)?;
    let some: Value = rows(
        on,
        &format!("SELECT uscc FROM {db}.enterprise_state LIMIT 1"),
    )?
    .pop()
    .context("no state")?;
    load_records(on, db, some["uscc"].as_str().context("uscc")?)?;

    let path = repo_root().join("dashboards/grafana/dashboards/supervision.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    let var = dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == "database")
        .context("the dashboard has no $database variable")?;
    ensure!(var["query"] == "credit", "default database: {var}");
    let all = Expansion {
        db,
        region: "*",
        industry: "*",
        from: earliest,
        to: latest,
        interval: 86_400,
    };
    // The $region and $industry variables' own queries, and one value of each.
    let mut picked = Vec::new();
    for name in ["region", "industry"] {
        let v = dashboard["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == name)
            .with_context(|| format!("the dashboard has no ${name} variable"))?;
        ensure!(v["allValue"] == "*", "${name} must offer All as *: {v}");
        let sql = all.expand(v["query"].as_str().context("query")?, &json!({}))?;
        let values = rows(on, &sql).with_context(|| format!("variable ${name}"))?;
        let first = values
            .first()
            .and_then(|r| r[name].as_str())
            .map(str::to_owned);
        picked.push(first.with_context(|| format!("${name} offers no value"))?);
    }
    let one = Expansion {
        region: &picked[0],
        industry: "*",
        ..all
    };
    let mut ran = 0;
    for panel in dashboard["panels"].as_array().context("panels")? {
        let title = &panel["title"];
        ensure!(
            panel["datasource"]["type"] == "vertamedia-clickhouse-datasource",
            "panel {title} is not a ClickHouse panel"
        );
        for target in panel["targets"].as_array().context("targets")? {
            let target = &json!({
                "database": db,
                "table": target["table"],
                "dateTimeColDataType": target["dateTimeColDataType"],
                "query": target["query"],
            });
            let query = target["query"].as_str().context("query")?;
            let sql = all.expand(query, target)?;
            let got = rows(on, &sql).with_context(|| format!("panel {title}"))?;
            ensure!(
                !got.is_empty(),
                "panel {title} returned no rows on {}:\n{sql}",
                on.name()
            );
            // Filtered to one region: a subset of All.
            let sql = one.expand(query, target)?;
            let some = rows(on, &sql).with_context(|| format!("panel {title}, one region"))?;
            ensure!(
                some.len() <= got.len() || !query.contains("$region"),
                "panel {title}: one region gave more rows than all"
            );
            ran += 1;
        }
    }
    // The colour distribution of one region has that region's enterprises only.
    let mut total = |e: &Expansion<'_>| -> Result<f64> {
        let sql = e.expand(
            "SELECT count() AS n FROM $database.v_current_state \
             WHERE ('$region' = '*' OR region = '$region') AND ('$industry' = '*' OR industry = '$industry')",
            &json!({}),
        )?;
        let n = rows(on, &sql)?
            .first()
            .map(|r| r["n"].clone())
            .unwrap_or_default();
        Ok(n.as_f64()
            .or_else(|| n.as_str().and_then(|x| x.parse().ok()))
            .unwrap_or(0.0))
    };
    let (in_one, in_all) = (total(&one)?, total(&all)?);
    ensure!(
        in_one > 0.0 && in_one < in_all,
        "region {}: {in_one} of {in_all} enterprises",
        picked[0]
    );
    ensure!(ran >= 8, "only {ran} panel queries");

    // The analysts' examples, on database `credit` in the file.
    let path = repo_root().join("docs/analyst-queries.sql");
    let text = std::fs::read_to_string(&path)?.replace("credit.", "{db}.");
    let examples = connectors::clickhouse::statements(&text, db);
    ensure!(
        examples.len() >= 6,
        "only {} analyst examples",
        examples.len()
    );
    for sql in &examples {
        let got = rows(on, sql).with_context(|| format!("analyst example {sql}"))?;
        ensure!(
            !got.is_empty(),
            "analyst example returned no rows on {}:\n{sql}",
            on.name()
        );
    }

    // `steward web`'s queries (D83), with their values as the client binds them: each runs;
    // the lists with no filter return rows.
    for template in pipeline::web::data::QUERIES {
        let sql = template
            .replace("{db}", db)
            .replace("LIMIT ?", "LIMIT 10")
            .replace("uscc LIKE ?", "uscc LIKE '9%'")
            .replace('?', "''");
        let got = rows(on, &sql).with_context(|| format!("steward web query {sql}"))?;
        let is_list = ["LIKE", "'worsened'", "inspection_campaigns"]
            .iter()
            .any(|k| sql.contains(k));
        ensure!(
            !is_list || !got.is_empty(),
            "steward web's query returned no rows on {}:\n{sql}",
            on.name()
        );
    }

    // What the views mean, exactly: the latest status of a record, else the one it was
    // written with; days cut in Asia/Shanghai; the columns added after a view was made.
    let statuses = rows(
        on,
        &format!(
            "SELECT event_id, status, toUInt32(status_since) AS since FROM {db}.v_records \
             WHERE event_id LIKE 'e2e-%' ORDER BY event_id"
        ),
    )?;
    let got: Vec<(String, String, i64)> = statuses
        .iter()
        .map(|r| {
            let n = &r["since"];
            let since = n
                .as_i64()
                .or_else(|| n.as_str().and_then(|x| x.parse().ok()));
            (
                r["event_id"].as_str().unwrap_or_default().to_owned(),
                r["status"].as_str().unwrap_or_default().to_owned(),
                since.unwrap_or(-1),
            )
        })
        .collect();
    let want = [
        ("e2e-active", "active", 0),
        ("e2e-changed", "revoked", 1_706_745_600),
        ("e2e-superseded", "superseded", 0),
    ]
    .map(|(e, s, t)| (e.to_owned(), s.to_owned(), t));
    ensure!(got == want, "v_records on {}: {got:?}", on.name());
    let day = rows(
        on,
        &format!("SELECT toString(day) AS d FROM {db}.v_alert_counts WHERE rule = 'e2e_tz_probe'"),
    )?;
    ensure!(
        day.len() == 1 && day[0]["d"] == "2024-01-02",
        "an alert at 2024-01-01 17:30 UTC is counted on {day:?} on {}",
        on.name()
    );
    rows(
        on,
        &format!("SELECT review_flags, review_flag_repairs FROM {db}.v_current_state LIMIT 1"),
    )
    .with_context(|| format!("v_current_state's later columns on {}", on.name()))?;

    // The better types where the server has them (migration 7), the plain ones elsewhere.
    let newer = connectors::clickhouse::applies_on(7, server);
    let colour = rows(
        on,
        &format!(
            "SELECT type FROM system.columns WHERE database = '{db}' \
             AND table = 'enterprise_state' AND name = 'colour'"
        ),
    )?;
    let want = if newer {
        "LowCardinality(String)"
    } else {
        "String"
    };
    ensure!(
        colour.len() == 1 && colour[0]["type"] == want,
        "enterprise_state.colour on {} ({server:?}): {colour:?}",
        on.name()
    );
    if newer {
        let index = rows(
            on,
            &format!(
                "SELECT name FROM system.data_skipping_indices WHERE database = '{db}' \
                 AND table = 'records'"
            ),
        )?;
        ensure!(
            index.len() == 1 && index[0]["name"] == "records_uscc",
            "{index:?}"
        );
    }
    Ok(())
}

/// Drops the test's database however the test ends.
struct DropDatabase(String);

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let _ = clickhouse_http(&format!("DROP DATABASE IF EXISTS {}", self.0), "");
    }
}

#[test]
fn every_panel_query_and_analyst_example_runs_on_the_clickhouse_server() -> Result<()> {
    let db = unique_name("e2e_panels");
    let _drop = DropDatabase(db.clone());
    panels_and_examples_return_rows(&mut Server, &db)
}

#[test]
fn every_panel_query_and_analyst_example_runs_on_current_clickhouse() -> Result<()> {
    let mut chdb = Chdb::start()?;
    panels_and_examples_return_rows(&mut chdb, "e2e_panels")
}
