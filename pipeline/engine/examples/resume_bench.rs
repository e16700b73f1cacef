//! What a checkpoint saves a restart (D68): the dataflow over a generated history of
//! `ENTERPRISES` enterprises and `YEARS` years on `WORKERS` workers, replayed whole (a
//! restart without a checkpoint; in steps of 10,000 records, the batches `serve`'s log
//! reader hands over) and resumed from a checkpoint taken one day before the end (the
//! records up to it enter at once, the last day is stepped as usual). Both end with the
//! same state (checked).
//!
//! ```sh
//! cargo run --release -p engine --example resume_bench -- 1000 3 2   # [DAYS]
//! ```
//!
//! With `DAYS`, only the records ingested in the history's first `DAYS` days are kept:
//! `1000000 1 2 30` is the pipeline issue's shape (about ten records per enterprise) at its
//! size, the restart its target is set for.
//!
//! Prints one Markdown row: the history, records, workers, the whole replay's seconds and
//! the resumed run's to caught up (every worker has tracked the history's last time; the
//! restart's measure, D113) and, in brackets, to their end (the dataflow dropped and the
//! results merged, which a restarted `serve` does not do), the ratio of the caught-up
//! times, the checkpoint file's size per enterprise with the seconds to write and to read
//! it, and the bench's peak resident memory (`VmHWM`: the decoded log and the largest of
//! the three runs).

mod support;

use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use engine::checkpoint::{Checkpoint, Store, FORMAT};
use engine::replay::{replay, Replayed, Schedule};
use rules::catalogue::Catalogue;
use rules::time::DAY;
use sha2::{Digest, Sha256};

/// The allocator `steward` uses.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Records per step: what `serve`'s log reader hands the workers at most.
const BATCH: usize = 10_000;

/// A digest of each enterprise's state and colour as text (not the text itself, which at a
/// million enterprises would take gigabytes next to the runs that follow).
fn digest(r: &Replayed) -> [u8; 32] {
    let mut h = Sha256::new();
    for (u, (s, c)) in &r.states {
        writeln!(h, "{u} {c:?} {s:?}").expect("a hasher takes every write");
    }
    h.finalize().into()
}

fn main() {
    engine::allocator::configure();
    let enterprises = support::arg(1, 1_000) as u32;
    let years = support::arg(2, 3) as u32;
    let workers = support::arg(3, 2) as usize;
    let cat = Arc::new(Catalogue::embedded());
    let days = Some(support::arg(4, 0) as i64).filter(|d| *d > 0);
    let log = support::generated(&cat, enterprises, years, days);
    let until = log.iter().map(|a| a.v).max().unwrap_or(0);
    let cut = until - DAY;
    // A run's seconds to caught up (every worker has tracked its last time) and to its
    // end (the dataflow dropped and the workers' results merged, which a restarted `serve`
    // does not do).
    let run = |schedule: Schedule| {
        let end = schedule.until;
        let caught: Arc<[OnceLock<Instant>]> = (0..workers).map(|_| OnceLock::new()).collect();
        let seen = Arc::clone(&caught);
        let started = Instant::now();
        let out = replay(
            log.clone(),
            cat.clone(),
            None,
            None,
            timely::Config::process(workers),
            schedule,
            move |w, t, _, _| {
                if t >= end {
                    seen[w].get_or_init(Instant::now);
                }
            },
        )
        .expect("the dataflow runs");
        let finished = started.elapsed().as_secs_f64();
        let caught = caught
            .iter()
            .map(|c| {
                c.get()
                    .expect("every worker reaches the end")
                    .duration_since(started)
            })
            .max()
            .expect("a worker")
            .as_secs_f64();
        (out, caught, finished)
    };
    // Only the digest is kept: the runs' states are dropped as soon as they are compared.
    let (whole, whole_caught, whole_end) = run(Schedule::new(BATCH, until));
    let whole_digest = digest(&whole);
    drop(whole);
    let before = Schedule {
        checkpoint: true,
        ..Schedule::new(BATCH, cut)
    };
    let Replayed { kept, .. } = run(before).0;
    let checkpoint = Checkpoint {
        format: FORMAT,
        at: cut,
        setup: String::new(),
        workers: kept.into_values().collect(),
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::new(dir.path(), 1);
    let started = Instant::now();
    store.write(&checkpoint).expect("written");
    let write_secs = started.elapsed().as_secs_f64();
    let bytes: u64 = std::fs::read_dir(dir.path())
        .expect("listed")
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    let started = Instant::now();
    let read = store
        .newest_before(until)
        .expect("read")
        .expect("the checkpoint");
    let read_secs = started.elapsed().as_secs_f64();
    let resumed = Schedule {
        resume: Some(Arc::new(read)),
        ..Schedule::new(BATCH, until)
    };
    let (resumed, resumed_caught, resumed_end) = run(resumed);
    assert_eq!(digest(&resumed), whole_digest, "the resumed state differs");
    let history = match days {
        Some(days) => format!("{enterprises} × {days} d"),
        None => format!("{enterprises} × {years} y"),
    };
    println!(
        "| {history} | {} | {workers} | {whole_caught:.2} s ({whole_end:.2} s to its end) | {resumed_caught:.2} s ({resumed_end:.2} s to its end) | {:.1}× | {:.0} B | {write_secs:.3} s | {read_secs:.3} s | {:.2} GiB |",
        log.len(),
        whole_caught / resumed_caught,
        bytes as f64 / f64::from(enterprises),
        support::peak_kib() as f64 / (1024.0 * 1024.0),
    );
}
