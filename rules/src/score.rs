//! Roll-up, score, colours, triggers, hysteresis and explanations (`model.md`,
//! `semantics.md` §3–4). One shared roll-up function over the 49-value vector in row order.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalogue::{Cap, Catalogue, ROWS};
use crate::event::TaxGrade;
use crate::fact::{Src, What};
use crate::indicators::{cross_rows, round2, rows_read, Cross, Local, ReviewFlag};
use crate::model::Model;

/// A published or score colour. Ordered from best to worst; `None` = not scored (R9).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    /// S ≥ 850.
    Blue,
    /// 700 ≤ S < 850.
    Green,
    /// 550 ≤ S < 700.
    Yellow,
    /// S < 550.
    Red,
    /// Scoring stopped (revoked or deregistered).
    None,
}

impl Colour {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Colour::Blue => "blue",
            Colour::Green => "green",
            Colour::Yellow => "yellow",
            Colour::Red => "red",
            Colour::None => "none",
        }
    }
    /// The scored colours, best first.
    pub const BANDS: [Colour; 4] = [Colour::Blue, Colour::Green, Colour::Yellow, Colour::Red];
}

/// Lower bound of a band in tenths of a point (`red` has none).
fn lower10(c: Colour, cat: &Catalogue) -> Option<i64> {
    let b = &cat.colours;
    match c {
        Colour::Blue => Some(round_half_away(10.0 * b.blue)),
        Colour::Green => Some(round_half_away(10.0 * b.green)),
        Colour::Yellow => Some(round_half_away(10.0 * b.yellow)),
        Colour::Red | Colour::None => None,
    }
}

/// Rounds half away from zero to an integer.
pub fn round_half_away(x: f64) -> i64 {
    x.round() as i64
}

/// The plain score colour of `S₁₀`.
pub fn score_colour(s10: i64, cat: &Catalogue) -> Colour {
    Colour::BANDS
        .into_iter()
        .find(|c| lower10(*c, cat).is_none_or(|l| s10 >= l))
        .unwrap_or(Colour::Red)
}

/// Hysteresis on the score colour: a worse band applies at once; a better one only as the
/// best band `b` with `S ≥ lower(b) + margin`. The first evaluation (`prev = None`) uses
/// the plain score colour.
pub fn hysteresis(prev: Option<Colour>, s10: i64, cat: &Catalogue) -> Colour {
    let plain = score_colour(s10, cat);
    let Some(prev) = prev.filter(|p| *p != Colour::None) else {
        return plain;
    };
    if plain >= prev {
        return plain;
    }
    let margin = round_half_away(10.0 * cat.colours.hysteresis_margin);
    Colour::BANDS
        .into_iter()
        .filter(|b| *b < prev)
        .find(|b| lower10(*b, cat).is_some_and(|l| s10 >= l + margin))
        .unwrap_or(prev)
}

/// One entry of an explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Reason {
    /// Indicator id.
    pub indicator: String,
    /// Row.
    pub row: usize,
    /// r-value.
    pub r: f64,
    /// Contribution to `R` (rounded to 0.0001).
    pub contribution: f64,
    /// Records behind it.
    pub records: Vec<Src>,
}

/// An enterprise's full evaluation at one logical time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The 49 r-values.
    pub r: Vec<f64>,
    /// The 19 level-2 values.
    pub l2: Vec<f64>,
    /// The 8 level-1 values.
    pub l1: Vec<f64>,
    /// Composite risk `R`.
    pub risk: f64,
    /// Monitoring score `M`.
    pub m: f64,
    /// Provincial score `P`.
    pub p: Option<f64>,
    /// Model score `Q` (`None` without a model).
    pub q: Option<f64>,
    /// Version of the model behind `Q`.
    pub model_version: Option<String>,
    /// Final score `S` (rounded to 0.1), `None` when scoring stopped.
    pub s: Option<f64>,
    /// `S` in tenths.
    pub s10: Option<i64>,
    /// Plain score colour.
    pub score_colour: Colour,
    /// Active triggers, in code order.
    pub triggers: Vec<String>,
    /// Worst cap of the active triggers (`Blue` = no cap).
    pub cap: Colour,
    /// Top five contributions.
    pub reasons: Vec<Reason>,
    /// Review flags of the enterprise's repairs (D47); no effect on the score.
    pub review_flags: Vec<ReviewFlag>,
}

impl Evaluation {
    /// The published colour this evaluation gives on its own, without hysteresis (the
    /// worse of the plain score colour and the trigger caps).
    pub fn colour_without_hysteresis(&self) -> Colour {
        published(self.score_colour, self.cap)
    }
}

/// Finishes an evaluation: rows 45–49, roll-up, scores (with `Q` from `model`, if any),
/// triggers and the explanation.
pub fn evaluate(
    local: &Local,
    cross: &Cross,
    model: Option<&Model>,
    cat: &Catalogue,
) -> Evaluation {
    let mut r = local.r.clone();
    cross_rows(&mut r, cross, cat);
    // The records behind a row: the enterprise's own, or for rows 45–49 the joined ones.
    let evidence = |row: usize| -> Vec<Src> {
        match row {
            45 => cross
                .person_score
                .iter()
                .map(|(_, _, s)| s.clone())
                .collect(),
            46 => cross.person_dishonest.clone(),
            47 => local.legal_rep.iter().map(|(_, s)| s.clone()).collect(),
            48 => related_srcs(&local.shareholders, &cross.shareholders_red),
            49 => related_srcs(&local.investments, &cross.affiliates_red),
            _ => local.evidence(row).to_vec(),
        }
    };

    let triggers = triggers(local, &r, cat);
    let p = local.p.map(|p| p as f64);
    Evaluation {
        review_flags: local.review_flags.clone(),
        ..assemble(r, p, model, triggers, local.stopped(), evidence, cat)
    }
}

/// The evaluation from the 49 r-values, `P`, the model and the active triggers: `Q` (a
/// function of the r-values and `P`, [`Model::q`]), roll-up, scores, colours and the
/// top-five explanation with the records `evidence(row)` names. This is also how a compact
/// copy of an evaluation is expanded again: the same inputs give the same evaluation, bit
/// for bit. The review flags are not part of it (they are the enterprise's, not the
/// score's); [`evaluate`] adds them.
pub fn assemble(
    r: Vec<f64>,
    p: Option<f64>,
    model: Option<&Model>,
    triggers: Vec<String>,
    stopped: bool,
    evidence: impl Fn(usize) -> Vec<Src>,
    cat: &Catalogue,
) -> Evaluation {
    let q = (!stopped).then_some(model).flatten().map(|x| x.q(&r, p));
    let (l2, l1, risk, contributions) = roll_up(&r, cat);
    let m = 1000.0 - 10.0 * risk;
    let w = &cat.score;
    let parts = [(Some(m), w.m), (p, w.p), (q, w.q)];
    let wsum: f64 = parts
        .iter()
        .filter(|(x, _)| x.is_some())
        .map(|(_, w)| w)
        .sum();
    let s_raw: f64 = parts
        .iter()
        .filter_map(|(x, w)| x.map(|x| x * w))
        .sum::<f64>()
        / wsum;
    let s10 = (!stopped).then(|| round_half_away(10.0 * s_raw));
    let cap = worst_cap(&triggers, cat);
    let reasons = top_rows(&contributions)
        .into_iter()
        .map(|i| Reason {
            indicator: cat.indicator(i + 1).id.clone(),
            row: i + 1,
            r: r[i],
            contribution: (contributions[i] * 10_000.0).round() / 10_000.0,
            records: evidence(i + 1),
        })
        .collect();
    Evaluation {
        score_colour: s10.map_or(Colour::None, |s| score_colour(s, cat)),
        s: s10.map(|s| s as f64 / 10.0),
        s10,
        r,
        l2,
        l1,
        risk: round2(risk),
        m: round2(m),
        p,
        q,
        model_version: model.map(|x| x.model_version.clone()),
        triggers,
        cap,
        reasons,
        review_flags: Vec::new(),
    }
}

fn related_srcs(all: &[(String, Src)], red: &[String]) -> Vec<Src> {
    all.iter()
        .filter(|(u, _)| red.contains(u))
        .map(|(_, s)| s.clone())
        .collect()
}

/// Level 2, level 1, `R` and each row's contribution to `R` (they sum to `R`).
pub fn roll_up(r: &[f64], cat: &Catalogue) -> (Vec<f64>, Vec<f64>, f64, Vec<f64>) {
    let tree = cat.tree();
    let mut l2 = vec![0.0; cat.level2.len()];
    let mut row_share = vec![0.0; ROWS];
    for (j, rows) in tree.rows_of_level2.iter().enumerate() {
        let n = rows.len() as f64;
        let max_i = argmax(rows.iter().map(|&i| r[i]));
        let mean = rows.iter().map(|&i| r[i]).sum::<f64>() / n;
        l2[j] = 0.5 * r[rows[max_i]] + 0.5 * mean;
        for (k, &i) in rows.iter().enumerate() {
            row_share[i] = 0.5 * f64::from(u8::from(k == max_i)) + 0.5 / n;
        }
    }
    let mut l1 = vec![0.0; cat.level1.len()];
    let mut group_share = vec![0.0; cat.level2.len()];
    for (k, groups) in tree.level2_of_level1.iter().enumerate() {
        let max_j = argmax(groups.iter().map(|&j| l2[j]));
        let weighted: f64 = groups.iter().map(|&j| cat.level2[j].weight * l2[j]).sum();
        l1[k] = 0.5 * l2[groups[max_j]] + 0.5 * weighted;
        for (x, &j) in groups.iter().enumerate() {
            group_share[j] = cat.level1[k].weight
                * (0.5 * f64::from(u8::from(x == max_j)) + 0.5 * cat.level2[j].weight);
        }
    }
    let risk: f64 = cat.level1.iter().zip(&l1).map(|(g, v)| g.weight * v).sum();
    let contributions = (0..ROWS)
        .map(|i| group_share[tree.level2_of_row[i]] * row_share[i] * r[i])
        .collect();
    (l2, l1, risk, contributions)
}

/// The (0-based) rows of the five largest positive contributions, largest first; ties go
/// to the lower row.
///
/// Contributions of rows outside group H do not depend on rows 45–49, so the top five of
/// all rows are among the top five of rows 1–44 and rows 45–49.
pub fn top_rows(contributions: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..contributions.len())
        .filter(|i| contributions[*i] > 0.0)
        .collect();
    order.sort_by(|a, b| {
        contributions[*b]
            .total_cmp(&contributions[*a])
            .then(a.cmp(b))
    });
    order.truncate(5);
    order
}

/// Index of the maximum; ties go to the first (lowest code or row).
fn argmax(xs: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, x) in xs.enumerate() {
        if x > best.1 {
            best = (i, x);
        }
    }
    best.0
}

/// The worst colour cap among active trigger codes (`Blue` = no cap; R9 gives `None`).
pub fn worst_cap(triggers: &[String], cat: &Catalogue) -> Colour {
    triggers
        .iter()
        .filter_map(|t| cat.triggers.iter().find(|d| &d.code == t))
        .map(|d| match d.cap {
            Cap::Red => Colour::Red,
            Cap::Yellow => Colour::Yellow,
            Cap::Green => Colour::Green,
            Cap::None => Colour::None,
        })
        .max()
        .unwrap_or(Colour::Blue)
}

/// Whether an enterprise that is still scored has an active red trigger (R1–R5): what
/// rows 47–49 of related enterprises read. Red triggers read only the enterprise's own
/// rows, so `local.r` (rows 45–49 still 0) decides them.
pub fn red_trigger(local: &Local, cat: &Catalogue) -> bool {
    !local.stopped() && worst_cap(&triggers(local, &local.r, cat), cat) == Colour::Red
}

/// Which facts decide what other enterprises read about an enterprise: [`red_trigger`],
/// [`Local::stopped`], `LR(E)`, shareholders and investments. Every trigger's rows and
/// other inputs count (whatever its cap), so the set holds for any catalogue.
#[derive(Debug, Clone)]
pub struct LinkInputs {
    /// Indexed by row (1-based): a trigger reads the row.
    rows: [bool; ROWS + 1],
}

impl LinkInputs {
    /// The inputs under `cat`'s triggers.
    pub fn new(cat: &Catalogue) -> Self {
        let mut rows = [false; ROWS + 1];
        let fixed = TRIGGER_ROWS.iter();
        let listed = cat.triggers.iter().flat_map(|t| t.rows.iter());
        for &row in fixed.chain(listed) {
            if let Some(x) = rows.get_mut(row) {
                *x = true;
            }
        }
        LinkInputs { rows }
    }

    /// Whether facts of this kind can change the links.
    pub fn reads(&self, what: &What) -> bool {
        matches!(
            what,
            What::PenSerious
                | What::TaxGrade { .. }
                | What::CmtBroken(_)
                | What::Overdue { .. }
                | What::FirmAge(_)
                | What::Young
                | What::Status(_)
                | What::LegalRep(_)
                | What::Shareholder { .. }
                | What::Investment { .. }
        ) || rows_read(what).iter().any(|&r| self.rows[r])
    }
}

/// The rows [`triggers`] reads by number (R8's rows come from the catalogue).
const TRIGGER_ROWS: [usize; 10] = [4, 5, 10, 11, 34, 35, 36, 42, 43, 46];

/// The active triggers, in code order.
fn triggers(local: &Local, r: &[f64], cat: &Catalogue) -> Vec<String> {
    let on = |row: usize| r[row - 1] > 0.0;
    let min_r5 = cat
        .triggers
        .iter()
        .find(|t| t.code == "R5")
        .and_then(|t| t.min_count)
        .unwrap_or(2);
    let r8_rows = cat
        .triggers
        .iter()
        .find(|t| t.code == "R8")
        .map(|t| t.rows.clone())
        .unwrap_or_default();
    let conditions = [
        ("R1", on(34)),
        ("R2", on(5)),
        ("R3", on(11)),
        ("R4", on(42) || on(43)),
        ("R5", local.broken_commitments >= min_r5),
        (
            "R6",
            on(4) || local.serious_penalties >= 1 || local.tax_grade == Some(TaxGrade::D) || on(10),
        ),
        (
            "R7",
            local.overdue_over_90 || on(46) || on(35) || on(36) || local.broken_commitments >= 1,
        ),
        (
            "R8",
            r8_rows.iter().any(|&row| on(row))
                || !matches!(local.tax_grade, Some(TaxGrade::A | TaxGrade::B))
                || !local.established
                || local.young,
        ),
        ("R9", local.stopped()),
    ];
    conditions
        .into_iter()
        .filter(|(_, c)| *c)
        .map(|(code, _)| code.to_owned())
        .collect()
}

/// The published colour: the worse of the hysteresis colour and the trigger caps.
pub fn published(hyst: Colour, cap: Colour) -> Colour {
    hyst.max(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat() -> Catalogue {
        Catalogue::embedded()
    }

    #[test]
    fn bands_on_tenths() {
        let c = cat();
        assert_eq!(score_colour(8500, &c), Colour::Blue);
        assert_eq!(score_colour(8499, &c), Colour::Green);
        assert_eq!(score_colour(7000, &c), Colour::Green);
        assert_eq!(score_colour(5500, &c), Colour::Yellow);
        assert_eq!(score_colour(5499, &c), Colour::Red);
    }

    #[test]
    fn hysteresis_worse_at_once_better_with_margin() {
        let c = cat();
        assert_eq!(hysteresis(None, 7050, &c), Colour::Green);
        // Worse applies at once.
        assert_eq!(hysteresis(Some(Colour::Green), 6999, &c), Colour::Yellow);
        // Better only 10 points above the band's lower bound.
        assert_eq!(hysteresis(Some(Colour::Yellow), 7050, &c), Colour::Yellow);
        assert_eq!(hysteresis(Some(Colour::Yellow), 7099, &c), Colour::Yellow);
        assert_eq!(hysteresis(Some(Colour::Yellow), 7100, &c), Colour::Green);
        // From red, the best band that clears its margin.
        assert_eq!(hysteresis(Some(Colour::Red), 7050, &c), Colour::Yellow);
        assert_eq!(hysteresis(Some(Colour::Red), 5550, &c), Colour::Red);
        assert_eq!(hysteresis(Some(Colour::Red), 8600, &c), Colour::Blue);
        assert_eq!(hysteresis(Some(Colour::Green), 8590, &c), Colour::Green);
        // After R9 (colour none) scoring restarts fresh.
        assert_eq!(hysteresis(Some(Colour::None), 7050, &c), Colour::Green);
    }

    #[test]
    fn contributions_sum_to_risk() {
        let c = cat();
        let r: Vec<f64> = (0..ROWS).map(|i| ((i * 37) % 101) as f64).collect();
        let (_, _, risk, contrib) = roll_up(&r, &c);
        let sum: f64 = contrib.iter().sum();
        assert!((sum - risk).abs() < 1e-9, "{sum} vs {risk}");
        let zero = vec![0.0; ROWS];
        assert_eq!(roll_up(&zero, &c).2, 0.0);
    }

    #[test]
    fn one_flag_is_not_diluted() {
        let c = cat();
        let mut r = vec![0.0; ROWS];
        r[33] = 100.0; // row 34 in F1 (weight .6 of F 0.17)
        let (l2, l1, risk, _) = roll_up(&r, &c);
        let f1 = c.level2_index("F1");
        assert!((l2[f1] - (50.0 + 100.0 / 6.0)).abs() < 1e-9);
        assert!(l1[5] > 0.5 * l2[f1]);
        assert!(risk > 0.0);
    }
}
