//! Outages: ClickHouse stopped for 30 s in the middle of a `steward serve` run (once its
//! first outputs are in ClickHouse, and while more input arrives), then the Kafka broker
//! restarted, then the rest of the input. The run must complete with the same result as if
//! nothing happened: what the dataflow replayed over the run's own log implies, nothing
//! lost or duplicated.
//!
//! It stops and starts the shared services with `scripts/services.sh stop|start NAME`, so it
//! is its own test binary (cargo runs test binaries one at a time).

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::serve::{
    check, expected_by_replay, gen, produce_part, read_log, serve_draining_after, snapshot, wait,
};
use e2e::{repo_root, Namespace};
use rules::catalogue::Catalogue;

fn services(verb: &str, name: &str) {
    let status = Command::new(repo_root().join("scripts/services.sh"))
        .args([verb, name])
        .status()
        .expect("services.sh");
    assert!(status.success(), "services.sh {verb} {name}: {status}");
}

/// Starts the service again if the test fails while it is stopped.
struct Restore(&'static str);

impl Drop for Restore {
    fn drop(&mut self) {
        services("start", self.0);
    }
}

/// Rows in the namespace's `colour_history` (0 while ClickHouse or the table is not there).
fn changes_written(ns: &Namespace) -> u64 {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(
        ns.clickhouse()
            .query("SELECT count() FROM colour_history")
            .fetch_one::<u64>(),
    )
    .unwrap_or(0)
}

#[test]
fn a_clickhouse_outage_and_a_broker_restart_lose_and_duplicate_nothing() {
    let cat = Arc::new(Catalogue::embedded());
    let ns = Namespace::new("e2e_outage");
    let history = gen(250);
    let mut n = 0u64;
    rules::generate::generate(&history, &mut |_| {}, &mut |_| n += 1).expect("generate");
    // The input arrives in three parts: before the outages, while ClickHouse is down, and
    // after the broker restart.
    let mut produced = produce_part(&ns.cfg, &history, 0..n / 2);
    let started = Instant::now();
    // Long enough not to declare the input complete during the 30 s outage.
    let child = serve_draining_after(&ns, 40.0);
    while changes_written(&ns) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no output yet"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    {
        let _restore = Restore("clickhouse");
        services("stop", "clickhouse");
        eprintln!(
            "clickhouse stopped at {:.1} s",
            started.elapsed().as_secs_f64()
        );
        produced += produce_part(&ns.cfg, &history, n / 2..n * 3 / 4);
        std::thread::sleep(Duration::from_secs(30));
    }
    eprintln!(
        "clickhouse back at {:.1} s",
        started.elapsed().as_secs_f64()
    );
    {
        let _restore = Restore("kafka");
        services("stop", "kafka");
        eprintln!("kafka stopped at {:.1} s", started.elapsed().as_secs_f64());
        std::thread::sleep(Duration::from_secs(3));
    }
    eprintln!("kafka back at {:.1} s", started.elapsed().as_secs_f64());
    produced += produce_part(&ns.cfg, &history, n * 3 / 4..n);
    assert_eq!(produced, n);
    wait(child, Duration::from_secs(600));
    eprintln!("run complete at {:.1} s", started.elapsed().as_secs_f64());
    let (log, rejected) = read_log(&ns.cfg);
    let want = expected_by_replay(&log, &cat);
    check(&ns, &snapshot(&ns), &want, produced, &log, rejected);
}
