//! `steward what-if` (issue 21, `docs/decisions.md` D78): the current rules and a
//! candidate over the same records, side by side in one dataflow
//! ([`engine::replay::side_by_side`]), and what the candidate would change.
//!
//! - `mod.rs` (this file): the comparison of the two replays, [`WhatIf`] (the content of
//!   `what-if.json`).
//! - `diff.rs`: the difference of the two catalogue files, field by field.
//! - `page.rs`: `what-if.html`, self-contained.
//! - `inspection.rs`: the inspection what-if (`--inspection`): discovery rates of the
//!   current and a candidate inspection policy against uniform sampling.

use std::collections::BTreeMap;
use std::sync::Arc;

use rules::catalogue::{Catalogue, ROWS};
use rules::lifecycle::Accepted;
use rules::model::Model;
use rules::monitor::AlertState;
use rules::score::{roll_up, round4, Colour};
use rules::time::{format_rfc3339, local_date, Ts};
use serde::Serialize;

use engine::dataflow::Scored;
use engine::replay::{side_by_side, Replayed, Rules, Schedule};

pub mod diff;
pub mod inspection;
pub mod page;

/// Records per step of the replay (as `steward run`).
const BATCH: usize = 50_000;

/// How many rows a difference lists, those whose contributions differ most.
const ROWS_SHOWN: usize = 5;

/// One side of the comparison: its rules and what the replay gave under them.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    /// The catalogue.
    pub cat: &'a Catalogue,
    /// The model, if `Q` enters the score.
    pub model: Option<&'a Model>,
    /// The replay under these rules, up to the comparison's time.
    pub out: &'a Replayed,
}

/// When: colours are compared at `at`, and colour changes and alerts are counted from
/// `from` to `at` (both included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The first logical time counted.
    pub from: Ts,
    /// The time of the comparison, and the last logical time counted.
    pub at: Ts,
}

/// What a candidate would change: the content of `what-if.json`.
#[derive(Debug, Clone, Serialize)]
pub struct WhatIf {
    /// The time of the comparison (RFC 3339).
    pub at: String,
    /// The start of the period the events are counted over (RFC 3339).
    pub from: String,
    /// The current rules' versions.
    pub current: Versions,
    /// The candidate's versions.
    pub candidate: Versions,
    /// Every field of the catalogue file that the candidate changes.
    pub catalogue_changes: Vec<diff::Change>,
    /// Enterprises known at `at` under either version.
    pub enterprises: u64,
    /// The colours naming the matrix's rows and columns, in order.
    pub colours: Vec<Colour>,
    /// `matrix[i][j]`: enterprises of colour `colours[i]` now and `colours[j]` under the
    /// candidate, at `at`.
    pub matrix: Vec<Vec<u64>>,
    /// Enterprises whose published colour differs at `at`.
    pub colour_differs: u64,
    /// Enterprises whose score `S` differs at `at` (whatever their colour).
    pub score_differs: u64,
    /// Colour changes and alerts raised over the period, under each version.
    pub events: Events,
    /// The enterprises whose colour differs, the largest score difference first.
    pub differences: Vec<Difference>,
    /// The differences by region code (`""`: no region known).
    pub by_region: Vec<Breakdown>,
    /// The differences by industry code (`""`: no industry known).
    pub by_industry: Vec<Breakdown>,
    /// How many enterprises had each colour at the end of each day (Asia/Shanghai) from
    /// the first colour change to the last one at or before `at`, under each version.
    pub distribution: Vec<Day>,
}

/// A side's rules.
#[derive(Debug, Clone, Serialize)]
pub struct Versions {
    /// The catalogue's version.
    pub rules_version: String,
    /// The model's version, if a model is used.
    pub model_version: Option<String>,
}

/// Events over the period, under each version.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Events {
    /// Under the current rules.
    pub current: Counts,
    /// Under the candidate.
    pub candidate: Counts,
}

/// Events of one version.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counts {
    /// Published colour changes (first colours included).
    pub colour_changes: u64,
    /// Alerts raised (state `firing`).
    pub alerts: u64,
}

/// An enterprise whose colour differs.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// Enterprise.
    pub uscc: String,
    /// Region code.
    pub region: Option<String>,
    /// Industry code.
    pub industry: Option<String>,
    /// Under the current rules.
    pub current: State,
    /// Under the candidate.
    pub candidate: State,
    /// The rows whose contributions to `R` differ most (at most five, largest first).
    pub rows: Vec<RowDifference>,
}

/// An enterprise's state under one version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct State {
    /// Published colour.
    pub colour: Colour,
    /// Final score `S` (`None`: scoring stopped).
    pub score: Option<f64>,
    /// Active triggers.
    pub triggers: Vec<String>,
}

/// One row's part in a difference.
#[derive(Debug, Clone, Serialize)]
pub struct RowDifference {
    /// Row 1–49.
    pub row: usize,
    /// Indicator id.
    pub indicator: String,
    /// Its name (Chinese).
    pub name_zh: String,
    /// r-value under the current rules.
    pub r_current: f64,
    /// r-value under the candidate.
    pub r_candidate: f64,
    /// Contribution to `R` under the current rules (rounded to 0.0001).
    pub current: f64,
    /// Contribution to `R` under the candidate (rounded to 0.0001).
    pub candidate: f64,
}

/// The differences among the enterprises of one region or industry.
#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    /// The code.
    pub code: String,
    /// Enterprises.
    pub enterprises: u64,
    /// Whose colour differs.
    pub colour_differs: u64,
    /// Whose band is worse under the candidate.
    pub worse: u64,
    /// Whose band is better under the candidate.
    pub better: u64,
}

/// The colour distribution at the end of one day.
#[derive(Debug, Clone, Serialize)]
pub struct Day {
    /// The date (Asia/Shanghai).
    pub date: String,
    /// Enterprises of each colour (in [`Colour::ALL`]'s order) under the current rules.
    pub current: [u64; 5],
    /// The same under the candidate.
    pub candidate: [u64; 5],
}

fn index(c: Colour) -> usize {
    Colour::ALL
        .iter()
        .position(|x| *x == c)
        .unwrap_or(Colour::ALL.len() - 1)
}

/// A band's rank (blue 0 … red 3); no colour has none.
fn rank(c: Colour) -> Option<usize> {
    Colour::BANDS.iter().position(|x| *x == c)
}

/// One enterprise under one version: its compact evaluation and published colour.
struct Seen<'a> {
    scored: &'a Scored,
    colour: Colour,
}

impl<'a> Side<'a> {
    /// The side of `rules`, whose replay gave `out`.
    pub fn of(rules: &'a Rules, out: &'a Replayed) -> Self {
        Side {
            cat: &rules.cat,
            model: rules.model.as_deref(),
            out,
        }
    }

    fn versions(&self) -> Versions {
        Versions {
            rules_version: self.cat.version.clone(),
            model_version: self.model.map(|m| m.model_version.clone()),
        }
    }

    fn seen(&self, uscc: &str) -> Option<Seen<'a>> {
        let (scored, published) = self.out.states.get(uscc)?;
        Some(Seen {
            scored,
            colour: published.unwrap_or(Colour::None),
        })
    }

    fn counts(&self, w: Window) -> Counts {
        let within = |t: Ts| w.from <= t && t <= w.at;
        Counts {
            colour_changes: self.out.changes.iter().filter(|c| within(c.as_of)).count() as u64,
            alerts: self
                .out
                .alerts
                .iter()
                .filter(|a| within(a.as_of) && a.state == AlertState::Firing)
                .count() as u64,
        }
    }

    /// An enterprise's r-values and each row's contribution to `R` (zeros when unknown).
    fn rows(&self, seen: Option<&Seen>) -> ([f64; ROWS], [f64; ROWS]) {
        match seen {
            Some(s) => {
                let r = s.scored.r_values();
                (r, roll_up(&r, self.cat).contributions)
            }
            None => ([0.0; ROWS], [0.0; ROWS]),
        }
    }
}

fn state(s: Option<&Seen>) -> State {
    State {
        colour: s.map_or(Colour::None, |s| s.colour),
        score: s.and_then(|s| s.scored.score()),
        triggers: s
            .map(|s| s.scored.triggers.to_strings())
            .unwrap_or_default(),
    }
}

/// The rows whose contributions differ most between the two sides.
fn rows(cur: (&Side, Option<&Seen>), cand: (&Side, Option<&Seen>)) -> Vec<RowDifference> {
    let ((ra, ca), (rb, cb)) = (cur.0.rows(cur.1), cand.0.rows(cand.1));
    let mut order: Vec<usize> = (0..ca.len())
        .filter(|&i| round4(ca[i]) != round4(cb[i]))
        .collect();
    // The largest difference first; ties to the lower row.
    order.sort_by(|&i, &j| {
        (cb[j] - ca[j])
            .abs()
            .total_cmp(&(cb[i] - ca[i]).abs())
            .then(i.cmp(&j))
    });
    order.truncate(ROWS_SHOWN);
    order
        .into_iter()
        .map(|i| {
            let ind = &cand.0.cat.indicators[i];
            RowDifference {
                row: i + 1,
                indicator: ind.id.clone(),
                name_zh: ind.name_zh.clone(),
                r_current: ra[i],
                r_candidate: rb[i],
                current: round4(ca[i]),
                candidate: round4(cb[i]),
            }
        })
        .collect()
}

/// A tally of differences by a code.
#[derive(Default)]
struct Tally(BTreeMap<String, Breakdown>);

impl Tally {
    fn add(&mut self, code: Option<&str>, a: Colour, b: Colour) {
        let code = code.unwrap_or_default().to_owned();
        let t = self.0.entry(code.clone()).or_insert(Breakdown {
            code,
            enterprises: 0,
            colour_differs: 0,
            worse: 0,
            better: 0,
        });
        t.enterprises += 1;
        t.colour_differs += u64::from(a != b);
        if let (Some(x), Some(y)) = (rank(a), rank(b)) {
            t.worse += u64::from(y > x);
            t.better += u64::from(y < x);
        }
    }

    fn done(self) -> Vec<Breakdown> {
        self.0.into_values().collect()
    }
}

/// The colour distribution at the end of each day, from each side's colour changes.
fn distribution(cur: &Replayed, cand: &Replayed, at: Ts) -> Vec<Day> {
    // The first and the last change of either side.
    let times = || cur.changes.iter().chain(&cand.changes).map(|c| c.as_of);
    let (Some(first), Some(moved)) = (times().min(), times().max()) else {
        return Vec::new();
    };
    let (mut a, mut b) = ([0u64; 5], [0u64; 5]);
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    let mut date = local_date(first);
    // Nothing moves after the last change: the series ends there (or at `at`, if earlier).
    let last = local_date(at.min(moved));
    // Applies a side's changes up to the end of `date`.
    fn apply(changes: &[rules::monitor::ColourChange], k: &mut usize, end: Ts, n: &mut [u64; 5]) {
        while let Some(c) = changes.get(*k).filter(|c| c.as_of <= end) {
            if let Some(f) = c.from {
                n[index(f)] = n[index(f)].saturating_sub(1);
            }
            n[index(c.to)] += 1;
            *k += 1;
        }
    }
    while date <= last {
        // The day's last second (a date ends, exclusive, at the next midnight).
        let end = (rules::time::date_end(date) - 1).min(at);
        apply(&cur.changes, &mut i, end, &mut a);
        apply(&cand.changes, &mut j, end, &mut b);
        out.push(Day {
            date: date.to_string(),
            current: a,
            candidate: b,
        });
        let Some(next) = date.succ_opt() else { break };
        date = next;
    }
    out
}

/// What the candidate changes against the current rules over `window`, with the catalogue
/// files' differences `changes`.
pub fn compare(cur: Side, cand: Side, window: Window, changes: Vec<diff::Change>) -> WhatIf {
    let mut usccs: Vec<&String> = cur
        .out
        .states
        .keys()
        .chain(cand.out.states.keys())
        .collect();
    usccs.sort();
    usccs.dedup();
    let mut matrix = vec![vec![0u64; Colour::ALL.len()]; Colour::ALL.len()];
    let (mut regions, mut industries) = (Tally::default(), Tally::default());
    let (mut colour_differs, mut score_differs) = (0, 0);
    let mut differences = Vec::new();
    for u in &usccs {
        let (a, b) = (cur.seen(u), cand.seen(u));
        let (sa, sb) = (state(a.as_ref()), state(b.as_ref()));
        matrix[index(sa.colour)][index(sb.colour)] += 1;
        let scored = cur.out.states.get(*u).or_else(|| cand.out.states.get(*u));
        let (region, industry) = scored.map_or((None, None), |(s, _)| {
            (
                s.region.as_deref().map(str::to_owned),
                s.industry.as_deref().map(str::to_owned),
            )
        });
        regions.add(region.as_deref(), sa.colour, sb.colour);
        industries.add(industry.as_deref(), sa.colour, sb.colour);
        score_differs += u64::from(sa.score != sb.score);
        if sa.colour != sb.colour {
            colour_differs += 1;
            differences.push(Difference {
                uscc: (*u).clone(),
                region,
                industry,
                rows: rows((&cur, a.as_ref()), (&cand, b.as_ref())),
                current: sa,
                candidate: sb,
            });
        }
    }
    let gap = |d: &Difference| match (d.current.score, d.candidate.score) {
        (Some(x), Some(y)) => (y - x).abs(),
        _ => f64::INFINITY,
    };
    differences.sort_by(|x, y| gap(y).total_cmp(&gap(x)).then_with(|| x.uscc.cmp(&y.uscc)));
    WhatIf {
        at: format_rfc3339(window.at),
        from: format_rfc3339(window.from),
        current: cur.versions(),
        candidate: cand.versions(),
        catalogue_changes: changes,
        enterprises: usccs.len() as u64,
        colours: Colour::ALL.to_vec(),
        matrix,
        colour_differs,
        score_differs,
        events: Events {
            current: cur.counts(window),
            candidate: cand.counts(window),
        },
        differences,
        by_region: regions.done(),
        by_industry: industries.done(),
        distribution: distribution(cur.out, cand.out, window.at),
    }
}

/// Replays `log` under the `current` rules and the `candidate` side by side in one dataflow
/// up to `window.at`, and compares them.
pub fn run(
    log: Arc<[Arc<Accepted>]>,
    current: &Rules,
    candidate: &Rules,
    window: Window,
    changes: Vec<diff::Change>,
    config: timely::Config,
) -> Result<WhatIf, String> {
    let both = vec![current.clone(), candidate.clone()];
    let out = side_by_side(log, both, config, Schedule::new(BATCH, window.at))?;
    Ok(compare(
        Side::of(current, &out[0]),
        Side::of(candidate, &out[1]),
        window,
        changes,
    ))
}
