//! Foundation end-to-end test: real Kafka and real ClickHouse.
//!
//! Creates its own topic, produces 10,000 JSON records with rdkafka, consumes them in a
//! consumer group, writes them to its own ClickHouse table with the `clickhouse` crate and
//! checks that exactly the same 10,000 rows arrived. Topic and table are removed at the end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use e2e::{clickhouse_client, kafka_brokers, unique_name};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::Message;
use serde::{Deserialize, Serialize};

const RECORDS: u32 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
struct Rec {
    id: u32,
    uscc: String,
    amount_fen: i64,
    note: String,
}

fn record(i: u32) -> Rec {
    Rec {
        id: i,
        uscc: format!("91330800{:09}X", i),
        amount_fen: i64::from(i) * 137 - 5_000,
        note: format!("record {i} — 记录 \"quoted\" \\ back"),
    }
}

fn admin() -> Result<AdminClient<DefaultClientContext>> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .create()?)
}

async fn create_topic(name: &str) -> Result<()> {
    let results = admin()?
        .create_topics(
            &[NewTopic::new(name, 4, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await?;
    for r in results {
        r.map_err(|(t, e)| anyhow::anyhow!("create topic {t}: {e}"))?;
    }
    Ok(())
}

fn produce(topic: &str) -> Result<()> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()?;
    for i in 0..RECORDS {
        let rec = record(i);
        let payload = serde_json::to_vec(&rec)?;
        let mut pending = BaseRecord::to(topic).key(&rec.uscc).payload(&payload);
        // Retry while the local queue is full; the background thread drains it.
        loop {
            match producer.send(pending) {
                Ok(()) => break,
                Err((e, back)) => {
                    ensure!(
                        e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull),
                        "produce: {e}"
                    );
                    pending = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30))?;
    Ok(())
}

fn consume(topic: &str, group: &str) -> Result<Vec<Rec>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()?;
    consumer.subscribe(&[topic])?;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut out = Vec::with_capacity(RECORDS as usize);
    while out.len() < RECORDS as usize {
        if Instant::now() > deadline {
            bail!("consumed only {} of {RECORDS} records in 90 s", out.len());
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(e)) => bail!("consume: {e}"),
            Some(Ok(msg)) => {
                let payload = msg.payload().context("message without payload")?;
                let rec: Rec = serde_json::from_slice(payload)?;
                ensure!(
                    msg.key() == Some(rec.uscc.as_bytes()),
                    "key differs from uscc"
                );
                out.push(rec);
            }
        }
    }
    consumer.commit_consumer_state(CommitMode::Sync)?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_records_from_kafka_to_clickhouse() -> Result<()> {
    let topic = unique_name("e2e_foundation");
    let table = topic.clone();
    create_topic(&topic).await?;

    let result = run(&topic, &table).await;

    // Clean up whatever happened, then report the test's own outcome.
    let ch = clickhouse_client();
    ch.query(&format!("DROP TABLE IF EXISTS default.{table}"))
        .execute()
        .await?;
    admin()?
        .delete_topics(&[topic.as_str()], &AdminOptions::new())
        .await?;
    result
}

async fn run(topic: &str, table: &str) -> Result<()> {
    let t = topic.to_owned();
    tokio::task::spawn_blocking(move || produce(&t)).await??;

    let (t, g) = (topic.to_owned(), format!("{topic}_group"));
    let consumed = tokio::task::spawn_blocking(move || consume(&t, &g)).await??;
    ensure!(
        consumed.len() == RECORDS as usize,
        "consumed {}",
        consumed.len()
    );

    let ch = clickhouse_client();
    ch.query(&format!(
        "CREATE TABLE default.{table} (id UInt32, uscc String, amount_fen Int64, note String) \
         ENGINE = MergeTree ORDER BY id"
    ))
    .execute()
    .await?;
    let mut insert = ch.insert::<Rec>(table).await?;
    for rec in &consumed {
        insert.write(rec).await?;
    }
    insert.end().await?;

    let rows: Vec<Rec> = ch
        .query(&format!(
            "SELECT id, uscc, amount_fen, note FROM default.{table} ORDER BY id"
        ))
        .fetch_all()
        .await?;
    ensure!(
        rows.len() == RECORDS as usize,
        "ClickHouse holds {} rows, expected {RECORDS}",
        rows.len()
    );
    let expected: BTreeMap<u32, Rec> = (0..RECORDS).map(|i| (i, record(i))).collect();
    for row in &rows {
        ensure!(
            expected.get(&row.id) == Some(row),
            "row {} differs: {row:?}",
            row.id
        );
    }
    let distinct: std::collections::BTreeSet<u32> = rows.iter().map(|r| r.id).collect();
    ensure!(
        distinct.len() == RECORDS as usize,
        "duplicate ids in ClickHouse"
    );
    Ok(())
}
