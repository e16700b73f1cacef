//! Small record streams for property tests: each [`Op`] picks an enterprise, one of
//! [`TEMPLATES`] record templates, a time and ids drawn from a few per feed, so that random
//! operations collide into versions, duplicates, kind switches, retractions by reference and
//! by business key, repairs (of known, unknown and non-repairable targets) and their
//! revocations, commitments and relations between enterprises. The engine's oracle test and
//! the record table's lifecycle test draw from it.

#[cfg(feature = "proptest")]
use proptest::strategy::{Just, Strategy};
use rules::decode::digest;
use rules::event::Event;
use rules::lifecycle::Accepted;
use rules::time::{format_rfc3339, ymd, DAY};
use serde_json::{json, Value};

/// How many enterprises the operations spread over.
pub const ENTERPRISES: u8 = 3;
/// How many record templates [`record`] has.
pub const TEMPLATES: u8 = 44;

/// The USCC of enterprise `n`.
pub fn code(n: u8) -> String {
    rules::uscc::with_check(&format!("91330802MA2A000{n:02}")).expect("valid prefix")
}

/// One generated operation: which enterprise, which template, when, which ids.
#[derive(Debug, Clone)]
pub struct Op {
    /// The enterprise (below [`ENTERPRISES`]).
    pub ent: u8,
    /// The record template (below [`TEMPLATES`]).
    pub template: u8,
    /// The event's day from 2022-01-01.
    pub day: i64,
    /// Seconds from the event to its ingest.
    pub lag_secs: i64,
    /// Which of a few event ids per template.
    pub id: u8,
    /// The record's version.
    pub version: u32,
    /// Which other record, enterprise or value the template names.
    pub other: u8,
}

impl Op {
    /// Template `template` of enterprise 0 on `day`, ingested a minute later, at version 1,
    /// with ids `id` and `other`.
    pub fn at(template: u8, day: i64, id: u8, other: u8) -> Op {
        Op {
            ent: 0,
            template,
            day,
            lag_secs: 60,
            id,
            version: 1,
            other,
        }
    }
}

fn pick(xs: &[&'static str], i: u8) -> &'static str {
    xs[usize::from(i) % xs.len()]
}

/// The record of an operation; ids are drawn from a few per feed so that they collide.
pub fn record(op: &Op) -> Option<Accepted> {
    let t0 = ymd(2022, 1, 1);
    let et = t0 + op.day * DAY + 3600;
    let ingest = et + op.lag_secs;
    let n = op.id;
    let o = op.other;
    let date = |days: i64| format_rfc3339(et + days * DAY)[..10].to_owned();
    let (feed, kind, id, extra): (&str, &str, String, Value) = match op.template {
        0 => (
            "PEN",
            "DECIDED",
            format!("p{n}"),
            json!({"decision_no": format!("D{n}"), "dishonesty_class": "GENERAL", "penalty_types": ["fine"], "fine_fen": 5_000_000, "due_date": date(30)}),
        ),
        1 => (
            "PEN",
            "DECIDED",
            format!("p{n}"),
            json!({"decision_no": format!("D{n}"), "dishonesty_class": "SERIOUS", "penalty_types": ["fine"], "confiscation_fen": 200_000_000}),
        ),
        2 => (
            "PEN",
            "REVOKED",
            format!("pr{n}"),
            json!({"ref_event_id": format!("p{o}")}),
        ),
        3 => (
            "PEN",
            "PERFORMED",
            format!("pf{n}"),
            json!({"decision_no": format!("D{o}")}),
        ),
        4 => (
            "LIST",
            "LISTED",
            format!("l{n}"),
            json!({"list_kind": "ABNORMAL"}),
        ),
        5 => (
            "LIST",
            "LISTED",
            format!("l{n}"),
            json!({"list_kind": "SERIOUS_ILLEGAL"}),
        ),
        6 => (
            "LIST",
            "REMOVED",
            format!("lr{n}"),
            json!({"ref_event_id": format!("l{o}")}),
        ),
        7 => (
            "TAX",
            "GRADE",
            format!("g{n}"),
            json!({"eval_year": 2021 + i32::from(o), "grade": pick(&["A", "B", "C", "D"], n)}),
        ),
        8 => (
            "TAX",
            "ARREARS_ASSESSED",
            format!("ta{n}"),
            json!({"amount_fen": 3_000_000}),
        ),
        9 => (
            "TAX",
            "ARREARS_PAID",
            format!("tp{n}"),
            json!({"ref_event_id": format!("ta{o}"), "amount_fen": 1_000_000}),
        ),
        10 => (
            "TAX",
            "DECLARED",
            format!("td{n}"),
            json!({"period": format!("2022-{:02}", 1 + (op.day % 12)), "sales_fen": i64::from(o) * 1_000}),
        ),
        11 => (
            "TAX",
            "SOCIAL_INSURANCE",
            format!("ts{n}"),
            json!({"period": format!("2022-{:02}", 1 + (op.day % 12)), "insured_count": i64::from(o) * 7}),
        ),
        12 => (
            "JUD",
            "DISHONEST_LISTED",
            format!("jd{n}"),
            json!({"court_code": "C", "case_no": format!("K{n}"), "list_until": date(200)}),
        ),
        13 => (
            "JUD",
            "DISHONEST_REMOVED",
            format!("jr{n}"),
            json!({"court_code": "C", "case_no": format!("K{o}")}),
        ),
        14 => (
            "JUD",
            "ENFORCEMENT_FILED",
            format!("je{n}"),
            json!({"court_code": "C", "case_no": format!("E{n}"), "role": "DEFENDANT", "amount_fen": 50_000_000, "due_date": date(60)}),
        ),
        15 => (
            "JUD",
            "ENFORCEMENT_TERMINATED",
            format!("jt{n}"),
            json!({"court_code": "C", "case_no": format!("E{o}"), "unpaid_fen": 20_000_000}),
        ),
        16 => (
            "JUD",
            "ENFORCEMENT_CLOSED",
            format!("jc{n}"),
            json!({"court_code": "C", "case_no": format!("E{o}")}),
        ),
        17 => (
            "FIN",
            "OVERDUE_LISTED",
            format!("fo{n}"),
            json!({"database": "OVERDUE", "loan_id": format!("L{n}"), "overdue_days": i64::from(o) * 25, "overdue_fen": 4_000_000}),
        ),
        18 => (
            "FIN",
            "OVERDUE_CLEARED",
            format!("fc{n}"),
            json!({"database": "OVERDUE", "loan_id": format!("L{o}")}),
        ),
        19 => (
            "FIN",
            "DEBT_EVASION_LISTED",
            format!("fd{n}"),
            json!({"database": "DEBT_EVASION"}),
        ),
        20 => (
            "REG",
            "ESTABLISHED",
            format!("re{n}"),
            json!({"region_code": "330802", "industry_code": format!("I{o}")}),
        ),
        21 => (
            "REG",
            "STATUS",
            format!("rs{n}"),
            json!({"status": pick(&["REVOKED", "ACTIVE", "DEREGISTERED", "ACTIVE"], o)}),
        ),
        22 => (
            "REG",
            "SHAREHOLDER",
            format!("rh{n}"),
            json!({"counterparty_uscc": code(o % ENTERPRISES), "share_bp": 300 + i64::from(o) * 400}),
        ),
        23 => (
            "REG",
            "INVESTMENT",
            format!("ri{n}"),
            json!({"counterparty_uscc": code(o % ENTERPRISES), "share_bp": i64::from(o) * 1000}),
        ),
        24 => (
            "PER",
            "ROLE",
            format!("pe{n}"),
            json!({"person_hash": format!("P{}", o % 2), "role": "LEGAL_REP"}),
        ),
        25 => (
            "PER",
            "SCORE",
            format!("ps{n}"),
            json!({"person_hash": format!("P{}", o % 2), "score": 500 + i64::from(o) * 100, "scale_max": 1000}),
        ),
        26 => (
            "PER",
            "DISHONEST_LISTED",
            format!("pd{n}"),
            json!({"person_hash": format!("P{}", o % 2)}),
        ),
        27 => (
            "CMT",
            "VERIFIED",
            format!("cv{n}"),
            json!({"commitment_id": format!("K{n}"), "result": pick(&["BROKEN", "RECTIFY", "NORMAL", "RECTIFY"], o), "rectify_deadline": date(20)}),
        ),
        28 => (
            "RPR",
            "COMPLETED",
            format!("rp{n}"),
            json!({"target_feed": pick(&["PEN", "LIST"], o % 2), "target_event_id": format!("{}{}", pick(&["p", "l"], o % 2), o), "repair_type": "TERMINATE_PUBLICITY", "effective_time": format_rfc3339(et + 5 * DAY)}),
        ),
        29 => (
            "PCS",
            "SCORE",
            format!("pc{n}"),
            json!({"score": 600 + i64::from(o) * 100}),
        ),
        30 => (
            "REG",
            "ANNUAL_REPORT",
            format!("ra{n}"),
            json!({"report_year": 2021 + i32::from(o % 3), "reported_tax_fen": 0, "reported_staff": i64::from(n % 2) * 3}),
        ),
        31 => (
            "INSP",
            "RESULT",
            format!("in{n}"),
            json!({"campaign_id": "C", "result": pick(&["PASS", "FAIL", "PASS", "NOT_OPERATING"], o)}),
        ),
        32 => (
            "CMT",
            "PUBLISHED",
            format!("cp{n}"),
            json!({"commitment_id": format!("K{n}"), "type": pick(&["APPROVAL", "VOLUNTARY"], o), "matter": pick(&["LICENCE_APPROVAL", "FINANCING", "OTHER"], o), "valid_until": date(40 + i64::from(o) * 90)}),
        ),
        // A repair of a court list (non-repairable by default) or of a record never seen.
        33 => (
            "RPR",
            "COMPLETED",
            format!("rq{n}"),
            json!({"target_feed": pick(&["JUD", "TAX"], o % 2), "target_event_id": format!("{}{}", pick(&["jd", "nx"], o % 2), o), "repair_type": "LIST_REMOVAL", "effective_time": format_rfc3339(et + 400 * DAY)}),
        ),
        34 => (
            "RPR",
            "REVOKED",
            format!("rv{n}"),
            json!({"ref_event_id": format!("rp{o}")}),
        ),
        // Records that name a declaration or a score, which then stay in the core part of
        // their enterprise (D65): a retraction of another kind (target_mismatch) and a
        // repair.
        35 => (
            "TAX",
            "ABNORMAL_LIFTED",
            format!("tl{n}"),
            json!({"ref_event_id": format!("td{o}")}),
        ),
        36 => (
            "RPR",
            "COMPLETED",
            format!("rs{n}"),
            json!({"target_feed": pick(&["PER", "PCS"], o % 2), "target_event_id": format!("{}{}", pick(&["ps", "pc"], o % 2), o), "repair_type": "TERMINATE_PUBLICITY", "effective_time": format_rfc3339(et + 3 * DAY)}),
        ),
        // A court case, and its closing: withdrawn or dismissed voids it from the start.
        37 => (
            "JUD",
            "CASE_FILED",
            format!("jf{n}"),
            json!({"court_code": "C", "case_no": format!("F{n}"), "role": pick(&["DEFENDANT", "PLAINTIFF"], o), "cause": "CONTRACT", "amount_fen": 8_000_000}),
        ),
        38 => (
            "JUD",
            "CASE_CLOSED",
            format!("jx{n}"),
            json!({"court_code": "C", "case_no": format!("F{o}"), "close_reason": pick(&["WITHDRAWN", "JUDGED", "DISMISSED", "SETTLED"], n)}),
        ),
        // A mortgage carrying one code, and its cancellation: a place that ends, and the
        // latest region and the latest industry from different records.
        39 => (
            "REG",
            "MORTGAGE",
            format!("rm{n}"),
            if o % 2 == 0 {
                json!({"region_code": format!("33{o:04}")})
            } else {
                json!({"industry_code": format!("J{o}")})
            },
        ),
        40 => (
            "REG",
            "MORTGAGE_CANCELLED",
            format!("rc{n}"),
            json!({"ref_event_id": format!("rm{o}")}),
        ),
        // Tax paid in the years the annual reports cover, sometimes nothing.
        41 => (
            "TAX",
            "PAID",
            format!("tx{n}"),
            json!({"period": format!("{}-{:02}", 2021 + i32::from(o % 3), 1 + (op.day % 12)), "amount_fen": i64::from(n % 2) * 1_000}),
        ),
        // A rectification at midnight: on a RECTIFY's deadline (the end of its
        // `rectify_deadline` date) when it falls there, and tied with another of the same
        // commitment on the same day.
        42 => (
            "CMT",
            "RECTIFIED",
            format!("cr{n}"),
            json!({"commitment_id": format!("K{o}"), "event_time": format_rfc3339(et - 3600)}),
        ),
        // The pipeline's own scheduling records come back like any other input.
        _ => (
            "CMT",
            "SCHEDULED",
            format!("cs{n}"),
            json!({"commitment_id": format!("K{n}"), "method": pick(&["RANDOM", "ONSITE", "EXEMPT"], o), "source_org": "STEWARD"}),
        ),
    };
    let mut obj = json!({
        "uscc": code(op.ent), "feed": feed, "kind": kind, "event_id": id, "version": op.version,
        "event_time": format_rfc3339(et), "ingest_time": format_rfc3339(ingest),
    });
    for (k, v) in extra.as_object()? {
        obj[k] = v.clone();
    }
    let event: Event = serde_json::from_value(obj).ok()?;
    Some(Accepted {
        v: event.ingest_time,
        digest: digest(&event),
        event,
        origin: None,
    })
}

/// The records of `ops` (an operation whose record is invalid gives none).
pub fn log_of(ops: &[Op]) -> Vec<Accepted> {
    ops.iter().filter_map(record).collect()
}

/// Operations over every enterprise and template.
#[cfg(feature = "proptest")]
pub fn op() -> impl Strategy<Value = Op> {
    op_of(0..ENTERPRISES, 0..TEMPLATES, 0i64..900, 0i64..200_000)
}

/// Operations of one enterprise over the given templates.
#[cfg(feature = "proptest")]
pub fn op_in(templates: &'static [u8]) -> impl Strategy<Value = Op> {
    op_of(
        Just(0),
        proptest::sample::select(templates),
        0i64..900,
        0i64..200_000,
    )
}

/// Operations of one enterprise over every template in two weeks, ingested at once or an
/// hour later: records tie on event time, and on event and ingest time, all the time.
#[cfg(feature = "proptest")]
pub fn op_crowded() -> impl Strategy<Value = Op> {
    op_of(Just(0), 0..TEMPLATES, 0i64..14, at_once_or_later())
}

/// Operations of one enterprise over the given templates within `days` days, ingested at
/// once or an hour later.
#[cfg(feature = "proptest")]
pub fn op_near(templates: &'static [u8], days: i64) -> impl Strategy<Value = Op> {
    op_of(
        Just(0),
        proptest::sample::select(templates),
        0..days,
        at_once_or_later(),
    )
}

#[cfg(feature = "proptest")]
fn at_once_or_later() -> impl Strategy<Value = i64> {
    proptest::sample::select(&[0, 3600][..])
}

#[cfg(feature = "proptest")]
fn op_of(
    ent: impl Strategy<Value = u8>,
    template: impl Strategy<Value = u8>,
    day: impl Strategy<Value = i64>,
    lag_secs: impl Strategy<Value = i64>,
) -> impl Strategy<Value = Op> {
    (ent, template, day, lag_secs, 0u8..4, 1u32..3, 0u8..4).prop_map(
        |(ent, template, day, lag_secs, id, version, other)| Op {
            ent,
            template,
            day,
            lag_secs,
            id,
            version,
            other,
        },
    )
}
