//! The model as data: the indicator tree, weights, computation parameters, windows, colour
//! bands, triggers and hysteresis, loaded from a versioned TOML file and validated.
//!
//! The default is `rules/catalogue/v1.toml`, embedded in the binary.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::event::{Body, DishonestyClass, Event, Feed, ListType};
use crate::time::{add_months, date_end, Ts};

/// The embedded default catalogue.
pub const DEFAULT_TOML: &str = include_str!("../catalogue/v1.toml");

/// Number of level-3 indicators.
pub const ROWS: usize = 49;

/// A catalogue that cannot be used; the message names the offending entry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CatalogueError {
    /// Not valid TOML or a field of the wrong type.
    #[error("catalogue: {0}")]
    Parse(String),
    /// A consistency check failed.
    #[error("catalogue {version}: {what}")]
    Invalid {
        /// The catalogue's version.
        version: String,
        /// What is wrong, naming the entry.
        what: String,
    },
}

/// Final score weights.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreWeights {
    /// Weight of P (provincial public credit score).
    pub p: f64,
    /// Weight of M (monitoring score).
    pub m: f64,
    /// Weight of Q (model score).
    pub q: f64,
}

/// Colour band lower bounds and the hysteresis margin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Colours {
    /// Lower bound of blue.
    pub blue: f64,
    /// Lower bound of green.
    pub green: f64,
    /// Lower bound of yellow.
    pub yellow: f64,
    /// Points above a better band's lower bound needed to move into it.
    pub hysteresis_margin: f64,
}

/// `amt` and `amt_rev` steps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Amounts {
    /// Four ascending thresholds in fen.
    pub steps_fen: Vec<i64>,
    /// `amt` values for `< s1 … < s4, ≥ s4` (zero gives 0).
    pub amt_values: Vec<f64>,
    /// `amt_rev` values for `0, < s1, < s2, < s3, ≥ s3`.
    pub amt_rev_values: Vec<f64>,
}

/// Windows and periods.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Windows {
    /// Row 3.
    pub penalty_amount_months: u32,
    /// Row 6.
    pub inspection_fail_months: u32,
    /// Row 13.
    pub key_change_months: u32,
    /// Row 22.
    pub tax_paid_months: u32,
    /// Row 39.
    pub defendant_case_months: u32,
    /// Rows 30 and 31.
    pub history_months: u32,
    /// Row 27, R5, R7.
    pub commitment_broken_months: u32,
    /// Row 29.
    pub commitment_kept_months: u32,
    /// Default rectification deadline, days.
    pub rectify_default_days: i64,
    /// Row 44: months without an update after which an account stops counting.
    pub suspicious_stale_months: u32,
    /// Row 45: days after which a personal score is stale.
    pub person_score_days: i64,
    /// R8: years a firm counts as young.
    pub young_firm_years: u32,
}

/// Penalty publicity periods.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publicity {
    /// GENERAL maximum, months.
    pub general_max_months: u32,
    /// SERIOUS maximum, months.
    pub serious_max_months: u32,
    /// GENERAL minimum, months (earlier repairs are flagged).
    pub general_min_months: u32,
    /// SERIOUS minimum, months.
    pub serious_min_months: u32,
}

/// Record lifecycle parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    /// Allowed lateness of the watermark, seconds.
    pub lateness_secs: Ts,
    /// How far, in seconds, a record's `ingest_time` may be ahead of the wall clock of the
    /// process that reads it; a record further ahead is rejected as `future_ingest_time`
    /// (default 300).
    #[serde(default = "default_future_ingest_secs")]
    pub future_ingest_tolerance_secs: Ts,
    /// Hold for retractions and repairs with unknown targets, seconds.
    pub hold_secs: Ts,
    /// Retention after a record's effect ends, years.
    pub retention_years: u32,
}

fn default_future_ingest_secs() -> Ts {
    300
}

/// Alert thresholds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertParams {
    /// A score drop of at least this many points …
    pub score_drop_points: f64,
    /// … within this many days raises `SCORE_DROP`.
    pub score_drop_days: i64,
}

/// A level-1 group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level1 {
    /// Code `A`–`H`.
    pub code: String,
    /// English name.
    pub name: String,
    /// Chinese name.
    pub name_zh: String,
    /// Weight in `R`.
    pub weight: f64,
}

/// A level-2 group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level2 {
    /// Code, e.g. `A1`.
    pub code: String,
    /// Level-1 code.
    pub parent: String,
    /// Chinese name.
    pub name_zh: String,
    /// Weight within the parent.
    pub weight: f64,
}

/// How a level-3 value is computed from its measure: a kind and its parameters.
#[derive(Debug, Clone, Deserialize)]
pub struct Compute {
    /// The transform's kind.
    pub kind: String,
    /// Numeric parameters.
    #[serde(flatten)]
    pub params: BTreeMap<String, toml::Value>,
    /// The kind and the parameters the indicators' value function reads, read once when the
    /// catalogue is parsed (D87).
    #[serde(skip)]
    transform: Transform,
}

/// How a measure becomes a level-3 value, compiled from a [`Compute`] when the catalogue is
/// parsed, so that no evaluation looks a parameter up by name or builds a list (D87). The
/// kinds whose rows compute their value themselves pass a value through.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Transform {
    /// `sat`: `100 (1 − e^(−n/k))` of a count.
    Sat {
        /// `k`.
        k: f64,
    },
    /// `flag`: 100 while set.
    Flag,
    /// `amt`: the amount steps of a sum.
    Amt,
    /// `amt_rev`: the reversed amount steps of a sum.
    AmtRev,
    /// `linear`: `min(per · n, cap)` of a count.
    Linear {
        /// `per`.
        per: f64,
        /// `cap`.
        cap: f64,
    },
    /// `bands`: the value of the band a value falls in.
    Bands {
        /// Ascending lower bounds of the bands after the first.
        thresholds: Vec<f64>,
        /// One value per band (one more than thresholds).
        values: Vec<f64>,
    },
    /// `xinan` (row 45): the personal score's distance below `pivot`, over `divisor`,
    /// computed where the row is (its value passes through here).
    Xinan {
        /// `pivot`.
        pivot: f64,
        /// `divisor`.
        divisor: f64,
    },
    /// Every other kind: the row's value as its measure gives it.
    #[default]
    Value,
}

impl Compute {
    /// A numeric parameter (validated at load).
    pub fn num(&self, name: &str) -> f64 {
        self.params.get(name).and_then(as_f64).unwrap_or(f64::NAN)
    }
    /// A list parameter (validated at load).
    pub fn list(&self, name: &str) -> Vec<f64> {
        self.params
            .get(name)
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(as_f64).collect())
            .unwrap_or_default()
    }

    /// The compiled transform (set when the catalogue is parsed).
    pub fn transform(&self) -> &Transform {
        &self.transform
    }

    /// Compiles the kind and its parameters (validated before).
    fn compile(&self) -> Transform {
        match self.kind.as_str() {
            "sat" => Transform::Sat { k: self.num("k") },
            "flag" => Transform::Flag,
            "amt" => Transform::Amt,
            "amt_rev" => Transform::AmtRev,
            "linear" => Transform::Linear {
                per: self.num("per"),
                cap: self.num("cap"),
            },
            "bands" => Transform::Bands {
                thresholds: self.list("thresholds"),
                values: self.list("values"),
            },
            "xinan" => Transform::Xinan {
                pivot: self.num("pivot"),
                divisor: self.num("divisor"),
            },
            _ => Transform::Value,
        }
    }
}

fn as_f64(v: &toml::Value) -> Option<f64> {
    v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
}

/// A level-3 indicator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Indicator {
    /// Row number 1–49.
    pub row: usize,
    /// Stable id.
    pub id: String,
    /// Chinese name.
    pub name_zh: String,
    /// Level-2 code.
    pub group: String,
    /// Computation.
    pub compute: Compute,
    /// Value when no record of that kind was ever visible.
    #[serde(default)]
    pub default: Option<f64>,
}

/// A trigger's cap on the final colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cap {
    /// Red.
    Red,
    /// At best yellow.
    Yellow,
    /// At best green.
    Green,
    /// Scoring stops (R9).
    None,
}

/// A rule trigger.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// `R1`–`R9`.
    pub code: String,
    /// Cap.
    pub cap: Cap,
    /// The rows it reads (documentation and reference check).
    pub rows: Vec<usize>,
    /// For count triggers (R5): how many.
    #[serde(default)]
    pub min_count: Option<u32>,
}

/// The whole catalogue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// Version written with every result.
    pub version: String,
    /// Final score weights.
    pub score: ScoreWeights,
    /// Colour bands.
    pub colours: Colours,
    /// Amount steps.
    pub amounts: Amounts,
    /// Windows.
    pub windows: Windows,
    /// Publicity periods.
    pub publicity: Publicity,
    /// Lifecycle.
    pub lifecycle: Lifecycle,
    /// Alert thresholds.
    pub alerts: AlertParams,
    /// Level-1 groups.
    pub level1: Vec<Level1>,
    /// Level-2 groups.
    pub level2: Vec<Level2>,
    /// Level-3 indicators.
    #[serde(rename = "indicator")]
    pub indicators: Vec<Indicator>,
    /// Triggers.
    #[serde(rename = "trigger")]
    pub triggers: Vec<Trigger>,
    /// Off-site verification of commitments.
    pub commitments: CommitmentChecks,
    /// Credit repairs flagged for review, and what they do (`supervision.md`).
    pub repairs: RepairRules,
    /// The roll-up's index structure, derived from the groups and rows when parsed.
    #[serde(skip)]
    tree: Tree,
    /// The triggers by code, derived when parsed.
    #[serde(skip)]
    trigger_table: TriggerTable,
}

/// What evaluations read of the triggers, by code index ([`TRIGGERS`] order), derived once
/// when the catalogue is parsed so that no evaluation finds a trigger by its code (D87).
/// Where a code is listed twice, its first entry counts, as a search by code found it.
#[derive(Debug, Clone, Default)]
pub struct TriggerTable {
    /// Each code's cap (`None` for a code the catalogue does not list, which validation
    /// refuses).
    pub caps: Vec<Option<Cap>>,
    /// `R5`'s count (2 when the catalogue gives none).
    pub r5_min: u32,
    /// `R8`'s rows.
    pub r8_rows: Vec<usize>,
}

impl TriggerTable {
    fn of(cat: &Catalogue) -> TriggerTable {
        let first = |code: &str| cat.triggers.iter().find(|t| t.code == code);
        TriggerTable {
            caps: TRIGGERS
                .iter()
                .map(|code| first(code).map(|t| t.cap))
                .collect(),
            r5_min: first("R5").and_then(|t| t.min_count).unwrap_or(2),
            r8_rows: first("R8").map(|t| t.rows.clone()).unwrap_or_default(),
        }
    }
}

/// The roll-up's structure as indices, derived once from the catalogue's groups and rows.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// For each level-2 group (in `level2` order), its rows (0-based), in row order.
    pub rows_of_level2: Vec<Vec<usize>>,
    /// For each level-1 group (in `level1` order), its level-2 groups, in `level2` order.
    pub level2_of_level1: Vec<Vec<usize>>,
    /// For each row (0-based), its level-2 group's index.
    pub level2_of_row: Vec<usize>,
}

impl Tree {
    fn of(cat: &Catalogue) -> Tree {
        Tree {
            rows_of_level2: cat
                .level2
                .iter()
                .map(|g| {
                    cat.indicators
                        .iter()
                        .filter(|i| i.group == g.code)
                        .map(|i| i.row - 1)
                        .collect()
                })
                .collect(),
            level2_of_level1: cat
                .level1
                .iter()
                .map(|p| {
                    (0..cat.level2.len())
                        .filter(|&j| cat.level2[j].parent == p.code)
                        .collect()
                })
                .collect(),
            level2_of_row: cat
                .indicators
                .iter()
                .map(|i| cat.level2_index(&i.group))
                .collect(),
        }
    }
}

/// A review flag on a credit repair (`supervision.md`: always flagged for review).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RepairFlag {
    /// The repair takes effect before the target's minimum publicity end.
    RepairBeforeMinPublicity,
    /// No record `(target_feed, target_event_id)` of the enterprise is visible (in time).
    RepairUnknownTarget,
    /// The target's class is in `repairs.non_repairable`.
    RepairNonRepairable,
}

impl RepairFlag {
    /// The flag's name, as written in the state.
    pub fn as_str(self) -> &'static str {
        match self {
            RepairFlag::RepairBeforeMinPublicity => "repair_before_min_publicity",
            RepairFlag::RepairUnknownTarget => "repair_unknown_target",
            RepairFlag::RepairNonRepairable => "repair_non_repairable",
        }
    }
}

/// What a flagged repair does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepairAction {
    /// It takes effect as if unflagged (an unknown target has nothing to end; the repair
    /// still counts in row 30).
    Apply,
    /// It has no effect while held; an unknown target's repair is dead-lettered as
    /// `unknown_target` when the hold ends.
    Hold,
}

/// Credit repairs that are flagged for review (D47).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepairRules {
    /// Record classes a credit repair cannot end: `FEED.KIND` (`JUD.DISHONEST_LISTED`),
    /// `PEN.<dishonesty_class>` (`PEN.SERIOUS`) or `LIST.<list_kind>` (`LIST.SERIOUS_ILLEGAL`).
    pub non_repairable: Vec<String>,
    /// A repair effective before the target's minimum publicity end.
    pub before_min_publicity: RepairAction,
    /// A repair whose target is not visible.
    pub unknown_target: RepairAction,
    /// A repair whose target's class is non-repairable.
    pub non_repairable_target: RepairAction,
}

impl RepairRules {
    /// What a repair with `flag` does.
    pub fn action(&self, flag: RepairFlag) -> RepairAction {
        match flag {
            RepairFlag::RepairBeforeMinPublicity => self.before_min_publicity,
            RepairFlag::RepairUnknownTarget => self.unknown_target,
            RepairFlag::RepairNonRepairable => self.non_repairable_target,
        }
    }

    /// Whether `e`'s class is non-repairable.
    pub fn non_repairable(&self, e: &Event) -> bool {
        let qualifier = match &e.body {
            Body::Pen(p) => p.dishonesty_class.map(|c| c.as_str()),
            Body::List(l) => l.list_kind.map(|k| k.as_str()),
            _ => None,
        };
        self.non_repairable_class(e.feed(), e.body.kind_str(), qualifier)
    }

    /// Whether a record of `feed` and `kind` with a dishonesty class or list kind
    /// (`qualifier`) is non-repairable.
    pub fn non_repairable_class(&self, feed: Feed, kind: &str, qualifier: Option<&str>) -> bool {
        let feed = feed.as_str();
        self.non_repairable.iter().any(|c| {
            c.split_once('.')
                .is_some_and(|(f, k)| f == feed && (k == kind || Some(k) == qualifier))
        })
    }

    /// Checks every class entry: a known feed and a kind, class or list kind of it.
    fn validate(&self) -> Result<(), String> {
        for c in &self.non_repairable {
            let known = c.split_once('.').is_some_and(|(f, k)| {
                let qualifiers: &[&str] = match f {
                    "PEN" => DishonestyClass::NAMES,
                    "LIST" => ListType::NAMES,
                    _ => &[],
                };
                Feed::parse(f).is_some_and(|feed| {
                    serde_json::from_value::<Body>(serde_json::json!({"feed": feed, "kind": k}))
                        .is_ok()
                }) || qualifiers.contains(&k)
            });
            if !known {
                return Err(format!(
                    "repairs.non_repairable: {c:?} is not FEED.KIND, PEN.<dishonesty_class> or LIST.<list_kind>"
                ));
            }
        }
        Ok(())
    }
}

/// Off-site verification of commitments (`supervision.md`): which records contradict a
/// commitment of each matter. Entries are `FEED.KIND` in the feeds `PEN`, `TAX`, `JUD`, `FIN`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitmentChecks {
    /// Kinds for a matter not listed in `matters`.
    pub default: Vec<String>,
    /// Kinds per matter.
    pub matters: BTreeMap<String, Vec<String>>,
}

impl CommitmentChecks {
    /// Whether a record of `feed` and `kind` contradicts a commitment of `matter`.
    pub fn contradicts(&self, matter: Option<&str>, feed: &str, kind: &str) -> bool {
        let kinds = matter
            .and_then(|m| self.matters.get(m))
            .unwrap_or(&self.default);
        kinds
            .iter()
            .any(|k| k.split_once('.') == Some((feed, kind)))
    }

    /// Whether a record of `feed` and `kind` (a `CORRECTED` penalty counting as `DECIDED`)
    /// breaks a commitment of `matter` in the off-site check (D45).
    pub fn contradicted_by(&self, matter: Option<&str>, feed: Feed, kind: &str) -> bool {
        let kind = match kind {
            "CORRECTED" => "DECIDED",
            k => k,
        };
        self.contradicts(matter, feed.as_str(), kind)
    }

    /// Whether a record of `feed` and `kind` contradicts a commitment of any matter.
    pub fn contradicts_any(&self, feed: &str, kind: &str) -> bool {
        std::iter::once(&self.default)
            .chain(self.matters.values())
            .flatten()
            .any(|k| k.split_once('.') == Some((feed, kind)))
    }
}

/// Parameters each computation kind needs.
const KIND_PARAMS: &[(&str, &[&str])] = &[
    ("sat", &["k"]),
    ("flag", &[]),
    ("amt", &[]),
    ("amt_rev", &[]),
    ("linear", &["per", "cap"]),
    ("bands", &["thresholds", "values"]),
    ("pass_streak", &["base", "step"]),
    ("grade", &["A", "B", "M", "C", "D"]),
    ("firm_age", &["base", "per_year"]),
    ("paid_in_ratio", &["zero_capital"]),
    (
        "yoy",
        &["base", "scale", "no_prior", "zero_both", "zero_prior"],
    ),
    ("staff_change", &["per_unit", "lag_months"]),
    ("rectify", &["open", "overdue", "cap"]),
    ("kept_ratio", &[]),
    ("active_good", &["inactive"]),
    ("max", &[]),
    ("xinan", &["pivot", "divisor"]),
    ("ratio", &[]),
];

/// The computation kind each row's measure produces (the code side of the contract).
pub const ROW_KINDS: [&str; ROWS] = [
    "sat",
    "sat",
    "amt",
    "flag",
    "flag",
    "sat",
    "pass_streak",
    "grade",
    "amt",
    "flag",
    "flag",
    "firm_age",
    "sat",
    "bands",
    "flag",
    "flag",
    "paid_in_ratio",
    "bands",
    "linear",
    "amt",
    "linear",
    "amt_rev",
    "yoy",
    "linear",
    "bands",
    "staff_change",
    "sat",
    "rectify",
    "kept_ratio",
    "kept_ratio",
    "kept_ratio",
    "active_good",
    "active_good",
    "flag",
    "flag",
    "sat",
    "sat",
    "amt",
    "sat",
    "max",
    "amt",
    "flag",
    "flag",
    "linear",
    "xinan",
    "flag",
    "linear",
    "linear",
    "ratio",
];

/// Trigger codes the code implements.
pub const TRIGGERS: [&str; 9] = ["R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9"];

impl Catalogue {
    /// The embedded default catalogue.
    pub fn embedded() -> Self {
        Self::from_toml(DEFAULT_TOML).expect("the embedded catalogue is validated by tests")
    }

    /// Parses and validates a catalogue.
    pub fn from_toml(text: &str) -> Result<Self, CatalogueError> {
        let mut cat: Catalogue =
            toml::from_str(text).map_err(|e| CatalogueError::Parse(e.to_string()))?;
        cat.indicators.sort_by_key(|i| i.row);
        cat.validate()?;
        cat.tree = Tree::of(&cat);
        cat.trigger_table = TriggerTable::of(&cat);
        for ind in &mut cat.indicators {
            ind.compute.transform = ind.compute.compile();
        }
        Ok(cat)
    }

    fn invalid(&self, what: String) -> CatalogueError {
        CatalogueError::Invalid {
            version: self.version.clone(),
            what,
        }
    }

    fn validate(&self) -> Result<(), CatalogueError> {
        const EPS: f64 = 1e-9;
        self.repairs.validate().map_err(|e| self.invalid(e))?;
        let lists = std::iter::once(("default", &self.commitments.default)).chain(
            self.commitments
                .matters
                .iter()
                .map(|(m, k)| (m.as_str(), k)),
        );
        for (matter, kinds) in lists {
            for k in kinds {
                let ok = k.split_once('.').is_some_and(|(f, kind)| {
                    ["PEN", "TAX", "JUD", "FIN"].contains(&f) && !kind.is_empty()
                });
                if !ok {
                    return Err(self.invalid(format!(
                        "commitments.{matter}: {k:?} is not FEED.KIND with a feed of PEN, TAX, JUD, FIN"
                    )));
                }
            }
        }
        if self.version.trim().is_empty() {
            return Err(self.invalid("`version` is empty".into()));
        }
        if self.lifecycle.future_ingest_tolerance_secs < 0 {
            return Err(self.invalid(format!(
                "lifecycle.future_ingest_tolerance_secs is {}, not a number of seconds ≥ 0",
                self.lifecycle.future_ingest_tolerance_secs
            )));
        }
        let sum1: f64 = self.level1.iter().map(|g| g.weight).sum();
        if (sum1 - 1.0).abs() > EPS {
            return Err(self.invalid(format!("level-1 weights sum to {sum1}, not 1")));
        }
        let l1: BTreeSet<&str> = self.level1.iter().map(|g| g.code.as_str()).collect();
        if l1.len() != self.level1.len() {
            return Err(self.invalid("duplicate level-1 code".into()));
        }
        for g in &self.level2 {
            if !l1.contains(g.parent.as_str()) {
                return Err(self.invalid(format!(
                    "level2 {}: parent {:?} is not a level-1 code",
                    g.code, g.parent
                )));
            }
        }
        for p in &self.level1 {
            let s: f64 = self
                .level2
                .iter()
                .filter(|g| g.parent == p.code)
                .map(|g| g.weight)
                .sum();
            if (s - 1.0).abs() > EPS {
                return Err(self.invalid(format!(
                    "level1 {}: level-2 weights sum to {s}, not 1",
                    p.code
                )));
            }
        }
        let l2: BTreeSet<&str> = self.level2.iter().map(|g| g.code.as_str()).collect();
        if l2.len() != self.level2.len() {
            return Err(self.invalid("duplicate level-2 code".into()));
        }
        let rows: Vec<usize> = self.indicators.iter().map(|i| i.row).collect();
        for (i, r) in rows.iter().enumerate() {
            if *r != i + 1 {
                return Err(self.invalid(format!(
                    "indicator rows must be 1..=49, each exactly once; found row {r} at position {}",
                    i + 1
                )));
            }
        }
        if rows.len() != ROWS {
            return Err(self.invalid(format!("{} indicators, expected {ROWS}", rows.len())));
        }
        let ids: BTreeSet<&str> = self.indicators.iter().map(|i| i.id.as_str()).collect();
        if ids.len() != ROWS {
            return Err(self.invalid("duplicate indicator id".into()));
        }
        for ind in &self.indicators {
            let name = format!("indicator {} ({})", ind.row, ind.id);
            if !l2.contains(ind.group.as_str()) {
                return Err(self.invalid(format!(
                    "{name}: group {:?} is not a level-2 code",
                    ind.group
                )));
            }
            let want = ROW_KINDS[ind.row - 1];
            if ind.compute.kind != want {
                return Err(self.invalid(format!(
                    "{name}: compute kind {:?}, this row computes {want:?}",
                    ind.compute.kind
                )));
            }
            let params = KIND_PARAMS
                .iter()
                .find(|(k, _)| *k == want)
                .map(|(_, p)| *p)
                .unwrap_or(&[]);
            for p in params {
                let ok = match ind.compute.params.get(*p) {
                    Some(v) if v.is_array() => !ind.compute.list(p).is_empty(),
                    Some(v) => as_f64(v).is_some_and(f64::is_finite),
                    None => false,
                };
                if !ok {
                    return Err(self.invalid(format!(
                        "{name}: compute parameter {p:?} missing or not a number"
                    )));
                }
            }
            if want == "bands"
                && ind.compute.list("values").len() != ind.compute.list("thresholds").len() + 1
            {
                return Err(
                    self.invalid(format!("{name}: bands need one more value than thresholds"))
                );
            }
        }
        for g in &self.level2 {
            if !self.indicators.iter().any(|i| i.group == g.code) {
                return Err(self.invalid(format!("level2 {}: has no indicator", g.code)));
            }
        }
        let codes: BTreeSet<&str> = self.triggers.iter().map(|t| t.code.as_str()).collect();
        for code in TRIGGERS {
            if !codes.contains(code) {
                return Err(self.invalid(format!("trigger {code} is missing")));
            }
        }
        for t in &self.triggers {
            if !TRIGGERS.contains(&t.code.as_str()) {
                return Err(self.invalid(format!("trigger {}: unknown code", t.code)));
            }
            if let Some(r) = t.rows.iter().find(|r| **r == 0 || **r > ROWS) {
                return Err(self.invalid(format!("trigger {}: row {r} does not exist", t.code)));
            }
        }
        let c = &self.colours;
        if !(c.blue > c.green && c.green > c.yellow && c.hysteresis_margin >= 0.0) {
            return Err(self.invalid("colours: need blue > green > yellow and margin ≥ 0".into()));
        }
        let a = &self.amounts;
        if a.steps_fen.len() != 4 || a.amt_values.len() != 5 || a.amt_rev_values.len() != 5 {
            return Err(
                self.invalid("amounts: need 4 steps, 5 amt values and 5 amt_rev values".into())
            );
        }
        if a.steps_fen.windows(2).any(|w| w[0] >= w[1]) {
            return Err(self.invalid("amounts.steps_fen must ascend".into()));
        }
        let s = &self.score;
        if [s.p, s.m, s.q].iter().any(|w| *w < 0.0) || s.p + s.m + s.q <= 0.0 {
            return Err(self.invalid("score: weights must be ≥ 0 with a positive sum".into()));
        }
        Ok(())
    }

    /// The indicator of a row (1-based).
    pub fn indicator(&self, row: usize) -> &Indicator {
        &self.indicators[row - 1]
    }

    /// The roll-up's index structure.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The triggers by code index.
    pub fn trigger_table(&self) -> &TriggerTable {
        &self.trigger_table
    }

    /// Index of a level-2 group in `level2`.
    pub fn level2_index(&self, code: &str) -> usize {
        self.level2.iter().position(|g| g.code == code).unwrap_or(0)
    }

    /// The minimum publicity end of a penalty (repairs before it are flagged); other
    /// records have none (`Ts::MIN`).
    pub fn min_publicity_end(&self, e: &Event) -> Ts {
        let Body::Pen(p) = &e.body else {
            return Ts::MIN;
        };
        self.pen_min_publicity_end(
            e.event_time,
            p.dishonesty_class,
            p.publicity_min_end.map(date_end),
        )
    }

    /// [`Self::min_publicity_end`] of a PEN record at `event_time` with its dishonesty class
    /// and its `publicity_min_end` as an instant (`date_end`).
    pub fn pen_min_publicity_end(
        &self,
        event_time: Ts,
        class: Option<DishonestyClass>,
        min_end: Option<Ts>,
    ) -> Ts {
        if let Some(end) = min_end {
            return end;
        }
        match class {
            Some(DishonestyClass::General) => {
                add_months(event_time, self.publicity.general_min_months)
            }
            Some(DishonestyClass::Serious) => {
                add_months(event_time, self.publicity.serious_min_months)
            }
            _ => Ts::MIN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalogue_is_valid() {
        let c = Catalogue::embedded();
        assert_eq!(c.indicators.len(), 49);
        assert_eq!(c.level2.len(), 19);
        assert_eq!(c.level1.len(), 8);
        assert_eq!(c.version, "catalogue-v1");
    }

    /// What is compiled at load equals what the catalogue's text says, and what a search
    /// by code reads (D87).
    #[test]
    fn compiled_forms_equal_the_lookups() {
        let c = Catalogue::embedded();
        // Every row of a compiled kind has its variant; the others pass values through.
        for ind in &c.indicators {
            let variant = match ind.compute.transform() {
                Transform::Sat { .. } => "sat",
                Transform::Flag => "flag",
                Transform::Amt => "amt",
                Transform::AmtRev => "amt_rev",
                Transform::Linear { .. } => "linear",
                Transform::Bands { .. } => "bands",
                Transform::Xinan { .. } => "xinan",
                Transform::Value => "value",
            };
            let compiled = ["sat", "flag", "amt", "amt_rev", "linear", "bands", "xinan"];
            let kind = ind.compute.kind.as_str();
            let want = if compiled.contains(&kind) {
                kind
            } else {
                "value"
            };
            assert_eq!(variant, want, "row {}", ind.row);
        }
        // The parameters, as `v1.toml` gives them.
        assert_eq!(
            c.indicator(6).compute.transform(),
            &Transform::Sat { k: 1.5 }
        );
        assert_eq!(
            c.indicator(14).compute.transform(),
            &Transform::Bands {
                thresholds: vec![5.0, 10.0],
                values: vec![0.0, 50.0, 100.0]
            }
        );
        assert_eq!(
            c.indicator(24).compute.transform(),
            &Transform::Linear {
                per: 8.333333333333334,
                cap: 100.0
            }
        );
        assert_eq!(
            c.indicator(45).compute.transform(),
            &Transform::Xinan {
                pivot: 800.0,
                divisor: 3.0
            }
        );
        let t = c.trigger_table();
        for (i, code) in TRIGGERS.iter().enumerate() {
            let cap = c.triggers.iter().find(|x| x.code == *code).map(|x| x.cap);
            assert_eq!(t.caps[i], cap, "{code}");
        }
        let r5 = c.triggers.iter().find(|x| x.code == "R5").expect("R5");
        assert_eq!(Some(t.r5_min), r5.min_count);
        let r8 = c.triggers.iter().find(|x| x.code == "R8").expect("R8");
        assert_eq!(t.r8_rows, r8.rows);
        assert!(!t.r8_rows.is_empty());
    }

    fn broken(from: &str, to: &str) -> String {
        assert!(DEFAULT_TOML.contains(from), "{from}");
        let err = Catalogue::from_toml(&DEFAULT_TOML.replacen(from, to, 1)).unwrap_err();
        err.to_string()
    }

    #[test]
    fn level1_weights_must_sum_to_one() {
        let e = broken("weight = 0.20", "weight = 0.25");
        assert!(e.contains("level-1 weights sum to"), "{e}");
    }

    #[test]
    fn level2_weights_must_sum_to_one_per_group() {
        let e = broken("weight = 0.35", "weight = 0.30");
        assert!(e.contains("level1 A: level-2 weights"), "{e}");
    }

    #[test]
    fn every_row_exactly_once() {
        let e = broken("row = 2\n", "row = 1\n");
        assert!(e.contains("each exactly once"), "{e}");
    }

    #[test]
    fn unknown_group_is_named() {
        let e = broken("group = \"A3\"", "group = \"Z9\"");
        assert!(
            e.contains("indicator 6 (inspect_fail_24m): group \"Z9\""),
            "{e}"
        );
    }

    #[test]
    fn wrong_kind_and_missing_parameter_are_named() {
        let e = broken(
            "compute = { kind = \"sat\", k = 2.0 }",
            "compute = { kind = \"flag\" }",
        );
        assert!(
            e.contains("indicator 1 (pen_general_active): compute kind"),
            "{e}"
        );
        let e = broken(
            "compute = { kind = \"sat\", k = 1.5 }",
            "compute = { kind = \"sat\" }",
        );
        assert!(
            e.contains("indicator 6 (inspect_fail_24m): compute parameter \"k\""),
            "{e}"
        );
    }

    #[test]
    fn trigger_rows_must_exist() {
        let e = broken("rows = [34]", "rows = [74]");
        assert!(e.contains("trigger R1: row 74"), "{e}");
    }

    #[test]
    fn repair_rules_name_the_field() {
        let e = broken("\"JUD.DISHONEST_LISTED\"", "\"JUD.SERIOUS\"");
        assert!(e.contains("repairs.non_repairable: \"JUD.SERIOUS\""), "{e}");
        let e = broken("unknown_target = \"hold\"", "unknown_target = \"later\"");
        assert!(e.contains("unknown_target") || e.contains("later"), "{e}");
        let e = broken("unknown_target = \"hold\"", "unknown_targets = \"hold\"");
        assert!(e.contains("unknown_targets"), "{e}");
        let ok = DEFAULT_TOML.replacen(
            "\"JUD.DISHONEST_LISTED\"",
            "\"JUD.DISHONEST_LISTED\", \"PEN.SERIOUS\", \"LIST.SERIOUS_ILLEGAL\", \"PEN.DECIDED\"",
            1,
        );
        let c = Catalogue::from_toml(&ok).expect("known classes");
        assert_eq!(c.repairs.non_repairable.len(), 5);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = broken("[score]\n", "[score]\nbogus = 1\n");
        assert!(e.contains("bogus"), "{e}");
    }
}
