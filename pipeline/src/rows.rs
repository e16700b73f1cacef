//! Output rows: the ClickHouse rows and Kafka messages made from the dataflow's results.
//! Every row is a function of the log alone, so a replay writes the same rows.

use connectors::clickhouse::{
    datetime, AlertRow, CatalogueRow, ChangeRow, CommitmentCheckRow, IndicatorRow, RecordRow,
    StateRow, StatusRow,
};
use rules::catalogue::Catalogue;
use rules::decode::encode;
use rules::event::Event;
use rules::fact::Checker;
use rules::lifecycle::Accepted;
use rules::model::Model;
use rules::monitor::{id_of, Alert, ColourChange};
use rules::score::Colour;
use rules::status::{RecordKey, Status};
use rules::supervision::{PreCredit, PreCreditRule, Scheduled, Verification};
use rules::time::{format_rfc3339, Ts};
use rules::uscc::Uscc;

use engine::dataflow::Scored;
use engine::tracker::Place;

/// An enterprise's pre-credit status from its published colour and tax paid.
pub fn pre_credit(s: &Scored, published: Option<Colour>, rule: &PreCreditRule) -> PreCredit {
    rule.line(published.unwrap_or(Colour::None), s.tax_paid_fen)
}

/// The state and indicator rows of an enterprise whose evaluation changed at `at`, with its
/// pre-credit status (`rule`); `None` when it left the collection (written as deleted).
pub fn state_rows(
    uscc: &str,
    at: Ts,
    scored: Option<(&Scored, Option<Colour>)>,
    model: Option<&Model>,
    rule: &PreCreditRule,
    cat: &Catalogue,
) -> (StateRow, IndicatorRow) {
    let version = u64::from(datetime(at));
    let Some((s, published)) = scored else {
        return (
            StateRow {
                uscc: uscc.to_owned(),
                as_of: datetime(at),
                colour: Colour::None.as_str().to_owned(),
                score_colour: Colour::None.as_str().to_owned(),
                s: None,
                p: None,
                m: 0.0,
                q: None,
                r: 0.0,
                triggers: Vec::new(),
                level1: Vec::new(),
                level2: Vec::new(),
                reason_indicators: Vec::new(),
                reason_contributions: Vec::new(),
                reasons: "[]".to_owned(),
                region: String::new(),
                industry: String::new(),
                pre_credit: String::new(),
                pre_credit_line: None,
                rules_version: cat.version.clone(),
                model_version: String::new(),
                deleted: 1,
                version,
                review_flags: Vec::new(),
                review_flag_repairs: Vec::new(),
            },
            IndicatorRow {
                uscc: uscc.to_owned(),
                as_of: datetime(at),
                level3: Vec::new(),
                rules_version: cat.version.clone(),
                deleted: 1,
                version,
            },
        );
    };
    let e = s.evaluation(model, cat);
    let pre = pre_credit(s, published, rule);
    let place = Place::of(s);
    (
        StateRow {
            uscc: uscc.to_owned(),
            as_of: datetime(at),
            colour: published.unwrap_or(Colour::None).as_str().to_owned(),
            score_colour: e.score_colour.as_str().to_owned(),
            s: e.s,
            p: e.p,
            m: e.m,
            q: e.q,
            r: e.risk,
            triggers: e.triggers.to_strings(),
            level1: e.l1.clone(),
            level2: e.l2.clone(),
            reason_indicators: e.reasons.iter().map(|x| x.indicator.clone()).collect(),
            reason_contributions: e.reasons.iter().map(|x| x.contribution).collect(),
            reasons: serde_json::to_string(&e.reasons).unwrap_or_default(),
            region: place.region,
            industry: place.industry,
            pre_credit: pre.as_str().to_owned(),
            pre_credit_line: pre.line_fen().map(|x| x as f64),
            rules_version: cat.version.clone(),
            model_version: e.model_version.clone().unwrap_or_default(),
            deleted: 0,
            version,
            review_flags: e
                .review_flags
                .iter()
                .map(|f| f.flag.as_str().to_owned())
                .collect(),
            review_flag_repairs: e
                .review_flags
                .iter()
                .map(|f| f.repair_event_id.to_string())
                .collect(),
        },
        IndicatorRow {
            uscc: uscc.to_owned(),
            as_of: datetime(at),
            level3: e.r,
            rules_version: cat.version.clone(),
            deleted: 0,
            version,
        },
    )
}

/// The `colour_history` row of a colour change.
pub fn change_row(c: &ColourChange, region: &str, industry: &str) -> ChangeRow {
    ChangeRow {
        change_id: c.change_id.clone(),
        uscc: c.uscc.clone(),
        as_of: datetime(c.as_of),
        from_colour: c.from.map(|f| f.as_str().to_owned()).unwrap_or_default(),
        to_colour: c.to.as_str().to_owned(),
        direction: connectors::metrics::direction(c.from, c.to).to_owned(),
        score: c.score,
        score_colour: c.score_colour.as_str().to_owned(),
        triggers: c.triggers.clone(),
        reason_indicators: c.reasons.iter().map(|x| x.indicator.clone()).collect(),
        reason_contributions: c.reasons.iter().map(|x| x.contribution).collect(),
        reasons: serde_json::to_string(&c.reasons).unwrap_or_default(),
        region: region.to_owned(),
        industry: industry.to_owned(),
        model_version: c.model_version.clone().unwrap_or_default(),
        rules_version: c.rules_version.clone(),
    }
}

/// The `alerts` row of an alert.
pub fn alert_row(a: &Alert, region: &str, industry: &str) -> AlertRow {
    AlertRow {
        alert_id: a.alert_id.clone(),
        uscc: a.uscc.clone(),
        rule: a.rule.clone(),
        severity: a.severity.as_str().to_owned(),
        state: a.state.as_str().to_owned(),
        as_of: datetime(a.as_of),
        detail: a.detail.clone(),
        region: region.to_owned(),
        industry: industry.to_owned(),
    }
}

/// The `record_status` row of a record's new status at logical time `t`.
pub fn status_row(t: Ts, key: &RecordKey, uscc: Uscc, status: Status) -> StatusRow {
    StatusRow {
        feed: key.id.0.as_str().to_owned(),
        event_id: key.id.1.to_string(),
        record_version: key.version,
        digest: hex::encode(key.digest),
        uscc: uscc.to_string(),
        status: status.as_str().to_owned(),
        as_of: datetime(t),
        version: u64::from(datetime(t)),
    }
}

/// The `records` row of an accepted record.
pub fn record_row(a: &Accepted) -> RecordRow {
    record_row_of(&a.event, a.v, &a.digest, encode(&a.event))
}

/// [`record_row`] of a record visible at `v` with its `digest` and its canonical bytes
/// ([`encode`], as the log keeps them: no second encoding).
pub fn record_row_of(e: &Event, v: Ts, digest: &[u8; 32], canonical: Vec<u8>) -> RecordRow {
    RecordRow {
        feed: e.feed().as_str().to_owned(),
        event_id: e.event_id.to_string(),
        record_version: e.version,
        uscc: e.uscc.to_string(),
        kind: e.body.kind_str().to_owned(),
        event_time: datetime(e.event_time),
        ingest_time: datetime(e.ingest_time),
        v: datetime(v),
        digest: hex::encode(digest),
        body: String::from_utf8(canonical)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        status: "accepted".to_owned(),
        version: u64::from(datetime(v)),
    }
}

/// The `indicator_catalogue` rows of a catalogue.
pub fn catalogue_rows(cat: &Catalogue) -> Vec<CatalogueRow> {
    cat.indicators
        .iter()
        .map(|i| {
            let l2 = cat.level2.iter().find(|g| g.code == i.group);
            let l1 = l2.and_then(|g| cat.level1.iter().find(|p| p.code == g.parent));
            CatalogueRow {
                rules_version: cat.version.clone(),
                row: i.row as u8,
                indicator: i.id.clone(),
                name: i.name_zh.clone(),
                level2: i.group.clone(),
                level1: l1.map(|p| p.code.clone()).unwrap_or_default(),
                group_weight: l2.map_or(0.0, |g| g.weight) * l1.map_or(0.0, |p| p.weight),
            }
        })
        .collect()
}

/// The `commitment_checks` row of a scheduling decision (`kind` `scheduled`); its id is a
/// function of the decision, so a replay writes the same row.
pub fn scheduled_row(s: &Scheduled) -> CommitmentCheckRow {
    let record = s.event().event_id;
    CommitmentCheckRow {
        check_id: id_of(&[&s.uscc, &s.commitment_id, "scheduled", &record]),
        commitment_id: s.commitment_id.clone(),
        uscc: s.uscc.clone(),
        as_of: datetime(s.as_of),
        method: s.method.as_str().to_owned(),
        result: String::new(),
        detail: serde_json::json!({"task": s.task, "u": s.u, "probability": s.probability})
            .to_string(),
        kind: "scheduled".to_owned(),
        colour: s.colour.as_str().to_owned(),
        effective: datetime(s.as_of),
        due: s.due.map(datetime),
        record: record.to_string(),
    }
}

/// The `commitment_checks` row of a verification result (`kind` `offsite`, `inspector`,
/// `rectified` or `deadline`).
pub fn check_row(v: &Verification) -> CommitmentCheckRow {
    let c = &v.check;
    let kind = match c.checker {
        Checker::Offsite => "offsite",
        Checker::Inspector => "inspector",
        Checker::Rectified => "rectified",
        Checker::Deadline => "deadline",
    };
    let method = c.method.map(|m| m.as_str()).unwrap_or_default();
    let effective = format_rfc3339(c.at);
    CommitmentCheckRow {
        check_id: id_of(&[
            &v.uscc,
            &c.commitment_id,
            kind,
            c.result.as_str(),
            &effective,
            c.record.0.as_str(),
            &c.record.1,
        ]),
        commitment_id: c.commitment_id.to_string(),
        uscc: v.uscc.clone(),
        as_of: datetime(v.as_of),
        method: method.to_owned(),
        result: c.result.as_str().to_owned(),
        detail: serde_json::json!({"record_feed": c.record.0}).to_string(),
        kind: kind.to_owned(),
        colour: String::new(),
        effective: datetime(c.at),
        due: None,
        record: c.record.1.to_string(),
    }
}
