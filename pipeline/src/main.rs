//! The `steward` binary.
//!
//! - `steward generate` writes generated JSON-lines feeds (`generator`).
//! - `steward run` reads feeds (or generates them in-process), decodes and validates every
//!   record, runs the incremental dataflow on timely workers up to the end of the input, and
//!   writes the state, colour changes, alerts and dead letters, with a summary; with
//!   `--metrics-addr` it serves Prometheus metrics while it runs (and `--hold` seconds after).
//! - `steward train` trains the risk models on labelled history (`pipeline::model`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use connectors::dead_letter::DeadLetter;
use connectors::http::{MetricsServer, Readiness};
use connectors::metrics::Metrics;
use engine::ingest::Ingest;
use engine::replay::{replay, Outputs, Replayed, Schedule};
use generator::{generate, GenConfig};
use indicatif::{ProgressBar, ProgressStyle};
use pipeline::live::{serve, Options, Shared};
use pipeline::messages::{PreCreditStatus, StateLine};
use pipeline::model::dataset::{load_log, Source};
use pipeline::plan::Campaign;
use rules::catalogue::Catalogue;
use rules::contract::Versioned;
use rules::decode::encode;
use rules::event::Feed;
use rules::lifecycle::{Accepted, Dead, Outcome, RecordId};
use rules::model::Model;
use rules::score::Colour;
use rules::supervision::Supervision;
use rules::time::{format_rfc3339, Ts};

/// The dataflow allocates many small values; mimalloc is markedly faster than glibc here
/// (configured by [`engine::allocator::configure`]).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The command line. Its help opens with what the tool does; `--version` names it.
#[derive(Debug, Parser)]
#[command(
    name = "steward",
    version,
    about = "Credit Steward: keeps every enterprise's 49 credit indicators, score and \
             four-colour credit code (blue, green, yellow, red) up to date from penalty, tax, \
             court and financial-risk feeds, and publishes colour changes, alerts and \
             supervision tables.",
    long_about = None,
    after_help = "Start with `steward run` (generated data, no services) or \
                  `steward run --input DIR` (JSON-lines feeds); `steward serve` runs on Kafka \
                  and ClickHouse. See README.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as `text` (colours only on a terminal, none with `NO_COLOR` set) or `json`
    /// (one object per line, for log collectors).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        env = "STEWARD_LOG_FORMAT"
    )]
    log_format: LogFormat,
}

/// How log lines are written (to standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Starts logging to standard error in `format`, filtered by `RUST_LOG` (default `info`).
/// Text gets colour escapes only when standard error is a terminal and `NO_COLOR` is unset
/// or empty (<https://no-color.org>), so redirected logs stay plain.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            builder
                .with_ansi(std::io::stderr().is_terminal() && !no_color)
                .init()
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate JSON-lines feeds (one file per feed) for N enterprises, or put them on the
    /// feed topics of Kafka (`--kafka`), at a steady rate if asked (`--rate`).
    Generate {
        /// Output directory (created if missing), or `-` for every record on stdout in
        /// arrival order (each record names its `feed`).
        #[arg(long, required_unless_present = "kafka", conflicts_with = "kafka")]
        out: Option<PathBuf>,
        /// Produce every record to its feed topic instead, keyed by its USCC, in arrival
        /// order (brokers and topic names from `--config`; topics made if missing).
        #[arg(long)]
        kafka: bool,
        /// Connector configuration (TOML) for `--kafka`; default: the embedded one, with
        /// its environment overrides (`STEWARD_KAFKA_BROKERS`, …).
        #[arg(long, requires = "kafka")]
        config: Option<PathBuf>,
        /// Records per second for `--kafka` (a steady live stream); default: as fast as the
        /// broker takes them.
        #[arg(long, requires = "kafka", value_parser = clap::value_parser!(u32).range(1..))]
        rate: Option<u32>,
        #[command(flatten)]
        gen: GenArgs,
    },
    /// Evaluate every enterprise from JSON-lines feeds, or from generated data.
    Run {
        /// Input directory with `<feed>.jsonl` files; without it, data is generated in-process.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Output directory for `state.jsonl`, `colour_changes.jsonl`, `alerts.jsonl`,
        /// `dead_letters.jsonl` and `commitment_tasks.jsonl`. With several processes each writes the enterprises its
        /// workers own; give each its own directory.
        #[arg(long, default_value = "steward-out")]
        output: PathBuf,
        /// Catalogue file (TOML); default: the embedded catalogue.
        #[arg(long)]
        catalogue: Option<PathBuf>,
        /// Model file written by `steward train`: Q enters S; without it Q is missing.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Supervision parameters (TOML; the commitments' verification method); default: the
        /// embedded `config/supervision.toml`.
        #[arg(long)]
        supervision: Option<PathBuf>,
        #[command(flatten)]
        gen: GenArgs,
        #[command(flatten)]
        layout: Layout,
        #[command(flatten)]
        obs: ObsArgs,
    },
    /// Replay the history under the current rules and a candidate side by side, in one
    /// dataflow, and report whose colour would change and why: `what-if.json` and
    /// `what-if.html` (the colour migration matrix, the events under each version, the
    /// enterprises whose colour differs with the rows behind it, breakdowns by region and
    /// industry, the catalogue's changes).
    WhatIf {
        #[command(flatten)]
        args: WhatIfArgs,
        #[command(flatten)]
        gen: GenArgs,
    },
    /// Run on the real services: feeds from Kafka; colour changes, alerts and dead letters to
    /// Kafka and every table to ClickHouse, exactly once across crashes.
    Serve {
        /// Connector configuration (TOML); default: the embedded `config/steward.toml`.
        /// Environment variables override fields (`connectors/README.md`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Catalogue file (TOML); default: the embedded catalogue.
        #[arg(long)]
        catalogue: Option<PathBuf>,
        /// Model file written by `steward train`: Q enters S; without it Q is missing.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Supervision parameters (TOML; the pre-credit line); default: the embedded
        /// `config/supervision.toml`.
        #[arg(long)]
        supervision: Option<PathBuf>,
        /// Declare the input complete once every feed partition has been read to its end
        /// and nothing arrived for this many seconds (batch loads and tests).
        #[arg(long)]
        drain_after: Option<f64>,
        /// Exit once the input was declared complete and every output is durable.
        #[arg(long)]
        exit_when_drained: bool,
        /// Serve `/metrics`, `/livez` and `/readyz` on this address (`…:0` picks a free port).
        #[arg(long, env = "STEWARD_METRICS_ADDR", default_value = "127.0.0.1:9464")]
        metrics_addr: String,
        #[command(flatten)]
        layout: Layout,
    },
    /// Plan an inspection campaign from the current colours in ClickHouse: selects
    /// enterprises reproducibly with the campaign's seed, writes the plan to ClickHouse and
    /// the plans topic, and prints counts and realised rates by colour.
    Plan {
        /// Campaign id (letters, digits, `_`, `-`, `.`); a campaign is planned once.
        #[arg(long)]
        campaign: String,
        /// Seed of the sampling hash.
        #[arg(long)]
        seed: u64,
        /// Only enterprises of this region code.
        #[arg(long)]
        region: Option<String>,
        /// Only enterprises of this industry code.
        #[arg(long)]
        industry: Option<String>,
        #[command(flatten)]
        services: Services,
    },
    /// The credit report of one enterprise for a period, from ClickHouse: colour and score
    /// history with a chart, every record with its marks, commitments and their results,
    /// the current explanation, its issue time and a digest of the content
    /// (`steward report verify FILE` checks it).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Report {
        /// `verify FILE`: whether a report file is exactly as issued.
        #[command(subcommand)]
        action: Option<ReportAction>,
        /// The enterprise's USCC.
        #[arg(long, required = true)]
        uscc: Option<String>,
        /// First day of the period (YYYY-MM-DD, Asia/Shanghai), inclusive.
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        /// Last day of the period (YYYY-MM-DD, Asia/Shanghai), inclusive.
        #[arg(long)]
        to: Option<chrono::NaiveDate>,
        /// `json`, `html` or `pdf` (A4, printed by headless Chromium: `chromium` on the path,
        /// or `STEWARD_CHROMIUM`).
        #[arg(long, value_parser = ["json", "html", "pdf"], required = true)]
        format: Option<String>,
        /// The page's language: Chinese (`zh`, the default) or English (`en`).
        #[arg(long, value_enum, default_value = "zh")]
        lang: pipeline::report::Lang,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Connector configuration (TOML); default: the embedded `config/steward.toml`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Catalogue file (TOML) for the indicators' names and the colour bands; default: the
        /// embedded catalogue.
        #[arg(long)]
        catalogue: Option<PathBuf>,
    },
    /// The web service (D83): public colour-code pages with QR codes, the supervisor view
    /// (search, worsened enterprises, the inspection campaign, an enterprise's record and
    /// credit report) behind HTTP Basic authentication, and their JSON API with its OpenAPI
    /// document, read from ClickHouse. Settings: the `[web]` section of the configuration.
    #[command(args_conflicts_with_subcommands = true)]
    Web {
        /// `hash-password`: print the hash of a password for `web.users`.
        #[command(subcommand)]
        action: Option<WebAction>,
        /// Connector configuration (TOML); default: the embedded `config/steward.toml`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Catalogue file (TOML) for the indicators' names and the colour bands; default: the
        /// embedded catalogue.
        #[arg(long)]
        catalogue: Option<PathBuf>,
        /// Listen here instead of `web.listen` (`…:0` picks a free port; the address is logged).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Validate a connector configuration file without connecting; exits non-zero naming
    /// the bad field.
    CheckConfig {
        /// The file.
        file: PathBuf,
    },
    /// Train the risk models (logistic regression, random forest) on labelled history and
    /// evaluate them on a held-out split by time.
    Train(pipeline::model::train::TrainArgs),
}

/// What `steward report` does instead of writing a report.
#[derive(Debug, Subcommand)]
enum ReportAction {
    /// Checks that a report file (`json` or `html`, as `steward report` wrote it) is exactly
    /// as issued: its digest matches its content, and the file is byte for byte what that
    /// content is written as. Exits 1 and says why when it was altered.
    Verify {
        /// The report file.
        file: PathBuf,
    },
}

/// What `steward web` does instead of serving.
#[derive(Debug, Subcommand)]
enum WebAction {
    /// Reads a password from standard input (its first line) and prints its Argon2id hash,
    /// the `password_hash` of a user in `[[web.users]]`.
    HashPassword,
}

/// The connector and supervision configurations of the commands that use the services.
#[derive(Debug, Args)]
struct Services {
    /// Connector configuration (TOML); default: the embedded `config/steward.toml`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Supervision parameters (TOML); default: the embedded `config/supervision.toml`.
    #[arg(long)]
    supervision: Option<PathBuf>,
}

impl Services {
    fn load(&self) -> Result<(connectors::config::Config, Supervision)> {
        Ok((
            pipeline::live::load_config(self.config.as_deref())?,
            load_supervision(self.supervision.as_deref())?,
        ))
    }
}

/// The supervision parameters: a file, or the embedded default; validated.
fn load_supervision(path: Option<&Path>) -> Result<Supervision> {
    Ok(match path {
        Some(p) => Supervision::from_toml(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("invalid supervision parameters {}", p.display()))?,
        None => Supervision::embedded(),
    })
}

fn plan(campaign: Campaign, services: &Services) -> Result<()> {
    let (cfg, sup) = services.load()?;
    let p = pipeline::plan::plan(&cfg, &sup, &campaign)?;
    let total: u64 = p.counts.values().map(|c| c.population).sum();
    println!(
        "Campaign {} (seed {}) at {}: {} of {} enterprises selected",
        campaign.id,
        campaign.seed,
        format_rfc3339(p.snapshot),
        p.rows.len(),
        total
    );
    println!();
    println!(
        "{:<8} {:>10} {:>9} {:>8} {:>11} {:>10} {:>7}",
        "colour", "population", "selected", "rate", "probability", "overrides", "capped"
    );
    for (colour, n) in &p.counts {
        let prob = sup.inspection.rule(*colour).map_or(0.0, |r| r.probability);
        println!(
            "{:<8} {:>10} {:>9} {:>7.1}% {:>10.1}% {:>10} {:>7}",
            colour.as_str(),
            n.population,
            n.selected,
            100.0 * n.rate(),
            100.0 * prob,
            n.overridden,
            n.capped
        );
    }
    println!();
    println!(
        "low-risk (blue + green) pooled rate {:.1}%",
        100.0 * p.low_risk_rate()
    );
    Ok(())
}

/// Observability settings of `run`.
#[derive(Debug, Args)]
struct ObsArgs {
    /// Serve `/metrics`, `/livez` and `/readyz` on this address while running (e.g.
    /// `127.0.0.1:9464`, the port the local Prometheus scrapes); off when not given.
    #[arg(long, env = "STEWARD_METRICS_ADDR")]
    metrics_addr: Option<String>,
    /// With `--metrics-addr`: keep serving this many seconds after the run, so that a
    /// Prometheus can scrape the final values.
    #[arg(long, default_value_t = 0, requires = "metrics_addr")]
    hold: u64,
}

/// Generator settings (used by `generate`, and by `run` without `--input`).
#[derive(Debug, Args)]
struct GenArgs {
    /// Number of enterprises.
    #[arg(long, default_value_t = 5_000)]
    enterprises: u32,
    /// Random seed; the same seed gives the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Years of history.
    #[arg(long, default_value_t = 3)]
    years: u32,
}

impl GenArgs {
    fn config(&self) -> GenConfig {
        GenConfig {
            enterprises: self.enterprises,
            seed: self.seed,
            years: self.years,
            ..GenConfig::default()
        }
    }
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

fn main() -> Result<()> {
    engine::allocator::configure();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Generate {
            out,
            kafka,
            config,
            rate,
            gen,
        } => match out {
            Some(out) if !kafka => generate_files(&out, &gen.config()),
            _ => {
                let cfg = pipeline::live::load_config(config.as_deref())?;
                generate_to_kafka(&cfg, &gen.config(), rate)
            }
        },
        Command::Run {
            input,
            output,
            catalogue,
            model,
            supervision,
            gen,
            layout,
            obs,
        } => {
            let sup = load_supervision(supervision.as_deref())?;
            let cat = load_catalogue(catalogue.as_deref())?;
            let model = model
                .map(|p| pipeline::model::load(&p, &cat))
                .transpose()?
                .map(Arc::new);
            run(
                input.as_deref(),
                &output,
                (Arc::new(cat), model, sup),
                &gen.config(),
                &layout,
                &obs,
            )
        }
        Command::WhatIf { args, gen } => what_if(args, &gen.config()),
        Command::Serve {
            config,
            catalogue,
            model,
            supervision,
            drain_after,
            exit_when_drained,
            metrics_addr,
            layout,
        } => {
            let sup = load_supervision(supervision.as_deref())?;
            let cfg = pipeline::live::load_config(config.as_deref())?;
            let cat = load_catalogue(catalogue.as_deref())?;
            let model = model
                .map(|p| pipeline::model::load(&p, &cat))
                .transpose()?
                .map(Arc::new);
            let cat = Arc::new(cat);
            let opts = Options {
                drain_after: drain_after.map(std::time::Duration::from_secs_f64),
                exit_when_drained,
                pre_credit: sup.pre_credit,
                commitments: sup.commitments,
                process: layout.process,
            };
            let registry = prometheus::Registry::new();
            let metrics = Metrics::new(&registry)?;
            metrics.describe(&cat);
            let readiness = Readiness::tracked(&metrics);
            let server = MetricsServer::start(&metrics_addr, registry, readiness.clone())?;
            let shared = Arc::new(Shared::new(metrics, readiness, layout.process));
            let result = serve(&cfg, cat, model, layout.config()?, &opts, shared);
            server.stop();
            result
        }
        Command::Plan {
            campaign,
            seed,
            region,
            industry,
            services,
        } => plan(
            Campaign {
                id: campaign,
                seed,
                region,
                industry,
            },
            &services,
        ),
        Command::Report {
            action: Some(ReportAction::Verify { file }),
            ..
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            match pipeline::report::check_file(&bytes)? {
                pipeline::report::Verdict::Intact { digest, issued_at } => {
                    println!(
                        "{}: intact: issued {issued_at}, digest {digest}",
                        file.display()
                    );
                    Ok(())
                }
                pipeline::report::Verdict::Altered(why) => {
                    anyhow::bail!("{}: altered after it was issued: {why}", file.display())
                }
            }
        }
        Command::Report {
            uscc,
            from,
            to,
            format,
            lang,
            out,
            config,
            catalogue,
            ..
        } => {
            // clap requires both without a subcommand.
            let (Some(uscc), Some(format)) = (uscc, format) else {
                anyhow::bail!("steward report needs --uscc and --format");
            };
            let cfg = pipeline::live::load_config(config.as_deref())?;
            let period = pipeline::report::Period {
                from: from.map(rules::time::midnight),
                to: to.map(rules::time::date_end),
            };
            let cat = load_catalogue(catalogue.as_deref())?;
            let r = pipeline::report::build(&cfg.clickhouse, &uscc, period, &cat, lang)?;
            eprintln!(
                "report of {uscc}: issued {}, digest {}",
                r["issued_at"].as_str().unwrap_or_default(),
                r["digest"].as_str().unwrap_or_default()
            );
            let bytes = match format.as_str() {
                "html" => pipeline::report::html(&r)?.into_bytes(),
                "pdf" => pipeline::report::pdf(&pipeline::report::html(&r)?)?,
                _ => pipeline::report::json_text(&r)?.into_bytes(),
            };
            match out {
                Some(p) => {
                    std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?
                }
                None => std::io::stdout().write_all(&bytes)?,
            }
            Ok(())
        }
        Command::Web {
            action: Some(WebAction::HashPassword),
            ..
        } => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let password = line.trim_end_matches(['\r', '\n']);
            anyhow::ensure!(!password.is_empty(), "no password on standard input");
            println!("{}", pipeline::web::auth::hash_password(password)?);
            Ok(())
        }
        Command::Web {
            config,
            catalogue,
            listen,
            ..
        } => {
            let mut cfg = pipeline::live::load_config(config.as_deref())?;
            if let Some(addr) = listen {
                cfg.web.listen = addr;
                cfg.validate()?;
            }
            let cat = std::sync::Arc::new(load_catalogue(catalogue.as_deref())?);
            let ch = connectors::clickhouse::ClickHouse::new(&cfg.clickhouse)?;
            let app = pipeline::web::App::new(ch, cat, cfg.web, prometheus::Registry::new())?;
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?
                .block_on(pipeline::web::serve(app))
        }
        Command::CheckConfig { file } => {
            pipeline::live::load_config(Some(&file))?;
            println!("{}: valid", file.display());
            Ok(())
        }
        Command::Train(args) => {
            pipeline::model::train::train(&args)?;
            Ok(())
        }
    }
}

fn load_catalogue(path: Option<&Path>) -> Result<Catalogue> {
    Ok(match path {
        Some(p) => Catalogue::from_toml(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )?,
        None => Catalogue::embedded(),
    })
}

fn generate_files(out: &Path, cfg: &GenConfig) -> Result<()> {
    // One writer per feed, or stdout for all of them.
    let mut files: BTreeMap<Feed, Box<dyn Write>> = BTreeMap::new();
    let to_stdout = out == Path::new("-");
    if !to_stdout {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        for feed in Feed::ALL {
            let path = out.join(format!("{}.jsonl", feed.as_str().to_ascii_lowercase()));
            let f = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            files.insert(*feed, Box::new(BufWriter::new(f)));
        }
    }
    let mut stdout = BufWriter::new(std::io::stdout().lock());
    let bar = progress(u64::from(cfg.enterprises), "enterprises");
    let started = Instant::now();
    let mut err = None;
    let summary = generate(cfg, &mut |n| bar.set_position(n), &mut |r| {
        let w: &mut dyn Write = match files.get_mut(&r.feed) {
            Some(w) => w,
            None => &mut stdout,
        };
        if let Err(e) = w.write_all(&r.line).and_then(|()| w.write_all(b"\n")) {
            err.get_or_insert(e);
        }
    })?;
    bar.finish_and_clear();
    match err {
        // A reader that stops early (`| head`) is not an error.
        Some(e) if to_stdout && e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        Some(e) => return Err(e).context("writing generated records"),
        None => {}
    }
    stdout.flush()?;
    for (_, mut w) in files {
        w.flush()?;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "generated {} records for {} enterprises into {} in {secs:.1} s ({:.0} records/s)",
        summary.records,
        summary.enterprises,
        if to_stdout {
            "stdout".into()
        } else {
            out.display().to_string()
        },
        summary.records as f64 / secs
    );
    Ok(())
}

/// Puts the generated records of `gen` on the feed topics of `cfg`, keyed by USCC, in
/// arrival order; at `rate` records per second when given.
fn generate_to_kafka(
    cfg: &connectors::config::Config,
    gen: &GenConfig,
    rate: Option<u32>,
) -> Result<()> {
    /// The one field a record is keyed by (none for a malformed line).
    #[derive(serde::Deserialize)]
    struct Key<'a> {
        #[serde(borrow)]
        uscc: Option<std::borrow::Cow<'a, str>>,
    }
    let k = &cfg.kafka;
    let topics: Vec<(&str, i32, bool)> = k
        .topics
        .feeds
        .values()
        .map(|t| (t.as_str(), 3, false))
        .collect();
    connectors::kafka::ensure_topics(k, &topics).context("creating the feed topics")?;
    let writer = connectors::kafka::FeedWriter::new(k)?;
    let started = Instant::now();
    let mut sent = 0u64;
    let mut failed = None;
    let bar = progress(u64::from(gen.enterprises), "enterprises");
    let summary = generate(gen, &mut |n| bar.set_position(n), &mut |r| {
        if failed.is_some() {
            return;
        }
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(sent as f64 / f64::from(rate));
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let key = serde_json::from_slice::<Key<'_>>(&r.line)
            .ok()
            .and_then(|k| k.uscc)
            .unwrap_or_default();
        let topic = k.topics.feed(r.feed);
        match writer.send(topic, key.as_bytes(), &r.line) {
            Ok(()) => sent += 1,
            Err(e) => failed = Some(e),
        }
    })?;
    bar.finish_and_clear();
    if let Some(e) = failed {
        return Err(e).context(format!("producing to {} after {sent} records", k.brokers));
    }
    writer
        .flush()
        .context("waiting for the broker's acknowledgements")?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "produced {} records for {} enterprises to the feed topics of {} in {secs:.1} s ({:.0} records/s)",
        summary.records,
        summary.enterprises,
        k.brokers,
        summary.records as f64 / secs
    );
    Ok(())
}

/// Timely layout: workers per process, and the cluster when there is more than one process.
#[derive(Debug, Args)]
struct Layout {
    /// Worker threads per process (at least 1).
    #[arg(short = 'w', long, default_value_t = 2, value_parser = at_least_one())]
    workers: usize,
    /// Number of processes (timely cluster mode; at least 1).
    #[arg(short = 'n', long, default_value_t = 1, value_parser = at_least_one())]
    processes: usize,
    /// This process's index, 0-based.
    #[arg(short = 'p', long, default_value_t = 0)]
    process: usize,
    /// Host file with one `host:port` per process.
    #[arg(long)]
    hostfile: Option<PathBuf>,
}

/// A count of 1 or more (`-w 0` would start no worker and never finish).
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

impl Layout {
    fn config(&self) -> Result<timely::Config> {
        let mut args = vec![
            "steward".to_owned(),
            "-w".into(),
            self.workers.to_string(),
            "-n".into(),
            self.processes.to_string(),
            "-p".into(),
            self.process.to_string(),
        ];
        if let Some(h) = &self.hostfile {
            args.extend(["-h".into(), h.display().to_string()]);
        }
        timely::Config::from_args(args.into_iter()).map_err(|e| anyhow::anyhow!("timely: {e}"))
    }
}

/// The UTF-8 byte-order mark some editors put at the start of a text file.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Values named by the catalogue's ids, in a JSON object (the catalogue, and
/// `indicator_catalogue` in ClickHouse, give their order).
fn named<'a>(ids: impl Iterator<Item = &'a str>, values: &[f64]) -> BTreeMap<String, f64> {
    ids.zip(values.iter().copied())
        .map(|(id, v)| (id.to_owned(), v))
        .collect()
}

/// What became of the records a process counts: every record read in one process, its share
/// in a cluster (D52, D56). `read` = `applied` + `duplicates` + the sum of `rejections`.
struct Counts {
    read: u64,
    applied: u64,
    duplicates: u64,
    rejections: BTreeMap<&'static str, u64>,
}

impl Counts {
    /// Adds each admitted record's outcome and the duplicates dropped to the decoder's
    /// rejects already counted. In one process `read` and `duplicate` are the ingest's
    /// counts; in a cluster `dropped` names the duplicates, only this process's records
    /// count, and its share of `read` is their sum.
    fn count(
        &mut self,
        log: &[Arc<Accepted>],
        out: &Replayed,
        dropped: Option<&[RecordId]>,
        (read, duplicate): (u64, u64),
    ) {
        // In a cluster a process owns the `(feed, event_id)`s whose statuses and letters its
        // workers hold (`dataflow::build`).
        let owned: Option<HashSet<(Feed, &str)>> = dropped.map(|_| {
            out.statuses
                .keys()
                .map(|k| (k.id.0, k.id.1.as_str()))
                .collect()
        });
        let mine = |feed: Feed, id: &str| owned.as_ref().is_none_or(|o| o.contains(&(feed, id)));
        let admitted: Vec<&Accepted> = log
            .iter()
            .map(|a| a.as_ref())
            .filter(|a| mine(a.event.feed(), &a.event.event_id))
            .collect();
        self.duplicates = match dropped {
            Some(d) => d.iter().filter(|(f, id)| mine(*f, id)).count() as u64,
            None => duplicate,
        };
        for (_, outcome) in rules::lifecycle::outcomes(&admitted, &out.dead) {
            match outcome {
                Outcome::Applied => self.applied += 1,
                Outcome::Duplicate => self.duplicates += 1,
                Outcome::Rejected(r) => *self.rejections.entry(r.as_str()).or_default() += 1,
            }
        }
        self.read = match dropped {
            Some(_) => self.applied + self.duplicates + self.rejections.values().sum::<u64>(),
            None => read,
        };
    }
}

/// Calls `each` with every line of a feed file and its 0-based index; a byte-order mark at
/// the start is the file's, not the first record's (D51).
fn feed_lines(path: &Path, mut each: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    for (i, line) in BufReader::new(f).split(b'\n').enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let line = match i {
            0 => line.strip_prefix(UTF8_BOM).unwrap_or(&line),
            _ => &line,
        };
        each(i as u64, line)?;
    }
    Ok(())
}

/// The lifecycle dead letters of `steward run`, each with its record's exact bytes and where
/// it was read, in the shape of the decoder's letters: the input files are read again for the
/// records concerned (other lines get only their `event_id` parsed). Generated input has no
/// file: its letters carry the record's canonical bytes and offset −1 (D54).
fn lifecycle_letters(
    dead: &[Dead],
    log: &[Arc<Accepted>],
    feeds: Option<&[(Feed, PathBuf)]>,
) -> Result<Vec<DeadLetter>> {
    let letter = |d: &Dead, original: Vec<u8>, partition: i32, offset: i64| DeadLetter {
        original,
        source_topic: d.id.0.default_topic(),
        partition,
        offset,
        reason: d.reason.as_str().to_owned(),
        message: d.message(),
        time: d.at,
    };
    let Some(feeds) = feeds else {
        let wanted: HashSet<[u8; 32]> = dead.iter().map(|d| d.digest).collect();
        let by_digest: HashMap<[u8; 32], &Accepted> = log
            .iter()
            .filter(|a| wanted.contains(&a.digest))
            .map(|a| (a.digest, a.as_ref()))
            .collect();
        return Ok(dead
            .iter()
            .filter_map(|d| {
                let a = by_digest.get(&d.digest)?;
                Some(letter(d, encode(&a.event), -1, -1))
            })
            .collect());
    };
    /// Just enough of a line to tell whether it may be a dead-lettered record.
    #[derive(serde::Deserialize)]
    struct Id<'a> {
        #[serde(borrow)]
        event_id: Option<std::borrow::Cow<'a, str>>,
    }
    let cfg = rules::decode::DecodeConfig::default();
    let mut found: HashMap<[u8; 32], (Vec<u8>, i64)> = HashMap::new();
    for (feed, path) in feeds {
        let ids: HashSet<&str> = dead
            .iter()
            .filter(|d| d.id.0 == *feed)
            .map(|d| d.id.1.as_str())
            .collect();
        if ids.is_empty() {
            continue;
        }
        feed_lines(path, |i, line| {
            let named = serde_json::from_slice::<Id>(line)
                .ok()
                .and_then(|r| r.event_id)
                .is_some_and(|id| ids.contains(id.as_ref()));
            if let Some(d) = named
                .then(|| rules::decode::decode(line, Some(*feed), &cfg).ok())
                .flatten()
            {
                let digest = rules::decode::digest(&d.event);
                found
                    .entry(digest)
                    .or_insert_with(|| (line.to_vec(), i as i64));
            }
            Ok(())
        })?;
    }
    Ok(dead
        .iter()
        .map(|d| match found.get(&d.digest) {
            Some((bytes, offset)) => letter(d, bytes.clone(), 0, *offset),
            None => letter(d, Vec::new(), -1, -1),
        })
        .collect())
}

/// The feed files of `run --input DIR`: `<feed>.jsonl` for each feed present, checked before
/// anything is read or written. Says what is wrong: a missing directory, a file given as the
/// directory, a feed path that is a directory, or no feed file (with the expected names and
/// the files that were ignored); files that are not feeds are named in a warning.
fn feed_files(dir: &Path) -> Result<Vec<(Feed, PathBuf)>> {
    let shown = dir.display();
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("input directory {shown} cannot be read"))?;
    if !meta.is_dir() {
        bail!(
            "input {shown} is not a directory: give the directory holding the <feed>.jsonl files"
        );
    }
    let name = |feed: &Feed| format!("{}.jsonl", feed.as_str().to_ascii_lowercase());
    let expected: Vec<String> = Feed::ALL.iter().map(name).collect();
    let mut feeds = Vec::new();
    for feed in Feed::ALL {
        let path = dir.join(name(feed));
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => bail!("{} is a directory, not a feed file", path.display()),
            Ok(_) => feeds.push((*feed, path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
    let mut ignored = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {shown}"))? {
        let file = entry
            .with_context(|| format!("listing {shown}"))?
            .file_name();
        let file = file.to_string_lossy();
        if !expected.iter().any(|e| *e == file) && !file.starts_with('.') {
            ignored.push(file.into_owned());
        }
    }
    ignored.sort();
    if feeds.is_empty() {
        bail!(
            "no feed file in {shown}: expected one or more of {} (names are lower case); \
             found {}",
            expected.join(", "),
            match ignored.is_empty() {
                true => "nothing".to_owned(),
                false => format!("only {}", ignored.join(", ")),
            }
        );
    }
    if !ignored.is_empty() {
        eprintln!(
            "warning: ignoring {} in {shown}: not a feed file name (expected {})",
            ignored.join(", "),
            expected.join(", ")
        );
    }
    Ok(feeds)
}

/// `run`'s outputs are written to a staging directory inside the output directory and moved
/// into it, file by file, when the run succeeds; a failed run leaves the output directory as
/// it was (the staging directory is removed when dropped).
struct Staging {
    out: PathBuf,
    dir: PathBuf,
}

impl Staging {
    fn new(out: &Path) -> Result<Self> {
        let dir = out.join(format!(".partial-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Staging {
            out: out.to_owned(),
            dir,
        })
    }

    /// Where the output file `name` is written before the commit.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Moves every staged file into the output directory.
    fn commit(self) -> Result<()> {
        for entry in std::fs::read_dir(&self.dir)? {
            let from = entry?.path();
            let to = self.out.join(from.file_name().unwrap_or_default());
            std::fs::rename(&from, &to)
                .with_context(|| format!("moving {} to {}", from.display(), to.display()))?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `steward what-if`'s arguments.
#[derive(Debug, Args)]
struct WhatIfArgs {
    /// The candidate catalogue (TOML), validated as at start-up.
    #[arg(
        long,
        required_unless_present = "inspection",
        conflicts_with = "inspection"
    )]
    catalogue: Option<PathBuf>,
    /// Compare inspection policies instead: the candidate supervision parameters (TOML;
    /// their `[inspection]` probabilities and overrides), validated as at start-up.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    inspection: Option<PathBuf>,
    /// The current supervision parameters for `--inspection`; default: the embedded
    /// `config/supervision.toml`.
    #[arg(long, requires = "inspection")]
    supervision: Option<PathBuf>,
    /// With `--inspection`: the months after the snapshot in which a problem counts.
    #[arg(long, default_value_t = 6, requires = "inspection")]
    horizon_months: u32,
    /// With `--inspection`: campaign seeds to draw plans with (1 to N).
    #[arg(long, default_value_t = 200, requires = "inspection", value_parser = clap::value_parser!(u64).range(1..))]
    seeds: u64,
    /// The current catalogue (TOML); default: the embedded catalogue.
    #[arg(long)]
    current: Option<PathBuf>,
    /// The candidate's model file; default: the current model (which must fit the
    /// candidate's indicators).
    #[arg(long, conflicts_with = "inspection")]
    model: Option<PathBuf>,
    /// The current model file; default: none (Q missing).
    #[arg(long)]
    current_model: Option<PathBuf>,
    /// Input directory with `<feed>.jsonl` files; without it (and without
    /// `--from-clickhouse`), history is generated in-process.
    #[arg(long, conflicts_with = "from_clickhouse")]
    input: Option<PathBuf>,
    /// Read the history from the ClickHouse `records` table that `steward serve` writes,
    /// with the visibility times it gave (the connector configuration's database, `--config`).
    #[arg(long)]
    from_clickhouse: bool,
    /// Connector configuration for `--from-clickhouse`; default: the embedded one, with
    /// environment overrides.
    #[arg(long, requires = "from_clickhouse")]
    config: Option<PathBuf>,
    /// Compare the colours at this time (RFC 3339) and count events up to it; default:
    /// the history's last visibility time. With `--inspection`: the snapshot the plans are
    /// drawn at; default: the horizon before the history's end.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    at: Option<String>,
    /// Count events from the start of this date (YYYY-MM-DD, Asia/Shanghai).
    #[arg(long, requires = "to")]
    from: Option<chrono::NaiveDate>,
    /// Count events to the end of this date, and compare the colours then.
    #[arg(long, requires = "from")]
    to: Option<chrono::NaiveDate>,
    /// Output directory for `what-if.json` and `what-if.html` (created if missing).
    #[arg(long, default_value = "what-if-out")]
    output: PathBuf,
    /// Worker threads (at least 1).
    #[arg(short = 'w', long, default_value_t = 2, value_parser = at_least_one())]
    workers: usize,
}

/// A catalogue file's text: `path`'s, or the embedded catalogue's.
fn catalogue_text(path: Option<&Path>) -> Result<String> {
    match path {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display())),
        None => Ok(rules::catalogue::DEFAULT_TOML.to_owned()),
    }
}

/// A history shared with the dataflow, with its first and last visibility times.
type History = (Arc<[Arc<Accepted>]>, Ts, Ts);

/// The history `a` names, read under `cat`.
fn what_if_history(a: &WhatIfArgs, cat: &Catalogue, gen: &GenConfig) -> Result<History> {
    let source = Source::of(a.input.clone(), a.from_clickhouse, a.config.as_deref(), gen)?;
    let log = engine::replay::shared(load_log(&source, cat)?);
    let (Some(first), Some(last)) = (log.iter().map(|r| r.v).min(), log.iter().map(|r| r.v).max())
    else {
        bail!("the history has no records: nothing to compare");
    };
    Ok((log, first, last))
}

/// `--at`'s time.
fn parse_at(at: &str) -> Result<Ts> {
    rules::time::parse_rfc3339(at).with_context(|| format!("--at {at} is not an RFC 3339 time"))
}

/// Writes `bytes` to `name` in the output directory (made if missing); returns its path.
fn write_output(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn what_if(a: WhatIfArgs, gen: &GenConfig) -> Result<()> {
    use pipeline::what_if;
    let current_text = catalogue_text(a.current.as_deref())?;
    let current = Catalogue::from_toml(&current_text).context("the current catalogue")?;
    let load = |p: &Path, cat: &Catalogue| pipeline::model::load(p, cat).map(Arc::new);
    let current_model = a
        .current_model
        .as_deref()
        .map(|p| load(p, &current))
        .transpose()?;
    if let Some(path) = &a.inspection {
        return inspection_what_if(&a, path, (current, current_model), gen);
    }
    let Some(cand_path) = &a.catalogue else {
        bail!("give the candidate catalogue (--catalogue) or inspection policy (--inspection)");
    };
    let candidate_text = catalogue_text(Some(cand_path))?;
    let candidate = Catalogue::from_toml(&candidate_text)
        .with_context(|| format!("the candidate catalogue {}", cand_path.display()))?;
    let changes = what_if::diff::catalogues(&current_text, &candidate_text)?;
    let candidate_model = match a.model.as_deref() {
        Some(p) => Some(load(p, &candidate)?),
        None => {
            // The current model, if it fits the candidate's indicators as `serve` requires.
            if let Some(m) = &current_model {
                m.check(&candidate).with_context(|| {
                    format!(
                        "the current model does not fit the candidate catalogue {}: give the \
                         candidate's model with --model",
                        cand_path.display()
                    )
                })?;
            }
            current_model.clone()
        }
    };
    // The records are read once, under the current catalogue: both versions see the same
    // log (D78).
    let (log, first, last) = what_if_history(&a, &current, gen)?;
    let window = match (&a.at, a.from.zip(a.to)) {
        (Some(at), _) => what_if::Window {
            from: first,
            at: parse_at(at)?,
        },
        (None, Some((from, to))) => {
            if to < from {
                bail!("--to {to} is before --from {from}");
            }
            what_if::Window {
                from: rules::time::midnight(from),
                at: rules::time::date_end(to) - 1,
            }
        }
        (None, None) => what_if::Window {
            from: first,
            at: last,
        },
    };
    let rules = |cat: Catalogue, model| engine::replay::Rules {
        cat: Arc::new(cat),
        model,
        commitments: None,
    };
    let started = Instant::now();
    let report = what_if::run(
        log.clone(),
        &rules(current, current_model),
        &rules(candidate, candidate_model),
        window,
        changes,
        timely::Config::process(a.workers),
    )
    .map_err(|e| anyhow::anyhow!("dataflow: {e}"))?;
    let took = started.elapsed();
    let json = write_output(
        &a.output,
        "what-if.json",
        &serde_json::to_vec_pretty(&report)?,
    )?;
    let page = what_if::page::html(&report)?;
    let page = write_output(&a.output, "what-if.html", page.as_bytes())?;
    println!(
        "{} records under {} and {} in {:.1} s: {} of {} enterprises change \
         colour at {}; colour changes {} -> {}, alerts {} -> {} from {}; {} and {} written",
        log.len(),
        report.current.rules_version,
        report.candidate.rules_version,
        took.as_secs_f64(),
        report.colour_differs,
        report.enterprises,
        report.at,
        report.events.current.colour_changes,
        report.events.candidate.colour_changes,
        report.events.current.alerts,
        report.events.candidate.alerts,
        report.from,
        json.display(),
        page.display(),
    );
    Ok(())
}

/// `steward what-if --inspection`: discovery rates of the current and the candidate
/// inspection policy, and of uniform sampling, over many campaign seeds (D80).
fn inspection_what_if(
    a: &WhatIfArgs,
    path: &Path,
    (cat, model): (Catalogue, Option<Arc<Model>>),
    gen: &GenConfig,
) -> Result<()> {
    let current = load_supervision(a.supervision.as_deref())?.inspection;
    let candidate = load_supervision(Some(path))
        .with_context(|| format!("the candidate inspection policy {}", path.display()))?
        .inspection;
    let (log, _, last) = what_if_history(a, &cat, gen)?;
    let (at, until) = match &a.at {
        Some(at) => {
            let at = parse_at(at)?;
            (at, rules::time::add_months(at, a.horizon_months).min(last))
        }
        None => (rules::time::sub_months(last, a.horizon_months), last),
    };
    if until <= at {
        bail!(
            "no history after the snapshot {}: the plans could not be scored (--at before the \
             history's end {}, and --horizon-months of at least 1)",
            format_rfc3339(at),
            format_rfc3339(last)
        );
    }
    if until < rules::time::add_months(at, a.horizon_months) {
        eprintln!(
            "the history ends {}: problems are looked for until then, short of {} months",
            format_rfc3339(last),
            a.horizon_months
        );
    }
    let rules = engine::replay::Rules {
        cat: Arc::new(cat),
        model,
        commitments: None,
    };
    let started = Instant::now();
    let report = pipeline::what_if::inspection::run(
        log,
        &rules,
        (&current, &candidate),
        (at, until),
        a.seeds,
        a.workers,
    )
    .map_err(|e| anyhow::anyhow!("dataflow: {e}"))?;
    let json = write_output(
        &a.output,
        "inspection-what-if.json",
        &serde_json::to_vec_pretty(&report)?,
    )?;
    let line = |name: &str, p: &pipeline::what_if::inspection::PolicyResult| {
        let r = p.discovery_rate;
        println!(
            "{name:>9}: {:6.1} inspected per campaign, discovery rate {:.3} (95 % CI {:.3}–{:.3}), lift over uniform {}",
            p.selected,
            r.mean,
            r.low,
            r.high,
            p.lift_over_uniform.map_or_else(|| "-".to_owned(), |l| format!("{l:.2}")),
        );
    };
    println!(
        "{} enterprises at {}, {} with a problem by {}; {} seeds in {:.1} s",
        report.enterprises,
        report.at,
        report.with_problem,
        report.until,
        report.seeds,
        started.elapsed().as_secs_f64()
    );
    line("current", &report.current);
    line("candidate", &report.candidate);
    line("uniform", &report.uniform);
    println!("{} written", json.display());
    Ok(())
}

/// What `run` evaluates with: the catalogue, the model and the commitments' rules.
type RunRules = (Arc<Catalogue>, Option<Arc<Model>>, Supervision);

fn run(
    input: Option<&Path>,
    output: &Path,
    (cat, model, sup): RunRules,
    gen: &GenConfig,
    layout: &Layout,
    obs: &ObsArgs,
) -> Result<()> {
    // The input is checked before anything is written; outputs are written to a staging
    // directory and moved into `output` only when the run succeeds.
    let feeds = input.map(feed_files).transpose()?;
    let staging = Staging::new(output)?;
    let registry = prometheus::Registry::new();
    let metrics = Metrics::new(&registry)?;
    metrics.describe(&cat);
    // File mode has no dependency: ready as soon as it serves.
    let server = match &obs.metrics_addr {
        Some(addr) => Some(MetricsServer::start(addr, registry, Readiness::new())?),
        None => None,
    };
    let config = layout.config()?;
    let started = Instant::now();
    let dead_path = staging.path("dead_letters.jsonl");
    let dead =
        File::create(&dead_path).with_context(|| format!("creating {}", dead_path.display()))?;
    let mut dead = BufWriter::new(dead);
    // Every process reads the whole input; process 0 alone reports the decoder's rejects.
    let rejects: Box<dyn Write + '_> = if layout.process == 0 {
        Box::new(&mut dead)
    } else {
        Box::new(std::io::sink())
    };
    let mut ingest = Ingest::new(&cat, rejects);
    if layout.process == 0 {
        ingest = ingest.metered(metrics.clone());
    }
    if layout.processes > 1 {
        ingest = ingest.noting_drops();
    }
    match &feeds {
        Some(feeds) => {
            // Files have no arrival order across feeds: merge them by ingest time (stable, so
            // each file keeps its own order) before the replay clock sees them.
            let mut events = Vec::new();
            for (feed, path) in feeds {
                feed_lines(path, |i, line| {
                    events.extend(ingest.decode(*feed, i, line)?);
                    Ok(())
                })?;
            }
            events.sort_by_key(|e| e.ingest_time);
            for e in events {
                ingest.admit(e);
            }
        }
        None => {
            let bar = progress(u64::from(gen.enterprises), "generating");
            let mut offsets: BTreeMap<Feed, u64> = BTreeMap::new();
            let mut err = None;
            generate(gen, &mut |n| bar.set_position(n), &mut |r| {
                let off = offsets.entry(r.feed).or_default();
                match ingest.decode(r.feed, *off, &r.line) {
                    Ok(Some(e)) => ingest.admit(e),
                    Ok(None) => {}
                    Err(e) => {
                        err.get_or_insert(e);
                    }
                }
                *off += 1;
            })?;
            bar.finish_and_clear();
            if let Some(e) = err {
                return Err(e.into());
            }
        }
    }
    let ingested = Instant::now();
    engine::observe::files_read(&metrics);
    let log = engine::replay::shared(std::mem::take(&mut ingest.log));
    ingest.dead.flush()?;
    let (read, duplicate, dropped) = (ingest.read, ingest.duplicate, ingest.dropped.take());
    // Process 0 alone dead-letters the decoder's rejects, so it alone counts them.
    let decoder = match layout.process {
        0 => ingest.rejected.clone(),
        _ => BTreeMap::new(),
    };
    drop(ingest);
    let as_of = log.iter().map(|a| a.v).max().unwrap_or(0);
    let progress = std::sync::Arc::new(pipeline::progress::Progress::new(
        log.iter().map(|a| a.v).collect(),
    ));
    // Colour changes, alerts and commitment decisions are written step by step (D116).
    let streamed = Arc::new(pipeline::outputs::Streamed::create(
        &staging.dir,
        layout.workers,
    )?);
    let on_step = {
        let observe = engine::observe::on_step(metrics.clone());
        let (progress, streamed) = (progress.clone(), streamed.clone());
        // Worker 0 (of process 0) reports progress: every worker steps through the same times.
        move |worker: usize, t: Ts, tracker: &engine::tracker::Tracker, outputs: &mut Outputs| {
            observe(worker, t, tracker, outputs);
            if worker == 0 {
                progress.at(t);
            }
            streamed.take(worker, std::mem::take(outputs));
        }
    };
    let out = replay(
        log.clone(),
        cat.clone(),
        model.clone(),
        Some(sup.commitments.clone()),
        config,
        Schedule::new(50_000, as_of),
        on_step,
    )
    .map_err(|e| anyhow::anyhow!("dataflow: {e}"))?;
    if layout.process == 0 {
        progress.finish();
    }
    // The workers are gone, and with them the other references.
    let written = Arc::into_inner(streamed)
        .context("the output files are still in use")?
        .finish()?;
    let computed = Instant::now();
    engine::observe::results(&metrics, &out, &written.firing);

    // Lifecycle dead letters join the decoder's rejects.
    for letter in lifecycle_letters(&out.dead, &log, feeds.as_deref())? {
        dead.write_all(&letter.to_json())?;
        dead.write_all(b"\n")?;
    }
    dead.flush()?;

    let mut colours: BTreeMap<Colour, u64> = BTreeMap::new();
    let states: Vec<_> = out
        .states
        .iter()
        .map(|(uscc, (s, published))| {
            let colour = published.unwrap_or(Colour::None);
            *colours.entry(colour).or_default() += 1;
            let e = s.evaluation(model.as_deref(), &cat);
            let pre = pipeline::rows::pre_credit(s, *published, &sup.pre_credit);
            Versioned::new(StateLine {
                uscc: uscc.clone(),
                as_of,
                colour,
                score_colour: e.score_colour,
                s: e.s,
                p: e.p,
                m: e.m,
                q: e.q,
                r: e.risk,
                triggers: e.triggers.to_strings(),
                level1: named(cat.level1.iter().map(|l| l.code.as_str()), &e.l1),
                level2: named(cat.level2.iter().map(|l| l.code.as_str()), &e.l2),
                level3: named(cat.indicators.iter().map(|i| i.id.as_str()), &e.r),
                region: s.region.as_deref().map(str::to_owned),
                industry: s.industry.as_deref().map(str::to_owned),
                reasons: e.reasons,
                review_flags: e.review_flags,
                pre_credit: PreCreditStatus::of(pre),
                pre_credit_line_fen: pre.line_fen(),
                rules_version: cat.version.clone(),
                model_version: e.model_version,
            })
        })
        .collect();
    pipeline::outputs::write_jsonl(staging.path("state.jsonl"), &states)?;
    let mut c = Counts {
        read: 0,
        applied: 0,
        duplicates: 0,
        rejections: decoder,
    };
    c.count(&log, &out, dropped.as_deref(), (read, duplicate));
    let rejected: u64 = c.rejections.values().sum();
    println!(
        "Credit Steward — {} enterprises; data as of {} (the input's latest visibility time, \
         not the run's) ({} workers x {} processes)",
        states.len(),
        format_rfc3339(as_of),
        layout.workers,
        layout.processes
    );
    if let Some(m) = &model {
        println!("model {} (Q enters S)", m.model_version);
    }
    println!();
    println!("{:<8} {:>8} {:>7}", "colour", "count", "share");
    let total = states.len().max(1) as f64;
    for (c, n) in &colours {
        println!(
            "{:<8} {:>8} {:>6.1}%",
            c.as_str(),
            n,
            100.0 * *n as f64 / total
        );
    }
    if colours.contains_key(&Colour::None) {
        println!("(none: registration revoked or deregistered, R9: no longer scored)");
    }
    println!();
    if layout.processes > 1 {
        println!(
            "process {} of {}: its workers' enterprises and outputs, and its share of the \
             records (by feed and event id; the decoder's rejects in process 0): the \
             processes' counts add up to the input's",
            layout.process, layout.processes
        );
        if layout.process == 0 {
            println!("input: {read} records, read by every process");
        }
    }
    println!("records read      {:>10}", c.read);
    println!("records applied   {:>10}", c.applied);
    println!("duplicates        {:>10}", c.duplicates);
    println!("rejected          {rejected:>10}");
    for (reason, n) in &c.rejections {
        println!("  {reason:<20} {n:>8}");
    }
    println!("colour changes    {:>10}", written.changes);
    println!(
        "commitments       {:>10} scheduled, {} with an inspection task",
        written.scheduled, written.tasks
    );
    println!("alerts            {:>10}", written.alerts);
    staging.commit()?;
    let secs = |a: Instant, b: Instant| b.duration_since(a).as_secs_f64();
    println!(
        "ingest {:.1} s, dataflow {:.1} s ({:.0} records/s), wrote {}",
        secs(started, ingested),
        secs(ingested, computed),
        log.len() as f64 / secs(ingested, computed),
        output.display()
    );
    if let Some(server) = server {
        if obs.hold > 0 {
            eprintln!(
                "serving metrics on {} for {} s more",
                server.local_addr(),
                obs.hold
            );
            std::io::stdout().flush()?;
            std::thread::sleep(std::time::Duration::from_secs(obs.hold));
        }
        server.stop();
    }
    Ok(())
}
