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

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use connectors::clickhouse::{AlertRow, ChangeRow, DeadLetterRow, StateRow};
use connectors::config::Config;
use e2e::{read_topic, steward_bin, Namespace};
use pipeline::log::{Body, Entry};
use rand::{Rng, SeedableRng};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::Message;
use rules::catalogue::Catalogue;
use rules::generate::{generate, GenConfig};
use rules::lifecycle::Accepted;

/// Produces the generated records of `gen` to the feed topics of `cfg`, keyed by USCC;
/// returns how many.
fn produce(cfg: &Config, gen: &GenConfig) -> u64 {
    connectors::kafka::ensure_topics(
        &cfg.kafka,
        &cfg.kafka
            .topics
            .feeds
            .values()
            .map(|t| (t.as_str(), 3, false))
            .collect::<Vec<_>>(),
    )
    .expect("feed topics");
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let mut n = 0u64;
    generate(gen, &mut |_| {}, &mut |r| {
        let key = serde_json::from_slice::<serde_json::Value>(&r.line)
            .ok()
            .and_then(|v| v.get("uscc").and_then(|u| u.as_str()).map(str::to_owned))
            .unwrap_or_default();
        let topic = cfg.kafka.topics.feed(r.feed).to_owned();
        let mut rec = BaseRecord::to(&topic).key(&key).payload(&r.line);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        n += 1;
    })
    .expect("generate");
    producer.flush(Duration::from_secs(60)).expect("flush");
    n
}

fn serve(ns: &Namespace) -> Child {
    Command::new(steward_bin().expect("steward binary"))
        .args(["serve", "--config"])
        .arg(&ns.config)
        .args(["--drain-after", "1.5", "--exit-when-drained", "-w", "2"])
        .env("RUST_LOG", "warn,pipeline=info")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn steward serve")
}

fn wait(mut child: Child, limit: Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "steward serve failed: {status}");
            return;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("steward serve did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Everything a run leaves behind, in a canonical order.
#[derive(Debug, PartialEq)]
struct Snapshot {
    states: Vec<StateRow>,
    changes: Vec<ChangeRow>,
    alerts: Vec<AlertRow>,
    letters: Vec<DeadLetterRow>,
    records: u64,
    topic_changes: Vec<serde_json::Value>,
    topic_alerts: usize,
    topic_letters: usize,
}

fn snapshot(ns: &Namespace) -> Snapshot {
    let ch = ns.clickhouse();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let states: Vec<StateRow> = ch
            .query("SELECT ?fields FROM enterprise_state FINAL WHERE deleted = 0 ORDER BY uscc")
            .fetch_all()
            .await
            .expect("states");
        let changes: Vec<ChangeRow> = ch
            .query("SELECT ?fields FROM colour_history ORDER BY as_of, uscc, change_id")
            .fetch_all()
            .await
            .expect("changes");
        let alerts: Vec<AlertRow> = ch
            .query("SELECT ?fields FROM alerts ORDER BY as_of, uscc, alert_id")
            .fetch_all()
            .await
            .expect("alerts");
        let mut letters: Vec<DeadLetterRow> = ch
            .query("SELECT ?fields FROM dead_letters ORDER BY letter_id")
            .fetch_all()
            .await
            .expect("letters");
        // Decoder rejects carry the wall-clock time of rejection, which no rerun repeats.
        for l in &mut letters {
            if l.offset >= 0 {
                l.time = 0;
            }
        }
        let records: u64 = ch
            .query("SELECT count() FROM (SELECT * FROM records FINAL)")
            .fetch_one()
            .await
            .expect("records");
        let t = &ns.cfg.kafka.topics;
        let mut topic_changes: Vec<serde_json::Value> = read_topic(&ns.cfg, &t.colour_changes)
            .into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).expect("json"))
            .collect();
        topic_changes.sort_by(|a, b| a["change_id"].as_str().cmp(&b["change_id"].as_str()));
        Snapshot {
            states,
            changes,
            alerts,
            letters,
            records,
            topic_changes,
            topic_alerts: read_topic(&ns.cfg, &t.alerts).len(),
            topic_letters: read_topic(&ns.cfg, &t.dead_letters).len(),
        }
    })
}

/// The log the run wrote: accepted records and decoder rejects.
fn read_log(cfg: &Config) -> (Vec<Accepted>, usize) {
    let mut accepted = Vec::new();
    let mut rejected = 0;
    for (_, v) in read_topic(cfg, &cfg.kafka.topics.accepted) {
        let e = Entry::decode(&v).expect("log entry");
        match &e.body {
            Body::Accepted { .. } => accepted.push(e.record().expect("record")),
            Body::Rejected { .. } => rejected += 1,
            Body::Watermark => {}
        }
    }
    (accepted, rejected)
}

fn gen() -> GenConfig {
    GenConfig {
        enterprises: std::env::var("STEWARD_E2E_ENTERPRISES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(700),
        seed: 11,
        years: 3,
        ..GenConfig::default()
    }
}

#[test]
fn serve_equals_the_reference_and_a_killed_run_equals_an_uninterrupted_one() {
    let cat = Catalogue::embedded();
    let clean = Namespace::new("e2e_serve");
    let produced = produce(&clean.cfg, &gen());
    assert!(
        produced >= 100_000 || std::env::var("STEWARD_E2E_ENTERPRISES").is_ok(),
        "{produced} records"
    );
    let started = Instant::now();
    wait(serve(&clean), Duration::from_secs(900));
    eprintln!(
        "uninterrupted run: {produced} records in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Against the reference, over the log the run wrote.
    let (log, rejected) = read_log(&clean.cfg);
    let until = log
        .iter()
        .map(|a| a.event.ingest_time)
        .max()
        .expect("records");
    let reference = rules::reference::run(&log, until, &cat);
    let snap = snapshot(&clean);
    let ids = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<_>>();
    let mut want: Vec<&str> = reference
        .changes
        .iter()
        .map(|c| c.change_id.as_str())
        .collect();
    want.sort_unstable();
    let mut got: Vec<&str> = snap.changes.iter().map(|c| c.change_id.as_str()).collect();
    got.sort_unstable();
    assert_eq!(
        ids(got),
        ids(want.clone()),
        "colour_history = reference changes"
    );
    let mut topic: Vec<&str> = snap
        .topic_changes
        .iter()
        .map(|c| c["change_id"].as_str().expect("id"))
        .collect();
    topic.sort_unstable();
    assert_eq!(
        ids(topic),
        ids(want),
        "colour-change topic = reference changes, once each"
    );
    let mut want_alerts: Vec<&str> = reference
        .alerts
        .iter()
        .map(|a| a.alert_id.as_str())
        .collect();
    want_alerts.sort_unstable();
    let mut got_alerts: Vec<&str> = snap.alerts.iter().map(|a| a.alert_id.as_str()).collect();
    got_alerts.sort_unstable();
    assert_eq!(
        ids(got_alerts),
        ids(want_alerts),
        "alerts = reference alerts"
    );
    assert_eq!(snap.topic_alerts, reference.alerts.len());
    let states: BTreeMap<&str, &StateRow> =
        snap.states.iter().map(|s| (s.uscc.as_str(), s)).collect();
    assert_eq!(
        states.len(),
        reference.last.len(),
        "one state per enterprise"
    );
    for (u, (e, published)) in &reference.last {
        let s = states
            .get(u.as_str())
            .unwrap_or_else(|| panic!("{u} has no state"));
        let colour = published.unwrap_or(rules::score::Colour::None);
        assert_eq!(
            (s.colour.as_str(), s.s, &s.triggers, s.r),
            (colour.as_str(), e.s, &e.triggers, e.risk),
            "{u}"
        );
    }
    // Counting: every record read is applied, a duplicate, or dead-lettered.
    let letters_decoder = snap.letters.iter().filter(|l| l.offset >= 0).count();
    assert_eq!(
        letters_decoder, rejected,
        "one dead letter per decoder reject"
    );
    let duplicates = produced as usize - log.len() - rejected;
    assert!(
        duplicates > 0 && rejected > 0,
        "the data has duplicates and malformed records"
    );
    assert_eq!(snap.records as usize, log.len(), "records = accepted");
    let lifecycle: BTreeSet<String> = reference
        .dead
        .iter()
        .map(|d| format!("{} {} version {}", d.id.0, d.id.1, d.version))
        .collect();
    let got_lifecycle: BTreeSet<String> = snap
        .letters
        .iter()
        .filter(|l| l.offset < 0)
        .map(|l| l.message.clone())
        .collect();
    assert_eq!(got_lifecycle, lifecycle, "lifecycle dead letters");
    assert_eq!(snap.topic_letters, snap.letters.len());
    for l in snap.letters.iter().filter(|l| l.offset >= 0) {
        assert!(l.source_topic.starts_with(&clean.name), "{l:?}");
        assert!(!l.reason.is_empty() && !l.message.is_empty(), "{l:?}");
        assert!(!l.original.is_empty(), "{l:?}");
    }

    // Killed at random points, restarted each time.
    let crashed = Namespace::new("e2e_crash");
    assert_eq!(produce(&crashed.cfg, &gen()), produced);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let uninterrupted = started.elapsed().as_secs_f64();
    let mut kills = 0;
    while kills < 6 {
        let mut child = serve(&crashed);
        let at = Duration::from_secs_f64(rng.random_range(1.0..(uninterrupted / 4.0).max(2.0)));
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
        "after the last kill: finished in {:.1} s",
        restarted.elapsed().as_secs_f64()
    );
    let after = snapshot(&crashed);
    assert_eq!(
        after.changes.len(),
        snap.changes.len(),
        "colour_history rows"
    );
    assert_eq!(after.alerts.len(), snap.alerts.len(), "alert rows");
    assert_eq!(after.letters.len(), snap.letters.len(), "dead letters");
    assert_eq!(after.records, snap.records, "records");
    assert_eq!(
        after.topic_changes.len(),
        snap.topic_changes.len(),
        "colour-change messages"
    );
    assert_eq!(after.topic_alerts, snap.topic_alerts);
    assert_eq!(after.topic_letters, snap.topic_letters);
    // Topic names differ by namespace; the content must not.
    let strip = |s: &Snapshot, ns: &Namespace| {
        s.letters
            .iter()
            .map(|l| {
                (
                    l.source_topic.replacen(&ns.name, "", 1),
                    l.partition,
                    l.offset,
                    l.reason.clone(),
                    l.time,
                )
            })
            .collect::<Vec<_>>()
    };
    let mut a = strip(&after, &crashed);
    let mut b = strip(&snap, &clean);
    a.sort();
    b.sort();
    assert_eq!(a, b, "dead letters");
    assert!(after.states == snap.states, "enterprise_state");
    assert!(after.changes == snap.changes, "colour_history");
    assert!(after.alerts == snap.alerts, "alerts");
    assert!(
        after.topic_changes == snap.topic_changes,
        "colour-change topic"
    );
}
