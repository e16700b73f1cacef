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
            .replace(
                "group_id = \"credit-steward\"",
                &format!("group_id = \"{name}\""),
            )
            .replace(
                "transactional_id = \"credit-steward\"",
                &format!("transactional_id = \"{name}\""),
            )
            .replace("database = \"credit\"", &format!("database = \"{name}\""))
            .replace(
                "brokers = \"127.0.0.1:9092\"",
                &format!("brokers = \"{}\"", kafka_brokers()),
            )
            .replace(
                "url = \"http://127.0.0.1:8123\"",
                &format!("url = \"{}\"", clickhouse_url()),
            )
            .replace("max_delay_ms = 500", "max_delay_ms = 200")
            // Checkpoints every second, in the test's own directory.
            .replace(
                "dir = \"checkpoints\"",
                &format!(
                    "dir = \"{}\"",
                    std::env::temp_dir()
                        .join(format!("{name}.checkpoints"))
                        .display()
                ),
            )
            .replace("every_secs = 60", "every_secs = 1");
        let cfg = connectors::config::Config::from_toml(&text, |_| None).expect("valid config");
        let config = std::env::temp_dir().join(format!("{name}.toml"));
        std::fs::write(&config, text).expect("write config");
        Namespace { name, config, cfg }
    }

    /// This namespace with `from` replaced by `to` in its configuration (which must hold
    /// `from`).
    pub fn edited(mut self, from: &str, to: &str) -> Self {
        let text = std::fs::read_to_string(&self.config).expect("read config");
        assert!(text.contains(from), "the configuration holds {from:?}");
        let text = text.replacen(from, to, 1);
        self.cfg = connectors::config::Config::from_toml(&text, |_| None).expect("valid config");
        std::fs::write(&self.config, text).expect("write config");
        self
    }

    /// A ClickHouse client on this namespace's database.
    pub fn clickhouse(&self) -> clickhouse::Client {
        clickhouse_client().with_database(&self.name)
    }

    /// Waits until this namespace's `colour_history` has rows (a `serve` run's first
    /// outputs are durable), for at most `timeout`.
    pub fn wait_for_first_changes(&self, timeout: std::time::Duration) -> anyhow::Result<()> {
        let rt = tokio::runtime::Runtime::new()?;
        // 0 while ClickHouse or the table is not there yet.
        let written = || {
            rt.block_on(
                self.clickhouse()
                    .query("SELECT count() FROM colour_history")
                    .fetch_one::<u64>(),
            )
            .unwrap_or(0)
        };
        wait_for("the first colour changes in ClickHouse", timeout, || {
            (written() > 0).then_some(())
        })
    }
}

/// Runs `scripts/services.sh verb name` (stop, start, pause or resume one local service).
pub fn services(verb: &str, name: &str) {
    let status = std::process::Command::new(repo_root().join("scripts/services.sh"))
        .args([verb, name])
        .status()
        .expect("services.sh");
    assert!(status.success(), "services.sh {verb} {name}: {status}");
}

/// Undoes an outage when dropped (`services.sh undo name`), also when a test fails
/// during it.
#[derive(Debug)]
pub struct Restore(pub &'static str, pub &'static str);

impl Drop for Restore {
    fn drop(&mut self) {
        services(self.0, self.1);
    }
}

/// The repository's root (the parent of this crate).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| std::path::PathBuf::from(".."))
}

/// Where `scripts/services.sh` keeps `service`'s files (its pid file, its TLS material):
/// under `STEWARD_CACHE`, by default `<repo>/.cache`.
pub fn service_dir(service: &str) -> std::path::PathBuf {
    std::env::var_os("STEWARD_CACHE")
        .map_or_else(|| repo_root().join(".cache"), std::path::PathBuf::from)
        .join("services")
        .join(service)
}

/// The `steward` binary, built once per test binary with the same cargo and target
/// directory as the tests (a no-op when it is up to date), so a test never runs a stale one.
pub fn steward_bin() -> anyhow::Result<std::path::PathBuf> {
    static BUILT: std::sync::OnceLock<Result<std::path::PathBuf, String>> =
        std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            // The profile `cargo test` builds with (the binary is usually there), or
            // `STEWARD_E2E_PROFILE` (`release` for the full-size crash run, BENCHMARKS.md).
            let profile =
                std::env::var("STEWARD_E2E_PROFILE").unwrap_or_else(|_| "test".to_owned());
            let out = std::process::Command::new(cargo)
                .current_dir(repo_root())
                .args([
                    "build",
                    "-p",
                    "pipeline",
                    "--bin",
                    "steward",
                    "--profile",
                    &profile,
                    "--message-format=json",
                ])
                .stderr(std::process::Stdio::inherit())
                .output()
                .map_err(|e| format!("running cargo build: {e}"))?;
            if !out.status.success() {
                return Err(format!("cargo build -p pipeline failed: {}", out.status));
            }
            // The executable's path from cargo's own report (whatever the target directory).
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|m| m["target"]["name"] == "steward")
                .find_map(|m| m["executable"].as_str().map(std::path::PathBuf::from))
                .ok_or_else(|| "cargo build reported no steward executable".to_owned())
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// How many of a child's last log lines [`Captured`] keeps.
const KEPT_LINES: usize = 400;
/// How many of them a failing test prints.
const SHOWN_LINES: usize = 60;

/// A child process whose standard error is kept in memory (its last [`KEPT_LINES`] lines,
/// without librdkafka's echoes of the same client errors), not printed as it comes. A test
/// that fails while it holds one prints, after its panic message, the child's last
/// [`SHOWN_LINES`] lines: the panic message stays near the top of the failure's output,
/// where CI's shortened output keeps it (CI once showed only the first lines of an outage's
/// expected errors and not why the test failed). A passing test prints nothing.
/// Every warning is kept too, however many lines follow it. Dropped while the child still
/// runs, it kills the child.
#[derive(Debug)]
pub struct Captured {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<String>>>,
    warnings: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Captured {
    /// The lines kept so far, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// How many warnings so far contain `needle`.
    pub fn warned(&self, needle: &str) -> usize {
        self.warnings
            .lock()
            .map(|w| w.iter().filter(|l| l.contains(needle)).count())
            .unwrap_or(0)
    }
}

impl std::ops::Deref for Captured {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.child
    }
}

impl std::ops::DerefMut for Captured {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.child
    }
}

impl Drop for Captured {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let lines = self.lines();
            eprintln!(
                "--- the last {} log lines of child {} ---",
                lines.len().min(SHOWN_LINES),
                self.child.id()
            );
            for l in &lines[lines.len().saturating_sub(SHOWN_LINES)..] {
                eprintln!("{l}");
            }
        }
        // A test that ends before its child does (it failed, or stopped waiting) must not
        // leave it running into the tests after it, with no one reading its log.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `cmd`, keeping its standard error as [`Captured`] says.
pub fn spawn_captured(cmd: &mut std::process::Command) -> std::io::Result<Captured> {
    use std::io::BufRead as _;
    let mut child = cmd.stderr(std::process::Stdio::piped()).spawn()?;
    let lines = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
    let warnings = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    if let Some(err) = child.stderr.take() {
        let (kept, warned) = (lines.clone(), warnings.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("librdkafka") {
                    continue;
                }
                if line.contains(" WARN ") {
                    if let Ok(mut w) = warned.lock() {
                        w.push(line.clone());
                    }
                }
                if let Ok(mut l) = kept.lock() {
                    if l.len() == KEPT_LINES {
                        l.pop_front();
                    }
                    l.push_back(line);
                }
            }
        });
    }
    Ok(Captured {
        child,
        lines,
        warnings,
    })
}

/// A child process killed (and reaped) when dropped, also when a test panics.
#[derive(Debug)]
pub struct ChildGuard {
    /// What it is, for messages.
    pub name: String,
    /// The process.
    pub child: std::process::Child,
}

impl ChildGuard {
    /// Starts `cmd`, its output going to `log` (a file, so that a failing test can show it).
    pub fn spawn(
        name: &str,
        cmd: &mut std::process::Command,
        log: &std::path::Path,
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        let out = std::fs::File::create(log)?;
        let child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name} ({cmd:?})"))?;
        Ok(ChildGuard {
            name: name.to_owned(),
            child,
        })
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A runtime on the calling thread, for a test's few ClickHouse calls.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A colour's name on the Chinese pages (the credit report, `steward web`).
pub fn chinese(colour: &str) -> &'static str {
    match colour {
        "blue" => "蓝码",
        "green" => "绿码",
        "yellow" => "黄码",
        "red" => "红码",
        _ => "停止评价",
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// GET `url`: the status and the body (also for 4xx and 5xx answers).
pub fn http_get(url: &str) -> anyhow::Result<(u16, String)> {
    match ureq::get(url)
        .timeout(std::time::Duration::from_secs(10))
        .call()
    {
        Ok(r) => Ok((r.status(), r.into_string()?)),
        Err(ureq::Error::Status(code, r)) => Ok((code, r.into_string()?)),
        Err(e) => Err(anyhow::anyhow!("GET {url}: {e}")),
    }
}

/// Calls `check` every 250 ms until it returns `Some`, or fails after `timeout` saying `what`.
pub fn wait_for<T>(
    what: &str,
    timeout: std::time::Duration,
    mut check: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// A namespace's files go with it: its configuration and those derived from it, its
/// checkpoints and a cluster's host file (its topics and database are the services', which
/// `scripts/services.sh reset` clears). They are kept when the test fails, for a person to
/// read.
impl Drop for Namespace {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.cfg.checkpoints.dir);
        // Its configuration, the configurations a test derives from it
        // (`<name>.<what>.toml`) and a cluster's host file.
        let dir = std::env::temp_dir();
        let ours = |f: &str| {
            f.starts_with(&format!("{}.", self.name)) || f == format!("{}-hosts", self.name)
        };
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_file() && entry.file_name().to_str().is_some_and(ours) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// A fresh temporary directory under the system's, removed when dropped.
#[derive(Debug)]
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// Creates `<tmp>/<unique name from prefix>`.
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        let p = std::env::temp_dir().join(unique_name(prefix));
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }
}

/// The outputs of `steward run` on `enterprises` generated enterprises (the default seed and
/// years), in a fresh temporary directory named from `prefix`.
pub fn steward_run(enterprises: u32, prefix: &str) -> anyhow::Result<TempDir> {
    let out = TempDir::new(prefix)?;
    let status = std::process::Command::new(steward_bin()?)
        .args(["run", "--enterprises", &enterprises.to_string(), "--output"])
        .arg(&out.0)
        .stdout(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "steward run: {status}");
    Ok(out)
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One sample of a Prometheus text-format scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (with `_bucket`, `_sum`, `_count` for histograms).
    pub name: String,
    /// The label pairs, unescaped values.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// Parses the samples of a Prometheus text-format scrape (comments skipped).
pub fn parse_scrape(text: &str) -> anyhow::Result<Vec<Sample>> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line
            .rsplit_once(' ')
            .ok_or_else(|| anyhow::anyhow!("bad sample line {line:?}"))?;
        let (name, mut rest) = match series.find('{') {
            Some(i) => (&series[..i], &series[i + 1..series.len() - 1]),
            None => (series, ""),
        };
        let mut labels = std::collections::BTreeMap::new();
        while let Some((k, after)) = rest.split_once("=\"") {
            // Values end at the first unescaped quote.
            let mut v = String::new();
            let mut chars = after.char_indices();
            let mut end = after.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, 'n')) => v.push('\n'),
                        Some((_, e)) => v.push(e),
                        None => {}
                    },
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            labels.insert(k.trim_start_matches(',').to_owned(), v);
            rest = &after[end..];
        }
        out.push(Sample {
            name: name.to_owned(),
            labels,
            value: value.parse()?,
        });
    }
    Ok(out)
}

/// The sum of the samples named `name` whose labels include every pair of `matching`.
pub fn sum_of(samples: &[Sample], name: &str, matching: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            matching
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// Runs `sql` on ClickHouse over HTTP as `default` (with `body` after it, e.g. the rows of
/// an `INSERT … FORMAT JSONEachRow`) and returns the answer's text.
pub fn clickhouse_http(sql: &str, body: &str) -> anyhow::Result<String> {
    let url = format!("{}/", clickhouse_url());
    let rq = ureq::post(&url).timeout(std::time::Duration::from_secs(60));
    let res = if body.is_empty() {
        rq.send_string(sql)
    } else {
        rq.query("query", sql).send_string(body)
    };
    match res {
        Ok(r) => Ok(r.into_string()?),
        Err(ureq::Error::Status(code, r)) => Err(anyhow::anyhow!(
            "ClickHouse answered {code} to {sql}: {}",
            r.into_string().unwrap_or_default()
        )),
        Err(e) => Err(anyhow::anyhow!("ClickHouse at {url}: {e}")),
    }
}

pub mod promql;
pub mod serve;
pub mod sql;

/// Generates `gen`'s records, runs them through the pipeline in-process (the same ingest,
/// dataflow and output rows as `steward serve`) and writes the final `enterprise_state`,
/// `indicator_values`, `colour_history` and `records` rows into `ns`'s ClickHouse database (migrated here).
/// Returns the log of accepted records.
pub fn load_generated(
    ns: &Namespace,
    gen: &generator::GenConfig,
) -> anyhow::Result<Vec<rules::lifecycle::Accepted>> {
    use std::sync::Arc;
    let cat = Arc::new(rules::catalogue::Catalogue::embedded());
    let mut ingest = engine::ingest::Ingest::new(&cat, std::io::sink());
    let mut offsets: std::collections::BTreeMap<rules::event::Feed, u64> = Default::default();
    generator::generate(gen, &mut |_| {}, &mut |r| {
        let off = offsets.entry(r.feed).or_default();
        if let Ok(Some(e)) = ingest.decode(r.feed, *off, &r.line) {
            ingest.admit(e);
        }
        *off += 1;
    })?;
    let log = engine::replay::shared(std::mem::take(&mut ingest.log));
    drop(ingest);
    let until = log.iter().map(|a| a.v).max().unwrap_or(0);
    let out = engine::replay::replay(
        log.clone(),
        cat.clone(),
        None,
        None,
        timely::Config::process(2),
        engine::replay::Schedule::new(50_000, until),
        |_, _, _, _| {},
    )
    .map_err(anyhow::Error::msg)?;
    let rule = rules::supervision::Supervision::embedded().pre_credit;
    let (states, values): (Vec<_>, Vec<_>) = out
        .states
        .iter()
        .map(|(u, (s, published))| {
            pipeline::rows::state_rows(u, until, Some((s, *published)), None, &rule, &cat)
        })
        .unzip();
    let records: Vec<_> = log.iter().map(|a| pipeline::rows::record_row(a)).collect();
    let changes: Vec<_> = out
        .changes
        .iter()
        .map(|c| {
            let place = out
                .states
                .get(&c.uscc)
                .map(|x| engine::tracker::Place::of(&x.0))
                .unwrap_or_default();
            pipeline::rows::change_row(c, &place.region, &place.industry)
        })
        .collect();
    // Each record's status at the end (D11).
    let statuses: Vec<_> = out
        .statuses
        .iter()
        .map(|(k, (u, st))| pipeline::rows::status_row(until, k, *u, *st))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let ch = connectors::clickhouse::ClickHouse::new(&ns.cfg.clickhouse)?;
        ch.migrate().await?;
        ch.insert("record_status", &statuses).await?;
        ch.insert("enterprise_state", &states).await?;
        ch.insert("indicator_values", &values).await?;
        ch.insert("colour_history", &changes).await?;
        for chunk in records.chunks(100_000) {
            ch.insert("records", chunk).await?;
        }
        Ok::<_, connectors::clickhouse::ClickHouseError>(())
    })?;
    Ok(log
        .iter()
        .map(|a| rules::lifecycle::Accepted::clone(a))
        .collect())
}

/// Parses `message` and checks it against the published JSON Schema `docs/schemas/<name>.schema.json`
/// (output contract); returns it parsed. Fails naming every violation.
pub fn conforming(name: &str, message: &[u8]) -> serde_json::Value {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static VALIDATORS: OnceLock<Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>> =
        OnceLock::new();
    let validator = {
        let mut cache = VALIDATORS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .entry(name.to_owned())
            .or_insert_with(|| {
                let path = repo_root().join(format!("docs/schemas/{name}.schema.json"));
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let schema: serde_json::Value = serde_json::from_str(&text).expect("schema JSON");
                std::sync::Arc::new(
                    jsonschema::validator_for(&schema)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display())),
                )
            })
            .clone()
    };
    let value: serde_json::Value = serde_json::from_slice(message).unwrap_or_else(|e| {
        panic!(
            "{name} message is not JSON ({e}): {}",
            String::from_utf8_lossy(message)
        )
    });
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{name} message {value} violates its schema: {errors:?}"
    );
    value
}
