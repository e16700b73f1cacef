//! Where the tests' SQL runs: the Debian ClickHouse server (18.16) over HTTP, or a current
//! ClickHouse (26.x) in process through chdb (`scripts/chdb.sh` installs it). The schema,
//! the panel queries and the analysts' examples must run on both (issue 19, D57).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::{clickhouse_http, repo_root, TempDir};

/// A ClickHouse that runs statements.
pub trait Sql {
    /// Which ClickHouse this is, for messages.
    fn name(&self) -> &'static str;
    /// Runs one statement and returns the answer's text (in the format the statement asks
    /// for).
    fn run(&mut self, sql: &str) -> Result<String>;
    /// Inserts rows, one JSON object per line, into `table` (`db.table`).
    fn insert_json(&mut self, table: &str, rows: &str) -> Result<()>;
}

/// The ClickHouse server of `scripts/services.sh` (its address: [`crate::clickhouse_url`]).
#[derive(Debug, Default)]
pub struct Server;

impl Sql for Server {
    fn name(&self) -> &'static str {
        "the ClickHouse server"
    }
    fn run(&mut self, sql: &str) -> Result<String> {
        clickhouse_http(sql, "")
    }
    fn insert_json(&mut self, table: &str, rows: &str) -> Result<()> {
        clickhouse_http(&format!("INSERT INTO {table} FORMAT JSONEachRow"), rows).map(drop)
    }
}

/// A current ClickHouse in process: one chdb session (in a Python child process speaking
/// `tests/support/chdb_session.py`'s line protocol), its data in a temporary directory.
#[derive(Debug)]
pub struct Chdb {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    _data: TempDir,
}

impl Chdb {
    /// Installs chdb if needed (`scripts/chdb.sh`) and starts a session.
    pub fn start() -> Result<Self> {
        let root = repo_root();
        let out = Command::new(root.join("scripts/chdb.sh"))
            .stderr(Stdio::inherit())
            .output()
            .context("running scripts/chdb.sh")?;
        if !out.status.success() {
            bail!(
                "scripts/chdb.sh failed ({}): chdb is not installed",
                out.status
            );
        }
        let python = String::from_utf8(out.stdout)?.trim().to_owned();
        let data = TempDir::new("e2e_chdb")?;
        let mut child = Command::new(&python)
            .arg(root.join("tests/support/chdb_session.py"))
            .arg(&data.0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {python}"))?;
        let stdin = child.stdin.take().context("chdb stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("chdb stdout")?);
        Ok(Chdb {
            child,
            stdin,
            stdout,
            _data: data,
        })
    }
}

impl Sql for Chdb {
    fn name(&self) -> &'static str {
        "current ClickHouse (chdb)"
    }
    fn run(&mut self, sql: &str) -> Result<String> {
        let line = serde_json::json!({ "sql": sql }).to_string();
        writeln!(self.stdin, "{line}").context("writing to chdb")?;
        self.stdin.flush()?;
        let mut answer = String::new();
        self.stdout
            .read_line(&mut answer)
            .context("reading from chdb")?;
        if answer.is_empty() {
            bail!("chdb ended before answering {sql}");
        }
        let answer: serde_json::Value = serde_json::from_str(&answer)?;
        match (answer["ok"].as_str(), answer["error"].as_str()) {
            (Some(ok), _) => Ok(ok.to_owned()),
            (_, Some(e)) => bail!("current ClickHouse (chdb) refused {sql}: {e}"),
            _ => bail!("chdb answered {answer}"),
        }
    }
    fn insert_json(&mut self, table: &str, rows: &str) -> Result<()> {
        self.run(&format!("INSERT INTO {table} FORMAT JSONEachRow\n{rows}"))
            .map(drop)
    }
}

impl Drop for Chdb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates the schema in database `db` of `on`: every statement of every migration
/// (`connectors::clickhouse::MIGRATIONS`) that applies on its version, in order, as
/// `steward serve` runs them on a new database. Returns the server's `(major, minor)`.
pub fn migrate_on(on: &mut dyn Sql, db: &str) -> Result<(u32, u32)> {
    use connectors::clickhouse::{applies_on, server_version};
    let answer = on.run("SELECT version() FORMAT TSV")?;
    let server = server_version(&answer).with_context(|| format!("server version {answer}"))?;
    for (version, name, text) in connectors::clickhouse::MIGRATIONS {
        if !applies_on(*version, server) {
            continue;
        }
        for s in connectors::clickhouse::statements(text, db) {
            on.run(&s)
                .with_context(|| format!("migration {version} ({name}) on {}", on.name()))?;
        }
    }
    // The table where `serve` records them (not filled here: nothing reads it).
    on.run(&connectors::clickhouse::schema_migrations_table(db))?;
    Ok(server)
}
