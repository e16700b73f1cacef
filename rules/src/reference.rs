//! The from-scratch reference computation: the oracle the incremental pipeline is tested
//! against. Plain, obviously-correct code; no incremental tricks.
//!
//! [`evaluate_at`] gives every enterprise's evaluation at one logical time from the log of
//! accepted records (with their visibility times). [`run`] walks every time at which any
//! state can change and feeds each evaluation instant, in time order, to a
//! [`Monitor`]: hysteresis, colour changes and alerts.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalogue::Catalogue;
use crate::fact::{commitment_events, derive, Check, CommitmentEvent, Fact, Src, What};
use crate::indicators::{local, Cross, Local};
use crate::lifecycle::{resolve_enterprise, resolve_versions, Accepted, Dead, RecordId};
use crate::model::Model;
use crate::monitor::{Alert, ColourChange, Monitor};
use crate::score::{evaluate, red_trigger, Colour, Evaluation};
use crate::status::{self, RecordKey, RecordStep, Status, Step};
use crate::supervision::{CommitmentRules, Scheduled, Verification};
use crate::time::Ts;
use crate::CompactString;

/// What stages 1 and 2 derive from a set of visible records.
#[derive(Debug, Clone, Default)]
pub struct Derivation {
    /// Every enterprise's facts.
    pub facts: BTreeMap<String, Vec<Fact>>,
    /// Lifecycle dead letters, sorted.
    pub dead: Vec<Dead>,
    /// Every enterprise's published commitments and verification results.
    pub commitments: BTreeMap<String, Vec<CommitmentEvent>>,
    /// Every visible record's status steps.
    pub statuses: Vec<RecordStep>,
}

/// Stage 1 and 2 over a set of visible records: every enterprise's facts and commitment
/// events, plus dead letters.
pub fn facts_of(visible: &[&Accepted], cat: &Catalogue) -> Derivation {
    let mut by_id: BTreeMap<RecordId, Vec<&Accepted>> = BTreeMap::new();
    for a in visible {
        by_id.entry(a.id()).or_default().push(a);
    }
    let mut dead = Vec::new();
    let mut by_uscc: BTreeMap<&str, Vec<&Accepted>> = BTreeMap::new();
    let mut out = Derivation::default();
    for versions in by_id.values() {
        let outcome = resolve_versions(versions);
        let steps = status::of_versions(versions, &outcome);
        out.statuses.extend(steps.into_iter().map(status::owned));
        dead.extend(outcome.dead);
        if let Some(w) = outcome.winner {
            out.statuses.push(status::owned(status::active(w)));
            by_uscc.entry(w.event.uscc.as_str()).or_default().push(w);
        }
    }
    for (uscc, winners) in by_uscc {
        let res = resolve_enterprise(&winners, cat);
        dead.extend(res.dead.iter().cloned());
        let facts = derive(&res, cat);
        let steps = status::of_enterprise(&res, &facts);
        out.statuses.extend(steps.into_iter().map(status::owned));
        if res.is_known() {
            out.facts.insert(uscc.to_owned(), facts);
            out.commitments
                .insert(uscc.to_owned(), commitment_events(&res, cat));
        }
    }
    dead.sort();
    out.dead = dead;
    out
}

/// Every visible record's status at `t` (D11), with the enterprise it is filed under.
pub fn statuses_at(
    log: &[Accepted],
    t: Ts,
    cat: &Catalogue,
) -> BTreeMap<RecordKey, (String, Status)> {
    let visible: Vec<&Accepted> = log.iter().filter(|a| a.v <= t).collect();
    let mut steps: BTreeMap<RecordKey, (String, Vec<Step>)> = BTreeMap::new();
    for (key, uscc, s) in facts_of(&visible, cat).statuses {
        steps
            .entry(key)
            .or_insert_with(|| (uscc, Vec::new()))
            .1
            .push(s);
    }
    steps
        .into_iter()
        .filter_map(|(key, (uscc, s))| Some((key, (uscc, status::current(&s, t)?))))
        .collect()
}

/// The cross-enterprise inputs of rows 45–49 for every enterprise, from the locals and the
/// person-scoped facts active at `t`.
pub fn cross_inputs(
    locals: &BTreeMap<String, Local>,
    active: &BTreeMap<String, Vec<&Fact>>,
    cat: &Catalogue,
) -> BTreeMap<String, Cross> {
    // Person-scoped facts from whichever enterprise they were filed under.
    let mut scores: BTreeMap<&str, &Fact> = BTreeMap::new();
    let mut dishonest: BTreeMap<&str, BTreeSet<Src>> = BTreeMap::new();
    for facts in active.values() {
        for f in facts {
            match &f.what {
                What::PersonScore(s)
                    if scores
                        .get(s.person.as_str())
                        .is_none_or(|g| g.latest_key() < f.latest_key()) =>
                {
                    scores.insert(&s.person, f);
                }
                What::PersonDishonest(person) => {
                    dishonest.entry(person).or_default().insert(f.src.clone());
                }
                _ => {}
            }
        }
    }
    let scored = |u: &str| locals.get(u).is_none_or(|l| !l.stopped());
    let red = |u: &str| locals.get(u).is_some_and(|l| red_trigger(l, cat));
    let mut by_rep: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (u, l) in locals {
        if let Some((p, _)) = &l.legal_rep {
            if !l.stopped() {
                by_rep.entry(p).or_default().push(u);
            }
        }
    }
    locals
        .iter()
        .map(|(u, l)| {
            let mut c = Cross::default();
            if let Some((p, _)) = &l.legal_rep {
                c.person_score = scores.get(p.as_str()).and_then(|f| match &f.what {
                    What::PersonScore(s) => Some((s.score, s.scale_max, f.src.clone())),
                    _ => None,
                });
                c.person_dishonest = dishonest
                    .get(p.as_str())
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default();
                c.rep_others_red = by_rep
                    .get(p.as_str())
                    .into_iter()
                    .flatten()
                    .filter(|o| **o != u.as_str() && red(o))
                    .map(|o| CompactString::from(*o))
                    .collect();
            }
            c.shareholders_red = l
                .shareholders
                .iter()
                .filter(|(s, _)| red(s))
                .map(|(s, _)| s.clone())
                .collect();
            c.affiliates_red = l
                .investments
                .iter()
                .filter(|(s, _)| red(s))
                .map(|(s, _)| s.clone())
                .collect();
            c.affiliates_all = l.investments.iter().filter(|(s, _)| scored(s)).count() as u32;
            (u.clone(), c)
        })
        .collect()
}

/// Every enterprise's evaluation (before hysteresis) at logical time `t`, with `Q` from
/// `model` if one is given.
pub fn evaluate_at(
    log: &[Accepted],
    t: Ts,
    model: Option<&Model>,
    cat: &Catalogue,
) -> BTreeMap<String, (Local, Evaluation)> {
    let visible: Vec<&Accepted> = log.iter().filter(|a| a.v <= t).collect();
    evaluate_facts(&facts_of(&visible, cat).facts, t, model, cat)
}

/// Every enterprise's evaluation (before hysteresis) at `t` from already derived facts
/// ([`facts_of`]), for callers that also need the dead letters.
pub fn evaluate_facts(
    facts: &BTreeMap<String, Vec<Fact>>,
    t: Ts,
    model: Option<&Model>,
    cat: &Catalogue,
) -> BTreeMap<String, (Local, Evaluation)> {
    let active: BTreeMap<String, Vec<&Fact>> = facts
        .iter()
        .map(|(u, fs)| (u.clone(), fs.iter().filter(|f| f.active_at(t)).collect()))
        .collect();
    let locals: BTreeMap<String, Local> = active
        .iter()
        .map(|(u, fs)| (u.clone(), local(fs, cat)))
        .collect();
    let cross = cross_inputs(&locals, &active, cat);
    locals
        .into_iter()
        .map(|(u, l)| {
            let e = evaluate(&l, &cross[&u], model, cat);
            (u, (l, e))
        })
        .collect()
}

/// The reference run over a whole log.
#[derive(Debug, Clone, Default)]
pub struct RunOutput {
    /// Every colour change in `(as_of, uscc)` order.
    pub changes: Vec<ColourChange>,
    /// Every alert state change in `(as_of, uscc)` order.
    pub alerts: Vec<Alert>,
    /// Final evaluation and published colour of every enterprise known at `until`.
    pub last: BTreeMap<String, (Evaluation, Option<Colour>)>,
    /// Lifecycle dead letters of the final visible set.
    pub dead: Vec<Dead>,
    /// Every commitment's scheduling decision, in `(as_of, uscc, commitment_id)` order.
    pub scheduled: Vec<Scheduled>,
    /// Every verification result, in `(as_of, uscc, check)` order.
    pub checks: Vec<Verification>,
}

/// Walks every logical time at which a state can change, up to `until`, applying
/// hysteresis in time order; `Q` comes from `model` if one is given. Each commitment is
/// scheduled with `commitments` at the first logical time its `PUBLISHED` is visible, from
/// the published colour after every record visible then (D46); each verification result is
/// reported at the first logical time it is both visible and in effect.
pub fn run(
    log: &[Accepted],
    until: Ts,
    model: Option<&Model>,
    cat: &Catalogue,
    commitments: &CommitmentRules,
) -> RunOutput {
    let vs: BTreeSet<Ts> = log.iter().map(|a| a.v).filter(|v| *v <= until).collect();
    let vs: Vec<Ts> = vs.into_iter().collect();
    let mut out = RunOutput::default();
    let mut monitors: BTreeMap<String, Monitor> = BTreeMap::new();
    let mut decided: BTreeSet<(String, String)> = BTreeSet::new();
    let mut seen: BTreeSet<(String, Check)> = BTreeSet::new();
    for (k, &v) in vs.iter().enumerate() {
        let next = vs.get(k + 1).copied().unwrap_or(until.saturating_add(1));
        let visible: Vec<&Accepted> = log.iter().filter(|a| a.v <= v).collect();
        let Derivation {
            facts,
            dead,
            commitments: events,
            ..
        } = facts_of(&visible, cat);
        out.dead = dead;
        // Instants in [v, next): v itself and every fact boundary inside.
        let mut instants: BTreeSet<Ts> = BTreeSet::from([v]);
        for f in facts.values().flatten() {
            for b in [f.start, f.end] {
                if b > v && b < next && b <= until {
                    instants.insert(b);
                }
            }
        }
        for t in instants {
            let evaluations = evaluate_facts(&facts, t, model, cat);
            // An enterprise whose records all moved to another USCC (a new version) leaves.
            out.last.retain(|u, _| evaluations.contains_key(u));
            for (u, (_, e)) in evaluations {
                let m = monitors.entry(u.clone()).or_default();
                let seen = m.observe(&u, t, &e, cat);
                if let Some((from, to)) = seen.change {
                    out.changes
                        .push(ColourChange::new(&u, t, from, to, &e, cat));
                }
                out.alerts.extend(seen.alerts);
                out.last.insert(u, (e, m.published));
            }
            if t != v {
                continue;
            }
            for (u, evs) in &events {
                for e in evs {
                    let CommitmentEvent::Published(id) = e else {
                        continue;
                    };
                    if decided.insert((u.clone(), id.to_string())) {
                        let colour = monitors
                            .get(u)
                            .and_then(|m| m.published)
                            .unwrap_or(Colour::None);
                        out.scheduled.push(commitments.schedule(u, id, colour, v));
                    }
                }
            }
        }
        for (u, evs) in &events {
            for e in evs {
                let CommitmentEvent::Checked(c) = e else {
                    continue;
                };
                if c.at < next && seen.insert((u.clone(), c.clone())) {
                    out.checks.push(Verification {
                        uscc: u.clone(),
                        as_of: v.max(c.at),
                        check: c.clone(),
                    });
                }
            }
        }
    }
    out.checks.sort_by(|a, b| a.key().cmp(&b.key()));
    out
}
