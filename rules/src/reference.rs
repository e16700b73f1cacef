//! The from-scratch reference computation: the oracle the incremental pipeline is tested
//! against. Plain, obviously-correct code; no incremental tricks.
//!
//! [`evaluate_at`] gives every enterprise's evaluation at one logical time from the log of
//! accepted records (with their visibility times). [`run`] walks every time at which any
//! state can change, applies hysteresis in time order and lists the colour changes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalogue::Catalogue;
use crate::fact::{derive, Fact, Src, What};
use crate::indicators::{local, Cross, Local};
use crate::lifecycle::{resolve_enterprise, resolve_versions, Accepted, Dead, RecordId};
use crate::score::{evaluate, hysteresis, published, red_trigger, Colour, Evaluation, Reason};
use crate::time::{format_rfc3339, Ts};

/// Stage 1 and 2 over a set of visible records: every enterprise's facts, plus dead letters.
pub fn facts_of(
    visible: &[&Accepted],
    cat: &Catalogue,
) -> (BTreeMap<String, Vec<Fact>>, Vec<Dead>) {
    let mut by_id: BTreeMap<RecordId, Vec<&Accepted>> = BTreeMap::new();
    for a in visible {
        by_id.entry(a.id()).or_default().push(a);
    }
    let mut dead = Vec::new();
    let mut by_uscc: BTreeMap<&str, Vec<&Accepted>> = BTreeMap::new();
    for versions in by_id.values() {
        let out = resolve_versions(versions);
        dead.extend(out.dead);
        if let Some(w) = out.winner {
            by_uscc.entry(w.event.uscc.as_str()).or_default().push(w);
        }
    }
    let mut facts = BTreeMap::new();
    for (uscc, winners) in by_uscc {
        let res = resolve_enterprise(&winners, cat);
        dead.extend(res.dead.iter().cloned());
        facts.insert(uscc.to_owned(), derive(&res, cat));
    }
    dead.sort();
    (facts, dead)
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
                What::PersonScore { person, .. }
                    if scores
                        .get(person.as_str())
                        .is_none_or(|g| g.latest_key() < f.latest_key()) =>
                {
                    scores.insert(person, f);
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
                    What::PersonScore {
                        score, scale_max, ..
                    } => Some((*score, *scale_max, f.src.clone())),
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
                    .map(|o| (*o).to_owned())
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

/// Every enterprise's evaluation (before hysteresis) at logical time `t`.
pub fn evaluate_at(
    log: &[Accepted],
    t: Ts,
    cat: &Catalogue,
) -> BTreeMap<String, (Local, Evaluation)> {
    let visible: Vec<&Accepted> = log.iter().filter(|a| a.v <= t).collect();
    let (facts, _) = facts_of(&visible, cat);
    evaluate_facts(&facts, t, cat)
}

/// Every enterprise's evaluation (before hysteresis) at `t` from already derived facts
/// ([`facts_of`]), for callers that also need the dead letters.
pub fn evaluate_facts(
    facts: &BTreeMap<String, Vec<Fact>>,
    t: Ts,
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
            let e = evaluate(&l, &cross[&u], None, cat);
            (u, (l, e))
        })
        .collect()
}

/// A change of an enterprise's published colour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColourChange {
    /// Enterprise.
    pub uscc: String,
    /// Previous published colour (`None` for the first).
    pub from: Option<Colour>,
    /// New published colour.
    pub to: Colour,
    /// `S` at the change.
    pub score: Option<f64>,
    /// Plain score colour.
    pub score_colour: Colour,
    /// Active triggers.
    pub triggers: Vec<String>,
    /// Top five contributions.
    pub reasons: Vec<Reason>,
    /// Logical time.
    pub as_of: Ts,
    /// Model version, if a model is used.
    pub model_version: Option<String>,
    /// Catalogue version.
    pub rules_version: String,
    /// Deterministic id for consumers to deduplicate.
    pub change_id: String,
}

impl ColourChange {
    /// The change of `uscc`'s published colour at `as_of`, explained by `e`.
    pub fn new(
        uscc: &str,
        as_of: Ts,
        from: Option<Colour>,
        to: Colour,
        e: &Evaluation,
        cat: &Catalogue,
    ) -> Self {
        ColourChange {
            change_id: change_id(uscc, as_of, from, to, &cat.version),
            uscc: uscc.to_owned(),
            from,
            to,
            score: e.s,
            score_colour: e.score_colour,
            triggers: e.triggers.clone(),
            reasons: e.reasons.clone(),
            as_of,
            // No model is loaded yet (the risk-model issue adds it).
            model_version: None,
            rules_version: cat.version.clone(),
        }
    }
}

/// `change_id`: hex SHA-256 of `uscc|as_of|from|to|rules_version` (as_of in RFC 3339 UTC,
/// `from` empty for the first colour).
pub fn change_id(
    uscc: &str,
    as_of: Ts,
    from: Option<Colour>,
    to: Colour,
    rules_version: &str,
) -> String {
    let text = format!(
        "{uscc}|{}|{}|{}|{rules_version}",
        format_rfc3339(as_of),
        from.map_or("", Colour::as_str),
        to.as_str()
    );
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Hysteresis state carried in time order for one enterprise.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColourState {
    /// Score colour after hysteresis (`None` = no evaluation yet or scoring stopped).
    pub hyst: Option<Colour>,
    /// Published colour.
    pub published: Option<Colour>,
    /// `(S₁₀, triggers)` at the last evaluation instant.
    pub last: Option<(Option<i64>, Vec<String>)>,
}

/// Advances one enterprise's colour state with its evaluation at an instant. Returns the
/// new published colour when it changed.
pub fn step(
    state: &mut ColourState,
    s10: Option<i64>,
    triggers: &[String],
    cap: Colour,
    cat: &Catalogue,
) -> Option<(Option<Colour>, Colour)> {
    if state
        .last
        .as_ref()
        .is_some_and(|(s, t)| *s == s10 && t.as_slice() == triggers)
    {
        return None;
    }
    state.last = Some((s10, triggers.to_vec()));
    let to = match s10 {
        None => {
            state.hyst = None;
            Colour::None
        }
        Some(s10) => {
            let h = hysteresis(state.hyst, s10, cat);
            state.hyst = Some(h);
            published(h, cap)
        }
    };
    let from = state.published;
    (from != Some(to)).then(|| {
        state.published = Some(to);
        (from, to)
    })
}

/// The reference run over a whole log.
#[derive(Debug, Clone, Default)]
pub struct RunOutput {
    /// Every colour change in `(as_of, uscc)` order.
    pub changes: Vec<ColourChange>,
    /// Final evaluation and published colour per enterprise.
    pub last: BTreeMap<String, (Evaluation, Option<Colour>)>,
    /// Lifecycle dead letters of the final visible set.
    pub dead: Vec<Dead>,
}

/// Walks every logical time at which a state can change, up to `until`, applying
/// hysteresis in time order.
pub fn run(log: &[Accepted], until: Ts, cat: &Catalogue) -> RunOutput {
    let vs: BTreeSet<Ts> = log.iter().map(|a| a.v).filter(|v| *v <= until).collect();
    let vs: Vec<Ts> = vs.into_iter().collect();
    let mut out = RunOutput::default();
    let mut states: BTreeMap<String, ColourState> = BTreeMap::new();
    for (k, &v) in vs.iter().enumerate() {
        let next = vs.get(k + 1).copied().unwrap_or(until.saturating_add(1));
        let visible: Vec<&Accepted> = log.iter().filter(|a| a.v <= v).collect();
        let (facts, dead) = facts_of(&visible, cat);
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
            for (u, (_, e)) in evaluate_facts(&facts, t, cat) {
                let st = states.entry(u.clone()).or_default();
                if let Some((from, to)) = step(st, e.s10, &e.triggers, e.cap, cat) {
                    out.changes
                        .push(ColourChange::new(&u, t, from, to, &e, cat));
                }
                out.last.insert(u, (e, st.published));
            }
        }
    }
    out
}
