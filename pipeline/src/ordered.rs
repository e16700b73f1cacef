//! [`ReduceOrdered`]: a reduce for the pipeline's totally ordered logical time that keeps
//! each key's current input and output instead of their histories.
//!
//! It gives the same collection as differential's `reduce`: at every time at which a key's
//! input changes, the logic's output over the accumulated input then, minus the output
//! before. Visibility time is totally ordered, so once the input frontier passes a time,
//! every update at or before it is known and can be applied in time order to the key's
//! current state. Nothing is kept per time: no trace, no history to replay, and no batches
//! to merge, which is where `reduce` spends its time and memory on long per-key histories.
//! Updates at future times (a fact's end, for example) wait until the frontier passes them.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use differential_dataflow::consolidation::consolidate;
use differential_dataflow::{AsCollection, ExchangeData, Hashable, VecCollection};
use itertools::{EitherOrBoth, Itertools};
use rules::time::Ts;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

/// One key's accumulated input and the output last produced from it.
struct Keyed<V, O> {
    /// Sorted by value, counts non-zero (a vector: most keys hold a few values).
    input: Vec<(V, isize)>,
    output: Vec<(O, isize)>,
}

/// A reduce over totally ordered time; see the module documentation.
pub trait ReduceOrdered<'s, K, V> {
    /// For each key and each time its input changes, `logic(key, input, output)` gets the
    /// key's accumulated input (sorted by value, counts non-zero; never empty) and pushes
    /// the output then; the collection carries the differences.
    fn reduce_ordered<O, L>(self, name: &str, logic: L) -> VecCollection<'s, Ts, (K, O)>
    where
        O: ExchangeData + Ord,
        L: FnMut(&K, &[(&V, isize)], &mut Vec<(O, isize)>) + 'static;
}

impl<'s, K, V> ReduceOrdered<'s, K, V> for VecCollection<'s, Ts, (K, V)>
where
    K: ExchangeData + Ord + Hash,
    V: ExchangeData + Ord,
{
    fn reduce_ordered<O, L>(self, name: &str, mut logic: L) -> VecCollection<'s, Ts, (K, O)>
    where
        O: ExchangeData + Ord,
        L: FnMut(&K, &[(&V, isize)], &mut Vec<(O, isize)>) + 'static,
    {
        // Updates not yet passed by the frontier, by time.
        let mut pending: BTreeMap<Ts, Vec<(K, V, isize)>> = BTreeMap::new();
        // A capability at or before every pending time.
        let mut held: Option<Capability<Ts>> = None;
        let mut state: HashMap<K, Keyed<V, O>> = HashMap::new();
        let pact = Exchange::new(|((k, _), _, _): &((K, V), Ts, isize)| k.hashed());
        self.inner
            .unary_frontier(pact, name, move |_, _| {
                move |(input, frontier), output| {
                    input.for_each(|cap, data| {
                        if let Some(c) = cap.retain_least(output.output_index()) {
                            if held.as_ref().is_none_or(|h| c.time() < h.time()) {
                                held = Some(c);
                            }
                        }
                        for ((k, v), t, r) in data.drain(..) {
                            pending.entry(t).or_default().push((k, v, r));
                        }
                    });
                    let Some(cap) = held.as_mut() else {
                        return;
                    };
                    // Every time before the frontier is complete.
                    let ready = match frontier.frontier().first() {
                        Some(f) => {
                            let later = pending.split_off(f);
                            std::mem::replace(&mut pending, later)
                        }
                        None => std::mem::take(&mut pending),
                    };
                    let mut ready: Vec<(K, Ts, V, isize)> = ready
                        .into_iter()
                        .flat_map(|(t, xs)| xs.into_iter().map(move |(k, v, r)| (k, t, v, r)))
                        .collect();
                    ready.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
                    let mut ready = ready.into_iter().peekable();
                    let mut out = Vec::new();
                    // Sent under the held capability, which no ready time precedes, through
                    // one session (it sends in buffer-sized batches).
                    let mut changes = output.session(&*cap);
                    while let Some((key, t, v, r)) = ready.next() {
                        // The key is cloned only when it is new.
                        let keyed = match state.get_mut(&key) {
                            Some(keyed) => keyed,
                            None => state.entry(key.clone()).or_insert(Keyed {
                                input: Vec::new(),
                                output: Vec::new(),
                            }),
                        };
                        add(&mut keyed.input, v, r);
                        while let Some((_, _, v, r)) =
                            ready.next_if(|(k, s, _, _)| *k == key && *s == t)
                        {
                            add(&mut keyed.input, v, r);
                        }
                        if !keyed.input.is_empty() {
                            let vals: Vec<(&V, isize)> =
                                keyed.input.iter().map(|(v, r)| (v, *r)).collect();
                            logic(&key, &vals, &mut out);
                            consolidate(&mut out);
                        }
                        // The difference: the new output minus the old (both sorted). A value
                        // in both keeps its old copy, which later stages may share.
                        let old = std::mem::take(&mut keyed.output);
                        let mut kept = Vec::with_capacity(out.len());
                        for d in out.drain(..).merge_join_by(old, |a, b| a.0.cmp(&b.0)) {
                            match d {
                                EitherOrBoth::Left((o, r)) => {
                                    changes.give(((key.clone(), o.clone()), t, r));
                                    kept.push((o, r));
                                }
                                EitherOrBoth::Right((o, s)) => {
                                    changes.give(((key.clone(), o), t, -s));
                                }
                                EitherOrBoth::Both((_, r), (o, s)) => {
                                    if r != s {
                                        changes.give(((key.clone(), o.clone()), t, r - s));
                                    }
                                    kept.push((o, r));
                                }
                            }
                        }
                        keyed.output = kept;
                        if keyed.input.is_empty() {
                            state.remove(&key);
                        }
                    }
                    drop(changes);
                    match pending.keys().next() {
                        Some(t) => cap.downgrade(t),
                        None => held = None,
                    }
                }
            })
            .as_collection()
    }
}

/// Adds `r` copies of `v`, dropping values whose count becomes zero.
fn add<V: Ord>(input: &mut Vec<(V, isize)>, v: V, r: isize) {
    match input.binary_search_by(|(x, _)| x.cmp(&v)) {
        Ok(i) => {
            input[i].1 += r;
            if input[i].1 == 0 {
                input.remove(i);
            }
        }
        Err(i) => {
            if r != 0 {
                // Grow by a quarter, not double: most keys hold a few large values.
                if input.len() == input.capacity() {
                    input.reserve_exact(1.max(input.len() / 4));
                }
                input.insert(i, (v, r));
            }
        }
    }
}
