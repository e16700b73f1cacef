//! Replays a log of accepted records through the dataflow on any number of timely workers
//! and processes, and collects each worker's results, or hands each step's outputs to the
//! caller as they come ([`Steps`] merges them over workers, D116).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;

use rules::catalogue::Catalogue;
use rules::lifecycle::{Accepted, Dead};
use rules::model::Model;
use rules::monitor::{Alert, ColourChange};
use rules::score::Colour;
use rules::status::{RecordKey, Status};
use rules::supervision::{CommitmentRules, Scheduled, Verification};
use rules::time::Ts;
use rules::uscc::Uscc;

use crate::checkpoint::Checkpoint;
use crate::dataflow::{build_side_by_side, Control, Scored, Variant};
use crate::profile::OperatorTimes;
use crate::tracker::{Kept, Tracker};

/// How the input time advances.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Advance the input (and run the dataflow to that time) at least every this many
    /// records; 1 makes every distinct visibility time a step.
    pub batch: usize,
    /// The last logical time to compute; scheduled changes up to it are processed.
    pub until: Ts,
    /// If given, every worker sums its operators' scheduled time into it.
    pub profile: Option<OperatorTimes>,
    /// Resume from this checkpoint (taken on as many workers): the records up to its time
    /// enter at that time, in one step, and only what comes after is tracked (D68).
    pub resume: Option<Arc<Checkpoint>>,
    /// Return each worker's tracker state at `until` ([`Replayed::kept`]).
    pub checkpoint: bool,
}

impl Schedule {
    /// Steps of at least `batch` records up to `until`, from the start, without profile or
    /// checkpoint.
    pub fn new(batch: usize, until: Ts) -> Self {
        Schedule {
            batch,
            until,
            profile: None,
            resume: None,
            checkpoint: false,
        }
    }
}

/// What a replay produced, merged over workers.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Each enterprise's evaluation and published colour at `until`.
    pub states: BTreeMap<String, (Scored, Option<Colour>)>,
    /// Every colour change, in `(as_of, uscc)` order.
    pub changes: Vec<ColourChange>,
    /// Every alert state change, in `(as_of, uscc)` order.
    pub alerts: Vec<Alert>,
    /// Lifecycle dead letters in effect at `until`.
    pub dead: Vec<Dead>,
    /// Every commitment's scheduling decision, in `(as_of, uscc, commitment_id)` order
    /// (empty unless replayed with commitment rules).
    pub scheduled: Vec<Scheduled>,
    /// Every verification result, in `(as_of, uscc, check)` order (empty unless replayed
    /// with commitment rules).
    pub checks: Vec<Verification>,
    /// Every record's status at `until`, with the enterprise it is filed under (D11).
    pub statuses: BTreeMap<RecordKey, (Uscc, Status)>,
    /// This process's workers' tracker states at `until`, by worker index (if asked for
    /// by [`Schedule::checkpoint`]).
    pub kept: BTreeMap<usize, Kept>,
}

/// What the monitor and the commitment loop put out, each kind in its documented order: one
/// worker's outputs of one step, or their merge over workers ([`Steps`]).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outputs {
    /// Colour changes, in `(as_of, uscc)` order.
    pub changes: Vec<ColourChange>,
    /// Alert state changes, in `(as_of, uscc)` order.
    pub alerts: Vec<Alert>,
    /// Commitments' scheduling decisions, in `(as_of, uscc, commitment_id)` order.
    pub scheduled: Vec<Scheduled>,
    /// Verification results, in `(as_of, uscc, check)` order.
    pub checks: Vec<Verification>,
}

impl Outputs {
    /// Takes what `t` put out since it was last taken. The places kept beside changes and
    /// alerts for `serve`'s rows are dropped: a replay writes no rows.
    fn take(t: &mut Tracker) -> Self {
        t.colours.change_places.clear();
        t.colours.alert_places.clear();
        Outputs {
            changes: std::mem::take(&mut t.colours.changes),
            alerts: std::mem::take(&mut t.colours.alerts),
            scheduled: std::mem::take(&mut t.commitments.scheduled),
            checks: std::mem::take(&mut t.commitments.checks),
        }
    }

    /// Appends `other`'s outputs after these.
    pub fn append(&mut self, mut other: Outputs) {
        self.changes.append(&mut other.changes);
        self.alerts.append(&mut other.alerts);
        self.scheduled.append(&mut other.scheduled);
        self.checks.append(&mut other.checks);
    }

    /// Puts outputs appended from several workers in their documented orders. Stable: within
    /// one enterprise and time (always one worker's), the monitor's order stays.
    fn sort(&mut self) {
        self.scheduled.sort_by(|a, b| {
            (a.as_of, &a.uscc, &a.commitment_id).cmp(&(b.as_of, &b.uscc, &b.commitment_id))
        });
        self.checks.sort_by(|a, b| a.key().cmp(&b.key()));
        self.changes
            .sort_by(|a, b| (a.as_of, &a.uscc).cmp(&(b.as_of, &b.uscc)));
        self.alerts
            .sort_by(|a, b| (a.as_of, &a.uscc).cmp(&(b.as_of, &b.uscc)));
    }

    /// The earliest and latest time of these outputs, if there are any.
    fn span(&self) -> Option<(Ts, Ts)> {
        let times = self.changes.iter().map(|c| c.as_of);
        let times = times.chain(self.alerts.iter().map(|a| a.as_of));
        let times = times.chain(self.scheduled.iter().map(|s| s.as_of));
        let times = times.chain(self.checks.iter().map(|v| v.as_of));
        times.fold(None, |span, t| match span {
            None => Some((t, t)),
            Some((a, b)) => Some((a.min(t), b.max(t))),
        })
    }
}

/// Merges the steps' outputs of a process's workers (D116). Every worker goes through the same
/// steps, each over later times than the one before, so the outputs of step `k` merged over
/// workers and sorted are the whole replay's outputs between step `k - 1`'s and step `k`'s:
/// written one step after another they are [`Replayed`]'s, byte for byte.
#[derive(Debug)]
pub struct Steps {
    /// The workers whose outputs are merged.
    workers: usize,
    /// Each worker's next step.
    next: HashMap<usize, u64>,
    /// Steps some worker has not handed in yet: how many have, and their outputs so far.
    waiting: BTreeMap<u64, (usize, Outputs)>,
    /// The latest time of the outputs merged so far.
    latest: Option<Ts>,
}

impl Steps {
    /// Merges the outputs of `workers` workers (this process's).
    pub fn new(workers: usize) -> Self {
        Steps {
            workers,
            next: HashMap::new(),
            waiting: BTreeMap::new(),
            latest: None,
        }
    }

    /// Takes `worker`'s outputs of its next step; returns that step's merged outputs once
    /// every worker has handed it in (steps complete in order: the last worker to hand in
    /// step `k` hands in `k + 1` after it). An error if outputs go back in time, which
    /// would break the order of what was already handed on.
    pub fn take(&mut self, worker: usize, outputs: Outputs) -> Result<Option<Outputs>, String> {
        let step = self.next.entry(worker).or_default();
        let k = *step;
        *step += 1;
        let (arrived, merged) = self.waiting.entry(k).or_default();
        *arrived += 1;
        merged.append(outputs);
        if *arrived < self.workers {
            return Ok(None);
        }
        let Some((_, mut merged)) = self.waiting.remove(&k) else {
            return Ok(None);
        };
        merged.sort();
        if let Some((first, last)) = merged.span() {
            if let Some(latest) = self.latest.filter(|&l| first < l) {
                return Err(format!(
                    "step {k} put out a result at {first}, before one already put out at {latest}"
                ));
            }
            self.latest = Some(last);
        }
        Ok(Some(merged))
    }

    /// Checks that every step was handed on: an error names the first step some worker did
    /// not hand in, whose outputs would be lost.
    pub fn finish(self) -> Result<(), String> {
        match self.waiting.into_iter().next() {
            Some((k, (arrived, _))) => Err(format!(
                "step {k} was handed in by {arrived} of {} workers",
                self.workers
            )),
            None => Ok(()),
        }
    }
}

/// A log as [`replay`] reads it: each record shared with the dataflow, which keeps it
/// without copying.
pub fn shared(log: Vec<Accepted>) -> Arc<[Arc<Accepted>]> {
    log.into_iter().map(Arc::new).collect()
}

/// One set of rules a replay runs under.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The catalogue.
    pub cat: Arc<Catalogue>,
    /// The model that scores `Q`, if any.
    pub model: Option<Arc<Model>>,
    /// The commitment loop's rules, if it is tracked.
    pub commitments: Option<CommitmentRules>,
}

/// Runs `log` (in any order) through the dataflow with the given timely configuration,
/// scoring `Q` with `model` if one is given, and tracking the commitment loop with
/// `commitments` if given. After each step, `on_step(worker, t, tracker, outputs)` sees the
/// worker's state as of time `t` and the outputs of its step; what it leaves in `outputs` is
/// kept for the returned [`Replayed`], what it takes is not (D116).
pub fn replay<F>(
    log: Arc<[Arc<Accepted>]>,
    cat: Arc<Catalogue>,
    model: Option<Arc<Model>>,
    commitments: Option<CommitmentRules>,
    config: timely::Config,
    schedule: Schedule,
    on_step: F,
) -> Result<Replayed, String>
where
    F: Fn(usize, Ts, &Tracker, &mut Outputs) + Send + Sync + 'static,
{
    let rules = Rules {
        cat,
        model,
        commitments,
    };
    let mut out = replay_all(log, vec![rules], config, schedule, on_step)?;
    Ok(out.remove(0))
}

/// Runs `log` through one dataflow that evaluates it under each of `rules` side by side
/// (the version stage shared, [`crate::dataflow::build_side_by_side`]), and returns what
/// each gave, in the order of `rules` (`steward what-if`, D78). `schedule` must not
/// resume from a checkpoint: a checkpoint holds one set of rules' trackers.
pub fn side_by_side(
    log: Arc<[Arc<Accepted>]>,
    rules: Vec<Rules>,
    config: timely::Config,
    schedule: Schedule,
) -> Result<Vec<Replayed>, String> {
    if schedule.resume.is_some() {
        return Err("a side-by-side replay does not resume from a checkpoint".to_owned());
    }
    replay_all(log, rules, config, schedule, |_, _, _, _| {})
}

/// [`replay`] under each of `rules` (at least one) in one dataflow; `on_step` sees the first
/// one's tracker and outputs, and a checkpoint in `schedule` is the first one's.
fn replay_all<F>(
    log: Arc<[Arc<Accepted>]>,
    rules: Vec<Rules>,
    config: timely::Config,
    schedule: Schedule,
    on_step: F,
) -> Result<Vec<Replayed>, String>
where
    F: Fn(usize, Ts, &Tracker, &mut Outputs) + Send + Sync + 'static,
{
    let sides = rules.len();
    // Every worker advances its input through the same times; worker 0 inserts the data.
    let mut order: Vec<usize> = (0..log.len()).collect();
    order.sort_by_key(|&i| log[i].v);
    let order = Arc::new(order);
    let guards = timely::execute(config, move |worker| {
        if let Some(c) = &schedule.resume {
            if c.workers.len() != worker.peers() {
                return Err(format!(
                    "the checkpoint at {} was taken on {} workers, this replay has {}",
                    c.at,
                    c.workers.len(),
                    worker.peers()
                ));
            }
        }
        let trackers: Vec<Rc<RefCell<Tracker>>> = rules
            .iter()
            .map(|r| {
                let mut tracker = Tracker::new(r.cat.clone(), r.model.clone());
                if let Some(c) = &r.commitments {
                    tracker = tracker.with_commitments(c.clone());
                }
                Rc::new(RefCell::new(tracker))
            })
            .collect();
        if let Some(p) = &schedule.profile {
            p.install(worker);
        }
        let mut variants = rules.iter().zip(&trackers).map(|(r, t)| Variant {
            cat: r.cat.clone(),
            model: r.model.clone(),
            sink: t.clone(),
        });
        let Some(first) = variants.next() else {
            return Err("a replay needs a set of rules".to_owned());
        };
        let mut h = build_side_by_side(worker, first, variants.collect());
        let feeds = worker.index() == 0;
        // The first rules' outputs `on_step` left, step after step.
        let mut left = Outputs::default();
        let index = worker.index();
        let mut step = |t: Ts, tracker: &mut Tracker| {
            let mut outputs = Outputs::take(tracker);
            on_step(index, t, tracker, &mut outputs);
            left.append(outputs);
        };
        let mut i = 0;
        if let Some(c) = &schedule.resume {
            // Every record up to the checkpoint enters at its time, and each worker's tracker
            // resumes from its state then.
            h.advance_to(c.at);
            while i < order.len() && log[order[i]].v <= c.at {
                if feeds {
                    h.input.update_at(Arc::clone(&log[order[i]]), c.at, 1);
                }
                i += 1;
            }
            if feeds {
                for (w, kept) in c.workers.iter().enumerate() {
                    h.control.send((w, Control::Resume(Box::new(kept.clone()))));
                }
            }
        }
        if schedule.checkpoint && feeds {
            // Every tracker keeps its state at `until` (the control input waits there, the
            // records' input goes on from where it is).
            if *h.control.time() < schedule.until {
                h.control.advance_to(schedule.until);
            }
            for w in 0..worker.peers() {
                h.control.send((w, Control::Checkpoint));
            }
        }
        while i < order.len() && log[order[i]].v <= schedule.until {
            // One step: at least `batch` records, always whole visibility times.
            let start = i;
            while i < order.len()
                && log[order[i]].v <= schedule.until
                && (i - start < schedule.batch || log[order[i]].v == log[order[i - 1]].v)
            {
                if feeds {
                    let a = &log[order[i]];
                    h.input.update_at(Arc::clone(a), a.v, 1);
                }
                i += 1;
            }
            let next = order
                .get(i)
                .map_or(schedule.until.saturating_add(1), |&j| log[j].v)
                .min(schedule.until.saturating_add(1));
            run_to(worker, &mut h, next);
            for t in &trackers {
                t.borrow_mut().advance(next);
            }
            step(next - 1, &mut trackers[0].borrow_mut());
        }
        run_to(worker, &mut h, schedule.until.saturating_add(1));
        for t in &trackers {
            t.borrow_mut().advance(schedule.until.saturating_add(1));
        }
        step(schedule.until, &mut trackers[0].borrow_mut());
        // Changes scheduled after `until` are not wanted: drop the dataflow.
        for id in worker.installed_dataflows() {
            worker.drop_dataflow(id);
        }
        // The first rules' results begin with what `on_step` left (the others', with none).
        Ok(trackers
            .iter()
            .map(|t| results(index, std::mem::take(&mut left), &mut t.borrow_mut()))
            .collect::<Vec<Replayed>>())
    })?;
    let mut out: Vec<Replayed> = (0..sides).map(|_| Replayed::default()).collect();
    for r in guards.join() {
        for (side, r) in out.iter_mut().zip(r??) {
            side.merge(r);
        }
    }
    for side in &mut out {
        side.sort();
    }
    Ok(out)
}

/// What a worker's `tracker` holds at the end of a replay, its outputs after `before`.
fn results(worker: usize, before: Outputs, t: &mut Tracker) -> Replayed {
    let kept = std::mem::take(&mut t.taken)
        .into_iter()
        .map(|(_, kept)| (worker, kept))
        .collect();
    let states: BTreeMap<String, (Scored, Option<Colour>)> = std::mem::take(&mut t.colours.current)
        .into_iter()
        .map(|(u, s)| {
            let colour = t.published(u);
            // The dataflow is dropped: the tracker holds the only reference.
            (u.to_string(), (Arc::unwrap_or_clone(s), colour))
        })
        .collect();
    let mut out = Replayed {
        states,
        dead: t.letters.in_effect.keys().cloned().collect(),
        statuses: t.statuses.current().collect(),
        kept,
        ..Replayed::default()
    };
    out.add(before);
    out.add(Outputs::take(t));
    out
}

impl Replayed {
    /// Takes in another worker's results (the maps merged whole, in one pass, not entry by
    /// entry; workers hold no key in common).
    fn merge(&mut self, mut r: Replayed) {
        self.states.append(&mut r.states);
        self.dead.append(&mut r.dead);
        self.statuses.append(&mut r.statuses);
        self.kept.append(&mut r.kept);
        let outputs = r.take_outputs();
        self.add(outputs);
    }

    /// Appends `outputs` after the outputs held.
    fn add(&mut self, mut outputs: Outputs) {
        self.changes.append(&mut outputs.changes);
        self.alerts.append(&mut outputs.alerts);
        self.scheduled.append(&mut outputs.scheduled);
        self.checks.append(&mut outputs.checks);
    }

    /// Takes the outputs held.
    fn take_outputs(&mut self) -> Outputs {
        Outputs {
            changes: std::mem::take(&mut self.changes),
            alerts: std::mem::take(&mut self.alerts),
            scheduled: std::mem::take(&mut self.scheduled),
            checks: std::mem::take(&mut self.checks),
        }
    }

    /// Puts the merged results in their documented orders.
    fn sort(&mut self) {
        let mut outputs = self.take_outputs();
        outputs.sort();
        self.add(outputs);
        self.dead.sort();
    }
}

/// Advances the input to `t` and runs the worker until every output has reached it.
fn run_to(worker: &mut timely::worker::Worker, h: &mut crate::dataflow::Handles, t: Ts) {
    h.advance_to(t);
    worker.step_while(|| h.probe.less_than(&t));
}

#[cfg(test)]
mod tests {
    use rules::monitor::{AlertState, Severity};

    use super::*;

    fn alert(uscc: &str, as_of: Ts, rule: &str) -> Alert {
        Alert {
            alert_id: String::new(),
            uscc: uscc.to_owned(),
            rule: rule.to_owned(),
            severity: Severity::Warning,
            state: AlertState::Firing,
            as_of,
            detail: String::new(),
        }
    }

    fn alerts(alerts: &[(&str, Ts, &str)]) -> Outputs {
        Outputs {
            alerts: alerts.iter().map(|&(u, t, r)| alert(u, t, r)).collect(),
            ..Outputs::default()
        }
    }

    #[test]
    fn a_step_is_handed_on_sorted_once_every_worker_has_handed_it_in() {
        let mut steps = Steps::new(2);
        // Worker 1 is a step ahead.
        let b = alerts(&[("B", 2, "x"), ("B", 2, "a")]);
        assert_eq!(steps.take(1, b), Ok(None));
        assert_eq!(steps.take(1, alerts(&[("B", 7, "x")])), Ok(None));
        let a = alerts(&[("A", 1, "x"), ("C", 2, "x")]);
        let first = steps.take(0, a).expect("in time order");
        // By time and enterprise; one enterprise's alerts at one time in the monitor's order.
        let want = [("A", 1, "x"), ("B", 2, "x"), ("B", 2, "a"), ("C", 2, "x")];
        assert_eq!(first, Some(alerts(&want)));
        let second = steps.take(0, alerts(&[("C", 7, "x"), ("A", 9, "x")]));
        let want = [("B", 7, "x"), ("C", 7, "x"), ("A", 9, "x")];
        assert_eq!(second, Ok(Some(alerts(&want))));
    }

    #[test]
    fn outputs_that_go_back_in_time_are_refused() {
        let mut steps = Steps::new(1);
        assert!(steps.take(0, alerts(&[("A", 5, "x")])).is_ok());
        assert!(steps.take(0, Outputs::default()).is_ok());
        let err = steps
            .take(0, alerts(&[("B", 4, "x")]))
            .expect_err("back in time");
        assert!(
            err.contains("at 4, before one already put out at 5"),
            "{err}"
        );
    }

    #[test]
    fn a_step_not_every_worker_handed_in_is_an_error_at_the_end() {
        let mut steps = Steps::new(2);
        assert_eq!(steps.take(0, alerts(&[("A", 1, "x")])), Ok(None));
        let first = steps.take(1, Outputs::default());
        assert_eq!(first, Ok(Some(alerts(&[("A", 1, "x")]))));
        assert_eq!(steps.take(1, alerts(&[("B", 2, "x")])), Ok(None));
        let err = steps.finish().expect_err("worker 0 did not hand in step 1");
        assert_eq!(err, "step 1 was handed in by 1 of 2 workers");
    }
}
