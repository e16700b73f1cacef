//! Kafka: client settings from the configuration, topic creation, a transactional producer
//! with retries, and readers for the internal topics.
//!
//! Every producer here is transactional and every consumer reads with
//! `isolation.level=read_committed`, so nothing of an aborted transaction is ever seen.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    base_consumer::PartitionQueue, BaseConsumer, Consumer, ConsumerContext, ConsumerGroupMetadata,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::KafkaConfig;

/// How long one call to the brokers may take before it is retried (transactional calls,
/// reading messages back at known places).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`TxnProducer::commit`] sleeps between looks at its outstanding deliveries.
const DELIVERY_STEP: Duration = Duration::from_micros(500);
/// How much longer than [`CALL_TIMEOUT`] [`TxnProducer::send_offsets`] waits for librdkafka
/// to return before it gives the call up.
const UNANSWERED_GRACE: Duration = Duration::from_secs(5);
/// How many times [`TxnProducer::commit`] calls a commit again that failed with a retriable
/// error (each call waits up to [`CALL_TIMEOUT`]).
const COMMIT_RETRIES: u32 = 10;

/// A Kafka failure, with the bounded code the metrics count it under.
#[derive(Debug, thiserror::Error)]
pub enum KafkaFailure {
    /// librdkafka reported an error.
    #[error("kafka {context}: {source}")]
    Client {
        /// What was being done.
        context: &'static str,
        /// The error.
        #[source]
        source: KafkaError,
    },
    /// The brokers refused the configuration's credentials or certificates: not a lost
    /// service, so nothing is retried.
    #[error("kafka: the brokers refused the connection; check {setting}: {reason}")]
    Refused {
        /// The settings to check.
        setting: &'static str,
        /// What librdkafka said.
        reason: String,
    },
    /// Messages that the log still holds did not arrive within the call timeout: the
    /// broker is slow or unreachable, or the consumer stopped fetching.
    #[error("kafka {context}: {partitions} partition(s) of {topic} not read to the wanted offsets within {timeout:?}")]
    TimedOut {
        /// What was being done.
        context: &'static str,
        /// The topic read.
        topic: String,
        /// How many of its partitions were not read far enough.
        partitions: usize,
        /// How long the call waited.
        timeout: Duration,
    },
    /// A call that librdkafka did not return from within its own timeout (and a grace): the
    /// producer is abandoned and must be rebuilt.
    #[error(
        "kafka {context}: the call did not return within {timeout:?}; the producer is rebuilt"
    )]
    Unanswered {
        /// What was being done.
        context: &'static str,
        /// How long the call was waited for.
        timeout: Duration,
    },
    /// The system refused a thread for a call that runs on one of its own.
    #[error("kafka {context}: no thread for the call: {source}")]
    NoThread {
        /// What was being done.
        context: &'static str,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// The producer was fenced or hit a fatal error; it must be rebuilt.
    #[error("kafka producer is no longer usable ({context}): {source}")]
    Fatal {
        /// What was being done.
        context: &'static str,
        /// The error.
        #[source]
        source: KafkaError,
    },
}

impl KafkaFailure {
    /// A bounded error code for metrics and logs.
    pub fn error_code(&self) -> &'static str {
        match self {
            KafkaFailure::Client { context, .. } => context,
            KafkaFailure::Fatal { .. } => "fatal",
            KafkaFailure::TimedOut { .. } => "timed_out",
            KafkaFailure::Unanswered { .. } => "unanswered",
            KafkaFailure::NoThread { .. } => "no_thread",
            KafkaFailure::Refused { .. } => "refused",
        }
    }
}

fn client(context: &'static str) -> impl Fn(KafkaError) -> KafkaFailure {
    move |source| KafkaFailure::Client { context, source }
}

/// Client settings shared by every consumer and producer: brokers and security.
pub fn client_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        .set("security.protocol", &k.security_protocol);
    if let Some(m) = &k.sasl_mechanism {
        c.set("sasl.mechanism", m);
    }
    if let Some(u) = &k.sasl_username {
        c.set("sasl.username", u);
    }
    if let Some(p) = &k.sasl_password {
        c.set("sasl.password", p.expose());
    }
    if let Some(ca) = &k.ssl_ca_location {
        c.set("ssl.ca.location", ca);
    }
    c
}

/// The consumers' context: logs client errors through `tracing`, except the end-of-partition
/// events that these consumers ask for and handle themselves.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl ClientContext for Quiet {
    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        ) {
            tracing::error!(%error, reason, "kafka client error");
        }
    }
}

impl ConsumerContext for Quiet {}

/// Connects to the brokers once. Credentials or a certificate the brokers refuse are the
/// configuration's fault, not a lost service: they fail with [`KafkaFailure::Refused`]
/// naming the settings to check, so that start-up stops instead of retrying for ever. Brokers
/// that do not answer at all are not reported here (the stages retry them).
pub fn check_access(k: &KafkaConfig) -> Result<(), KafkaFailure> {
    let c: BaseConsumer = client_config(k)
        .set("group.id", "steward-access-check")
        .create()
        .map_err(client("access check"))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if c.fetch_metadata(None, Duration::from_secs(1)).is_ok() {
            return Ok(());
        }
        // The client's errors arrive on the consumer's queue.
        while let Some(event) = c.poll(Duration::from_millis(100)) {
            let Err(e) = event else { continue };
            let setting = match e.rdkafka_error_code() {
                Some(RDKafkaErrorCode::SSL) => {
                    "kafka.ssl_ca_location (the CA that signed the brokers' certificate) and \
                     kafka.security_protocol"
                }
                Some(
                    RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed,
                ) => {
                    "kafka.sasl_username, kafka.sasl_password (STEWARD_KAFKA_SASL_PASSWORD) and \
                     kafka.sasl_mechanism"
                }
                _ => continue,
            };
            return Err(KafkaFailure::Refused {
                setting,
                reason: e.to_string(),
            });
        }
    }
    Ok(())
}

/// A consumer of this crate.
pub type Reader = BaseConsumer<Quiet>;

/// A consumer reading committed data only, with offsets under the application's control.
pub fn consumer(k: &KafkaConfig, group: &str) -> Result<Reader, KafkaFailure> {
    create_consumer(&consumer_config(k, group))
}

/// A consumer with the settings `c`.
fn create_consumer(c: &ClientConfig) -> Result<Reader, KafkaFailure> {
    c.create_with_context(Quiet).map_err(client("consumer"))
}

/// How much a [`FeedSource`] prefetches per partition (each partition has its own queue, and
/// librdkafka fills each up to this while the feed stage is paused): 4 MiB, thousands of
/// feed records, instead of the 64 MiB a single-queue reader keeps (D70).
const FEED_QUEUE_KBYTES: &str = "4096";

/// The settings of [`consumer`].
fn consumer_config(k: &KafkaConfig, group: &str) -> ClientConfig {
    let mut c = client_config(k);
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "50")
        .set("queued.max.messages.kbytes", "65536");
    c
}

/// Creates the topics that do not exist yet: `(name, partitions, compacted)`.
pub fn ensure_topics(k: &KafkaConfig, topics: &[(&str, i32, bool)]) -> Result<(), KafkaFailure> {
    let admin: AdminClient<DefaultClientContext> =
        client_config(k).create().map_err(client("admin"))?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(name, partitions, compacted)| {
            let t = NewTopic::new(name, *partitions, TopicReplication::Fixed(1));
            if *compacted {
                t.set("cleanup.policy", "compact")
            } else {
                t.set("retention.ms", "-1")
            }
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| KafkaFailure::Client {
            context: "admin",
            source: KafkaError::AdminOpCreation(e.to_string()),
        })?;
    let opts = AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT));
    let results = rt
        .block_on(admin.create_topics(new.iter(), &opts))
        .map_err(client("create_topics"))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => {
                return Err(KafkaFailure::Client {
                    context: "create_topics",
                    source: KafkaError::AdminOp(code),
                })
            }
        }
    }
    Ok(())
}

/// A plain idempotent producer for feed records (`steward generate --kafka`): each record
/// to its feed topic, keyed by its USCC, so that an enterprise's records stay in order.
pub struct FeedWriter {
    producer: BaseProducer,
}

impl std::fmt::Debug for FeedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedWriter").finish_non_exhaustive()
    }
}

impl FeedWriter {
    /// A producer to the brokers of `k`.
    pub fn new(k: &KafkaConfig) -> Result<Self, KafkaFailure> {
        let producer = client_config(k)
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .create()
            .map_err(client("producer"))?;
        Ok(FeedWriter { producer })
    }

    /// Queues one record, waiting while the local queue is full.
    pub fn send(&self, topic: &str, key: &[u8], payload: &[u8]) -> Result<(), KafkaFailure> {
        enqueue(
            &self.producer,
            BaseRecord::to(topic).key(key).payload(payload),
        )
    }

    /// Waits until every queued record is acknowledged (or fails after the call timeout).
    pub fn flush(&self) -> Result<(), KafkaFailure> {
        self.producer.flush(CALL_TIMEOUT).map_err(client("flush"))
    }
}

/// A transactional producer: `begin`, `send`…, optionally `send_offsets`, `commit`.
pub struct TxnProducer {
    /// Shared with a call that [`TxnProducer::send_offsets`] gave up on, which keeps it
    /// until librdkafka returns.
    producer: Arc<BaseProducer>,
}

impl std::fmt::Debug for TxnProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnProducer").finish_non_exhaustive()
    }
}

impl TxnProducer {
    /// A producer with `transactional.id` `id`. Initialising fences out any earlier producer
    /// with the same id and aborts its open transaction.
    pub fn new(k: &KafkaConfig, id: &str) -> Result<Self, KafkaFailure> {
        let producer: BaseProducer = client_config(k)
            .set("transactional.id", id)
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "1000000")
            .set("queue.buffering.max.kbytes", "1048576")
            .set("compression.type", "lz4")
            .set("transaction.timeout.ms", "60000")
            .create()
            .map_err(client("producer"))?;
        producer
            .init_transactions(CALL_TIMEOUT)
            .map_err(classify("init_transactions"))?;
        Ok(TxnProducer {
            producer: Arc::new(producer),
        })
    }

    /// Starts a transaction. An earlier abort that timed out (the broker was away) is still
    /// in progress, and librdkafka refuses to begin ("Conflicting abort_transaction API call
    /// is already in progress") until `abort_transaction` is called again and completes. So
    /// a refused begin first finishes that abort and begins once more; if the abort cannot
    /// finish either, the producer is reported fatal, to be rebuilt (initialising a new one
    /// with the same transactional id aborts the open transaction on the broker). Seen after
    /// a broker restart: the resumed abort timed out again and again.
    pub fn begin(&self) -> Result<(), KafkaFailure> {
        let Err(refused) = self.producer.begin_transaction() else {
            return Ok(());
        };
        match self.producer.abort_transaction(CALL_TIMEOUT) {
            Ok(()) => self
                .producer
                .begin_transaction()
                .map_err(classify("begin_transaction")),
            Err(_) => Err(KafkaFailure::Fatal {
                context: "begin_transaction after an unfinished abort",
                source: refused,
            }),
        }
    }

    /// Queues one message, waiting while the local queue is full.
    pub fn send(&self, topic: &str, key: &[u8], payload: &[u8]) -> Result<(), KafkaFailure> {
        enqueue(
            &self.producer,
            BaseRecord::to(topic).key(key).payload(payload),
        )
    }

    /// [`TxnProducer::send`] with Kafka headers (`name`, UTF-8 value).
    pub fn send_with_headers(
        &self,
        topic: &str,
        key: &[u8],
        payload: &[u8],
        headers: &[(&str, String)],
    ) -> Result<(), KafkaFailure> {
        let h = headers.iter().fold(OwnedHeaders::new(), |h, (key, value)| {
            h.insert(Header {
                key,
                value: Some(value.as_bytes()),
            })
        });
        enqueue(
            &self.producer,
            BaseRecord::to(topic).key(key).payload(payload).headers(h),
        )
    }

    /// Adds the consumer's offsets to the transaction, so that they commit with it.
    ///
    /// librdkafka can stay in this call long past its timeout: it sends the offsets to the
    /// group coordinator it has cached, and after a broker restart that may be a broker
    /// object it has since decommissioned, so it waits for a state change that never comes
    /// (confluentinc/librdkafka#5456 and #5511, open in the bundled 2.12). `serve`'s feed
    /// stage hung there for good after a broker restart in the outage tests. So the call
    /// runs on a thread of its own, and when it has not returned within [`CALL_TIMEOUT`]
    /// and a grace it is given up with [`KafkaFailure::Unanswered`]: the caller rebuilds the
    /// producer (a new one with the same transactional id fences this one and aborts its
    /// transaction), and the abandoned thread ends whenever librdkafka returns.
    pub fn send_offsets(
        &self,
        offsets: TopicPartitionList,
        group: ConsumerGroupMetadata,
    ) -> Result<(), KafkaFailure> {
        let producer = Arc::clone(&self.producer);
        answered_within("send_offsets", CALL_TIMEOUT + UNANSWERED_GRACE, move || {
            producer.send_offsets_to_transaction(&offsets, &group, CALL_TIMEOUT)
        })
    }

    /// Commits the transaction (flushing every queued message first).
    ///
    /// rdkafka's commit flushes first, and its flush polls for up to 100 ms whenever a
    /// message is still out. The delivery reports are served before that poll, so it waits
    /// the whole 100 ms: every commit took 101–103 ms here. Waiting for the deliveries in
    /// short steps first leaves the commit only its round trip to the broker.
    ///
    /// Each look serves one ready event without waiting, and sleeps only when it served
    /// none: rdkafka's `poll` with a timeout runs until its deadline and spins through its
    /// last millisecond (the timeout it passes on is rounded down to 0 ms), which cost
    /// `serve` 4 % of its CPU in polls of 1 ms (D72).
    pub fn commit(&self) -> Result<(), KafkaFailure> {
        let deadline = Instant::now() + CALL_TIMEOUT;
        let mut out = self.producer.in_flight_count();
        while out > 0 && Instant::now() < deadline {
            self.producer.poll(Duration::ZERO);
            let now = self.producer.in_flight_count();
            if now == out {
                std::thread::sleep(DELIVERY_STEP);
            }
            out = now;
        }
        // A commit that fails with a retriable error (it timed out: the broker was away) may
        // or may not have reached the transaction coordinator. librdkafka's contract is to
        // call it again, which returns that commit's outcome; aborting instead could have
        // the caller publish an already committed batch a second time.
        let mut retries = 0;
        loop {
            match self.producer.commit_transaction(CALL_TIMEOUT) {
                Err(KafkaError::Transaction(e)) if e.is_retriable() && retries < COMMIT_RETRIES => {
                    retries += 1;
                    tracing::warn!(error = %e, retries, "kafka commit_transaction: calling it again");
                }
                r => return r.map_err(classify("commit_transaction")),
            }
        }
    }

    /// Aborts the transaction; nothing of it is ever visible to `read_committed` readers.
    pub fn abort(&self) -> Result<(), KafkaFailure> {
        self.producer
            .abort_transaction(CALL_TIMEOUT)
            .map_err(classify("abort_transaction"))
    }
}

/// Queues `record` on `producer`, serving delivery reports while its local queue is full.
fn enqueue(
    producer: &BaseProducer,
    mut record: BaseRecord<'_, [u8], [u8]>,
) -> Result<(), KafkaFailure> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => return Err(classify("send")(e)),
        }
    }
}

/// Sorts a transactional error: fatal (rebuild the producer) or not (abort and retry).
fn classify(context: &'static str) -> impl Fn(KafkaError) -> KafkaFailure {
    move |source| match &source {
        KafkaError::Transaction(e) if e.is_fatal() => KafkaFailure::Fatal { context, source },
        _ => KafkaFailure::Client { context, source },
    }
}

/// One message read from a topic.
#[derive(Debug, Clone)]
pub struct Read {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key bytes (empty when none).
    pub key: Vec<u8>,
    /// Payload bytes (empty when none).
    pub payload: Vec<u8>,
}

/// Assigns `topic`'s partition 0 to `consumer` from `offset`.
pub fn assign_from(consumer: &Reader, topic: &str, offset: i64) -> Result<(), KafkaFailure> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset))
        .map_err(client("assign"))?;
    consumer.assign(&tpl).map_err(client("assign"))
}

/// A message's place: topic, partition and offset.
pub type Place = (String, i32, i64);

/// The payloads of the messages at `places`, read with `consumer`. A place the log no
/// longer holds (retention, compaction) is missing from the result. A partition not read
/// to its largest wanted offset (or its end) within `timeout` is an error
/// ([`KafkaFailure::TimedOut`]): its places may still be there, and a caller that went on
/// without them would lose their bytes.
pub fn read_places(
    consumer: &Reader,
    places: &BTreeSet<Place>,
    timeout: Duration,
) -> Result<BTreeMap<Place, Vec<u8>>, KafkaFailure> {
    let mut out = BTreeMap::new();
    // Per topic (an end-of-partition event names the partition only), each partition from
    // its smallest wanted offset up to its largest.
    let mut ranges: BTreeMap<&str, BTreeMap<i32, (i64, i64)>> = BTreeMap::new();
    for (t, p, o) in places {
        let r = ranges
            .entry(t.as_str())
            .or_default()
            .entry(*p)
            .or_insert((*o, *o));
        *r = (r.0.min(*o), r.1.max(*o));
    }
    for (topic, parts) in &ranges {
        let mut tpl = TopicPartitionList::new();
        for (p, (from, _)) in parts {
            tpl.add_partition_offset(topic, *p, Offset::Offset(*from))
                .map_err(client("assign"))?;
        }
        consumer.assign(&tpl).map_err(client("assign"))?;
        let mut open: BTreeSet<i32> = parts.keys().copied().collect();
        let deadline = std::time::Instant::now() + timeout;
        while !open.is_empty() && std::time::Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    open.remove(&p);
                }
                Some(Err(e)) => return Err(client("poll")(e)),
                Some(Ok(m)) => {
                    let place = ((*topic).to_owned(), m.partition(), m.offset());
                    if places.contains(&place) {
                        out.insert(place, m.payload().map(<[u8]>::to_vec).unwrap_or_default());
                    }
                    if parts.get(&m.partition()).is_some_and(|r| m.offset() >= r.1) {
                        open.remove(&m.partition());
                    }
                }
            }
        }
        if !open.is_empty() {
            return Err(KafkaFailure::TimedOut {
                context: "read_places",
                topic: (*topic).to_owned(),
                partitions: open.len(),
                timeout,
            });
        }
    }
    Ok(out)
}

/// Polls once: `Ok(Some)` a message, `Ok(None)` nothing within `timeout` or the end of the
/// partition (see `at_end`).
pub fn poll(
    consumer: &Reader,
    timeout: Duration,
    at_end: &mut bool,
) -> Result<Option<Read>, KafkaFailure> {
    match consumer.poll(timeout) {
        None => Ok(None),
        Some(Err(KafkaError::PartitionEOF(_))) => {
            *at_end = true;
            Ok(None)
        }
        Some(Err(e)) => Err(client("poll")(e)),
        Some(Ok(m)) => {
            *at_end = false;
            Ok(Some(Read {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec).unwrap_or_default(),
                payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            }))
        }
    }
}

/// Notices a consumer that has stopped fetching although data it has not read exists.
///
/// After a broker restart, librdkafka can leave an assigned consumer connected and polled,
/// with no error, that never fetches again (librdkafka#5153, rust-rdkafka#597); a new
/// consumer reads on at once. The caller knows whether unread data exists (for the log: the
/// feed stage has committed more entries than were read) and reports progress; the watch
/// says when the consumer has been behind, without progress, for `limit`.
#[derive(Debug)]
pub struct StallWatch {
    limit: Duration,
    since: Option<Instant>,
}

impl StallWatch {
    /// A watch that reports a stall after `limit` without progress.
    pub fn new(limit: Duration) -> Self {
        StallWatch { limit, since: None }
    }

    /// Observes the consumer at `now`: whether it `progressed` since the last observation,
    /// and whether it is `behind` (data exists that it has not read). True once it has been
    /// behind without progress for the limit; the watch then starts over.
    pub fn stalled(&mut self, progressed: bool, behind: bool, now: Instant) -> bool {
        if progressed || !behind {
            self.since = None;
            return false;
        }
        let since = *self.since.get_or_insert(now);
        if now.duration_since(since) >= self.limit {
            self.since = None;
            return true;
        }
        false
    }
}

/// Reads `topic`'s partition 0 from the start to its current end, committed data only.
pub fn read_all(k: &KafkaConfig, topic: &str, group: &str) -> Result<Vec<Read>, KafkaFailure> {
    let c = consumer(k, group)?;
    assign_from(&c, topic, 0)?;
    let mut out = Vec::new();
    let mut at_end = false;
    loop {
        match poll(&c, Duration::from_millis(200), &mut at_end)? {
            Some(m) => out.push(m),
            None if at_end => return Ok(out),
            None => {}
        }
    }
}

/// One input partition of a [`FeedSource`].
struct Part {
    topic: String,
    partition: i32,
    queue: PartitionQueue<Quiet>,
    /// Whether the last poll reached the end of the partition.
    at_end: bool,
    /// The offset after the last message read, if any was read.
    next: Option<i64>,
}

/// Reads every partition of the feed topics through its own queue, so that the reader knows
/// which partitions have reached their end, and commits offsets through a transaction.
pub struct FeedSource {
    consumer: Arc<Reader>,
    parts: Vec<Part>,
    /// Round-robin position.
    turn: usize,
}

impl std::fmt::Debug for FeedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedSource")
            .field("partitions", &self.parts.len())
            .finish_non_exhaustive()
    }
}

impl FeedSource {
    /// Assigns every partition of `topics`, each from the group's committed offset (or the
    /// beginning).
    pub fn new(k: &KafkaConfig, topics: &[&str]) -> Result<Self, KafkaFailure> {
        let consumer = Arc::new(create_consumer(
            consumer_config(k, &k.group_id)
                .set("queued.max.messages.kbytes", FEED_QUEUE_KBYTES)
                .set("queued.min.messages", "10000"),
        )?);
        let mut tpl = TopicPartitionList::new();
        let mut ids = Vec::new();
        for t in topics {
            let md = consumer
                .fetch_metadata(Some(t), CALL_TIMEOUT)
                .map_err(client("metadata"))?;
            for mt in md.topics() {
                for p in mt.partitions() {
                    tpl.add_partition_offset(t, p.id(), Offset::Stored)
                        .map_err(client("assign"))?;
                    ids.push(((*t).to_owned(), p.id()));
                }
            }
        }
        // Every partition gets its own queue before the assignment starts fetching, so that
        // no message is served on the consumer's main queue.
        let mut parts = Vec::new();
        for (topic, partition) in ids {
            let queue =
                consumer
                    .split_partition_queue(&topic, partition)
                    .ok_or(KafkaFailure::Client {
                        context: "split_partition_queue",
                        source: KafkaError::Subscription(topic.clone()),
                    })?;
            parts.push(Part {
                topic,
                partition,
                queue,
                at_end: false,
                next: None,
            });
        }
        consumer.assign(&tpl).map_err(client("assign"))?;
        Ok(FeedSource {
            consumer,
            parts,
            turn: 0,
        })
    }

    /// Reads up to `max` messages, taking turns over the partitions until none has a message
    /// ready; returns `(topic, message)` pairs. Waits up to `timeout` only when nothing is
    /// ready.
    pub fn poll(
        &mut self,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<(String, Read)>, KafkaFailure> {
        // Serves the consumer's own events (errors, rebalances); messages go to the queues.
        // A message here would be outside every partition queue: fail rather than lose it
        // (the caller starts over from the committed offsets).
        match self.consumer.poll(Duration::ZERO) {
            None => {}
            Some(Err(e)) => return Err(client("poll")(e)),
            Some(Ok(m)) => {
                return Err(KafkaFailure::Client {
                    context: "poll",
                    source: KafkaError::Subscription(format!(
                        "message from {} [{}] at {} outside its partition queue",
                        m.topic(),
                        m.partition(),
                        m.offset()
                    )),
                })
            }
        }
        let mut out = Vec::new();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let mut idle_round = true;
            for _ in 0..self.parts.len() {
                if out.len() >= max {
                    return Ok(out);
                }
                self.turn = (self.turn + 1) % self.parts.len().max(1);
                let Some(p) = self.parts.get_mut(self.turn) else {
                    break;
                };
                // Up to a small burst per partition per turn keeps partitions interleaved.
                for _ in 0..64 {
                    match p.queue.poll(Duration::ZERO) {
                        None => break,
                        Some(Err(KafkaError::PartitionEOF(_))) => {
                            p.at_end = true;
                            break;
                        }
                        Some(Err(e)) => return Err(client("poll")(e)),
                        Some(Ok(m)) => {
                            idle_round = false;
                            p.at_end = false;
                            p.next = Some(m.offset() + 1);
                            out.push((
                                p.topic.clone(),
                                Read {
                                    partition: m.partition(),
                                    offset: m.offset(),
                                    key: m.key().map(<[u8]>::to_vec).unwrap_or_default(),
                                    payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                                },
                            ));
                            if out.len() >= max {
                                return Ok(out);
                            }
                        }
                    }
                }
            }
            // Keep taking turns while the partitions have messages ready.
            if idle_round {
                if !out.is_empty() || std::time::Instant::now() >= deadline {
                    return Ok(out);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// Whether `topic`/`partition` has been read to its end (as of the last poll).
    pub fn at_end(&self, topic: &str, partition: i32) -> bool {
        self.parts
            .iter()
            .any(|p| p.topic == topic && p.partition == partition && p.at_end)
    }

    /// The next offset to read of `topic`/`partition`, once a message was read from it.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.parts
            .iter()
            .find(|p| p.topic == topic && p.partition == partition)
            .and_then(|p| p.next)
    }

    /// Every assigned `(topic, partition)`.
    pub fn partitions(&self) -> Vec<(String, i32)> {
        self.parts
            .iter()
            .map(|p| (p.topic.clone(), p.partition))
            .collect()
    }

    /// Whether every partition is at its end.
    pub fn all_at_end(&self) -> bool {
        self.parts.iter().all(|p| p.at_end)
    }

    /// The offsets to commit: the next offset of every partition read from.
    pub fn offsets(&self) -> Result<TopicPartitionList, KafkaFailure> {
        let mut tpl = TopicPartitionList::new();
        for p in &self.parts {
            if let Some(n) = p.next {
                tpl.add_partition_offset(&p.topic, p.partition, Offset::Offset(n))
                    .map_err(client("offsets"))?;
            }
        }
        Ok(tpl)
    }

    /// The consumer group's metadata, for [`TxnProducer::send_offsets`].
    pub fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        self.consumer.group_metadata()
    }

    /// Records not read yet, per `(topic, partition)` (asks the broker).
    pub fn lag(&self) -> Vec<(String, i32, i64)> {
        self.parts
            .iter()
            .filter_map(|p| {
                let (_, high) = self
                    .consumer
                    .fetch_watermarks(&p.topic, p.partition, Duration::from_secs(2))
                    .ok()?;
                let pos = match p.next {
                    Some(n) => n,
                    None => self
                        .consumer
                        .committed_offsets(
                            {
                                let mut t = TopicPartitionList::new();
                                t.add_partition(&p.topic, p.partition);
                                t
                            },
                            Duration::from_secs(2),
                        )
                        .ok()
                        .and_then(|t| {
                            t.elements().first().and_then(|e| match e.offset() {
                                Offset::Offset(o) => Some(o),
                                _ => None,
                            })
                        })
                        .unwrap_or(0),
                };
                Some((p.topic.clone(), p.partition, (high - pos).max(0)))
            })
            .collect()
    }
}

/// Runs a librdkafka call on a thread of its own and waits for its answer at most
/// `timeout`. A call that has not returned by then, or whose thread ended without an answer
/// (it panicked), is given up with [`KafkaFailure::Unanswered`]: the client's state is
/// unknown, and the caller rebuilds it. The abandoned thread ends whenever the call returns.
fn answered_within(
    context: &'static str,
    timeout: Duration,
    call: impl FnOnce() -> Result<(), KafkaError> + Send + 'static,
) -> Result<(), KafkaFailure> {
    let (answer, answered) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name(format!("kafka-{context}"))
        .spawn(move || {
            // The caller may have given up and gone: nobody to tell.
            let _ = answer.send(call());
        })
        .map_err(|source| KafkaFailure::NoThread { context, source })?;
    match answered.recv_timeout(timeout) {
        Ok(result) => result.map_err(classify(context)),
        Err(RecvTimeoutError::Timeout) => {
            tracing::warn!(
                context,
                ?timeout,
                "kafka call did not return; abandoning the producer"
            );
            Err(KafkaFailure::Unanswered { context, timeout })
        }
        Err(RecvTimeoutError::Disconnected) => {
            tracing::warn!(
                context,
                "kafka call ended without an answer; abandoning the producer"
            );
            Err(KafkaFailure::Unanswered { context, timeout })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call that hangs (as librdkafka's `send_offsets_to_transaction` did after a broker
    /// restart, D79) is given up after the timeout, not waited for.
    #[test]
    fn a_call_that_does_not_return_in_time_is_given_up() {
        let (release, hang) = std::sync::mpsc::channel::<()>();
        let started = Instant::now();
        let answer = answered_within("send_offsets", Duration::from_millis(200), move || {
            let _ = hang.recv();
            Ok(())
        });
        assert!(
            matches!(
                answer,
                Err(KafkaFailure::Unanswered {
                    context: "send_offsets",
                    ..
                })
            ),
            "{answer:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(answer.unwrap_err().error_code(), "unanswered");
        drop(release);
    }

    /// A call that answers in time gives its own answer, classified as the direct call's.
    #[test]
    fn a_call_that_answers_gives_its_answer() {
        assert!(answered_within("send_offsets", Duration::from_secs(5), || Ok(())).is_ok());
        let refused = answered_within("send_offsets", Duration::from_secs(5), || {
            Err(KafkaError::MessageProduction(RDKafkaErrorCode::Fenced))
        });
        assert!(
            matches!(
                refused,
                Err(KafkaFailure::Client {
                    context: "send_offsets",
                    ..
                })
            ),
            "{refused:?}"
        );
    }

    /// A call whose thread ends without an answer leaves the client in an unknown state:
    /// it is given up like one that hangs.
    #[test]
    fn a_call_that_panics_is_given_up() {
        let answer = answered_within("send_offsets", Duration::from_secs(5), || {
            panic!("the call failed inside the client")
        });
        assert!(
            matches!(answer, Err(KafkaFailure::Unanswered { .. })),
            "{answer:?}"
        );
    }

    /// A broker address that accepts connections and never answers (a frozen broker).
    fn silent_broker() -> (std::net::TcpListener, KafkaConfig) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut cfg = crate::config::Config::from_toml(crate::config::DEFAULT_TOML, |_| None)
            .expect("the embedded configuration")
            .kafka;
        cfg.brokers = listener.local_addr().expect("address").to_string();
        (listener, cfg)
    }

    #[test]
    fn places_not_reached_in_time_are_an_error_not_an_empty_answer() {
        let (_listener, cfg) = silent_broker();
        let c = consumer(&cfg, "read-places-test").expect("consumer");
        let places = BTreeSet::from([("feed".to_owned(), 0, 5), ("feed".to_owned(), 1, 7)]);
        match read_places(&c, &places, Duration::from_secs(2)) {
            Err(KafkaFailure::TimedOut {
                topic, partitions, ..
            }) => assert_eq!((topic.as_str(), partitions), ("feed", 2)),
            other => panic!("expected a timeout, got {other:?}"),
        }
    }

    #[test]
    fn a_stall_is_reported_only_after_the_limit_behind_without_progress() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut w = StallWatch::new(Duration::from_secs(10));
        assert!(!w.stalled(false, true, at(0)), "the wait starts");
        assert!(!w.stalled(false, true, at(9)), "not yet at the limit");
        assert!(w.stalled(false, true, at(10)), "behind for the limit");
        assert!(
            !w.stalled(false, true, at(11)),
            "reported, then started over"
        );
        assert!(w.stalled(false, true, at(21)));
    }

    #[test]
    fn progress_or_nothing_to_read_restarts_the_wait() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut w = StallWatch::new(Duration::from_secs(10));
        assert!(!w.stalled(false, true, at(0)));
        assert!(!w.stalled(true, true, at(8)), "a message read");
        assert!(
            !w.stalled(false, true, at(12)),
            "the wait starts again at 12"
        );
        assert!(!w.stalled(false, true, at(21)));
        assert!(
            !w.stalled(false, false, at(23)),
            "caught up: nothing to read"
        );
        assert!(!w.stalled(false, true, at(30)));
        assert!(!w.stalled(false, true, at(39)));
        assert!(w.stalled(false, true, at(40)));
    }
}
