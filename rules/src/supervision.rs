//! What the colour drives (`supervision.md`): the sampling hash of graded random
//! inspection, the inspection probabilities, frequency caps and targeted overrides, the
//! verification method of a published commitment, and the pre-credit line. The parameters
//! are data: a validated, versioned TOML file whose embedded default is
//! `config/supervision.toml`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::{Body, Cmt, CmtKind, Event, VerifyMethod};
use crate::fact::Check;
use crate::format_compact;
use crate::score::Colour;
use crate::time::{sub_months, Ts, DAY};

/// The embedded default parameters.
pub const DEFAULT_TOML: &str = include_str!("../../config/supervision.toml");

/// A parameter error, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum SupervisionError {
    /// The file is not valid TOML or does not match the structure.
    #[error("supervision configuration: {0}")]
    Parse(String),
    /// A field has a value that cannot work.
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted path of the field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> SupervisionError {
    SupervisionError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// The supervision parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Supervision {
    /// Format version of this file; must be 1.
    pub version: u32,
    /// Graded random inspection.
    pub inspection: Inspection,
    /// The pre-credit line.
    pub pre_credit: PreCreditRule,
    /// The verification method of a commitment at `PUBLISHED` (D46).
    pub commitments: CommitmentRules,
}

/// How a commitment is verified, decided from the enterprise's published colour when the
/// commitment is published (`supervision.md`, `docs/decisions.md` D46). Every commitment is
/// also verified off-site automatically; these rules only decide whether an inspection task
/// is issued on top.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitmentRules {
    /// Seed of the sampling hash; the key is the `commitment_id` (D41).
    pub seed: u64,
    /// Blue enterprises.
    pub blue: MethodRule,
    /// Green enterprises.
    pub green: MethodRule,
    /// Yellow enterprises.
    pub yellow: MethodRule,
    /// Red enterprises.
    pub red: MethodRule,
    /// Colour `none`: scoring stopped (R9, licence revoked or deregistered).
    pub none: MethodRule,
}

/// The method of one colour.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodRule {
    /// `RANDOM` or `ONSITE`: a task is issued for a share `probability` of the commitments;
    /// `EXEMPT`: no task.
    pub method: VerifyMethod,
    /// Share of commitments that get a task, 0–1; required with `RANDOM` and `ONSITE`, not
    /// allowed with `EXEMPT`.
    #[serde(default)]
    pub probability: Option<f64>,
    /// The task is due this many days after the decision; no due date when absent. Not
    /// allowed with `EXEMPT`.
    #[serde(default)]
    pub due_days: Option<u32>,
}

/// The scheduling decision of one published commitment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Scheduled {
    /// The enterprise.
    pub uscc: String,
    /// The commitment.
    pub commitment_id: String,
    /// Logical time of the decision: when the commitment's `PUBLISHED` became visible.
    #[serde(with = "crate::time::rfc3339")]
    #[schemars(with = "crate::time::Rfc3339")]
    pub as_of: Ts,
    /// The published colour at `as_of`, after every record visible at `as_of` (D46).
    pub colour: Colour,
    /// The method: the colour's method when a task is drawn, else `EXEMPT`.
    pub method: VerifyMethod,
    /// Whether an inspection task is issued.
    pub task: bool,
    /// The draw `u` (sampling hash of the seed and the `commitment_id`).
    pub u: f64,
    /// The colour's task probability (0 for `EXEMPT`).
    pub probability: f64,
    /// When the task is due, if it is issued and the colour has `due_days`.
    #[serde(with = "crate::time::rfc3339_opt")]
    #[schemars(with = "Option<crate::time::Rfc3339>")]
    pub due: Option<Ts>,
}

/// A verification result as the commitment loop reports it (a `commitment_checks` row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// The enterprise.
    pub uscc: String,
    /// The logical time it is first both visible and in effect: `max(v, check.at)`.
    #[serde(with = "crate::time::rfc3339")]
    pub as_of: Ts,
    /// The result.
    pub check: Check,
}

impl Verification {
    /// The order results are reported in.
    pub fn key(&self) -> (Ts, &str, &Check) {
        (self.as_of, &self.uscc, &self.check)
    }
}

/// Who the pipeline says a record it publishes comes from (`semantics.md` §5).
pub const STEWARD_ORG: &str = "STEWARD";

impl CommitmentRules {
    /// The rule of a colour.
    pub fn rule(&self, colour: Colour) -> &MethodRule {
        match colour {
            Colour::Blue => &self.blue,
            Colour::Green => &self.green,
            Colour::Yellow => &self.yellow,
            Colour::Red => &self.red,
            Colour::None => &self.none,
        }
    }

    fn rules(&self) -> [(&'static str, &MethodRule); 5] {
        [
            ("blue", &self.blue),
            ("green", &self.green),
            ("yellow", &self.yellow),
            ("red", &self.red),
            ("none", &self.none),
        ]
    }

    /// Decides the commitment `commitment_id` of `uscc`, published (visible) at `at`, when
    /// the enterprise's published colour is `colour`: a task is issued when
    /// `draw(seed, commitment_id) < probability`.
    pub fn schedule(&self, uscc: &str, commitment_id: &str, colour: Colour, at: Ts) -> Scheduled {
        let rule = self.rule(colour);
        let u = draw(self.seed, commitment_id);
        let probability = rule.probability.unwrap_or(0.0);
        let task = rule.method != VerifyMethod::Exempt && u < probability;
        Scheduled {
            uscc: uscc.to_owned(),
            commitment_id: commitment_id.to_owned(),
            as_of: at,
            colour,
            method: if task {
                rule.method
            } else {
                VerifyMethod::Exempt
            },
            task,
            u,
            probability,
            due: rule
                .due_days
                .filter(|_| task)
                .map(|d| at.saturating_add(i64::from(d) * DAY)),
        }
    }
}

impl Scheduled {
    /// The `CMT.SCHEDULED` record that carries the decision through the internal topic:
    /// `source_org` `STEWARD`, event and ingest time `as_of`, and an event id derived from the
    /// enterprise and the commitment, so that a replay gives the same bytes and the feed's
    /// duplicate filter drops a repeat.
    pub fn event(&self) -> Event {
        let mut h = Sha256::new();
        h.update(self.uscc.as_bytes());
        h.update([0x1f]);
        h.update(self.commitment_id.as_bytes());
        let id = hex::encode(h.finalize());
        Event {
            uscc: self.uscc.as_str().into(),
            event_id: format_compact!("STEWARD-SCHEDULED-{}", &id[..40]),
            version: 1,
            event_time: self.as_of,
            ingest_time: self.as_of,
            source_org: Some(STEWARD_ORG.into()),
            ref_event_id: None,
            body: Body::Cmt(Cmt {
                kind: CmtKind::Scheduled,
                commitment_id: Some(self.commitment_id.as_str().into()),
                commitment_type: None,
                matter: None,
                valid_until: None,
                method: Some(self.method),
                result: None,
                rectify_deadline: None,
            }),
        }
    }
}

/// Graded random inspection: one rule per colour and the targeted overrides.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inspection {
    /// Blue enterprises.
    pub blue: ColourRule,
    /// Green enterprises.
    pub green: ColourRule,
    /// Yellow enterprises.
    pub yellow: ColourRule,
    /// Red enterprises.
    pub red: ColourRule,
    /// Targeted overrides, applied in order (the highest probability wins).
    #[serde(default)]
    pub overrides: Vec<Override>,
}

/// The selection probability of a colour and its "at most" frequency.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColourRule {
    /// Probability per campaign, 0–1.
    pub probability: f64,
    /// At most this many selections within `window_months` before the snapshot (the new one
    /// included); no cap when absent.
    #[serde(default)]
    pub max_selections: Option<u32>,
    /// The cap's window in calendar months; required with `max_selections`.
    #[serde(default)]
    pub window_months: Option<u32>,
}

/// A targeted override: a higher selection probability for enterprises with a given
/// indicator (and, optionally, a large registered capital).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// Name written as the selection reason (`override:<name>`).
    pub name: String,
    /// Catalogue row (1–49) of the level-3 indicator.
    pub row: u8,
    /// The indicator's r-value must be at least this.
    pub min_value: f64,
    /// When given, the latest registered capital (fen) must be at least this.
    #[serde(default)]
    pub min_registered_capital_fen: Option<i64>,
    /// Probability per campaign, 0–1.
    pub probability: f64,
}

/// Parameters of the pre-credit line.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreCreditRule {
    /// The largest line, in fen.
    pub cap_fen: i64,
    /// Multiple of the tax paid over the catalogue's `tax_paid_months` window.
    pub factor: f64,
    /// Multiplier for blue enterprises.
    pub blue_multiplier: f64,
    /// Multiplier for green enterprises.
    pub green_multiplier: f64,
}

impl Supervision {
    /// Parses and validates `text`.
    pub fn from_toml(text: &str) -> Result<Self, SupervisionError> {
        let s: Supervision =
            toml::from_str(text).map_err(|e| SupervisionError::Parse(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    /// The embedded default.
    pub fn embedded() -> Self {
        Self::from_toml(DEFAULT_TOML).expect("the embedded supervision.toml is valid")
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), SupervisionError> {
        if self.version != 1 {
            return Err(invalid(
                "version",
                format!("{} is not a supported version (1)", self.version),
            ));
        }
        let probability = |field: String, p: f64| {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(invalid(field, format!("{p} is not a probability in 0–1")))
            }
        };
        for (name, rule) in self.inspection.rules() {
            let field = |f: &str| format!("inspection.{name}.{f}");
            probability(field("probability"), rule.probability)?;
            match (rule.max_selections, rule.window_months) {
                (Some(0), _) => return Err(invalid(field("max_selections"), "must be at least 1")),
                (Some(_), None) => {
                    return Err(invalid(
                        field("window_months"),
                        "required with max_selections",
                    ))
                }
                (None, Some(_)) => {
                    return Err(invalid(
                        field("max_selections"),
                        "required with window_months",
                    ))
                }
                (_, Some(0)) => return Err(invalid(field("window_months"), "must be at least 1")),
                _ => {}
            }
        }
        for (i, o) in self.inspection.overrides.iter().enumerate() {
            let field = |f: &str| format!("inspection.overrides[{i}].{f}");
            if o.name.is_empty() {
                return Err(invalid(field("name"), "must not be empty"));
            }
            if !(1..=49).contains(&o.row) {
                return Err(invalid(
                    field("row"),
                    format!("{} is not a row 1–49", o.row),
                ));
            }
            probability(field("probability"), o.probability)?;
        }
        for (name, rule) in self.commitments.rules() {
            let field = |f: &str| format!("commitments.{name}.{f}");
            match (rule.method, rule.probability) {
                (VerifyMethod::Offsite, _) => {
                    return Err(invalid(
                        field("method"),
                        "OFFSITE applies to every commitment; use RANDOM, ONSITE or EXEMPT",
                    ))
                }
                (VerifyMethod::Exempt, Some(_)) => {
                    return Err(invalid(field("probability"), "not allowed with EXEMPT"))
                }
                (VerifyMethod::Exempt, None) => {
                    if rule.due_days.is_some() {
                        return Err(invalid(field("due_days"), "not allowed with EXEMPT"));
                    }
                }
                (_, None) => {
                    return Err(invalid(
                        field("probability"),
                        "required with RANDOM and ONSITE",
                    ))
                }
                (_, Some(p)) => probability(field("probability"), p)?,
            }
            if rule.due_days == Some(0) {
                return Err(invalid(field("due_days"), "must be at least 1"));
            }
        }
        let p = &self.pre_credit;
        if p.cap_fen < 0 {
            return Err(invalid("pre_credit.cap_fen", "must not be negative"));
        }
        for (f, x) in [
            ("factor", p.factor),
            ("blue_multiplier", p.blue_multiplier),
            ("green_multiplier", p.green_multiplier),
        ] {
            if !x.is_finite() || x < 0.0 {
                return Err(invalid(
                    format!("pre_credit.{f}"),
                    format!("{x} must be a finite number ≥ 0"),
                ));
            }
        }
        Ok(())
    }
}

impl Inspection {
    /// The rule of a colour; `None` for [`Colour::None`] (never selected).
    pub fn rule(&self, colour: Colour) -> Option<&ColourRule> {
        match colour {
            Colour::Blue => Some(&self.blue),
            Colour::Green => Some(&self.green),
            Colour::Yellow => Some(&self.yellow),
            Colour::Red => Some(&self.red),
            Colour::None => None,
        }
    }

    fn rules(&self) -> [(&'static str, &ColourRule); 4] {
        [
            ("blue", &self.blue),
            ("green", &self.green),
            ("yellow", &self.yellow),
            ("red", &self.red),
        ]
    }
}

/// The sampling hash: the first 8 bytes of SHA-256 over the seed's decimal digits followed
/// by `key` (a USCC or a `commitment_id`), as a big-endian unsigned integer, divided by
/// 2^64. An auditor reproduces it with `printf '%s%s' SEED KEY | sha256sum`.
pub fn draw(seed: u64, key: &str) -> f64 {
    let mut h = Sha256::new();
    h.update(seed.to_string().as_bytes());
    h.update(key.as_bytes());
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_be_bytes(first) as f64 / 18_446_744_073_709_551_616.0
}

/// What the inspection rules know about one enterprise at the snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate<'a> {
    /// The enterprise.
    pub uscc: &'a str,
    /// Its published colour.
    pub colour: Colour,
    /// Its 49 level-3 values in row order (empty when unknown).
    pub level3: &'a [f64],
    /// Its latest registered capital in fen, if known.
    pub registered_capital_fen: Option<i64>,
    /// Snapshots of the earlier campaigns that selected it by colour.
    pub earlier: &'a [Ts],
}

/// The decision about one candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The draw `u(e)`.
    pub u: f64,
    /// The probability that applied.
    pub probability: f64,
    /// `colour` or `override:<name>`: where the probability came from.
    pub reason: String,
    /// Whether it is selected.
    pub selected: bool,
    /// Not selected although `u < p`, because of the colour's frequency cap.
    pub capped: bool,
}

impl Inspection {
    /// Decides one candidate of campaign `seed` at `snapshot`. The colour's probability and
    /// every matching override compete; the highest wins (ties keep the colour). The
    /// frequency cap applies to selections by colour; a targeted override is a targeted
    /// inspection and is not capped.
    pub fn decide(&self, seed: u64, snapshot: Ts, c: &Candidate<'_>) -> Option<Decision> {
        let rule = self.rule(c.colour)?;
        let u = draw(seed, c.uscc);
        let mut probability = rule.probability;
        let mut reason = "colour".to_owned();
        for o in &self.overrides {
            let value = c.level3.get(usize::from(o.row) - 1).copied();
            let capital_ok = o
                .min_registered_capital_fen
                .is_none_or(|min| c.registered_capital_fen.is_some_and(|k| k >= min));
            if value.is_some_and(|v| v >= o.min_value) && capital_ok && o.probability > probability
            {
                probability = o.probability;
                reason = format!("override:{}", o.name);
            }
        }
        let drawn = u < probability;
        let capped = drawn
            && reason == "colour"
            && match (rule.max_selections, rule.window_months) {
                (Some(max), Some(months)) => {
                    let from = sub_months(snapshot, months);
                    let recent = c
                        .earlier
                        .iter()
                        .filter(|t| **t > from && **t <= snapshot)
                        .count();
                    recent >= max as usize
                }
                _ => false,
            };
        Some(Decision {
            u,
            probability,
            reason,
            selected: drawn && !capped,
            capped,
        })
    }
}

/// An enterprise's pre-credit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(
    tag = "pre_credit",
    content = "line_fen",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum PreCredit {
    /// A line in fen (blue and green).
    Line(i64),
    /// Yellow: manual review.
    Review,
    /// Red: no line.
    Ineligible,
    /// Not scored (colour `none`): no decision.
    None,
}

impl PreCredit {
    /// `LINE`, `REVIEW`, `INELIGIBLE` or the empty string.
    pub fn as_str(self) -> &'static str {
        match self {
            PreCredit::Line(_) => "LINE",
            PreCredit::Review => "REVIEW",
            PreCredit::Ineligible => "INELIGIBLE",
            PreCredit::None => "",
        }
    }

    /// The line in fen, if there is one.
    pub fn line_fen(self) -> Option<i64> {
        match self {
            PreCredit::Line(x) => Some(x),
            _ => None,
        }
    }
}

impl PreCreditRule {
    /// `min(cap, factor × tax_paid_fen × m)` for blue (`m` = blue multiplier) and green;
    /// `REVIEW` for yellow, `INELIGIBLE` for red. The product is rounded half away from zero
    /// to whole fen.
    pub fn line(&self, colour: Colour, tax_paid_fen: i64) -> PreCredit {
        let m = match colour {
            Colour::Blue => self.blue_multiplier,
            Colour::Green => self.green_multiplier,
            Colour::Yellow => return PreCredit::Review,
            Colour::Red => return PreCredit::Ineligible,
            Colour::None => return PreCredit::None,
        };
        let raw = (self.factor * tax_paid_fen.max(0) as f64 * m).round() as i64;
        PreCredit::Line(raw.min(self.cap_fen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_parameters_are_the_spec_defaults() {
        let s = Supervision::embedded();
        assert_eq!(s.inspection.blue.probability, 0.05);
        assert_eq!(s.inspection.green.probability, 0.10);
        assert_eq!(s.inspection.yellow.probability, 0.30);
        assert_eq!(s.inspection.red.probability, 1.0);
        assert_eq!(s.inspection.red.max_selections, None);
        assert_eq!(s.pre_credit.cap_fen, 300_000_000);
        assert_eq!(s.inspection.overrides.len(), 2);
    }

    #[test]
    fn errors_name_the_field() {
        let bad = DEFAULT_TOML.replace("probability = 0.30", "probability = 1.30");
        let e = Supervision::from_toml(&bad).unwrap_err().to_string();
        assert!(e.starts_with("inspection.yellow.probability:"), "{e}");
        let bad = DEFAULT_TOML.replace("row = 14", "row = 50");
        let e = Supervision::from_toml(&bad).unwrap_err().to_string();
        assert!(e.starts_with("inspection.overrides[1].row:"), "{e}");
        let bad = DEFAULT_TOML.replace("factor = 3.0", "factor = 3.0\nfactr = 1");
        let e = Supervision::from_toml(&bad).unwrap_err().to_string();
        assert!(e.contains("factr"), "{e}");
        let bad = DEFAULT_TOML.replace("window_months = 24", "");
        let e = Supervision::from_toml(&bad).unwrap_err().to_string();
        assert!(e.starts_with("inspection.blue.window_months:"), "{e}");
    }

    #[test]
    fn draw_is_the_first_eight_bytes_of_sha256_over_seed_and_key() {
        // printf '%s%s' 42 91330803MAGB4JU2LM | sha256sum
        let d = Sha256::digest(b"4291330803MAGB4JU2LM");
        let want = u64::from_be_bytes(d[..8].try_into().unwrap()) as f64 / 2f64.powi(64);
        assert_eq!(draw(42, "91330803MAGB4JU2LM"), want);
        assert!((0.0..1.0).contains(&want));
        assert_ne!(draw(43, "91330803MAGB4JU2LM"), want);
    }

    #[test]
    fn selection_rate_follows_the_colour() {
        let s = Supervision::embedded();
        let rate = |colour| {
            let n = 20_000;
            let hits = (0..n)
                .filter(|i| {
                    let u = format!("E{i}");
                    let c = Candidate {
                        uscc: &u,
                        colour,
                        level3: &[],
                        registered_capital_fen: None,
                        earlier: &[],
                    };
                    s.inspection.decide(7, 0, &c).unwrap().selected
                })
                .count();
            hits as f64 / f64::from(n)
        };
        assert!((rate(Colour::Blue) - 0.05).abs() < 0.01);
        assert!((rate(Colour::Green) - 0.10).abs() < 0.01);
        assert!((rate(Colour::Yellow) - 0.30).abs() < 0.015);
        assert_eq!(rate(Colour::Red), 1.0);
    }

    #[test]
    fn caps_and_overrides() {
        let s = Supervision::embedded();
        let year = 365 * 86_400;
        let t = 10 * year;
        // A red enterprise is always selected, however often it was before.
        let earlier = [t - 10, t - 20, t - 30];
        let mut c = Candidate {
            uscc: "X",
            colour: Colour::Red,
            level3: &[],
            registered_capital_fen: None,
            earlier: &earlier,
        };
        assert!(s.inspection.decide(1, t, &c).unwrap().selected);
        // Yellow at most twice a year: find a drawn one, then cap it.
        c.colour = Colour::Yellow;
        c.earlier = &[];
        let seed = (0..1000)
            .find(|seed| s.inspection.decide(*seed, t, &c).unwrap().selected)
            .unwrap();
        let twice = [t - 86_400, t - 2 * 86_400];
        c.earlier = &twice;
        let d = s.inspection.decide(seed, t, &c).unwrap();
        assert!(!d.selected && d.capped);
        let long_ago = [t - 2 * year, t - 3 * year];
        c.earlier = &long_ago;
        assert!(s.inspection.decide(seed, t, &c).unwrap().selected);
        // Row 16 with ≥ 100M CNY capital: always, even when capped by colour.
        let mut level3 = vec![0.0; 49];
        level3[15] = 100.0;
        c = Candidate {
            uscc: "Y",
            colour: Colour::Blue,
            level3: &level3,
            registered_capital_fen: Some(10_000_000_000),
            earlier: &twice,
        };
        let d = s.inspection.decide(3, t, &c).unwrap();
        assert_eq!(
            (d.selected, d.probability, d.reason.as_str()),
            (true, 1.0, "override:annual_report_mismatch_large_capital")
        );
        c.registered_capital_fen = Some(9_999_999_999);
        let d = s.inspection.decide(3, t, &c).unwrap();
        assert_eq!((d.probability, d.reason.as_str()), (0.05, "colour"));
        // Row 14 at ≥ 10 firms raises blue to 10 %.
        let mut cluster = vec![0.0; 49];
        cluster[13] = 100.0;
        c.level3 = &cluster;
        let d = s.inspection.decide(3, t, &c).unwrap();
        assert_eq!(
            (d.probability, d.reason.as_str()),
            (0.10, "override:address_cluster")
        );
        assert_eq!(
            s.inspection.decide(
                3,
                t,
                &Candidate {
                    colour: Colour::None,
                    ..c
                }
            ),
            None
        );
    }

    #[test]
    fn commitment_method_by_colour() {
        let r = Supervision::embedded().commitments;
        let at = 1_700_000_000;
        // Blue and none: never a task, whatever the draw.
        for c in [Colour::Blue, Colour::None] {
            for i in 0..200 {
                let s = r.schedule("U", &format!("K{i}"), c, at);
                assert_eq!(
                    (s.method, s.task, s.due),
                    (VerifyMethod::Exempt, false, None)
                );
                assert_eq!(s.probability, 0.0);
            }
        }
        // Red: always ONSITE, due in 30 days.
        let s = r.schedule("U", "K1", Colour::Red, at);
        assert_eq!(
            (s.method, s.task, s.due),
            (VerifyMethod::Onsite, true, Some(at + 30 * DAY))
        );
        // Green and yellow: a task exactly when the draw is below the probability.
        for (c, m, p) in [
            (Colour::Green, VerifyMethod::Random, 0.10),
            (Colour::Yellow, VerifyMethod::Onsite, 0.30),
        ] {
            let n = 20_000;
            let mut tasks = 0;
            for i in 0..n {
                let id = format!("CMT-{i}");
                let s = r.schedule("U", &id, c, at);
                assert_eq!(
                    s.u,
                    draw(r.seed, &id),
                    "the draw is keyed by the commitment id"
                );
                assert_eq!(s.task, s.u < p);
                assert_eq!(s.method, if s.task { m } else { VerifyMethod::Exempt });
                assert_eq!(s.due, None);
                tasks += usize::from(s.task);
            }
            let rate = tasks as f64 / f64::from(n);
            assert!((rate - p).abs() < 0.015, "{c:?}: {rate}");
        }
    }

    #[test]
    fn commitment_draws_are_reproducible() {
        let r = Supervision::embedded().commitments;
        // printf '%s%s' 20240601 CMT-42 | sha256sum
        let d = Sha256::digest(b"20240601CMT-42");
        let want = u64::from_be_bytes(d[..8].try_into().unwrap()) as f64 / 2f64.powi(64);
        let a = r.schedule("U1", "CMT-42", Colour::Yellow, 5);
        assert_eq!(a.u, want);
        // The same decision on another run, at another time or for another enterprise.
        let b = r.schedule("U2", "CMT-42", Colour::Yellow, 99);
        assert_eq!((a.u, a.task, a.method), (b.u, b.task, b.method));
        // The record of a decision is a pure function of it.
        assert_eq!(a.event(), a.clone().event());
        assert_ne!(
            a.event().event_id,
            b.event().event_id,
            "ids differ per enterprise"
        );
    }

    #[test]
    fn the_scheduled_record_is_valid_for_the_decoder() {
        let r = Supervision::embedded().commitments;
        let uscc = crate::uscc::with_check("91330802MA2A00001").expect("valid prefix");
        let s = r.schedule(
            &uscc,
            "a-commitment-id-of-a-certain-length-0123456789-0123456789",
            Colour::Red,
            1_700_000_000,
        );
        let e = s.event();
        assert!(e.event_id.len() <= 64, "{}", e.event_id);
        let bytes = crate::decode::encode(&e);
        let back = crate::decode::decode(
            &bytes,
            Some(crate::event::Feed::Cmt),
            &crate::decode::DecodeConfig::default(),
        )
        .expect("a valid CMT.SCHEDULED");
        assert_eq!(back.event, e);
        assert_eq!(e.source_org.as_deref(), Some(STEWARD_ORG));
    }

    #[test]
    fn commitment_rule_errors_name_the_field() {
        let cases = [
            (
                "method = \"RANDOM\"\nprobability = 0.10",
                "method = \"RANDOM\"\nprobability = 1.10",
                "commitments.green.probability:",
            ),
            (
                "method = \"RANDOM\"",
                "method = \"OFFSITE\"",
                "commitments.green.method:",
            ),
            ("due_days = 30", "due_days = 0", "commitments.red.due_days:"),
            (
                "[commitments.blue]\nmethod = \"EXEMPT\"",
                "[commitments.blue]\nmethod = \"EXEMPT\"\nprobability = 0.5",
                "commitments.blue.probability:",
            ),
            (
                "method = \"ONSITE\"\nprobability = 0.30",
                "method = \"ONSITE\"",
                "commitments.yellow.probability:",
            ),
        ];
        for (from, to, field) in cases {
            let bad = DEFAULT_TOML.replacen(from, to, 1);
            assert_ne!(bad, DEFAULT_TOML, "{from:?} applies");
            let e = Supervision::from_toml(&bad).unwrap_err().to_string();
            assert!(e.starts_with(field), "{e}");
        }
        let bad = DEFAULT_TOML.replace("seed = 20240601", "seed = 20240601\nsed = 1");
        let e = Supervision::from_toml(&bad).unwrap_err().to_string();
        assert!(e.contains("sed"), "{e}");
        let bad = DEFAULT_TOML.replace("[commitments.none]\nmethod = \"EXEMPT\"\n", "");
        let e = Supervision::from_toml(&bad).unwrap_err().to_string();
        assert!(e.contains("none"), "{e}");
    }

    #[test]
    fn pre_credit_line() {
        let p = Supervision::embedded().pre_credit;
        assert_eq!(p.line(Colour::Blue, 1_000_000), PreCredit::Line(3_000_000));
        assert_eq!(p.line(Colour::Green, 1_000_000), PreCredit::Line(2_100_000));
        assert_eq!(
            p.line(Colour::Blue, 500_000_000),
            PreCredit::Line(300_000_000)
        );
        assert_eq!(p.line(Colour::Green, 0), PreCredit::Line(0));
        assert_eq!(p.line(Colour::Yellow, 9), PreCredit::Review);
        assert_eq!(p.line(Colour::Red, 9), PreCredit::Ineligible);
        assert_eq!(p.line(Colour::None, 9), PreCredit::None);
    }
}
