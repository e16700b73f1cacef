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

/// Values with their counts: a key's changes at one time, or the differences of its output.
pub type Updates<T> = Vec<(T, isize)>;

/// A map looked up per update and never iterated in an order that matters (a fast hash).
pub type Lookup<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Updates waiting until the frontier passes their time, by time. Taking the ready ones
/// leaves the later ones where they are: many wait far ahead (a fact's end, a record's
/// expiry), and the frontier moves often.
#[derive(Debug)]
pub(crate) struct Pending<T>(BTreeMap<Ts, Vec<T>>);

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Pending(BTreeMap::new())
    }
}

impl<T> Pending<T> {
    pub(crate) fn push(&mut self, time: Ts, x: T) {
        // Most future times hold one update: start at one, not at the four a first push
        // reserves.
        self.0
            .entry(time)
            .or_insert_with(|| Vec::with_capacity(1))
            .push(x);
    }

    /// Takes the updates at times before `frontier` (every update when there is none: the
    /// input is complete), in time order.
    pub(crate) fn before(&mut self, frontier: Option<Ts>) -> impl Iterator<Item = (Ts, T)> {
        let ready = match frontier {
            Some(f) => {
                let later = self.0.split_off(&f);
                std::mem::replace(&mut self.0, later)
            }
            None => std::mem::take(&mut self.0),
        };
        ready
            .into_iter()
            .flat_map(|(t, xs)| xs.into_iter().map(move |x| (t, x)))
    }

    /// The earliest time an update waits for.
    pub(crate) fn first(&self) -> Option<Ts> {
        self.0.keys().next().copied()
    }
}

/// One key's state and the output last produced from it.
struct Keyed<S, O> {
    state: S,
    /// Empty unless the outputs are [`Outputs::Stored`].
    output: Vec<(O, isize)>,
}

impl<S: Default, O> Default for Keyed<S, O> {
    fn default() -> Self {
        Keyed {
            state: S::default(),
            output: Vec::new(),
        }
    }
}

/// What a reduce keeps of each key's output between the key's changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outputs {
    /// The last output, for costly logic. A value that stays in the output keeps its first
    /// copy, which later stages may share.
    Stored,
    /// Nothing: when a key changes, its previous output is computed again from its
    /// previous input. For cheap logic over many keys, where stored outputs would be most
    /// of the operator's memory.
    Recomputed,
}

/// A reduce over totally ordered time; see the module documentation.
pub trait ReduceOrdered<'s, K, V> {
    /// For each key and each time its input changes, `logic(key, input, output)` gets the
    /// key's accumulated input (sorted by value, counts non-zero; never empty) and pushes
    /// the output then; the collection carries the differences. `logic` must be a function
    /// of its arguments; `outputs` says whether the last output is stored or recomputed.
    fn reduce_ordered<O, L>(
        self,
        name: &str,
        outputs: Outputs,
        logic: L,
    ) -> VecCollection<'s, Ts, (K, O)>
    where
        O: ExchangeData + Ord,
        L: FnMut(&K, &[(V, isize)], &mut Vec<(O, isize)>) + 'static;
}

/// A key's state for [`FoldOrdered`]: what the key's input changes have built.
pub trait Folded: Default + 'static {
    /// Whether the state holds no input (the key is then forgotten).
    fn is_empty(&self) -> bool;
}

/// A keyed state machine over totally ordered time: the incremental form of
/// [`ReduceOrdered`], for logic that can update its state by each change instead of
/// reading the key's whole input.
pub trait FoldOrdered<'s, K, V> {
    /// For each key and each time its input changes, `update(state, value, diff)` for each
    /// change at that time, then `logic(key, state, output)` pushes the output then (the
    /// collection carries the differences, as [`ReduceOrdered`] with stored outputs).
    /// `logic`'s output must be a function of the key's accumulated input; it is not
    /// called on an empty state.
    fn fold_ordered<S, O, U, L>(
        self,
        name: &str,
        update: U,
        logic: L,
    ) -> VecCollection<'s, Ts, (K, O)>
    where
        S: Folded,
        O: ExchangeData + Ord,
        U: FnMut(&mut S, V, isize) + 'static,
        L: FnMut(&K, &mut S, &mut Vec<(O, isize)>) + 'static;
}

/// A keyed process function over totally ordered time: the form of [`FoldOrdered`] whose
/// logic keeps its own outputs and says what changed, for state that knows which of its
/// outputs a change touches (the enterprise stage's parts, D65).
pub trait ProcessOrdered<'s, K, V> {
    /// For each key and each time its input changes, `process(key, state, changes,
    /// output)` gets the changes at that time (to drain) and pushes the differences of its
    /// output then. Its output must be a function of the key's accumulated input; the key
    /// is forgotten when its state [`Folded::is_empty`].
    fn process_ordered<S, O, P>(self, name: &str, process: P) -> VecCollection<'s, Ts, (K, O)>
    where
        S: Folded,
        O: ExchangeData,
        P: FnMut(&K, &mut S, &mut Vec<(V, isize)>, &mut Vec<(O, isize)>) + 'static;
}

impl<'s, K, V> ReduceOrdered<'s, K, V> for VecCollection<'s, Ts, (K, V)>
where
    K: ExchangeData + Ord + Hash,
    V: ExchangeData + Ord,
{
    fn reduce_ordered<O, L>(
        self,
        name: &str,
        outputs: Outputs,
        mut logic: L,
    ) -> VecCollection<'s, Ts, (K, O)>
    where
        O: ExchangeData + Ord,
        L: FnMut(&K, &[(V, isize)], &mut Vec<(O, isize)>) + 'static,
    {
        keyed(
            self,
            name,
            differences(
                outputs,
                |state: &mut Vec<(V, isize)>, v, r| add(state, v, r),
                move |k, state, out| logic(k, state, out),
                |state| state.is_empty(),
            ),
            |k: &Keyed<Vec<(V, isize)>, O>| k.state.is_empty(),
        )
    }
}

impl<'s, K, V> FoldOrdered<'s, K, V> for VecCollection<'s, Ts, (K, V)>
where
    K: ExchangeData + Ord + Hash,
    V: ExchangeData,
{
    fn fold_ordered<S, O, U, L>(
        self,
        name: &str,
        update: U,
        logic: L,
    ) -> VecCollection<'s, Ts, (K, O)>
    where
        S: Folded,
        O: ExchangeData + Ord,
        U: FnMut(&mut S, V, isize) + 'static,
        L: FnMut(&K, &mut S, &mut Vec<(O, isize)>) + 'static,
    {
        keyed(
            self,
            name,
            differences(Outputs::Stored, update, logic, S::is_empty),
            |k: &Keyed<S, O>| k.state.is_empty(),
        )
    }
}

impl<'s, K, V> ProcessOrdered<'s, K, V> for VecCollection<'s, Ts, (K, V)>
where
    K: ExchangeData + Ord + Hash,
    V: ExchangeData,
{
    fn process_ordered<S, O, P>(self, name: &str, process: P) -> VecCollection<'s, Ts, (K, O)>
    where
        S: Folded,
        O: ExchangeData,
        P: FnMut(&K, &mut S, &mut Vec<(V, isize)>, &mut Vec<(O, isize)>) + 'static,
    {
        keyed(self, name, process, S::is_empty)
    }
}

/// The step of a reduce or fold: brings a key's state forward by `update` through the
/// changes at a time, runs `logic` over it (nothing over an empty state) and pushes the
/// new output minus the old, which is stored or recomputed as `outputs` says.
fn differences<K, V, S, O>(
    outputs: Outputs,
    mut update: impl FnMut(&mut S, V, isize) + 'static,
    mut logic: impl FnMut(&K, &mut S, &mut Vec<(O, isize)>) + 'static,
    is_empty: fn(&S) -> bool,
) -> impl FnMut(&K, &mut Keyed<S, O>, &mut Updates<V>, &mut Updates<O>) + 'static
where
    S: 'static,
    O: ExchangeData + Ord,
{
    let stored = outputs == Outputs::Stored;
    // `logic`'s output over a state, consolidated (nothing if the state is empty).
    let mut run = move |key: &K, s: &mut S, out: &mut Vec<(O, isize)>| {
        if !is_empty(s) {
            logic(key, s, out);
            consolidate(out);
        }
    };
    let mut new = Vec::new();
    move |key, keyed, changes, out| {
        let old = if stored {
            std::mem::take(&mut keyed.output)
        } else {
            let mut old = Vec::new();
            run(key, &mut keyed.state, &mut old);
            old
        };
        for (v, r) in changes.drain(..) {
            update(&mut keyed.state, v, r);
        }
        run(key, &mut keyed.state, &mut new);
        keyed.output = difference(&mut new, old, stored, out);
    }
}

/// Pushes `new − old` (both sorted and consolidated) to `out`, draining `new`; returns what
/// to store of `new` if `store` (else nothing). A value in both keeps its old copy, which
/// later stages may share.
pub(crate) fn difference<O: Ord + Clone>(
    new: &mut Vec<(O, isize)>,
    old: Vec<(O, isize)>,
    store: bool,
    out: &mut Vec<(O, isize)>,
) -> Vec<(O, isize)> {
    let mut kept = Vec::with_capacity(if store { new.len() } else { 0 });
    for d in new.drain(..).merge_join_by(old, |a, b| a.0.cmp(&b.0)) {
        let (o, r, diff) = match d {
            EitherOrBoth::Left((o, r)) => (o, r, r),
            EitherOrBoth::Right((o, s)) => (o, 0, -s),
            EitherOrBoth::Both((_, r), (o, s)) => (o, r, r - s),
        };
        match (diff != 0, store && r != 0) {
            (true, true) => {
                out.push((o.clone(), diff));
                kept.push((o, r));
            }
            (true, false) => out.push((o, diff)),
            (false, true) => kept.push((o, r)),
            (false, false) => {}
        }
    }
    kept
}

/// The operator behind the three traits: each key's state `S` (dropped when `is_empty`) is
/// brought forward by `step` through the changes at each ready time, in time order, and
/// `step` pushes the differences of the key's output then.
fn keyed<'s, K, V, S, O>(
    c: VecCollection<'s, Ts, (K, V)>,
    name: &str,
    mut step: impl FnMut(&K, &mut S, &mut Vec<(V, isize)>, &mut Vec<(O, isize)>) + 'static,
    is_empty: impl Fn(&S) -> bool + 'static,
) -> VecCollection<'s, Ts, (K, O)>
where
    K: ExchangeData + Ord + Hash,
    V: ExchangeData,
    S: Default + 'static,
    O: ExchangeData,
{
    // Updates not yet passed by the frontier.
    let mut pending: Pending<(K, V, isize)> = Pending::default();
    // A capability at or before every pending time.
    let mut held: Option<Capability<Ts>> = None;
    // Keys are looked up, never iterated: a fast hash serves.
    let mut state: Lookup<K, S> = Lookup::default();
    let pact = Exchange::new(|((k, _), _, _): &((K, V), Ts, isize)| k.hashed());
    c.inner
        .unary_frontier(pact, name, move |_, _| {
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    if let Some(c) = cap.retain_least(output.output_index()) {
                        if held.as_ref().is_none_or(|h| c.time() < h.time()) {
                            held = Some(c);
                        }
                    }
                    for ((k, v), t, r) in data.drain(..) {
                        pending.push(t, (k, v, r));
                    }
                });
                let Some(cap) = held.as_mut() else {
                    return;
                };
                // Every time before the frontier is complete.
                let mut ready: Vec<(K, Ts, V, isize)> = pending
                    .before(frontier.frontier().first().copied())
                    .map(|(t, (k, v, r))| (k, t, v, r))
                    .collect();
                ready.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
                let mut ready = ready.into_iter().peekable();
                let mut changes = Vec::new();
                let mut out = Vec::new();
                // Sent under the held capability, which no ready time precedes, through
                // one session (it sends in buffer-sized batches).
                let mut session = output.session(&*cap);
                while let Some((key, t, v, r)) = ready.next() {
                    changes.push((v, r));
                    while let Some((_, _, v, r)) =
                        ready.next_if(|(k, s, _, _)| *k == key && *s == t)
                    {
                        changes.push((v, r));
                    }
                    // The key is cloned only when it is new.
                    let s = match state.get_mut(&key) {
                        Some(s) => s,
                        None => state.entry(key.clone()).or_default(),
                    };
                    step(&key, s, &mut changes, &mut out);
                    changes.clear();
                    for (o, diff) in out.drain(..) {
                        session.give(((key.clone(), o), t, diff));
                    }
                    if is_empty(s) {
                        state.remove(&key);
                    }
                }
                drop(session);
                match pending.first() {
                    Some(t) => cap.downgrade(&t),
                    None => held = None,
                }
            }
        })
        .as_collection()
}

/// Adds `r` copies of `v`, dropping values whose count becomes zero.
pub(crate) fn add<V: Ord>(input: &mut Vec<(V, isize)>, v: V, r: isize) {
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
