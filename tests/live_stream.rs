//! "Try it live" (README): `steward generate --kafka --rate` streams generated feeds into
//! Kafka at a steady rate, `steward serve` turns them into outputs, and Kafka's own console
//! consumer (`scripts/services.sh console-consumer`) reads the colour-change topic.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::serve::{read_topic, serve, snapshot, wait};
use e2e::{repo_root, steward_bin, Namespace};
use generator::{generate, GenConfig};

#[test]
fn a_generated_stream_reaches_serve_and_the_console_consumer() {
    let ns = Namespace::new("e2e_live");
    let (enterprises, rate) = (40, 4000);
    let gen = GenConfig {
        enterprises,
        seed: 5,
        years: 2,
        ..GenConfig::default()
    };
    let mut want = 0u64;
    generate(&gen, &mut |_| {}, &mut |_| want += 1).expect("generate");

    let started = Instant::now();
    let out = Command::new(steward_bin().expect("steward"))
        .args(["generate", "--kafka", "--config"])
        .arg(&ns.config)
        .args([
            "--enterprises",
            &enterprises.to_string(),
            "--seed",
            "5",
            "--years",
            "2",
        ])
        .args(["--rate", &rate.to_string()])
        .stdout(Stdio::null())
        .output()
        .expect("steward generate");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "steward generate --kafka: {stderr}");
    assert!(
        stderr.contains(&format!("produced {want} records")),
        "{stderr}"
    );
    // The rate bounds the stream from above: it cannot finish sooner.
    let least = Duration::from_secs_f64((want - 1) as f64 / f64::from(rate));
    assert!(took >= least, "{want} records in {took:?} at {rate}/s");
    let on_topics: usize = ns
        .cfg
        .kafka
        .topics
        .feeds
        .values()
        .map(|t| read_topic(&ns.cfg, t).len())
        .sum();
    assert_eq!(
        on_topics as u64, want,
        "every generated record on its feed topic"
    );

    wait(serve(&ns), Duration::from_secs(300));
    let changes = snapshot(&ns).topic_changes;
    assert!(!changes.is_empty(), "the stream changed colours");

    let consumer = Command::new(repo_root().join("scripts/services.sh"))
        .args(["console-consumer", &ns.cfg.kafka.topics.colour_changes])
        .args(["--timeout-ms", "15000"])
        .stderr(Stdio::null())
        .output()
        .expect("console consumer");
    let text = String::from_utf8_lossy(&consumer.stdout);
    let read: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(
        read.len(),
        changes.len(),
        "the console consumer reads every change"
    );
    assert!(read.iter().all(|m| m["format_version"] == 3));
}
