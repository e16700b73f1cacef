//! Shuffled arrival within the allowed lateness and duplicated deliveries give the same
//! state and the same colour-change and alert sequences as the generated arrival order; a
//! generated history resumed from checkpoints gives the same as one run (D68).

use std::sync::Arc;

use engine::ingest::Ingest;
use engine::replay::{replay, Replayed, Schedule};
use generator::{generate, GenConfig};
use rules::catalogue::Catalogue;
use rules::event::Feed;

/// Generated raw records in arrival order, with their `ingest_time` (None if malformed).
fn raw() -> Vec<(Feed, Vec<u8>, Option<i64>)> {
    let cfg = GenConfig {
        enterprises: 40,
        seed: 5,
        years: 2,
        ..GenConfig::default()
    };
    let mut out = Vec::new();
    generate(&cfg, &mut |_| {}, &mut |r| {
        let ingest = serde_json::from_slice::<serde_json::Value>(&r.line)
            .ok()
            .and_then(|v| {
                v["ingest_time"]
                    .as_str()
                    .and_then(rules::time::parse_rfc3339)
            });
        out.push((r.feed, r.line, ingest));
    })
    .expect("valid config");
    out
}

/// The accepted records of `records` (decoded and admitted), and how many were duplicates.
fn admitted(records: &[(Feed, Vec<u8>, Option<i64>)]) -> (Vec<rules::lifecycle::Accepted>, u64) {
    let cat = Catalogue::embedded();
    let mut ingest = Ingest::new(&cat, std::io::sink());
    for (i, (feed, line, _)) in records.iter().enumerate() {
        if let Some(e) = ingest
            .decode(*feed, i as u64, line)
            .expect("sink never fails")
        {
            ingest.admit(e);
        }
    }
    (std::mem::take(&mut ingest.log), ingest.duplicate)
}

/// Replays `log` on `workers` workers with the commitment loop, as `schedule` says.
fn replay_log(log: &[rules::lifecycle::Accepted], workers: usize, schedule: Schedule) -> Replayed {
    replay(
        engine::replay::shared(log.to_vec()),
        Arc::new(Catalogue::embedded()),
        None,
        Some(rules::supervision::Supervision::embedded().commitments),
        timely::Config::process(workers),
        schedule,
        |_, _, _| {},
    )
    .expect("dataflow runs")
}

fn run(records: &[(Feed, Vec<u8>, Option<i64>)], workers: usize) -> (Replayed, u64) {
    let (log, dup) = admitted(records);
    let until = log.iter().map(|a| a.v).max().unwrap_or(0);
    (replay_log(&log, workers, Schedule::new(500, until)), dup)
}

fn state_lines(r: &Replayed) -> Vec<String> {
    r.states
        .iter()
        .map(|(u, (s, c))| format!("{u} {c:?} {s:?}"))
        .collect()
}

/// Moves records later in the arrival order, but never past a record whose ingest time is
/// more than `lateness` after theirs: every record stays within the allowed lateness.
fn shuffle_within(records: &mut [(Feed, Vec<u8>, Option<i64>)], lateness: i64, seed: u64) {
    let mut x = seed;
    for i in (1..records.len()).rev() {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = i.saturating_sub((x >> 60) as usize % 3);
        let (a, b) = (records[j].2, records[i].2);
        if j < i && matches!((a, b), (Some(a), Some(b)) if (a - b).abs() < lateness / 4) {
            records.swap(i, j);
        }
    }
}

#[test]
fn shuffled_and_duplicated_arrival_gives_identical_outputs() {
    let original = raw();
    let (base, base_dups) = run(&original, 1);
    assert!(!base.changes.is_empty() && !base.states.is_empty());

    let mut shuffled = original.clone();
    shuffle_within(&mut shuffled, 600, 17);
    assert_ne!(
        shuffled.iter().map(|r| &r.1).collect::<Vec<_>>(),
        original.iter().map(|r| &r.1).collect::<Vec<_>>(),
        "the shuffle moved something"
    );
    // Every 7th record is delivered twice.
    let mut doubled = Vec::new();
    for (i, r) in shuffled.into_iter().enumerate() {
        doubled.push(r.clone());
        if i % 7 == 0 {
            doubled.push(r);
        }
    }
    let (other, dups) = run(&doubled, 2);
    assert!(
        dups > base_dups,
        "the extra deliveries were counted as duplicates"
    );
    assert_eq!(state_lines(&other), state_lines(&base));
    assert_eq!(other.changes, base.changes);
    assert_eq!(other.alerts, base.alerts);
    assert_eq!(other.dead, base.dead);
    assert!(!base.scheduled.is_empty() && !base.checks.is_empty());
    assert_eq!(other.scheduled, base.scheduled);
    assert_eq!(other.checks, base.checks);
}

#[test]
fn a_generated_history_resumed_from_checkpoints_gives_the_same_outputs() {
    let (log, _) = admitted(&raw());
    let (first, last) = (log.iter().map(|a| a.v).min(), log.iter().map(|a| a.v).max());
    let (first, until) = (first.expect("records"), last.expect("records"));
    let whole = replay_log(&log, 2, Schedule::new(500, until));
    for part in 1..4 {
        // A checkpoint at a quarter, half and three quarters of the history.
        let cut = first + (until - first) * part / 4;
        let before = Schedule {
            checkpoint: true,
            ..Schedule::new(500, cut)
        };
        let before = replay_log(&log, 2, before);
        let checkpoint = engine::checkpoint::Checkpoint {
            format: engine::checkpoint::FORMAT,
            at: cut,
            setup: String::new(),
            workers: before.kept.values().cloned().collect(),
        };
        let after = Schedule {
            resume: Some(Arc::new(checkpoint)),
            ..Schedule::new(500, until)
        };
        let after = replay_log(&log, 2, after);
        assert_eq!(state_lines(&after), state_lines(&whole), "cut at {cut}");
        assert!(!before.changes.is_empty() && !after.changes.is_empty());
        assert_eq!(
            [&before.changes[..], &after.changes[..]].concat(),
            whole.changes
        );
        assert_eq!(
            [&before.alerts[..], &after.alerts[..]].concat(),
            whole.alerts
        );
        assert_eq!(
            [&before.scheduled[..], &after.scheduled[..]].concat(),
            whole.scheduled
        );
        assert_eq!(
            [&before.checks[..], &after.checks[..]].concat(),
            whole.checks
        );
        assert_eq!(after.dead, whole.dead);
        assert_eq!(after.statuses, whole.statuses);
    }
}
