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

/// How a service is taken away, as `scripts/services.sh` verbs: the verb and its undo.
#[derive(Clone, Copy)]
enum How {
    /// Stopped, then started again.
    Stop,
    /// Frozen (SIGSTOP), then let go on: it stops answering without closing connections.
    Freeze,
}

impl How {
    fn verbs(self) -> (&'static str, &'static str) {
        match self {
            How::Stop => ("stop", "start"),
            How::Freeze => ("pause", "resume"),
        }
    }
}

/// One outage of the service `name` for `hold` seconds (undone also when the test fails
/// meanwhile). Input arrives during it, or else right after it.
struct Outage {
    name: &'static str,
    how: How,
    hold: u64,
    input_during: bool,
}

impl Outage {
    fn run(&self, started: &Instant, mut input: impl FnMut() -> u64) -> u64 {
        let at = || started.elapsed().as_secs_f64();
        let (verb, undo) = self.how.verbs();
        let restore = Restore(undo, self.name);
        services(verb, self.name);
        eprintln!("{}: {verb} at {:.1} s", self.name, at());
        let during = self.input_during.then(&mut input);
        std::thread::sleep(Duration::from_secs(self.hold));
        drop(restore);
        eprintln!("{}: {undo} at {:.1} s", self.name, at());
        during.unwrap_or_else(input)
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
    ns.wait_for_first_changes(Duration::from_secs(300))
        .expect("no output yet");
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
    survives(
        "e2e_outage",
        Outage {
            name: "clickhouse",
            how: How::Stop,
            hold: 30,
            input_during: true,
        },
        Outage {
            name: "kafka",
            how: How::Stop,
            hold: 3,
            input_during: false,
        },
    );
}

/// The broker frozen for 70 s (longer than the clients' 60 s socket timeout), with input
/// arriving after it, then ClickHouse frozen for 30 s while input arrives: services that
/// stop answering without closing their connections, as starved or swapping ones do. The
/// clients time out, reconnect and must read on (librdkafka can leave an assigned consumer
/// stalled after such a reconnect; `connectors::kafka::StallWatch` replaces it).
#[test]
fn frozen_services_lose_and_duplicate_nothing() {
    survives(
        "e2e_frozen",
        Outage {
            name: "kafka",
            how: How::Freeze,
            hold: 70,
            input_during: false,
        },
        Outage {
            name: "clickhouse",
            how: How::Freeze,
            hold: 30,
            input_during: true,
        },
    );
}
