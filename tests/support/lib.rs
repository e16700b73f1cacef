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

/// The `steward` binary of this build (`target/<profile>/steward`, beside the test's
/// `deps/` directory). `cargo test --workspace` builds it with the pipeline's tests.
pub fn steward_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>");
    let bin = dir.join("steward");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --bin steward` (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// One test's own topics, consumer group, transactional ids and ClickHouse database, as a
/// steward configuration file.
#[derive(Debug)]
pub struct Namespace {
    /// The unique prefix.
    pub name: String,
    /// The configuration file.
    pub config: std::path::PathBuf,
    /// The configuration.
    pub cfg: connectors::config::Config,
}

impl Namespace {
    /// A fresh namespace with `feed_partitions` partitions per feed topic (created here).
    pub fn new(prefix: &str) -> Self {
        let name = unique_name(prefix);
        let text = connectors::config::DEFAULT_TOML
            .replace("\"credit.", &format!("\"{name}."))
            .replace("group_id = \"credit-steward\"", &format!("group_id = \"{name}\""))
            .replace(
                "transactional_id = \"credit-steward\"",
                &format!("transactional_id = \"{name}\""),
            )
            .replace("database = \"credit\"", &format!("database = \"{name}\""))
            .replace("brokers = \"127.0.0.1:9092\"", &format!("brokers = \"{}\"", kafka_brokers()))
            .replace("url = \"http://127.0.0.1:8123\"", &format!("url = \"{}\"", clickhouse_url()))
            .replace("max_delay_ms = 500", "max_delay_ms = 200");
        let cfg = connectors::config::Config::from_toml(&text, |_| None).expect("valid config");
        let config = std::env::temp_dir().join(format!("{name}.toml"));
        std::fs::write(&config, text).expect("write config");
        Namespace { name, config, cfg }
    }

    /// A ClickHouse client on this namespace's database.
    pub fn clickhouse(&self) -> clickhouse::Client {
        clickhouse_client().with_database(&self.name)
    }
}
