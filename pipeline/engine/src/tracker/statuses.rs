//! Record statuses (D11): each record's status steps in effect, its status (the latest),
//! and the status changes since the outputs were last drained.

use rules::status::{Record, RecordKey, Status, Step};
use rules::time::Ts;
use rules::uscc::Uscc;

use super::restoring;
use crate::ordered::{add, Lookup, Pending};

/// One record's status steps in effect, each with the enterprise it is filed under
/// (sorted, counts non-zero).
type Steps = Vec<((Uscc, Step), isize)>;

/// A record's status: its latest step in effect, with the enterprise it is filed under
/// (of equal latest steps, the one under the greatest USCC).
fn latest(steps: &Steps) -> Option<(Uscc, Status)> {
    steps
        .iter()
        .filter(|(_, r)| *r > 0)
        .max_by_key(|((_, s), _)| *s)
        .map(|((u, s), _)| (*u, s.status))
}

/// The statuses of the records one worker takes (the dataflow sends every step of a
/// record to one worker).
#[derive(Debug, Default)]
pub struct Statuses {
    /// Step updates not yet passed by the frontier.
    pending: Pending<(Record, Uscc, Step, isize)>,
    /// The steps in effect per record.
    steps: Lookup<Record, Steps>,
    /// Status changes since this was last drained: `(time, record, uscc, new status)`.
    pub new: Vec<(Ts, RecordKey, Uscc, Status)>,
}

impl Statuses {
    /// A step update at `time`, applied once the frontier passes it.
    pub(super) fn push(&mut self, record: Record, uscc: Uscc, step: Step, time: Ts, diff: isize) {
        self.pending.push(time, (record, uscc, step, diff));
    }

    /// Applies the step updates at times before `frontier`, per time and record in time
    /// order; when a record's status (or its enterprise) changes, outputs `draining` every
    /// step get the new one in `new` (not while restoring a checkpoint).
    pub(super) fn apply(&mut self, frontier: Ts, resumed: Option<Ts>, draining: bool) {
        let mut ready = self.pending.before(Some(frontier));
        ready.sort_unstable_by(|(t, (k, ..)), (u, (l, ..))| (t, k).cmp(&(u, l)));
        let mut ready = ready
            .into_iter()
            .map(|(t, (k, u, s, r))| (t, k, u, s, r))
            .peekable();
        while let Some((t, k, u, step, r)) = ready.next() {
            // The key is cloned only when the record is new.
            let steps = match self.steps.get_mut(&k) {
                Some(steps) => steps,
                None => self.steps.entry(k.clone()).or_default(),
            };
            let report = draining && !restoring(resumed, t);
            let before = if report { latest(steps) } else { None };
            add(steps, (u, step), r);
            while let Some((_, _, u, step, r)) = ready.next_if(|x| x.0 == t && x.1 == k) {
                add(steps, (u, step), r);
            }
            if report {
                if let Some((u, st)) = latest(steps).filter(|x| before != Some(*x)) {
                    self.new.push((t, k.key(), u, st));
                }
            }
            if steps.is_empty() {
                self.steps.remove(&k);
            }
        }
    }

    /// Every record's current status, with the enterprise it is filed under.
    pub fn current(&self) -> impl Iterator<Item = (RecordKey, (Uscc, Status))> + '_ {
        self.steps
            .iter()
            .filter_map(|(k, steps)| latest(steps).map(|x| (k.key(), x)))
    }
}
