//! Fitting with smartcore and exporting the fitted models as `rules::model::Params`.
//!
//! smartcore's `LogisticRegression` and `RandomForestClassifier` predict classes only. The
//! exported parameters give probabilities (`rules::model::Model::probability`):
//! - logistic regression: `σ` of the linear score from smartcore's coefficients and
//!   intercept (fitted on standardised features; the means and scales are exported too);
//! - random forest: the share of trees voting positive. smartcore keeps its trees private
//!   but serialises them (its `serde` feature); [`export_forest`] reads every tree's nodes
//!   from that form. Tests check both against smartcore's own `predict`.

use rules::model::{Node, Params, Tree};
use serde::Deserialize;
use smartcore::ensemble::random_forest_classifier::{
    RandomForestClassifier, RandomForestClassifierParameters,
};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};

use super::TrainError;

/// smartcore's logistic regression on our matrices.
pub type SmartLogistic = LogisticRegression<f64, i32, DenseMatrix<f64>, Vec<i32>>;
/// smartcore's random forest on our matrices.
pub type SmartForest = RandomForestClassifier<f64, i32, DenseMatrix<f64>, Vec<i32>>;

/// Random-forest settings.
#[derive(Debug, Clone, Copy)]
pub struct ForestSettings {
    /// Number of trees.
    pub trees: u16,
    /// Maximum depth of a tree.
    pub max_depth: u16,
    /// Minimum samples in a leaf.
    pub min_samples_leaf: usize,
    /// Seed of the bootstrap samples and feature choices.
    pub seed: u64,
    /// Times each positive sample enters the training set (1 = unweighted). smartcore
    /// bootstraps each class separately, so this is the positive class's weight.
    pub positive_weight: usize,
}

/// A row-major matrix for smartcore.
pub fn matrix(x: &[Vec<f64>]) -> Result<DenseMatrix<f64>, TrainError> {
    DenseMatrix::from_2d_vec(&x.to_vec()).map_err(|e| TrainError::Fit {
        model: "feature matrix",
        detail: e.to_string(),
    })
}

/// Labels as smartcore classes: 1 = positive, 0 = negative.
pub fn classes(y: &[bool]) -> Vec<i32> {
    y.iter().map(|&b| i32::from(b)).collect()
}

/// Per-feature mean and scale (standard deviation; 1 for a constant feature).
pub fn standardisation(x: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
    let n = x.len().max(1) as f64;
    let m = x.first().map_or(0, Vec::len);
    let mean: Vec<f64> = (0..m)
        .map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect();
    let scale = (0..m)
        .map(|j| {
            let var = x.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n;
            if var > 1e-12 {
                var.sqrt()
            } else {
                1.0
            }
        })
        .collect();
    (mean, scale)
}

/// `x` standardised with `mean` and `scale`.
pub fn standardise(x: &[Vec<f64>], mean: &[f64], scale: &[f64]) -> Vec<Vec<f64>> {
    x.iter()
        .map(|r| {
            r.iter()
                .zip(mean)
                .zip(scale)
                .map(|((v, m), s)| (v - m) / s)
                .collect()
        })
        .collect()
}

/// Fits smartcore's logistic regression (L2 penalty `alpha`) on standardised features.
/// Returns the fitted model with the standardisation it was fitted on.
pub fn fit_logistic(
    x: &[Vec<f64>],
    y: &[bool],
    alpha: f64,
) -> Result<(SmartLogistic, Vec<f64>, Vec<f64>), TrainError> {
    let (mean, scale) = standardisation(x);
    let xs = matrix(&standardise(x, &mean, &scale))?;
    let params = LogisticRegressionParameters::default().with_alpha(alpha);
    let lr = LogisticRegression::fit(&xs, &classes(y), params).map_err(|e| TrainError::Fit {
        model: "logistic regression",
        detail: e.to_string(),
    })?;
    Ok((lr, mean, scale))
}

/// The parameters of a fitted binary logistic regression.
pub fn export_logistic(lr: &SmartLogistic, mean: Vec<f64>, scale: Vec<f64>) -> Params {
    let coefficients = (0..mean.len())
        .map(|j| *lr.coefficients().get((0, j)))
        .collect();
    Params::Logistic {
        mean,
        scale,
        coefficients,
        intercept: *lr.intercept().get((0, 0)),
    }
}

/// Fits smartcore's random forest, each positive sample repeated `positive_weight` times.
pub fn fit_forest(
    x: &[Vec<f64>],
    y: &[bool],
    s: ForestSettings,
) -> Result<SmartForest, TrainError> {
    let mut xw = x.to_vec();
    let mut yw = y.to_vec();
    for (row, _) in x.iter().zip(y).filter(|(_, y)| **y) {
        for _ in 1..s.positive_weight {
            xw.push(row.clone());
            yw.push(true);
        }
    }
    let params = RandomForestClassifierParameters::default()
        .with_n_trees(s.trees)
        .with_max_depth(s.max_depth)
        .with_min_samples_leaf(s.min_samples_leaf)
        .with_seed(s.seed);
    RandomForestClassifier::fit(&matrix(&xw)?, &classes(&yw), params).map_err(|e| TrainError::Fit {
        model: "random forest",
        detail: e.to_string(),
    })
}

/// The part of smartcore's serialised forest that predicts.
#[derive(Deserialize)]
struct ForestForm {
    trees: Option<Vec<TreeForm>>,
}

#[derive(Deserialize)]
struct TreeForm {
    nodes: Vec<NodeForm>,
    classes: Vec<i32>,
}

#[derive(Deserialize)]
struct NodeForm {
    output: usize,
    split_feature: usize,
    split_value: Option<f64>,
    true_child: Option<usize>,
    false_child: Option<usize>,
}

/// The trees of a fitted forest, read from smartcore's serialised form: a split sends
/// `x[f] ≤ t` to its "true" child; a leaf votes for its output class.
pub fn export_forest(forest: &SmartForest) -> Result<Params, TrainError> {
    let bad = |detail: String| TrainError::Fit {
        model: "random forest",
        detail,
    };
    let form: ForestForm = serde_json::from_value(serde_json::to_value(forest)?)
        .map_err(|e| bad(format!("unexpected serialised form: {e}")))?;
    let trees = form
        .trees
        .ok_or_else(|| bad("the forest has no trees".into()))?
        .into_iter()
        .map(|t| {
            let nodes = t
                .nodes
                .iter()
                .map(|n| match (n.true_child, n.false_child, n.split_value) {
                    (Some(l), Some(r), Some(t)) => Ok(Node::Split {
                        f: n.split_feature,
                        t,
                        l,
                        r,
                    }),
                    (None, None, _) => Ok(Node::Leaf {
                        vote: u8::from(<[i32]>::get(&t.classes, n.output) == Some(&1)),
                    }),
                    _ => Err(bad("a split without both children or a value".into())),
                })
                .collect::<Result<Vec<Node>, TrainError>>()?;
            Ok(Tree { nodes })
        })
        .collect::<Result<Vec<Tree>, TrainError>>()?;
    Ok(Params::Forest { trees })
}

#[cfg(test)]
mod tests {
    use rules::model::sigmoid;

    use super::*;

    /// A toy set: label 1 iff x0 + noise-free x1/2 > 1, with an irrelevant feature.
    fn toy() -> (Vec<Vec<f64>>, Vec<bool>) {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..60 {
            for j in 0..5 {
                let a = f64::from(i) / 30.0;
                let b = f64::from(j);
                x.push(vec![a, b, f64::from((i * 7 + j) % 11)]);
                y.push(a + b / 8.0 > 1.1);
            }
        }
        (x, y)
    }

    #[test]
    fn logistic_probability_agrees_with_smartcore_and_is_monotone() {
        let (x, y) = toy();
        let (lr, mean, scale) = fit_logistic(&x, &y, 0.0).expect("fits");
        let predicted = lr
            .predict(&matrix(&standardise(&x, &mean, &scale)).expect("matrix"))
            .expect("predicts");
        let params = export_logistic(&lr, mean.clone(), scale.clone());
        for (i, row) in x.iter().enumerate() {
            let p = params.probability(row);
            // The linear score is b + Σ wⱼ·(xⱼ − μⱼ)/sⱼ with smartcore's coefficients.
            let z = *lr.intercept().get((0, 0))
                + (0..row.len())
                    .map(|j| *lr.coefficients().get((0, j)) * (row[j] - mean[j]) / scale[j])
                    .sum::<f64>();
            assert!((params.linear_score(row).expect("logistic") - z).abs() < 1e-9);
            assert_eq!(p, sigmoid(params.linear_score(row).expect("logistic")));
            assert!((0.0..=1.0).contains(&p));
            // smartcore predicts 1 iff σ(linear score) > ½.
            assert_eq!(*predicted.get(i) == 1, p > 0.5, "row {i}: p = {p}");
        }
        // Separable: the fitted p ranks every positive above every negative at the extremes.
        assert!(params.probability(&[2.0, 4.0, 5.0]) > 0.9);
        assert!(params.probability(&[0.0, 0.0, 5.0]) < 0.1);

        // Monotone in the informative feature.
        let ps: Vec<f64> = (0..10)
            .map(|k| params.probability(&[f64::from(k) / 5.0, 2.0, 3.0]))
            .collect();
        assert!(ps.windows(2).all(|w| w[0] <= w[1]), "{ps:?}");
    }

    #[test]
    fn forest_vote_share_agrees_with_smartcore() {
        let (x, y) = toy();
        let settings = ForestSettings {
            trees: 15,
            max_depth: 6,
            min_samples_leaf: 1,
            seed: 3,
            positive_weight: 1,
        };
        let forest = fit_forest(&x, &y, settings).expect("fits");
        let predicted = forest
            .predict(&matrix(&x).expect("matrix"))
            .expect("predicts");
        let params = export_forest(&forest).expect("exports");
        let Params::Forest { trees } = &params else {
            unreachable!("forest")
        };
        assert_eq!(trees.len(), 15);
        let mut agree_with_label = 0;
        for (i, row) in x.iter().enumerate() {
            let p = params.probability(row);
            let votes = trees.iter().filter(|t| t.votes_positive(row)).count();
            assert_eq!(p, votes as f64 / 15.0);
            assert!((0.0..=1.0).contains(&p));
            // smartcore's majority vote is 1 iff more than half of the trees vote 1.
            assert_eq!(*predicted.get(i) == 1, p > 0.5, "row {i}: share {p}");
            agree_with_label += usize::from((p > 0.5) == y[i]);
        }
        assert!(agree_with_label as f64 > 0.95 * x.len() as f64);
        // Monotone sanity at the extremes of the separable set.
        assert!(params.probability(&[2.0, 4.0, 5.0]) > 0.9);
        assert!(params.probability(&[0.0, 0.0, 5.0]) < 0.1);
        // Weighting the positives raises the vote shares.
        let weighted = fit_forest(
            &x,
            &y,
            ForestSettings {
                positive_weight: 5,
                ..settings
            },
        )
        .expect("fits");
        let weighted = export_forest(&weighted).expect("exports");
        let mean = |p: &Params| x.iter().map(|r| p.probability(r)).sum::<f64>() / x.len() as f64;
        assert!(mean(&weighted) > mean(&params));

        // Weighting the positives raises the vote shares.
        let weighted = fit_forest(
            &x,
            &y,
            ForestSettings {
                positive_weight: 5,
                ..settings
            },
        )
        .expect("fits");
        let weighted = export_forest(&weighted).expect("exports");
        let mean = |p: &Params| x.iter().map(|r| p.probability(r)).sum::<f64>() / x.len() as f64;
        assert!(mean(&weighted) > mean(&params));
    }
}
