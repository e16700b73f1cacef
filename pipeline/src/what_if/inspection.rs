//! The inspection what-if (`steward what-if --inspection`, D80): plans drawn at one snapshot
//! under the current and a candidate inspection policy, and uniform plans of the current
//! plan's size, over many campaign seeds; each plan scored by the share of its enterprises
//! in which the history shows a problem in the months after the snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rules::catalogue::Cap;
use rules::event::{Body, InspResult, PenKind};
use rules::lifecycle::Accepted;
use rules::monitor::AlertState;
use rules::score::Colour;
use rules::supervision::{draw, Candidate, Inspection};
use rules::time::{format_rfc3339, Ts};
use serde::Serialize;

use engine::checkpoint::{Checkpoint, FORMAT};
use engine::replay::{replay, Rules, Schedule};

/// z for a two-sided 95 % interval.
const Z95: f64 = 1.96;

/// An enterprise at the snapshot, as the inspection rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The enterprise.
    pub uscc: String,
    /// Its published colour.
    pub colour: Colour,
    /// Its 49 level-3 values (the overrides read them).
    pub level3: Vec<f64>,
    /// Its latest registered capital at the snapshot, in fen.
    pub registered_capital_fen: Option<i64>,
}

/// A mean over the seeds with its 95 % confidence interval (normal approximation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// The mean.
    pub mean: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
}

impl Estimate {
    fn of(xs: &[f64]) -> Estimate {
        let n = xs.len() as f64;
        if xs.is_empty() {
            return Estimate {
                mean: 0.0,
                low: 0.0,
                high: 0.0,
            };
        }
        let mean = xs.iter().sum::<f64>() / n;
        let var = if xs.len() > 1 {
            xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        let half = Z95 * (var / n).sqrt();
        Estimate {
            mean,
            low: mean - half,
            high: mean + half,
        }
    }
}

/// One policy's plans over the seeds.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyResult {
    /// Enterprises selected per plan, on average.
    pub selected: f64,
    /// Problems found per enterprise inspected (plans that select nobody are left out).
    pub discovery_rate: Estimate,
    /// `discovery_rate` over the uniform plans' rate.
    pub lift_over_uniform: Option<f64>,
    /// Its rate minus the uniform plan's rate of the same seed.
    pub difference_from_uniform: Estimate,
}

/// The inspection what-if's result: the content of `inspection-what-if.json`.
#[derive(Debug, Clone, Serialize)]
pub struct InspectionWhatIf {
    /// The snapshot the plans are drawn at (RFC 3339).
    pub at: String,
    /// The end of the period a problem is looked for in (RFC 3339).
    pub until: String,
    /// Campaign seeds drawn (1 to `seeds`).
    pub seeds: u64,
    /// Enterprises with a colour at the snapshot.
    pub enterprises: u64,
    /// How many of them show a problem in the period.
    pub with_problem: u64,
    /// Under the current policy.
    pub current: PolicyResult,
    /// Under the candidate.
    pub candidate: PolicyResult,
    /// Uniform sampling of as many enterprises as the current plan of the same seed.
    pub uniform: PolicyResult,
}

/// The enterprises that `policy`'s campaign `seed` selects at `at`. No earlier campaign is
/// known, so no frequency cap applies.
fn plan<'m>(policy: &Inspection, seed: u64, at: Ts, members: &'m [Member]) -> Vec<&'m Member> {
    members
        .iter()
        .filter(|m| {
            let c = Candidate {
                uscc: &m.uscc,
                colour: m.colour,
                level3: &m.level3,
                registered_capital_fen: m.registered_capital_fen,
                earlier: &[],
            };
            policy.decide(seed, at, &c).is_some_and(|d| d.selected)
        })
        .collect()
}

/// `k` enterprises drawn uniformly with campaign `seed` (the smallest draws, keyed apart
/// from the policies' draws).
fn uniform(seed: u64, k: usize, members: &[Member]) -> Vec<&Member> {
    let mut by_draw: Vec<(f64, &Member)> = members
        .iter()
        .map(|m| (draw(seed, &format!("uniform/{}", m.uscc)), m))
        .collect();
    by_draw.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.uscc.cmp(&b.1.uscc)));
    by_draw.into_iter().take(k).map(|(_, m)| m).collect()
}

/// Per seed: the plan's size and its rate (`None` when it selects nobody).
type Plans = Vec<(usize, Option<f64>)>;

fn rate(plan: &[&Member], problems: &BTreeSet<&str>) -> (usize, Option<f64>) {
    let found = plan
        .iter()
        .filter(|m| problems.contains(m.uscc.as_str()))
        .count();
    let rate = (!plan.is_empty()).then(|| found as f64 / plan.len() as f64);
    (plan.len(), rate)
}

fn result(plans: &Plans, uniform: &Plans) -> PolicyResult {
    let rates: Vec<f64> = plans.iter().filter_map(|p| p.1).collect();
    let paired: Vec<f64> = plans
        .iter()
        .zip(uniform)
        .filter_map(|(p, u)| Some(p.1? - u.1?))
        .collect();
    let base = Estimate::of(&uniform.iter().filter_map(|u| u.1).collect::<Vec<_>>()).mean;
    let rate = Estimate::of(&rates);
    PolicyResult {
        selected: plans.iter().map(|p| p.0 as f64).sum::<f64>() / plans.len().max(1) as f64,
        discovery_rate: rate,
        lift_over_uniform: (base > 0.0).then(|| rate.mean / base),
        difference_from_uniform: Estimate::of(&paired),
    }
}

/// Draws the plans of seeds 1 to `seeds` at `at` under `current`, `candidate` and uniform
/// sampling, and scores each by `problems` (the enterprises in which the history shows a
/// problem between `at` and `until`).
pub fn compare(
    members: &[Member],
    problems: &BTreeSet<&str>,
    current: &Inspection,
    candidate: &Inspection,
    (at, until): (Ts, Ts),
    seeds: u64,
) -> InspectionWhatIf {
    let (mut cur, mut cand, mut uni) = (Plans::new(), Plans::new(), Plans::new());
    for seed in 1..=seeds {
        let a = plan(current, seed, at, members);
        uni.push(rate(&uniform(seed, a.len(), members), problems));
        cur.push(rate(&a, problems));
        cand.push(rate(&plan(candidate, seed, at, members), problems));
    }
    InspectionWhatIf {
        at: format_rfc3339(at),
        until: format_rfc3339(until),
        seeds,
        enterprises: members.len() as u64,
        with_problem: members
            .iter()
            .filter(|m| problems.contains(m.uscc.as_str()))
            .count() as u64,
        current: result(&cur, &uni),
        candidate: result(&cand, &uni),
        uniform: result(&uni, &uni),
    }
}

/// Whether `a` shows a problem: an inspection that found one (failed, corrected on the
/// spot, or the enterprise not operating), or a penalty decision.
fn is_problem(a: &Accepted) -> bool {
    match &a.event.body {
        Body::Insp(i) => matches!(
            i.result,
            Some(InspResult::Fail | InspResult::ProblemCorrected | InspResult::NotOperating)
        ),
        Body::Pen(p) => p.kind == PenKind::Decided,
        _ => false,
    }
}

/// The inspection what-if over `log` under `rules` (the current catalogue and model): the
/// snapshot's colours and level-3 values from a replay to `at`, and the enterprises with a
/// problem after it: a record of one with its event time in `(at, until]` and visible by
/// `until`, or a red trigger firing in that period (the replay resumed from the
/// snapshot to `until`).
pub fn run(
    log: Arc<[Arc<Accepted>]>,
    rules: &Rules,
    (current, candidate): (&Inspection, &Inspection),
    (at, until): (Ts, Ts),
    seeds: u64,
    workers: usize,
) -> Result<InspectionWhatIf, String> {
    let replay_with = |schedule: Schedule| {
        let config = timely::Config::process(workers);
        let (cat, model) = (rules.cat.clone(), rules.model.clone());
        replay(
            log.clone(),
            cat,
            model,
            None,
            config,
            schedule,
            |_, _, _, _| {},
        )
    };
    // The snapshot, and the trackers' state then, from which the period after it is replayed
    // (D68): the history up to the snapshot is not stepped through twice.
    let mut then = replay_with(Schedule {
        checkpoint: true,
        ..Schedule::new(super::BATCH, at)
    })?;
    let checkpoint = Checkpoint {
        format: FORMAT,
        at,
        setup: String::new(),
        workers: std::mem::take(&mut then.kept).into_values().collect(),
    };
    let later = replay_with(Schedule {
        resume: Some(Arc::new(checkpoint)),
        ..Schedule::new(super::BATCH, until)
    })?;
    // The latest registered capital by event time, as `steward plan` reads it.
    let mut capital: BTreeMap<&str, (Ts, i64)> = BTreeMap::new();
    for a in log.iter().filter(|a| a.v <= at) {
        if let Body::Reg(r) = &a.event.body {
            if let Some(k) = r.registered_capital_fen {
                let e = capital.entry(a.event.uscc.as_str()).or_insert((Ts::MIN, k));
                if a.event.event_time >= e.0 {
                    *e = (a.event.event_time, k);
                }
            }
        }
    }
    let members: Vec<Member> = then
        .states
        .iter()
        .filter_map(|(u, (s, published))| {
            let colour = (*published).filter(|c| Colour::BANDS.contains(c))?;
            Some(Member {
                uscc: u.clone(),
                colour,
                level3: s.r_values().to_vec(),
                registered_capital_fen: capital.get(u.as_str()).map(|c| c.1),
            })
        })
        .collect();
    let red: BTreeSet<&str> = rules
        .cat
        .triggers
        .iter()
        .filter(|t| t.cap == Cap::Red)
        .map(|t| t.code.as_str())
        .collect();
    let within = |t: Ts| at < t && t <= until;
    let problems: BTreeSet<&str> = log
        .iter()
        .filter(|a| a.v <= until && within(a.event.event_time) && is_problem(a))
        .map(|a| a.event.uscc.as_str())
        .chain(
            later
                .alerts
                .iter()
                .filter(|a| {
                    a.state == AlertState::Firing
                        && within(a.as_of)
                        && red.contains(a.rule.as_str())
                })
                .map(|a| a.uscc.as_str()),
        )
        .collect();
    Ok(compare(
        &members,
        &problems,
        current,
        candidate,
        (at, until),
        seeds,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rules::supervision::Supervision;

    /// 1,000 enterprises: 50 red, 150 yellow, 400 green, 400 blue.
    fn population() -> Vec<Member> {
        (0..1000)
            .map(|i| Member {
                uscc: format!("E{i:04}"),
                colour: match i {
                    0..50 => Colour::Red,
                    50..200 => Colour::Yellow,
                    200..600 => Colour::Green,
                    _ => Colour::Blue,
                },
                level3: vec![0.0; 49],
                registered_capital_fen: None,
            })
            .collect()
    }

    #[test]
    fn the_current_policy_as_candidate_gives_equal_rates() {
        let members = population();
        // Problems spread over every colour.
        let problems: BTreeSet<&str> = members
            .iter()
            .filter(|m| m.uscc.ends_with('7') || m.colour == Colour::Red)
            .map(|m| m.uscc.as_str())
            .collect();
        let policy = Supervision::embedded().inspection;
        let w = compare(&members, &problems, &policy, &policy, (0, 1), 100);
        assert_eq!(w.current.discovery_rate, w.candidate.discovery_rate);
        assert_eq!(w.current.selected, w.candidate.selected);
        assert_eq!(w.current.lift_over_uniform, w.candidate.lift_over_uniform);
        assert!(
            w.current.selected > 50.0,
            "the reds and some others: {}",
            w.current.selected
        );
        assert_eq!(w.uniform.selected, w.current.selected, "the same budget");
        let u = w.uniform.discovery_rate;
        assert!(
            u.low <= 0.145 && 0.145 <= u.high,
            "uniform finds the base rate, 145 of 1,000: {u:?}"
        );
        assert_eq!(w.uniform.difference_from_uniform.mean, 0.0);
    }

    #[test]
    fn sampling_only_reds_beats_uniform_where_problems_are_among_reds() {
        let members = population();
        let problems: BTreeSet<&str> = members
            .iter()
            .filter(|m| m.colour == Colour::Red)
            .map(|m| m.uscc.as_str())
            .collect();
        let current = Supervision::embedded().inspection;
        let mut reds_only = current.clone();
        for rule in [
            &mut reds_only.blue,
            &mut reds_only.green,
            &mut reds_only.yellow,
        ] {
            rule.probability = 0.0;
        }
        reds_only.overrides.clear();
        let w = compare(&members, &problems, &current, &reds_only, (0, 1), 100);
        assert_eq!(
            w.candidate.discovery_rate.mean, 1.0,
            "every red has a problem"
        );
        assert_eq!(w.candidate.selected, 50.0);
        let u = w.uniform.discovery_rate;
        assert!(u.high < 0.1, "uniform finds about 5 %: {u:?}");
        assert!(w.candidate.difference_from_uniform.low > 0.8);
        assert!(w.candidate.lift_over_uniform.is_some_and(|l| l > 10.0));
        // The graded current policy sits in between.
        let c = w.current.discovery_rate;
        assert!(u.high < c.low && c.high < 1.0, "{c:?} against {u:?}");
    }
}
