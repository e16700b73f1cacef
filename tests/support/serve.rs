//! Helpers of the `steward serve` tests: produce generated feeds, run serve, read back what
//! it left in Kafka and ClickHouse, and compare with what the log implies.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use connectors::clickhouse::{AlertRow, ChangeRow, DeadLetterRow, StateRow};
use connectors::config::Config;
use engine::log::{Body, Entry};
use generator::{generate, GenConfig};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};
use rules::catalogue::Catalogue;
use rules::event::Feed;
use rules::lifecycle::Accepted;
use rules::reject::Reason;
use rules::status::{RecordKey, Status};
use rules::supervision::{Scheduled, Supervision, Verification};

use crate::{conforming, steward_bin, Captured};

/// Produces the generated records of `gen` to the feed topics of `cfg`, keyed by USCC;
/// returns how many.
pub fn produce(cfg: &Config, gen: &GenConfig) -> u64 {
    produce_part(cfg, gen, 0..u64::MAX)
}

/// Produces the generated records of `gen` whose position in arrival order is in `part`;
/// returns how many.
pub fn produce_part(cfg: &Config, gen: &GenConfig, part: std::ops::Range<u64>) -> u64 {
    let producer = FeedProducer::new(cfg);
    let mut n = 0u64;
    let mut position = 0u64;
    generate(gen, &mut |_| {}, &mut |r| {
        position += 1;
        if !part.contains(&(position - 1)) {
            return;
        }
        producer.send(r.feed, &r.line);
        n += 1;
    })
    .expect("generate");
    producer.flush();
    n
}

/// Produces JSON records to their feed topics of `cfg`, keyed by USCC, in order; returns how
/// many.
pub fn produce_records(cfg: &Config, records: &[(Feed, Vec<u8>)]) -> u64 {
    let producer = FeedProducer::new(cfg);
    for (feed, line) in records {
        producer.send(*feed, line);
    }
    producer.flush();
    records.len() as u64
}

/// A producer to the feed topics (created if missing).
pub struct FeedProducer<'c> {
    cfg: &'c Config,
    producer: ThreadedProducer<DefaultProducerContext>,
}

impl std::fmt::Debug for FeedProducer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedProducer").finish_non_exhaustive()
    }
}

impl<'c> FeedProducer<'c> {
    /// Creates the feed topics of `cfg` (3 partitions each) if missing, and a producer.
    ///
    /// A broker that has just come back from an outage (the outage tests resume it right
    /// before they produce) may refuse or time out the request for a while: it is asked
    /// again, for up to two minutes.
    pub fn new(cfg: &'c Config) -> Self {
        let topics: Vec<(&str, i32, bool)> = cfg
            .kafka
            .topics
            .feeds
            .values()
            .map(|t| (t.as_str(), 3, false))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(120);
        while let Err(e) = connectors::kafka::ensure_topics(&cfg.kafka, &topics) {
            assert!(Instant::now() < deadline, "feed topics: {e}");
            eprintln!("feed topics: {e}; asking again");
            std::thread::sleep(Duration::from_secs(2));
        }
        let producer = ClientConfig::new()
            .set("bootstrap.servers", &cfg.kafka.brokers)
            .set("enable.idempotence", "true")
            .set("linger.ms", "20")
            .set("queue.buffering.max.messages", "1000000")
            .create()
            .expect("producer");
        FeedProducer { cfg, producer }
    }

    /// Sends one record of `feed`, keyed by its USCC.
    pub fn send(&self, feed: Feed, line: &[u8]) {
        let key = serde_json::from_slice::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("uscc").and_then(|u| u.as_str()).map(str::to_owned))
            .unwrap_or_default();
        let topic = self.cfg.kafka.topics.feed(feed).to_owned();
        // An explicit partition (from the key, or the bytes of a record without one), so
        // that every namespace gets the same partitions and offsets.
        let mut h = std::hash::DefaultHasher::new();
        if key.is_empty() {
            line.hash(&mut h);
        } else {
            key.hash(&mut h);
        }
        let partition = (h.finish() % 3) as i32;
        let mut rec = BaseRecord::to(&topic)
            .key(&key)
            .payload(line)
            .partition(partition);
        loop {
            match self.producer.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }

    /// Waits until every record sent is acknowledged.
    pub fn flush(&self) {
        self.producer.flush(Duration::from_secs(60)).expect("flush");
    }
}

/// Starts `steward serve` on `ns`, draining and exiting once the input is complete.
pub fn serve(ns: &crate::Namespace) -> Captured {
    serve_draining_after(ns, 1.5)
}

/// [`serve`], declaring the input complete after `idle` seconds without records.
pub fn serve_draining_after(ns: &crate::Namespace, idle: f64) -> Captured {
    crate::spawn_captured(steward_serve(ns, idle).args(["-w", "2"])).expect("spawn steward serve")
}

/// Starts `steward serve` on `ns` as a timely cluster of `processes` processes on localhost
/// (one worker each), draining and exiting once the input is complete.
pub fn serve_cluster(ns: &crate::Namespace, processes: usize) -> Vec<Captured> {
    cluster_layouts(ns, processes)
        .iter()
        .map(|layout| {
            crate::spawn_captured(steward_serve(ns, 1.5).args(layout)).expect("spawn steward serve")
        })
        .collect()
}

/// The layout arguments of each process of a timely cluster of `processes` processes on
/// localhost, one worker each (`-w 1 -n N -p I --hostfile H`); writes the host file (free
/// ports).
pub fn cluster_layouts(ns: &crate::Namespace, processes: usize) -> Vec<Vec<String>> {
    let hosts: String = (0..processes)
        .map(|_| format!("127.0.0.1:{}\n", crate::free_port().expect("a free port")))
        .collect();
    let path = std::env::temp_dir().join(format!("{}-hosts", ns.name));
    std::fs::write(&path, hosts).expect("hostfile");
    let (n, h) = (processes.to_string(), path.display().to_string());
    (0..processes)
        .map(|p| {
            ["-w", "1", "-n", &n, "-p", &p.to_string(), "--hostfile", &h]
                .map(str::to_owned)
                .to_vec()
        })
        .collect()
}

/// The `steward serve` command on `ns`, draining after `idle` seconds without records and
/// exiting then; the caller adds the layout.
fn steward_serve(ns: &crate::Namespace, idle: f64) -> Command {
    // Through a shell that lifts the core-file limit and then becomes the binary (same pid):
    // a crash leaves a core for [`wait_exit`] to read.
    let mut c = Command::new("sh");
    c.args(["-c", "ulimit -c unlimited 2>/dev/null; exec \"$0\" \"$@\""])
        .arg(steward_bin().expect("steward binary"))
        .args(["serve", "--config"])
        .arg(&ns.config)
        .args(["--drain-after", &idle.to_string(), "--exit-when-drained"])
        .args(["--metrics-addr", "127.0.0.1:0"])
        // connectors::http announces the metrics address, which a timed-out wait scrapes.
        .env("RUST_LOG", "warn,pipeline=info,connectors::http=info")
        .stdout(Stdio::null());
    c
}

/// Whether a checkpoint of `ns`'s `steward serve` is on disk (D68).
pub fn checkpoint_on_disk(ns: &crate::Namespace) -> bool {
    let dir = std::path::Path::new(&ns.cfg.checkpoints.dir).join(&ns.cfg.kafka.transactional_id);
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "json"))
        })
        .unwrap_or(false)
}

/// Whether `child` logged that it resumed from a checkpoint (D68).
pub fn resumed(child: &Captured) -> bool {
    child
        .lines()
        .iter()
        .any(|l| l.contains("resuming from a checkpoint"))
}

/// How many times `child` replaced a Kafka consumer that had stopped fetching
/// (`connectors::kafka::StallWatch`).
pub fn consumers_replaced(child: &Captured) -> usize {
    child.warned("the consumer stopped fetching with data left to read")
}

/// Waits until `child` exits successfully (kills it and fails after `limit`).
pub fn wait(mut child: Captured, limit: Duration) {
    let status = wait_exit(&mut child, limit);
    assert!(status.success(), "steward serve failed: {status}");
}

/// Waits until `child` exits, and returns how. After `limit` it prints what the process was
/// doing (its pipeline metrics and, where `gdb` is installed, every thread's stack), kills
/// it and fails.
pub fn wait_exit(child: &mut Captured, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            if let Some(signal) = crashed(status) {
                panic!(
                    "steward serve crashed (signal {signal})\n{}",
                    crash_report(child.id())
                );
            }
            return status;
        }
        if started.elapsed() > limit {
            // The message first: CI's shortened output keeps the head of a failure.
            let (metrics, stacks) = (pipeline_metrics(child), stacks(child.id()));
            let _ = child.kill();
            panic!(
                "steward serve did not finish within {limit:?}\n\
                 --- its pipeline metrics ---\n{metrics}\n--- its threads ---\n{stacks}"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value of `field` (`field=value`) on the first line of `child`'s log holding `needle`
/// and the field.
pub fn logged(child: &Captured, needle: &str, field: &str) -> Option<String> {
    let key = format!("{field}=");
    let lines = child.lines();
    lines.iter().filter(|l| l.contains(needle)).find_map(|l| {
        let at = l.find(&key)? + key.len();
        l[at..].split_whitespace().next().map(str::to_owned)
    })
}

/// The `steward_*` series that are not 0 (without histogram buckets) of `child`'s metrics endpoint, whose
/// address it logged when it started.
fn pipeline_metrics(child: &Captured) -> String {
    let Some(addr) = logged(child, "addr=", "addr") else {
        return "no metrics address in its log".to_owned();
    };
    match crate::http_get(&format!("http://{addr}/metrics")) {
        Ok((_, body)) => body
            .lines()
            .filter(|l| l.starts_with("steward_") && !l.contains("_bucket{") && !l.ends_with(" 0"))
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => format!("scraping http://{addr}/metrics: {e}"),
    }
}

/// Where every thread of process `pid` (but librdkafka's own) is: its name, its innermost
/// frame and its frames in this workspace's sources, from `gdb` when it is installed (given
/// two minutes).
fn stacks(pid: u32) -> String {
    let pid = pid.to_string();
    match gdb(120, ["-p", &pid, "-ex", "thread apply all bt 40"]) {
        Ok(o) => our_frames(&o),
        Err(e) => format!("no stacks (gdb: {e})"),
    }
}

/// `gdb -batch` with `args`, given `secs` seconds.
fn gdb<S: AsRef<std::ffi::OsStr>>(
    secs: u32,
    args: impl IntoIterator<Item = S>,
) -> std::io::Result<std::process::Output> {
    Command::new("timeout")
        .arg(secs.to_string())
        .args(["gdb", "-batch"])
        .args(args)
        .stdin(Stdio::null())
        .output()
}

/// Whether the kernel hands cores to a program (`core_pattern` starts with `|`) instead of
/// writing them to a file.
pub fn cores_piped() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/core_pattern").is_ok_and(|p| p.starts_with('|'))
}

/// The signal that ended a process by a fault of its own (not a kill), if one did.
fn crashed(status: std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt as _;
    // SIGILL, SIGABRT, SIGBUS, SIGFPE, SIGSEGV.
    status.signal().filter(|s| [4, 6, 7, 8, 11].contains(s))
}

/// What the core of crashed process `pid` shows: the faulting thread's whole stack, then
/// the project's frames of every thread; or why there is no core. The core is deleted
/// after (it takes hundreds of MB).
fn crash_report(pid: u32) -> String {
    let Some(core) = core_file(pid) else {
        return "no core file to read (see /proc/sys/kernel/core_pattern)".to_owned();
    };
    let bin = steward_bin().expect("steward binary");
    let ex = std::ffi::OsStr::new;
    let (bt, all) = (ex("bt 80"), ex("thread apply all bt 40"));
    let args = [
        ex("-ex"),
        bt,
        ex("-ex"),
        all,
        bin.as_os_str(),
        core.as_os_str(),
    ];
    let out = gdb(300, args);
    let _ = std::fs::remove_file(&core);
    let o = match out {
        Ok(o) => o,
        Err(e) => return format!("a core at {}, not read (gdb: {e})", core.display()),
    };
    // Up to the first thread of `thread apply all`: the signal and the faulting thread.
    let text = String::from_utf8_lossy(&o.stdout);
    let faulting: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("Thread "))
        .collect();
    format!(
        "--- the faulting thread (gdb, from the core) ---\n{}\n--- every thread ---\n{}",
        faulting.join("\n"),
        our_frames(&o)
    )
}

/// Where the kernel put process `pid`'s core: the file `core_pattern` names (relative to
/// the process's working directory, which is this one), or a dump `coredumpctl` writes out
/// where the pattern pipes cores to systemd.
fn core_file(pid: u32) -> Option<std::path::PathBuf> {
    if cores_piped() {
        let path = std::env::temp_dir().join(format!("steward-core-{pid}"));
        let ok = Command::new("coredumpctl")
            .args(["--no-pager", "-q", "dump", &pid.to_string(), "-o"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        return ok.then_some(path);
    }
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").ok()?;
    let pattern = pattern.trim();
    let mut name = pattern
        .replace("%p", &pid.to_string())
        .replace("%e", "steward");
    let uses_pid =
        std::fs::read_to_string("/proc/sys/kernel/core_uses_pid").is_ok_and(|s| s.trim() == "1");
    if uses_pid && !pattern.contains("%p") {
        name = format!("{name}.{pid}");
    }
    let path = std::path::PathBuf::from(name);
    path.is_file().then_some(path)
}

/// The project's frames of every thread in gdb's output `o` (librdkafka's threads left
/// out), each shortened to `#N function at file:line`; or why there are none.
fn our_frames(o: &std::process::Output) -> String {
    let ours = [
        "pipeline/src/",
        "pipeline/engine/src/",
        "connectors/src/",
        "rules/src/",
    ];
    let mut kept = Vec::new();
    let mut librdkafka = false;
    for l in String::from_utf8_lossy(&o.stdout).lines() {
        if l.starts_with("Thread ") {
            librdkafka = l.contains("\"rdk:");
            if !librdkafka {
                kept.push(l.to_owned());
            }
        } else if !librdkafka
            && (l.starts_with("#0 ") || (l.starts_with('#') && ours.iter().any(|c| l.contains(c))))
        {
            // `#N [0x… in ]function (arguments) at file:line`, shortened to `#N function at …`.
            let n = l.split_whitespace().next().unwrap_or_default();
            let rest = l
                .split_once(" in ")
                .map_or(&l[n.len()..], |(_, r)| r)
                .trim_start();
            let function = rest.split(" (").next().unwrap_or_default();
            let at = l.rfind(" at ").map_or("", |i| &l[i..]);
            kept.push(format!("{n} {function}{at}"));
        }
    }
    if kept.is_empty() {
        let why = String::from_utf8_lossy(&o.stderr);
        return format!(
            "no stacks (gdb: {})",
            why.lines().last().unwrap_or("not installed")
        );
    }
    kept.join("\n")
}

/// Reads every partition of `topic` to its end, committed data only. The end is each
/// partition's high watermark when reading starts: a transaction's commit markers can reach
/// a partition a moment after the commit returned, and until then a `read_committed`
/// reader would stop early at the last stable offset.
pub fn read_topic(cfg: &Config, topic: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    read_messages(cfg, topic)
        .into_iter()
        .map(|m| (m.key, m.payload))
        .collect()
}

/// A message read by [`read_messages`].
#[derive(Debug)]
pub struct Read {
    /// Its key (empty when none).
    pub key: Vec<u8>,
    /// Its payload.
    pub payload: Vec<u8>,
    /// Its headers, with values read as UTF-8.
    pub headers: BTreeMap<String, String>,
}

/// [`read_topic`], with each message's headers.
pub fn read_messages(cfg: &Config, topic: &str) -> Vec<Read> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .set("group.id", format!("{topic}-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in md.topics()[0].partitions() {
        let (_, high) = c
            .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
            .expect("watermarks");
        ends.insert(p.id(), high);
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .expect("partition");
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let started = Instant::now();
    loop {
        let position = c.position().expect("position");
        let done = ends.iter().all(|(p, high)| {
            *high == 0
                || position
                    .find_partition(topic, *p)
                    .is_some_and(|e| matches!(e.offset(), Offset::Offset(o) if o >= *high))
        });
        if done {
            return out;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "reading {topic}: {position:?} short of {ends:?}"
        );
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(Read {
                key: m.key().unwrap_or_default().to_vec(),
                payload: m.payload().unwrap_or_default().to_vec(),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|x| {
                                let value = String::from_utf8_lossy(x.value.unwrap_or_default());
                                (x.key.to_owned(), value.into_owned())
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
}

/// Everything a run leaves behind, in a canonical order.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    /// `enterprise_state FINAL`, live enterprises.
    pub states: Vec<StateRow>,
    /// `colour_history`.
    pub changes: Vec<ChangeRow>,
    /// `alerts`.
    pub alerts: Vec<AlertRow>,
    /// `dead_letters` (decoder rejects with their wall-clock time zeroed).
    pub letters: Vec<DeadLetterRow>,
    /// Rows of `records FINAL`.
    pub records: u64,
    /// The colour-change topic, read committed, by `change_id`.
    pub topic_changes: Vec<serde_json::Value>,
    /// Messages on the alerts topic.
    pub topic_alerts: usize,
    /// Messages on the dead-letter topic.
    pub topic_letters: usize,
    /// Event ids of the records on the internal commitments topic, sorted.
    pub looped: Vec<String>,
    /// `commitment_checks` ids, sorted.
    pub check_ids: Vec<String>,
    /// `v_records`: every record's `(feed, event_id, version, digest, status)`, sorted.
    pub statuses: Vec<(String, String, u32, String, String)>,
}

/// Reads what a run left in ClickHouse and Kafka.
pub fn snapshot(ns: &crate::Namespace) -> Snapshot {
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
            if !Reason::parse(&l.reason).is_some_and(Reason::is_lifecycle) {
                l.time = 0;
            }
        }
        let check_ids: Vec<String> = ch
            .query("SELECT check_id FROM commitment_checks ORDER BY check_id")
            .fetch_all()
            .await
            .expect("checks");
        let statuses: Vec<(String, String, u32, String, String)> = ch
            .query(
                "SELECT feed, event_id, record_version, digest, status FROM v_records \
                 ORDER BY feed, event_id, record_version, digest",
            )
            .fetch_all()
            .await
            .expect("record statuses");
        let records: u64 = ch
            .query("SELECT count() FROM (SELECT * FROM records FINAL)")
            .fetch_one()
            .await
            .expect("records");
        let t = &ns.cfg.kafka.topics;
        let mut topic_changes: Vec<serde_json::Value> = read_topic(&ns.cfg, &t.colour_changes)
            .into_iter()
            .map(|(_, v)| conforming("colour_change", &v))
            .collect();
        let topic_alerts = read_topic(&ns.cfg, &t.alerts);
        for (_, v) in &topic_alerts {
            conforming("alert", v);
        }
        let topic_letters = read_messages(&ns.cfg, &t.dead_letters);
        for m in &topic_letters {
            letter_headers_match(m);
        }
        topic_changes.sort_by(|a, b| a["change_id"].as_str().cmp(&b["change_id"].as_str()));
        Snapshot {
            states,
            changes,
            alerts,
            letters,
            records,
            topic_changes,
            topic_alerts: topic_alerts.len(),
            topic_letters: topic_letters.len(),
            looped: sorted(
                read_topic(&ns.cfg, &t.commitments)
                    .into_iter()
                    .map(|(_, v)| {
                        let e: rules::event::Event = serde_json::from_slice(&v).expect("CMT");
                        e.event_id.to_string()
                    })
                    .collect(),
            ),
            check_ids,
            statuses,
        }
    })
}

/// A dead letter on the topic: its message conforms to its schema, and its headers name
/// the same source coordinates and reason as its body.
fn letter_headers_match(m: &Read) {
    let body = conforming("dead_letter", &m.payload);
    let header = |name: &str| m.headers.get(name).map(String::as_str);
    let text = |v: &serde_json::Value| v.to_string().trim_matches('"').to_owned();
    use connectors::dead_letter::{
        HEADER_FORMAT_VERSION, HEADER_OFFSET, HEADER_PARTITION, HEADER_REASON, HEADER_TOPIC,
    };
    for (name, field) in [
        (HEADER_TOPIC, "source_topic"),
        (HEADER_PARTITION, "partition"),
        (HEADER_OFFSET, "offset"),
        (HEADER_REASON, "reason"),
        (HEADER_FORMAT_VERSION, "format_version"),
    ] {
        assert_eq!(
            header(name),
            Some(text(&body[field]).as_str()),
            "header {name} of {body}"
        );
    }
}

/// The log the run wrote: accepted records and decoder rejects.
pub fn read_log(cfg: &Config) -> (Vec<Accepted>, usize) {
    let mut accepted = Vec::new();
    let mut rejected = 0;
    for (_, v) in read_topic(cfg, &cfg.kafka.topics.accepted) {
        let e = Entry::decode(&v).expect("log entry");
        match &e.body {
            Body::Accepted { .. } => accepted.extend(e.into_record()),
            Body::Rejected { .. } => rejected += 1,
            Body::Watermark => {}
        }
    }
    (accepted, rejected)
}

/// The generated history the serve tests use.
pub fn gen(enterprises: u32) -> GenConfig {
    GenConfig {
        enterprises,
        seed: 11,
        years: 3,
        ..GenConfig::default()
    }
}

/// What the run must have produced, computed from the log it wrote.
#[derive(Debug)]
pub struct Expected {
    /// Colour-change ids, sorted.
    pub changes: Vec<String>,
    /// Alert ids, sorted.
    pub alerts: Vec<String>,
    /// `uscc → (colour, S, triggers, R)`.
    pub states: BTreeMap<String, (String, Option<f64>, Vec<String>, f64)>,
    /// Lifecycle dead letters, as their messages name them.
    pub lifecycle: BTreeSet<String>,
    /// Event ids of the `CMT.SCHEDULED` records of the commitment decisions, sorted.
    pub scheduled: Vec<String>,
    /// `commitment_checks` ids (decisions and verification results), sorted.
    pub checks: Vec<String>,
    /// Every record's `(feed, event_id, version, digest, status)` at the end, sorted.
    pub statuses: Vec<(String, String, u32, String, String)>,
}

impl Expected {
    /// The commitment loop's expected outputs, from its decisions and results.
    pub fn with_commitments(mut self, scheduled: &[Scheduled], checks: &[Verification]) -> Self {
        self.scheduled = sorted(
            scheduled
                .iter()
                .map(|s| s.event().event_id.to_string())
                .collect(),
        );
        self.checks = sorted(
            scheduled
                .iter()
                .map(|s| pipeline::rows::scheduled_row(s).check_id)
                .chain(checks.iter().map(|c| pipeline::rows::check_row(c).check_id))
                .collect(),
        );
        self
    }
}

/// Whether a record is one the pipeline published itself (semantics.md §5).
pub fn is_steward(a: &Accepted) -> bool {
    a.event.source_org.as_deref() == Some(rules::supervision::STEWARD_ORG)
}

/// The last logical time a drained run makes final: the largest ingest time or visibility
/// time in its log (the records read back from the commitments topic are visible after the
/// last input).
pub fn final_time(log: &[Accepted]) -> rules::time::Ts {
    log.iter()
        .map(|a| a.event.ingest_time.max(a.v))
        .max()
        .expect("records")
}

/// Checks a finished run's snapshot against `want`, and the record counts.
pub fn check(
    ns: &crate::Namespace,
    snap: &Snapshot,
    want: &Expected,
    produced: u64,
    log: &[Accepted],
    rejected: usize,
) {
    let mut got: Vec<String> = snap.changes.iter().map(|c| c.change_id.clone()).collect();
    got.sort_unstable();
    assert_eq!(got, want.changes, "colour_history = expected changes");
    let mut topic: Vec<String> = snap
        .topic_changes
        .iter()
        .map(|c| c["change_id"].as_str().expect("id").to_owned())
        .collect();
    topic.sort_unstable();
    assert_eq!(
        topic, want.changes,
        "colour-change topic = expected changes, once each"
    );
    let mut got_alerts: Vec<String> = snap.alerts.iter().map(|a| a.alert_id.clone()).collect();
    got_alerts.sort_unstable();
    assert_eq!(got_alerts, want.alerts, "alerts = expected alerts");
    assert_eq!(snap.topic_alerts, want.alerts.len());
    let states: BTreeMap<String, (String, Option<f64>, Vec<String>, f64)> = snap
        .states
        .iter()
        .map(|s| {
            (
                s.uscc.clone(),
                (s.colour.clone(), s.s, s.triggers.clone(), s.r),
            )
        })
        .collect();
    assert_eq!(states.len(), want.states.len(), "one state per enterprise");
    assert!(states == want.states, "enterprise_state = expected states");
    // Counting: every record read is applied, a duplicate, or dead-lettered.
    let lifecycle = |l: &&DeadLetterRow| Reason::parse(&l.reason).is_some_and(Reason::is_lifecycle);
    let decoder_letters = snap.letters.iter().filter(|l| !lifecycle(l)).count();
    assert_eq!(
        decoder_letters, rejected,
        "one dead letter per decoder reject"
    );
    let input = log.iter().filter(|a| !is_steward(a)).count();
    let duplicates = produced as usize - input - rejected;
    assert!(
        duplicates > 0 && rejected > 0,
        "the data has duplicates and malformed records"
    );
    assert_eq!(snap.records as usize, log.len(), "records = accepted");
    let got_lifecycle: BTreeSet<String> = snap
        .letters
        .iter()
        .filter(lifecycle)
        .map(|l| l.message.clone())
        .collect();
    assert_eq!(got_lifecycle, want.lifecycle, "lifecycle dead letters");
    // A lifecycle reject names where its record was read, with the bytes read there.
    for l in snap.letters.iter().filter(lifecycle) {
        let original: serde_json::Value = serde_json::from_str(&l.original)
            .unwrap_or_else(|e| panic!("original bytes of {l:?}: {e}"));
        let event_id = original["event_id"].as_str().unwrap_or_default();
        assert!(
            l.offset >= 0 && l.message.contains(&format!(" {event_id} version ")),
            "{l:?}"
        );
    }
    // The commitment loop: every decision's record on the internal topic once, read back
    // and accepted by the feed stage, and every decision and result in commitment_checks.
    assert!(!want.scheduled.is_empty(), "the data publishes commitments");
    let looped = sorted(
        log.iter()
            .filter(|a| is_steward(a))
            .map(|a| a.event.event_id.to_string())
            .collect(),
    );
    assert_eq!(looped, want.scheduled, "CMT.SCHEDULED records accepted");
    assert_eq!(
        snap.looped, want.scheduled,
        "CMT.SCHEDULED records published"
    );
    assert_eq!(snap.check_ids, want.checks, "commitment_checks");
    assert_eq!(snap.statuses, want.statuses, "v_records: record statuses");
    assert_eq!(snap.topic_letters, snap.letters.len());
    for l in &snap.letters {
        assert!(l.source_topic.starts_with(&ns.name), "{l:?}");
        assert!(!l.reason.is_empty() && !l.message.is_empty(), "{l:?}");
        assert!(!l.original.is_empty(), "{l:?}");
    }
}

/// `v`, sorted.
pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort_unstable();
    v
}

/// What the dataflow replayed over `log` (in one process, two workers) says the run must
/// have produced; the oracle test proves the replay equal to the reference.
pub fn expected_by_replay(log: &[Accepted], cat: &Arc<Catalogue>) -> Expected {
    let until = final_time(log);
    let r = engine::replay::replay(
        engine::replay::shared(log.to_vec()),
        cat.clone(),
        None,
        Some(Supervision::embedded().commitments),
        timely::Config::process(2),
        engine::replay::Schedule::new(20_000, until),
        |_, _, _, _| {},
    )
    .expect("replay");
    Expected {
        changes: sorted(r.changes.iter().map(|c| c.change_id.clone()).collect()),
        alerts: sorted(r.alerts.iter().map(|a| a.alert_id.clone()).collect()),
        states: r
            .states
            .iter()
            .map(|(u, (s, c))| {
                let e = s.evaluation(None, cat);
                let colour = c.unwrap_or(rules::score::Colour::None).as_str().to_owned();
                (u.clone(), (colour, e.s, e.triggers.to_strings(), e.risk))
            })
            .collect(),
        lifecycle: r.dead.iter().map(rules::lifecycle::Dead::message).collect(),
        scheduled: Vec::new(),
        checks: Vec::new(),
        statuses: status_rows(&r.statuses),
    }
    .with_commitments(&r.scheduled, &r.checks)
}

/// Record statuses as `v_records` rows, sorted.
pub fn status_rows<U>(
    statuses: &BTreeMap<RecordKey, (U, Status)>,
) -> Vec<(String, String, u32, String, String)> {
    let mut rows: Vec<_> = statuses
        .iter()
        .map(|(k, (_, st))| {
            (
                k.id.0.as_str().to_owned(),
                k.id.1.to_string(),
                k.version,
                hex::encode(k.digest),
                st.as_str().to_owned(),
            )
        })
        .collect();
    rows.sort();
    rows
}
