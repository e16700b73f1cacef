//! Checkpoints (D68): what every worker's tracker keeps from its past ([`Kept`]) at one
//! logical time, so that a restart feeds the records up to that time into the dataflow at
//! once (one step, instead of one per time) and tracks only what comes after.
//!
//! The dataflow's state at a time is a function of the records visible by then, whatever
//! time they entered at: facts, letters and status steps are placed at `max(t, their
//! time)`. The trackers' hysteresis, pre-credit lines and commitment decisions are not, so
//! they are what a checkpoint holds. A checkpoint is used only under the setup it was taken
//! under ([`Setup`]) and on the same number of workers; otherwise the whole log is replayed.

use std::path::{Path, PathBuf};

use rules::catalogue::Catalogue;
use rules::model::Model;
use rules::supervision::{CommitmentRules, PreCreditRule};
use rules::time::Ts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::tracker::Kept;

/// The file format of a checkpoint; a file of another format is not used.
pub const FORMAT: u32 = 1;

/// The trackers' state at one logical time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`FORMAT`].
    pub format: u32,
    /// Every update at a time up to this one is in the checkpoint.
    pub at: Ts,
    /// The setup the trackers ran under ([`Setup::digest`]).
    pub setup: String,
    /// Each worker's tracker state, by worker index.
    pub workers: Vec<Kept>,
}

/// What a tracker's past depends on besides the records: the build, the catalogue, the
/// model and the supervision rules. A checkpoint taken under another setup would resume
/// hysteresis and decisions that this one would not have made.
#[derive(Debug, Clone, Copy)]
pub struct Setup<'a> {
    /// The catalogue.
    pub catalogue: &'a Catalogue,
    /// The model, if `Q` is scored.
    pub model: Option<&'a Model>,
    /// The pre-credit rule, if pre-credit changes are tracked.
    pub pre_credit: Option<&'a PreCreditRule>,
    /// The commitment rules, if the commitment loop is tracked.
    pub commitments: Option<&'a CommitmentRules>,
}

impl Setup<'_> {
    /// A digest of the setup: SHA-256 over the build's version and every value of the
    /// catalogue, model and rules (their full debug form, which names every field).
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(env!("CARGO_PKG_VERSION"));
        for part in [
            format!("{:?}", self.catalogue),
            format!("{:?}", self.model),
            format!("{:?}", self.pre_credit),
            format!("{:?}", self.commitments),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        hex::encode(h.finalize())
    }
}

/// Why a checkpoint cannot be read or used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file could not be read or written.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not a checkpoint.
    #[error("checkpoint {path} does not parse: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A checkpoint of another format, setup or layout.
    #[error("checkpoint at {at} does not fit this run: {why}")]
    Unfit {
        /// The checkpoint's time.
        at: Ts,
        /// What differs.
        why: String,
    },
}

impl Checkpoint {
    /// Whether this checkpoint can resume a run on `workers` workers under `setup`.
    pub fn fits(&self, workers: usize, setup: &str) -> Result<(), CheckpointError> {
        let why = if self.format != FORMAT {
            format!("format {} (this build reads {FORMAT})", self.format)
        } else if self.setup != setup {
            "taken under another build, catalogue, model or supervision rules".to_owned()
        } else if self.workers.len() != workers {
            format!(
                "taken on {} workers, this run has {workers}",
                self.workers.len()
            )
        } else {
            return Ok(());
        };
        Err(CheckpointError::Unfit { at: self.at, why })
    }
}

/// A directory of checkpoint files, one per time (`checkpoint-<at>.json`), of which the
/// newest `keep` are kept.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    keep: usize,
}

impl Store {
    /// The store in `dir` (created when written to), keeping the newest `keep` (at least 1).
    pub fn new(dir: impl Into<PathBuf>, keep: usize) -> Self {
        Store {
            dir: dir.into(),
            keep: keep.max(1),
        }
    }

    fn path(&self, at: Ts) -> PathBuf {
        // Zero-padded, so that names sort as times (times are not negative in practice;
        // a negative one sorts first, which only makes it pruned first).
        self.dir.join(format!("checkpoint-{at:020}.json"))
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
        move |source| CheckpointError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// Writes `c` (to a temporary file, synced, then renamed: a crash leaves the old files
    /// or the new one whole), then removes all but the newest `keep`.
    pub fn write(&self, c: &Checkpoint) -> Result<(), CheckpointError> {
        use std::io::Write;
        std::fs::create_dir_all(&self.dir).map_err(Self::io(&self.dir))?;
        let path = self.path(c.at);
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(c).map_err(|source| CheckpointError::Parse {
            path: tmp.clone(),
            source,
        })?;
        let mut f = std::fs::File::create(&tmp).map_err(Self::io(&tmp))?;
        f.write_all(&bytes).map_err(Self::io(&tmp))?;
        f.sync_all().map_err(Self::io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(Self::io(&path))?;
        for (_, old) in self.times()?.into_iter().rev().skip(self.keep) {
            std::fs::remove_file(&old).map_err(Self::io(&old))?;
        }
        Ok(())
    }

    /// The checkpoint files, oldest first.
    fn times(&self) -> Result<Vec<(Ts, PathBuf)>, CheckpointError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Self::io(&self.dir)(e)),
        };
        let mut out = Vec::new();
        for e in entries {
            let path = e.map_err(Self::io(&self.dir))?.path();
            let at = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("checkpoint-")?.strip_suffix(".json"))
                .and_then(|t| t.parse::<Ts>().ok());
            if let Some(at) = at {
                out.push((at, path));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes the checkpoints at `from` or later; returns how many.
    pub fn discard_from(&self, from: Ts) -> Result<usize, CheckpointError> {
        let mut n = 0;
        for (_, path) in self.times()?.into_iter().filter(|(at, _)| *at >= from) {
            std::fs::remove_file(&path).map_err(Self::io(&path))?;
            n += 1;
        }
        Ok(n)
    }

    /// The newest checkpoint at a time before `before` (the outputs up to its time must be
    /// durable, or resuming from it would lose them), if any.
    pub fn newest_before(&self, before: Ts) -> Result<Option<Checkpoint>, CheckpointError> {
        let Some((_, path)) = self.times()?.into_iter().rev().find(|(at, _)| *at < before) else {
            return Ok(None);
        };
        let bytes = std::fs::read(&path).map_err(Self::io(&path))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| CheckpointError::Parse { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(at: Ts) -> Checkpoint {
        Checkpoint {
            format: FORMAT,
            at,
            setup: "s".into(),
            workers: vec![Kept::default(); 2],
        }
    }

    #[test]
    fn the_store_keeps_the_newest_and_finds_the_newest_before_a_fence() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::new(dir.path().join("c"), 2);
        assert_eq!(store.newest_before(Ts::MAX).expect("empty store"), None);
        for t in [10, 30, 20] {
            store.write(&at(t)).expect("written");
        }
        // 10 was pruned: the two newest are 20 and 30.
        assert_eq!(store.times().expect("listed").len(), 2);
        assert_eq!(store.newest_before(31).expect("read"), Some(at(30)));
        assert_eq!(store.newest_before(30).expect("read"), Some(at(20)));
        assert_eq!(store.newest_before(20).expect("read"), None);
        assert_eq!(store.discard_from(30).expect("removed"), 1);
        assert_eq!(store.newest_before(Ts::MAX).expect("read"), Some(at(20)));
        store.write(&at(30)).expect("written");
        // A damaged file is an error that names it, not a silent full replay.
        std::fs::write(store.path(30), b"{").expect("written");
        let err = store.newest_before(31).expect_err("damaged");
        assert!(err.to_string().contains("checkpoint-"), "{err}");
    }

    /// A worker's part crosses processes in bincode (timely's exchange, and the steps to the
    /// sink), so every field must round-trip there too, not only in JSON.
    #[test]
    fn a_workers_part_round_trips_in_bincode_and_json() {
        use crate::tracker::KeptPreCredit;
        use rules::uscc::Uscc;
        let u = Uscc::new("91330802MA2A00000K").expect("packs");
        let kept = Kept {
            monitors: vec![(u, rules::monitor::Monitor::default())],
            pre_credit: vec![
                (u, KeptPreCredit::Line(500_000)),
                (u, KeptPreCredit::Review),
            ],
            decided: vec![(u, "C1".into())],
            reported: Vec::new(),
        };
        let bytes = bincode::serialize(&kept).expect("bincode");
        assert_eq!(bincode::deserialize::<Kept>(&bytes).expect("back"), kept);
        let c = Checkpoint {
            workers: vec![kept],
            ..at(3)
        };
        let json = serde_json::to_vec(&c).expect("json");
        assert_eq!(
            serde_json::from_slice::<Checkpoint>(&json).expect("back"),
            c
        );
    }

    /// A monitor keeps its last triggers as a set since D75; in bincode (how a worker's part
    /// crosses processes) the set is the list of its codes, byte for byte, as it is in a
    /// checkpoint file's JSON (`rules::score`'s test), so a checkpoint written before loads.
    #[test]
    fn trigger_sets_keep_the_bincode_of_trigger_lists() {
        let set = rules::score::Triggers::of(["R2", "R8"]).expect("known codes");
        let list = vec!["R2".to_owned(), "R8".to_owned()];
        let bytes = bincode::serialize(&list).expect("bincode");
        assert_eq!(bincode::serialize(&set).expect("bincode"), bytes);
        let back: rules::score::Triggers = bincode::deserialize(&bytes).expect("reads");
        assert_eq!(back, set);
    }

    #[test]
    fn a_checkpoint_fits_only_its_setup_and_layout() {
        let c = at(5);
        assert!(c.fits(2, "s").is_ok());
        let e = c.fits(3, "s").expect_err("other layout").to_string();
        assert!(e.contains("2 workers") && e.contains("has 3"), "{e}");
        let e = c.fits(2, "t").expect_err("other setup").to_string();
        assert!(e.contains("another build"), "{e}");
        let e = Checkpoint { format: 0, ..c }
            .fits(2, "s")
            .expect_err("other format")
            .to_string();
        assert!(e.contains("format 0"), "{e}");
    }

    #[test]
    fn the_setup_digest_names_every_part() {
        let cat = Catalogue::embedded();
        let base = Setup {
            catalogue: &cat,
            model: None,
            pre_credit: None,
            commitments: None,
        };
        let mut other = cat.clone();
        other.score.p += 0.0001;
        let changed = Setup {
            catalogue: &other,
            ..base
        };
        assert_eq!(base.digest(), base.digest());
        assert_ne!(base.digest(), changed.digest());
    }
}
