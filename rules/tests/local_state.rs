//! `LocalState` (an enterprise's active facts by family, recomputing only the families a
//! change touches) against `local` over the same facts from scratch: along each
//! enterprise's generated history, fact by fact as intervals open and close, and under
//! random insertions and removals with multiplicities, in any order; started empty, or from
//! one shared empty state as the engine starts each enterprise (D108).

mod generated;

use std::sync::Arc;

use generator::GenConfig;
use proptest::prelude::*;
use rules::catalogue::Catalogue;
use rules::fact::{by_event_id, Fact};
use rules::indicators::{local, Family, LocalState};
use rules::reference::facts_of;
use rules::time::Ts;

/// Every enterprise's facts (all of them, with their intervals) of a generated history.
fn enterprises(n: u32, seed: u64) -> Vec<Vec<Arc<Fact>>> {
    let cfg = GenConfig {
        enterprises: n,
        seed,
        ..GenConfig::default()
    };
    let log = generated::accepted(&cfg).0;
    let visible: Vec<_> = log.iter().collect();
    facts_of(&visible, &Catalogue::embedded())
        .facts
        .into_values()
        .map(|fs| fs.into_iter().map(Arc::new).collect())
        .collect()
}

/// `local` of a multiset of facts.
fn from_scratch(active: &[(Arc<Fact>, isize)], cat: &Catalogue) -> rules::indicators::Local {
    let facts: Vec<&Fact> = active
        .iter()
        .flat_map(|(f, r)| std::iter::repeat_n(f.as_ref(), (*r).max(0) as usize))
        .collect();
    local(&facts, cat)
}

#[test]
fn families_are_runs_in_the_order_of_facts() {
    // `LocalState` finds a family's facts as one run of its sorted facts.
    let mut facts: Vec<Arc<Fact>> = enterprises(60, 2).into_iter().flatten().collect();
    facts.sort();
    let families: Vec<Family> = facts.iter().filter_map(|f| Family::of(&f.what)).collect();
    assert!(families.windows(2).all(|w| w[0] <= w[1]));
    let distinct: std::collections::BTreeSet<_> = families.iter().collect();
    assert!(
        distinct.len() >= 40,
        "only {} families seen",
        distinct.len()
    );
}

/// What a state with no facts decides, to share (`LocalState::with_empty`).
fn empty(cat: &Catalogue) -> Arc<rules::indicators::Local> {
    LocalState::<Arc<Fact>>::empty(cat, &by_event_id)
}

#[test]
fn follows_every_history_as_intervals_open_and_close() {
    let cat = Catalogue::embedded();
    // Every enterprise starts from this one, as in the engine.
    let shared = empty(&cat);
    assert_eq!(*shared, from_scratch(&[], &cat));
    let mut families = std::collections::BTreeSet::new();
    let mut steps = 0;
    for facts in enterprises(120, 11) {
        // +1 at each fact's start, −1 at its end, in time order.
        let mut events: Vec<(Ts, isize, usize)> = Vec::new();
        for (i, f) in facts.iter().enumerate() {
            events.push((f.start, 1, i));
            if f.end < Ts::MAX {
                events.push((f.end, -1, i));
            }
        }
        events.sort();
        let mut state = LocalState::with_empty(Arc::clone(&shared));
        let mut active: Vec<(Arc<Fact>, isize)> = Vec::new();
        let mut events = events.into_iter().peekable();
        while let Some((t, r, i)) = events.next() {
            let mut apply = |r: isize, i: usize| {
                let f = &facts[i];
                families.extend(Family::of(&f.what));
                state.update(Arc::clone(f), r);
                match active.iter().position(|(g, _)| Arc::ptr_eq(g, f)) {
                    Some(j) => {
                        active[j].1 += r;
                        if active[j].1 == 0 {
                            active.remove(j);
                        }
                    }
                    None => active.push((Arc::clone(f), r)),
                }
            };
            apply(r, i);
            while let Some((_, r, i)) = events.next_if(|e| e.0 == t) {
                apply(r, i);
            }
            assert_eq!(
                &**state.local(&cat, &by_event_id),
                &from_scratch(&active, &cat),
                "at {t}"
            );
            steps += 1;
        }
        assert!(active.is_empty() || active.iter().all(|(f, _)| f.end == Ts::MAX));
    }
    assert!(steps > 10_000, "only {steps} steps");
    // The histories exercise most families, or the check above proves little.
    assert!(
        families.len() >= 40,
        "only {} families seen",
        families.len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Insertions and removals of facts from one enterprise's history, several copies at
    /// once, in any order, from an empty state or a shared one: after each, the state
    /// equals `local` of what is held.
    #[test]
    fn equals_local_after_any_updates(
        which in 0usize..1000,
        ops in prop::collection::vec((any::<prop::sample::Index>(), -2isize..=3), 1..120),
        shared in any::<bool>(),
    ) {
        thread_local! {
            static POOL: Vec<Vec<Arc<Fact>>> = enterprises(40, 5)
                .into_iter()
                .filter(|fs| fs.len() >= 20)
                .collect();
        }
        let cat = Catalogue::embedded();
        POOL.with(|pool| {
            let facts = &pool[which % pool.len()];
            let mut state = if shared {
                LocalState::with_empty(empty(&cat))
            } else {
                LocalState::default()
            };
            let mut held: Vec<(Arc<Fact>, isize)> = Vec::new();
            for (ix, r) in ops {
                let f = &facts[ix.index(facts.len())];
                let j = held.iter().position(|(g, _)| g == f);
                // Never below zero copies: a multiset of active facts.
                let r = r.max(-j.map_or(0, |j| held[j].1));
                state.update(Arc::clone(f), r);
                match j {
                    Some(j) => {
                        held[j].1 += r;
                        if held[j].1 == 0 {
                            held.remove(j);
                        }
                    }
                    None if r != 0 => held.push((Arc::clone(f), r)),
                    None => {}
                }
                prop_assert_eq!(&**state.local(&cat, &by_event_id), &from_scratch(&held, &cat));
            }
            Ok(())
        })?;
    }
}
