//! `steward run`'s colour changes, alerts and commitment decisions, written while the dataflow
//! runs (D116): each step's outputs, merged over this process's workers by
//! [`engine::replay::Steps`], are appended to their files, so that a run holds a step's
//! outputs, not its whole history's. The files are the same, byte for byte, as when the
//! outputs were collected and sorted at the end. [`write_jsonl`] writes a whole file at once
//! (`state.jsonl`).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use engine::observe::Firing;
use engine::replay::{Outputs, Steps};
use rules::contract::Versioned;

use crate::messages::TaskDecision;

/// One JSON-lines output file.
#[derive(Debug)]
struct Lines {
    path: PathBuf,
    file: BufWriter<File>,
}

impl Lines {
    fn create(path: PathBuf) -> io::Result<Self> {
        let file = File::create(&path).map_err(|e| named(&path, "creating", e))?;
        Ok(Lines {
            file: BufWriter::new(file),
            path,
        })
    }

    /// Appends each of `rows` as a line.
    fn write<T: serde::Serialize>(&mut self, rows: impl IntoIterator<Item = T>) -> io::Result<()> {
        let write = || -> io::Result<()> {
            for row in rows {
                serde_json::to_writer(&mut self.file, &row)?;
                self.file.write_all(b"\n")?;
            }
            Ok(())
        };
        write().map_err(|e| named(&self.path, "writing", e))
    }

    fn finish(mut self) -> io::Result<()> {
        self.file
            .flush()
            .map_err(|e| named(&self.path, "writing", e))
    }
}

/// Writes `rows` to a new file at `path`, one JSON object per line.
pub fn write_jsonl<T: serde::Serialize>(
    path: PathBuf,
    rows: impl IntoIterator<Item = T>,
) -> io::Result<()> {
    let mut lines = Lines::create(path)?;
    lines.write(rows)?;
    lines.finish()
}

/// `e` with what was being done to which file.
fn named(path: &Path, doing: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{doing} {}: {e}", path.display()))
}

/// What was written, and the alerts firing at the end.
#[derive(Debug, Default)]
pub struct Written {
    /// Colour changes.
    pub changes: u64,
    /// Alert state changes.
    pub alerts: u64,
    /// Commitments scheduled.
    pub scheduled: u64,
    /// Commitments scheduled with an inspection task.
    pub tasks: u64,
    /// The alerts firing after the last step.
    pub firing: Firing,
}

/// The files and what the steps merged so far wrote to them.
#[derive(Debug)]
struct Files {
    steps: Steps,
    changes: Lines,
    alerts: Lines,
    tasks: Lines,
    written: Written,
    /// The first error; nothing is written after it.
    error: Option<io::Error>,
}

impl Files {
    fn write(&mut self, outputs: Outputs) -> io::Result<()> {
        self.written.firing.saw(&outputs.alerts);
        self.written.changes += outputs.changes.len() as u64;
        self.written.alerts += outputs.alerts.len() as u64;
        self.written.scheduled += outputs.scheduled.len() as u64;
        self.written.tasks += outputs.scheduled.iter().filter(|s| s.task).count() as u64;
        self.changes
            .write(outputs.changes.iter().map(Versioned::new))?;
        self.alerts
            .write(outputs.alerts.iter().map(Versioned::new))?;
        // Without the services the loop does not close: the CMT.SCHEDULED records are not
        // read back and no inspector result returns, so there are no checks to write (D46).
        self.tasks.write(
            outputs
                .scheduled
                .iter()
                .map(|s| Versioned::new(TaskDecision::from(s))),
        )
    }
}

/// `colour_changes.jsonl`, `alerts.jsonl` and `commitment_tasks.jsonl`, written step by step
/// from any of this process's workers.
#[derive(Debug)]
pub struct Streamed(Mutex<Files>);

impl Streamed {
    /// Creates the files in `dir`, for the outputs of `workers` workers.
    pub fn create(dir: &Path, workers: usize) -> io::Result<Self> {
        Ok(Streamed(Mutex::new(Files {
            steps: Steps::new(workers),
            changes: Lines::create(dir.join("colour_changes.jsonl"))?,
            alerts: Lines::create(dir.join("alerts.jsonl"))?,
            tasks: Lines::create(dir.join("commitment_tasks.jsonl"))?,
            written: Written::default(),
            error: None,
        })))
    }

    /// Takes `worker`'s outputs of its next step, and writes the step once every worker has
    /// handed it in. An error is kept for [`Streamed::finish`].
    pub fn take(&self, worker: usize, outputs: Outputs) {
        let mut files = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if files.error.is_some() {
            return;
        }
        let written = match files.steps.take(worker, outputs) {
            Ok(Some(step)) => files.write(step),
            Ok(None) => Ok(()),
            Err(e) => Err(io::Error::other(e)),
        };
        if let Err(e) = written {
            files.error = Some(e);
        }
    }

    /// Flushes the files; what was written, or the first error (a step some worker did not
    /// hand in is one).
    pub fn finish(self) -> io::Result<Written> {
        let files = self.0.into_inner().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = files.error {
            return Err(e);
        }
        files.steps.finish().map_err(io::Error::other)?;
        files.changes.finish()?;
        files.alerts.finish()?;
        files.tasks.finish()?;
        Ok(files.written)
    }
}

#[cfg(test)]
mod tests {
    use rules::monitor::{Alert, AlertState, Severity};
    use rules::time::Ts;

    use super::*;

    fn alerts(alerts: &[(&str, Ts, AlertState)]) -> Outputs {
        let alert = |&(uscc, as_of, state): &(&str, Ts, AlertState)| Alert {
            alert_id: format!("{uscc}-{as_of}"),
            uscc: uscc.to_owned(),
            rule: "R1".to_owned(),
            severity: Severity::Warning,
            state,
            as_of,
            detail: "x".repeat(100),
        };
        Outputs {
            alerts: alerts.iter().map(alert).collect(),
            ..Outputs::default()
        }
    }

    #[test]
    fn steps_are_written_merged_over_workers_and_counted() {
        use AlertState::{Firing, Resolved};
        let dir = tempfile::tempdir().expect("a temporary directory");
        let streamed = Streamed::create(dir.path(), 2).expect("files created");
        streamed.take(1, alerts(&[("B", 2, Firing)]));
        streamed.take(0, alerts(&[("A", 1, Firing), ("C", 2, Firing)]));
        streamed.take(0, alerts(&[("A", 3, Resolved)]));
        streamed.take(1, Outputs::default());
        let written = streamed.finish().expect("written");
        let text = std::fs::read_to_string(dir.path().join("alerts.jsonl")).expect("read");
        let ids: Vec<String> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
                v["alert_id"].as_str().expect("an id").to_owned()
            })
            .collect();
        assert_eq!(ids, ["A-1", "B-2", "C-2", "A-3"]);
        assert_eq!(
            (written.alerts, written.changes, written.scheduled),
            (4, 0, 0)
        );
        // A resolved its alert; B and C still fire.
        let firing = written.firing.per_rule();
        assert_eq!(firing.into_iter().collect::<Vec<_>>(), [("R1", 2)]);
    }

    #[test]
    fn a_full_disk_is_an_error_naming_the_file() {
        let full = Path::new("/dev/full");
        assert!(full.exists(), "Linux has /dev/full");
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::os::unix::fs::symlink(full, dir.path().join("alerts.jsonl")).expect("a link");
        let streamed = Streamed::create(dir.path(), 1).expect("files created");
        let many: Vec<_> = (0..200).map(|t| ("A", t, AlertState::Firing)).collect();
        streamed.take(0, alerts(&many));
        // Nothing more is written after the error, and it is what the run ends with.
        streamed.take(0, alerts(&[("A", 500, AlertState::Firing)]));
        let err = streamed.finish().expect_err("the disk is full");
        let message = err.to_string();
        assert!(
            message.contains("writing ") && message.contains("alerts.jsonl"),
            "{message}"
        );
    }
}
