//! The training set from history (`docs/decisions.md` D20–D22).
//!
//! 1. The history is read like `steward run` reads it (generated in-process, or a directory
//!    of `<feed>.jsonl` files) into the log of accepted records with visibility times.
//! 2. At monthly checkpoints from the first visibility time, every enterprise is evaluated
//!    with the reference computation on the records visible then (no model): its 49
//!    r-values, `P`, `S` without a model, and whether a red trigger (R1–R5) is active.
//! 3. Samples are taken every `every_months` checkpoints after a warm-up, for every
//!    enterprise still scored, where the whole label horizon lies inside the history.
//! 4. Label: a red trigger at a checkpoint in `(t, t + horizon]`, or a new serious record
//!    (`rules::model::serious_record`) visible in that interval.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use connectors::config::ClickHouseConfig;
use generator::{generate, GenConfig};
use indicatif::ProgressBar;
use rules::catalogue::Catalogue;
use rules::event::{Event, Feed};
use rules::lifecycle::Accepted;
use rules::model::{features, serious_record};
use rules::reference::{evaluate_facts, facts_of};
use rules::score::Colour;
use rules::time::{add_months, format_rfc3339, Ts};
use sha2::{Digest, Sha256};

use super::TrainError;
use engine::ingest::Ingest;

/// Where the history comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Generated in-process.
    Generated(Box<GenConfig>),
    /// A directory of `<feed>.jsonl` files as `steward generate` writes them.
    Dir(PathBuf),
    /// The ClickHouse `records` table that `steward serve` writes: every accepted record
    /// with the visibility time it was given.
    ClickHouse(Box<ClickHouseConfig>),
}

impl Source {
    /// The history of a command's arguments: the files of `input`, else the ClickHouse
    /// `records` table of the connector configuration `config` (default: the embedded one)
    /// when `from_clickhouse`, else generated with `gen`.
    pub fn of(
        input: Option<PathBuf>,
        from_clickhouse: bool,
        config: Option<&std::path::Path>,
        gen: &GenConfig,
    ) -> Result<Self, TrainError> {
        Ok(match input {
            Some(dir) => Source::Dir(dir),
            None if from_clickhouse => {
                let cfg = crate::live::load_config(config)
                    .map_err(|e| TrainError::Data(format!("{e:#}")))?;
                Source::ClickHouse(Box::new(cfg.clickhouse))
            }
            None => Source::Generated(Box::new(gen.clone())),
        })
    }

    /// A short description, stored in the model file.
    pub fn describe(&self) -> String {
        match self {
            Source::Generated(c) => format!(
                "generated:enterprises={},seed={},years={}",
                c.enterprises, c.seed, c.years
            ),
            Source::Dir(d) => format!("dir:{}", d.display()),
            Source::ClickHouse(c) => format!("clickhouse:{}/{}", c.url, c.database),
        }
    }
}

/// Reads the history into the log of accepted records: decoded, duplicates dropped,
/// visibility times from the replay clock (rejects are counted, not written).
pub fn load_log(source: &Source, cat: &Catalogue) -> Result<Vec<Accepted>, TrainError> {
    if let Source::ClickHouse(cfg) = source {
        return clickhouse_log(cfg);
    }
    let mut ingest = Ingest::new(cat, std::io::sink());
    let sink_error = |e: std::io::Error| TrainError::Data(format!("decoding: {e}"));
    match source {
        Source::Generated(cfg) => {
            // Generated lines come in arrival order.
            let mut offsets: BTreeMap<Feed, u64> = BTreeMap::new();
            let mut err = None;
            generate(cfg, &mut |_| {}, &mut |r| {
                let off = offsets.entry(r.feed).or_default();
                match ingest.decode(r.feed, *off, &r.line) {
                    Ok(Some(e)) => ingest.admit(e),
                    Ok(None) => {}
                    Err(e) => {
                        err.get_or_insert(e);
                    }
                }
                *off += 1;
            })?;
            if let Some(e) = err {
                return Err(sink_error(e));
            }
        }
        Source::Dir(dir) => {
            // Files have no arrival order across feeds: merge them by ingest time.
            let mut events: Vec<Event> = Vec::new();
            for feed in Feed::ALL {
                let path = dir.join(format!("{}.jsonl", feed.as_str().to_ascii_lowercase()));
                if !path.exists() {
                    continue;
                }
                let f = File::open(&path).map_err(TrainError::io(&path))?;
                for (i, line) in BufReader::new(f).split(b'\n').enumerate() {
                    let line = line.map_err(TrainError::io(&path))?;
                    events.extend(ingest.decode(*feed, i as u64, &line).map_err(sink_error)?);
                }
            }
            events.sort_by_key(|e| e.ingest_time);
            for e in events {
                ingest.admit(e);
            }
        }
        Source::ClickHouse(_) => {}
    }
    let mut log = ingest.log;
    log.sort_by_key(|a| a.v);
    if log.is_empty() {
        return Err(TrainError::Data(format!(
            "no accepted records in {}",
            source.describe()
        )));
    }
    Ok(log)
}

/// One row of `records`, as the log needs it.
#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct StoredRecord {
    v: u32,
    digest: String,
    body: String,
}

/// The log as `steward serve` stored it in ClickHouse (`records FINAL`), in `v` order.
fn clickhouse_log(cfg: &ClickHouseConfig) -> Result<Vec<Accepted>, TrainError> {
    let ch = connectors::clickhouse::ClickHouse::new(cfg)
        .map_err(|e| TrainError::Data(e.to_string()))?;
    let sql = format!(
        "SELECT v, digest, body FROM {}.records FINAL ORDER BY v, feed, event_id, record_version, digest",
        cfg.database
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| TrainError::Data(format!("tokio: {e}")))?;
    let rows: Vec<StoredRecord> = rt
        .block_on(ch.fetch(&sql))
        .map_err(|e| TrainError::Data(e.to_string()))?;
    let mut log = Vec::with_capacity(rows.len());
    for r in rows {
        let event: Event = serde_json::from_str(&r.body)
            .map_err(|e| TrainError::Data(format!("records: a body does not parse: {e}")))?;
        let mut digest = [0u8; 32];
        hex::decode_to_slice(&r.digest, &mut digest)
            .map_err(|e| TrainError::Data(format!("records: bad digest {:?}: {e}", r.digest)))?;
        log.push(Accepted {
            v: i64::from(r.v),
            digest,
            event,
            origin: None,
        });
    }
    if log.is_empty() {
        return Err(TrainError::Data(format!(
            "no records in {}.records",
            cfg.database
        )));
    }
    Ok(log)
}

/// How samples and labels are taken.
#[derive(Debug, Clone, Copy)]
pub struct Sampling {
    /// Months between sampled as-of times.
    pub every_months: u32,
    /// Months of history before the first sample.
    pub warmup_months: u32,
    /// Label horizon in months (12 in `model.md`).
    pub horizon_months: u32,
}

/// One training or test sample: an enterprise at an as-of time.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// As-of time.
    pub as_of: Ts,
    /// Enterprise.
    pub uscc: String,
    /// The 49 r-values.
    pub r: Vec<f64>,
    /// Provincial score `P`.
    pub p: Option<f64>,
    /// `S` without a model.
    pub s: f64,
    /// Red trigger or new serious record within the horizon.
    pub label: bool,
    /// A red trigger is active at `as_of` (the early-warning figures leave these out, D55).
    pub red_now: bool,
}

impl Sample {
    /// The feature vector (`rules::model::features`).
    pub fn x(&self, p_impute: f64) -> Vec<f64> {
        features(&self.r, self.p, p_impute)
    }
}

/// What one checkpoint gives.
#[derive(Debug, Default)]
struct Checkpoint {
    /// Enterprises with an active red trigger (R1–R5).
    red: BTreeSet<String>,
    /// Samples (label still unset) when the checkpoint is sampled.
    samples: Vec<Sample>,
}

/// The samples of a history, in `(as_of, uscc)` order, with their labels.
pub fn samples(
    log: &[Accepted],
    sampling: Sampling,
    cat: &Catalogue,
    bar: &ProgressBar,
) -> Result<Vec<Sample>, TrainError> {
    let origin = log.first().map_or(0, |a| a.v);
    let end = log.last().map_or(0, |a| a.v);
    let checkpoints: Vec<Ts> = (0..)
        .map(|k| add_months(origin, k))
        .take_while(|t| *t <= end)
        .collect();
    let h = sampling.horizon_months as usize;
    let every = sampling.every_months.max(1) as usize;
    let sampled = |k: usize| {
        k >= sampling.warmup_months as usize
            && (k - sampling.warmup_months as usize) % every == 0
            && k + h < checkpoints.len()
    };
    if !(0..checkpoints.len()).any(sampled) {
        return Err(TrainError::Data(format!(
            "history from {} to {} is too short for a {}-month warm-up and a {h}-month horizon",
            format_rfc3339(origin),
            format_rfc3339(end),
            sampling.warmup_months
        )));
    }
    bar.set_length(checkpoints.len() as u64);

    // Checkpoints are independent: evaluate them on all cores.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut results: BTreeMap<usize, Checkpoint> = BTreeMap::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let checkpoints = &checkpoints;
                scope.spawn(move || {
                    (i..checkpoints.len())
                        .step_by(threads)
                        .map(|k| {
                            let c = checkpoint(log, checkpoints[k], sampled(k), cat);
                            bar.inc(1);
                            (k, c)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            // A panic in a worker is a bug; re-raise it here.
            results.extend(
                handle
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            );
        }
    });

    // New serious records per enterprise: the visibility time of each record id's first
    // serious version.
    let mut first_seen: HashMap<(Feed, &str), Ts> = HashMap::new();
    for a in log {
        if serious_record(&a.event) {
            first_seen
                .entry((a.event.feed(), a.event.event_id.as_str()))
                .or_insert(a.v);
        }
    }
    let mut serious: HashMap<&str, Vec<Ts>> = HashMap::new();
    for a in log {
        if first_seen.get(&(a.event.feed(), a.event.event_id.as_str())) == Some(&a.v)
            && serious_record(&a.event)
        {
            serious.entry(a.event.uscc.as_str()).or_default().push(a.v);
        }
    }

    let mut out = Vec::new();
    for (&k, c) in &results {
        for s in &c.samples {
            let (from, to) = (checkpoints[k], checkpoints[k + h]);
            let red = (k + 1..=k + h).any(|j| results[&j].red.contains(&s.uscc));
            let new_serious = serious
                .get(s.uscc.as_str())
                .is_some_and(|vs| vs.iter().any(|v| *v > from && *v <= to));
            out.push(Sample {
                label: red || new_serious,
                ..s.clone()
            });
        }
    }
    Ok(out)
}

/// Evaluates every enterprise at `t` on the records visible then.
fn checkpoint(log: &[Accepted], t: Ts, sampled: bool, cat: &Catalogue) -> Checkpoint {
    let n = log.partition_point(|a| a.v <= t);
    let visible: Vec<&Accepted> = log[..n].iter().collect();
    let facts = facts_of(&visible, cat).facts;
    let mut c = Checkpoint::default();
    for (uscc, (_, e)) in evaluate_facts(&facts, t, None, cat) {
        let Some(s) = e.s else {
            continue; // scoring stopped (R9): no sample, no red trigger
        };
        let red_now = e.cap == Colour::Red;
        if red_now {
            c.red.insert(uscc.clone());
        }
        if sampled {
            c.samples.push(Sample {
                as_of: t,
                uscc,
                r: e.r,
                p: e.p,
                s,
                label: false,
                red_now,
            });
        }
    }
    c
}

/// Hex SHA-256 of samples: as-of time, USCC, r-values, `P` and label, one line each.
pub fn digest(samples: &[&Sample]) -> String {
    let mut h = Sha256::new();
    for s in samples {
        h.update(format!("{}|{}|{:?}|{:?}|{}\n", s.as_of, s.uscc, s.r, s.p, s.label).as_bytes());
    }
    hex::encode(h.finalize())
}

/// A split by time: the test set is the samples at the last `test_share` of the sampled
/// as-of times; the training set is the samples whose whole label horizon ends at or
/// before the first test as-of time, so no training label looks into the test period.
#[derive(Debug)]
pub struct Split<'a> {
    /// Training samples.
    pub train: Vec<&'a Sample>,
    /// Test samples.
    pub test: Vec<&'a Sample>,
    /// First as-of time of the test set.
    pub test_from: Ts,
}

/// Splits `samples` by time ([`Split`]).
pub fn split(
    samples: &[Sample],
    test_share: f64,
    horizon_months: u32,
) -> Result<Split<'_>, TrainError> {
    let times: Vec<Ts> = samples
        .iter()
        .map(|s| s.as_of)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let n_test = ((times.len() as f64 * test_share).round() as usize).clamp(1, times.len());
    let test_from = times[times.len() - n_test];
    let train: Vec<&Sample> = samples
        .iter()
        .filter(|s| add_months(s.as_of, horizon_months) <= test_from)
        .collect();
    let test: Vec<&Sample> = samples.iter().filter(|s| s.as_of >= test_from).collect();
    for (name, set) in [("training", &train), ("test", &test)] {
        let positives = set.iter().filter(|s| s.label).count();
        if positives == 0 || positives == set.len() {
            return Err(TrainError::Data(format!(
                "the {name} set ({} samples, {positives} positive) needs both labels; \
                 use more enterprises or years of history",
                set.len()
            )));
        }
    }
    Ok(Split {
        train,
        test,
        test_from,
    })
}

#[cfg(test)]
mod tests {
    use rules::decode::digest as record_digest;
    use rules::time::{ymd, DAY};
    use serde_json::json;

    use super::*;

    fn code(n: u8) -> String {
        rules::uscc::with_check(&format!("91330802MA2A000{n:02}")).expect("valid prefix")
    }

    /// An accepted record of enterprise `ent`, visible at `t`.
    fn record(
        ent: u8,
        feed: &str,
        kind: &str,
        id: &str,
        t: Ts,
        extra: serde_json::Value,
    ) -> Accepted {
        let mut obj = json!({
            "uscc": code(ent), "feed": feed, "kind": kind, "event_id": id,
            "event_time": format_rfc3339(t), "ingest_time": format_rfc3339(t),
        });
        for (k, v) in extra.as_object().expect("object") {
            obj[k] = v.clone();
        }
        let event: Event = serde_json::from_value(obj).expect("valid record");
        Accepted {
            v: t,
            digest: record_digest(&event),
            event,
            origin: None,
        }
    }

    #[test]
    fn a_directory_of_feeds_gives_the_records_generated_in_process() {
        let cfg = GenConfig {
            enterprises: 12,
            seed: 5,
            years: 1,
            ..GenConfig::default()
        };
        let dir = std::env::temp_dir().join(format!("steward-dataset-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut files: BTreeMap<Feed, Vec<u8>> = BTreeMap::new();
        generate(&cfg, &mut |_| {}, &mut |r| {
            let f = files.entry(r.feed).or_default();
            f.extend_from_slice(&r.line);
            f.push(b'\n');
        })
        .expect("generates");
        for (feed, bytes) in &files {
            let name = format!("{}.jsonl", feed.as_str().to_ascii_lowercase());
            std::fs::write(dir.join(name), bytes).expect("write");
        }
        let cat = Catalogue::embedded();
        let ids = |log: Vec<Accepted>| -> BTreeSet<(Feed, rules::CompactString, u32)> {
            log.into_iter()
                .map(|a| (a.event.feed(), a.event.event_id, a.event.version))
                .collect()
        };
        let from_dir = ids(load_log(&Source::Dir(dir.clone()), &cat).expect("reads"));
        let generated = ids(load_log(&Source::Generated(Box::new(cfg)), &cat).expect("generates"));
        assert!(from_dir.len() > 100);
        assert_eq!(from_dir, generated);
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).expect("dir");
        assert!(matches!(
            load_log(&Source::Dir(empty), &cat),
            Err(TrainError::Data(_))
        ));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn labels_look_twelve_months_ahead_for_red_triggers_and_serious_records() {
        let origin = ymd(2021, 1, 1);
        let month = |k: u32| add_months(origin, k);
        let log = vec![
            record(
                1,
                "REG",
                "ESTABLISHED",
                "a",
                origin,
                json!({"region_code": "330802"}),
            ),
            record(
                2,
                "REG",
                "ESTABLISHED",
                "b",
                origin,
                json!({"region_code": "330802"}),
            ),
            // A dishonest-debtor listing (serious record, red trigger R1) a day after month 20.
            record(
                1,
                "JUD",
                "DISHONEST_LISTED",
                "d",
                month(20) + DAY,
                json!({"court_code": "C", "case_no": "K1"}),
            ),
            // The history ends at month 40.
            record(2, "PCS", "SCORE", "s", month(40), json!({"score": 700})),
        ];
        let sampling = Sampling {
            every_months: 1,
            warmup_months: 0,
            horizon_months: 12,
        };
        let out = samples(
            &log,
            sampling,
            &Catalogue::embedded(),
            &ProgressBar::hidden(),
        )
        .expect("samples");
        // Checkpoints 0..=40; samples where the horizon fits: k = 0..=28, both enterprises.
        assert_eq!(out.len(), 2 * 29);
        for s in &out {
            let k = (0..=40)
                .find(|k| month(*k) == s.as_of)
                .expect("a checkpoint");
            let want = s.uscc == code(1) && (9..=28).contains(&k);
            assert_eq!(s.label, want, "{} at month {k}", s.uscc);
        }
        // The features at month 21 show the listing: row 34 is 100.
        let at21 = out
            .iter()
            .find(|s| s.uscc == code(1) && s.as_of == month(21))
            .expect("sample");
        assert_eq!(at21.r[33], 100.0);
    }

    fn sample(as_of: Ts, label: bool) -> Sample {
        Sample {
            as_of,
            uscc: format!("U{as_of}"),
            r: vec![0.0; 49],
            p: None,
            s: 800.0,
            label,
            red_now: false,
        }
    }

    #[test]
    fn split_keeps_training_labels_out_of_the_test_period() {
        let month = |k: u32| add_months(rules::time::ymd(2022, 1, 1), k);
        let samples: Vec<Sample> = (0..24)
            .flat_map(|k| [sample(month(k), false), sample(month(k), true)])
            .collect();
        let s = split(&samples, 0.25, 12).expect("both labels");
        assert_eq!(s.test_from, month(18));
        assert_eq!(s.test.len(), 12);
        // Training as-of times end 12 months before the first test time.
        assert!(s.train.iter().all(|x| x.as_of <= month(6)));
        assert_eq!(s.train.len(), 14);
        let one_label: Vec<Sample> = (0..24).map(|k| sample(month(k), false)).collect();
        assert!(matches!(
            split(&one_label, 0.25, 12),
            Err(TrainError::Data(_))
        ));
    }

    #[test]
    fn digest_changes_with_any_label() {
        let a = [sample(1, false), sample(2, true)];
        let mut b = a.clone();
        b[1].label = false;
        let refs = |x: &[Sample]| digest(&x.iter().collect::<Vec<_>>());
        assert_eq!(refs(&a), refs(&a.clone()));
        assert_ne!(refs(&a), refs(&b));
    }
}
