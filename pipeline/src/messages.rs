//! The messages steward publishes (output contract, `docs/outputs.md`): their types, and
//! the JSON Schemas generated from those types (`docs/schemas/`). Every message carries
//! the contract's format version ([`rules::contract::Versioned`]).

use std::collections::BTreeMap;

use connectors::clickhouse::PlanRow;
use connectors::dead_letter::LetterMessage;
use rules::contract::Versioned;
use rules::indicators::ReviewFlag;
use rules::monitor::{Alert, ColourChange};
use rules::score::{Colour, Reason};
use rules::supervision::{PreCredit, Scheduled};
use rules::time::{Rfc3339, Ts};
use schemars::JsonSchema;
use serde::Serialize;

use crate::plan::Count;
use engine::tracker::PreCreditChange;

/// A pre-credit decision as the plans topic names it (`null` when there is none: colour
/// `none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PreCreditStatus {
    /// A line (blue and green); the line is `line_fen`.
    Line,
    /// Yellow: manual review.
    Review,
    /// Red: no line.
    Ineligible,
}

impl PreCreditStatus {
    /// The status of `p`; `None` for [`PreCredit::None`] (no decision).
    pub fn of(p: PreCredit) -> Option<Self> {
        match p {
            PreCredit::Line(_) => Some(PreCreditStatus::Line),
            PreCredit::Review => Some(PreCreditStatus::Review),
            PreCredit::Ineligible => Some(PreCreditStatus::Ineligible),
            PreCredit::None => None,
        }
    }
}

/// A change of an enterprise's pre-credit status.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct PreCreditMessage {
    /// The enterprise.
    pub uscc: String,
    /// Logical time of the change.
    #[serde(with = "rules::time::rfc3339")]
    #[schemars(with = "Rfc3339")]
    pub as_of: Ts,
    /// Its published colour then.
    pub colour: Colour,
    /// The status from `as_of` on (`null` for colour `none`).
    pub pre_credit: Option<PreCreditStatus>,
    /// The line in fen (only with `LINE`).
    pub line_fen: Option<i64>,
    /// The status before (`null` for the first decision or colour `none`).
    pub previous: Option<PreCreditStatus>,
    /// The line before, in fen (only with a previous `LINE`).
    pub previous_line_fen: Option<i64>,
}

impl From<&PreCreditChange> for PreCreditMessage {
    fn from(c: &PreCreditChange) -> Self {
        PreCreditMessage {
            uscc: c.uscc.clone(),
            as_of: c.as_of,
            colour: c.colour,
            pre_credit: PreCreditStatus::of(c.to),
            line_fen: c.to.line_fen(),
            previous: PreCreditStatus::of(c.from),
            previous_line_fen: c.from.line_fen(),
        }
    }
}

/// The scheduling decision of a published commitment (`commitment_tasks.jsonl`; on the
/// plans topic when a task is issued).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct TaskDecision {
    /// The decision.
    #[serde(flatten)]
    pub decision: Scheduled,
    /// The event id of its `CMT.SCHEDULED` record on the internal commitments topic.
    pub event_id: String,
}

impl From<&Scheduled> for TaskDecision {
    fn from(s: &Scheduled) -> Self {
        TaskDecision {
            event_id: s.event().event_id.to_string(),
            decision: s.clone(),
        }
    }
}

/// An enterprise selected by an inspection campaign (`steward plan`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SelectionMessage {
    /// The campaign.
    pub campaign_id: String,
    /// The seed of the sampling hash.
    pub seed: u64,
    /// The logical time of the colours the campaign read.
    #[serde(with = "rules::time::rfc3339")]
    #[schemars(with = "Rfc3339")]
    pub snapshot: Ts,
    /// The enterprise.
    pub uscc: String,
    /// Its published colour at the snapshot.
    pub colour: Colour,
    /// Its `S` then (`null` when not scored).
    pub score: Option<f64>,
    /// The draw of the sampling hash.
    pub u: f64,
    /// The colour's inspection probability.
    pub probability: f64,
    /// Why it was selected (`sampled` or a targeted override).
    pub reason: String,
    /// The top five contributions then.
    pub reasons: Vec<Reason>,
    /// Region code (`null` when not known).
    pub region: Option<String>,
    /// Industry code (`null` when not known).
    pub industry: Option<String>,
}

/// An inspection campaign's summary (`steward plan`), after its selections.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CampaignMessage {
    /// The campaign.
    pub campaign_id: String,
    /// The seed of the sampling hash.
    pub seed: u64,
    /// The logical time of the colours the campaign read.
    #[serde(with = "rules::time::rfc3339")]
    #[schemars(with = "Rfc3339")]
    pub snapshot: Ts,
    /// Only this region, if the campaign was limited to one.
    pub region: Option<String>,
    /// Only this industry, if the campaign was limited to one.
    pub industry: Option<String>,
    /// Population and selections by colour.
    pub counts: BTreeMap<Colour, Count>,
    /// The pooled selection rate of blue and green.
    pub low_risk_rate: f64,
}

/// A message on the plans topic, told apart by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PlanMessage {
    /// A change of an enterprise's pre-credit status.
    PreCredit(PreCreditMessage),
    /// An inspection task issued for a published commitment.
    VerificationTask(TaskDecision),
    /// An enterprise selected by an inspection campaign.
    InspectionSelection(SelectionMessage),
    /// A campaign's summary.
    InspectionCampaign(CampaignMessage),
}

impl SelectionMessage {
    /// The message of a selection row (`inspection_plans`).
    pub fn of(r: &PlanRow) -> Self {
        let known = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        SelectionMessage {
            campaign_id: r.campaign_id.clone(),
            seed: r.seed,
            snapshot: Ts::from(r.snapshot),
            uscc: r.uscc.clone(),
            colour: crate::plan::colour_of(&r.colour),
            score: r.score,
            u: r.u,
            probability: r.probability,
            reason: r.reason.clone(),
            reasons: serde_json::from_str(&r.reasons).unwrap_or_default(),
            region: known(&r.region),
            industry: known(&r.industry),
        }
    }
}

/// One line of `state.jsonl` (`steward run`): an enterprise's state at the data's end.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct StateLine {
    /// The enterprise.
    pub uscc: String,
    /// The data's end: the input's latest visibility time.
    #[serde(with = "rules::time::rfc3339")]
    #[schemars(with = "Rfc3339")]
    pub as_of: Ts,
    /// Published colour (`none`: not scored, R9).
    pub colour: Colour,
    /// The colour of `s` alone, before triggers and hysteresis.
    pub score_colour: Colour,
    /// Score `S` (0–1000, one decimal); `null` when not scored.
    pub s: Option<f64>,
    /// Provincial public credit score `P`; `null` when there is none.
    pub p: Option<f64>,
    /// Own-risk component `M`.
    pub m: f64,
    /// Model component `Q`; `null` without a model.
    pub q: Option<f64>,
    /// Composite risk `R` (0–1).
    pub r: f64,
    /// Active trigger codes.
    pub triggers: Vec<String>,
    /// Level-1 values by catalogue code (`A` … `H`).
    pub level1: BTreeMap<String, f64>,
    /// Level-2 values by catalogue code.
    pub level2: BTreeMap<String, f64>,
    /// The 49 level-3 r-values by indicator id.
    pub level3: BTreeMap<String, f64>,
    /// Region code (`null` when not known).
    pub region: Option<String>,
    /// Industry code (`null` when not known).
    pub industry: Option<String>,
    /// The top five contributions.
    pub reasons: Vec<Reason>,
    /// Review flags of its credit repairs.
    pub review_flags: Vec<ReviewFlag>,
    /// The pre-credit decision (`null` for colour `none`).
    pub pre_credit: Option<PreCreditStatus>,
    /// The line in fen (only with `LINE`).
    pub pre_credit_line_fen: Option<i64>,
    /// Catalogue version.
    pub rules_version: String,
    /// Risk model version (`null` without a model).
    pub model_version: Option<String>,
}

/// `message` as the JSON bytes of a versioned message.
pub fn to_bytes<T: Serialize>(message: T) -> Vec<u8> {
    serde_json::to_vec(&Versioned::new(message)).unwrap_or_default()
}

/// Every output message's JSON Schema, by the file name it is published under in
/// `docs/schemas/`.
pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
    fn schema<T: JsonSchema>(title: &str) -> serde_json::Value {
        let mut s = serde_json::to_value(schemars::schema_for!(Versioned<T>)).unwrap_or_default();
        s["title"] = title.into();
        s
    }
    vec![
        ("colour_change", schema::<ColourChange>("colour change")),
        ("alert", schema::<Alert>("alert")),
        ("plan", schema::<PlanMessage>("plans topic message")),
        ("dead_letter", schema::<LetterMessage>("dead letter")),
        (
            "commitment_task",
            schema::<TaskDecision>("commitment scheduling decision"),
        ),
        (
            "state",
            schema::<StateLine>("enterprise state (state.jsonl)"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails when a committed schema in `docs/schemas/` differs from the generated one; run
    /// with `UPDATE_SCHEMAS=1` to rewrite them.
    #[test]
    fn committed_schemas_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schemas");
        let update = std::env::var_os("UPDATE_SCHEMAS").is_some_and(|v| v == "1");
        let mut stale = Vec::new();
        for (name, schema) in schemas() {
            let path = dir.join(format!("{name}.schema.json"));
            let mut text = serde_json::to_string_pretty(&schema).expect("schema serialises");
            text.push('\n');
            if update {
                std::fs::create_dir_all(&dir).expect("create docs/schemas");
                std::fs::write(&path, &text).expect("write schema");
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(path.display().to_string());
            }
        }
        assert!(
            stale.is_empty(),
            "stale schemas (regenerate with UPDATE_SCHEMAS=1 cargo test -p pipeline messages): {stale:?}"
        );
    }

    #[test]
    fn plan_messages_are_told_apart_by_type_after_the_version() {
        let c = PreCreditChange {
            uscc: "u".into(),
            as_of: 0,
            colour: Colour::None,
            from: PreCredit::Line(5),
            to: PreCredit::None,
        };
        let text = String::from_utf8(to_bytes(PlanMessage::PreCredit((&c).into()))).expect("utf8");
        assert_eq!(
            text,
            r#"{"format_version":3,"type":"pre_credit","uscc":"u","as_of":"1970-01-01T00:00:00Z","colour":"none","pre_credit":null,"line_fen":null,"previous":"LINE","previous_line_fen":5}"#
        );
    }
}
