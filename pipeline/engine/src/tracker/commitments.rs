//! The commitment loop (D46): each commitment scheduled once, from the published colour
//! at the first processed time its `PUBLISHED` is in effect; each verification result
//! reported the first time it appears.

use std::collections::BTreeSet;

use rules::fact::{Check, CommitmentEvent};
use rules::score::Colour;
use rules::supervision::{CommitmentRules, Scheduled, Verification};
use rules::time::Ts;
use rules::uscc::Uscc;
use rules::CompactString;

use crate::ordered::Pending;

/// One worker's enterprises' commitment loop, tracked when rules are given.
#[derive(Debug, Default)]
pub struct Commitments {
    /// Commitment event updates not yet passed by the frontier.
    pending: Pending<(Uscc, CommitmentEvent, isize)>,
    /// The scheduling rules; nothing is tracked without them.
    pub(super) rules: Option<CommitmentRules>,
    /// `(uscc, commitment_id)` already scheduled: a commitment is decided once.
    pub(super) decided: BTreeSet<(Uscc, CompactString)>,
    /// Verification results already reported.
    pub(super) reported: BTreeSet<(Uscc, Check)>,
    /// Every scheduling decision so far, in time order (live outputs drain it each step).
    pub scheduled: Vec<Scheduled>,
    /// Every verification result so far, in time order (live outputs drain it each step).
    pub checks: Vec<Verification>,
}

impl Commitments {
    /// An update at `time`, applied once the frontier passes it (kept only when tracked).
    pub(super) fn push(&mut self, uscc: Uscc, event: CommitmentEvent, time: Ts, diff: isize) {
        if self.rules.is_some() {
            self.pending.push(time, (uscc, event, diff));
        }
    }

    /// The updates at times before `frontier` (not sorted by time: the caller sorts them).
    pub(super) fn ready(&mut self, frontier: Ts) -> Vec<(Ts, (Uscc, CommitmentEvent, isize))> {
        self.pending.before(Some(frontier))
    }

    /// Takes an enterprise's net commitment event updates at `t` (sorted), with its
    /// published colour after that time's evaluation.
    pub(super) fn at(
        &mut self,
        u: Uscc,
        t: Ts,
        events: Vec<(CommitmentEvent, isize)>,
        colour: Colour,
    ) {
        let Some(rules) = &self.rules else {
            return;
        };
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
}
