//! The `steward` binary.
//!
//! - `steward generate` writes generated JSON-lines feeds (`rules::generate`).
//! - `steward run` reads feeds (or generates them in-process), decodes and validates every
//!   record, and evaluates every enterprise with the `rules` reference computation at the
//!   end of the input; it writes `state.jsonl` and `dead_letters.jsonl` and prints a summary.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rules::catalogue::Catalogue;
use rules::decode::{decode, digest, DecodeConfig};
use rules::event::Feed;
use rules::generate::{generate, GenConfig};
use rules::lifecycle::Accepted;
use rules::reference::{evaluate_at, facts_of};
use rules::score::{published, score_colour, Colour};
use rules::time::{format_rfc3339, Ts};
use serde_json::json;

/// Credit Steward: enterprise credit-risk monitoring.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate JSON-lines feeds (one file per feed) for N enterprises.
    Generate {
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        gen: GenArgs,
    },
    /// Evaluate every enterprise from JSON-lines feeds, or from generated data.
    Run {
        /// Input directory with `<feed>.jsonl` files; without it, data is generated in-process.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Output directory for `state.jsonl` and `dead_letters.jsonl`.
        #[arg(long, default_value = "steward-out")]
        output: PathBuf,
        /// Catalogue file (TOML); default: the embedded catalogue.
        #[arg(long)]
        catalogue: Option<PathBuf>,
        #[command(flatten)]
        gen: GenArgs,
    },
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Generate { out, gen } => generate_files(&out, &gen.config()),
        Command::Run {
            input,
            output,
            catalogue,
            gen,
        } => {
            let cat = match catalogue {
                Some(p) => Catalogue::from_toml(
                    &std::fs::read_to_string(&p)
                        .with_context(|| format!("reading {}", p.display()))?,
                )?,
                None => Catalogue::embedded(),
            };
            run(input.as_deref(), &output, &cat, &gen.config())
        }
    }
}

fn generate_files(out: &Path, cfg: &GenConfig) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut files = BTreeMap::new();
    for feed in Feed::ALL {
        let path = out.join(format!("{}.jsonl", feed.as_str().to_ascii_lowercase()));
        let f = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        files.insert(*feed, BufWriter::new(f));
    }
    let bar = progress(cfg.enterprises as u64, "enterprises");
    let started = Instant::now();
    let mut err = None;
    let summary = generate(cfg, &mut |n| bar.set_position(n), &mut |r| {
        if let Some(w) = files.get_mut(&r.feed) {
            if let Err(e) = w.write_all(&r.line).and_then(|()| w.write_all(b"\n")) {
                err.get_or_insert(e);
            }
        }
    })?;
    bar.finish_and_clear();
    if let Some(e) = err {
        return Err(e).context("writing generated records");
    }
    for (_, mut w) in files {
        w.flush()?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "generated {} records for {} enterprises into {} in {secs:.1} s ({:.0} records/s)",
        summary.records,
        summary.enterprises,
        out.display(),
        summary.records as f64 / secs
    );
    Ok(())
}

/// Counts of what happened to the records read.
#[derive(Debug, Default)]
struct Tally {
    read: u64,
    duplicate: u64,
    rejected: BTreeMap<&'static str, u64>,
}

fn run(input: Option<&Path>, output: &Path, cat: &Catalogue, gen: &GenConfig) -> Result<()> {
    std::fs::create_dir_all(output).with_context(|| format!("creating {}", output.display()))?;
    let started = Instant::now();
    let mut dead = BufWriter::new(File::create(output.join("dead_letters.jsonl"))?);
    let cfg = DecodeConfig::default();
    let mut tally = Tally::default();
    // Replay clock: the watermark is the largest ingest_time read minus the lateness; a
    // record behind the watermark is late and becomes visible at the watermark.
    let mut max_ingest = Ts::MIN;
    let mut log: Vec<Accepted> = Vec::new();
    // (feed, event_id) → highest (version, digest) applied: an equal or lower version is a
    // duplicate, except an equal version with other bytes, which the lifecycle resolves.
    let mut seen: std::collections::HashMap<(Feed, String), (u32, [u8; 32])> = Default::default();
    let mut accept = |feed: Feed,
                      source: &str,
                      offset: u64,
                      line: &[u8],
                      dead: &mut BufWriter<File>|
     -> Result<()> {
        tally.read += 1;
        match decode(line, Some(feed), &cfg) {
            Ok(d) => {
                let e = d.event;
                let dg = digest(&e);
                let key = (e.feed(), e.event_id.clone());
                if let Some(&(ver, old)) = seen.get(&key) {
                    if e.version < ver || (e.version == ver && dg == old) {
                        tally.duplicate += 1;
                        return Ok(());
                    }
                }
                if seen.get(&key).is_none_or(|&(ver, _)| e.version > ver) {
                    seen.insert(key, (e.version, dg));
                }
                let watermark = max_ingest.saturating_sub(cat.lifecycle.lateness_secs);
                let v = e.ingest_time.max(watermark);
                max_ingest = max_ingest.max(e.ingest_time);
                log.push(Accepted {
                    v,
                    digest: dg,
                    event: e,
                });
            }
            Err(rej) => {
                *tally.rejected.entry(rej.reason.as_str()).or_default() += 1;
                let row = json!({
                    "original": String::from_utf8_lossy(line),
                    "source_topic": source,
                    "offset": offset,
                    "reason": rej.reason.as_str(),
                    "message": rej.message,
                });
                serde_json::to_writer(&mut *dead, &row)?;
                dead.write_all(b"\n")?;
            }
        }
        Ok(())
    };
    match input {
        Some(dir) => {
            let mut lines: Vec<(Feed, String, u64, Vec<u8>)> = Vec::new();
            for feed in Feed::ALL {
                let name = format!("{}.jsonl", feed.as_str().to_ascii_lowercase());
                let path = dir.join(&name);
                if !path.exists() {
                    continue;
                }
                let f = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
                for (i, line) in BufReader::new(f).split(b'\n').enumerate() {
                    lines.push((*feed, feed.default_topic(), i as u64, line?));
                }
            }
            if lines.is_empty() {
                bail!("no <feed>.jsonl files in {}", dir.display());
            }
            for (feed, topic, offset, line) in lines {
                accept(feed, &topic, offset, &line, &mut dead)?;
            }
        }
        None => {
            let bar = progress(gen.enterprises as u64, "generating");
            let mut offsets: BTreeMap<Feed, u64> = BTreeMap::new();
            let mut err = None;
            generate(gen, &mut |n| bar.set_position(n), &mut |r| {
                let off = offsets.entry(r.feed).or_default();
                if let Err(e) = accept(r.feed, &r.feed.default_topic(), *off, &r.line, &mut dead) {
                    err.get_or_insert(e);
                }
                *off += 1;
            })?;
            bar.finish_and_clear();
            if let Some(e) = err {
                return Err(e);
            }
        }
    }
    dead.flush()?;
    let as_of = log.iter().map(|a| a.v).max().unwrap_or(0);
    let visible: Vec<&Accepted> = log.iter().collect();
    let (_, lifecycle_dead) = facts_of(&visible, cat);
    let states = evaluate_at(&log, as_of, cat);

    let mut out = BufWriter::new(File::create(output.join("state.jsonl"))?);
    let mut colours: BTreeMap<Colour, u64> = BTreeMap::new();
    for (uscc, (local, e)) in &states {
        let colour = e
            .s10
            .map_or(Colour::None, |s| published(score_colour(s, cat), e.cap));
        *colours.entry(colour).or_default() += 1;
        let row = json!({
            "uscc": uscc,
            "as_of": format_rfc3339(as_of),
            "colour": colour,
            "score_colour": e.score_colour,
            "s": e.s, "p": e.p, "m": e.m, "q": e.q, "r": e.risk,
            "triggers": e.triggers,
            "level1": e.l1, "level2": e.l2, "level3": e.r,
            "region": local.region, "industry": local.industry,
            "reasons": e.reasons,
            "rules_version": cat.version,
        });
        serde_json::to_writer(&mut out, &row)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;

    let secs = started.elapsed().as_secs_f64();
    let rejected: u64 = tally.rejected.values().sum();
    let lifecycle_dead_now = lifecycle_dead.iter().filter(|d| d.at <= as_of).count() as u64;
    println!(
        "Credit Steward — evaluation as of {} ({} enterprises)",
        format_rfc3339(as_of),
        states.len()
    );
    println!(
        "note: final state by the rules reference computation (not yet the incremental dataflow)"
    );
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
    println!();
    println!("records read      {:>10}", tally.read);
    println!("records applied   {:>10}", log.len());
    println!("duplicates        {:>10}", tally.duplicate);
    println!("rejected          {rejected:>10}");
    for (reason, n) in &tally.rejected {
        println!("  {reason:<20} {n:>8}");
    }
    println!("lifecycle dead letters (version_kind_change, target_mismatch, unknown_target) {lifecycle_dead_now}");
    println!(
        "wrote {}/state.jsonl and dead_letters.jsonl in {secs:.1} s ({:.0} records/s)",
        output.display(),
        tally.read as f64 / secs
    );
    Ok(())
}
