//! Benchmark (issue 17 item 5): memory and catch-up of `steward serve` (release build, 2
//! workers) while ClickHouse is down and input keeps arriving, on the local services.
//!
//! ```sh
//! cargo build --release --bin steward
//! cargo run --release -p e2e --example serve_outage -- [ENTERPRISES] [OUTAGE_SECS] [RATE]
//! ```
//! The generated 3-year history of ENTERPRISES firms (default 20,000, about 3.1M records)
//! in arrival order: its first tenth is produced before `serve` starts. Once the run's first
//! colour changes are in ClickHouse, ClickHouse is stopped for OUTAGE_SECS (default 60; 0
//! for the baseline, no outage) and the rest of the history is produced at RATE records/s
//! (default 50,000) from that moment. ClickHouse then starts again and the run goes on
//! until its input is drained and every output is durable.
//!
//! It samples the process's resident memory (`/proc/PID/status` VmRSS) every 100 ms and
//! prints the peak before the outage, during it and after it, the input rate reached, and
//! the time from ClickHouse's return to the process's exit. The result is then checked as
//! in the outage test: the tables and topics equal what the dataflow replayed over the
//! run's own log implies (nothing lost or duplicated).

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::serve::{
    check, expected_by_replay, gen, produce_records, read_log, snapshot, FeedProducer,
};
use e2e::{repo_root, services, spawn_captured, Namespace, Restore};
use generator::generate;
use rules::catalogue::Catalogue;
use rules::event::Feed;

/// The resident memory of process `pid` in bytes (0 once it is gone).
fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The largest sample taken from `from` up to `to` (seconds since the start), in MiB.
fn peak(samples: &[(f64, u64)], from: f64, to: f64) -> f64 {
    samples
        .iter()
        .filter(|(t, _)| *t >= from && *t < to)
        .map(|(_, b)| *b)
        .max()
        .unwrap_or(0) as f64
        / (1024.0 * 1024.0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut arg =
        |default: u64| -> u64 { args.next().and_then(|a| a.parse().ok()).unwrap_or(default) };
    let (enterprises, outage_secs, rate) = (arg(20_000), arg(60), arg(50_000));
    let bin = repo_root().join("target/release/steward");
    assert!(
        bin.exists(),
        "build it first: cargo build --release --bin steward"
    );
    let mut lines: Vec<(Feed, Vec<u8>)> = Vec::new();
    generate(&gen(enterprises as u32), &mut |_| {}, &mut |r| {
        lines.push((r.feed, r.line))
    })
    .expect("generate");
    let first = lines.len() / 10;
    let ns = Namespace::new("bench_outage");
    produce_records(&ns.cfg, &lines[..first]);

    let started = Instant::now();
    let mut child = spawn_captured(
        Command::new(&bin)
            .args(["serve", "--metrics-addr", "127.0.0.1:0", "-w", "2"])
            .args(["--drain-after", "5", "--exit-when-drained", "--config"])
            .arg(&ns.config)
            .env("RUST_LOG", "warn,pipeline=info")
            .stdout(Stdio::null()),
    )
    .expect("spawn steward serve");
    // (seconds since the start, resident bytes), every 100 ms until `done`.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (done, pid) = (done.clone(), child.id());
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !done.load(Ordering::SeqCst) {
                samples.push((started.elapsed().as_secs_f64(), rss(pid)));
                std::thread::sleep(Duration::from_millis(100));
            }
            samples
        })
    };
    ns.wait_for_first_changes(Duration::from_secs(600))
        .expect("no output yet");
    let outage_start = started.elapsed().as_secs_f64();
    let restore = (outage_secs > 0).then(|| {
        services("stop", "clickhouse");
        Restore("start", "clickhouse")
    });
    // The rest of the input at `rate`, in 10 ms slices.
    let producer = FeedProducer::new(&ns.cfg);
    let produce_start = Instant::now();
    for (i, (feed, line)) in lines[first..].iter().enumerate() {
        producer.send(*feed, line);
        let due = Duration::from_secs_f64(i as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(produce_start.elapsed()) {
            if wait >= Duration::from_millis(10) {
                std::thread::sleep(wait);
            }
        }
    }
    producer.flush();
    let produce_secs = produce_start.elapsed().as_secs_f64();
    if let Some(left) = Duration::from_secs(outage_secs).checked_sub(produce_start.elapsed()) {
        std::thread::sleep(left);
    }
    drop(restore);
    let outage_end = started.elapsed().as_secs_f64();
    let status = e2e::serve::wait_exit(&mut child, Duration::from_secs(3600));
    assert!(status.success(), "steward serve failed: {status}");
    let exit = started.elapsed().as_secs_f64();
    done.store(true, Ordering::SeqCst);
    let samples = sampler.join().expect("sampler");

    let rest = (lines.len() - first) as f64;
    println!(
        "{enterprises} enterprises, {} records ({first} before the start); ClickHouse down \
         {outage_secs} s from {outage_start:.1} s",
        lines.len()
    );
    println!(
        "input during the outage: {rest:.0} records in {produce_secs:.1} s = {:.0} records/s \
         (asked {rate})",
        rest / produce_secs
    );
    println!(
        "peak RSS: before {:.0} MiB, during {:.0} MiB, after {:.0} MiB",
        peak(&samples, 0.0, outage_start),
        peak(&samples, outage_start, outage_end),
        peak(&samples, outage_end, f64::MAX)
    );
    println!(
        "exit {:.1} s after ClickHouse was back ({exit:.1} s in all)",
        exit - outage_end
    );
    let cat = Arc::new(Catalogue::embedded());
    let (log, rejected) = read_log(&ns.cfg);
    let want = expected_by_replay(&log, &cat);
    check(
        &ns,
        &snapshot(&ns),
        &want,
        lines.len() as u64,
        &log,
        rejected,
    );
    println!("result: equal to the replay of the run's own log");
}
