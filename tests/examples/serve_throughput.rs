//! Benchmark: records per second from the Kafka feed topics to ClickHouse and the output
//! topics, end to end, with `steward serve` (release build) on the local services.
//!
//! ```sh
//! cargo build --release --bin steward
//! cargo run --release -p e2e --example serve_throughput -- [ENTERPRISES] [RUNS] [PROCESSES]
//! ```
//! Each run produces the generated history of ENTERPRISES firms (default 700, about 110k
//! records) into fresh topics, then times `steward serve --drain-after 1 --exit-when-drained`
//! from start to exit (which includes 1 s of idle wait before the input is declared
//! complete), and prints records/s per run and the median. With PROCESSES (default 1) above
//! 1, serve runs as a cluster of that many processes on localhost, one worker each (else one
//! process with 2 workers).
//!
//! Each run also gives the CPU seconds (user + system) that `steward` (all its processes),
//! the Kafka broker and ClickHouse spent during the serve: the machine's 2 cores are
//! shared by all three, so CPU per record is the steadier measure of a change to `serve`
//! (its wall time moves with the machine's load). The services' figures come from their
//! pid files under `STEWARD_CACHE` (default `<repo>/.cache`, as `scripts/services.sh`
//! writes them), and are left out when a service was started otherwise.
//!
//! Beside each run it states the physical limit (issue 17 item 6): the same topics read to
//! their end with the reader `serve` uses (`connectors::kafka::FeedSource`: `read_committed`,
//! a queue per partition) and every record decoded and validated with `rules::decode`, on
//! one thread, with nothing else done. `serve` can be no faster than that on one core per
//! feed reader; the ratio says how much of the limit it reaches.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use connectors::kafka::FeedSource;
use e2e::serve::{cluster_layouts, gen, produce};
use e2e::{repo_root, service_dir, Namespace};
use rules::decode::{decode, DecodeConfig};
use rules::event::Feed;

/// Records per second of consuming and decoding every record of `ns`'s feed topics (which
/// hold `records` records), with a consumer group of its own.
fn consume_and_decode(ns: &Namespace, records: u64) -> f64 {
    let mut k = ns.cfg.kafka.clone();
    k.group_id = format!("{}-limit", ns.name);
    let feed_of: BTreeMap<&str, Feed> = k
        .topics
        .feeds
        .iter()
        .filter_map(|(code, topic)| Some((topic.as_str(), Feed::parse(code)?)))
        .collect();
    let topics: Vec<&str> = feed_of.keys().copied().collect();
    let cfg = DecodeConfig::default();
    let started = Instant::now();
    let mut source = FeedSource::new(&k, &topics).expect("feed source");
    let (mut read, mut valid) = (0u64, 0u64);
    while read < records {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "read {read} of {records} records"
        );
        // A broker just started may answer "not coordinator" for a while; `serve` retries
        // such errors, and so does this reader.
        let batch = match source.poll(10_000, Duration::from_millis(100)) {
            Ok(batch) => batch,
            Err(e) => {
                eprintln!("  limit: {e}; retrying");
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        for (topic, m) in batch {
            read += 1;
            valid +=
                u64::from(decode(&m.payload, feed_of.get(topic.as_str()).copied(), &cfg).is_ok());
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("  limit: {read} records ({valid} valid) consumed and decoded in {secs:.1} s");
    records as f64 / secs
}

/// Seconds of `/proc`'s clock ticks (`USER_HZ`, 100 on Linux whatever the kernel's tick).
const TICK: f64 = 0.01;

/// The fields of a `/proc/<pid>/stat` line after the command name (which may hold spaces):
/// the first is field 3, `state`.
fn stat_fields(pid: &str) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// CPU seconds, user + system: of this process's waited children (fields 16 and 17,
/// `cutime` and `cstime`) for `pid` `self`, else of the process (fields 14 and 15).
fn cpu_secs(pid: &str) -> Option<f64> {
    let f = stat_fields(pid)?;
    let (u, s) = if pid == "self" { (13, 14) } else { (11, 12) };
    Some((f.get(u)? + f.get(s)?) as f64 * TICK)
}

/// The CPU seconds so far of `steward`'s processes once waited for, the Kafka broker and
/// ClickHouse (`None` for a service without a pid file).
fn cpu_now() -> [Option<f64>; 3] {
    let service = |name: &str| {
        let pid = std::fs::read_to_string(service_dir(name).join("pid")).ok()?;
        cpu_secs(pid.trim())
    };
    [cpu_secs("self"), service("kafka"), service("clickhouse")]
}

/// The CPU seconds between two [`cpu_now`] readings, as text.
fn cpu_spent(before: [Option<f64>; 3], after: [Option<f64>; 3]) -> (Option<f64>, String) {
    let d: [Option<f64>; 3] = std::array::from_fn(|i| Some(after[i]? - before[i]?));
    let show = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |x| format!("{x:.2} s"));
    let text = format!(
        "CPU: steward {}, Kafka {}, ClickHouse {}",
        show(d[0]),
        show(d[1]),
        show(d[2])
    );
    (d[0], text)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let enterprises: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(700);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let processes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let bin = repo_root().join("target/release/steward");
    assert!(
        bin.exists(),
        "build it first: cargo build --release --bin steward"
    );
    let (mut rates, mut limits, mut cpus) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        let ns = Namespace::new("bench_serve");
        let records = produce(&ns.cfg, &gen(enterprises));
        let limit = consume_and_decode(&ns, records);
        let cpu_before = cpu_now();
        let started = Instant::now();
        let layouts = if processes > 1 {
            cluster_layouts(&ns, processes)
        } else {
            vec![vec!["-w".to_owned(), "2".to_owned()]]
        };
        let children: Vec<_> = layouts
            .iter()
            .map(|layout| {
                Command::new(&bin)
                    .args(["serve", "--metrics-addr", "127.0.0.1:0"])
                    .args(["--drain-after", "1", "--exit-when-drained", "--config"])
                    .arg(&ns.config)
                    .args(layout)
                    .env(
                        "RUST_LOG",
                        std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
                    )
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("steward serve")
            })
            .collect();
        for mut child in children {
            let status = child.wait().expect("steward serve");
            assert!(status.success(), "steward serve: {status}");
        }
        let secs = started.elapsed().as_secs_f64();
        let (steward_cpu, cpu) = cpu_spent(cpu_before, cpu_now());
        let rate = records as f64 / secs;
        println!(
            "run {run}: {records} records in {secs:.1} s: {rate:.0} records/s; limit {limit:.0} \
             records/s; serve at {:.3} of the limit; {cpu}",
            rate / limit
        );
        rates.push(rate);
        limits.push(limit);
        cpus.extend(steward_cpu.map(|c| c / records as f64 * 1e6));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (rate, limit) = (median(&mut rates), median(&mut limits));
    let per_record = if cpus.is_empty() {
        String::new()
    } else {
        format!("; steward's CPU {:.1} µs per record", median(&mut cpus))
    };
    println!(
        "median: serve {rate:.0} records/s; limit (consume + decode, one thread) {limit:.0} \
         records/s; ratio {:.3}{per_record}",
        rate / limit
    );
}
