//! Benchmark: records per second from the Kafka feed topics to ClickHouse and the output
//! topics, end to end, with `steward serve` (release build) on the local services.
//!
//! ```sh
//! cargo build --release --bin steward
//! cargo run --release -p e2e --example serve_throughput -- [ENTERPRISES] [RUNS]
//! ```
//! Each run produces the generated history of ENTERPRISES firms (default 700, about 110k
//! records) into fresh topics, then times `steward serve --drain-after 1 --exit-when-drained`
//! from start to exit (which includes 1 s of idle wait before the input is declared
//! complete), and prints records/s per run and the median.

use std::process::{Command, Stdio};
use std::time::Instant;

use e2e::serve::{gen, produce};
use e2e::{repo_root, Namespace};

fn main() {
    let mut args = std::env::args().skip(1);
    let enterprises: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(700);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let bin = repo_root().join("target/release/steward");
    assert!(
        bin.exists(),
        "build it first: cargo build --release --bin steward"
    );
    let mut rates = Vec::new();
    for run in 1..=runs {
        let ns = Namespace::new("bench_serve");
        let records = produce(&ns.cfg, &gen(enterprises));
        let started = Instant::now();
        let status = Command::new(&bin)
            .args([
                "serve",
                "--metrics-addr",
                "127.0.0.1:0",
                "--drain-after",
                "1",
            ])
            .args(["--exit-when-drained", "-w", "2", "--config"])
            .arg(&ns.config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .status()
            .expect("steward serve");
        assert!(status.success(), "steward serve: {status}");
        let secs = started.elapsed().as_secs_f64();
        let rate = records as f64 / secs;
        println!("run {run}: {records} records in {secs:.1} s: {rate:.0} records/s");
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!("median: {:.0} records/s", rates[rates.len() / 2]);
}
