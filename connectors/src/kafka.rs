//! Kafka: client settings from the configuration, topic creation, a transactional producer
//! with retries, and readers for the internal topics.
//!
//! Every producer here is transactional and every consumer reads with
//! `isolation.level=read_committed`, so nothing of an aborted transaction is ever seen.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::KafkaConfig;

/// How long one transactional call may take before it is retried.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

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

/// A consumer reading committed data only, with offsets under the application's control.
pub fn consumer(k: &KafkaConfig, group: &str) -> Result<BaseConsumer, KafkaFailure> {
    client_config(k)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "50")
        .set("queued.max.messages.kbytes", "65536")
        .create()
        .map_err(client("consumer"))
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

/// A transactional producer: `begin`, `send`…, optionally `send_offsets`, `commit`.
pub struct TxnProducer {
    producer: BaseProducer,
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
        Ok(TxnProducer { producer })
    }

    /// Starts a transaction.
    pub fn begin(&self) -> Result<(), KafkaFailure> {
        self.producer
            .begin_transaction()
            .map_err(classify("begin_transaction"))
    }

    /// Queues one message, waiting while the local queue is full.
    pub fn send(&self, topic: &str, key: &[u8], payload: &[u8]) -> Result<(), KafkaFailure> {
        let mut record = BaseRecord::to(topic).key(key).payload(payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(classify("send")(e)),
            }
        }
    }

    /// Adds the consumer's offsets to the transaction, so that they commit with it.
    pub fn send_offsets(
        &self,
        offsets: &TopicPartitionList,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), KafkaFailure> {
        self.producer
            .send_offsets_to_transaction(offsets, group, CALL_TIMEOUT)
            .map_err(classify("send_offsets"))
    }

    /// Commits the transaction (flushing every queued message first).
    pub fn commit(&self) -> Result<(), KafkaFailure> {
        self.producer
            .commit_transaction(CALL_TIMEOUT)
            .map_err(classify("commit_transaction"))
    }

    /// Aborts the transaction; nothing of it is ever visible to `read_committed` readers.
    pub fn abort(&self) -> Result<(), KafkaFailure> {
        self.producer
            .abort_transaction(CALL_TIMEOUT)
            .map_err(classify("abort_transaction"))
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
pub fn assign_from(consumer: &BaseConsumer, topic: &str, offset: i64) -> Result<(), KafkaFailure> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset))
        .map_err(client("assign"))?;
    consumer.assign(&tpl).map_err(client("assign"))
}

/// Polls once: `Ok(Some)` a message, `Ok(None)` nothing within `timeout` or the end of the
/// partition (see `at_end`).
pub fn poll(
    consumer: &BaseConsumer,
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
