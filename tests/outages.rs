//! Outages: ClickHouse stopped for 30 s in the middle of a `steward serve` run, then the Kafka
//! broker restarted. The run must complete with the same result as if nothing happened:
//! what the dataflow replayed over the run's own log implies, nothing lost or duplicated.
//!
//! It stops and starts the shared services with `scripts/services.sh stop|start NAME`, so it
//! is its own test binary (cargo runs test binaries one at a time).

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::serve::{check, expected_by_replay, gen, produce, read_log, serve, snapshot, wait};
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

#[test]
fn a_clickhouse_outage_and_a_broker_restart_lose_and_duplicate_nothing() {
    let cat = Arc::new(Catalogue::embedded());
    let ns = Namespace::new("e2e_outage");
    let produced = produce(&ns.cfg, &gen(250));
    let started = Instant::now();
    let child = serve(&ns);
    std::thread::sleep(Duration::from_secs(3));
    {
        let _restore = Restore("clickhouse");
        services("stop", "clickhouse");
        eprintln!(
            "clickhouse stopped at {:.1} s",
            started.elapsed().as_secs_f64()
        );
        std::thread::sleep(Duration::from_secs(30));
    }
    eprintln!(
        "clickhouse back at {:.1} s",
        started.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(3));
    {
        let _restore = Restore("kafka");
        services("stop", "kafka");
        eprintln!("kafka stopped at {:.1} s", started.elapsed().as_secs_f64());
        std::thread::sleep(Duration::from_secs(3));
    }
    eprintln!("kafka back at {:.1} s", started.elapsed().as_secs_f64());
    wait(child, Duration::from_secs(900));
    eprintln!("run complete at {:.1} s", started.elapsed().as_secs_f64());
    let (log, rejected) = read_log(&ns.cfg);
    let want = expected_by_replay(&log, &cat);
    check(&ns, &snapshot(&ns), &want, produced, &log, rejected);
}
