//! Lifecycle dead letters: those in effect, and those that came into effect since the
//! outputs were last drained.

use std::collections::BTreeMap;

use differential_dataflow::consolidation::consolidate;
use rules::lifecycle::Dead;
use rules::time::Ts;

use super::restoring;
use crate::ordered::Pending;

/// One worker's lifecycle dead letters (those of the records it takes).
#[derive(Debug, Default)]
pub struct Letters {
    /// Updates not yet passed by the frontier.
    pending: Pending<(Dead, isize)>,
    /// The letters in effect, with their multiplicity.
    pub in_effect: BTreeMap<Dead, isize>,
    /// Letters that came into effect since this was last drained, with the dataflow time
    /// at which they did: a live sink orders outputs by that time, which is never before
    /// the frontier it has already made durable.
    pub new: Vec<(Ts, Dead)>,
}

impl Letters {
    /// An update at `time`, applied once the frontier passes it.
    pub(super) fn push(&mut self, dead: Dead, time: Ts, diff: isize) {
        self.pending.push(time, (dead, diff));
    }

    /// Applies the updates at times before `frontier`. Updates are netted per time and
    /// letter first: a letter can leave one enterprise and reach another at the same time
    /// (a version moved the record), in either order.
    pub(super) fn apply(&mut self, frontier: Ts, resumed: Option<Ts>) {
        let mut ready: Vec<((Ts, Dead), isize)> = self
            .pending
            .before(Some(frontier))
            .into_iter()
            .map(|(t, (d, r))| ((t, d), r))
            .collect();
        consolidate(&mut ready);
        for ((t, d), r) in ready {
            let n = self.in_effect.entry(d.clone()).or_default();
            if *n <= 0 && *n + r > 0 && !restoring(resumed, t) {
                self.new.push((t, d.clone()));
            }
            *n += r;
            if *n == 0 {
                self.in_effect.remove(&d);
            }
        }
    }
}
