//! The connector configuration: a TOML file (the embedded default is
//! `config/steward.toml`) with environment overrides. This struct is the user documentation:
//! every field says what it does, and unknown fields are refused.
//!
//! [`Config::validate`] checks everything that can be checked without connecting; each
//! error names the field, e.g. `kafka.topics.alerts: "" is not a valid Kafka topic name`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rules::event::Feed;
use serde::Deserialize;

/// The embedded default configuration.
pub const DEFAULT_TOML: &str = include_str!("../../config/steward.toml");

/// Environment variables that override fields: `(variable, field)`.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("STEWARD_KAFKA_BROKERS", "kafka.brokers"),
    ("STEWARD_KAFKA_GROUP_ID", "kafka.group_id"),
    ("STEWARD_KAFKA_TRANSACTIONAL_ID", "kafka.transactional_id"),
    ("STEWARD_KAFKA_SASL_USERNAME", "kafka.sasl_username"),
    ("STEWARD_KAFKA_SASL_PASSWORD", "kafka.sasl_password"),
    ("STEWARD_CLICKHOUSE_URL", "clickhouse.url"),
    ("STEWARD_CLICKHOUSE_USER", "clickhouse.user"),
    ("STEWARD_CLICKHOUSE_PASSWORD", "clickhouse.password"),
    ("STEWARD_CLICKHOUSE_DATABASE", "clickhouse.database"),
    ("STEWARD_CHECKPOINT_DIR", "checkpoints.dir"),
    ("STEWARD_WEB_PUBLIC_URL", "web.public_url"),
];

/// A configuration error, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is not valid TOML or does not match the structure.
    #[error("configuration: {0}")]
    Parse(String),
    /// A field has a value that cannot work.
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted path of the field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// A secret string: never printed by `Debug` or `Display`, never serialised.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// A secret from a string.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "Secret(<empty>)"
        } else {
            "Secret(<redacted>)"
        })
    }
}

/// The whole connector configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Format version of this file; must be 1.
    pub version: u32,
    /// Kafka brokers, security and topics.
    pub kafka: KafkaConfig,
    /// The ClickHouse sink.
    pub clickhouse: ClickHouseConfig,
    /// Output batching and backpressure.
    pub batch: BatchConfig,
    /// Which clock advances logical time (`semantics.md` §1).
    pub clock: ClockConfig,
    /// Checkpoints of the trackers' state, from which a restart resumes (D68). A file
    /// without this section takes the defaults below.
    #[serde(default)]
    pub checkpoints: CheckpointConfig,
    /// `steward web`: where it listens, the address its QR codes link to, its users and the
    /// limits of every request. A file without this section takes the defaults below (no
    /// user: the supervisor view refuses everyone).
    #[serde(default)]
    pub web: WebConfig,
}

/// `steward web` (D83): the public colour-code pages, the supervisor view and the JSON API,
/// all read from ClickHouse.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Address to listen on, `host:port`.
    pub listen: String,
    /// The address people reach the service at, without a trailing `/` (for example
    /// `https://credit.example.gov.cn`): the QR codes link to `{public_url}/c/{uscc}`.
    pub public_url: String,
    /// How long one ClickHouse query of a page may take, in seconds (also sent to the
    /// server as `max_execution_time`); at least 1.
    pub query_timeout_secs: u64,
    /// How long a whole request may take, in seconds; at least `query_timeout_secs`.
    pub request_timeout_secs: u64,
    /// The most rows a search or a list returns; 1–10000.
    pub max_rows: u32,
    /// The largest request (URL, headers and body) accepted, in bytes; larger ones get
    /// 413 or 431.
    pub max_request_bytes: usize,
    /// Who may open the supervisor view; each checked with HTTP Basic authentication.
    #[serde(default)]
    pub users: Vec<WebUser>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: "127.0.0.1:8080".to_owned(),
            public_url: "http://127.0.0.1:8080".to_owned(),
            query_timeout_secs: 10,
            request_timeout_secs: 30,
            max_rows: 500,
            max_request_bytes: 16 * 1024,
            users: Vec::new(),
        }
    }
}

/// A user of the supervisor view.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebUser {
    /// The login name.
    pub name: String,
    /// `supervisor` (everything) or `analyst` (searches, lists and campaigns, but not an
    /// enterprise's records or its credit report).
    pub role: WebRole,
    /// The password's Argon2 hash as a PHC string (`$argon2id$v=19$…`), as `steward web
    /// hash-password` prints it; the password itself is never stored.
    pub password_hash: Secret,
}

impl fmt::Debug for WebUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebUser")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// What a user of the supervisor view may open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebRole {
    /// Searches, lists of enterprises and the inspection campaign.
    Analyst,
    /// Everything, also an enterprise's records, commitments and credit report.
    Supervisor,
}

impl WebRole {
    /// The role as the configuration names it.
    pub fn as_str(self) -> &'static str {
        match self {
            WebRole::Analyst => "analyst",
            WebRole::Supervisor => "supervisor",
        }
    }
}

/// Checkpoints (D68): every worker's tracker state at one logical time, written once every
/// output up to that time is durable. A restart resumes from the newest one: the log's
/// records up to its time enter the dataflow in one step, instead of being replayed time by
/// time through the trackers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Directory of the checkpoint files, created when needed; each steward writes under a
    /// subdirectory named by its `kafka.transactional_id`. Empty: no checkpoints (a restart
    /// replays the whole log).
    pub dir: String,
    /// Take a checkpoint about this often, in seconds of wall-clock time.
    pub every_secs: u64,
    /// How many checkpoints to keep (the newest).
    pub keep: usize,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            dir: "checkpoints".to_owned(),
            every_secs: 60,
            keep: 3,
        }
    }
}

/// Kafka settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma-separated `host:port`.
    pub brokers: String,
    /// Consumer group of the feed topics (input offsets are committed under it).
    pub group_id: String,
    /// Prefix of the transactional ids (`<prefix>-ingest`, `<prefix>-output`). One running
    /// steward per prefix: a second one fences the first out.
    pub transactional_id: String,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    #[serde(default = "plaintext")]
    pub security_protocol: String,
    /// SASL mechanism (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`) when SASL is used.
    /// Kerberos (`GSSAPI`) is not built in.
    #[serde(default)]
    pub sasl_mechanism: Option<String>,
    /// SASL user name.
    #[serde(default)]
    pub sasl_username: Option<String>,
    /// SASL password (prefer `STEWARD_KAFKA_SASL_PASSWORD`).
    #[serde(default)]
    pub sasl_password: Option<Secret>,
    /// CA certificate (PEM) that signed the brokers' certificates, with `ssl` or `sasl_ssl`;
    /// the system's CAs when absent. Checked to exist at start-up; a broker certificate it
    /// did not sign stops start-up with a message naming this setting.
    #[serde(default)]
    pub ssl_ca_location: Option<String>,
    /// Topic names.
    pub topics: Topics,
}

fn plaintext() -> String {
    "plaintext".to_owned()
}

/// Topic names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topics {
    /// Input topic of each feed, by feed code (`PEN`, `LIST`, …); all 11 feeds.
    pub feeds: BTreeMap<String, String>,
    /// Internal log of accepted and rejected records with their visibility times (one
    /// partition; the source of truth a restart replays).
    pub accepted: String,
    /// Internal topic of output fences: the logical time up to which every output is
    /// durable, committed in the same transaction as the outputs.
    pub fence: String,
    /// Internal topic of the pipeline's own `CMT` records (`semantics.md` §5): the
    /// `CMT.SCHEDULED` decisions, published with the outputs and read back by the feed stage
    /// as `CMT` input like a feed topic (one partition).
    pub commitments: String,
    /// Colour changes (`outputs.md`).
    pub colour_changes: String,
    /// Alerts.
    pub alerts: String,
    /// Inspection plans, verification plans and pre-credit changes.
    pub plans: String,
    /// Dead letters.
    pub dead_letters: String,
}

impl Topics {
    /// The input topic of `feed`.
    pub fn feed(&self, feed: Feed) -> &str {
        self.feeds
            .get(feed.as_str())
            .map_or("", std::string::String::as_str)
    }
    /// The feed read from `topic`: a feed topic's, or `CMT` for the internal commitments
    /// topic.
    pub fn feed_of(&self, topic: &str) -> Option<Feed> {
        if topic == self.commitments {
            return Some(Feed::Cmt);
        }
        self.feeds
            .iter()
            .find(|(_, t)| t.as_str() == topic)
            .and_then(|(f, _)| Feed::parse(f))
    }
    /// Every topic the feed stage reads: the 11 feed topics and the internal commitments
    /// topic.
    pub fn inputs(&self) -> Vec<&str> {
        self.feeds
            .values()
            .map(String::as_str)
            .chain(std::iter::once(self.commitments.as_str()))
            .collect()
    }
}

/// ClickHouse settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// HTTP URL, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// User the sink writes as.
    pub user: String,
    /// Password (prefer `STEWARD_CLICKHOUSE_PASSWORD`).
    #[serde(default)]
    pub password: Secret,
    /// Database of the tables; created by the migrations.
    pub database: String,
    /// PEM file of the CA that signed the server's certificate, for an `https://` URL; the
    /// system's CAs when absent. Checked at start-up: a certificate it did not sign stops
    /// start-up with a message naming this setting.
    #[serde(default)]
    pub ca_location: Option<String>,
    /// How long one request to the server may take, in seconds, from sending it to the end
    /// of its answer. A server that stops answering without closing the connection
    /// (frozen, starved, or gone behind a dead network path) then fails the request, which
    /// is counted and retried like a refused connection; an insert whose outcome is unknown
    /// is settled before it is retried (`docs/decisions.md` D73). At least 1.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

/// The ClickHouse request timeout when the configuration names none.
fn default_timeout_secs() -> u64 {
    30
}

/// Batching and backpressure.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Flush outputs when this many rows are waiting; also the most records the feed stage
    /// writes to the log in one transaction. During a catch-up (a restart, a backlog) the
    /// batches reach it; at live rates `max_delay_ms` makes a flush due first.
    pub max_rows: usize,
    /// Flush outputs at least this often, in milliseconds.
    pub max_delay_ms: u64,
    /// Stop reading input while more accepted records than this wait for the sinks.
    pub max_backlog_records: usize,
}

/// The clock.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockConfig {
    /// `replay`: the watermark follows the largest ingest time read; `live`: the wall clock
    /// also advances it, so expiries happen while feeds are idle.
    pub mode: ClockMode,
}

/// How the watermark advances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    /// From the records only.
    Replay,
    /// Also from the wall clock.
    Live,
}

impl Config {
    /// Parses `text`, applies overrides from `env` (see [`ENV_OVERRIDES`]) and validates.
    pub fn from_toml(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut c: Config = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        for (var, _) in ENV_OVERRIDES {
            if let Some(v) = env(var) {
                c.set(var, v);
            }
        }
        c.validate()?;
        Ok(c)
    }

    fn set(&mut self, var: &str, v: String) {
        match var {
            "STEWARD_KAFKA_BROKERS" => self.kafka.brokers = v,
            "STEWARD_KAFKA_GROUP_ID" => self.kafka.group_id = v,
            "STEWARD_KAFKA_TRANSACTIONAL_ID" => self.kafka.transactional_id = v,
            "STEWARD_KAFKA_SASL_USERNAME" => self.kafka.sasl_username = Some(v),
            "STEWARD_KAFKA_SASL_PASSWORD" => self.kafka.sasl_password = Some(Secret(v)),
            "STEWARD_CLICKHOUSE_URL" => self.clickhouse.url = v,
            "STEWARD_CLICKHOUSE_USER" => self.clickhouse.user = v,
            "STEWARD_CLICKHOUSE_PASSWORD" => self.clickhouse.password = Secret(v),
            "STEWARD_CLICKHOUSE_DATABASE" => self.clickhouse.database = v,
            "STEWARD_CHECKPOINT_DIR" => self.checkpoints.dir = v,
            "STEWARD_WEB_PUBLIC_URL" => self.web.public_url = v,
            _ => {}
        }
    }

    /// Checks every field that can be checked without connecting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.version != 1 {
            return Err(invalid(
                "version",
                format!("{} is not supported; use 1", self.version),
            ));
        }
        let k = &self.kafka;
        if k.brokers.split(',').any(|b| {
            let b = b.trim();
            b.rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        }) {
            return Err(invalid(
                "kafka.brokers",
                format!("{:?} is not a comma-separated list of host:port", k.brokers),
            ));
        }
        for (field, v) in [
            ("kafka.group_id", &k.group_id),
            ("kafka.transactional_id", &k.transactional_id),
        ] {
            if v.trim().is_empty() {
                return Err(invalid(field, "must not be empty"));
            }
        }
        match k.security_protocol.as_str() {
            "plaintext" | "ssl" => {}
            "sasl_plaintext" | "sasl_ssl" => {
                if k.sasl_mechanism.is_none() {
                    return Err(invalid("kafka.sasl_mechanism", "required with SASL"));
                }
                if k.sasl_username.is_none() {
                    return Err(invalid("kafka.sasl_username", "required with SASL"));
                }
                if k.sasl_password.as_ref().is_none_or(|p| p.0.is_empty()) {
                    return Err(invalid("kafka.sasl_password", "required with SASL"));
                }
            }
            other => {
                return Err(invalid(
                    "kafka.security_protocol",
                    format!("{other:?}: use plaintext, ssl, sasl_plaintext or sasl_ssl"),
                ))
            }
        }
        if let Some(ca) = &k.ssl_ca_location {
            if let Err(e) = std::fs::metadata(ca) {
                return Err(invalid("kafka.ssl_ca_location", format!("{ca}: {e}")));
            }
            if !k.security_protocol.ends_with("ssl") {
                return Err(invalid(
                    "kafka.ssl_ca_location",
                    "only with security_protocol ssl or sasl_ssl",
                ));
            }
        }
        if let Some(m) = &k.sasl_mechanism {
            if !["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].contains(&m.as_str()) {
                return Err(invalid(
                    "kafka.sasl_mechanism",
                    format!("{m:?}: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
                ));
            }
        }
        let t = &k.topics;
        let mut names = BTreeSet::new();
        for f in Feed::ALL {
            if !t.feeds.contains_key(f.as_str()) {
                return Err(invalid(
                    "kafka.topics.feeds",
                    format!("feed {f} has no topic"),
                ));
            }
        }
        let mut all: Vec<(String, &String)> = t
            .feeds
            .iter()
            .map(|(f, v)| (format!("kafka.topics.feeds.{f}"), v))
            .collect();
        for f in t.feeds.keys() {
            if Feed::parse(f).is_none() {
                return Err(invalid(
                    format!("kafka.topics.feeds.{f}"),
                    "unknown feed code",
                ));
            }
        }
        all.extend([
            ("kafka.topics.accepted".to_owned(), &t.accepted),
            ("kafka.topics.fence".to_owned(), &t.fence),
            ("kafka.topics.commitments".to_owned(), &t.commitments),
            ("kafka.topics.colour_changes".to_owned(), &t.colour_changes),
            ("kafka.topics.alerts".to_owned(), &t.alerts),
            ("kafka.topics.plans".to_owned(), &t.plans),
            ("kafka.topics.dead_letters".to_owned(), &t.dead_letters),
        ]);
        for (field, name) in all {
            if !valid_topic(name) {
                return Err(invalid(
                    field,
                    format!("{name:?} is not a valid Kafka topic name"),
                ));
            }
            if !names.insert(name.as_str()) {
                return Err(invalid(field, format!("topic {name:?} is used twice")));
            }
        }
        let c = &self.clickhouse;
        if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
            return Err(invalid(
                "clickhouse.url",
                format!("{:?} must start with http:// or https://", c.url),
            ));
        }
        if let Some(ca) = &c.ca_location {
            if !c.url.starts_with("https://") {
                return Err(invalid(
                    "clickhouse.ca_location",
                    "only with an https:// clickhouse.url",
                ));
            }
            if let Err(e) = std::fs::read(ca)
                .map_err(|e| e.to_string())
                .and_then(|pem| native_tls::Certificate::from_pem(&pem).map_err(|e| e.to_string()))
            {
                return Err(invalid("clickhouse.ca_location", format!("{ca}: {e}")));
            }
        }
        if c.user.is_empty() {
            return Err(invalid("clickhouse.user", "must not be empty"));
        }
        if c.database.is_empty()
            || !c
                .database
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            || c.database.starts_with(|ch: char| ch.is_ascii_digit())
        {
            return Err(invalid(
                "clickhouse.database",
                format!("{:?} must be letters, digits and _", c.database),
            ));
        }
        if c.timeout_secs == 0 {
            return Err(invalid("clickhouse.timeout_secs", "must be at least 1"));
        }
        let b = &self.batch;
        if b.max_rows == 0 {
            return Err(invalid("batch.max_rows", "must be at least 1"));
        }
        if b.max_delay_ms == 0 {
            return Err(invalid("batch.max_delay_ms", "must be at least 1"));
        }
        if b.max_backlog_records < b.max_rows {
            return Err(invalid(
                "batch.max_backlog_records",
                format!("must be at least batch.max_rows ({})", b.max_rows),
            ));
        }
        let c = &self.checkpoints;
        if c.every_secs == 0 {
            return Err(invalid("checkpoints.every_secs", "must be at least 1"));
        }
        if c.keep == 0 {
            return Err(invalid("checkpoints.keep", "must be at least 1"));
        }
        self.web.validate()
    }
}

impl WebConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "web.listen",
                format!("{:?} is not an address host:port", self.listen),
            ));
        }
        let u = &self.public_url;
        if !(u.starts_with("http://") || u.starts_with("https://"))
            || u.ends_with('/')
            || u.contains(char::is_whitespace)
        {
            return Err(invalid(
                "web.public_url",
                format!("{u:?} must start with http:// or https:// and not end with /"),
            ));
        }
        if self.query_timeout_secs == 0 {
            return Err(invalid("web.query_timeout_secs", "must be at least 1"));
        }
        if self.request_timeout_secs < self.query_timeout_secs {
            return Err(invalid(
                "web.request_timeout_secs",
                "must be at least web.query_timeout_secs",
            ));
        }
        if !(1..=10_000).contains(&self.max_rows) {
            return Err(invalid("web.max_rows", "must be 1 to 10000"));
        }
        if self.max_request_bytes < 1024 {
            return Err(invalid("web.max_request_bytes", "must be at least 1024"));
        }
        let mut names = BTreeSet::new();
        for (i, user) in self.users.iter().enumerate() {
            let field = |f: &str| format!("web.users[{i}].{f}");
            if user.name.is_empty() || user.name.contains(':') {
                return Err(invalid(field("name"), "must be non-empty, without ':'"));
            }
            if !names.insert(user.name.as_str()) {
                return Err(invalid(
                    field("name"),
                    format!("{:?} is named twice", user.name),
                ));
            }
            if let Err(e) = argon2::PasswordHash::new(user.password_hash.expose()) {
                return Err(invalid(
                    field("password_hash"),
                    format!(
                        "not a PHC password hash ({e}); make one with `steward web hash-password`"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Kafka's topic name rule: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn valid_topic(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(edit: &str, from: &str) -> String {
        let text = DEFAULT_TOML.replacen(from, edit, 1);
        assert_ne!(text, DEFAULT_TOML, "the edit {from:?} applies");
        text
    }

    fn error(text: &str) -> String {
        Config::from_toml(text, |_| None)
            .expect_err("invalid")
            .to_string()
    }

    #[test]
    fn the_embedded_default_is_valid() {
        let c = Config::from_toml(DEFAULT_TOML, |_| None).expect("valid");
        assert_eq!(c.kafka.topics.feed(Feed::Pen), "credit.in.pen");
        assert_eq!(c.kafka.topics.feed_of("credit.in.insp"), Some(Feed::Insp));
        assert_eq!(
            c.kafka.topics.feed_of("credit.internal.commitments"),
            Some(Feed::Cmt)
        );
        assert_eq!(c.kafka.topics.inputs().len(), 12);
        assert_eq!(c.clock.mode, ClockMode::Replay);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                with("brokers = \"nohost\"", "brokers = \"127.0.0.1:9092\""),
                "kafka.brokers",
            ),
            (
                with("alerts = \"bad topic\"", "alerts = \"credit.out.alerts\""),
                "kafka.topics.alerts",
            ),
            (
                with("alerts = \"credit.dlq\"", "alerts = \"credit.out.alerts\""),
                "kafka.topics",
            ),
            (
                with(
                    "commitments = \"credit internal\"",
                    "commitments = \"credit.internal.commitments\"",
                ),
                "kafka.topics.commitments",
            ),
            (
                with(
                    "commitments = \"credit.in.cmt\"",
                    "commitments = \"credit.internal.commitments\"",
                ),
                "kafka.topics.commitments",
            ),
            (with("", "PEN = \"credit.in.pen\"\n"), "kafka.topics.feeds"),
            (
                with(
                    "XYZ = \"x\"\nPEN = \"credit.in.pen\"",
                    "PEN = \"credit.in.pen\"",
                ),
                "kafka.topics.feeds.XYZ",
            ),
            (
                with(
                    "url = \"127.0.0.1:8123\"",
                    "url = \"http://127.0.0.1:8123\"",
                ),
                "clickhouse.url",
            ),
            (
                with("database = \"credit; DROP\"", "database = \"credit\""),
                "clickhouse.database",
            ),
            (
                with(
                    "url = \"http://127.0.0.1:8123\"\nca_location = \"Cargo.toml\"",
                    "url = \"http://127.0.0.1:8123\"",
                ),
                "clickhouse.ca_location",
            ),
            (
                with(
                    "url = \"https://127.0.0.1:8443\"\nca_location = \"/nonexistent/ca.pem\"",
                    "url = \"http://127.0.0.1:8123\"",
                ),
                "clickhouse.ca_location",
            ),
            (
                with(
                    "url = \"https://127.0.0.1:8443\"\nca_location = \"Cargo.toml\"",
                    "url = \"http://127.0.0.1:8123\"",
                ),
                "clickhouse.ca_location",
            ),
            (with("max_rows = 0", "max_rows = 100000"), "batch.max_rows"),
            (
                with("every_secs = 0", "every_secs = 60"),
                "checkpoints.every_secs",
            ),
            (with("keep = 0", "keep = 3"), "checkpoints.keep"),
            (
                with("timeout_secs = 0", "timeout_secs = 30"),
                "clickhouse.timeout_secs",
            ),
            (
                with(
                    "security_protocol = \"sasl_ssl\"",
                    "security_protocol = \"plaintext\"",
                ),
                "kafka.sasl_mechanism",
            ),
            (
                with(
                    "security_protocol = \"ssl\"\nssl_ca_location = \"/nonexistent/ca.pem\"",
                    "security_protocol = \"plaintext\"",
                ),
                "kafka.ssl_ca_location",
            ),
            (
                with(
                    "ssl_ca_location = \"Cargo.toml\"\nsecurity_protocol = \"plaintext\"",
                    "security_protocol = \"plaintext\"",
                ),
                "kafka.ssl_ca_location",
            ),
            (with("mode = \"sometimes\"", "mode = \"replay\""), "mode"),
            (with("version = 2", "version = 1"), "version"),
            (
                with(
                    "[clock]\nmode = \"replay\"\nspeed = 2",
                    "[clock]\nmode = \"replay\"",
                ),
                "speed",
            ),
        ];
        for (text, field) in cases {
            let e = error(&text);
            assert!(e.contains(field), "{e:?} names {field}");
        }
    }

    #[test]
    fn environment_overrides_fields() {
        let c = Config::from_toml(DEFAULT_TOML, |k| match k {
            "STEWARD_CLICKHOUSE_DATABASE" => Some("other".into()),
            "STEWARD_KAFKA_BROKERS" => Some("k1:1,k2:2".into()),
            _ => None,
        })
        .expect("valid");
        assert_eq!(c.clickhouse.database, "other");
        assert_eq!(c.kafka.brokers, "k1:1,k2:2");
    }

    #[test]
    fn passwords_never_appear_in_debug_output() {
        let c = Config::from_toml(
            &with(
                "security_protocol = \"sasl_ssl\"\nsasl_mechanism = \"PLAIN\"\nsasl_username = \"u\"\nsasl_password = \"kafka-pw-3141\"",
                "security_protocol = \"plaintext\"",
            ),
            |k| (k == "STEWARD_CLICKHOUSE_PASSWORD").then(|| "ch-pw-2718".to_owned()),
        )
        .expect("valid");
        assert_eq!(c.clickhouse.password.expose(), "ch-pw-2718");
        let shown = format!("{c:?} {c:#?}");
        assert!(
            !shown.contains("kafka-pw-3141") && !shown.contains("ch-pw-2718"),
            "{shown}"
        );
        assert!(shown.contains("Secret(<redacted>)"));
    }

    /// A valid Argon2id PHC string (of the password `pw`).
    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$RN4/KQZ+fyLvhDqTcoZ9jJvBOzSH1Gqv2Owtv/4m1T4";

    fn user(name: &str, role: &str, hash: &str) -> String {
        format!(
            "\n[[web.users]]\nname = \"{name}\"\nrole = \"{role}\"\npassword_hash = \"{hash}\"\n"
        )
    }

    #[test]
    fn web_users_and_limits_are_checked() {
        let c = Config::from_toml(
            &(DEFAULT_TOML.to_owned()
                + &user("sup", "supervisor", HASH)
                + &user("ana", "analyst", HASH)),
            |_| None,
        )
        .expect("valid");
        assert_eq!(c.web.users.len(), 2);
        assert_eq!(c.web.users[1].role, WebRole::Analyst);
        assert!(WebRole::Supervisor > WebRole::Analyst);
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("argon2") && shown.contains("\"sup\""),
            "{shown}"
        );
        // Without the section: the defaults, and no user.
        let plain = DEFAULT_TOML[..DEFAULT_TOML.find("[web]").expect("a [web] section")].to_owned();
        assert!(Config::from_toml(&plain, |_| None)
            .expect("valid")
            .web
            .users
            .is_empty());

        let cases = [
            (
                DEFAULT_TOML.to_owned() + &user("sup", "supervisor", "plain-password"),
                "web.users[0].password_hash",
            ),
            (
                DEFAULT_TOML.to_owned()
                    + &user("sup", "supervisor", HASH)
                    + &user("sup", "analyst", HASH),
                "web.users[1].name",
            ),
            (
                DEFAULT_TOML.to_owned() + &user("a:b", "analyst", HASH),
                "web.users[0].name",
            ),
            (
                with("listen = \"localhost\"", "listen = \"127.0.0.1:8080\""),
                "web.listen",
            ),
            (
                with(
                    "public_url = \"http://x/\"",
                    "public_url = \"http://127.0.0.1:8080\"",
                ),
                "web.public_url",
            ),
            (with("max_rows = 0", "max_rows = 500"), "web.max_rows"),
            (
                with("request_timeout_secs = 1", "request_timeout_secs = 30"),
                "web.request_timeout_secs",
            ),
            (
                with("query_timeout_secs = 0", "query_timeout_secs = 10"),
                "web.query_timeout_secs",
            ),
            (
                with("max_request_bytes = 10", "max_request_bytes = 16384"),
                "web.max_request_bytes",
            ),
        ];
        for (text, field) in cases {
            let e = error(&text);
            assert!(e.contains(field), "{e:?} names {field}");
        }
        let e = error(&(DEFAULT_TOML.to_owned() + &user("x", "admin", HASH)));
        assert!(e.contains("admin"), "{e}");
    }
}
