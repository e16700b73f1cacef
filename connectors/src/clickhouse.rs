//! The ClickHouse sink: versioned, idempotent schema migrations, one row type per table,
//! and inserts that report their latency and errors.
//!
//! Inserts are one HTTP request per batch. A batch smaller than ClickHouse's
//! `max_insert_block_size` (1,048,576 rows) is written as one block, so it lands completely
//! or not at all; the caller retries a failed batch with backoff and skips the rows a
//! previous run already wrote (see [`ClickHouse::existing`]).
//!
//! Every request fails after `clickhouse.timeout_secs` ([`ClickHouseError::TimedOut`]). An
//! insert that failed after it was sent may still land (the server may have received it
//! whole), so a table without a version column is written with
//! [`ClickHouse::insert_once`], which settles such an attempt before trying again (D73).

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clickhouse::query::Query;
use clickhouse::{Client, Row, RowOwned, RowRead, RowWrite};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::ClickHouseConfig;

/// The migrations, in order: `(version, name, SQL)`. `{db}` is the configured database;
/// statements are separated by lines holding only `;`.
pub const MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "tables", include_str!("../migrations/0001_tables.sql")),
    (2, "views", include_str!("../migrations/0002_views.sql")),
    (
        3,
        "review_flags",
        include_str!("../migrations/0003_review_flags.sql"),
    ),
    (
        4,
        "commitment_checks",
        include_str!("../migrations/0004_commitment_checks.sql"),
    ),
    (
        5,
        "record_status",
        include_str!("../migrations/0005_record_status.sql"),
    ),
    (
        6,
        "views_everywhere",
        include_str!("../migrations/0006_views_everywhere.sql"),
    ),
    (
        7,
        "current_types",
        include_str!("../migrations/0007_current_types.sql"),
    ),
];

/// Migrations that need a server newer than 18.16: `(version, (major, minor))`. On an older
/// server such a migration is skipped and not recorded, so it applies once the server is
/// upgraded (D57).
pub const MIN_SERVER: &[(u32, (u32, u32))] = &[(7, (20, 3))];

/// Whether migration `version` applies on a server of version `server` (`(major, minor)`).
pub fn applies_on(version: u32, server: (u32, u32)) -> bool {
    MIN_SERVER
        .iter()
        .find(|(v, _)| *v == version)
        .is_none_or(|(_, min)| server >= *min)
}

/// The statement that makes `db.schema_migrations`, where each applied migration is recorded
/// with the checksum of its text.
pub fn schema_migrations_table(db: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {db}.schema_migrations \
         (version UInt32, name String, checksum String, applied_at DateTime) \
         ENGINE = ReplacingMergeTree ORDER BY version"
    )
}

/// `(major, minor)` of a `SELECT version()` answer such as `18.16.1` or `26.9.2.1`.
pub fn server_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Checksums of earlier texts of a migration that a database may have applied and that are
/// still accepted: `(version, SHA-256 of the earlier text)`. Only for a text that was
/// wrong on some servers and whose effect a later migration replaces (D57): migration 5
/// first also made `v_records`, in a form current ClickHouse refuses; migration 6 makes
/// the view again.
pub const EARLIER_CHECKSUMS: &[(u32, &str)] = &[(
    5,
    "61487445eddc855d4ff14bab164037154f48e8bfea7b093007018a8d5cdddb0c",
)];

/// A ClickHouse failure.
#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    /// The server or the connection failed.
    #[error("clickhouse {context}: {source}")]
    Client {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: clickhouse::error::Error,
    },
    /// The server did not answer within `clickhouse.timeout_secs`.
    #[error("clickhouse {context}: no answer within {} s", after.as_secs())]
    TimedOut {
        /// What was being done.
        context: String,
        /// The timeout.
        after: Duration,
    },
    /// An earlier attempt of an insert failed without its outcome being known, and the
    /// server still runs it: the insert waits for it before trying again.
    #[error("clickhouse insert into {table}: the earlier attempt {query_id} is still running")]
    Unsettled {
        /// The table.
        table: &'static str,
        /// The earlier attempt's query id.
        query_id: String,
    },
    /// The server refused the configuration's credentials or certificate: not a lost
    /// service, so nothing is retried.
    #[error("clickhouse: the server refused the connection; check {setting}: {reason}")]
    Refused {
        /// The settings to check.
        setting: &'static str,
        /// What the client or the server said.
        reason: String,
    },
    /// `clickhouse.ca_location` could not be read as a PEM certificate.
    #[error("clickhouse.ca_location {path}: {reason}")]
    Certificate {
        /// The configured path.
        path: String,
        /// Why it could not be used.
        reason: String,
    },
    /// An applied migration differs from the one in this program.
    #[error("clickhouse migration {version} ({name}) was applied with another content (checksum {applied}, this program has {ours}); refusing to go on")]
    MigrationChanged {
        /// Migration version.
        version: u32,
        /// Migration name.
        name: String,
        /// Checksum in the database.
        applied: String,
        /// Checksum here.
        ours: String,
    },
}

fn err(context: impl Into<String>) -> impl FnOnce(clickhouse::error::Error) -> ClickHouseError {
    let context = context.into();
    move |source| ClickHouseError::Client { context, source }
}

/// The statements of a migration for database `db`.
pub fn statements(sql: &str, db: &str) -> Vec<String> {
    let sql = sql.replace("{db}", db);
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        if line.trim() == ";" {
            out.push(std::mem::take(&mut cur));
        } else if !line.trim_start().starts_with("--") {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The table and the columns of an `ALTER TABLE db.t ADD COLUMN a …, ADD COLUMN b …`
/// statement; `None` for any other statement.
pub fn added_columns(stmt: &str) -> Option<(String, Vec<String>)> {
    let words: Vec<&str> = stmt
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let table = match words.as_slice() {
        [a, t, table, ..] if a.eq_ignore_ascii_case("ALTER") && t.eq_ignore_ascii_case("TABLE") => {
            table.rsplit('.').next()?.to_owned()
        }
        _ => return None,
    };
    let columns: Vec<String> = words
        .windows(3)
        .filter(|w| w[0].eq_ignore_ascii_case("ADD") && w[1].eq_ignore_ascii_case("COLUMN"))
        .map(|w| w[2].to_owned())
        .collect();
    (!columns.is_empty()).then_some((table, columns))
}

/// A client for `https://` URLs that trusts the PEM certificate at `path`, with the
/// connection settings of the `clickhouse` crate's own HTTP client.
fn trusting(path: &str) -> Result<Client, ClickHouseError> {
    let bad = |reason: String| ClickHouseError::Certificate {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let ca = native_tls::Certificate::from_pem(&pem).map_err(|e| bad(e.to_string()))?;
    let tls = native_tls::TlsConnector::builder()
        .add_root_certificate(ca)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let mut http = HttpConnector::new();
    http.set_keepalive(Some(Duration::from_secs(60)));
    http.enforce_http(false);
    let https = hyper_tls::HttpsConnector::from((http, tokio_native_tls::TlsConnector::from(tls)));
    // ClickHouse closes idle connections after 3 s (keep_alive_timeout).
    let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(2))
        .build(https);
    Ok(Client::with_http_client(http))
}

/// A connection to the configured database.
#[derive(Clone)]
pub struct ClickHouse {
    client: Client,
    database: String,
    /// How long one request may take (`clickhouse.timeout_secs`).
    timeout: Duration,
}

/// A table whose rows are told apart by an id and have no version column: a row inserted
/// twice stays there twice, so a retried insert must leave out what an earlier attempt
/// wrote ([`ClickHouse::insert_once`]).
pub trait Identified: RowOwned + RowWrite {
    /// The table.
    const TABLE: &'static str;
    /// The id column.
    const ID: &'static str;
    /// The `DateTime` column that bounds a search for ids.
    const TIME: &'static str;
    /// This row's id.
    fn id(&self) -> &str;
    /// This row's time column.
    fn time(&self) -> u32;
}

/// How long [`ClickHouse::insert_once`] waits between its two looks for an earlier attempt.
const SETTLE_PAUSE: Duration = Duration::from_secs(1);

/// A new query id for a request on `table`: unique in this process and, with the process
/// id and the clock, among the processes writing to one server.
fn query_id(table: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("steward-{table}-{}-{nanos}-{n}", std::process::id())
}

impl std::fmt::Debug for ClickHouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouse")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Row, Deserialize)]
struct Applied {
    version: u32,
    name: String,
    checksum: String,
}

#[derive(Debug, Row, Serialize)]
struct AppliedRow<'a> {
    version: u32,
    name: &'a str,
    checksum: &'a str,
    applied_at: u32,
}

/// ClickHouse's codes for a login it refuses: unknown user, wrong password, required
/// password (18.16), authentication failed (current releases).
const LOGIN_REFUSED: [u32; 4] = [192, 193, 194, 516];

/// The exception code at the start of a ClickHouse error text (`Code: 193, …` on 18.16,
/// `Code: 516. …` on current releases).
fn exception_code(text: &str) -> Option<u32> {
    let rest = &text[text.find("Code: ")? + "Code: ".len()..];
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

/// `e` and its causes, outermost first.
fn causes(
    e: &clickhouse::error::Error,
) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e as &(dyn std::error::Error + 'static)), |c| {
        c.source()
    })
}

/// Whether `e` failed in the TLS handshake (an untrusted certificate, or TLS spoken to a
/// plain port).
fn is_tls(e: &clickhouse::error::Error) -> bool {
    causes(e).any(|c| c.is::<native_tls::Error>())
}

/// `e` and its causes, joined by `: ` without repeats (the client's own message for a failed
/// handshake is only "client error (Connect)"; the certificate problem is in a cause).
fn chain(e: &clickhouse::error::Error) -> String {
    causes(e).fold(String::new(), |mut text, c| {
        // Some errors repeat their cause in their own message.
        let more = c.to_string();
        if !text.contains(&more) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&more);
        }
        text
    })
}

/// Why a failed request is the configuration's fault, naming the settings to check; `None`
/// when it is not (a server that does not answer, say).
fn refusal(e: &clickhouse::error::Error) -> Option<&'static str> {
    if is_tls(e) {
        return Some(
            "clickhouse.ca_location (the CA that signed the server's certificate) and \
             clickhouse.url",
        );
    }
    match e {
        clickhouse::error::Error::BadResponse(text)
            if exception_code(text).is_some_and(|c| LOGIN_REFUSED.contains(&c)) =>
        {
            Some("clickhouse.user and clickhouse.password (STEWARD_CLICKHOUSE_PASSWORD)")
        }
        _ => None,
    }
}

impl ClickHouse {
    /// A client for `cfg` (validation off: ClickHouse 18.16 lacks
    /// `RowBinaryWithNamesAndTypes`). With `ca_location`, the client trusts that CA in
    /// addition to the system's.
    pub fn new(cfg: &ClickHouseConfig) -> Result<Self, ClickHouseError> {
        let client = match &cfg.ca_location {
            None => Client::default(),
            Some(path) => trusting(path)?,
        };
        let client = client
            .with_url(&cfg.url)
            .with_user(&cfg.user)
            .with_password(cfg.password.expose())
            .with_validation(false);
        Ok(ClickHouse {
            client,
            database: cfg.database.clone(),
            timeout: Duration::from_secs(cfg.timeout_secs),
        })
    }

    /// The request `fut`, failed with [`ClickHouseError::TimedOut`] once it has taken longer
    /// than the configured timeout (dropping it closes its connection).
    async fn bounded<T>(
        &self,
        context: impl Into<String>,
        fut: impl Future<Output = Result<T, clickhouse::error::Error>>,
    ) -> Result<T, ClickHouseError> {
        let context = context.into();
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r.map_err(err(context)),
            Err(_) => Err(ClickHouseError::TimedOut {
                context,
                after: self.timeout,
            }),
        }
    }

    /// Asks the server once. Credentials or a certificate it refuses are the
    /// configuration's fault, not a lost service: they fail with
    /// [`ClickHouseError::Refused`] naming the settings to check, so that start-up stops
    /// instead of retrying for ever. A server that does not answer (in time) is not
    /// reported here (the sink retries it).
    pub async fn check_access(&self) -> Result<(), ClickHouseError> {
        let answer = tokio::time::timeout(self.timeout, self.client.query("SELECT 1").execute());
        match answer.await {
            Ok(Err(e)) => match refusal(&e) {
                Some(setting) => Err(ClickHouseError::Refused {
                    setting,
                    reason: chain(&e),
                }),
                None => Ok(()),
            },
            Ok(Ok(())) | Err(_) => Ok(()),
        }
    }

    /// The database name.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Runs one statement.
    pub async fn execute(&self, sql: &str) -> Result<(), ClickHouseError> {
        let context = sql.chars().take(80).collect::<String>();
        self.bounded(context, self.client.query(sql).execute())
            .await
    }

    /// Whether the server answers (in time).
    pub async fn ping(&self) -> bool {
        self.execute("SELECT 1").await.is_ok()
    }

    /// Applies the migrations not applied yet, in order, recording each in
    /// `schema_migrations`. Returns the versions applied now.
    pub async fn migrate(&self) -> Result<Vec<u32>, ClickHouseError> {
        let db = &self.database;
        self.execute(&format!("CREATE DATABASE IF NOT EXISTS {db}"))
            .await?;
        self.execute(&schema_migrations_table(db)).await?;
        let applied: Vec<Applied> = self
            .fetch(&format!(
                "SELECT version, name, checksum FROM {db}.schema_migrations FINAL ORDER BY version"
            ))
            .await?;
        let version = self.client.query("SELECT version()").fetch_one();
        let answer: String = self
            .bounded("reading the server's version", version)
            .await?;
        // An unreadable version is taken as the oldest supported (18.16): nothing newer runs.
        let server = server_version(&answer).unwrap_or((18, 16));
        let mut now = Vec::new();
        for (version, name, sql) in MIGRATIONS {
            if !applies_on(*version, server) {
                continue;
            }
            let ours = hex::encode(Sha256::digest(sql.as_bytes()));
            if let Some(a) = applied.iter().find(|a| a.version == *version) {
                let earlier = EARLIER_CHECKSUMS.contains(&(*version, a.checksum.as_str()));
                if a.checksum != ours && !earlier {
                    return Err(ClickHouseError::MigrationChanged {
                        version: *version,
                        name: a.name.clone(),
                        applied: a.checksum.clone(),
                        ours,
                    });
                }
                continue;
            }
            for s in statements(sql, db) {
                // ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS: a crash between an ALTER
                // and its schema_migrations row must not make the rerun fail.
                if let Some((table, columns)) = added_columns(&s) {
                    let columns_of = self
                        .client
                        .query("SELECT name FROM system.columns WHERE database = ? AND table = ?")
                        .bind(db)
                        .bind(&table)
                        .fetch_all();
                    let have: Vec<String> =
                        self.bounded("reading system.columns", columns_of).await?;
                    if columns.iter().all(|c| have.contains(c)) {
                        continue;
                    }
                }
                self.execute(&s).await?;
            }
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as u32);
            let row = AppliedRow {
                version: *version,
                name,
                checksum: &ours,
                applied_at: at,
            };
            let record = async {
                let client = self.client.clone().with_database(db);
                let mut ins = client.insert::<AppliedRow<'_>>("schema_migrations").await?;
                ins.write(&row).await?;
                ins.end().await
            };
            self.bounded("recording a migration", record).await?;
            now.push(*version);
        }
        Ok(now)
    }

    /// Inserts `rows` into `table` as one batch; returns how long it took.
    pub async fn insert<T>(&self, table: &str, rows: &[T]) -> Result<Duration, ClickHouseError>
    where
        T: RowOwned + RowWrite,
    {
        self.insert_as(table, rows, &query_id(table)).await
    }

    /// [`ClickHouse::insert`] under the query id `id`, by which the server lists it while
    /// it runs (`system.processes`).
    async fn insert_as<T>(
        &self,
        table: &str,
        rows: &[T],
        id: &str,
    ) -> Result<Duration, ClickHouseError>
    where
        T: RowOwned + RowWrite,
    {
        let started = Instant::now();
        if rows.is_empty() {
            return Ok(started.elapsed());
        }
        let write = async {
            let client = self.client.clone().with_database(&self.database);
            let mut ins = client
                .insert::<T>(table)
                .await?
                .with_setting("query_id", id);
            for r in rows {
                ins.write(r).await?;
            }
            ins.end().await
        };
        self.bounded(format!("insert into {table}"), write).await?;
        Ok(started.elapsed())
    }

    /// Inserts `rows` into `T::TABLE` so that retrying it after a failure writes no row
    /// twice. A failed attempt is recorded in `unsettled` (its query id): the server may
    /// have received it whole and apply it later. The next call settles it first: while the
    /// server still runs it, that call fails with [`ClickHouseError::Unsettled`] (retry
    /// later); once it no longer does (asked twice, [`SETTLE_PAUSE`] apart), the rows it
    /// wrote are taken out of `rows`, and the rest are inserted.
    pub async fn insert_once<T: Identified>(
        &self,
        rows: &mut Vec<T>,
        unsettled: &mut Option<String>,
    ) -> Result<Duration, ClickHouseError> {
        if let Some(earlier) = unsettled.as_deref() {
            // Asked twice, a moment apart: a server that was frozen may take the earlier
            // request off its listen queue only as it answers this one.
            for pause in [Duration::ZERO, SETTLE_PAUSE] {
                tokio::time::sleep(pause).await;
                if self.running(earlier).await? {
                    return Err(ClickHouseError::Unsettled {
                        table: T::TABLE,
                        query_id: earlier.to_owned(),
                    });
                }
            }
            let since = rows.iter().map(T::time).min().unwrap_or(0);
            let written = self.existing::<T>(since).await?;
            rows.retain(|r| !written.contains(r.id()));
            *unsettled = None;
        }
        let id = query_id(T::TABLE);
        self.insert_as(T::TABLE, rows, &id)
            .await
            .inspect_err(|_| *unsettled = Some(id))
    }

    /// Whether the server is running the query `id`.
    pub async fn running(&self, id: &str) -> Result<bool, ClickHouseError> {
        let ask = self
            .client
            .query("SELECT count() FROM system.processes WHERE query_id = ?")
            .bind(id)
            .fetch_one::<u64>();
        Ok(self.bounded("reading system.processes", ask).await? > 0)
    }

    /// The ids of `T::TABLE` at or after `since`: rows a previous run (or attempt) may have
    /// written.
    pub async fn existing<T: Identified>(
        &self,
        since: u32,
    ) -> Result<HashSet<String>, ClickHouseError> {
        let read = self
            .client
            .query(&format!(
                "SELECT {} FROM {}.{} WHERE {} >= {since}",
                T::ID,
                self.database,
                T::TABLE,
                T::TIME
            ))
            .fetch_all::<String>();
        let ids = self
            .bounded(format!("reading ids of {}", T::TABLE), read)
            .await?;
        Ok(ids.into_iter().collect())
    }

    /// This connection with every request bounded by `limit` instead of
    /// `clickhouse.timeout_secs`, and every query stopped by the server itself after that
    /// long (`max_execution_time`): for a reader that must answer people in time.
    pub fn limited_to(mut self, limit: Duration) -> Self {
        self.client = self
            .client
            .with_setting("max_execution_time", limit.as_secs().max(1).to_string());
        self.timeout = limit;
        self
    }

    /// A query whose `?` placeholders are filled in order by [`Query::bind`], each value
    /// escaped by the client (ClickHouse 18.16 has no server-side parameters), for
    /// [`ClickHouse::fetch_bound`].
    pub fn query(&self, sql: &str) -> Query {
        self.client.query(sql)
    }

    /// Runs a query made by [`ClickHouse::query`] and returns its rows of `T`; `context`
    /// names it in errors.
    pub async fn fetch_bound<T>(
        &self,
        context: &str,
        query: Query,
    ) -> Result<Vec<T>, ClickHouseError>
    where
        T: RowOwned + RowRead,
    {
        self.bounded(context, query.fetch_all()).await
    }

    /// Runs a query returning rows of `T`.
    pub async fn fetch<T>(&self, sql: &str) -> Result<Vec<T>, ClickHouseError>
    where
        T: RowOwned + RowRead,
    {
        let context = sql.chars().take(80).collect::<String>();
        self.bounded(context, self.client.query(sql).fetch_all())
            .await
    }
}

/// `enterprise_state`: the latest state of one enterprise.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct StateRow {
    pub uscc: String,
    pub as_of: u32,
    pub colour: String,
    pub score_colour: String,
    pub s: Option<f64>,
    pub p: Option<f64>,
    pub m: f64,
    pub q: Option<f64>,
    pub r: f64,
    pub triggers: Vec<String>,
    pub level1: Vec<f64>,
    pub level2: Vec<f64>,
    pub reason_indicators: Vec<String>,
    pub reason_contributions: Vec<f64>,
    pub reasons: String,
    pub region: String,
    pub industry: String,
    pub pre_credit: String,
    pub pre_credit_line: Option<f64>,
    pub rules_version: String,
    pub model_version: String,
    pub deleted: u8,
    pub version: u64,
    pub review_flags: Vec<String>,
    pub review_flag_repairs: Vec<String>,
}

/// `indicator_values`: the 49 level-3 values of one enterprise.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct IndicatorRow {
    pub uscc: String,
    pub as_of: u32,
    pub level3: Vec<f64>,
    pub rules_version: String,
    pub deleted: u8,
    pub version: u64,
}

/// `indicator_catalogue`: one indicator of a catalogue version.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct CatalogueRow {
    pub rules_version: String,
    pub row: u8,
    pub indicator: String,
    pub name: String,
    pub level2: String,
    pub level1: String,
    pub group_weight: f64,
}

/// `colour_history`: one change of published colour.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ChangeRow {
    pub change_id: String,
    pub uscc: String,
    pub as_of: u32,
    pub from_colour: String,
    pub to_colour: String,
    pub direction: String,
    pub score: Option<f64>,
    pub score_colour: String,
    pub triggers: Vec<String>,
    pub reason_indicators: Vec<String>,
    pub reason_contributions: Vec<f64>,
    pub reasons: String,
    pub region: String,
    pub industry: String,
    pub model_version: String,
    pub rules_version: String,
}

/// `alerts`: one alert state change.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct AlertRow {
    pub alert_id: String,
    pub uscc: String,
    pub rule: String,
    pub severity: String,
    pub state: String,
    pub as_of: u32,
    pub detail: String,
    pub region: String,
    pub industry: String,
}

/// `records`: one accepted record version and its status.
#[derive(Debug, Clone, Default, PartialEq, Row, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RecordRow {
    pub feed: String,
    pub event_id: String,
    pub record_version: u32,
    pub uscc: String,
    pub kind: String,
    pub event_time: u32,
    pub ingest_time: u32,
    pub v: u32,
    pub digest: String,
    pub body: String,
    pub status: String,
    pub version: u64,
}

/// `record_status`: a record's status from `as_of` on (the row with the highest `version`,
/// the logical time, is the current one).
#[derive(Debug, Clone, Default, PartialEq, Row, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct StatusRow {
    pub feed: String,
    pub event_id: String,
    pub record_version: u32,
    pub digest: String,
    pub uscc: String,
    pub status: String,
    pub as_of: u32,
    pub version: u64,
}

/// `dead_letters`: one rejected record.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct DeadLetterRow {
    pub letter_id: String,
    pub original: String,
    pub source_topic: String,
    pub partition: i32,
    pub offset: i64,
    pub reason: String,
    pub message: String,
    pub time: u32,
}

/// `inspection_plans`: one enterprise selected by an inspection campaign.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct PlanRow {
    pub campaign_id: String,
    pub seed: u64,
    pub snapshot: u32,
    pub uscc: String,
    pub colour: String,
    pub score: Option<f64>,
    pub u: f64,
    pub probability: f64,
    pub reason: String,
    pub reasons: String,
    pub region: String,
    pub industry: String,
}

/// `inspection_campaigns`: a campaign's population and selections of one colour.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct CampaignRow {
    pub campaign_id: String,
    pub seed: u64,
    pub snapshot: u32,
    pub colour: String,
    pub population: u64,
    pub selected: u64,
}

/// `commitment_checks`: one verification decision or result of a commitment.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct CommitmentCheckRow {
    pub check_id: String,
    pub commitment_id: String,
    pub uscc: String,
    pub as_of: u32,
    pub method: String,
    pub result: String,
    pub detail: String,
    pub kind: String,
    pub colour: String,
    pub effective: u32,
    pub due: Option<u32>,
    pub record: String,
}

/// The tables of the sink without a version column.
macro_rules! identified {
    ($($row:ty => $table:literal, $id:ident, $time:ident;)*) => {$(
        impl Identified for $row {
            const TABLE: &'static str = $table;
            const ID: &'static str = stringify!($id);
            const TIME: &'static str = stringify!($time);
            fn id(&self) -> &str {
                &self.$id
            }
            fn time(&self) -> u32 {
                self.$time
            }
        }
    )*};
}

identified! {
    ChangeRow => "colour_history", change_id, as_of;
    AlertRow => "alerts", alert_id, as_of;
    DeadLetterRow => "dead_letters", letter_id, time;
    CommitmentCheckRow => "commitment_checks", check_id, as_of;
}

/// A logical or wall time in seconds as a ClickHouse `DateTime` (clamped to its range).
pub fn datetime(t: i64) -> u32 {
    t.clamp(0, i64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_refusals_are_told_apart_from_other_server_errors() {
        let bad = |text: &str| clickhouse::error::Error::BadResponse(text.to_owned());
        // 18.16 and current releases word the refusal differently.
        for text in [
            "Code: 193, e.displayText() = DB::Exception: Wrong password for user steward_tls",
            "Code: 192, e.displayText() = DB::Exception: Unknown user nobody",
            "Code: 516. DB::Exception: steward_tls: Authentication failed. (AUTHENTICATION_FAILED)",
        ] {
            assert_eq!(
                refusal(&bad(text)),
                Some("clickhouse.user and clickhouse.password (STEWARD_CLICKHOUSE_PASSWORD)"),
                "{text}"
            );
        }
        for text in [
            "Code: 60, e.displayText() = DB::Exception: Table credit.x doesn't exist",
            "Code: 5160. not a login code",
            "Service Unavailable",
        ] {
            assert_eq!(refusal(&bad(text)), None, "{text}");
        }
        assert_eq!(refusal(&clickhouse::error::Error::TimedOut), None);
    }

    #[test]
    fn finds_the_columns_an_alter_adds() {
        assert_eq!(
            added_columns(
                "ALTER TABLE credit.enterprise_state\n    ADD COLUMN review_flags Array(String),\n    ADD COLUMN review_flag_repairs Array(String)"
            ),
            Some((
                "enterprise_state".to_owned(),
                vec!["review_flags".to_owned(), "review_flag_repairs".to_owned()]
            ))
        );
        assert_eq!(
            added_columns("CREATE TABLE IF NOT EXISTS credit.t (a UInt8)"),
            None
        );
        assert_eq!(added_columns("ALTER TABLE credit.t DROP COLUMN a"), None);
    }

    #[test]
    fn migrations_split_into_statements_with_the_database() {
        let s = statements(MIGRATIONS[0].2, "credit_x");
        assert!(s.len() >= 10, "{} statements", s.len());
        assert!(s.iter().all(|x| !x.contains("{db}") && !x.ends_with(';')));
        assert!(s[1].contains("credit_x.enterprise_state"), "{}", s[1]);
        let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.0).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn newer_migrations_apply_only_on_newer_servers() {
        assert_eq!(server_version("18.16.1"), Some((18, 16)));
        assert_eq!(server_version("26.9.2.1\n"), Some((26, 9)));
        assert_eq!(server_version("garbage"), None);
        assert!(applies_on(6, (18, 16)));
        assert!(!applies_on(7, (18, 16)));
        assert!(!applies_on(7, (20, 2)));
        assert!(applies_on(7, (20, 3)));
        assert!(applies_on(7, (26, 9)));
        assert!(MIN_SERVER
            .iter()
            .all(|(v, _)| MIGRATIONS.iter().any(|m| m.0 == *v)));
    }
}
