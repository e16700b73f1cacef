//! The pipeline issue's benchmark shape: many enterprises with few records each, through
//! the dataflow without Kafka. Generates `ENTERPRISES` enterprises over one year, keeps the
//! records ingested in the first `DAYS` days (the historical load comes first, so a short
//! window gives about ten records per enterprise), decodes and admits them, then replays
//! them through the dataflow on `WORKERS` workers with the same schedule as `steward run`,
//! which hands each step's outputs on (D116): here they are dropped.
//!
//! ```sh
//! cargo run --release -p engine --example dataflow_bench -- 100000 30 2   # [BATCH]
//! ```
//!
//! `BATCH` (default 50,000) is how many records the replay gives the dataflow per step
//! (whole visibility times, as `steward run` does); `serve` steps it with the batches its
//! log reader hands over, so a small `BATCH` shows what stepping in small batches costs.
//!
//! With `--years=N`, the history is `N` years long (default 1); a `DAYS` of 0 keeps all of
//! it (`dataflow_bench 5000 0 2 --years=3`: the 3-year history, about 155 records per
//! enterprise).
//!
//! With `--profile`, also prints each operator's share of the scheduled time (summed over
//! workers, exclusive of the operators it runs inside it).
//!
//! Prints one Markdown row: enterprises, records, records per enterprise, workers,
//! dataflow seconds, records/s, peak resident memory (`VmHWM`), peak memory per
//! enterprise, and the peak of live heap bytes (what the program asked the allocator for
//! and had not freed; RSS adds the allocator's retained pages and varies by a few per cent
//! between runs, this hardly at all). The peaks include the decoded log the replay reads
//! from. (A few enterprises have no record in a short window; they count in the
//! per-enterprise figures.)
//!
//! Counting live bytes updates shared counters on every allocation and slows the run (by a
//! third at the issue shape, D87). For speed and for profiles, build it without the counter
//! (the last column then says "not counted"):
//!
//! ```sh
//! cargo run --release -p engine --features bench-uncounted --example dataflow_bench -- 40000 30 2
//! ```

mod support;

use std::sync::Arc;
use std::time::Instant;

use engine::profile::OperatorTimes;
use engine::replay::{replay, Outputs, Schedule};
#[cfg(not(feature = "bench-uncounted"))]
use peakmem_alloc::{PeakMemAlloc, PeakMemAllocTrait};
use rules::catalogue::Catalogue;

/// The allocator `steward` uses, counting live bytes (D85).
#[cfg(not(feature = "bench-uncounted"))]
#[global_allocator]
static ALLOC: PeakMemAlloc<mimalloc::MiMalloc> = PeakMemAlloc::new(mimalloc::MiMalloc);

/// The allocator `steward` uses, as it is: the counter's shared atomics slow every
/// allocation from several workers, so speeds and profiles are measured without it (D87).
#[cfg(feature = "bench-uncounted")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The peak of live heap bytes, as the last column gives it.
fn peak_heap() -> String {
    #[cfg(not(feature = "bench-uncounted"))]
    return format!(
        "{:.3} GiB",
        ALLOC.get_peak_memory() as f64 / (1024.0 * 1024.0 * 1024.0)
    );
    #[cfg(feature = "bench-uncounted")]
    "not counted".to_owned()
}

/// The value of option `--NAME=VALUE` among the arguments, or `default`.
fn option(name: &str, default: u64) -> u64 {
    std::env::args()
        .find_map(|a| {
            let v = a
                .strip_prefix("--")?
                .strip_prefix(name)?
                .strip_prefix('=')?;
            Some(v.parse().expect("a whole number"))
        })
        .unwrap_or(default)
}

fn main() {
    engine::allocator::configure();
    let enterprises = support::arg(1, 20_000) as u32;
    let days = Some(support::arg(2, 30) as i64).filter(|d| *d > 0);
    let workers = support::arg(3, 2) as usize;
    let batch = support::arg(4, 50_000) as usize;
    let years = option("years", 1) as u32;
    let cat = Arc::new(Catalogue::embedded());
    let log = support::generated(&cat, enterprises, years, days);
    let records = log.len();
    let as_of = log.iter().map(|a| a.v).max().unwrap_or(0);
    let profile = std::env::args()
        .any(|a| a == "--profile")
        .then(OperatorTimes::default);
    let started = Instant::now();
    let out = replay(
        log,
        cat.clone(),
        None,
        None,
        timely::Config::process(workers),
        Schedule {
            profile: profile.clone(),
            ..Schedule::new(batch, as_of)
        },
        // Each step's outputs are handed on, as `steward run` writes them (D116): dropped.
        |_, _, _, outputs| *outputs = Outputs::default(),
    )
    .expect("the dataflow runs");
    let secs = started.elapsed().as_secs_f64();
    assert!(!out.states.is_empty(), "no enterprise evaluated");
    let peak = support::peak_kib();
    let heap = peak_heap();
    println!(
        "| {enterprises} | {records} | {:.1} | {workers} | {secs:.1} s | {:.0} | {:.2} GiB | {:.1} KiB | {heap} |",
        records as f64 / f64::from(enterprises),
        records as f64 / secs,
        peak as f64 / (1024.0 * 1024.0),
        peak as f64 / f64::from(enterprises),
    );
    if let Some(p) = profile {
        for (name, d, share) in p.report() {
            println!(
                "{:>6.1} % {:>8.2} s  {name}",
                share * 100.0,
                d.as_secs_f64()
            );
        }
    }
}
