//! Shuffled arrival within the allowed lateness and duplicated deliveries give the same
//! state and the same colour-change and alert sequences as the generated arrival order; a
//! generated history resumed from checkpoints gives the same as one run (D68); outputs taken
//! step by step are the outputs collected (D116).

use std::sync::{Arc, Mutex};

use engine::ingest::Ingest;
use engine::replay::{replay, Outputs, Replayed, Schedule, Steps};
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
    replay_stepping(log, workers, schedule, |_, _, _, _| {})
}

/// [`replay_log`] with `on_step` after each step.
fn replay_stepping(
    log: &[rules::lifecycle::Accepted],
    workers: usize,
    schedule: Schedule,
    on_step: impl Fn(usize, i64, &engine::tracker::Tracker, &mut Outputs) + Send + Sync + 'static,
) -> Replayed {
    replay(
        engine::replay::shared(log.to_vec()),
        Arc::new(Catalogue::embedded()),
        None,
        Some(rules::supervision::Supervision::embedded().commitments),
        timely::Config::process(workers),
        schedule,
        on_step,
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

/// Each step's outputs taken as they come and merged over workers (`Steps`, as `steward run`
/// writes them, D116), in steps of 100 records, are the outputs a replay in steps of 500
/// collects and sorts at its end, in the same order.
#[test]
fn outputs_merged_step_by_step_are_the_collected_outputs() {
    let (log, _) = admitted(&raw());
    let until = log.iter().map(|a| a.v).max().expect("records");
    let whole = replay_log(&log, 2, Schedule::new(500, until));
    let collected = Outputs {
        changes: whole.changes,
        alerts: whole.alerts,
        scheduled: whole.scheduled,
        checks: whole.checks,
    };
    for workers in [1, 3] {
        // The steps merged so far, and how many of them had outputs.
        let merged = Arc::new(Mutex::new((Steps::new(workers), Outputs::default(), 0)));
        let taken = merged.clone();
        let left = replay_stepping(
            &log,
            workers,
            Schedule::new(100, until),
            move |w, _, _, o| {
                let mut m = taken.lock().expect("no worker panicked");
                let step = m.0.take(w, std::mem::take(o)).expect("in time order");
                if let Some(step) = step.filter(|s| *s != Outputs::default()) {
                    m.1.append(step);
                    m.2 += 1;
                }
            },
        );
        assert!(left.changes.is_empty() && left.alerts.is_empty() && left.scheduled.is_empty());
        let (_, streamed, steps) = Arc::into_inner(merged)
            .expect("the workers are gone")
            .into_inner()
            .expect("no worker panicked");
        assert!(steps > 20, "{workers} workers: {steps} steps with outputs");
        assert_eq!(streamed, collected, "{workers} workers");
    }
}
