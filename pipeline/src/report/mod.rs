//! `steward report`: the credit report of one enterprise for a period (`supervision.md`,
//! credit report), built from ClickHouse alone.
//!
//! Content: the colour and score history (every colour change in the period with its score,
//! and the current score), every record of the enterprise with an event time in the period
//! (feed, kind, dates, issuing body, status, repaired / revoked marks), its commitments with
//! their records and verification results, and the current explanation. The digest is the
//! SHA-256 of the content's canonical JSON (keys sorted, no whitespace, without the digest
//! itself), so a copy can be verified with [`verify`].

use std::collections::BTreeMap;

use clickhouse::{RowOwned, RowRead};
use connectors::clickhouse::{
    ChangeRow, ClickHouse, ClickHouseError, CommitmentCheckRow, RecordRow, StateRow, StatusRow,
};
use rules::catalogue::Catalogue;
use rules::time::{format_rfc3339, Ts};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

mod page;
pub(crate) use page::{colour_meaning, colour_name, css, shanghai, STYLE};
pub use page::{html, html_with_nav, pdf, Lang, CHROMIUM_FLAGS};

/// A report failure.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// ClickHouse failed.
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    /// The USCC cannot be used in a query.
    #[error("{0:?} is not a USCC (18 letters and digits)")]
    BadUscc(String),
    /// ClickHouse knows nothing of the enterprise.
    #[error("no state and no records of {0} in ClickHouse")]
    Unknown(String),
    /// The async runtime could not start.
    #[error("tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The chart could not be drawn.
    #[error("chart: {0}")]
    Chart(String),
    /// A report could not be written or read as JSON.
    #[error("report JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The PDF could not be made.
    #[error("PDF: {0}")]
    Pdf(String),
    /// The file is not a report `steward report` wrote.
    #[error("not a report written by steward report (JSON, or HTML with its content embedded)")]
    NotAReport,
}

/// The period of a report: `[from, to)` in logical time; open ends when absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Period {
    /// Start, inclusive.
    pub from: Option<Ts>,
    /// End, exclusive.
    pub to: Option<Ts>,
}

impl Period {
    fn contains(&self, t: Ts) -> bool {
        self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|e| t < e)
    }
}

/// Everything ClickHouse has about one enterprise.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The current state, if any.
    pub state: Option<StateRow>,
    /// Its colour changes, in time order.
    pub changes: Vec<ChangeRow>,
    /// Its records (every stored version), in time order.
    pub records: Vec<RecordRow>,
    /// Its commitment checks.
    pub checks: Vec<CommitmentCheckRow>,
    /// Its records' status steps (D11), in time order.
    pub statuses: Vec<StatusRow>,
}

/// `SELECT * FROM {db}.{from} WHERE uscc = ? {rest}` with `uscc` bound (never pasted; the
/// database name comes from the validated configuration).
async fn of_uscc<T: RowOwned + RowRead>(
    ch: &ClickHouse,
    uscc: &str,
    from: &str,
    rest: &str,
) -> Result<Vec<T>, ClickHouseError> {
    let sql = format!(
        "SELECT * FROM {}.{from} WHERE uscc = ? {rest}",
        ch.database()
    );
    ch.fetch_bound(
        &format!("report: {from} of {uscc}"),
        ch.query(&sql).bind(uscc),
    )
    .await
}

/// Reads the sources of `uscc`'s report.
pub async fn fetch(ch: &ClickHouse, uscc: &str) -> Result<Sources, ReportError> {
    if uscc.len() != 18 || !uscc.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ReportError::BadUscc(uscc.to_owned()));
    }
    let state: Vec<StateRow> =
        of_uscc(ch, uscc, "enterprise_state FINAL", "AND deleted = 0").await?;
    let changes = of_uscc(ch, uscc, "colour_history", "ORDER BY as_of, change_id").await?;
    let records = of_uscc(
        ch,
        uscc,
        "records FINAL",
        "ORDER BY event_time, feed, event_id, record_version",
    )
    .await?;
    let checks = of_uscc(
        ch,
        uscc,
        "commitment_checks",
        "ORDER BY commitment_id, as_of, check_id",
    )
    .await?;
    let statuses = of_uscc(
        ch,
        uscc,
        "record_status",
        "ORDER BY feed, event_id, record_version, version",
    )
    .await?;
    Ok(Sources {
        state: state.into_iter().next(),
        changes,
        records,
        checks,
        statuses,
    })
}

fn time(t: u32) -> String {
    format_rfc3339(Ts::from(t))
}

fn reasons(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or(Value::Null)
}

/// The explanation with each indicator's Chinese name from the catalogue.
fn named(mut explanation: Value, cat: &Catalogue) -> Value {
    for x in explanation.as_array_mut().into_iter().flatten() {
        let name = x["indicator"]
            .as_str()
            .and_then(|id| cat.indicators.iter().find(|i| i.id == id))
            .map(|i| i.name_zh.clone());
        x["name_zh"] = json!(name);
    }
    explanation
}

/// The report's content (without digest) from its sources, in `lang`: the indicators'
/// names and the colour bands come from `cat`, so that the page is a function of the content.
pub fn content(uscc: &str, period: Period, src: &Sources, cat: &Catalogue, lang: Lang) -> Value {
    let history: Vec<Value> = src
        .changes
        .iter()
        .filter(|c| period.contains(Ts::from(c.as_of)))
        .map(|c| {
            json!({
                "as_of": time(c.as_of),
                "from": c.from_colour,
                "to": c.to_colour,
                "direction": c.direction,
                "score": c.score,
                "triggers": c.triggers,
                "reasons": reasons(&c.reasons),
            })
        })
        .collect();
    // Latest version of each record.
    let mut latest: BTreeMap<(&str, &str), &RecordRow> = BTreeMap::new();
    for r in &src.records {
        let e = latest.entry((&r.feed, &r.event_id)).or_insert(r);
        if r.record_version > e.record_version {
            *e = r;
        }
    }
    let bodies: Vec<(&RecordRow, Value)> = latest
        .values()
        .map(|r| (*r, serde_json::from_str(&r.body).unwrap_or(Value::Null)))
        .collect();
    let field = |b: &Value, k: &str| b.get(k).and_then(Value::as_str).map(str::to_owned);
    // Repairs in effect (a revoked repair is void) and retractions, by target.
    let revoked_repairs: Vec<String> = bodies
        .iter()
        .filter(|(r, _)| r.feed == "RPR" && r.kind == "REVOKED")
        .filter_map(|(_, b)| field(b, "ref_event_id"))
        .collect();
    let mut repaired: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut retracted: BTreeMap<(String, String), String> = BTreeMap::new();
    for (r, b) in &bodies {
        if r.feed == "RPR" && r.kind == "COMPLETED" && !revoked_repairs.contains(&r.event_id) {
            if let (Some(f), Some(id)) = (field(b, "target_feed"), field(b, "target_event_id")) {
                let at = field(b, "effective_time").unwrap_or_else(|| time(r.event_time));
                repaired.insert((f, id), at);
            }
        } else if let Some(target) = field(b, "ref_event_id") {
            if r.feed != "RPR" {
                retracted.insert((r.feed.clone(), target), time(r.event_time));
            }
        }
    }
    // Each record version's current status (D11): its latest step.
    let mut status: BTreeMap<(&str, &str, u32), &str> = BTreeMap::new();
    for st in &src.statuses {
        status.insert((&st.feed, &st.event_id, st.record_version), &st.status);
    }
    let mut records: Vec<&(&RecordRow, Value)> = bodies
        .iter()
        .filter(|(r, _)| period.contains(Ts::from(r.event_time)))
        .collect();
    records.sort_by_key(|(r, _)| (r.event_time, r.feed.clone(), r.event_id.clone()));
    let records: Vec<Value> = records
        .iter()
        .map(|(r, b)| {
            let key = (r.feed.clone(), r.event_id.clone());
            json!({
                "feed": r.feed,
                "kind": r.kind,
                "event_id": r.event_id,
                "version": r.record_version,
                "event_time": time(r.event_time),
                "visible_from": time(r.v),
                "issuing_body": field(b, "source_org"),
                "status": status
                    .get(&(r.feed.as_str(), r.event_id.as_str(), r.record_version))
                    .copied()
                    .unwrap_or(&r.status),
                "repaired": repaired.get(&key),
                "revoked": retracted.get(&key),
            })
        })
        .collect();
    // Commitments: their records (any time) and checks, by commitment_id.
    let mut commitments: BTreeMap<String, Value> = BTreeMap::new();
    for (r, b) in bodies.iter().filter(|(r, _)| r.feed == "CMT") {
        let Some(id) = field(b, "commitment_id") else {
            continue;
        };
        let c = commitments
            .entry(id.clone())
            .or_insert_with(|| json!({"commitment_id": id, "events": [], "checks": []}));
        for k in ["type", "matter", "valid_until"] {
            if let Some(v) = field(b, k) {
                c[k] = json!(v);
            }
        }
        if let Some(result) = field(b, "result") {
            c["result"] = json!(result);
        }
        if let Some(events) = c["events"].as_array_mut() {
            events.push(json!({
                "kind": r.kind,
                "event_time": time(r.event_time),
                "method": field(b, "method"),
                "result": field(b, "result"),
                "issuing_body": field(b, "source_org"),
            }));
        }
    }
    for k in &src.checks {
        let c = commitments.entry(k.commitment_id.clone()).or_insert_with(
            || json!({"commitment_id": k.commitment_id, "events": [], "checks": []}),
        );
        if let Some(checks) = c["checks"].as_array_mut() {
            checks.push(json!({
                "as_of": time(k.as_of),
                "kind": k.kind,
                "method": k.method,
                "result": k.result,
                "colour": k.colour,
                "effective": time(k.effective),
                "due": k.due.map(time),
                "record": k.record,
                "detail": k.detail,
            }));
        }
    }
    let current = src.state.as_ref().map(|s| {
        json!({
            "as_of": time(s.as_of),
            "colour": s.colour,
            "score_colour": s.score_colour,
            "s": s.s, "p": s.p, "m": s.m, "q": s.q, "r": s.r,
            "triggers": s.triggers,
            "level1": s.level1,
            "level2": s.level2,
            "explanation": named(reasons(&s.reasons), cat),
            "region": s.region,
            "industry": s.industry,
            "pre_credit": s.pre_credit,
            "pre_credit_line_fen": s.pre_credit_line,
            "review_flags": s
                .review_flags
                .iter()
                .zip(&s.review_flag_repairs)
                .map(|(flag, repair)| json!({"flag": flag, "repair_event_id": repair}))
                .collect::<Vec<_>>(),
            "rules_version": s.rules_version,
            "model_version": s.model_version,
        })
    });
    json!({
        "uscc": uscc,
        "lang": lang.code(),
        "bands": bands(cat),
        "period": {
            "from": period.from.map(format_rfc3339),
            "to": period.to.map(format_rfc3339),
        },
        "current": current,
        "history": history,
        "records": records,
        "commitments": commitments.into_values().collect::<Vec<_>>(),
    })
}

/// The catalogue's colour bands as the content carries them (what the colour legend reads).
pub(crate) fn bands(cat: &Catalogue) -> Value {
    json!({
        "blue": cat.colours.blue,
        "green": cat.colours.green,
        "yellow": cat.colours.yellow,
    })
}

/// The hex SHA-256 of `content`'s canonical JSON (RFC 8785, the JSON Canonicalization
/// Scheme: keys sorted by UTF-16 code units, no whitespace, numbers as ECMAScript prints
/// them), so that anyone can recompute it from the JSON with any JCS library.
pub fn digest(content: &Value) -> Result<String, ReportError> {
    Ok(hex::encode(Sha256::digest(serde_jcs::to_vec(content)?)))
}

/// The report issued at `issued` (wall-clock time): its content, `issued_at` and the
/// `digest` over both.
pub fn report(
    uscc: &str,
    period: Period,
    src: &Sources,
    issued: Ts,
    cat: &Catalogue,
    lang: Lang,
) -> Result<Value, ReportError> {
    let mut r = content(uscc, period, src, cat, lang);
    r["issued_at"] = json!(format_rfc3339(issued));
    r["digest"] = json!(digest(&r)?);
    Ok(r)
}

/// Whether a report's digest matches its content.
pub fn verify(report: &Value) -> bool {
    let mut c = report.clone();
    let Some(d) = c.as_object_mut().and_then(|o| o.remove("digest")) else {
        return false;
    };
    digest(&c).is_ok_and(|ours| d.as_str() == Some(ours.as_str()))
}

/// What [`check_file`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The report is as issued: its digest matches its content and the file is exactly what
    /// that content is written as.
    Intact {
        /// The digest.
        digest: String,
        /// When it was issued.
        issued_at: String,
    },
    /// The report was changed after it was issued.
    Altered(&'static str),
}

/// The id of the HTML report's element that holds its content as JSON.
pub(crate) const DATA_ID: &str = "report-data";

/// The content of an HTML report, as [`html`] embeds it.
fn embedded(page: &str) -> Option<Value> {
    let open = format!(r#"<script type="application/json" id="{DATA_ID}">"#);
    let start = page.find(&open)? + open.len();
    let len = page[start..].find("</script>")?;
    // `<\/` (as `html` writes `</`) is JSON's own escape of `/`.
    serde_json::from_str(&page[start..start + len]).ok()
}

/// The JSON report file's text.
pub fn json_text(r: &Value) -> Result<String, ReportError> {
    Ok(serde_json::to_string_pretty(r)? + "\n")
}

/// Checks a report file written by `steward report` (`json` or `html`): whether it is
/// exactly as issued. Its digest must match its content, and the file must be, byte for
/// byte, what that content is written as ([`json_text`], or the page [`html`] renders), so
/// that a change to any character is found, whether it changes the content or not.
pub fn check_file(bytes: &[u8]) -> Result<Verdict, ReportError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ReportError::NotAReport)?;
    let is_json = text.starts_with('{');
    let report = if is_json {
        serde_json::from_str::<Value>(text)?
    } else {
        embedded(text).ok_or(ReportError::NotAReport)?
    };
    if !verify(&report) {
        return Ok(Verdict::Altered("the digest does not match the content"));
    }
    let written = if is_json {
        json_text(&report)?
    } else {
        html(&report)?
    };
    if written != text {
        return Ok(Verdict::Altered(
            "the file differs from the one its content is written as",
        ));
    }
    let field = |k: &str| report[k].as_str().unwrap_or_default().to_owned();
    Ok(Verdict::Intact {
        digest: field("digest"),
        issued_at: field("issued_at"),
    })
}

/// Builds the report of `uscc` from the ClickHouse of `cfg`, issued now.
pub fn build(
    cfg: &connectors::config::ClickHouseConfig,
    uscc: &str,
    period: Period,
    cat: &Catalogue,
    lang: Lang,
) -> Result<Value, ReportError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ReportError::Runtime)?;
    let src = rt.block_on(fetch(&ClickHouse::new(cfg)?, uscc))?;
    if src.state.is_none() && src.records.is_empty() {
        return Err(ReportError::Unknown(uscc.to_owned()));
    }
    report(uscc, period, &src, engine::ingest::now(), cat, lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(feed: &str, kind: &str, id: &str, t: u32, body: Value) -> RecordRow {
        RecordRow {
            feed: feed.into(),
            event_id: id.into(),
            record_version: 1,
            uscc: "91330000000000000X".into(),
            kind: kind.into(),
            event_time: t,
            ingest_time: t,
            v: t,
            digest: String::new(),
            body: body.to_string(),
            status: "accepted".into(),
            version: 1,
        }
    }

    #[test]
    fn marks_digest_and_period() {
        let src = Sources {
            records: vec![
                record("PEN", "DECIDED", "p1", 100, json!({"source_org": "AMR"})),
                record("PEN", "DECIDED", "p2", 200, json!({})),
                record("PEN", "REVOKED", "p3", 300, json!({"ref_event_id": "p2"})),
                record(
                    "RPR",
                    "COMPLETED",
                    "r1",
                    400,
                    json!({"target_feed": "PEN", "target_event_id": "p1", "effective_time": "1970-01-01T00:10:00Z"}),
                ),
                record(
                    "CMT",
                    "PUBLISHED",
                    "c1",
                    500,
                    json!({"commitment_id": "K", "matter": "M", "valid_until": "2020-01-01"}),
                ),
            ],
            ..Sources::default()
        };
        let cat = Catalogue::embedded();
        let issue = |p| report("91330000000000000X", p, &src, 1_000_000, &cat, Lang::En);
        let r = issue(Period::default()).unwrap();
        assert!(verify(&r));
        assert_eq!(r["issued_at"], format_rfc3339(1_000_000));
        let recs = r["records"].as_array().unwrap();
        assert_eq!(recs.len(), 5);
        assert_eq!(recs[0]["repaired"], "1970-01-01T00:10:00Z");
        assert_eq!(recs[0]["issuing_body"], "AMR");
        assert_eq!(recs[1]["revoked"], format_rfc3339(300));
        assert_eq!(r["commitments"][0]["matter"], "M");
        let mut tampered = r.clone();
        tampered["records"][0]["kind"] = json!("X");
        assert!(!verify(&tampered));
        let p = Period {
            from: Some(150),
            to: Some(400),
        };
        assert_eq!(issue(p).unwrap()["records"].as_array().unwrap().len(), 2);
        let page = html(&r).unwrap();
        assert!(page.contains("<svg") && page.contains(r["digest"].as_str().unwrap()));

        // `report verify`: the files as written are intact; one changed character is found,
        // in the visible page and in the embedded content alike.
        let issued = |v: Verdict| matches!(v, Verdict::Intact { issued_at, .. } if issued_at == format_rfc3339(1_000_000));
        assert!(issued(check_file(page.as_bytes()).unwrap()));
        let json_file = json_text(&r).unwrap();
        assert!(issued(check_file(json_file.as_bytes()).unwrap()));
        let visible = page.replacen("Records", "Recorde", 1);
        assert_ne!(visible, page);
        assert_eq!(
            check_file(visible.as_bytes()).unwrap(),
            Verdict::Altered("the file differs from the one its content is written as")
        );
        let data = page.replacen("\"AMR\"", "\"AMX\"", 1);
        assert_ne!(data, page);
        assert_eq!(
            check_file(data.as_bytes()).unwrap(),
            Verdict::Altered("the digest does not match the content")
        );
        let json_changed = json_file.replacen("\"AMR\"", "\"AMX\"", 1);
        assert_eq!(
            check_file(json_changed.as_bytes()).unwrap(),
            Verdict::Altered("the digest does not match the content")
        );
        let spaced = json_file.replacen(": ", ":  ", 1);
        assert_eq!(
            check_file(spaced.as_bytes()).unwrap(),
            Verdict::Altered("the file differs from the one its content is written as")
        );
        assert!(matches!(
            check_file(b"<html>no report</html>"),
            Err(ReportError::NotAReport)
        ));
    }
}
