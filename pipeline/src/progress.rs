//! Progress of `steward run`'s dataflow phase (issue 20 item 3): a bar with records/s and an
//! ETA when standard error is a terminal, and a log line every [`LOG_EVERY`] otherwise, so
//! that a long replay is never silent.
//!
//! Progress is counted in records: a step that has run the dataflow to logical time `t` has
//! taken in every record with `v ≤ t` (the replay inserts records in `v` order).

use std::io::IsTerminal;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rules::time::Ts;

/// How often a log line reports progress when standard error is not a terminal.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// The dataflow phase's progress over a log whose visibility times are `vs`.
#[derive(Debug)]
pub struct Progress {
    /// Visibility times, sorted.
    vs: Vec<Ts>,
    /// The bar on a terminal; `None` logs lines instead.
    bar: Option<ProgressBar>,
    started: Instant,
    /// When the last line was logged.
    logged: Mutex<Instant>,
}

impl Progress {
    /// Progress over records with visibility times `vs` (in any order), shown as a bar if
    /// standard error is a terminal.
    pub fn new(mut vs: Vec<Ts>) -> Self {
        vs.sort_unstable();
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(vs.len() as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg:>12} [{bar:40}] {human_pos}/{human_len} {per_sec} ({eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message("dataflow");
            bar
        });
        let now = Instant::now();
        Progress {
            vs,
            bar,
            started: now,
            logged: Mutex::new(now),
        }
    }

    /// Records taken in once the dataflow has run to `t`.
    pub fn done(&self, t: Ts) -> usize {
        self.vs.partition_point(|v| *v <= t)
    }

    /// Reports that the dataflow has run to `t`.
    pub fn at(&self, t: Ts) {
        let done = self.done(t);
        match &self.bar {
            Some(bar) => bar.set_position(done as u64),
            None => {
                let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
                if logged.elapsed() >= LOG_EVERY {
                    *logged = Instant::now();
                    tracing::info!("{}", line(done, self.vs.len(), self.started.elapsed()));
                }
            }
        }
    }

    /// Clears the bar (the run's summary gives the totals).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A progress line: `done` of `total` records after `elapsed`, with the rate and, while
/// records remain, the time left at that rate.
pub fn line(done: usize, total: usize, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let percent = if total > 0 {
        100.0 * done as f64 / total as f64
    } else {
        100.0
    };
    let mut text = format!(
        "dataflow: {done} of {total} records ({percent:.0} %), {rate:.0} records/s, {secs:.1} s"
    );
    if done < total && rate > 0.0 {
        let left = (total - done) as f64 / rate;
        text.push_str(&format!(", about {left:.0} s left"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_records_visible_at_each_time() {
        let p = Progress::new(vec![30, 10, 20, 20, 40]);
        assert_eq!(p.done(Ts::MIN), 0);
        assert_eq!(p.done(9), 0);
        assert_eq!(p.done(10), 1);
        assert_eq!(p.done(20), 3);
        assert_eq!(p.done(39), 4);
        assert_eq!(p.done(Ts::MAX), 5);
    }

    #[test]
    fn a_line_gives_the_rate_and_the_time_left() {
        assert_eq!(
            line(250, 1000, Duration::from_secs(5)),
            "dataflow: 250 of 1000 records (25 %), 50 records/s, 5.0 s, about 15 s left"
        );
        assert_eq!(
            line(1000, 1000, Duration::from_secs(4)),
            "dataflow: 1000 of 1000 records (100 %), 250 records/s, 4.0 s"
        );
        assert_eq!(
            line(0, 0, Duration::ZERO),
            "dataflow: 0 of 0 records (100 %), 0 records/s, 0.0 s"
        );
    }
}
