//! The one sequential step: a worker's updates from the dataflow, taken in logical-time
//! order once the dataflow's frontier has passed them. Evaluations drive the monitor
//! (`colours.rs`: hysteresis, colour changes and alerts); then the pre-credit changes
//! (`pre_credit.rs`, D44) and the commitment loop's decisions (`commitments.rs`, D46),
//! which read the published colour at that time. Lifecycle dead letters (`letters.rs`) and
//! record statuses (`statuses.rs`, D11) are tracked beside them. This module orders the
//! parts and keeps what a checkpoint needs of them (D68).
//!
//! The dataflow partitions enterprises by USCC, so each worker tracks the enterprises it
//! owns, and record status steps by record, so each worker tracks those records' statuses;
//! no state is shared between workers.

mod colours;
mod commitments;
mod letters;
mod pre_credit;
mod statuses;

use std::sync::Arc;

use differential_dataflow::consolidation::consolidate;
use rules::catalogue::Catalogue;
use rules::fact::{Check, CommitmentEvent};
use rules::lifecycle::Dead;
use rules::model::Model;
use rules::monitor::Monitor;
use rules::score::Colour;
use rules::status::Step;
use rules::supervision::{CommitmentRules, PreCreditRule};
use rules::time::Ts;
use rules::uscc::Uscc;
use rules::CompactString;
use serde::{Deserialize, Serialize};

pub use colours::{Colours, Place};
pub use commitments::Commitments;
pub use letters::Letters;
pub use pre_credit::{KeptPreCredit, PreCreditChange, PreCredits};
pub use statuses::Statuses;

use crate::dataflow::{Control, Routed, Scored, Sink};
use crate::ordered::{Lookup, Pending};

/// One worker's tracked outputs, in parts.
#[derive(Debug)]
pub struct Tracker {
    cat: Arc<Catalogue>,
    model: Option<Arc<Model>>,
    /// Evaluation updates not yet passed by the frontier: `(uscc, scored, diff)`. Kept
    /// here, not in `colours`, because `apply` takes them in one time order with the
    /// commitment events.
    pending: Pending<(Uscc, Arc<Scored>, isize)>,
    /// Evaluations, the monitor's colours and alerts.
    pub colours: Colours,
    /// Lifecycle dead letters.
    pub letters: Letters,
    /// Record statuses.
    pub statuses: Statuses,
    /// Pre-credit changes (tracked with a rule).
    pub pre_credit: PreCredits,
    /// The commitment loop (tracked with rules).
    pub commitments: Commitments,
    /// Resumed from a checkpoint at this time: updates up to it restore the dataflow's
    /// state and report nothing (D68).
    resumed: Option<Ts>,
    /// Whether outputs are drained every step (live): status changes go to `statuses.new`,
    /// and changed enterprises to `colours.touched`.
    draining: bool,
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
    pub decided: Vec<(Uscc, CompactString)>,
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

/// Whether updates at `t` restore the state of a checkpoint at `resumed` instead of being
/// tracked.
fn restoring(resumed: Option<Ts>, t: Ts) -> bool {
    resumed.is_some_and(|at| t <= at)
}

impl Tracker {
    /// An empty tracker; `model` is the one the dataflow scores with.
    pub fn new(cat: Arc<Catalogue>, model: Option<Arc<Model>>) -> Self {
        Tracker {
            cat,
            model,
            pending: Pending::default(),
            colours: Colours::default(),
            letters: Letters::default(),
            statuses: Statuses::default(),
            pre_credit: PreCredits::default(),
            commitments: Commitments::default(),
            resumed: None,
            draining: false,
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
            monitors: sorted(&self.colours.monitors),
            pre_credit: sorted(&self.pre_credit.current)
                .into_iter()
                .map(|(u, p)| (u, p.into()))
                .collect(),
            decided: self.commitments.decided.iter().cloned().collect(),
            reported: self.commitments.reported.iter().cloned().collect(),
        }
    }

    /// Resumes from a checkpoint at `at` holding `kept`: the dataflow then gives back its
    /// state at `at` (every record up to `at` entered at `at`), which this tracker takes as
    /// its current state without reporting it; later updates are tracked as before (D68).
    fn resume(&mut self, at: Ts, kept: Kept) {
        self.colours.monitors = kept.monitors.into_iter().collect();
        self.pre_credit.current = kept
            .pre_credit
            .into_iter()
            .map(|(u, p)| (u, p.into()))
            .collect();
        self.commitments.decided = kept.decided.into_iter().collect();
        self.commitments.reported = kept.reported.into_iter().collect();
        self.resumed = Some(at);
    }

    /// For outputs that drain the tracker every step: reports each record status change in
    /// `statuses.new`, and each changed enterprise in `colours.touched`.
    pub fn draining(mut self) -> Self {
        self.draining = true;
        self
    }

    /// Tracks the commitment loop with `rules`: each commitment is scheduled at the first
    /// processed time its `PUBLISHED` is in effect, from the published colour after that
    /// time's evaluation; each verification result is reported the first time it appears.
    pub fn with_commitments(mut self, rules: CommitmentRules) -> Self {
        self.commitments.rules = Some(rules);
        self
    }

    /// Tracks pre-credit changes with `rule`: one at every processed time at which an
    /// enterprise's status (from its published colour and tax paid) differs from before.
    pub fn with_pre_credit(mut self, rule: PreCreditRule) -> Self {
        self.pre_credit.rule = Some(rule);
        self
    }

    /// An enterprise's published colour, if it was ever evaluated.
    pub fn published(&self, uscc: Uscc) -> Option<Colour> {
        self.colours.published(uscc)
    }

    /// Applies every pending update at a time before `frontier`, in time order, keeping the
    /// state at each checkpoint time on the way in `taken`.
    pub fn advance(&mut self, frontier: Ts) {
        let mut marks: Vec<Ts> = self
            .pending_marks
            .before(Some(frontier))
            .into_iter()
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
        self.letters.apply(frontier, self.resumed);
        self.statuses.apply(frontier, self.resumed, self.draining);

        // Evaluation and commitment updates per (time, uscc), in that order.
        let mut ready: Vec<(Ts, Uscc, Update, isize)> = self
            .pending
            .before(Some(frontier))
            .into_iter()
            .map(|(t, (u, s, r))| (t, u, Update::Scored(s), r))
            .chain(
                self.commitments
                    .ready(frontier)
                    .into_iter()
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
                self.colours.restored(u, values);
                continue;
            }
            // The pre-credit line and the commitment loop read the published colour after
            // this time's evaluation.
            let tax_paid = (!values.is_empty()).then(|| {
                if self.draining {
                    self.colours.touched.insert(u, t);
                }
                self.colours
                    .evaluated(u, t, values, &self.cat, self.model.as_deref())
                    .map(|s| s.tax_paid_fen)
            });
            let colour = self.published(u).unwrap_or(Colour::None);
            if let Some(tax_paid) = tax_paid {
                self.pre_credit
                    .evaluated(u, t, tax_paid.map(|fen| (colour, fen)));
            }
            self.commitments.at(u, t, commitments, colour);
        }
    }
}

impl Sink for Tracker {
    fn scored(&mut self, uscc: Uscc, scored: Arc<Scored>, time: Ts, diff: isize) {
        self.pending.push(time, (uscc, scored, diff));
    }
    fn dead(&mut self, dead: Dead, time: Ts, diff: isize) {
        self.letters.push(dead, time, diff);
    }
    fn status(&mut self, record: Routed, uscc: Uscc, step: Step, time: Ts, diff: isize) {
        self.statuses.push(record, uscc, step, time, diff);
    }
    fn commitment(&mut self, uscc: Uscc, event: CommitmentEvent, time: Ts, diff: isize) {
        self.commitments.push(uscc, event, time, diff);
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
    use rules::status::Status;

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
        assert_eq!(t.letters.new, vec![(5, d.clone())]);
        // Retracted by one enterprise, added by the other, at one time.
        t.dead(d.clone(), 10, -1);
        t.dead(d.clone(), 10, 1);
        t.advance(11);
        assert_eq!(t.letters.new, vec![(5, d.clone())], "reported again");
        assert_eq!(t.letters.in_effect.get(&d), Some(&1));
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
        let key = Routed::new(rules::status::Record::Shared(
            crate::dataflow::tests::listed("P1", 1, 5).0,
        ));
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
        assert!(t.letters.new.is_empty() && t.statuses.new.is_empty());
        assert!(t.commitments.scheduled.is_empty());
        assert_eq!(t.letters.in_effect.get(&letter("E1", 5)), Some(&1));
        assert_eq!(t.statuses.current().count(), 1);
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
        assert_eq!(t.letters.new, vec![(12, letter("E2", 12))]);
        // The checkpoint at 12 has the commitment withdrawn at 12 still decided, and C2 not
        // yet (decided at 13).
        assert_eq!(t.taken, vec![(12, kept)]);
        assert_eq!(
            t.statuses.new,
            vec![(12, key.record.key(), u, Status::Expired)]
        );
        let decided: Vec<&str> = t
            .commitments
            .scheduled
            .iter()
            .map(|s| s.commitment_id.as_str())
            .collect();
        assert_eq!(decided, vec!["C2"]);
    }
}
