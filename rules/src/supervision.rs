//! What the colour drives (`supervision.md`): the sampling hash of graded random
//! inspection, the inspection probabilities, frequency caps and targeted overrides, and the
//! pre-credit line. The parameters are data: a validated, versioned TOML file whose embedded
//! default is `config/supervision.toml`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::score::Colour;
use crate::time::{sub_months, Ts};

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
