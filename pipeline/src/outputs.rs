//! `steward run`'s colour changes, alerts and commitment decisions, written while the dataflow
//! runs (D116): each step's outputs, merged over this process's workers by
//! [`engine::replay::Steps`], are appended to their files, so that a run holds a step's
//! outputs, not its whole history's. The files are the same, byte for byte, as when the
//! outputs were collected and sorted at the end.

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

    /// Flushes the files; what was written, or the first error.
    pub fn finish(self) -> io::Result<Written> {
        let files = self.0.into_inner().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = files.error {
            return Err(e);
        }
        files.changes.finish()?;
        files.alerts.finish()?;
        files.tasks.finish()?;
        Ok(files.written)
    }
}
