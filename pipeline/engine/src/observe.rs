//! Fills the Prometheus metrics ([`connectors::metrics::Metrics`]) from a replay: colour
//! changes, alerts, the watermark and the change latency while the dataflow runs, and the
//! colour counts, applied records, lifecycle dead letters and firing alerts ([`Firing`]) at
//! its end.
//!
//! Latency in a replay: every record is read before the dataflow starts, so the time from a
//! record's ingest to its change is mostly the length of the read phase and says nothing of
//! the pipeline. A replay observes instead, for each change, the processing delay from the
//! start of the dataflow run to the end of the step that computed the change.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use connectors::metrics::Metrics;
use rules::event::Feed;
use rules::monitor::{Alert, AlertState};
use rules::score::Colour;
use rules::time::Ts;

use crate::replay::{Outputs, Replayed};
use crate::tracker::Tracker;

/// File mode reads each feed's file as partition 0 of the feed's default topic (as its dead
/// letters say): once read, nothing of it is left, so its consumer lag is 0.
pub fn files_read(metrics: &Metrics) {
    for feed in Feed::ALL {
        metrics
            .consumer_lag
            .with_label_values(&[&feed.default_topic(), "0"])
            .set(0);
    }
}

/// An `on_step` callback for [`crate::replay::replay`]: counts each worker's colour changes
/// and alerts of the step, observes their processing delay since this call, sets the
/// enterprises by colour (summed over workers) and the watermark to the step's logical time.
pub fn on_step(metrics: Metrics) -> impl Fn(usize, Ts, &Tracker, &Outputs) + Send + Sync + 'static {
    let started = Instant::now();
    // Each worker's enterprises by published colour at its last step.
    let seen: Mutex<HashMap<usize, BTreeMap<Colour, i64>>> = Mutex::default();
    move |worker, t, tracker, outputs| {
        let mut colours = BTreeMap::new();
        for uscc in tracker.colours.current.keys() {
            *colours
                .entry(tracker.published(*uscc).unwrap_or(Colour::None))
                .or_default() += 1;
        }
        let delay = started.elapsed().as_secs_f64();
        for c in &outputs.changes {
            metrics.colour_change(c);
            metrics.colour_change_latency.observe(delay);
        }
        for a in &outputs.alerts {
            metrics.alert(a);
        }
        let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.insert(worker, colours);
        for c in Colour::ALL {
            let n = seen.values().filter_map(|w| w.get(&c)).sum();
            metrics.enterprises.with_label_values(&[c.as_str()]).set(n);
        }
        if worker == 0 {
            metrics.watermark.set(t);
        }
    }
}

/// Which alerts fire at the end of a replay, from its alert state changes taken in time order:
/// an alert fires until the same enterprise's same rule resolves it; `COLOUR_WORSENED` never
/// resolves: it is an event, not a state.
#[derive(Debug, Default)]
pub struct Firing {
    /// The last state of each enterprise's rule.
    last: HashMap<(String, String), AlertState>,
}

impl Firing {
    /// Takes the next alert state changes, in time order.
    pub fn saw<'a>(&mut self, alerts: impl IntoIterator<Item = &'a Alert>) {
        for a in alerts {
            if a.rule != "COLOUR_WORSENED" {
                self.last.insert((a.uscc.clone(), a.rule.clone()), a.state);
            }
        }
    }

    /// How many enterprises each rule fires for.
    pub fn per_rule(&self) -> BTreeMap<&str, i64> {
        let mut firing: BTreeMap<&str, i64> = BTreeMap::new();
        for ((_, rule), state) in &self.last {
            *firing.entry(rule).or_default() += i64::from(*state == AlertState::Firing);
        }
        firing
    }
}

/// Sets what is known only at the end of a replay: enterprises by colour, alerts firing
/// per rule, and the lifecycle dead letters (withdrawn from the records applied, D52).
pub fn results(metrics: &Metrics, out: &Replayed, firing: &Firing) {
    let mut colours: BTreeMap<Colour, i64> = BTreeMap::new();
    for (_, published) in out.states.values() {
        *colours
            .entry(published.unwrap_or(Colour::None))
            .or_default() += 1;
    }
    for c in Colour::ALL {
        metrics
            .enterprises
            .with_label_values(&[c.as_str()])
            .set(colours.get(&c).copied().unwrap_or(0));
    }

    for (rule, n) in firing.per_rule() {
        metrics.alerts_firing.with_label_values(&[rule]).set(n);
    }

    // Ingest counted each record applied when it was admitted.
    for d in &out.dead {
        metrics.withdrawn(d.id.0, Some(d.reason));
    }
}
