//! The risk model at scoring time (`model.md`, "Model"): the model file, the feature vector
//! of an evaluation, the probability `p` and the model score `Q = 1000·(1 − p)`.
//!
//! Pure: the pipeline's `steward train` fits the models (smartcore) and writes a [`Model`]
//! as JSON; scoring needs only this module. Both the reference and the dataflow compute
//! `Q` with [`Model::q`] from the same 49 r-values and `P`, and `Q` is rounded to 0.01, so
//! they agree exactly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::catalogue::{Catalogue, ROWS};
use crate::event::{
    Body, DishonestyClass, Event, FinKind, JudKind, ListKind, ListType, PenKind, TaxKind,
};
use crate::indicators::round2;

/// The model-file format this code reads and writes.
pub const FORMAT: u32 = 1;

/// Name of the feature holding the provincial score `P` (imputed when missing).
pub const P_FEATURE: &str = "P";

/// Name of the feature flagging a missing `P` (1) or a present one (0), `semantics.md` §4.
pub const P_MISSING_FEATURE: &str = "P_missing";

/// The feature list a model must have for catalogue `cat`: the 49 indicator ids in row
/// order, then [`P_FEATURE`] and [`P_MISSING_FEATURE`].
pub fn feature_names(cat: &Catalogue) -> Vec<String> {
    cat.indicators
        .iter()
        .map(|i| i.id.clone())
        .chain([P_FEATURE.to_owned(), P_MISSING_FEATURE.to_owned()])
        .collect()
}

/// The feature vector of one evaluation: the 49 r-values, `P` (or `p_impute` when
/// missing) and the missing-`P` flag.
pub fn features(r: &[f64], p: Option<f64>, p_impute: f64) -> Vec<f64> {
    let mut x = Vec::with_capacity(ROWS + 2);
    x.extend_from_slice(&r[..ROWS]);
    x.push(p.unwrap_or(p_impute));
    x.push(if p.is_some() { 0.0 } else { 1.0 });
    x
}

/// Whether a record is a *serious record* for the model's label (`docs/decisions.md` D21):
/// a serious-class penalty decision (or its correction), a listing on the serious illegal
/// list, a major tax violation, a dishonest-debtor listing, a debt-evasion or a police
/// dishonesty listing: the records behind rows 2, 5, 11, 34, 42 and 43.
pub fn serious_record(e: &Event) -> bool {
    match &e.body {
        Body::Pen(b) => {
            matches!(b.kind, PenKind::Decided | PenKind::Corrected)
                && b.dishonesty_class == Some(DishonestyClass::Serious)
        }
        Body::List(b) => {
            b.kind == ListKind::Listed && b.list_kind == Some(ListType::SeriousIllegal)
        }
        Body::Tax(b) => b.kind == TaxKind::MajorViolation,
        Body::Jud(b) => b.kind == JudKind::DishonestListed,
        Body::Fin(b) => matches!(b.kind, FinKind::DebtEvasionListed | FinKind::PoliceListed),
        _ => false,
    }
}

/// The logistic function.
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Why a model file was refused.
#[derive(Debug, Error)]
pub enum ModelError {
    /// Not a model file.
    #[error("model file is not valid JSON for format {FORMAT}: {0}")]
    Json(#[from] serde_json::Error),
    /// Written by another version of the format.
    #[error("model file has format {found}, this build reads format {FORMAT}")]
    Format {
        /// The file's format.
        found: u32,
    },
    /// The feature list differs from what the catalogue gives.
    #[error(
        "model {version} does not fit catalogue {catalogue}: {detail} \
         (a model's features must be the catalogue's 49 indicator ids in row order, then `{P_FEATURE}` and `{P_MISSING_FEATURE}`)"
    )]
    Features {
        /// The model's version.
        version: String,
        /// The catalogue's version.
        catalogue: String,
        /// The first difference.
        detail: String,
    },
    /// The parameters do not fit the feature list or are not a valid model.
    #[error("model {version} has invalid parameters: {detail}")]
    Params {
        /// The model's version.
        version: String,
        /// What is wrong.
        detail: String,
    },
    /// `model_version` is not the digest of the file's contents.
    #[error("model_version `{found}` does not match the file's contents (expected `{expected}`): the file was edited")]
    Version {
        /// The version in the file.
        found: String,
        /// The version its contents give.
        expected: String,
    },
}

/// One node of a decision tree, in the order smartcore builds them (children after their
/// parent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Node {
    /// `x[f] ≤ t` goes to node `l`, else to node `r`.
    Split {
        /// Feature index.
        f: usize,
        /// Threshold.
        t: f64,
        /// Node taken when `x[f] ≤ t`.
        l: usize,
        /// Node taken otherwise.
        r: usize,
    },
    /// A leaf: whether the tree votes for the positive class (1) or not (0).
    Leaf {
        /// 1 = positive vote.
        vote: u8,
    },
}

/// A decision tree: node 0 is the root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// The nodes.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// Whether the tree votes positive for `x`.
    pub fn votes_positive(&self, x: &[f64]) -> bool {
        let mut i = 0;
        loop {
            match &self.nodes[i] {
                Node::Split { f, t, l, r } => i = if x[*f] <= *t { *l } else { *r },
                Node::Leaf { vote } => return *vote == 1,
            }
        }
    }

    /// Checks indices: features below `n_features`, children after their parent and in
    /// range (so every walk ends at a leaf).
    fn check(&self, n_features: usize) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("a tree has no nodes".into());
        }
        for (i, n) in self.nodes.iter().enumerate() {
            match n {
                Node::Split { f, l, r, .. } => {
                    if *f >= n_features {
                        return Err(format!("a split reads feature {f} of {n_features}"));
                    }
                    if *l <= i || *r <= i || *l >= self.nodes.len() || *r >= self.nodes.len() {
                        return Err(format!("node {i} has children {l} and {r}"));
                    }
                }
                Node::Leaf { vote } if *vote > 1 => {
                    return Err(format!("leaf {i} votes {vote}"));
                }
                Node::Leaf { .. } => {}
            }
        }
        Ok(())
    }
}

/// A model's parameters, tagged by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Params {
    /// Logistic regression on standardised features: `p = σ(b + Σ wᵢ·(xᵢ − μᵢ)/sᵢ)`.
    Logistic {
        /// Per-feature mean `μ` of the training data.
        mean: Vec<f64>,
        /// Per-feature scale `s` (standard deviation, 1 where it is 0).
        scale: Vec<f64>,
        /// Coefficients `w`.
        coefficients: Vec<f64>,
        /// Intercept `b`.
        intercept: f64,
    },
    /// Random forest: `p` = the share of trees voting positive.
    Forest {
        /// The trees.
        trees: Vec<Tree>,
    },
}

impl Params {
    /// `logistic` or `forest`.
    pub fn kind(&self) -> &'static str {
        match self {
            Params::Logistic { .. } => "logistic",
            Params::Forest { .. } => "forest",
        }
    }

    /// The probability of the positive label for a feature vector ([`features`]).
    pub fn probability(&self, x: &[f64]) -> f64 {
        match self {
            Params::Logistic { .. } => sigmoid(self.linear_score(x).unwrap_or(0.0)),
            Params::Forest { trees } => {
                let votes = trees.iter().filter(|t| t.votes_positive(x)).count();
                votes as f64 / trees.len() as f64
            }
        }
    }

    /// The logistic model's linear score `b + Σ wᵢ·(xᵢ − μᵢ)/sᵢ`; `None` for a forest.
    pub fn linear_score(&self, x: &[f64]) -> Option<f64> {
        match self {
            Params::Logistic {
                mean,
                scale,
                coefficients,
                intercept,
            } => Some(
                x.iter()
                    .zip(mean)
                    .zip(scale)
                    .zip(coefficients)
                    .fold(*intercept, |z, (((x, m), s), w)| z + w * (x - m) / s),
            ),
            Params::Forest { .. } => None,
        }
    }

    fn check(&self, n: usize) -> Result<(), String> {
        match self {
            Params::Logistic {
                mean,
                scale,
                coefficients,
                intercept,
            } => {
                for (name, v) in [
                    ("mean", mean),
                    ("scale", scale),
                    ("coefficients", coefficients),
                ] {
                    if v.len() != n {
                        return Err(format!("{name} has {} values for {n} features", v.len()));
                    }
                }
                if scale.iter().any(|s| !(*s > 0.0 && s.is_finite())) {
                    return Err("a scale is not positive and finite".into());
                }
                if !mean
                    .iter()
                    .chain(coefficients)
                    .chain([intercept])
                    .all(|v| v.is_finite())
                {
                    return Err("a mean, coefficient or intercept is not finite".into());
                }
                Ok(())
            }
            Params::Forest { trees } => {
                if trees.is_empty() {
                    return Err("the forest has no trees".into());
                }
                trees.iter().try_for_each(|t| t.check(n))
            }
        }
    }
}

/// The training data behind a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingData {
    /// Where the history came from (e.g. `generated:enterprises=2000,seed=1,years=5`).
    pub source: String,
    /// Hex SHA-256 of every training sample (as-of time, USCC, features, label).
    pub digest: String,
    /// Training samples.
    pub samples: u64,
    /// Positive training samples.
    pub positives: u64,
    /// First as-of time of a training sample (RFC 3339).
    pub first_as_of: String,
    /// Last as-of time of a training sample (RFC 3339).
    pub last_as_of: String,
}

/// Precision and recall of a flag for the label: "S is red" (below the yellow band's lower
/// bound), "S is yellow or red", or "p ≥ 0.5".
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct AtRed {
    /// Samples flagged.
    pub flagged: u64,
    /// Share of flagged samples that are positive (0 when none is flagged).
    pub precision: f64,
    /// Share of positive samples that are flagged.
    pub recall: f64,
}

/// One row of the calibration table: predicted `p` in `[from, to)` against the observed rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Lower bound of `p`.
    pub from: f64,
    /// Upper bound of `p` (the last bin includes 1).
    pub to: f64,
    /// Samples in the bin.
    pub samples: u64,
    /// Mean predicted `p` in the bin.
    pub mean_predicted: f64,
    /// Share of positive samples in the bin.
    pub observed: f64,
}

/// The held-out figures on the test samples that were not red at their as-of time: early
/// warning, what a supervisor needs. An enterprise red at the sample time and still red
/// later is an easy positive, which the figures on all samples include (D55).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EarlyWarning {
    /// Test samples not red at their as-of time.
    pub samples: u64,
    /// Of which positive: a red trigger or a new serious record within the horizon.
    pub positives: u64,
    /// ROC AUC of the model's `p`.
    pub auc: f64,
    /// ROC AUC of `S` with this model's `Q`.
    pub auc_score_with_model: f64,
    /// ROC AUC of `S` without a model.
    pub auc_score_without_model: f64,
    /// "p ≥ 0.5".
    pub warned_by_model: AtRed,
    /// "S is yellow or red" with this model's `Q`.
    pub warned_with_model: AtRed,
    /// "S is yellow or red" without a model.
    pub warned_without_model: AtRed,
}

/// Held-out evaluation of a model (split by time).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Test samples.
    pub samples: u64,
    /// Positive test samples.
    pub positives: u64,
    /// First as-of time of a test sample (RFC 3339).
    pub first_as_of: String,
    /// The figures on the samples not red at their as-of time, reported first (absent from
    /// model files written before it).
    #[serde(default)]
    pub early_warning: EarlyWarning,
    /// ROC AUC of the model's `p` (all test samples, from here on).
    pub auc: f64,
    /// ROC AUC of the final score `S` with this model's `Q` (lower `S` = riskier).
    pub auc_score_with_model: f64,
    /// ROC AUC of the score without a model (`Q` missing, its weight spread).
    pub auc_score_without_model: f64,
    /// "S is red" with this model's `Q`.
    pub red_with_model: AtRed,
    /// "S is red" without a model.
    pub red_without_model: AtRed,
    /// Calibration of `p` in ten equal-width bins.
    pub calibration: Vec<CalibrationBin>,
}

/// A trained model, as stored in a model file (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// File format ([`FORMAT`]).
    pub format: u32,
    /// `<kind>-<12 hex digits>`: the kind and a digest of the training data and parameters.
    pub model_version: String,
    /// Catalogue version the model was trained with.
    pub rules_version: String,
    /// Feature names, in the order of the feature vector.
    pub features: Vec<String>,
    /// `P` imputed when missing (the training data's median).
    pub p_impute: f64,
    /// Label horizon in months.
    pub horizon_months: u32,
    /// The training data.
    pub training: TrainingData,
    /// The training settings: sampling, split and hyper-parameters.
    pub settings: BTreeMap<String, f64>,
    /// Held-out metrics.
    pub metrics: Metrics,
    /// Parameters.
    pub params: Params,
}

impl Model {
    /// The version a model with this training data and these parameters has.
    pub fn version_of(training_digest: &str, params: &Params) -> String {
        let mut h = Sha256::new();
        h.update(training_digest.as_bytes());
        h.update(b"|");
        // Serialising parameters cannot fail: plain numbers and vectors.
        h.update(serde_json::to_vec(params).unwrap_or_default());
        format!("{}-{}", params.kind(), &hex::encode(h.finalize())[..12])
    }

    /// Reads a model file and checks it against the catalogue: format, feature list,
    /// parameters and version.
    pub fn from_json(text: &str, cat: &Catalogue) -> Result<Model, ModelError> {
        let m: Model = serde_json::from_str(text)?;
        if m.format != FORMAT {
            return Err(ModelError::Format { found: m.format });
        }
        m.check(cat)?;
        Ok(m)
    }

    /// Checks the feature list against `cat`, the parameters against the feature list,
    /// and the version against the contents.
    pub fn check(&self, cat: &Catalogue) -> Result<(), ModelError> {
        let want = feature_names(cat);
        if let Some(detail) = feature_mismatch(&self.features, &want) {
            return Err(ModelError::Features {
                version: self.model_version.clone(),
                catalogue: cat.version.clone(),
                detail,
            });
        }
        self.params
            .check(want.len())
            .map_err(|detail| ModelError::Params {
                version: self.model_version.clone(),
                detail,
            })?;
        let expected = Model::version_of(&self.training.digest, &self.params);
        if self.model_version != expected {
            return Err(ModelError::Version {
                found: self.model_version.clone(),
                expected,
            });
        }
        Ok(())
    }

    /// The probability of the positive label for a feature vector ([`features`]).
    pub fn probability(&self, x: &[f64]) -> f64 {
        self.params.probability(x)
    }

    /// The logistic model's linear score ([`Params::linear_score`]); `None` for a forest.
    pub fn linear_score(&self, x: &[f64]) -> Option<f64> {
        self.params.linear_score(x)
    }

    /// `Q = 1000·(1 − p)` of an evaluation's 49 r-values and `P`, rounded to 0.01.
    pub fn q(&self, r: &[f64], p: Option<f64>) -> f64 {
        let x = features(r, p, self.p_impute);
        round2(1000.0 * (1.0 - self.probability(&x)))
    }
}

/// The first difference between a model's feature list and the catalogue's, if any.
fn feature_mismatch(got: &[String], want: &[String]) -> Option<String> {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if g != w {
            return Some(format!(
                "feature {} is `{g}` in the model but `{w}` in the catalogue",
                i + 1
            ));
        }
    }
    match got.len().cmp(&want.len()) {
        std::cmp::Ordering::Less => Some(format!(
            "the model has {} features, the catalogue needs {}: `{}` is missing",
            got.len(),
            want.len(),
            want[got.len()]
        )),
        std::cmp::Ordering::Greater => Some(format!(
            "the model has {} features, the catalogue needs {}: `{}` is extra",
            got.len(),
            want.len(),
            got[want.len()]
        )),
        std::cmp::Ordering::Equal => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat() -> Catalogue {
        Catalogue::embedded()
    }

    fn n() -> usize {
        feature_names(&cat()).len()
    }

    fn training() -> TrainingData {
        TrainingData {
            source: "test".into(),
            digest: "00".into(),
            samples: 0,
            positives: 0,
            first_as_of: String::new(),
            last_as_of: String::new(),
        }
    }

    fn metrics() -> Metrics {
        let red = AtRed {
            flagged: 0,
            precision: 0.0,
            recall: 0.0,
        };
        Metrics {
            samples: 0,
            positives: 0,
            first_as_of: String::new(),
            early_warning: EarlyWarning::default(),
            auc: 0.5,
            auc_score_with_model: 0.5,
            auc_score_without_model: 0.5,
            red_with_model: red,
            red_without_model: red,
            calibration: Vec::new(),
        }
    }

    /// A model with the catalogue's features around `params`.
    fn model(params: Params) -> Model {
        let training = training();
        Model {
            format: FORMAT,
            model_version: Model::version_of(&training.digest, &params),
            rules_version: cat().version,
            features: feature_names(&cat()),
            p_impute: 700.0,
            horizon_months: 12,
            training,
            settings: BTreeMap::new(),
            metrics: metrics(),
            params,
        }
    }

    fn logistic(w_row34: f64, intercept: f64) -> Model {
        let mut coefficients = vec![0.0; n()];
        coefficients[33] = w_row34;
        model(Params::Logistic {
            mean: vec![0.0; n()],
            scale: vec![1.0; n()],
            coefficients,
            intercept,
        })
    }

    /// A stump on one feature: votes positive when `x[f] > t`.
    fn stump(f: usize, t: f64) -> Tree {
        Tree {
            nodes: vec![
                Node::Split { f, t, l: 1, r: 2 },
                Node::Leaf { vote: 0 },
                Node::Leaf { vote: 1 },
            ],
        }
    }

    #[test]
    fn feature_names_are_rows_then_p() {
        let names = feature_names(&cat());
        assert_eq!(names.len(), ROWS + 2);
        assert_eq!(names[0], "pen_general_active");
        assert_eq!(names[48], "affiliates_flagged_ratio");
        assert_eq!(&names[49..], ["P", "P_missing"]);
        let r = vec![1.0; ROWS];
        assert_eq!(&features(&r, Some(640.0), 700.0)[49..], [640.0, 0.0]);
        assert_eq!(&features(&r, None, 700.0)[49..], [700.0, 1.0]);
    }

    #[test]
    fn logistic_probability_is_the_sigmoid_of_the_linear_score() {
        let m = logistic(0.05, -2.0);
        for v in [0.0, 10.0, 40.0, 100.0] {
            let mut r = vec![0.0; ROWS];
            r[33] = v;
            let x = features(&r, Some(700.0), m.p_impute);
            let z = m.linear_score(&x).expect("logistic");
            assert!((z - (-2.0 + 0.05 * v)).abs() < 1e-12);
            let p = m.probability(&x);
            assert!((p - 1.0 / (1.0 + (-z).exp())).abs() < 1e-15);
            assert_eq!(m.q(&r, Some(700.0)), round2(1000.0 * (1.0 - p)));
        }
        // Standardisation: (x − μ)/s.
        let mut m = logistic(2.0, 0.0);
        if let Params::Logistic { mean, scale, .. } = &mut m.params {
            mean[33] = 50.0;
            scale[33] = 25.0;
        }
        let mut r = vec![0.0; ROWS];
        r[33] = 100.0;
        let z = m
            .linear_score(&features(&r, None, 700.0))
            .expect("logistic");
        assert!((z - 4.0).abs() < 1e-12);
    }

    #[test]
    fn forest_probability_is_the_share_of_positive_votes() {
        // Trees on row 34 at thresholds 0, 10, …, 90: at r = v, the trees with t < v vote.
        let trees: Vec<Tree> = (0..10).map(|k| stump(33, f64::from(k) * 10.0)).collect();
        let m = model(Params::Forest {
            trees: trees.clone(),
        });
        let mut last = -1.0;
        for v in [0.0, 5.0, 15.0, 55.0, 95.0, 100.0] {
            let mut r = vec![0.0; ROWS];
            r[33] = v;
            let x = features(&r, Some(700.0), 700.0);
            let p = m.probability(&x);
            let votes = trees.iter().filter(|t| t.votes_positive(&x)).count();
            assert_eq!(p, votes as f64 / 10.0);
            assert!((0.0..=1.0).contains(&p));
            assert!(p >= last, "monotone in the risk row");
            last = p;
        }
        assert_eq!(last, 1.0);
    }

    #[test]
    fn a_model_is_checked_against_the_catalogue() {
        let good = logistic(0.1, -1.0);
        let text = serde_json::to_string(&good).expect("json");
        assert_eq!(Model::from_json(&text, &cat()).expect("loads"), good);

        let mut renamed = good.clone();
        renamed.features[16] = "paid_in_share".into();
        let err = renamed.check(&cat()).expect_err("renamed").to_string();
        assert!(
            err.contains("feature 17 is `paid_in_share` in the model but `paid_in_ratio`"),
            "{err}"
        );

        let mut short = good.clone();
        short.features.pop();
        let err = short.check(&cat()).expect_err("short").to_string();
        assert!(err.contains("`P_missing` is missing"), "{err}");

        let mut long = good.clone();
        long.features.push("extra_row".into());
        let err = long.check(&cat()).expect_err("long").to_string();
        assert!(err.contains("`extra_row` is extra"), "{err}");

        let mut edited = good.clone();
        if let Params::Logistic { intercept, .. } = &mut edited.params {
            *intercept = 3.0;
        }
        assert!(matches!(
            edited.check(&cat()),
            Err(ModelError::Version { .. })
        ));

        let bad_tree = model(Params::Forest {
            trees: vec![Tree {
                nodes: vec![Node::Split {
                    f: 0,
                    t: 1.0,
                    l: 0,
                    r: 0,
                }],
            }],
        });
        assert!(matches!(
            bad_tree.check(&cat()),
            Err(ModelError::Params { .. })
        ));

        let mut future = serde_json::to_value(&good).expect("json");
        future["format"] = 2.into();
        assert!(matches!(
            Model::from_json(&future.to_string(), &cat()),
            Err(ModelError::Format { found: 2 })
        ));

        // A file written before the early-warning figures existed still loads.
        let mut older = serde_json::to_value(&good).expect("json");
        older["metrics"]
            .as_object_mut()
            .expect("metrics")
            .remove("early_warning")
            .expect("written now");
        let loaded = Model::from_json(&older.to_string(), &cat()).expect("loads");
        assert_eq!(loaded.metrics.early_warning, EarlyWarning::default());
    }
}
