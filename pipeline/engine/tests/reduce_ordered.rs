//! `reduce_ordered` and `process_timed` against differential's own `reduce` on random
//! update streams: the same logic over the same input gives the same output updates (data,
//! time, diff), with stored and with recomputed outputs, and as a state machine that holds
//! each value for a while by its own timers (against `reduce` over the value and its
//! retraction at the later time), on one and two workers, with updates at future times,
//! retractions and negative counts.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use differential_dataflow::consolidation::consolidate_updates;
use differential_dataflow::input::Input;
use differential_dataflow::AsCollection;
use engine::ordered::{Folded, Outputs, ProcessTimed, ReduceOrdered, Timed};
use proptest::prelude::*;
use rules::time::Ts;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::operators::vec::Map;

/// One input update: key, value, time ahead of the input's current time, diff.
type Update = (u8, u8, Ts, isize);
/// An output update of either reduce.
type Out = ((u8, (u32, i64)), Ts, isize);

/// Per key: one output per value held with a positive count divisible by 3 (several
/// outputs per key), plus the number of distinct values and the signed sum of the input.
/// (`reduce_ordered` lends the values themselves, `reduce` references to them.)
fn logic<V: std::borrow::Borrow<u8>>(
    _k: &u8,
    vals: &[(V, isize)],
    out: &mut Vec<((u32, i64), isize)>,
) {
    let sum: i64 = vals
        .iter()
        .map(|(v, r)| i64::from(*v.borrow()) * *r as i64)
        .sum();
    out.push(((vals.len() as u32, sum), 1));
    for (v, r) in vals {
        let v = *v.borrow();
        if *r > 0 && v % 3 == 0 {
            out.push(((1000 + u32::from(v), 0), *r));
        }
    }
}

/// The operator under test.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// `reduce_ordered` with these outputs.
    Reduce(Outputs),
    /// `process_timed` over [`Values`], each value held for [`held_for`] after its time.
    Timed,
}

/// How long a value is held after its time in [`Mode::Timed`]: one to three time units, or
/// for ever (multiples of four), so that a timer falls in the same step as its change, in
/// a later one, or never.
fn held_for(v: u8) -> Option<Ts> {
    (v % 4 != 0).then(|| Ts::from(v % 4))
}

/// A timed state machine's state: the key's values and counts, sorted, counts non-zero,
/// kept by each change and each due timer; its timers not yet due, by time; its last
/// output.
#[derive(Default)]
struct Values {
    values: Vec<(u8, isize)>,
    timers: Vec<(Ts, (u8, isize))>,
    output: Vec<((u32, i64), isize)>,
}

impl Folded for Values {
    fn is_empty(&self) -> bool {
        self.values.is_empty() && self.timers.is_empty() && self.output.is_empty()
    }

    fn due(&self) -> Option<Ts> {
        self.timers.first().map(|(t, _)| *t)
    }
}

impl Values {
    /// The changes at `t` and the timers due then (none is due before: the operator runs a
    /// step at every time the state is due); a timer to retract each new change when it is
    /// no longer held; the output then, minus the one before.
    fn step(&mut self, k: &u8, t: Ts, changes: &mut Vec<(u8, isize)>, out: &mut Timed<(u32, i64)>) {
        assert!(
            self.timers.first().is_none_or(|(u, _)| *u >= t),
            "a time due was missed"
        );
        let due = self.timers.partition_point(|(u, _)| *u <= t);
        for (_, (v, r)) in self.timers.drain(..due).collect::<Vec<_>>() {
            self.update(v, r);
        }
        for (v, r) in changes.drain(..) {
            self.update(v, r);
            if let Some(d) = held_for(v) {
                let i = self.timers.partition_point(|(u, _)| *u <= t + d);
                self.timers.insert(i, (t + d, (v, -r)));
            }
        }
        out.extend(self.output.drain(..).map(|(o, r)| (o, t, -r)));
        if !self.values.is_empty() {
            logic(k, &self.values, &mut self.output);
        }
        out.extend(self.output.iter().map(|(o, r)| (*o, t, *r)));
    }

    fn update(&mut self, v: u8, r: isize) {
        match self.values.binary_search_by_key(&v, |(x, _)| *x) {
            Ok(i) => {
                self.values[i].1 += r;
                if self.values[i].1 == 0 {
                    self.values.remove(i);
                }
            }
            Err(i) if r != 0 => self.values.insert(i, (v, r)),
            Err(_) => {}
        }
    }
}

/// Runs `steps` (each: updates, then the input advances by `advance`) through the operator
/// under test and differential's `reduce` on `workers` workers; returns both outputs,
/// consolidated.
fn run(steps: Vec<(Vec<Update>, Ts)>, workers: usize, mode: Mode) -> (Vec<Out>, Vec<Out>) {
    let ordered = Arc::new(Mutex::new(Vec::new()));
    let reference = Arc::new(Mutex::new(Vec::new()));
    let (o, r) = (ordered.clone(), reference.clone());
    timely::execute(timely::Config::process(workers), move |worker| {
        let (o, r) = (o.clone(), r.clone());
        let mine = Rc::new(RefCell::new(Vec::new()));
        let theirs = Rc::new(RefCell::new(Vec::new()));
        let (m, t) = (mine.clone(), theirs.clone());
        let (mut input, probe) = worker.dataflow::<Ts, _, _>(|scope| {
            let (input, updates) = scope.new_collection::<(u8, u8), isize>();
            let a = match mode {
                Mode::Reduce(outputs) => {
                    updates
                        .clone()
                        .reduce_ordered("Ordered", outputs, logic::<u8>)
                }
                Mode::Timed => updates
                    .clone()
                    .process_timed("Timed", |k, s: &mut Values, t, changes, out| {
                        s.step(k, t, changes, out)
                    }),
            }
            .inspect(move |x| m.borrow_mut().push(*x));
            let reference = match mode {
                Mode::Reduce(_) => updates,
                // Each update, and its retraction when it is no longer held.
                Mode::Timed => updates
                    .inner
                    .flat_map(|((k, v), t, r)| {
                        let end = held_for(v).map(|d| ((k, v), t + d, -r));
                        std::iter::once(((k, v), t, r)).chain(end)
                    })
                    .as_collection(),
            };
            let b = reference
                .reduce_named("Reference", |k, vals, out| logic(k, vals, out))
                .inspect(move |x| t.borrow_mut().push(*x));
            let probe = ProbeHandle::new();
            a.probe_with(&probe);
            b.probe_with(&probe);
            (input, probe)
        });
        input.advance_to(0);
        let first = worker.index() == 0;
        for (updates, advance) in &steps {
            let now = *input.time();
            if first {
                for (k, v, ahead, d) in updates {
                    input.update_at((*k, *v), now + ahead, *d);
                }
            }
            input.advance_to(now + advance);
            input.flush();
            worker.step_while(|| probe.less_than(input.time()));
        }
        input.close();
        while worker.step() {}
        o.lock().expect("lock").extend(mine.borrow_mut().drain(..));
        r.lock()
            .expect("lock")
            .extend(theirs.borrow_mut().drain(..));
    })
    .expect("timely runs");
    let take = |x: Arc<Mutex<Vec<Out>>>| {
        let mut v = std::mem::take(&mut *x.lock().expect("lock"));
        consolidate_updates(&mut v);
        v
    };
    (take(ordered), take(reference))
}

fn steps() -> impl Strategy<Value = Vec<(Vec<Update>, Ts)>> {
    let update = (
        0u8..4,
        0u8..7,
        0 as Ts..12,
        prop_oneof![Just(1), Just(-1), Just(2)],
    );
    prop::collection::vec((prop::collection::vec(update, 0..8), 1 as Ts..4), 1..25)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn ordered_reduce_equals_differential_reduce(
        steps in steps(),
        two in any::<bool>(),
        mode in prop_oneof![
            Just(Mode::Reduce(Outputs::Stored)),
            Just(Mode::Reduce(Outputs::Recomputed)),
            Just(Mode::Timed),
        ],
    ) {
        let (ordered, reference) = run(steps, if two { 2 } else { 1 }, mode);
        prop_assert_eq!(ordered, reference);
    }
}

#[test]
fn a_fixed_stream_has_output() {
    // Key 1 holds 3 from time 0, gains 6 at time 5 (sent at time 0), loses 3 at time 2.
    let steps = vec![
        (vec![(1, 3, 0, 1), (1, 6, 5, 1)], 2),
        (vec![(1, 3, 0, -1)], 10),
    ];
    for mode in [
        Mode::Reduce(Outputs::Stored),
        Mode::Reduce(Outputs::Recomputed),
    ] {
        let (ordered, reference) = run(steps.clone(), 1, mode);
        assert_eq!(ordered, reference);
        assert!(ordered.contains(&((1, (1003, 0)), 0, 1)));
        assert!(ordered.contains(&((1, (1003, 0)), 2, -1)));
        assert!(ordered.contains(&((1, (1006, 0)), 5, 1)));
        // Between 2 and 5 the key holds nothing, so it has no output there.
        assert!(ordered.contains(&((1, (1, 3)), 2, -1)));
    }
    // As a timed state machine, value 3 is held for 3 and value 6 for 2: each leaves by
    // its timer.
    let (timed, reference) = run(steps, 1, Mode::Timed);
    assert_eq!(timed, reference);
    assert!(timed.contains(&((1, (1003, 0)), 0, 1)));
    assert!(timed.contains(&((1, (1003, 0)), 2, -1)));
    assert!(timed.contains(&((1, (1006, 0)), 5, 1)));
    assert!(timed.contains(&((1, (1006, 0)), 7, -1)));
}
