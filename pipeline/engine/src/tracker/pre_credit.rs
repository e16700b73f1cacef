//! Pre-credit changes (D44): each enterprise's pre-credit status from its published colour
//! and tax paid, and every change of it.

use rules::score::Colour;
use rules::supervision::{PreCredit, PreCreditRule};
use rules::time::Ts;
use rules::uscc::Uscc;
use serde::{Deserialize, Serialize};

use crate::ordered::Lookup;

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

/// One worker's enterprises' pre-credit statuses, tracked when a rule is given.
#[derive(Debug, Default)]
pub struct PreCredits {
    /// The rule; nothing is tracked without one.
    pub(super) rule: Option<PreCreditRule>,
    /// Each enterprise's status at the last processed time (none listed: no line).
    pub(super) current: Lookup<Uscc, PreCredit>,
    /// Every change so far, in time order (live outputs drain it each step).
    pub changes: Vec<PreCreditChange>,
}

impl PreCredits {
    /// An enterprise evaluated at `t`: with its published colour and tax paid then, or
    /// `None` when it left (no line). A status that differs from before is a change.
    pub(super) fn evaluated(&mut self, u: Uscc, t: Ts, now: Option<(Colour, i64)>) {
        let Some(rule) = &self.rule else {
            return;
        };
        let (now, colour) = match now {
            Some((colour, tax_paid_fen)) => (rule.line(colour, tax_paid_fen), colour),
            None => (PreCredit::None, Colour::None),
        };
        let before = self.current.get(&u).copied().unwrap_or(PreCredit::None);
        if before == now {
            return;
        }
        self.changes.push(PreCreditChange {
            uscc: u.to_string(),
            as_of: t,
            colour,
            from: before,
            to: now,
        });
        if now == PreCredit::None {
            self.current.remove(&u);
        } else {
            self.current.insert(u, now);
        }
    }
}
