//! Colours: each enterprise's current evaluation and monitoring state
//! ([`rules::monitor::Monitor`]: hysteresis, the published colour, alerts), every colour
//! change and alert with where the enterprise was, and the enterprises changed since the
//! outputs were last drained.

use std::collections::BTreeMap;
use std::sync::Arc;

use rules::catalogue::Catalogue;
use rules::model::Model;
use rules::monitor::{Alert, ColourChange, Monitor};
use rules::score::Colour;
use rules::time::Ts;
use rules::uscc::Uscc;

use crate::dataflow::Scored;
use crate::ordered::Lookup;

/// Where an enterprise is: region and industry codes (empty when unknown).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// Region code.
    pub region: String,
    /// Industry code.
    pub industry: String,
}

impl Place {
    /// Where an evaluation says the enterprise is.
    pub fn of(s: &Scored) -> Self {
        Place {
            region: s.region.as_deref().unwrap_or_default().to_owned(),
            industry: s.industry.as_deref().unwrap_or_default().to_owned(),
        }
    }
}

/// One worker's enterprises' evaluations and what the monitor made of them.
#[derive(Debug, Default)]
pub struct Colours {
    /// Each enterprise's evaluation at the last processed time (shared with the dataflow).
    pub current: Lookup<Uscc, Arc<Scored>>,
    /// Monitoring state per enterprise.
    pub(super) monitors: Lookup<Uscc, Monitor>,
    /// Every colour change so far, in time order.
    pub changes: Vec<ColourChange>,
    /// Every alert state change so far, in time order.
    pub alerts: Vec<Alert>,
    /// The region and industry of the enterprise at each change of `changes` (same index),
    /// as its evaluation at the change's time had them.
    pub change_places: Vec<Place>,
    /// The region and industry at each alert of `alerts` (same index).
    pub alert_places: Vec<Place>,
    /// Enterprises whose evaluation changed since this was last drained, with the time of
    /// their latest change (kept only when outputs are drained every step).
    pub touched: BTreeMap<Uscc, Ts>,
}

impl Colours {
    /// An enterprise's published colour, if it was ever evaluated.
    pub fn published(&self, uscc: Uscc) -> Option<Colour> {
        self.monitors.get(&uscc).and_then(|m| m.published)
    }

    /// Takes an enterprise's net evaluation updates at a time up to a checkpoint's: its
    /// evaluation then, which was reported before the checkpoint.
    pub(super) fn restored(&mut self, u: Uscc, values: Vec<(Arc<Scored>, isize)>) {
        match values.into_iter().find(|(_, r)| *r > 0) {
            Some((s, _)) => self.current.insert(u, s),
            None => self.current.remove(&u),
        };
    }

    /// Takes an enterprise's net evaluation updates at `t` through its monitor; returns its
    /// evaluation from then on (`None`: it left the collection).
    pub(super) fn evaluated(
        &mut self,
        u: Uscc,
        t: Ts,
        values: Vec<(Arc<Scored>, isize)>,
        cat: &Catalogue,
        model: Option<&Model>,
    ) -> Option<&Scored> {
        let added = values.into_iter().find(|(_, r)| *r > 0).map(|(s, _)| s);
        // Only a retraction at `t`: the enterprise left the collection.
        let Some(scored) = added else {
            self.current.remove(&u);
            return None;
        };
        let seen = self
            .monitors
            .entry(u)
            .or_default()
            .observe(&u, t, scored.as_ref(), cat);
        // Where the enterprise is, and its full evaluation (for the explanation), only when
        // something is reported.
        let place = || Place::of(&scored);
        if let Some((from, to)) = seen.change {
            let e = scored.evaluation(model, cat);
            let uscc = u.to_string();
            self.changes
                .push(ColourChange::new(&uscc, t, from, to, &e, cat));
            self.change_places.push(place());
        }
        if !seen.alerts.is_empty() {
            self.alert_places
                .extend(std::iter::repeat_n(place(), seen.alerts.len()));
            self.alerts.extend(seen.alerts);
        }
        Some(self.current.entry(u).insert_entry(scored).into_mut())
    }
}
