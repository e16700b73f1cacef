//! What a checkpoint saves a restart (D68): the dataflow over a generated history of
//! `ENTERPRISES` enterprises and `YEARS` years on `WORKERS` workers, replayed whole (a
//! restart without a checkpoint; in steps of 10,000 records, the batches `serve`'s log
//! reader hands over) and resumed from a checkpoint taken one day before the end (the
//! records up to it enter at once, the last day is stepped as usual). Both end with the
//! same state (checked).
//!
//! ```sh
//! cargo run --release -p engine --example resume_bench -- 1000 3 2
//! ```
//!
//! Prints one Markdown row: enterprises, records, workers, the whole replay's seconds, the
//! resumed run's seconds, their ratio, and the checkpoint file's size per enterprise with
//! the seconds to write and to read it.

use std::sync::Arc;
use std::time::Instant;

use engine::checkpoint::{Checkpoint, Store, FORMAT};
use engine::ingest::Ingest;
use engine::replay::{replay, Replayed, Schedule};
use generator::{generate, GenConfig};
use rules::catalogue::Catalogue;
use rules::lifecycle::Accepted;
use rules::time::DAY;

/// The allocator `steward` uses.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Records per step: what `serve`'s log reader hands the workers at most.
const BATCH: usize = 10_000;

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .map(|a| a.parse().expect("a whole number"))
        .unwrap_or(default)
}

/// Each enterprise's state and colour, as text.
fn lines(r: &Replayed) -> Vec<String> {
    r.states
        .iter()
        .map(|(u, (s, c))| format!("{u} {c:?} {s:?}"))
        .collect()
}

fn main() {
    engine::allocator::configure();
    let enterprises = arg(1, 1_000) as u32;
    let years = arg(2, 3) as u32;
    let workers = arg(3, 2) as usize;
    let cat = Arc::new(Catalogue::embedded());
    let cfg = GenConfig {
        enterprises,
        years,
        ..GenConfig::default()
    };
    let mut ingest = Ingest::new(&cat, std::io::sink());
    let mut offset = 0;
    generate(&cfg, &mut |_| {}, &mut |r| {
        offset += 1;
        if let Ok(Some(e)) = ingest.decode(r.feed, offset, &r.line) {
            ingest.admit(e);
        }
    })
    .expect("valid generator configuration");
    let log: Arc<[Arc<Accepted>]> = engine::replay::shared(std::mem::take(&mut ingest.log));
    drop(ingest);
    let until = log.iter().map(|a| a.v).max().unwrap_or(0);
    let cut = until - DAY;
    let run = |schedule: Schedule| {
        let started = Instant::now();
        let out = replay(
            log.clone(),
            cat.clone(),
            None,
            None,
            timely::Config::process(workers),
            schedule,
            |_, _, _| {},
        )
        .expect("the dataflow runs");
        (out, started.elapsed().as_secs_f64())
    };
    let (whole, whole_secs) = run(Schedule::new(BATCH, until));
    let before = Schedule {
        checkpoint: true,
        ..Schedule::new(BATCH, cut)
    };
    let (before, _) = run(before);
    let checkpoint = Checkpoint {
        format: FORMAT,
        at: cut,
        setup: String::new(),
        workers: before.kept.into_values().collect(),
    };
    drop(before.states);
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
    let (resumed, resumed_secs) = run(resumed);
    assert_eq!(lines(&resumed), lines(&whole), "the resumed state differs");
    println!(
        "| {enterprises} × {years} y | {} | {workers} | {whole_secs:.2} s | {resumed_secs:.2} s | {:.1}× | {:.0} B | {write_secs:.3} s | {read_secs:.3} s |",
        log.len(),
        whole_secs / resumed_secs,
        bytes as f64 / f64::from(enterprises),
    );
}
