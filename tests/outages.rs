//! Outages in the middle of a `steward serve` run (once its first outputs are in
//! ClickHouse, and while more input arrives): ClickHouse stopped for 30 s then the Kafka
//! broker restarted; the broker frozen, then ClickHouse frozen. Each run must complete with
//! the same result as if nothing happened: what the dataflow replayed over the run's own
//! log implies, nothing lost or duplicated.
//!
//! It stops, starts, pauses and resumes the shared services with `scripts/services.sh`, so
//! it is its own test binary (cargo runs test binaries one at a time), and its tests run
//! one at a time (a lock).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::serve::{
    check, consumers_replaced, expected_by_replay, gen, produce_part, read_log,
    serve_draining_after, snapshot, wait_exit,
};
use e2e::{services, Namespace, Restore};
use rules::catalogue::Catalogue;

/// One outage: `scripts/services.sh verb name`, then `undo name` after `hold` seconds (also
/// when the test fails meanwhile). Input arrives during it, or else right after it.
struct Outage {
    name: &'static str,
    verb: &'static str,
    undo: &'static str,
    hold: u64,
    input_during: bool,
}

impl Outage {
    fn run(&self, started: &Instant, mut input: impl FnMut() -> u64) -> u64 {
        let at = || started.elapsed().as_secs_f64();
        let restore = Restore(self.undo, self.name);
        services(self.verb, self.name);
        eprintln!("{}: {} at {:.1} s", self.name, self.verb, at());
        let mut produced = if self.input_during { input() } else { 0 };
        std::thread::sleep(Duration::from_secs(self.hold));
        drop(restore);
        eprintln!("{}: {} at {:.1} s", self.name, self.undo, at());
        if !self.input_during {
            produced = input();
        }
        produced
    }
}

/// One outage test at a time: they stop and freeze the services that they share.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `steward serve` over 250 enterprises' history that arrives in three parts: before
/// the `first` outage (which starts once the run's first outputs are in ClickHouse), with
/// it, and with the `second`. The run must complete with what the dataflow replayed over
/// its own log implies: nothing lost or duplicated.
fn survives(prefix: &str, first: Outage, second: Outage) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cat = Arc::new(Catalogue::embedded());
    let ns = Namespace::new(prefix);
    let history = gen(250);
    let mut n = 0u64;
    rules::generate::generate(&history, &mut |_| {}, &mut |_| n += 1).expect("generate");
    let mut produced = produce_part(&ns.cfg, &history, 0..n / 2);
    let started = Instant::now();
    // Long enough not to declare the input complete during an outage.
    let mut child = serve_draining_after(&ns, 40.0);
    while ns.changes_written() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no output yet"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    produced += first.run(&started, || {
        produce_part(&ns.cfg, &history, n / 2..n * 3 / 4)
    });
    produced += second.run(&started, || produce_part(&ns.cfg, &history, n * 3 / 4..n));
    assert_eq!(produced, n);
    let status = wait_exit(&mut child, Duration::from_secs(600));
    assert!(status.success(), "steward serve failed: {status}");
    eprintln!(
        "run complete at {:.1} s; stalled Kafka consumers replaced: {}",
        started.elapsed().as_secs_f64(),
        consumers_replaced(&child)
    );
    let (log, rejected) = read_log(&ns.cfg);
    let want = expected_by_replay(&log, &cat);
    check(&ns, &snapshot(&ns), &want, produced, &log, rejected);
}

/// ClickHouse stopped for 30 s while input arrives, then the broker restarted.
#[test]
fn a_clickhouse_outage_and_a_broker_restart_lose_and_duplicate_nothing() {
    let stopped = |name, hold, input_during| Outage {
        name,
        verb: "stop",
        undo: "start",
        hold,
        input_during,
    };
    survives(
        "e2e_outage",
        stopped("clickhouse", 30, true),
        stopped("kafka", 3, false),
    );
}

/// The broker frozen for 70 s (longer than the clients' 60 s socket timeout), with input
/// arriving after it, then ClickHouse frozen for 30 s while input arrives: services that
/// stop answering without closing their connections, as starved or swapping ones do. The
/// clients time out, reconnect and must read on (librdkafka can leave an assigned consumer
/// stalled after such a reconnect; `connectors::kafka::StallWatch` replaces it).
#[test]
fn frozen_services_lose_and_duplicate_nothing() {
    let frozen = |name, hold, input_during| Outage {
        name,
        verb: "pause",
        undo: "resume",
        hold,
        input_during,
    };
    survives(
        "e2e_frozen",
        frozen("kafka", 70, false),
        frozen("clickhouse", 30, true),
    );
}
