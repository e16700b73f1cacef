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

use std::process::{Command, Stdio};
use std::time::Instant;

use e2e::serve::{cluster_layouts, gen, produce};
use e2e::{repo_root, Namespace};

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
    let mut rates = Vec::new();
    for run in 1..=runs {
        let ns = Namespace::new("bench_serve");
        let records = produce(&ns.cfg, &gen(enterprises));
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
        let rate = records as f64 / secs;
        println!("run {run}: {records} records in {secs:.1} s: {rate:.0} records/s");
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!("median: {:.0} records/s", rates[rates.len() / 2]);
}
