//! Where a replay's time goes, by operator: timely's schedule events summed per operator
//! name, as exclusive time (an operator's time minus the time of the operators it ran
//! inside it), over every worker. `dataflow_bench --profile` prints it (`BENCHMARKS.md`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use timely::logging::{StartStop, TimelyEvent, TimelyEventBuilder};

/// Exclusive scheduled time per operator name, summed over workers (shared by them).
#[derive(Debug, Clone, Default)]
pub struct OperatorTimes(Arc<Mutex<BTreeMap<String, Duration>>>);

impl OperatorTimes {
    /// Starts summing `worker`'s schedule events into these times.
    pub fn install(&self, worker: &timely::worker::Worker) {
        let Some(mut registry) = worker.log_register() else {
            return;
        };
        let totals = self.0.clone();
        let mut names: BTreeMap<usize, String> = BTreeMap::new();
        // Operators being run: (id, start, time spent in operators run inside it).
        let mut running: Vec<(usize, Duration, Duration)> = Vec::new();
        let mut local: BTreeMap<usize, Duration> = BTreeMap::new();
        registry.insert::<TimelyEventBuilder, _>("timely", move |_, data| {
            let Some(data) = data else {
                // A flush: hand this worker's sums over.
                let mut totals = totals.lock().unwrap_or_else(PoisonError::into_inner);
                for (id, d) in std::mem::take(&mut local) {
                    let name = names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"));
                    *totals.entry(name).or_default() += d;
                }
                return;
            };
            for (at, event) in data.drain(..) {
                match event {
                    TimelyEvent::Operates(o) => {
                        names.insert(o.id, o.name);
                    }
                    TimelyEvent::Schedule(s) => match s.start_stop {
                        StartStop::Start => running.push((s.id, at, Duration::ZERO)),
                        StartStop::Stop => {
                            let Some((id, start, inner)) = running.pop() else {
                                continue;
                            };
                            let spent = at.saturating_sub(start);
                            *local.entry(id).or_default() += spent.saturating_sub(inner);
                            if let Some(parent) = running.last_mut() {
                                parent.2 += spent;
                            }
                        }
                    },
                    _ => {}
                }
            }
        });
    }

    /// The operators by exclusive time, longest first, with their share of the total.
    pub fn report(&self) -> Vec<(String, Duration, f64)> {
        let totals = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let all: Duration = totals.values().sum();
        let mut rows: Vec<(String, Duration, f64)> = totals
            .iter()
            .map(|(n, d)| (n.clone(), *d, d.as_secs_f64() / all.as_secs_f64().max(1e-9)))
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.1));
        rows
    }
}
