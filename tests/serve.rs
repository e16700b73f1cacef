//! `steward serve` end to end on real Kafka and ClickHouse.
//!
//! Generated feeds (every feed, duplicates, corrections, late and malformed records) are
//! produced to the feed topics. Then:
//! - an uninterrupted run must equal the `rules` reference computation over the log it
//!   wrote, count every record once (read = applied + duplicate + dead-lettered) and
//!   dead-letter the malformed records with their origin;
//! - a run killed with SIGKILL at random points and restarted each time must leave the same
//!   ClickHouse tables and the same `read_committed` colour-change topic as the
//!   uninterrupted run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::serve::{
    check, dead_message, expected_by_replay, final_time, gen, produce, read_log, serve, snapshot,
    sorted, wait, Expected, Snapshot,
};
use e2e::Namespace;
use rand::{Rng, SeedableRng};
use rules::catalogue::Catalogue;
use rules::lifecycle::Accepted;

/// A small run against the from-scratch reference computation itself.
#[test]
fn serve_equals_the_reference() {
    let cat = Catalogue::embedded();
    let ns = Namespace::new("e2e_ref");
    let produced = produce(&ns.cfg, &gen(40));
    wait(serve(&ns), Duration::from_secs(300));
    let (log, rejected) = read_log(&ns.cfg);
    let until = final_time(&log);
    let r = rules::reference::run(
        &log,
        until,
        None,
        &cat,
        &rules::supervision::Supervision::embedded().commitments,
    );
    let want = Expected {
        changes: sorted(r.changes.iter().map(|c| c.change_id.clone()).collect()),
        alerts: sorted(r.alerts.iter().map(|a| a.alert_id.clone()).collect()),
        states: r
            .last
            .iter()
            .map(|(u, (e, c))| {
                let colour = c.unwrap_or(rules::score::Colour::None).as_str().to_owned();
                (u.clone(), (colour, e.s, e.triggers.clone(), e.risk))
            })
            .collect(),
        lifecycle: r.dead.iter().map(dead_message).collect(),
        scheduled: Vec::new(),
        checks: Vec::new(),
    }
    .with_commitments(&r.scheduled, &r.checks);
    check(&ns, &snapshot(&ns), &want, produced, &log, rejected);

    // ClickHouse `records` holds the same log, with the same visibility times (what
    // `steward train --from-clickhouse` reads).
    let source = pipeline::model::dataset::Source::ClickHouse(Box::new(ns.cfg.clickhouse.clone()));
    let stored = pipeline::model::dataset::load_log(&source, &cat).expect("records");
    let canonical = |a: &Accepted| (a.v, a.digest, rules::decode::encode(&a.event));
    assert_eq!(
        sorted_by(&stored, canonical),
        sorted_by(&log, canonical),
        "records = the log"
    );
}

/// 100k records: an uninterrupted run equals the dataflow replayed over its log (which the
/// oracle test proves equal to the reference), and a run killed at random points equals
/// the uninterrupted run.
#[test]
fn killed_runs_equal_an_uninterrupted_run() {
    let cat = Arc::new(Catalogue::embedded());
    let enterprises = std::env::var("STEWARD_E2E_ENTERPRISES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(700);
    let clean = Namespace::new("e2e_clean");
    let produced = produce(&clean.cfg, &gen(enterprises));
    assert!(
        produced >= 100_000 || enterprises != 700,
        "{produced} records"
    );
    let started = Instant::now();
    wait(serve(&clean), Duration::from_secs(900));
    let uninterrupted = started.elapsed().as_secs_f64();
    eprintln!("uninterrupted run: {produced} records in {uninterrupted:.1} s");
    let (log, rejected) = read_log(&clean.cfg);
    let want = expected_by_replay(&log, &cat);
    let snap = snapshot(&clean);
    check(&clean, &snap, &want, produced, &log, rejected);

    // Killed at random points, restarted each time.
    let crashed = Namespace::new("e2e_crash");
    assert_eq!(produce(&crashed.cfg, &gen(enterprises)), produced);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut kills = 0;
    while kills < 6 {
        let mut child = serve(&crashed);
        let at = Duration::from_secs_f64(rng.random_range(0.5..(uninterrupted / 3.0).max(1.0)));
        std::thread::sleep(at);
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        kills += 1;
        eprintln!("killed after {:.1} s", at.as_secs_f64());
    }
    assert!(kills >= 5, "killed {kills} times before it finished");
    let restarted = Instant::now();
    wait(serve(&crashed), Duration::from_secs(900));
    eprintln!(
        "after the last kill: caught up and finished in {:.1} s",
        restarted.elapsed().as_secs_f64()
    );
    // Nothing lost, nothing duplicated: the killed run's tables and topics are exactly what
    // its log implies.
    let (crashed_log, crashed_rejected) = read_log(&crashed.cfg);
    let after = snapshot(&crashed);
    check(
        &crashed,
        &after,
        &expected_by_replay(&crashed_log, &cat),
        produced,
        &crashed_log,
        crashed_rejected,
    );
    // And the same input as the uninterrupted run: the same records accepted, the same
    // decoder rejects with the same origins.
    let ids = |a: &Accepted| {
        (
            a.event.feed(),
            a.event.event_id.clone(),
            a.event.version,
            a.digest,
        )
    };
    assert_eq!(
        sorted_by(&crashed_log, ids),
        sorted_by(&log, ids),
        "accepted records"
    );
    assert_eq!(crashed_rejected, rejected, "decoder rejects");
    let origins = |s: &Snapshot, ns: &Namespace| {
        let mut v: Vec<_> = s
            .letters
            .iter()
            .filter(|l| l.offset >= 0)
            .map(|l| {
                (
                    l.source_topic.replacen(&ns.name, "", 1),
                    l.partition,
                    l.offset,
                    l.reason.clone(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        origins(&after, &crashed),
        origins(&snap, &clean),
        "dead letters"
    );
    // Identical outputs as well when both runs gave every record the same visibility time
    // (they differ only if a late record was judged against a different watermark).
    let vs = |a: &Accepted| {
        (
            a.event.feed(),
            a.event.event_id.clone(),
            a.event.version,
            a.v,
        )
    };
    if sorted_by(&crashed_log, vs) == sorted_by(&log, vs) {
        assert!(after.states == snap.states, "enterprise_state");
        assert!(after.changes == snap.changes, "colour_history");
        assert!(after.alerts == snap.alerts, "alerts");
        assert!(
            after.topic_changes == snap.topic_changes,
            "colour-change topic"
        );
    } else {
        eprintln!("the two runs gave some late records other visibility times; outputs compared with each run's own log only");
    }
}

/// `f` of every record of `log`, sorted.
fn sorted_by<T: Ord>(log: &[Accepted], f: impl Fn(&Accepted) -> T) -> Vec<T> {
    let mut v: Vec<T> = log.iter().map(f).collect();
    v.sort();
    v
}
