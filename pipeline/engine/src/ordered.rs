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
//!
//! [`ProcessTimed`] is the same operator for a keyed state machine that updates its state
//! by each change and keeps its own timers: the operator keeps one wake-up entry per key, at
//! the time the state says it is next due (the enterprise stage, D71 and D84).

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};

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

/// Updates waiting until the frontier passes their time. Most updates are ready by the next
/// time the frontier is read (they are at the current time): they wait in arrival order in
/// `recent`, with no per-time entry to make. Those still ahead of the frontier then move to
/// `later`, by time, where they stay while the frontier moves on: many wait far ahead (a
/// fact's end, a record's expiry), and the frontier moves often.
#[derive(Debug)]
pub(crate) struct Pending<T> {
    /// Pushed since the frontier was last read, in arrival order.
    recent: Vec<(Ts, T)>,
    /// Found ahead of the frontier when it was read, by time (each in arrival order).
    later: BTreeMap<Ts, Vec<T>>,
}

/// The most room for arrivals `recent` keeps after a read of the frontier (it grows past
/// it within a step).
const RECENT_KEPT: usize = 1024;

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Pending {
            recent: Vec::new(),
            later: BTreeMap::new(),
        }
    }
}

impl<T> Pending<T> {
    /// An update at `time`, waiting until the frontier passes it.
    pub(crate) fn push(&mut self, time: Ts, x: T) {
        self.recent.push((time, x));
    }

    /// Takes the updates at times before `frontier` (every update when there is none: the
    /// input is complete), in arrival order within a time but not sorted by time: every
    /// caller sorts them by a key that includes the time.
    pub(crate) fn before(&mut self, frontier: Option<Ts>) -> Vec<(Ts, T)> {
        let ready = match frontier {
            Some(f) => {
                let later = self.later.split_off(&f);
                std::mem::replace(&mut self.later, later)
            }
            None => std::mem::take(&mut self.later),
        };
        // Sized once for all it may take: a large step's output is not grown by copies.
        let mut out: Vec<(Ts, T)> =
            Vec::with_capacity(ready.values().map(Vec::len).sum::<usize>() + self.recent.len());
        // Everything in `later` arrived before everything in `recent` (a read of the
        // frontier empties `recent`): taken first, they keep the arrival order.
        out.extend(
            ready
                .into_iter()
                .flat_map(|(t, xs)| xs.into_iter().map(move |x| (t, x))),
        );
        for (t, x) in self.recent.drain(..) {
            if frontier.is_none_or(|f| t < f) {
                out.push((t, x));
            } else {
                // Most times ahead hold one update: start at one, not at the four a first
                // push reserves.
                self.later
                    .entry(t)
                    .or_insert_with(|| Vec::with_capacity(1))
                    .push(x);
            }
        }
        // A large step's room is not kept for the small ones that follow.
        self.recent.shrink_to(RECENT_KEPT);
        out
    }

    /// The earliest time an update waits for. It scans the arrivals since the last read,
    /// which the operators call it right after (`before` empties them).
    pub(crate) fn first(&self) -> Option<Ts> {
        let recent = self.recent.iter().map(|(t, _)| *t).min();
        let later = self.later.keys().next().copied();
        recent.into_iter().chain(later).min()
    }
}

/// One key's input and the output last produced from it (a reduce with
/// [`Outputs::Stored`]; with [`Outputs::Recomputed`] a key keeps its input alone).
struct Keyed<V, O> {
    input: Vec<(V, isize)>,
    output: Vec<(O, isize)>,
}

impl<V, O> Default for Keyed<V, O> {
    fn default() -> Self {
        Keyed {
            input: Vec::new(),
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

/// A key's state for [`ProcessTimed`]: what the key's input changes have built, and the
/// key's one timer.
pub trait Folded: Default + 'static {
    /// Whether the state holds no input and waits for no time (the key is then forgotten).
    fn is_empty(&self) -> bool;
    /// The earliest later time the state waits for (its next timer), if any: the operator
    /// runs the key's step then, with the changes at that time or none. The state keeps
    /// what is due when; the operator keeps one entry per key, not one per timer.
    fn due(&self) -> Option<Ts>;
}

/// A keyed process function over totally ordered time with event-time timers (the shape
/// of a keyed process function: the enterprise stage, D71). Its logic keeps its own
/// outputs and says what changed; its state says when it is next due ([`Folded::due`]).
pub trait ProcessTimed<'s, K, V> {
    /// For each key and each time its input changes or its state is due,
    /// `process(key, state, time, changes, output)` gets the changes at that time (to
    /// drain; none when only a timer is due), does what is due then, and pushes the
    /// differences of its output `(value, time, diff)` at that time or later. Its output
    /// must be a function of the key's accumulated input; the key is forgotten when its
    /// state [`Folded::is_empty`].
    fn process_timed<S, O, P>(self, name: &str, process: P) -> VecCollection<'s, Ts, (K, O)>
    where
        S: Folded,
        O: ExchangeData,
        P: FnMut(&K, &mut S, Ts, &mut Updates<V>, &mut Timed<O>) + 'static;
}

/// Output differences at their times: `(value, time, diff)`.
pub type Timed<O> = Vec<(O, Ts, isize)>;

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
        // `logic`'s output over an input, consolidated (nothing over an empty one).
        let mut run = move |k: &K, input: &[(V, isize)], out: &mut Vec<(O, isize)>| {
            if !input.is_empty() {
                logic(k, input, out);
                consolidate(out);
            }
        };
        let (mut new, mut diffs) = (Vec::new(), Vec::new());
        // One step brings the key's input forward through the changes at a time and pushes
        // the new output minus the old (the stored one, or, given none, recomputed from the
        // old input), at that time; it returns the new output if the old one was stored.
        let mut advance = move |k: &K,
                                input: &mut Vec<(V, isize)>,
                                stored: Option<Vec<(O, isize)>>,
                                t: Ts,
                                changes: &mut Updates<V>,
                                timed: &mut Timed<O>| {
            let store = stored.is_some();
            let old = stored.unwrap_or_else(|| {
                let mut old = Vec::new();
                run(k, input, &mut old);
                old
            });
            for (v, r) in changes.drain(..) {
                add(input, v, r);
            }
            run(k, input, &mut new);
            let kept = difference(&mut new, old, store, &mut diffs);
            timed.extend(diffs.drain(..).map(|(o, r)| (o, t, r)));
            kept
        };
        // A reduce sets no timers.
        match outputs {
            Outputs::Stored => keyed(
                self,
                name,
                move |k, keyed: &mut Keyed<V, O>, t, changes, timed| {
                    let old = std::mem::take(&mut keyed.output);
                    keyed.output = advance(k, &mut keyed.input, Some(old), t, changes, timed);
                },
                |k| k.input.is_empty(),
                |_| None,
            ),
            Outputs::Recomputed => keyed(
                self,
                name,
                move |k, input: &mut Vec<(V, isize)>, t, changes, timed| {
                    advance(k, input, None, t, changes, timed);
                },
                Vec::is_empty,
                |_| None,
            ),
        }
    }
}

impl<'s, K, V> ProcessTimed<'s, K, V> for VecCollection<'s, Ts, (K, V)>
where
    K: ExchangeData + Ord + Hash,
    V: ExchangeData,
{
    fn process_timed<S, O, P>(self, name: &str, process: P) -> VecCollection<'s, Ts, (K, O)>
    where
        S: Folded,
        O: ExchangeData,
        P: FnMut(&K, &mut S, Ts, &mut Updates<V>, &mut Timed<O>) + 'static,
    {
        keyed(self, name, process, S::is_empty, S::due)
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

/// What waits in the operator behind both traits: an input change, or a key's state due
/// at the entry's time (it may have moved since; the state says).
enum Entry<V> {
    Change(V, isize),
    Wake,
}

/// The operator behind both traits: each key's state `S` (dropped when `is_empty`) is
/// brought forward by `step` through the changes at each ready time and the times it is
/// `due`, in time order; `step` pushes the differences of the key's output. A key waits
/// in the operator with one entry at the time it is due (more only while that time
/// moves); a time due before the frontier runs in the same activation, in its key's time
/// order.
fn keyed<'s, K, V, S, O>(
    c: VecCollection<'s, Ts, (K, V)>,
    name: &str,
    mut step: impl FnMut(&K, &mut S, Ts, &mut Updates<V>, &mut Timed<O>) + 'static,
    is_empty: impl Fn(&S) -> bool + 'static,
    due: impl Fn(&S) -> Option<Ts> + 'static,
) -> VecCollection<'s, Ts, (K, O)>
where
    K: ExchangeData + Ord + Hash,
    V: ExchangeData,
    S: Default + 'static,
    O: ExchangeData,
{
    // Changes and wake-ups not yet passed by the frontier.
    let mut pending: Pending<(K, Entry<V>)> = Pending::default();
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
                        pending.push(t, (k, Entry::Change(v, r)));
                    }
                });
                let Some(cap) = held.as_mut() else {
                    return;
                };
                // Every time before the frontier is complete.
                let frontier = frontier.frontier().first().copied();
                let before = |u: &Ts| frontier.is_none_or(|f| *u < f);
                // Each key's updates together, in time order (D107).
                let mut ready = by_key(pending.before(frontier)).into_iter().peekable();
                let (mut changes, mut out) = (Vec::new(), Vec::new());
                // Sent under the held capability, which no ready time precedes, through
                // one session (it sends in buffer-sized batches).
                let mut session = output.session(&*cap);
                while let Some((key, _, _)) = ready.peek() {
                    let key = key.clone();
                    // The key is cloned again only when it is new.
                    let s = match state.get_mut(&key) {
                        Some(s) => s,
                        None => state.entry(key.clone()).or_default(),
                    };
                    loop {
                        let next = ready.peek().filter(|(k, _, _)| *k == key).map(|x| x.1);
                        let soon = due(s).filter(before);
                        let Some(t) = next.into_iter().chain(soon).min() else {
                            break;
                        };
                        while let Some((_, _, e)) = ready.next_if(|(k, u, _)| *k == key && *u == t)
                        {
                            if let Entry::Change(v, r) = e {
                                changes.push((v, r));
                            }
                        }
                        // A wake-up whose time has moved does nothing.
                        if changes.is_empty() && soon != Some(t) {
                            continue;
                        }
                        let was = due(s);
                        step(&key, s, t, &mut changes, &mut out);
                        changes.clear();
                        let now = due(s);
                        debug_assert!(now.is_none_or(|u| u > t), "due at a later time");
                        // A time at or past the frontier waits here; one before it runs
                        // in this loop.
                        if let Some(u) = now.filter(|u| now != was && !before(u)) {
                            pending.push(u, (key.clone(), Entry::Wake));
                        }
                        for (o, u, diff) in out.drain(..) {
                            session.give(((key.clone(), o), u, diff));
                        }
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

/// A step's ready updates with each key's together, in time order (D107). Which key comes
/// first does not matter: each key's step reads only its own updates, and every reader of
/// the output sorts it as it needs. So the updates are counted into about one bucket per
/// update by a hash of their key and moved there once, and only a bucket's few updates are
/// sorted, by key and time: a sort of the whole step by key moved every update some
/// `log₂ n` times.
///
/// The changes of one key at one time are a multiset (the logic sorts them as it needs), so
/// their order is not kept.
pub(crate) fn by_key<K: Ord + Hash, E>(ready: Vec<(Ts, (K, E))>) -> Vec<(K, Ts, E)> {
    // A bucket is the top `bits` bits of a fixed hash of the key.
    let hasher = foldhash::fast::FixedState::with_seed(0);
    let bits = ready.len().next_power_of_two().trailing_zeros();
    let bucket = |k: &K| match bits {
        0 => 0,
        _ => (hasher.hash_one(k) >> (u64::BITS - bits)) as usize,
    };
    let buckets: Vec<usize> = ready.iter().map(|(_, (k, _))| bucket(k)).collect();
    // Where each bucket starts, then (moving along) where its next update goes.
    let mut starts = vec![0; (1 << bits) + 1];
    for b in &buckets {
        starts[b + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut next = starts.clone();
    let mut slots: Vec<Option<(K, Ts, E)>> =
        std::iter::repeat_with(|| None).take(ready.len()).collect();
    for ((t, (k, e)), b) in ready.into_iter().zip(buckets) {
        slots[next[b]] = Some((k, t, e));
        next[b] += 1;
    }
    let mut out: Vec<(K, Ts, E)> = slots.into_iter().flatten().collect();
    for w in starts.windows(2).filter(|w| w[1] - w[0] > 1) {
        out[w[0]..w[1]].sort_unstable_by(|(k, t, _), (l, u, _)| (k, t).cmp(&(l, u)));
    }
    out
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
                rules::reserve_kept(input, 1);
                input.insert(i, (v, r));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{by_key, Pending};

    /// An operation on a buffer: push an update at a time, or read the updates before a
    /// frontier (none: the input is complete).
    #[derive(Debug, Clone)]
    enum Op {
        Push(i64),
        Read(Option<i64>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0i64..20).prop_map(Op::Push),
            1 => proptest::option::weighted(0.9, 0i64..25).prop_map(Op::Read),
        ]
    }

    proptest! {
        /// Every read gives exactly the updates before the frontier that earlier reads did
        /// not, in arrival order within a time; `first` is the earliest time still
        /// waiting.
        #[test]
        fn reads_give_each_update_once_in_time_then_arrival_order(
            ops in proptest::collection::vec(op(), 0..200),
        ) {
            let mut pending = Pending::default();
            // The model: every waiting update with its arrival number.
            let mut waiting: Vec<(i64, usize)> = Vec::new();
            for (n, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Push(t) => {
                        pending.push(t, n);
                        waiting.push((t, n));
                    }
                    Op::Read(frontier) => {
                        // Within a time in arrival order: a stable sort by time orders them
                        // all.
                        let mut got = pending.before(frontier);
                        got.sort_by_key(|(t, _)| *t);
                        let mut want: Vec<(i64, usize)> = waiting
                            .iter()
                            .copied()
                            .filter(|(t, _)| frontier.is_none_or(|f| *t < f))
                            .collect();
                        want.sort_unstable();
                        waiting.retain(|(t, _)| frontier.is_some_and(|f| *t >= f));
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(pending.first(), waiting.iter().map(|(t, _)| *t).min());
            }
        }

        /// `by_key` keeps every update, and gives each key's updates together, in time
        /// order: on steps of up to 300 updates over few or many keys.
        #[test]
        fn by_key_gives_each_key_s_updates_together_in_time_order(
            ready in proptest::collection::vec((0i64..30, 0u64..40, 0usize..5), 0..300),
        ) {
            let updates: Vec<(i64, (u64, usize))> =
                ready.iter().map(|&(t, k, e)| (t, (k, e))).collect();
            let got = by_key(updates);
            // The same updates.
            let mut all: Vec<(u64, i64, usize)> = got.clone();
            all.sort_unstable();
            let mut want: Vec<(u64, i64, usize)> = ready.iter().map(|&(t, k, e)| (k, t, e)).collect();
            want.sort_unstable();
            prop_assert_eq!(all, want);
            // Each key once, as one run, in time order.
            let mut seen = std::collections::BTreeSet::new();
            for (i, (k, t, _)) in got.iter().enumerate() {
                match i.checked_sub(1).map(|j| &got[j]) {
                    Some((l, u, _)) if l == k => prop_assert!(u <= t, "{:?}", got),
                    _ => prop_assert!(seen.insert(*k), "key {} in two runs: {:?}", k, got),
                }
            }
        }
    }
}
