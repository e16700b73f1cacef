//! The one sequential step: a worker's evaluation updates, taken in logical-time order once
//! the dataflow's frontier has passed them, drive [`rules::monitor::Monitor`]: hysteresis,
//! colour changes and alerts; then the pre-credit changes (D44) and the commitment loop's
//! decisions (D46), which read the published colour at that time.
//!
//! The dataflow partitions enterprises by USCC, so each worker tracks the enterprises it
//! owns, and record status steps by record, so each worker tracks those records' statuses;
//! no state is shared between workers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use differential_dataflow::consolidation::consolidate;
use rules::catalogue::Catalogue;
use rules::fact::{Check, CommitmentEvent};
use rules::lifecycle::Dead;
use rules::model::Model;
use rules::monitor::{Alert, ColourChange, Monitor};
use rules::score::Colour;
use rules::status::{Record, RecordKey, Status, Step};
use rules::supervision::{CommitmentRules, PreCredit, PreCreditRule, Scheduled, Verification};
use rules::time::Ts;
use rules::uscc::Uscc;
use serde::{Deserialize, Serialize};

use crate::dataflow::{Control, Scored, Sink};
use crate::ordered::{add, Lookup, Pending};

/// Where an enterprise is: region and industry codes (empty when unknown).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// Region code.
    pub region: String,
    /// Industry code.
    pub industry: String,
}

/// One record's status steps in effect, each with the enterprise it is filed under
/// (sorted, counts non-zero).
type Steps = Vec<((Uscc, Step), isize)>;

/// Hysteresis, colour changes and the current state of one worker's enterprises.
#[derive(Debug)]
pub struct Tracker {
    cat: Arc<Catalogue>,
    model: Option<Arc<Model>>,
    /// Evaluation updates not yet passed by the frontier: `(uscc, scored, diff)`.
    pending: Pending<(Uscc, Arc<Scored>, isize)>,
    /// Lifecycle dead-letter updates not yet passed by the frontier.
    pending_dead: Pending<(Dead, isize)>,
    /// Each enterprise's evaluation at the last processed time (shared with the dataflow).
    pub current: Lookup<Uscc, Arc<Scored>>,
    /// Monitoring state per enterprise.
    monitors: Lookup<Uscc, Monitor>,
    /// Every colour change so far, in time order.
    pub changes: Vec<ColourChange>,
    /// Every alert state change so far, in time order.
    pub alerts: Vec<Alert>,
    /// The region and industry of the enterprise at each change of `changes` (same index),
    /// as its evaluation at the change's time had them.
    pub change_places: Vec<Place>,
    /// The region and industry at each alert of `alerts` (same index).
    pub alert_places: Vec<Place>,
    /// Lifecycle dead letters in effect, with their multiplicity.
    pub dead: BTreeMap<Dead, isize>,
    /// Enterprises whose evaluation changed since this was last drained, with the time of
    /// their latest change (kept only when outputs are drained, see [`Tracker::draining`]).
    pub touched: BTreeMap<Uscc, Ts>,
    /// Lifecycle dead letters that came into effect since this was last drained, with the
    /// dataflow time at which they did: a live sink orders outputs by that time, which is
    /// never before the frontier it has already made durable.
    pub dead_new: Vec<(Ts, Dead)>,
    /// The pre-credit rule, when pre-credit changes are tracked.
    pre_rule: Option<PreCreditRule>,
    /// Each enterprise's pre-credit status at the last processed time.
    pre_current: Lookup<Uscc, PreCredit>,
    /// Every pre-credit change so far, in time order (live outputs drain it each step).
    pub pre_changes: Vec<PreCreditChange>,
    /// Commitment event updates not yet passed by the frontier.
    pending_commitments: Pending<(Uscc, CommitmentEvent, isize)>,
    /// The scheduling rules, when the commitment loop is tracked.
    commitment_rules: Option<CommitmentRules>,
    /// `(uscc, commitment_id)` already scheduled: a commitment is decided once.
    decided: BTreeSet<(Uscc, String)>,
    /// Verification results already reported.
    reported: BTreeSet<(Uscc, Check)>,
    /// Every scheduling decision so far, in time order (live outputs drain it each step).
    pub scheduled: Vec<Scheduled>,
    /// Every verification result so far, in time order (live outputs drain it each step).
    pub checks: Vec<Verification>,
    /// Record status step updates not yet passed by the frontier.
    pending_status: Pending<(Record, Uscc, Step, isize)>,
    /// The status steps in effect of the records this worker takes, each with the
    /// enterprise it is filed under (sorted, counts non-zero). A record's status is its
    /// latest step ([`Tracker::statuses`]).
    steps: Lookup<Record, Steps>,
    /// Whether outputs are drained every step (live): status changes go to `status_new`,
    /// and changed enterprises to `touched`.
    draining: bool,
    /// Status changes since this was last drained: `(time, record, uscc, new status)`.
    pub status_new: Vec<(Ts, RecordKey, Uscc, Status)>,
    /// Resumed from a checkpoint at this time: updates up to it restore the dataflow's
    /// state and report nothing (D68).
    resumed: Option<Ts>,
    /// Times at which to keep this tracker's state (checkpoints), not yet passed.
    pending_marks: Pending<()>,
    /// This tracker's state at each checkpoint time passed since this was last drained.
    pub taken: Vec<(Ts, Kept)>,
}

/// What a tracker keeps from its past that the dataflow's state at a time does not give
/// back: each enterprise's monitoring state (hysteresis and alerts), its pre-credit status,
/// and the commitments decided and results reported. Everything else a tracker holds (the
/// current evaluations, dead letters and status steps in effect) the dataflow recomputes
/// from the records (D68). Sorted, so that equal trackers give equal files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// Monitoring state per enterprise.
    pub monitors: Vec<(Uscc, Monitor)>,
    /// Pre-credit status per enterprise (none listed: no line).
    pub pre_credit: Vec<(Uscc, KeptPreCredit)>,
    /// Commitments already scheduled.
    pub decided: Vec<(Uscc, String)>,
    /// Verification results already reported.
    pub reported: Vec<(Uscc, Check)>,
}

/// An update of an enterprise the tracker takes in time order.
#[derive(Debug)]
enum Update {
    /// Of its evaluation.
    Scored(Arc<Scored>),
    /// Of its commitment events.
    Commitment(CommitmentEvent),
}

/// A record's status: its latest step in effect, with the enterprise it is filed under
/// (of equal latest steps, the one under the greatest USCC).
fn latest(steps: &Steps) -> Option<(Uscc, Status)> {
    steps
        .iter()
        .filter(|(_, r)| *r > 0)
        .max_by_key(|((_, s), _)| *s)
        .map(|((u, s), _)| (*u, s.status))
}

/// A pre-credit status as a checkpoint keeps it: [`PreCredit`]'s own serde form is the plans
/// topic's (adjacently tagged), which bincode, the form a checkpoint's part crosses
/// processes in, cannot read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum KeptPreCredit {
    Line(i64),
    Review,
    Ineligible,
    None,
}

impl From<PreCredit> for KeptPreCredit {
    fn from(p: PreCredit) -> Self {
        match p {
            PreCredit::Line(fen) => KeptPreCredit::Line(fen),
            PreCredit::Review => KeptPreCredit::Review,
            PreCredit::Ineligible => KeptPreCredit::Ineligible,
            PreCredit::None => KeptPreCredit::None,
        }
    }
}

impl From<KeptPreCredit> for PreCredit {
    fn from(p: KeptPreCredit) -> Self {
        match p {
            KeptPreCredit::Line(fen) => PreCredit::Line(fen),
            KeptPreCredit::Review => PreCredit::Review,
            KeptPreCredit::Ineligible => PreCredit::Ineligible,
            KeptPreCredit::None => PreCredit::None,
        }
    }
}

/// Whether updates at `t` restore the state of a checkpoint at `resumed` instead of being
/// tracked.
fn restoring(resumed: Option<Ts>, t: Ts) -> bool {
    resumed.is_some_and(|at| t <= at)
}

/// A change of an enterprise's pre-credit status (published on the plans topic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreCreditChange {
    /// The enterprise.
    pub uscc: String,
    /// The logical time of the change.
    pub as_of: Ts,
    /// Its published colour then.
    pub colour: Colour,
    /// The status before.
    pub from: PreCredit,
    /// The status from `as_of` on.
    pub to: PreCredit,
}

impl Tracker {
    /// An empty tracker; `model` is the one the dataflow scores with.
    pub fn new(cat: Arc<Catalogue>, model: Option<Arc<Model>>) -> Self {
        Tracker {
            cat,
            model,
            pending: Pending::default(),
            pending_dead: Pending::default(),
            current: Lookup::default(),
            monitors: Lookup::default(),
            changes: Vec::new(),
            alerts: Vec::new(),
            change_places: Vec::new(),
            alert_places: Vec::new(),
            dead: BTreeMap::new(),
            touched: BTreeMap::new(),
            dead_new: Vec::new(),
            pre_rule: None,
            pre_current: Lookup::default(),
            pre_changes: Vec::new(),
            pending_commitments: Pending::default(),
            commitment_rules: None,
            decided: BTreeSet::new(),
            reported: BTreeSet::new(),
            scheduled: Vec::new(),
            checks: Vec::new(),
            pending_status: Pending::default(),
            steps: Lookup::default(),
            draining: false,
            status_new: Vec::new(),
            resumed: None,
            pending_marks: Pending::default(),
            taken: Vec::new(),
        }
    }

    /// What this tracker keeps from its past (D68), as of the last time it advanced past.
    pub fn kept(&self) -> Kept {
        fn sorted<K: Ord + Copy, V: Clone>(m: &Lookup<K, V>) -> Vec<(K, V)> {
            let mut v: Vec<(K, V)> = m.iter().map(|(k, x)| (*k, x.clone())).collect();
            v.sort_unstable_by_key(|(k, _)| *k);
            v
        }
        Kept {
            monitors: sorted(&self.monitors),
            pre_credit: sorted(&self.pre_current)
                .into_iter()
                .map(|(u, p)| (u, p.into()))
                .collect(),
            decided: self.decided.iter().cloned().collect(),
            reported: self.reported.iter().cloned().collect(),
        }
    }

    /// Resumes from a checkpoint at `at` holding `kept`: the dataflow then gives back its
    /// state at `at` (every record up to `at` entered at `at`), which this tracker takes as
    /// its current state without reporting it; later updates are tracked as before (D68).
    fn resume(&mut self, at: Ts, kept: Kept) {
        self.monitors = kept.monitors.into_iter().collect();
        self.pre_current = kept
            .pre_credit
            .into_iter()
            .map(|(u, p)| (u, p.into()))
            .collect();
        self.decided = kept.decided.into_iter().collect();
        self.reported = kept.reported.into_iter().collect();
        self.resumed = Some(at);
    }

    /// For outputs that drain the tracker every step: reports each record status change in
    /// `status_new`, and each changed enterprise in `touched`.
    pub fn draining(mut self) -> Self {
        self.draining = true;
        self
    }

    /// Tracks the commitment loop with `rules`: each commitment is scheduled at the first
    /// processed time its `PUBLISHED` is in effect, from the published colour after that
    /// time's evaluation; each verification result is reported the first time it appears.
    pub fn with_commitments(mut self, rules: CommitmentRules) -> Self {
        self.commitment_rules = Some(rules);
        self
    }

    /// Takes an enterprise's net commitment event updates at `t` (sorted).
    fn commitments_at(&mut self, u: Uscc, t: Ts, events: Vec<(CommitmentEvent, isize)>) {
        let Some(rules) = &self.commitment_rules else {
            return;
        };
        let colour = self.published(u).unwrap_or(Colour::None);
        for (e, r) in events {
            if r <= 0 {
                continue;
            }
            match e {
                CommitmentEvent::Published(id) => {
                    if self.decided.insert((u, id.clone())) {
                        let uscc = u.to_string();
                        self.scheduled.push(rules.schedule(&uscc, &id, colour, t));
                    }
                }
                CommitmentEvent::Checked(c) => {
                    if self.reported.insert((u, c.clone())) {
                        self.checks.push(Verification {
                            uscc: u.to_string(),
                            as_of: t,
                            check: c,
                        });
                    }
                }
            }
        }
    }

    /// Tracks pre-credit changes with `rule`: one at every processed time at which an
    /// enterprise's status (from its published colour and tax paid) differs from before.
    pub fn with_pre_credit(mut self, rule: PreCreditRule) -> Self {
        self.pre_rule = Some(rule);
        self
    }

    fn pre_credit(&mut self, u: Uscc, t: Ts, now: PreCredit, colour: Colour) {
        if self.pre_rule.is_none() {
            return;
        }
        let before = self.pre_current.get(&u).copied().unwrap_or(PreCredit::None);
        if before == now {
            return;
        }
        self.pre_changes.push(PreCreditChange {
            uscc: u.to_string(),
            as_of: t,
            colour,
            from: before,
            to: now,
        });
        if now == PreCredit::None {
            self.pre_current.remove(&u);
        } else {
            self.pre_current.insert(u, now);
        }
    }

    /// An enterprise's published colour, if it was ever evaluated.
    pub fn published(&self, uscc: Uscc) -> Option<Colour> {
        self.monitors.get(&uscc).and_then(|m| m.published)
    }

    /// Applies every pending update at a time before `frontier`, in time order, keeping the
    /// state at each checkpoint time on the way in `taken`.
    pub fn advance(&mut self, frontier: Ts) {
        let mut marks: Vec<Ts> = self
            .pending_marks
            .before(Some(frontier))
            .map(|(t, ())| t)
            .collect();
        marks.sort_unstable();
        marks.dedup();
        for t in marks {
            self.apply(t.saturating_add(1));
            self.taken.push((t, self.kept()));
        }
        self.apply(frontier);
    }

    /// Applies every pending update at a time before `frontier`, in time order.
    fn apply(&mut self, frontier: Ts) {
        // Net per time and letter first: a letter can leave one enterprise and reach another
        // at the same time (a version moved the record), in either order.
        let mut dead: Vec<((Ts, Dead), isize)> = self
            .pending_dead
            .before(Some(frontier))
            .map(|(t, (d, r))| ((t, d), r))
            .collect();
        consolidate(&mut dead);
        for ((t, d), r) in dead {
            let n = self.dead.entry(d.clone()).or_default();
            if *n <= 0 && *n + r > 0 && !restoring(self.resumed, t) {
                self.dead_new.push((t, d.clone()));
            }
            *n += r;
            if *n == 0 {
                self.dead.remove(&d);
            }
        }
        let statuses = self
            .pending_status
            .before(Some(frontier))
            .map(|(t, (k, u, s, r))| (t, k, u, s, r))
            .collect();
        self.statuses_at(statuses);

        // Evaluation and commitment updates per (time, uscc), in that order.
        let mut ready: Vec<(Ts, Uscc, Update, isize)> = self
            .pending
            .before(Some(frontier))
            .map(|(t, (u, s, r))| (t, u, Update::Scored(s), r))
            .chain(
                self.pending_commitments
                    .before(Some(frontier))
                    .map(|(t, (u, e, r))| (t, u, Update::Commitment(e), r)),
            )
            .collect();
        ready.sort_unstable_by_key(|x| (x.0, x.1));
        let mut ready = ready.into_iter().peekable();
        while let Some((t, u, x, r)) = ready.next() {
            let (mut values, mut commitments) = (Vec::new(), Vec::new());
            let mut take = |x, r| match x {
                Update::Scored(s) => values.push((s, r)),
                Update::Commitment(e) => commitments.push((e, r)),
            };
            take(x, r);
            while let Some((_, _, x, r)) = ready.next_if(|y| y.0 == t && y.1 == u) {
                take(x, r);
            }
            // Net per value.
            consolidate(&mut values);
            consolidate(&mut commitments);
            if restoring(self.resumed, t) {
                self.restored(u, values);
                continue;
            }
            // The commitment loop reads the published colour after this time's evaluation.
            if !values.is_empty() {
                self.evaluated(u, t, values);
            }
            self.commitments_at(u, t, commitments);
        }
    }

    /// Takes record status step updates at times passed by the frontier, per time and
    /// record in time order; when a record's status (or its enterprise) changes, draining
    /// outputs get the new one.
    fn statuses_at(&mut self, mut ready: Vec<(Ts, Record, Uscc, Step, isize)>) {
        ready.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let mut ready = ready.into_iter().peekable();
        while let Some((t, k, u, step, r)) = ready.next() {
            // The key is cloned only when the record is new.
            let steps = match self.steps.get_mut(&k) {
                Some(steps) => steps,
                None => self.steps.entry(k.clone()).or_default(),
            };
            // Only draining outputs report changes, and not while restoring a checkpoint.
            let report = self.draining && !restoring(self.resumed, t);
            let before = if report { latest(steps) } else { None };
            add(steps, (u, step), r);
            while let Some((_, _, u, step, r)) = ready.next_if(|x| x.0 == t && x.1 == k) {
                add(steps, (u, step), r);
            }
            if report {
                if let Some((u, st)) = latest(steps).filter(|x| before != Some(*x)) {
                    self.status_new.push((t, k.key(), u, st));
                }
            }
            if steps.is_empty() {
                self.steps.remove(&k);
            }
        }
    }

    /// Every record's current status (of the records this worker takes), with the
    /// enterprise it is filed under (D11).
    pub fn statuses(&self) -> impl Iterator<Item = (RecordKey, (Uscc, Status))> + '_ {
        self.steps
            .iter()
            .filter_map(|(k, steps)| latest(steps).map(|x| (k.key(), x)))
    }

    /// Takes an enterprise's net evaluation updates at a time up to a checkpoint's: its
    /// evaluation then, which was reported before the checkpoint.
    fn restored(&mut self, u: Uscc, values: Vec<(Arc<Scored>, isize)>) {
        match values.into_iter().find(|(_, r)| *r > 0) {
            Some((s, _)) => self.current.insert(u, s),
            None => self.current.remove(&u),
        };
    }

    /// Takes an enterprise's net evaluation updates at `t`.
    fn evaluated(&mut self, u: Uscc, t: Ts, values: Vec<(Arc<Scored>, isize)>) {
        if self.draining {
            self.touched.insert(u, t);
        }
        let added = values.into_iter().find(|(_, r)| *r > 0).map(|(s, _)| s);
        // Only a retraction at `t`: the enterprise left the collection.
        let Some(scored) = added else {
            self.current.remove(&u);
            self.pre_credit(u, t, PreCredit::None, Colour::None);
            return;
        };
        let seen = self
            .monitors
            .entry(u)
            .or_default()
            .observe(&u, t, scored.as_ref(), &self.cat);
        // Where the enterprise is, and its full evaluation (for the explanation), only when
        // something is reported.
        let place = || Place {
            region: scored.region.clone().unwrap_or_default(),
            industry: scored.industry.clone().unwrap_or_default(),
        };
        if let Some((from, to)) = seen.change {
            let e = scored.evaluation(self.model.as_deref(), &self.cat);
            let uscc = u.to_string();
            self.changes
                .push(ColourChange::new(&uscc, t, from, to, &e, &self.cat));
            self.change_places.push(place());
        }
        if !seen.alerts.is_empty() {
            self.alert_places
                .extend(std::iter::repeat_n(place(), seen.alerts.len()));
            self.alerts.extend(seen.alerts);
        }
        if let Some(rule) = &self.pre_rule {
            let colour = self.published(u).unwrap_or(Colour::None);
            let now = rule.line(colour, scored.tax_paid_fen);
            self.pre_credit(u, t, now, colour);
        }
        self.current.insert(u, scored);
    }
}

impl Sink for Tracker {
    fn scored(&mut self, uscc: Uscc, scored: Arc<Scored>, time: Ts, diff: isize) {
        self.pending.push(time, (uscc, scored, diff));
    }
    fn dead(&mut self, dead: Dead, time: Ts, diff: isize) {
        self.pending_dead.push(time, (dead, diff));
    }
    fn status(&mut self, record: Record, uscc: Uscc, step: Step, time: Ts, diff: isize) {
        self.pending_status.push(time, (record, uscc, step, diff));
    }
    fn commitment(&mut self, uscc: Uscc, event: CommitmentEvent, time: Ts, diff: isize) {
        if self.commitment_rules.is_some() {
            self.pending_commitments.push(time, (uscc, event, diff));
        }
    }
    fn control(&mut self, control: Control, time: Ts) {
        match control {
            Control::Checkpoint => self.pending_marks.push(time, ()),
            Control::Resume(kept) => self.resume(time, *kept),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rules::event::Feed;
    use rules::reject::Reason;

    /// A lifecycle dead letter that leaves one enterprise and reaches another at the same
    /// time (the two updates may arrive in either order) is not new a second time.
    #[test]
    fn a_letter_moving_between_enterprises_is_reported_once() {
        let mut t = Tracker::new(Arc::new(Catalogue::embedded()), None);
        let d = Dead {
            id: (Feed::Pen, "E1".into()),
            version: 2,
            reason: Reason::UnknownTarget,
            at: 5,
            origin: None,
            digest: [0; 32],
        };
        t.dead(d.clone(), 5, 1);
        t.advance(6);
        assert_eq!(t.dead_new, vec![(5, d.clone())]);
        // Retracted by one enterprise, added by the other, at one time.
        t.dead(d.clone(), 10, -1);
        t.dead(d.clone(), 10, 1);
        t.advance(11);
        assert_eq!(t.dead_new, vec![(5, d.clone())], "reported again");
        assert_eq!(t.dead.get(&d), Some(&1));
    }

    /// Resumed from a checkpoint, a tracker takes the updates up to its time as the state
    /// they restore (nothing reported, nothing decided again) and tracks those after it.
    #[test]
    fn a_resumed_tracker_reports_only_what_follows_its_checkpoint() {
        let cat = Arc::new(Catalogue::embedded());
        let u = Uscc::new("91330802MA2A00000K").expect("packs");
        let letter = |id: &str, at| Dead {
            id: (Feed::Pen, id.into()),
            version: 1,
            reason: Reason::UnknownTarget,
            at,
            origin: None,
            digest: [0; 32],
        };
        let key = Record::Shared(crate::dataflow::tests::listed("P1", 1, 5).0);
        let kept = Kept {
            decided: vec![(u, "C1".into())],
            ..Kept::default()
        };
        let mut t = Tracker::new(cat, None)
            .with_commitments(rules::supervision::Supervision::embedded().commitments)
            .draining();
        t.control(Control::Resume(Box::new(kept.clone())), 10);
        // And a checkpoint after it.
        t.control(Control::Checkpoint, 12);
        // The dataflow's state at the checkpoint, all at its time.
        t.dead(letter("E1", 5), 10, 1);
        let active = Step {
            from: 5,
            status: Status::Active,
        };
        t.status(key.clone(), u, active, 10, 1);
        t.commitment(u, CommitmentEvent::Published("C1".into()), 10, 1);
        t.advance(11);
        assert!(t.dead_new.is_empty() && t.status_new.is_empty() && t.scheduled.is_empty());
        assert_eq!(t.dead.get(&letter("E1", 5)), Some(&1));
        assert_eq!(t.statuses().count(), 1);
        assert_eq!(t.kept(), kept);
        // After it: new letters and status changes are reported; a commitment decided
        // before the checkpoint is not decided again, a new one is.
        t.dead(letter("E2", 12), 12, 1);
        let expired = Step {
            from: 12,
            status: Status::Expired,
        };
        t.status(key.clone(), u, expired, 12, 1);
        t.commitment(u, CommitmentEvent::Published("C1".into()), 12, -1);
        t.commitment(u, CommitmentEvent::Published("C1".into()), 13, 1);
        t.commitment(u, CommitmentEvent::Published("C2".into()), 13, 1);
        t.advance(14);
        assert_eq!(t.dead_new, vec![(12, letter("E2", 12))]);
        // The checkpoint at 12 has the commitment withdrawn at 12 still decided, and C2 not
        // yet (decided at 13).
        assert_eq!(t.taken, vec![(12, kept)]);
        assert_eq!(t.status_new, vec![(12, key.key(), u, Status::Expired)]);
        let decided: Vec<&str> = t
            .scheduled
            .iter()
            .map(|s| s.commitment_id.as_str())
            .collect();
        assert_eq!(decided, vec!["C2"]);
    }
}
