//! Shared helpers for the end-to-end tests: service addresses from the environment (with
//! localhost defaults, as `scripts/services.sh` starts them) and unique resource names.

use std::time::{SystemTime, UNIX_EPOCH};

/// Kafka bootstrap servers: `STEWARD_KAFKA_BROKERS`, default `127.0.0.1:9092`.
pub fn kafka_brokers() -> String {
    std::env::var("STEWARD_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// ClickHouse HTTP URL: `STEWARD_CLICKHOUSE_URL`, default `http://127.0.0.1:8123`.
pub fn clickhouse_url() -> String {
    std::env::var("STEWARD_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".to_owned())
}

/// A ClickHouse client for the test services. Validation is off because ClickHouse 18.16
/// lacks `RowBinaryWithNamesAndTypes`.
pub fn clickhouse_client() -> clickhouse::Client {
    clickhouse::Client::default()
        .with_url(clickhouse_url())
        .with_database("default")
        .with_validation(false)
}

/// A name no other test run uses: `prefix_<pid>_<nanos>`, valid as a Kafka topic and a
/// ClickHouse identifier.
pub fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}_{}_{nanos}", std::process::id())
}
