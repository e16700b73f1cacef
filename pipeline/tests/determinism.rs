//! Shuffled arrival within the allowed lateness and duplicated deliveries give the same
//! state and the same colour-change and alert sequences as the generated arrival order.

use std::sync::Arc;

use pipeline::ingest::Ingest;
use pipeline::replay::{replay, Replayed, Schedule};
use rules::catalogue::Catalogue;
use rules::event::Feed;
use rules::generate::{generate, GenConfig};

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

fn run(records: &[(Feed, Vec<u8>, Option<i64>)], workers: usize) -> (Replayed, u64) {
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
    let dup = ingest.duplicate;
    let log = pipeline::replay::shared(std::mem::take(&mut ingest.log));
    let until = log.iter().map(|a| a.v).max().unwrap_or(0);
    let out = replay(
        log,
        Arc::new(cat),
        None,
        Some(rules::supervision::Supervision::embedded().commitments),
        timely::Config::process(workers),
        Schedule {
            batch: 500,
            until,
            profile: None,
        },
        |_, _, _| {},
    )
    .expect("dataflow runs");
    (out, dup)
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
