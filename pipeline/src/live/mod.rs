//! `steward serve`: the pipeline on the real services.
//!
//! Three stages, each restartable on its own (design: `docs/decisions.md` D6):
//! 1. [`feed`]: reads the feed topics, decodes, drops duplicates and assigns visibility
//!    times; writes one entry per record to the internal log topic, and commits the input
//!    offsets in the same Kafka transaction.
//! 2. The dataflow: timely workers replay the log from its start (that rebuilds every
//!    enterprise's state after a restart) and follow it. With a checkpoint (D68), the log's
//!    records up to its time enter at once, and the trackers resume from its state.
//! 3. [`sink`]: writes outputs to ClickHouse, then publishes them to Kafka together with a
//!    fence (the logical time below which every output is durable) in one transaction.
//!    After a restart, outputs below the last fence are not written again.

pub mod feed;
pub mod sink;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use connectors::clickhouse::RecordRow;
use connectors::config::{Config, Topics};
use connectors::dead_letter::DeadLetter;
use connectors::http::Readiness;
use connectors::metrics::{Metrics, Service};
use rules::catalogue::Catalogue;
use rules::model::Model;

use crate::messages::{self, PlanMessage, PreCreditMessage};
use rules::supervision::{CommitmentRules, PreCreditRule};
use rules::time::Ts;

use crate::rows;
use engine::checkpoint::{Checkpoint, Setup, Store};
use engine::dataflow::{advance_inputs, build, Control, Handles};
use engine::log::{Body, Entry};
use engine::tracker::Tracker;
use sink::{Item, Step};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Input;
use timely::dataflow::{InputHandle, ProbeHandle};

/// The delays between retries of a lost service: exponential from `min`, at most `max`
/// before jitter, each with a random jitter of up to its own length (`backon`), so that
/// the processes of a cluster do not retry in step; without end.
fn backoff(min: Duration, max: Duration) -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder as _;
    backon::ExponentialBuilder::new()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
        .build()
}

/// State shared by the stages.
#[derive(Debug)]
pub struct Shared {
    /// Set to stop every stage.
    pub stop: AtomicBool,
    /// Log entries written (as the ingest stage knows them).
    pub produced: AtomicU64,
    /// Log entries the dataflow has taken in.
    pub consumed: AtomicU64,
    /// The watermark at which the ingest stage declared the input complete, if it did.
    pub drained: AtomicI64,
    /// Committed output transactions that published records on the internal commitments
    /// topic (the sink counts them).
    pub loop_seq: AtomicU64,
    /// [`Shared::loop_seq`] when the idle period that declared the input complete began: the
    /// input is complete only if no commitment record was published since (D46).
    pub drained_seq: AtomicU64,
    /// The last committed fence.
    pub fence: AtomicI64,
    /// The Prometheus metrics.
    pub metrics: Metrics,
    /// Whether Kafka and ClickHouse are reachable (`/readyz`).
    pub readiness: Readiness,
}

impl Shared {
    /// Shared state reporting to `metrics` and `readiness`. In process 0, which uses the
    /// services, Kafka and ClickHouse are registered as dependencies (down until first
    /// reached); the other processes of a cluster use none, so they are ready at once.
    pub fn new(metrics: Metrics, readiness: Readiness, process: usize) -> Self {
        if process == 0 {
            readiness.register(Service::Kafka);
            readiness.register(Service::ClickHouse);
        }
        Shared {
            stop: AtomicBool::new(false),
            produced: AtomicU64::new(0),
            consumed: AtomicU64::new(0),
            drained: AtomicI64::new(Ts::MAX),
            loop_seq: AtomicU64::new(0),
            drained_seq: AtomicU64::new(0),
            fence: AtomicI64::new(Ts::MIN),
            metrics,
            readiness,
        }
    }
}

/// How `serve` runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Once every feed partition has been read to its end and nothing arrived for this
    /// long, declare the input complete: the watermark moves past the last ingest time, so
    /// every output becomes final.
    pub drain_after: Option<Duration>,
    /// Exit once the input was declared complete and every output is durable.
    pub exit_when_drained: bool,
    /// The pre-credit rule (`config/supervision.toml`).
    pub pre_credit: PreCreditRule,
    /// The verification method of published commitments (`config/supervision.toml`).
    pub commitments: CommitmentRules,
    /// This process's index in the timely cluster: process 0 runs the feed stage, reads the
    /// log and runs the sink; the others run workers only.
    pub process: usize,
}

/// Runs the three stages until `shared.stop` is set (or the input drained, if asked).
///
/// In a timely cluster of several processes, process 0 runs the feed stage, reads the log
/// and runs the sink; the other processes run workers only. Workers of process 0 hand their
/// outputs to the sink directly; workers of other processes send them to worker 0 through
/// timely, which hands them on (D6).
pub fn serve(
    cfg: &Config,
    cat: Arc<Catalogue>,
    model: Option<Arc<Model>>,
    timely: timely::Config,
    opts: &Options,
    shared: Arc<Shared>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut stages = Vec::new();
    let setup = Setup {
        catalogue: &cat,
        model: model.as_deref(),
        pre_credit: Some(&opts.pre_credit),
        commitments: Some(&opts.commitments),
    }
    .digest();
    let store = (!cfg.checkpoints.dir.is_empty()).then(|| {
        let dir = std::path::Path::new(&cfg.checkpoints.dir).join(&cfg.kafka.transactional_id);
        Store::new(dir, cfg.checkpoints.keep)
    });
    // Refused credentials or certificates stop start-up, naming the settings.
    connectors::kafka::check_access(&cfg.kafka)?;
    let (side, out_tx) = if opts.process == 0 {
        // Process 0 alone writes to ClickHouse.
        let ch = connectors::clickhouse::ClickHouse::new(&cfg.clickhouse)?;
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(ch.check_access())?;
        connectors::kafka::ensure_topics(&cfg.kafka, &topic_plan(cfg))?;
        let fence = sink::read_fence(cfg)?;
        shared.fence.store(fence, Ordering::SeqCst);
        tracing::info!(
            fence,
            "starting; outputs below the fence are already durable"
        );
        let resume = store.as_ref().and_then(|s| resume_from(s, fence));
        let floor = resume.as_ref().map_or(Ts::MIN, |c| c.at);
        let (log_tx, log_rx) = std::sync::mpsc::sync_channel::<Vec<Logged>>(8);
        let (out_tx, out_rx) = std::sync::mpsc::sync_channel::<Step>(256);
        let (c, k, sh, o) = (cfg.clone(), cat.clone(), shared.clone(), opts.clone());
        stages.push(stage("feed", move || feed::run(&c, &k, &o, &sh))?);
        let (c, sh) = (cfg.clone(), shared.clone());
        stages.push(stage("log-reader", move || {
            read_log(&c, &sh, floor, &log_tx)
        })?);
        let (c, k, sh, o) = (cfg.clone(), cat.clone(), shared.clone(), opts.clone());
        let checkpoints = store.clone().map(|s| (s, setup.clone()));
        let sink = move || sink::run(&c, &k, &sh, &o, fence, checkpoints, out_rx, started);
        stages.push(stage("sink", sink)?);
        let every = store
            .is_some()
            .then(|| Duration::from_secs(cfg.checkpoints.every_secs));
        let side = LogSide {
            rx: log_rx,
            resume,
            setup: setup.clone(),
            every,
        };
        (Some(side), Some(out_tx))
    } else {
        tracing::info!(
            process = opts.process,
            "starting workers; process 0 runs the feed stage and the sink"
        );
        (None, None)
    };
    let side = Arc::new(Mutex::new(side));
    let workers = {
        let (cat, shared, topics) = (cat.clone(), shared.clone(), cfg.kafka.topics.clone());
        let rule = opts.pre_credit.clone();
        let commitments = opts.commitments.clone();
        timely::execute(timely, move |worker| {
            // Worker 0 (in process 0) reads the log and hands the outputs to the sink.
            let first = worker.index() == 0;
            let rx = first
                .then(|| side.lock().ok().and_then(|mut r| r.take()))
                .flatten();
            let out = out_tx.clone();
            let ctx = (&cat, model.clone(), &rule, &commitments);
            work(worker, ctx, &topics, &shared, rx, out);
        })
        .map_err(|e| anyhow::anyhow!("timely: {e}"))?
    };
    let mut errors = Vec::new();
    for r in workers.join() {
        if let Err(e) = r {
            errors.push(format!("worker: {e}"));
        }
    }
    shared.stop.store(true, Ordering::SeqCst);
    for (name, h) in stages {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(format!("{name}: {e:#}")),
            Err(_) => errors.push(format!("{name} panicked")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(errors.join("; "))
    }
}

/// What worker 0 (in process 0) has besides the other workers: the log, the checkpoint to
/// resume from, and how often to ask for a checkpoint (none: checkpoints are off).
struct LogSide {
    rx: Receiver<Vec<Logged>>,
    resume: Option<Checkpoint>,
    /// The setup digest of this run ([`Setup::digest`]).
    setup: String,
    every: Option<Duration>,
}

/// The newest checkpoint in `store` before `fence` (every output up to its time durable),
/// after removing those at or after the fence: they belong to another history of the
/// topics (a checkpoint is written only once the fence has passed its time). A checkpoint
/// that cannot be read is reported, and the whole log is replayed: that is always correct.
fn resume_from(store: &Store, fence: Ts) -> Option<Checkpoint> {
    match store.discard_from(fence) {
        Ok(0) => {}
        Ok(n) => tracing::warn!(n, fence, "removed checkpoints at or after the fence"),
        Err(e) => tracing::warn!(error = %e, "removing checkpoints at or after the fence"),
    }
    match store.newest_before(fence) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "the checkpoint is not used; replaying the whole log");
            None
        }
    }
}

/// A stage of process 0 on its own thread, named `name`.
type Stage = (&'static str, std::thread::JoinHandle<anyhow::Result<()>>);

/// Starts `run` as the stage `name`.
fn stage(
    name: &'static str,
    run: impl FnOnce() -> anyhow::Result<()> + Send + 'static,
) -> std::io::Result<Stage> {
    let handle = std::thread::Builder::new().name(name.into()).spawn(run)?;
    Ok((name, handle))
}

/// The connector configuration: a file, or the embedded default, with environment
/// overrides; validated (errors name the field).
pub fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
    use anyhow::Context;
    let env = |k: &str| std::env::var(k).ok();
    Ok(match path {
        Some(p) => Config::from_toml(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            env,
        )
        .with_context(|| format!("invalid configuration {}", p.display()))?,
        None => Config::from_toml(connectors::config::DEFAULT_TOML, env)
            .context("invalid embedded configuration")?,
    })
}

/// Topics to create: `(name, partitions, compacted)`. Feed topics get 3 partitions when
/// this program creates them; the log, the fence and the internal commitments topic have one.
fn topic_plan(cfg: &Config) -> Vec<(&str, i32, bool)> {
    let t = &cfg.kafka.topics;
    let mut v: Vec<(&str, i32, bool)> = t.feeds.values().map(|n| (n.as_str(), 3, false)).collect();
    v.extend([
        (t.accepted.as_str(), 1, false),
        (t.fence.as_str(), 1, true),
        (t.commitments.as_str(), 1, false),
        (t.colour_changes.as_str(), 3, false),
        (t.alerts.as_str(), 3, false),
        (t.plans.as_str(), 3, false),
        (t.dead_letters.as_str(), 3, false),
    ]);
    v
}

/// How long the log reader may read nothing while the feed stage has committed entries it
/// has not read, before its consumer is replaced ([`connectors::kafka::StallWatch`]).
const LOG_STALL: Duration = Duration::from_secs(15);

/// A log entry as the log reader hands it to worker 0: with the `records` row of an
/// accepted record visible after `floor` (built here, from the bytes the log holds, off the
/// workers' threads).
type Logged = (Entry, Option<RecordRow>);

/// The `records` row of `entry`'s accepted record when it is visible after `floor` (up to
/// the checkpoint resumed from, records are durable already: its time is before the
/// fence), from its canonical bytes as the log holds them (encoded again only for an entry
/// of the first format).
fn entry_row(entry: &Entry, canonical: Option<Vec<u8>>, floor: Ts) -> Option<RecordRow> {
    match &entry.body {
        Body::Accepted {
            v, digest, record, ..
        } if *v > floor => {
            let canonical = canonical.unwrap_or_else(|| rules::decode::encode(record));
            Some(rows::record_row_of(record, *v, digest, canonical))
        }
        _ => None,
    }
}

/// Follows the log topic from its start and hands batches of entries to worker 0, with the
/// `records` rows of those visible after `floor`. Stops reading while the workers are
/// behind (the channel is bounded). A consumer that stops fetching while the log holds
/// entries it has not read is replaced by one that reads on from the next offset.
fn read_log(
    cfg: &Config,
    shared: &Shared,
    floor: Ts,
    tx: &SyncSender<Vec<Logged>>,
) -> anyhow::Result<()> {
    let k = &cfg.kafka;
    let group = format!("{}-log", k.group_id);
    let open = |from: i64| -> anyhow::Result<connectors::kafka::Reader> {
        let consumer = connectors::kafka::consumer(k, &group)?;
        connectors::kafka::assign_from(&consumer, &k.topics.accepted, from)?;
        Ok(consumer)
    };
    let mut consumer = open(0)?;
    // The offset of the next entry to read.
    let mut next = 0;
    let mut watch = connectors::kafka::StallWatch::new(LOG_STALL);
    let mut at_end = false;
    let mut batch = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        let mut progressed = false;
        match connectors::kafka::poll(&consumer, Duration::from_millis(20), &mut at_end) {
            Ok(Some(m)) => match Entry::decode_keeping(&m.payload) {
                Ok((e, canonical)) => {
                    let row = entry_row(&e, canonical, floor);
                    batch.push((e, row));
                    next = m.offset + 1;
                    progressed = true;
                }
                Err(e) => anyhow::bail!("log entry at offset {} does not parse: {e}", m.offset),
            },
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "reading the log; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        if batch.len() >= 10_000 || (!batch.is_empty() && (at_end || batch.len() % 1000 == 0)) {
            let n = batch.len() as u64;
            if tx.send(std::mem::take(&mut batch)).is_err() {
                break;
            }
            shared.consumed.fetch_add(n, Ordering::SeqCst);
        }
        let read = shared.consumed.load(Ordering::SeqCst) + batch.len() as u64;
        let behind = shared.produced.load(Ordering::SeqCst) > read;
        if watch.stalled(progressed, behind, Instant::now()) {
            shared.metrics.consumer_stalled("log", LOG_STALL, next);
            match open(next) {
                Ok(c) => consumer = c,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "replacing the log consumer; retrying")
                }
            }
        }
    }
    Ok(())
}

/// One worker: worker 0 feeds the log into the dataflow (the other workers hold no input, so
/// worker 0's input alone moves the frontier); every worker runs its tracker and sends its
/// final outputs to the sink: through `out` in process 0, else through worker 0.
fn work(
    worker: &mut timely::worker::Worker,
    (cat, model, rule, commitments): (
        &Arc<Catalogue>,
        Option<Arc<Model>>,
        &PreCreditRule,
        &CommitmentRules,
    ),
    topics: &Topics,
    shared: &Shared,
    side: Option<LogSide>,
    out: Option<SyncSender<Step>>,
) {
    let tracker = Rc::new(RefCell::new(
        Tracker::new(cat.clone(), model.clone())
            .with_pre_credit(rule.clone())
            .with_commitments(commitments.clone())
            .draining(),
    ));
    let Handles {
        input,
        control,
        probe,
    } = build(worker, cat.clone(), model.clone(), tracker.clone());
    // The workers that do not read the log drop their inputs: worker 0's alone then move
    // the frontier of every worker, in every process.
    let mut feed = side.map(|side| (side, QuietClose::new(input), QuietClose::new(control)));
    let index = worker.index();
    // Records visible up to this time enter at it (the checkpoint resumed from, D68).
    let mut resumed = Ts::MIN;
    if let Some((side, input, control)) = &mut feed {
        if let Some(c) = side.resume.take() {
            match c.fits(worker.peers(), &side.setup) {
                Ok(()) => {
                    tracing::info!(
                        at = c.at,
                        "resuming from a checkpoint: the log's records up to its time enter at once"
                    );
                    advance_inputs(input, control, c.at);
                    for (w, kept) in c.workers.into_iter().enumerate() {
                        control.send((w, Control::Resume(Box::new(kept))));
                    }
                    resumed = c.at;
                }
                Err(e) => tracing::warn!(error = %e, "replaying the whole log"),
            }
        }
    }
    let mut last_mark = (Instant::now(), resumed);
    let (steps, gone) = to_sink(worker, out.clone().filter(|_| index == 0));
    let mut steps = QuietClose::new(steps);
    let frontier_of = |probe: &ProbeHandle<Ts>| {
        probe
            .with_frontier(|f| f.first().copied())
            .unwrap_or(Ts::MAX)
    };
    let mut upto = Ts::MIN;
    // Outputs gathered since the last send: sending every few tens of milliseconds keeps
    // the sink's batches large and the channel short.
    let mut items = Vec::new();
    let mut frontier_sent = Ts::MIN;
    let mut last_send = Instant::now();
    while !shared.stop.load(Ordering::SeqCst) && !gone.get() {
        if let Some((side, input, control)) = &mut feed {
            let rx = &side.rx;
            let mut wm = *input.time();
            // Wait for the log only when the dataflow has nothing left to do.
            let got = if probe.less_than(input.time()) {
                rx.try_recv().map_err(|e| match e {
                    TryRecvError::Empty => RecvTimeoutError::Timeout,
                    TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                })
            } else {
                rx.recv_timeout(Duration::from_millis(10))
            };
            match got {
                Ok(entries) => {
                    for (e, row) in entries {
                        wm = wm.max(e.wm);
                        match e.body {
                            Body::Accepted { .. } => {
                                if let Some(a) = e.into_record() {
                                    let v = a.v;
                                    if let Some(row) = row {
                                        items.push((v, Item::Record(row)));
                                    }
                                    input.update_at(Arc::new(a), v.max(resumed), 1);
                                }
                            }
                            Body::Rejected { letter } => {
                                items.push((e.wm, Item::Letter(*letter)));
                            }
                            Body::Watermark => {}
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            // A checkpoint every so often, at the time the inputs are at, if it moved.
            if let Some(every) = side.every {
                let now = *input.time();
                if last_mark.0.elapsed() >= every && now > last_mark.1 {
                    for w in 0..worker.peers() {
                        control.send((w, Control::Checkpoint));
                    }
                    last_mark = (Instant::now(), now);
                }
            }
            advance_inputs(input, control, wm);
        }
        // Run until the dataflow has caught up with its input (without an input: until the
        // frontier moves), for a few milliseconds at most; park (not spin) while waiting for
        // other workers.
        let before = frontier_of(&probe);
        let until = Instant::now() + Duration::from_millis(20);
        loop {
            worker.step_or_park(Some(Duration::from_millis(1)));
            let caught_up = match &feed {
                Some((_, input, _)) => !probe.less_than(input.time()),
                None => frontier_of(&probe) != before,
            };
            if caught_up || Instant::now() >= until {
                break;
            }
        }
        let frontier = frontier_of(&probe);
        let mut t = tracker.borrow_mut();
        t.advance(frontier);
        let places = std::mem::take(&mut t.colours.change_places);
        for (c, p) in std::mem::take(&mut t.colours.changes)
            .into_iter()
            .zip(places)
        {
            let row = rows::change_row(&c, &p.region, &p.industry);
            items.push((c.as_of, Item::Change(Box::new((c, row)))));
        }
        let places = std::mem::take(&mut t.colours.alert_places);
        for (a, p) in std::mem::take(&mut t.colours.alerts)
            .into_iter()
            .zip(places)
        {
            let row = rows::alert_row(&a, &p.region, &p.industry);
            items.push((a.as_of, Item::Alert(Box::new((a, row)))));
        }
        for (u, at) in std::mem::take(&mut t.colours.touched) {
            let scored = t
                .colours
                .current
                .get(&u)
                .map(|s| (s.as_ref(), t.published(u)));
            let u = u.to_string();
            let (state, values) = rows::state_rows(&u, at, scored, model.as_deref(), rule, cat);
            items.push((at, Item::State(Box::new((state, values)))));
        }
        for c in std::mem::take(&mut t.pre_credit.changes) {
            let message = PlanMessage::PreCredit(PreCreditMessage::from(&c));
            let msg = String::from_utf8(messages::to_bytes(message)).unwrap_or_default();
            items.push((c.as_of, Item::PreCredit(Box::new((c.uscc, msg)))));
        }
        for s in std::mem::take(&mut t.commitments.scheduled) {
            let row = rows::scheduled_row(&s);
            items.push((s.as_of, Item::Scheduled(Box::new((s, row)))));
        }
        for v in std::mem::take(&mut t.commitments.checks) {
            items.push((v.as_of, Item::Check(Box::new(rows::check_row(&v)))));
        }
        for (at, key, uscc, status) in std::mem::take(&mut t.statuses.new) {
            let row = rows::status_row(at, &key, uscc, status);
            items.push((at, Item::Status(Box::new(row))));
        }
        for (at, kept) in std::mem::take(&mut t.taken) {
            items.push((at, Item::Kept(Box::new(kept))));
        }
        for (at, d) in std::mem::take(&mut t.letters.new) {
            // Counted applied when admitted; since the process started, so a restart's
            // replay of the log counts its letters again (D52).
            shared.metrics.withdrawn(d.id.0, Some(d.reason));
            // At the dataflow time it came into effect: never behind the sink's fence, which
            // an earlier decision time can be (D53).
            items.push((at, Item::Letter(lifecycle_letter(&d, topics))));
        }
        drop(t);
        upto = upto.max(frontier);
        // Once the frontier is empty (worker 0 stopped), every output is here: send and stop.
        let done = frontier == Ts::MAX;
        let due = last_send.elapsed() >= SEND_EVERY || items.len() >= SEND_ITEMS || done;
        if due && (upto > frontier_sent || !items.is_empty()) {
            frontier_sent = upto;
            last_send = Instant::now();
            let step = Step {
                worker: index,
                workers: worker.peers(),
                upto,
                items: std::mem::take(&mut items),
            };
            if let Some(o) = &out {
                if o.send(step).is_err() {
                    break;
                }
            } else {
                steps.send(step);
                // A new epoch pushes the step through the exchange (a flush alone leaves it in
                // the exchange's buffer).
                let next = *steps.time() + 1;
                steps.advance_to(next);
            }
        }
        if done {
            break;
        }
    }
}

/// A worker's dataflow input whose drop may panic while the worker panics. Dropping an
/// input closes it, which sends its progress to every worker. In a cluster a worker mostly
/// panics because a peer process is gone, and that send then panics too. A panic that
/// leaves a destructor during unwinding aborts the process (SIGABRT) before it can report
/// the first one, so the drop's own panic is caught here.
struct QuietClose<T>(Option<T>);

impl<T> QuietClose<T> {
    fn new(input: T) -> Self {
        QuietClose(Some(input))
    }
}

impl<T> std::ops::Deref for QuietClose<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_ref().expect("taken only when dropped")
    }
}

impl<T> std::ops::DerefMut for QuietClose<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.as_mut().expect("taken only when dropped")
    }
}

impl<T> Drop for QuietClose<T> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let input = self.0.take();
            // The worker's first panic is the one reported; this one only ends the drop.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(input)));
        }
    }
}

/// Where a worker sends its [`Step`]s.
type Steps = InputHandle<u64, CapacityContainerBuilder<Vec<Step>>>;

/// The way to the sink from other processes: a dataflow sending every [`Step`] to worker 0,
/// which hands it to `out` (only worker 0 has one). The flag is set once the sink is gone.
fn to_sink(
    worker: &mut timely::worker::Worker,
    out: Option<SyncSender<Step>>,
) -> (Steps, Rc<Cell<bool>>) {
    let gone = Rc::new(Cell::new(false));
    let flag = gone.clone();
    let input = worker.dataflow::<u64, _, _>(|scope| {
        let (input, steps) = scope.new_input::<Vec<Step>>();
        steps.sink(Exchange::new(|_: &Step| 0), "ToSink", move |(input, _)| {
            input.for_each(|_, data| {
                for step in data.drain(..) {
                    if out.as_ref().is_none_or(|o| o.send(step).is_err()) {
                        flag.set(true);
                    }
                }
            });
        });
        input
    });
    (input, gone)
}

/// A worker sends its outputs to the sink at least this often…
const SEND_EVERY: Duration = Duration::from_millis(50);
/// …or as soon as it has this many.
const SEND_ITEMS: usize = 10_000;

/// The dead letter of a lifecycle reject: where its record was read (the sink adds the
/// original bytes from there) and which record and version it is; its `time` is the logical
/// time of the decision.
fn lifecycle_letter(d: &rules::lifecycle::Dead, topics: &Topics) -> DeadLetter {
    let (source_topic, partition, offset) = match &d.origin {
        Some(o) => (o.topic.clone(), o.partition, o.offset),
        None => (topics.feed(d.id.0).to_owned(), -1, -1),
    };
    DeadLetter {
        original: Vec::new(),
        source_topic,
        partition,
        offset,
        reason: d.reason.as_str().to_owned(),
        message: d.message(),
        time: d.at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_to_the_bound_with_jitter() {
        use std::time::Duration;
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(5));
        let delays: Vec<Duration> = super::backoff(min, max).take(40).collect();
        assert_eq!(delays.len(), 40, "retries without end");
        assert!(
            delays.iter().all(|d| *d >= min && *d <= max * 2),
            "{delays:?}"
        );
        assert!(
            delays[20..].iter().all(|d| *d >= max),
            "reaches the bound: {delays:?}"
        );
        // Without jitter the delays would be exactly 100 ms, 200 ms, … and then 5 s.
        let plain: Vec<Duration> = (0..40)
            .map(|i| (min * 2u32.saturating_pow(i.min(10))).min(max))
            .collect();
        assert_ne!(delays, plain, "jittered");
        let later = &delays[20..];
        assert!(later.iter().any(|d| *d != later[0]), "jittered: {later:?}");
    }

    /// `/readyz` waits for Kafka and ClickHouse only in the process that uses them: a
    /// worker-only process of a cluster must not stay "not ready" forever.
    #[test]
    fn only_process_0_waits_for_the_services() {
        let metrics = Metrics::new(&prometheus::Registry::new()).expect("metrics");
        let (first, other) = (Readiness::tracked(&metrics), Readiness::tracked(&metrics));
        let _ = Shared::new(metrics.clone(), first.clone(), 0);
        let _ = Shared::new(metrics, other.clone(), 1);
        assert_eq!(first.down(), vec![Service::Kafka, Service::ClickHouse]);
        assert!(other.down().is_empty());
    }
}
