//! Stage 3: outputs → ClickHouse, then Kafka with the fence, exactly once.
//!
//! Workers send every output with its logical time once the dataflow's frontier has passed
//! it, plus the frontier itself (`upto`). With `U` = the smallest `upto` of all workers,
//! every output before `U` is final. A flush writes those outputs:
//! 1. to ClickHouse, table by table, each batch retried with backoff until it lands;
//! 2. to Kafka in one transaction with a fence message `U`.
//!
//! After a restart the log is replayed; outputs before the last committed fence are already
//! durable and are dropped. Outputs at or after it may have reached ClickHouse (not Kafka:
//! their transaction never committed), so the ids ClickHouse already has from that point are
//! read at start and skipped. Replacing tables (`enterprise_state`, `indicator_values`,
//! `records`) are idempotent by their version column.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::Context;
use connectors::clickhouse::{
    datetime, AlertRow, ChangeRow, ClickHouse, ClickHouseError, CommitmentCheckRow, DeadLetterRow,
    Identified, IndicatorRow, RecordRow, StateRow, StatusRow,
};
use connectors::config::Config;
use connectors::dead_letter::DeadLetter;
use connectors::kafka::{KafkaFailure, TxnProducer};
use connectors::metrics::Service;
use rules::catalogue::Catalogue;
use rules::decode::encode;
use rules::monitor::{Alert, ColourChange};
use rules::score::Colour;
use rules::supervision::Scheduled;
use rules::time::Ts;
use serde::{Deserialize, Serialize};

use super::{Options, Shared};
use crate::messages::{to_bytes, PlanMessage, TaskDecision};
use engine::checkpoint::{Checkpoint, Store, FORMAT};
use engine::tracker::Kept;

/// One output with everything its sinks need (serializable: a worker in another process
/// sends its outputs to the sink's process through timely).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Item {
    /// An accepted record (ClickHouse `records`).
    Record(RecordRow),
    /// A dead letter (topic and ClickHouse).
    Letter(DeadLetter),
    /// A colour change (topic and `colour_history`).
    Change(Box<(ColourChange, ChangeRow)>),
    /// An alert (topic and `alerts`).
    Alert(Box<(Alert, AlertRow)>),
    /// An enterprise's new state (`enterprise_state`, `indicator_values`).
    State(Box<(StateRow, IndicatorRow)>),
    /// A pre-credit change (plans topic): the USCC and the message (JSON).
    PreCredit(Box<(String, String)>),
    /// A commitment's scheduling decision: its `CMT.SCHEDULED` record (internal commitments
    /// topic), its inspection task (plans topic, when one is issued) and its
    /// `commitment_checks` row.
    Scheduled(Box<(Scheduled, CommitmentCheckRow)>),
    /// A verification result (`commitment_checks`).
    Check(Box<CommitmentCheckRow>),
    /// A record's new status (`record_status`).
    Status(Box<StatusRow>),
    /// The sending worker's tracker state at the item's time: its part of a checkpoint
    /// (D68), written once every worker's part is here and the fence has passed its time.
    Kept(Box<Kept>),
}

/// What a worker sends after a step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    /// The worker.
    pub worker: usize,
    /// How many workers there are.
    pub workers: usize,
    /// The worker's frontier: its outputs before this time are all sent.
    pub upto: Ts,
    /// Outputs with their logical times.
    pub items: Vec<(Ts, Item)>,
}

/// The fence message.
#[derive(Debug, Serialize, Deserialize)]
struct Fence {
    /// Every output before this logical time is durable.
    fence: Ts,
    /// Wall-clock time of the commit.
    committed_at: Ts,
}

/// The last committed fence (`Ts::MIN` when there is none).
pub fn read_fence(cfg: &Config) -> anyhow::Result<Ts> {
    let k = &cfg.kafka;
    let msgs = connectors::kafka::read_all(k, &k.topics.fence, &format!("{}-fence", k.group_id))?;
    Ok(msgs
        .iter()
        .filter_map(|m| serde_json::from_slice::<Fence>(&m.payload).ok())
        .map(|f| f.fence)
        .max()
        .unwrap_or(Ts::MIN))
}

/// Retries `f` with jittered exponential backoff ([`super::backoff`]) until it succeeds or
/// the program stops; marks `service` down while it fails and counts each retry.
fn retry<T, E: std::fmt::Display>(
    shared: &Shared,
    service: Service,
    what: &str,
    mut f: impl FnMut() -> Result<T, E>,
) -> Option<T> {
    let mut delays = super::backoff(Duration::from_millis(100), Duration::from_secs(5));
    let mut attempt = 0;
    loop {
        match f() {
            Ok(v) => {
                shared.readiness.set(service, true);
                return Some(v);
            }
            Err(e) => {
                if shared.stop.load(Ordering::SeqCst) {
                    return None;
                }
                attempt += 1;
                shared.readiness.set(service, false);
                shared.metrics.retry(service, attempt);
                let backoff = delays.next().unwrap_or(Duration::from_secs(5));
                tracing::warn!(error = %e, ?backoff, "{what} failed; retrying");
                std::thread::sleep(backoff);
            }
        }
    }
}

/// Ids already in ClickHouse at or after the fence.
#[derive(Debug, Default)]
struct Skip {
    changes: HashSet<String>,
    alerts: HashSet<String>,
    letters: HashSet<String>,
    checks: HashSet<String>,
}

/// The workers' parts of checkpoints not yet written, by time and worker.
type Parts = BTreeMap<Ts, BTreeMap<usize, Kept>>;

/// Writes the newest checkpoint of `parts` that has every worker's part and whose time the
/// fence has passed (so every output up to it is durable), and forgets it and the older
/// ones. A failed write is reported and counted; the next one may succeed.
fn write_checkpoint(
    parts: &mut Parts,
    workers: usize,
    fence: Ts,
    (store, setup): &(Store, String),
    shared: &Shared,
) {
    let Some(at) = parts
        .iter()
        .rev()
        .find(|(t, p)| **t < fence && p.len() == workers)
        .map(|(t, _)| *t)
    else {
        return;
    };
    let mut later = parts.split_off(&(at + 1));
    std::mem::swap(parts, &mut later);
    let Some(kept) = later.remove(&at) else {
        return;
    };
    let c = Checkpoint {
        format: FORMAT,
        at,
        setup: setup.clone(),
        workers: kept.into_values().collect(),
    };
    let started = Instant::now();
    let outcome = match store.write(&c) {
        Ok(()) => {
            tracing::info!(at, took = ?started.elapsed(), "checkpoint written");
            "written"
        }
        Err(e) => {
            tracing::warn!(error = %e, at, "checkpoint not written");
            "failed"
        }
    };
    shared
        .metrics
        .state_checkpoints
        .with_label_values(&[outcome])
        .inc();
}

/// Runs the sink until the workers are gone (or the drained input is fully durable),
/// writing checkpoints to `checkpoints` (with this run's setup digest) if given.
#[allow(clippy::too_many_arguments)]
pub fn run(
    cfg: &Config,
    cat: &Catalogue,
    shared: &Shared,
    opts: &Options,
    mut fence: Ts,
    checkpoints: Option<(Store, String)>,
    rx: Receiver<Step>,
    started: Instant,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let ch = ClickHouse::new(&cfg.clickhouse)?;
    let Some(applied) = retry(shared, Service::ClickHouse, "clickhouse migrations", || {
        rt.block_on(ch.migrate())
    }) else {
        return Ok(());
    };
    tracing::info!(
        ?applied,
        database = ch.database(),
        "clickhouse schema is current"
    );
    let catalogue = crate::rows::catalogue_rows(cat);
    retry(shared, Service::ClickHouse, "clickhouse catalogue", || {
        rt.block_on(ch.insert("indicator_catalogue", &catalogue))
    });
    let since = datetime(fence);
    let skip = retry(
        shared,
        Service::ClickHouse,
        "clickhouse ids after the fence",
        || {
            rt.block_on(async {
                Ok::<_, ClickHouseError>(Skip {
                    changes: ch.existing::<ChangeRow>(since).await?,
                    alerts: ch.existing::<AlertRow>(since).await?,
                    letters: ch.existing::<DeadLetterRow>(0).await?,
                    checks: ch.existing::<CommitmentCheckRow>(since).await?,
                })
            })
        },
    )
    .unwrap_or_default();
    let k = &cfg.kafka;
    let txn_id = format!("{}-output", k.transactional_id);
    let Some(mut producer) = retry(shared, Service::Kafka, "kafka output producer", || {
        TxnProducer::new(k, &txn_id)
    }) else {
        return Ok(());
    };
    // Reads the original bytes of lifecycle rejects back from their feed topics; replaced
    // after a failed read (a consumer can stop fetching after a broker outage, D69).
    let originals_reader = || connectors::kafka::consumer(k, &format!("{}-originals", k.group_id));
    let Some(mut originals) = retry(
        shared,
        Service::Kafka,
        "kafka originals reader",
        originals_reader,
    ) else {
        return Ok(());
    };

    let mut uptos: BTreeMap<usize, Ts> = BTreeMap::new();
    let mut workers = usize::MAX;
    let mut pending: Vec<(Ts, Item)> = Vec::new();
    let mut parts = Parts::new();
    let mut last_flush = Instant::now();
    let mut caught_up = false;
    let mut colours: HashMap<String, Colour> = HashMap::new();
    let max_delay = Duration::from_millis(cfg.batch.max_delay_ms);
    loop {
        let disconnected = match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(step) => {
                workers = step.workers;
                uptos.insert(step.worker, step.upto);
                for (t, item) in step.items {
                    match item {
                        Item::Kept(k) => {
                            parts.entry(t).or_default().insert(step.worker, *k);
                        }
                        // Outputs before the fence are durable from an earlier run.
                        item if t >= fence => pending.push((t, item)),
                        _ => {}
                    }
                }
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        let upto = if uptos.len() == workers {
            uptos.values().copied().min().unwrap_or(Ts::MIN)
        } else {
            Ts::MIN
        };
        let due = pending.len() >= cfg.batch.max_rows || last_flush.elapsed() >= max_delay;
        if upto > fence && due {
            let (mut ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut pending)
                .into_iter()
                .partition(|(t, _)| *t < upto);
            pending = later;
            if retry(shared, Service::Kafka, "kafka originals", || {
                add_originals(&originals, &mut ready).or_else(|e| {
                    originals = originals_reader()?;
                    Err(e)
                })
            })
            .is_none()
            {
                return Ok(());
            }
            let flush_started = Instant::now();
            if !write_clickhouse(&rt, &ch, shared, &mut ready, &skip) {
                return Ok(());
            }
            let clickhouse_took = flush_started.elapsed();
            // Counted before the commit: once committed, the feed stage may read the records
            // back at once, and must then see the count that includes them.
            if ready.iter().any(|(_, i)| matches!(i, Item::Scheduled(_))) {
                shared.loop_seq.fetch_add(1, Ordering::SeqCst);
            }
            let committed = retry(shared, Service::Kafka, "kafka output transaction", || {
                publish(cfg, &producer, &ready, upto).or_else(|e| {
                    if matches!(e, KafkaFailure::Fatal { .. }) {
                        producer = TxnProducer::new(k, &txn_id)?;
                    }
                    Err(e)
                })
            });
            if committed.is_none() {
                return Ok(());
            }
            let flush_took = flush_started.elapsed();
            fence = upto;
            shared.fence.store(fence, Ordering::SeqCst);
            last_flush = Instant::now();
            observe(shared, &ready, &mut colours, fence);
            tracing::debug!(
                fence,
                outputs = ready.len(),
                ?flush_took,
                ?clickhouse_took,
                "flushed"
            );
        }
        if let Some(c) = &checkpoints {
            write_checkpoint(&mut parts, workers, fence, c, shared);
        }
        shared.metrics.sink_backlog.set(pending.len() as i64);
        shared
            .metrics
            .checkpoint_age
            .set(last_flush.elapsed().as_secs_f64());
        let drained = shared.drained.load(Ordering::SeqCst);
        // Complete only when nothing this sink published on the internal commitments topic
        // is still on its way back through the feed stage.
        let looped =
            shared.drained_seq.load(Ordering::SeqCst) == shared.loop_seq.load(Ordering::SeqCst);
        if !caught_up && drained != Ts::MAX && fence >= drained && looped {
            caught_up = true;
            tracing::info!(
                seconds = started.elapsed().as_secs_f64(),
                fence,
                "every output of the complete input is durable"
            );
            if opts.exit_when_drained {
                shared.stop.store(true, Ordering::SeqCst);
            }
        }
        if disconnected {
            return Ok(());
        }
    }
}

/// Adds the original bytes to the dead letters of lifecycle rejects, read back from where
/// their records were read (a record the topic no longer holds keeps none; its canonical
/// bytes are in ClickHouse `records`).
fn add_originals(
    consumer: &connectors::kafka::Reader,
    items: &mut [(Ts, Item)],
) -> Result<(), KafkaFailure> {
    let wanted = |d: &DeadLetter| d.original.is_empty() && d.offset >= 0;
    let places: BTreeSet<connectors::kafka::Place> = items
        .iter()
        .filter_map(|(_, i)| match i {
            Item::Letter(d) if wanted(d) => Some((d.source_topic.clone(), d.partition, d.offset)),
            _ => None,
        })
        .collect();
    if places.is_empty() {
        return Ok(());
    }
    let found = connectors::kafka::read_places(consumer, &places, connectors::kafka::CALL_TIMEOUT)?;
    for (_, item) in items.iter_mut() {
        if let Item::Letter(d) = item {
            if wanted(d) {
                let place = (d.source_topic.clone(), d.partition, d.offset);
                d.original = found.get(&place).cloned().unwrap_or_default();
            }
        }
    }
    Ok(())
}

/// Counts what a committed flush published: colour changes (with their latency from the
/// logical time, i.e. the ingest time of the record that caused them, to now), alerts, the
/// enterprises by colour and the watermark.
fn observe(
    shared: &Shared,
    items: &[(Ts, Item)],
    colours: &mut HashMap<String, Colour>,
    fence: Ts,
) {
    let m = &shared.metrics;
    let now = engine::ingest::now();
    for (_, item) in items {
        match item {
            Item::Change(c) => {
                m.colour_change(&c.0);
                m.colour_change_latency
                    .observe(now.saturating_sub(c.0.as_of).max(0) as f64);
            }
            Item::Alert(a) => m.alert(&a.0),
            Item::State(s) if s.0.deleted == 1 => {
                colours.remove(&s.0.uscc);
            }
            Item::State(s) => {
                let c = Colour::ALL
                    .iter()
                    .copied()
                    .find(|c| c.as_str() == s.0.colour)
                    .unwrap_or(Colour::None);
                colours.insert(s.0.uscc.clone(), c);
            }
            Item::Record(_)
            | Item::Letter(_)
            | Item::PreCredit(_)
            | Item::Scheduled(_)
            | Item::Check(_)
            | Item::Status(_)
            | Item::Kept(_) => {}
        }
    }
    let mut counts: BTreeMap<Colour, i64> = BTreeMap::new();
    for c in colours.values() {
        *counts.entry(*c).or_default() += 1;
    }
    for c in Colour::ALL {
        m.enterprises
            .with_label_values(&[c.as_str()])
            .set(counts.get(&c).copied().unwrap_or(0));
    }
    m.watermark.set(fence);
}

/// Writes the ClickHouse rows of `items`, table by table; `false` if stopped first. The
/// `records` and `record_status` rows, which nothing after ClickHouse reads, are moved into
/// their inserts rather than copied: their items are left empty (D88).
fn write_clickhouse(
    rt: &tokio::runtime::Runtime,
    ch: &ClickHouse,
    shared: &Shared,
    items: &mut [(Ts, Item)],
    skip: &Skip,
) -> bool {
    let mut records = Vec::new();
    let mut statuses = Vec::new();
    let mut letters = Vec::new();
    let mut changes = Vec::new();
    let mut alerts = Vec::new();
    let mut checks = Vec::new();
    // The latest state per enterprise is enough.
    let mut states: BTreeMap<&str, (&StateRow, &IndicatorRow)> = BTreeMap::new();
    for (_, item) in items.iter_mut() {
        match item {
            Item::Record(r) => records.push(std::mem::take(r)),
            Item::Status(r) => statuses.push(std::mem::take(&mut **r)),
            Item::Letter(d) => {
                let row = d.row();
                if !skip.letters.contains(&row.letter_id) {
                    letters.push(row);
                }
            }
            Item::Change(c) if !skip.changes.contains(&c.1.change_id) => changes.push(c.1.clone()),
            Item::Alert(a) if !skip.alerts.contains(&a.1.alert_id) => alerts.push(a.1.clone()),
            Item::Scheduled(s) if !skip.checks.contains(&s.1.check_id) => checks.push(s.1.clone()),
            Item::Check(c) if !skip.checks.contains(&c.check_id) => checks.push((**c).clone()),
            Item::State(s) => {
                let e = states.entry(s.0.uscc.as_str()).or_insert((&s.0, &s.1));
                if s.0.version >= e.0.version {
                    *e = (&s.0, &s.1);
                }
            }
            Item::Change(_)
            | Item::Alert(_)
            | Item::PreCredit(_)
            | Item::Scheduled(_)
            | Item::Check(_)
            | Item::Kept(_) => {}
        }
    }
    let (state_rows, value_rows): (Vec<StateRow>, Vec<IndicatorRow>) = states
        .values()
        .map(|(s, v)| ((*s).clone(), (*v).clone()))
        .unzip();
    // Tables with a version column keep one row of an insert repeated after a failure;
    // the others are written with `insert_once`, which settles a failed attempt before the
    // next (D73).
    put_rows(rt, ch, shared, "records", &records)
        && put_rows(rt, ch, shared, "record_status", &statuses)
        && put_once(rt, ch, shared, letters)
        && put_once(rt, ch, shared, changes)
        && put_once(rt, ch, shared, alerts)
        && put_once(rt, ch, shared, checks)
        && put_rows(rt, ch, shared, "enterprise_state", &state_rows)
        && put_rows(rt, ch, shared, "indicator_values", &value_rows)
}

/// The outcome of one insert: how long it took.
type Inserted = Result<Duration, ClickHouseError>;

/// Runs `insert` of `rows` rows into `table` until it succeeds, with backoff, counting each
/// failure; then counts the rows and the time. `false` if stopped first.
fn put(shared: &Shared, table: &str, rows: usize, insert: &mut dyn FnMut() -> Inserted) -> bool {
    let what = format!("clickhouse insert into {table}");
    let took = retry(shared, Service::ClickHouse, &what, || {
        insert().inspect_err(|e| shared.metrics.clickhouse_error(table, e))
    });
    let Some(took) = took else {
        return false;
    };
    let m = &shared.metrics;
    m.clickhouse_write_duration
        .with_label_values(&[table])
        .observe(took.as_secs_f64());
    m.clickhouse_rows_written
        .with_label_values(&[table])
        .inc_by(rows as u64);
    true
}

/// [`put`] for a table with a version column: a row inserted again replaces itself.
fn put_rows<T: clickhouse::RowOwned + clickhouse::RowWrite>(
    rt: &tokio::runtime::Runtime,
    ch: &ClickHouse,
    shared: &Shared,
    table: &str,
    rows: &[T],
) -> bool {
    put(shared, table, rows.len(), &mut || {
        rt.block_on(ch.insert(table, rows))
    })
}

/// [`put`] for a table without a version column: each retry settles the failed attempt
/// before it and leaves out the rows that attempt wrote ([`ClickHouse::insert_once`]).
fn put_once<T: Identified>(
    rt: &tokio::runtime::Runtime,
    ch: &ClickHouse,
    shared: &Shared,
    mut rows: Vec<T>,
) -> bool {
    let n = rows.len();
    let mut unsettled = None;
    put(shared, T::TABLE, n, &mut || {
        rt.block_on(ch.insert_once(&mut rows, &mut unsettled))
    })
}

/// One Kafka transaction: colour changes, alerts, pre-credit changes, scheduling decisions
/// (the `CMT.SCHEDULED` record on the internal commitments topic and, when a task is issued,
/// the task on the plans topic) and dead letters, then the fence.
fn publish(
    cfg: &Config,
    producer: &TxnProducer,
    items: &[(Ts, Item)],
    upto: Ts,
) -> Result<(), KafkaFailure> {
    let t = &cfg.kafka.topics;
    producer.begin()?;
    let sent = (|| {
        for (_, item) in items {
            match item {
                Item::Change(c) => {
                    producer.send(&t.colour_changes, c.0.uscc.as_bytes(), &to_bytes(&c.0))?
                }
                Item::Alert(a) => producer.send(&t.alerts, a.0.uscc.as_bytes(), &to_bytes(&a.0))?,
                Item::Letter(d) => {
                    producer.send_with_headers(&t.dead_letters, b"", &d.to_json(), &d.headers())?
                }
                Item::PreCredit(p) => producer.send(&t.plans, p.0.as_bytes(), p.1.as_bytes())?,
                Item::Scheduled(s) => {
                    let uscc = s.0.uscc.as_bytes();
                    producer.send(&t.commitments, uscc, &encode(&s.0.event()))?;
                    if s.0.task {
                        let task = PlanMessage::VerificationTask(TaskDecision::from(&s.0));
                        producer.send(&t.plans, uscc, &to_bytes(task))?;
                    }
                }
                Item::Record(_)
                | Item::State(_)
                | Item::Check(_)
                | Item::Status(_)
                | Item::Kept(_) => {}
            }
        }
        let fence = Fence {
            fence: upto,
            committed_at: engine::ingest::now(),
        };
        producer.send(
            &t.fence,
            b"fence",
            &serde_json::to_vec(&fence).unwrap_or_default(),
        )?;
        producer.commit()
    })();
    if sent.is_err() {
        let _ = producer.abort();
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use rules::event::VerifyMethod;

    /// Steps from workers in other processes reach the sink in timely's encoding (bincode),
    /// which, unlike JSON, has no field names or types to recover from: every item must come
    /// back as it was sent (an optional time written without its option tag once did not).
    #[test]
    fn a_step_survives_timelys_encoding() {
        let row = |due: Option<u32>| CommitmentCheckRow {
            check_id: "c".into(),
            commitment_id: "m".into(),
            uscc: "u".into(),
            as_of: 1,
            method: "RANDOM".into(),
            result: String::new(),
            detail: "d".into(),
            kind: "scheduled".into(),
            colour: "red".into(),
            effective: 2,
            due,
            record: "r".into(),
        };
        let scheduled = |due: Option<Ts>| Scheduled {
            uscc: "u".into(),
            commitment_id: "m".into(),
            as_of: 1_700_000_000,
            colour: Colour::Red,
            method: VerifyMethod::Random,
            task: due.is_some(),
            u: 0.25,
            probability: 0.5,
            due,
        };
        let letter = DeadLetter {
            original: vec![0, 255, b'{'],
            source_topic: "t".into(),
            partition: 2,
            offset: 7,
            reason: "bad_json".into(),
            message: "m".into(),
            time: 3,
        };
        let step = Step {
            worker: 1,
            workers: 2,
            upto: 9,
            items: vec![
                (
                    1,
                    Item::Scheduled(Box::new((scheduled(Some(1_700_086_400)), row(Some(5))))),
                ),
                (2, Item::Scheduled(Box::new((scheduled(None), row(None))))),
                (3, Item::Check(Box::new(row(Some(6))))),
                (4, Item::Letter(letter)),
                (
                    5,
                    Item::PreCredit(Box::new(("u".into(), r#"{"a":1}"#.into()))),
                ),
            ],
        };
        let bytes = bincode::serialize(&step).expect("encode");
        let back: Step = bincode::deserialize(&bytes).expect("decode");
        assert_eq!(format!("{back:?}"), format!("{step:?}"));
    }
}
