//! Benchmark: latency from ingest time to a published colour change, at a fixed input rate,
//! with `steward serve` (release build, live clock) on the local services.
//!
//! ```sh
//! cargo build --release --bin steward
//! cargo run --release -p e2e --example serve_latency -- [RATE] [SECS] [LATENESS] [DELAY_MS]
//! ```
//! - RATE records/s (default 2,000) for SECS seconds (default 60), taken in arrival order from
//!   a generated one-year history that ends now; each record's `ingest_time` is rewritten
//!   to the wall clock when it is produced, so every record is visible when it arrives.
//! - LATENESS: the catalogue's allowed lateness `L` in seconds (default 0). Outputs at
//!   logical time `t` are final, and published, only once the watermark has passed `t`, that
//!   is `L` seconds after `t` at the earliest (`docs/decisions.md` D10).
//! - DELAY_MS: the ClickHouse batch's time bound, `batch.max_delay_ms` (default 100).
//!
//! A `read_committed` consumer takes the wall time at which each colour change arrives.
//! Latency is that time minus `as_of` (the change's logical second: the ingest time of the
//! records that caused it), over the changes with `as_of` inside the producing period. The
//! printout also gives the input rate reached and the consumer lag at the end.
//!
//! ClickHouse visibility: every 200 ms a poller counts the `records` rows by their
//! `ingest_time` second; a record first counted by a query sent at wall time `w` is visible
//! `w − ingest_time` after its ingest (over the records ingested inside the producing
//! period; the poll interval adds up to 0.2 s). It also prints how long after its ingest
//! second each record got its visibility time `v`: a colour change's `as_of` is `v`, so
//! when the pipeline reads records late, ingest → colour change is longer than the colour
//! change latency printed by up to that much. Both latencies
//! are measured from the start of the record's ingest second, so they are up to 1 s above
//! the exact figure (0.5 s on average), like the colour changes' `as_of`.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e::serve::FeedProducer;
use e2e::{repo_root, Namespace};
use generator::{generate, GenConfig};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;
use rules::time::{format_rfc3339, sub_months, Ts};

fn wall_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut arg =
        |default: u64| -> u64 { args.next().and_then(|a| a.parse().ok()).unwrap_or(default) };
    let (rate, secs, lateness, delay_ms) = (arg(2_000), arg(60), arg(0), arg(100));
    let bin = repo_root().join("target/release/steward");
    assert!(
        bin.exists(),
        "build it first: cargo build --release --bin steward"
    );

    // Enough generated history for the whole run, ending now.
    let now = wall_secs() as Ts;
    let needed = rate * secs;
    let mut lines: Vec<(rules::event::Feed, Vec<u8>)> = Vec::new();
    let mut enterprises = 100u32;
    while (lines.len() as u64) < needed {
        lines.clear();
        let gen = GenConfig {
            enterprises,
            seed: 5,
            years: 1,
            start: sub_months(now, 12),
            ..GenConfig::default()
        };
        generate(&gen, &mut |_| {}, &mut |r| {
            lines.push((r.feed, r.line.clone()))
        })
        .expect("generate");
        enterprises *= 2;
    }
    lines.truncate(needed as usize);

    let ns = Namespace::new("bench_latency");
    let text = std::fs::read_to_string(&ns.config)
        .expect("config")
        .replace("mode = \"replay\"", "mode = \"live\"")
        .replace("max_delay_ms = 200", &format!("max_delay_ms = {delay_ms}"));
    std::fs::write(&ns.config, text).expect("config");
    let catalogue = std::env::temp_dir().join(format!("{}-catalogue.toml", ns.name));
    let cat_text = std::fs::read_to_string(repo_root().join("rules/catalogue/v1.toml"))
        .expect("catalogue")
        .replace(
            "lateness_secs = 600",
            &format!("lateness_secs = {lateness}"),
        );
    std::fs::write(&catalogue, cat_text).expect("catalogue");
    let producer = FeedProducer::new(&ns.cfg);

    let mut child = Command::new(&bin)
        .args(["serve", "--metrics-addr", "127.0.0.1:0", "-w", "2"])
        .arg("--config")
        .arg(&ns.config)
        .arg("--catalogue")
        .arg(&catalogue)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .spawn()
        .expect("steward serve");

    // The consumer: arrival wall time of every colour change, by its `as_of`.
    let arrivals: Arc<Mutex<Vec<(Ts, f64)>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (arrivals, done) = (arrivals.clone(), done.clone());
        let topic = ns.cfg.kafka.topics.colour_changes.clone();
        let brokers = ns.cfg.kafka.brokers.clone();
        std::thread::spawn(move || {
            let c: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("group.id", format!("{topic}-latency"))
                .set("auto.offset.reset", "earliest")
                .set("isolation.level", "read_committed")
                .set("fetch.wait.max.ms", "10")
                .create()
                .expect("consumer");
            c.subscribe(&[&topic]).expect("subscribe");
            while !done.load(Ordering::SeqCst) {
                if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
                    let at = wall_secs();
                    let v: serde_json::Value =
                        serde_json::from_slice(m.payload().unwrap_or_default()).expect("json");
                    let as_of = v["as_of"]
                        .as_str()
                        .and_then(rules::time::parse_rfc3339)
                        .or_else(|| v["as_of"].as_i64())
                        .expect("as_of");
                    arrivals.lock().expect("lock").push((as_of, at));
                }
            }
        })
    };
    // The poller: when each record becomes visible in ClickHouse, by its ingest second.
    let visible: Arc<Mutex<Vec<(Ts, f64)>>> = Arc::default();
    let poller = {
        let (visible, done) = (visible.clone(), done.clone());
        let client = ns.clickhouse();
        std::thread::spawn(move || {
            #[derive(clickhouse::Row, serde::Deserialize)]
            struct Second {
                t: u32,
                n: u64,
            }
            let rt = e2e::runtime();
            let mut counted: BTreeMap<u32, u64> = BTreeMap::new();
            while !done.load(Ordering::SeqCst) {
                // The rows a query counts were visible when it started: a slow answer does
                // not make them later.
                let at = wall_secs();
                let rows = rt.block_on(
                    client
                        .query(
                            "SELECT toUInt32(ingest_time) AS t, count() AS n FROM records \
                             WHERE ingest_time >= toDateTime(?) GROUP BY t",
                        )
                        .bind(now)
                        .fetch_all::<Second>(),
                );
                for r in rows.unwrap_or_default() {
                    let before = counted.insert(r.t, r.n).unwrap_or(0);
                    let mut v = visible.lock().expect("lock");
                    v.extend(std::iter::repeat_n(
                        (Ts::from(r.t), at),
                        r.n.saturating_sub(before) as usize,
                    ));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(5));

    // The producer, at a fixed rate, in steps of 10 ms.
    let start = wall_secs();
    let started = Instant::now();
    let mut sent = 0u64;
    for (feed, line) in &lines {
        let due = Duration::from_secs_f64(sent as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait.min(Duration::from_millis(10)));
        }
        let payload = match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(mut v) if v.get("ingest_time").is_some() => {
                v["ingest_time"] = format_rfc3339(wall_secs() as Ts).into();
                serde_json::to_vec(&v).expect("json")
            }
            _ => line.clone(),
        };
        producer.send(*feed, &payload);
        sent += 1;
    }
    producer.flush();
    let produced_for = started.elapsed().as_secs_f64();
    let end = wall_secs();
    // Until no colour change has arrived for a while (the pipeline may still be catching up).
    let quiet = Duration::from_secs(lateness + 15);
    let (mut seen, mut since) = (0, Instant::now());
    while since.elapsed() < quiet {
        std::thread::sleep(Duration::from_secs(1));
        let n = arrivals.lock().expect("lock").len();
        if n != seen {
            (seen, since) = (n, Instant::now());
        }
    }
    done.store(true, Ordering::SeqCst);
    reader.join().expect("reader");
    poller.join().expect("poller");
    // How long after its ingest second each record was given its visibility time `v`: a
    // colour change's `as_of` is `v`, so its latency above is counted from there.
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Delays {
        q: Vec<f64>,
        max: i64,
    }
    let delays = e2e::runtime()
        .block_on(
            ns.clickhouse()
                .query(
                    "SELECT quantiles(0.5, 0.99)(toInt64(v) - toInt64(ingest_time)) AS q, \
                     max(toInt64(v) - toInt64(ingest_time)) AS max FROM records \
                     WHERE ingest_time >= toDateTime(?)",
                )
                .bind(now)
                .fetch_one::<Delays>(),
        )
        .expect("v - ingest_time");
    let _ = child.kill();
    let _ = child.wait();

    let arrivals = arrivals.lock().expect("lock");
    // Latencies of the events at logical seconds inside the producing period, sorted.
    let in_period = |events: &[(Ts, f64)]| {
        let mut l: Vec<f64> = events
            .iter()
            .filter(|(t, _)| (*t as f64) >= start.floor() && (*t as f64) < end)
            .map(|(t, at)| at - *t as f64)
            .collect();
        l.sort_by(f64::total_cmp);
        l
    };
    let q = |l: &[f64], p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let latencies = in_period(&arrivals);
    let visible = in_period(&visible.lock().expect("lock"));
    let mut per_second: BTreeMap<Ts, usize> = BTreeMap::new();
    for (as_of, _) in arrivals.iter() {
        *per_second.entry(*as_of).or_default() += 1;
    }
    println!(
        "rate {rate}/s asked, {:.0}/s reached ({sent} records in {produced_for:.1} s); L = {lateness} s; \
         ClickHouse batch delay {delay_ms} ms",
        sent as f64 / produced_for
    );
    println!(
        "{} colour changes in the period ({} in all, over {} logical seconds): \
         latency p50 {:.3} s, p99 {:.3} s, max {:.3} s",
        latencies.len(),
        arrivals.len(),
        per_second.len(),
        q(&latencies, 0.50),
        q(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "v − ingest_time of the records: p50 {} s, p99 {} s, max {} s (a colour change's \
         latency is counted from v, so ingest → colour change is up to this much longer)",
        delays.q.first().copied().unwrap_or(f64::NAN),
        delays.q.get(1).copied().unwrap_or(f64::NAN),
        delays.max
    );
    println!(
        "{} records visible in ClickHouse `records` ({} produced in the period): \
         ingest → visible p50 {:.3} s, p99 {:.3} s, max {:.3} s",
        visible.len(),
        sent,
        q(&visible, 0.50),
        q(&visible, 0.99),
        visible.last().copied().unwrap_or(f64::NAN)
    );
}
