//! Roll-up, score, colours, triggers, hysteresis and explanations (`model.md`,
//! `semantics.md` §3–4). One shared roll-up function over the 49-value vector in row order.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::catalogue::{Cap, Catalogue, ROWS, TRIGGERS as TRIGGER_CODES};
use crate::event::{Feed, TaxGrade};
use crate::fact::{Src, What};
use crate::indicators::{cross_rows, round2, rows_read, Cross, Local, ReviewFlag};
use crate::model::Model;
use crate::CompactString;

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
    /// Every colour: the bands, best first, then "none" (scoring stopped).
    pub const ALL: [Colour; 5] = [
        Colour::Blue,
        Colour::Green,
        Colour::Yellow,
        Colour::Red,
        Colour::None,
    ];
}

/// A set of active trigger codes, one bit per code of `catalogue::TRIGGERS` (bit `i` is
/// `TRIGGERS[i]`; D75): copied, compared and kept without an allocation. It reads and
/// writes (and prints with `{:?}`) as the list of its codes in code order, the shape the
/// trigger lists always had. Its order is that of the bits, not of the lists.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Triggers(u16);

impl std::fmt::Debug for Triggers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.codes()).finish()
    }
}

impl Triggers {
    /// The set of `codes`; an unknown code is an error that names it.
    pub fn of<'a>(codes: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        codes.into_iter().try_fold(Triggers(0), |set, code| {
            TRIGGER_CODES
                .iter()
                .position(|c| *c == code)
                .map(|i| Triggers(set.0 | 1 << i))
                .ok_or_else(|| format!("unknown trigger code {code:?}"))
        })
    }

    /// The set of the codes whose condition holds (`active[i]` for `TRIGGER_CODES[i]`).
    fn when(active: [bool; TRIGGER_CODES.len()]) -> Self {
        let bits = active.iter().rev().fold(0, |b, on| b << 1 | u16::from(*on));
        Triggers(bits)
    }

    /// Whether `code` is in the set.
    pub fn contains(self, code: &str) -> bool {
        self.codes().any(|c| c == code)
    }

    /// The codes in the set and not in `other`, in code order.
    pub fn without(self, other: Triggers) -> impl Iterator<Item = &'static str> {
        Triggers(self.0 & !other.0).codes()
    }

    /// The codes, in code order.
    pub fn codes(self) -> impl Iterator<Item = &'static str> {
        self.indices().map(|i| TRIGGER_CODES[i])
    }

    /// The codes' indices in `TRIGGER_CODES`, in code order.
    fn indices(self) -> impl Iterator<Item = usize> {
        (0..TRIGGER_CODES.len()).filter(move |i| self.0 >> i & 1 == 1)
    }

    /// The codes as owned strings (the output rows' shape).
    pub fn to_strings(self) -> Vec<String> {
        self.codes().map(str::to_owned).collect()
    }
}

impl Serialize for Triggers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        // With its length up front, as a list's (bincode needs it).
        let mut seq = s.serialize_seq(Some(self.0.count_ones() as usize))?;
        for code in self.codes() {
            seq.serialize_element(code)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Triggers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let codes = Vec::<String>::deserialize(d)?;
        Triggers::of(codes.iter().map(String::as_str)).map_err(serde::de::Error::custom)
    }
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
    #[schemars(with = "Vec<(Feed, String)>")]
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
    /// Active triggers.
    pub triggers: Triggers,
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
    let (r, triggers, p) = inputs(local, cross, cat);
    let records = |row: usize| evidence(local, cross, row).to_vec();
    Evaluation {
        review_flags: local.review_flags(),
        ..assemble(
            r.to_vec(),
            p,
            model,
            triggers,
            local.stopped(),
            records,
            cat,
        )
    }
}

/// The 49 r-values (rows 45–49 from `cross`), the active triggers and `P`.
fn inputs(local: &Local, cross: &Cross, cat: &Catalogue) -> ([f64; ROWS], Triggers, Option<f64>) {
    let mut r = local.r_values();
    cross_rows(&mut r, cross, cat);
    let triggers = triggers(local, &r, cat);
    (r, triggers, local.p.map(|p| p as f64))
}

/// What an enterprise's evaluation decides, in the compact form the dataflow keeps (D75):
/// the 49 r-values, `S₁₀`, the triggers and their cap, and the top-five rows with the
/// records behind them, shared with the enterprise's state rather than copied. With `P`
/// and the model, [`assemble`] expands these into the full [`Evaluation`]. Deciding
/// allocates only the top-five list (D87).
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    /// The 49 r-values.
    pub r: [f64; ROWS],
    /// `S` in tenths; `None` when scoring stopped.
    pub s10: Option<i64>,
    /// Active triggers.
    pub triggers: Triggers,
    /// Worst cap of the active triggers.
    pub cap: Colour,
    /// The top-five rows (1-based, largest contribution first) and the records behind
    /// each.
    pub top: Vec<(u8, Arc<[Src]>)>,
}

/// [`evaluate`] without the parts the compact form drops: what it decides.
pub fn decide(local: &Local, cross: &Cross, model: Option<&Model>, cat: &Catalogue) -> Decided {
    let (r, triggers, p) = inputs(local, cross, cat);
    let s = scores(&r, p, model, triggers, local.stopped(), cat);
    let top = top_rows(&s.roll.contributions)
        .map(|i| (i as u8 + 1, evidence(local, cross, i + 1)))
        .collect();
    Decided {
        s10: s.s10,
        triggers,
        cap: s.cap,
        top,
        r,
    }
}

/// The records behind a row: the enterprise's own (shared with its state), or for rows
/// 45–49 the joined ones.
fn evidence(local: &Local, cross: &Cross, row: usize) -> Arc<[Src]> {
    match row {
        45 => cross
            .person_score
            .iter()
            .map(|(_, _, s)| s.clone())
            .collect(),
        46 => cross.person_dishonest.as_slice().into(),
        47 => local.legal_rep.iter().map(|(_, s)| s.clone()).collect(),
        48 => related_srcs(&local.shareholders, &cross.shareholders_red),
        49 => related_srcs(&local.investments, &cross.affiliates_red),
        _ => local.evidence(row),
    }
}

/// The scores from the 49 r-values, `P`, the model and the active triggers.
struct Scores {
    q: Option<f64>,
    roll: RollUp,
    m: f64,
    s10: Option<i64>,
    cap: Colour,
}

/// `Q` (a function of the r-values and `P`, [`Model::q`]), roll-up, scores and the cap.
fn scores(
    r: &[f64],
    p: Option<f64>,
    model: Option<&Model>,
    triggers: Triggers,
    stopped: bool,
    cat: &Catalogue,
) -> Scores {
    let q = (!stopped).then_some(model).flatten().map(|x| x.q(r, p));
    let roll = roll_up(r, cat);
    let m = 1000.0 - 10.0 * roll.risk;
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
    Scores {
        q,
        roll,
        m,
        s10: (!stopped).then(|| round_half_away(10.0 * s_raw)),
        cap: worst_cap(triggers, cat),
    }
}

/// The evaluation from the 49 r-values, `P`, the model and the active triggers: `Q`,
/// roll-up, scores, colours and the top-five explanation with the records `evidence(row)`
/// names. This is also how a compact copy of an evaluation is expanded again: the same
/// inputs give the same evaluation, bit for bit. The review flags are not part of it (they
/// are the enterprise's, not the score's); [`evaluate`] adds them.
pub fn assemble(
    r: Vec<f64>,
    p: Option<f64>,
    model: Option<&Model>,
    triggers: Triggers,
    stopped: bool,
    evidence: impl Fn(usize) -> Vec<Src>,
    cat: &Catalogue,
) -> Evaluation {
    let s = scores(&r, p, model, triggers, stopped, cat);
    let reasons = top_rows(&s.roll.contributions)
        .map(|i| Reason {
            indicator: cat.indicator(i + 1).id.clone(),
            row: i + 1,
            r: r[i],
            contribution: round4(s.roll.contributions[i]),
            records: evidence(i + 1),
        })
        .collect();
    Evaluation {
        score_colour: s.s10.map_or(Colour::None, |s| score_colour(s, cat)),
        s: s.s10.map(score_of_tenths),
        s10: s.s10,
        r,
        l2: s.roll.level2(cat).to_vec(),
        l1: s.roll.level1(cat).to_vec(),
        risk: round2(s.roll.risk),
        m: round2(s.m),
        p,
        q: s.q,
        model_version: model.map(|x| x.model_version.clone()),
        triggers,
        cap: s.cap,
        reasons,
        review_flags: Vec::new(),
    }
}

fn related_srcs(all: &[(CompactString, Src)], red: &[CompactString]) -> Arc<[Src]> {
    all.iter()
        .filter(|(u, _)| red.contains(u))
        .map(|(_, s)| s.clone())
        .collect()
}

/// The roll-up of 49 r-values, held without an allocation (D87). A validated catalogue has
/// at most one level-2 group per row (each has a row) and at most one level-1 group per
/// level-2 group (each has one), so `ROWS` places hold either level; the first
/// `cat.level2.len()` and `cat.level1.len()` are used.
#[derive(Debug, Clone)]
pub struct RollUp {
    l2: [f64; ROWS],
    l1: [f64; ROWS],
    /// `R`.
    pub risk: f64,
    /// Each row's contribution to `R` (they sum to `R`).
    pub contributions: [f64; ROWS],
}

impl RollUp {
    /// Level 2, in the catalogue's `level2` order.
    pub fn level2(&self, cat: &Catalogue) -> &[f64] {
        &self.l2[..cat.level2.len()]
    }

    /// Level 1, in the catalogue's `level1` order.
    pub fn level1(&self, cat: &Catalogue) -> &[f64] {
        &self.l1[..cat.level1.len()]
    }
}

/// Level 2, level 1, `R` and each row's contribution to `R`.
///
/// A group's value is half its largest member (the first, on ties) plus half its members'
/// mean (level 2) or weighted sum (level 1). A row's contribution is `r` times its share of
/// its level-2 group times that group's share of `R`; a share depends only on the group's
/// size and weight and on whether the member is the largest, so it is computed where the
/// contribution is written, with no array of shares (D106).
pub fn roll_up(r: &[f64], cat: &Catalogue) -> RollUp {
    let tree = cat.tree();
    let mut roll = RollUp {
        l2: [0.0; ROWS],
        l1: [0.0; ROWS],
        risk: 0.0,
        contributions: [0.0; ROWS],
    };
    // Each group's largest member, as a place in its list of members.
    let mut top2 = [0usize; ROWS];
    for ((l2, top), rows) in roll.l2.iter_mut().zip(&mut top2).zip(&tree.rows_of_level2) {
        // The largest (the first, on ties) and the sum in row order (from −0, as `sum`).
        let (mut largest, mut sum) = (f64::NEG_INFINITY, -0.0);
        for (y, &i) in rows.iter().enumerate() {
            let x = r[i];
            if x > largest {
                (*top, largest) = (y, x);
            }
            sum += x;
        }
        *l2 = 0.5 * r[rows[*top]] + 0.5 * (sum / rows.len() as f64);
    }
    let l2 = &roll.l2;
    for ((k, l1), groups) in roll.l1.iter_mut().enumerate().zip(&tree.level2_of_level1) {
        let top = argmax(groups.iter().map(|&j| l2[j]));
        let weighted: f64 = groups.iter().map(|&j| cat.level2[j].weight * l2[j]).sum();
        *l1 = 0.5 * l2[groups[top]] + 0.5 * weighted;
        for (x, &j) in groups.iter().enumerate() {
            let group_share = cat.level1[k].weight
                * (0.5 * f64::from(u8::from(x == top)) + 0.5 * cat.level2[j].weight);
            let rows = &tree.rows_of_level2[j];
            let half_mean = 0.5 / rows.len() as f64;
            for (y, &i) in rows.iter().enumerate() {
                let row_share = 0.5 * f64::from(u8::from(y == top2[j])) + half_mean;
                roll.contributions[i] = group_share * row_share * r[i];
            }
        }
    }
    roll.risk = cat
        .level1
        .iter()
        .zip(&roll.l1)
        .map(|(g, v)| g.weight * v)
        .sum();
    roll
}

/// `S` from `S` in tenths.
pub fn score_of_tenths(s10: i64) -> f64 {
    s10 as f64 / 10.0
}

/// A contribution as the explanation gives it: rounded to 0.0001.
pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The (0-based) rows of the five largest positive contributions, largest first; ties go
/// to the lower row.
///
/// Contributions of rows outside group H do not depend on rows 45–49, so the top five of
/// all rows are among the top five of rows 1–44 and rows 45–49.
///
/// Kept in a fixed list as the rows are read in order (D87): a row goes after every kept
/// row whose contribution is at least its own, which is the order of a stable sort by
/// contribution, largest first.
pub fn top_rows(contributions: &[f64]) -> impl Iterator<Item = usize> {
    const TOP: usize = 5;
    // The kept rows and their contributions (all positive, so `<` orders them as
    // `total_cmp` does).
    let (mut top, mut kept) = ([0usize; TOP], [0.0; TOP]);
    let mut n = 0;
    for (i, &c) in contributions.iter().enumerate() {
        // Not positive (or NaN), or no larger than the fifth kept.
        if c.is_nan() || c <= 0.0 || (n == TOP && c <= kept[TOP - 1]) {
            continue;
        }
        let at = kept[..n].iter().position(|&k| k < c).unwrap_or(n);
        n = (n + 1).min(TOP);
        top.copy_within(at..n - 1, at + 1);
        kept.copy_within(at..n - 1, at + 1);
        (top[at], kept[at]) = (i, c);
    }
    top.into_iter().take(n)
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
pub fn worst_cap(triggers: Triggers, cat: &Catalogue) -> Colour {
    let caps = &cat.trigger_table().caps;
    triggers
        .indices()
        .filter_map(|i| caps.get(i).copied().flatten())
        .map(|cap| match cap {
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
    !local.stopped() && worst_cap(triggers(local, &local.r_values(), cat), cat) == Colour::Red
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
                | What::Overdue(_)
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

/// The active triggers.
fn triggers(local: &Local, r: &[f64], cat: &Catalogue) -> Triggers {
    let on = |row: usize| r[row - 1] > 0.0;
    let table = cat.trigger_table();
    let (min_r5, r8_rows) = (table.r5_min, &table.r8_rows);
    // In the order of `TRIGGER_CODES`: R1 … R9.
    Triggers::when([
        on(34),
        on(5),
        on(11),
        on(42) || on(43),
        local.broken_commitments >= min_r5,
        on(4) || local.serious_penalties >= 1 || local.tax_grade == Some(TaxGrade::D) || on(10),
        local.overdue_over_90 || on(46) || on(35) || on(36) || local.broken_commitments >= 1,
        r8_rows.iter().any(|&row| on(row))
            || !matches!(local.tax_grade, Some(TaxGrade::A | TaxGrade::B))
            || !local.established
            || local.young,
        local.stopped(),
    ])
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

    /// The set reads and writes as the list of its codes in code order, the shape a
    /// trigger list always had (checkpoints and outputs written before D75 read back).
    #[test]
    fn triggers_are_a_set_in_code_order_written_as_their_codes() {
        let codes = |t: Triggers| t.codes().collect::<Vec<_>>();
        let t = Triggers::when([false, true, false, false, false, true, false, false, true]);
        assert_eq!(codes(t), ["R2", "R6", "R9"]);
        assert_eq!(Triggers::of(["R9", "R2", "R6"]), Ok(t));
        assert!(t.contains("R6") && !t.contains("R1") && !t.contains("R10"));
        let old = Triggers::of(["R1", "R6"]).expect("known");
        assert_eq!(t.without(old).collect::<Vec<_>>(), ["R2", "R9"]);
        assert_eq!(old.without(t).collect::<Vec<_>>(), ["R1"]);
        assert_eq!(format!("{t:?}"), r#"["R2", "R6", "R9"]"#);
        let json = serde_json::to_string(&t).expect("json");
        assert_eq!(
            json,
            serde_json::to_string(&["R2", "R6", "R9"]).expect("json")
        );
        assert_eq!(serde_json::from_str::<Triggers>(&json).expect("reads"), t);
        let err = serde_json::from_str::<Triggers>(r#"["R1","X3"]"#).expect_err("unknown");
        assert!(
            err.to_string().contains("unknown trigger code \"X3\""),
            "{err}"
        );
        let every = Triggers::when([true; 9]);
        assert_eq!(codes(every), TRIGGER_CODES);
    }

    /// The top five kept as rows are read equal a stable sort by contribution, largest
    /// first, on lists with ties, zeros and negatives.
    #[test]
    fn top_rows_are_the_sorted_first_five() {
        let mut seed = 7u64;
        for _ in 0..2_000 {
            let c: Vec<f64> = (0..ROWS)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    f64::from((seed >> 33) as u32 % 9) - 3.0
                })
                .collect();
            let mut sorted: Vec<usize> = (0..ROWS).filter(|i| c[*i] > 0.0).collect();
            sorted.sort_by(|a, b| c[*b].total_cmp(&c[*a]).then(a.cmp(b)));
            sorted.truncate(5);
            assert_eq!(top_rows(&c).collect::<Vec<_>>(), sorted, "{c:?}");
        }
        assert_eq!(top_rows(&[0.0; ROWS]).count(), 0);
    }

    /// The roll-up as the spec writes it, with an array of each row's and each level-2
    /// group's share: `roll_up` before D106.
    fn roll_up_by_shares(r: &[f64], cat: &Catalogue) -> RollUp {
        let tree = cat.tree();
        let (mut l2, mut row_share) = ([0.0; ROWS], [0.0; ROWS]);
        for (j, rows) in tree.rows_of_level2.iter().enumerate() {
            let n = rows.len() as f64;
            let max_i = argmax(rows.iter().map(|&i| r[i]));
            let mean = rows.iter().map(|&i| r[i]).sum::<f64>() / n;
            l2[j] = 0.5 * r[rows[max_i]] + 0.5 * mean;
            for (k, &i) in rows.iter().enumerate() {
                row_share[i] = 0.5 * f64::from(u8::from(k == max_i)) + 0.5 / n;
            }
        }
        let (mut l1, mut group_share) = ([0.0; ROWS], [0.0; ROWS]);
        for (k, groups) in tree.level2_of_level1.iter().enumerate() {
            let max_j = argmax(groups.iter().map(|&j| l2[j]));
            let weighted: f64 = groups.iter().map(|&j| cat.level2[j].weight * l2[j]).sum();
            l1[k] = 0.5 * l2[groups[max_j]] + 0.5 * weighted;
            for (x, &j) in groups.iter().enumerate() {
                group_share[j] = cat.level1[k].weight
                    * (0.5 * f64::from(u8::from(x == max_j)) + 0.5 * cat.level2[j].weight);
            }
        }
        RollUp {
            l2,
            l1,
            risk: cat.level1.iter().zip(&l1).map(|(g, v)| g.weight * v).sum(),
            contributions: std::array::from_fn(|i| {
                group_share[tree.level2_of_row[i]] * row_share[i] * r[i]
            }),
        }
    }

    /// Every number of the roll-up, by its bits.
    fn bits(x: &RollUp) -> Vec<u64> {
        let all =
            x.l2.iter()
                .chain(&x.l1)
                .chain([&x.risk])
                .chain(&x.contributions);
        all.map(|v| v.to_bits()).collect()
    }

    proptest::proptest! {
        /// The roll-up equals the spec's share arrays bit for bit, on r-values in
        /// hundredths with many ties (a few values, zeros among them).
        #[test]
        fn roll_up_is_the_spec_s_shares(
            picks in proptest::collection::vec(0usize..6, ROWS),
            values in proptest::collection::vec(0u16..=10_000, 6),
        ) {
            let c = cat();
            let r: Vec<f64> = picks.iter().map(|&p| f64::from(values[p]) / 100.0).collect();
            proptest::prop_assert_eq!(bits(&roll_up(&r, &c)), bits(&roll_up_by_shares(&r, &c)));
        }
    }

    #[test]
    fn contributions_sum_to_risk() {
        let c = cat();
        let r: Vec<f64> = (0..ROWS).map(|i| ((i * 37) % 101) as f64).collect();
        let x = roll_up(&r, &c);
        let (risk, contrib) = (x.risk, x.contributions);
        let sum: f64 = contrib.iter().sum();
        assert!((sum - risk).abs() < 1e-9, "{sum} vs {risk}");
        let zero = vec![0.0; ROWS];
        assert_eq!(roll_up(&zero, &c).risk, 0.0);
    }

    #[test]
    fn one_flag_is_not_diluted() {
        let c = cat();
        let mut r = vec![0.0; ROWS];
        r[33] = 100.0; // row 34 in F1 (weight .6 of F 0.17)
        let x = roll_up(&r, &c);
        let (l2, l1, risk) = (x.level2(&c), x.level1(&c), x.risk);
        let f1 = c.level2_index("F1");
        assert!((l2[f1] - (50.0 + 100.0 / 6.0)).abs() < 1e-9);
        assert!(l1[5] > 0.5 * l2[f1]);
        assert!(risk > 0.0);
    }
}
