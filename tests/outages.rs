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

use connectors::clickhouse::{ChangeRow, ClickHouse, ClickHouseError};
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
/// its own log implies: nothing lost or duplicated. ClickHouse requests time out after 5 s
/// (`clickhouse.timeout_secs`, D73); returns how many times the run warned that one did.
fn survives(prefix: &str, first: Outage, second: Outage) -> usize {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cat = Arc::new(Catalogue::embedded());
    let ns = Namespace::new(prefix).edited("timeout_secs = 30", "timeout_secs = 5");
    let history = gen(250);
    let mut n = 0u64;
    generator::generate(&history, &mut |_| {}, &mut |_| n += 1).expect("generate");
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
    let timeouts = child.warned("no answer within 5 s");
    eprintln!(
        "run complete at {:.1} s; stalled Kafka consumers replaced: {}; Kafka producers \
         abandoned in send_offsets: {}; ClickHouse requests timed out: {timeouts}",
        started.elapsed().as_secs_f64(),
        consumers_replaced(&child),
        child.warned("abandoning the producer"),
    );
    let (log, rejected) = read_log(&ns.cfg);
    let want = expected_by_replay(&log, &cat);
    check(&ns, &snapshot(&ns), &want, produced, &log, rejected);
    timeouts
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

/// ClickHouse frozen for 30 s while input arrives, then the broker frozen for 70 s (longer
/// than the clients' 60 s socket timeout) with input arriving after it: services that stop
/// answering without closing their connections, as starved or swapping ones do. The sink's
/// ClickHouse requests time out (they must: the input keeps the sink writing), and inserts
/// whose outcome is unknown are settled before they are retried (D73). The Kafka clients
/// time out, reconnect and must read on (librdkafka can leave an assigned consumer stalled
/// after such a reconnect; `connectors::kafka::StallWatch` replaces it, D69, D74).
#[test]
fn frozen_services_lose_and_duplicate_nothing() {
    let timeouts = survives(
        "e2e_frozen",
        Outage {
            name: "clickhouse",
            how: How::Freeze,
            hold: 30,
            input_during: true,
        },
        Outage {
            name: "kafka",
            how: How::Freeze,
            hold: 70,
            input_during: false,
        },
    );
    assert!(
        timeouts > 0,
        "no ClickHouse request timed out while it was frozen"
    );
}

/// A `colour_history` row of test enterprise `i`.
fn change(i: u32) -> ChangeRow {
    ChangeRow {
        change_id: format!("settle-{i}"),
        uscc: format!("9133000000000{i:05}"),
        as_of: 1_700_000_000 + i,
        from_colour: "green".into(),
        to_colour: "yellow".into(),
        direction: "worse".into(),
        score: Some(612.5),
        score_colour: "yellow".into(),
        triggers: Vec::new(),
        reason_indicators: Vec::new(),
        reason_contributions: Vec::new(),
        reasons: "[]".into(),
        region: String::new(),
        industry: String::new(),
        model_version: String::new(),
        rules_version: "test".into(),
    }
}

/// An insert that times out while ClickHouse is frozen may still land once the server runs
/// again (it may have received the whole request). `insert_once` settles that attempt
/// before it tries again, so every row is in the table exactly once, whether the attempt
/// landed or not (D73).
#[test]
fn an_insert_that_timed_out_is_settled_before_it_is_retried() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Namespace::new("e2e_settle").edited("timeout_secs = 30", "timeout_secs = 2");
    let ch = ClickHouse::new(&ns.cfg.clickhouse).expect("client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(ch.migrate()).expect("migrations");
    let rows: Vec<ChangeRow> = (0..2000).map(change).collect();
    let mut pending = rows.clone();
    let mut unsettled = None;
    {
        let _restore = Restore("resume", "clickhouse");
        services("pause", "clickhouse");
        let started = Instant::now();
        let e = rt
            .block_on(ch.insert_once(&mut pending, &mut unsettled))
            .expect_err("the server is frozen");
        assert!(matches!(e, ClickHouseError::TimedOut { .. }), "{e}");
        assert!(started.elapsed() < Duration::from_secs(10), "{e}");
        assert!(unsettled.is_some(), "the attempt is remembered");
    }
    // Retried as the sink retries, until it lands.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut settling = 0;
    while let Err(e) = rt.block_on(ch.insert_once(&mut pending, &mut unsettled)) {
        assert!(Instant::now() < deadline, "still failing: {e}");
        settling += usize::from(matches!(e, ClickHouseError::Unsettled { .. }));
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "the timed-out attempt {}; retries that waited for it: {settling}",
        if pending.is_empty() {
            "landed"
        } else {
            "did not land"
        }
    );
    let db = ns.clickhouse();
    let count = |sql: &str| rt.block_on(db.query(sql).fetch_one::<u64>()).expect(sql);
    assert_eq!(count("SELECT count() FROM colour_history"), 2000);
    assert_eq!(
        count("SELECT uniqExact(change_id) FROM colour_history"),
        2000
    );
}
