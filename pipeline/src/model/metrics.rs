//! Held-out metrics: ROC AUC and curve, precision and recall of "S is red", calibration.
//! Scores are oriented so that higher means riskier (callers negate `S`).

use rules::model::{AtRed, CalibrationBin};

/// Scores sorted descending with their labels; equal scores stay together.
fn ranked(scores: &[f64], labels: &[bool]) -> Vec<(f64, bool)> {
    let mut v: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    v.sort_by(|a, b| b.0.total_cmp(&a.0));
    v
}

/// ROC AUC: the probability that a random positive scores above a random negative, ties
/// counting one half. 0.5 when either class is empty.
pub fn auc(scores: &[f64], labels: &[bool]) -> f64 {
    let v = ranked(scores, labels);
    let pos = v.iter().filter(|x| x.1).count() as f64;
    let neg = v.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return 0.5;
    }
    // Walk groups of equal scores from the top: each negative in a group beats the
    // positives already passed and ties half of the group's positives.
    let (mut pos_above, mut wins) = (0.0, 0.0);
    let mut i = 0;
    while i < v.len() {
        let j = i + v[i..].iter().take_while(|x| x.0 == v[i].0).count();
        let group_pos = v[i..j].iter().filter(|x| x.1).count() as f64;
        let group_neg = (j - i) as f64 - group_pos;
        wins += group_neg * (pos_above + 0.5 * group_pos);
        pos_above += group_pos;
        i = j;
    }
    wins / (pos * neg)
}

/// The ROC curve: `(false-positive rate, true-positive rate)` at every distinct threshold,
/// from `(0, 0)` to `(1, 1)`.
pub fn roc(scores: &[f64], labels: &[bool]) -> Vec<(f64, f64)> {
    let v = ranked(scores, labels);
    let pos = v.iter().filter(|x| x.1).count().max(1) as f64;
    let neg = (v.len() - v.iter().filter(|x| x.1).count()).max(1) as f64;
    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut i = 0;
    while i < v.len() {
        let j = i + v[i..].iter().take_while(|x| x.0 == v[i].0).count();
        for x in &v[i..j] {
            if x.1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
        }
        points.push((fp / neg, tp / pos));
        i = j;
    }
    points
}

/// Precision and recall of `flagged` for `labels`.
pub fn at_red(flagged: &[bool], labels: &[bool]) -> AtRed {
    let n = flagged.iter().filter(|f| **f).count();
    let tp = flagged
        .iter()
        .zip(labels)
        .filter(|(f, l)| **f && **l)
        .count();
    let positives = labels.iter().filter(|l| **l).count();
    let share = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    AtRed {
        flagged: n as u64,
        precision: share(tp, n),
        recall: share(tp, positives),
    }
}

/// Calibration in `bins` equal-width bins of `p` (the last includes 1); empty bins are
/// left out.
pub fn calibration(p: &[f64], labels: &[bool], bins: usize) -> Vec<CalibrationBin> {
    let mut sums = vec![(0u64, 0.0, 0u64); bins];
    for (&x, &l) in p.iter().zip(labels) {
        let b = ((x * bins as f64) as usize).min(bins - 1);
        sums[b].0 += 1;
        sums[b].1 += x;
        sums[b].2 += u64::from(l);
    }
    sums.into_iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(b, (n, sum, pos))| CalibrationBin {
            from: b as f64 / bins as f64,
            to: (b + 1) as f64 / bins as f64,
            samples: n,
            mean_predicted: sum / n as f64,
            observed: pos as f64 / n as f64,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_reversed_tied_and_mixed_rankings() {
        let labels = [true, true, false, false];
        assert_eq!(auc(&[0.9, 0.8, 0.2, 0.1], &labels), 1.0);
        assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &labels), 0.0);
        assert_eq!(auc(&[0.5; 4], &labels), 0.5);
        // Pairs (pos, neg): (0.9, 0.7) win, (0.9, 0.3) win, (0.4, 0.7) loss, (0.4, 0.3) win.
        assert_eq!(auc(&[0.9, 0.4, 0.7, 0.3], &labels), 0.75);
        // A tie between one positive and one negative counts half: 3.5 / 4.
        assert_eq!(auc(&[0.9, 0.5, 0.5, 0.3], &labels), 0.875);
        assert_eq!(auc(&[0.1, 0.2], &[true, true]), 0.5);
    }

    #[test]
    fn roc_runs_from_origin_to_one_and_its_area_is_the_auc() {
        let scores = [0.9, 0.4, 0.7, 0.3, 0.7, 0.1];
        let labels = [true, true, false, false, true, false];
        let pts = roc(&scores, &labels);
        assert_eq!(pts.first(), Some(&(0.0, 0.0)));
        assert_eq!(pts.last(), Some(&(1.0, 1.0)));
        let area: f64 = pts
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
            .sum();
        assert!((area - auc(&scores, &labels)).abs() < 1e-12);
    }

    #[test]
    fn precision_recall_and_calibration() {
        let flagged = [true, true, false, false, true];
        let labels = [true, false, true, false, true];
        let r = at_red(&flagged, &labels);
        assert_eq!(r.flagged, 3);
        assert!((r.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.recall - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(at_red(&[false; 2], &[true, false]).precision, 0.0);

        let c = calibration(&[0.05, 0.15, 0.12, 1.0, 0.95], &labels, 10);
        assert_eq!(c.len(), 3);
        assert_eq!((c[0].samples, c[0].observed), (1, 1.0));
        assert_eq!(c[1].samples, 2);
        assert!((c[1].mean_predicted - 0.135).abs() < 1e-12);
        assert_eq!(c[1].observed, 0.5);
        assert_eq!((c[2].from, c[2].samples, c[2].observed), (0.9, 2, 0.5));
    }
}
