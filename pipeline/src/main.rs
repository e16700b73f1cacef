//! The `steward` binary.
//!
//! - `steward generate` writes generated JSON-lines feeds (`rules::generate`).
//! - `steward run` reads feeds (or generates them in-process), decodes and validates every
//!   record, and evaluates every enterprise with the `rules` reference computation at the
//!   end of the input; it writes `state.jsonl` and `dead_letters.jsonl` and prints a summary.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rules::catalogue::Catalogue;
use rules::decode::{decode, digest, encode, DecodeConfig};
use rules::event::{Event, Feed};
use rules::generate::{generate, GenConfig};
use rules::lifecycle::Accepted;
use rules::reference::{evaluate_facts, facts_of};
use rules::score::Colour;
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
        /// Output directory (created if missing), or `-` for every record on stdout in
        /// arrival order (each record names its `feed`).
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

/// Reads records one at a time: decodes, dead-letters rejects, drops duplicates and
/// assigns visibility times with the replay clock.
struct Ingest<'c> {
    cat: &'c Catalogue,
    cfg: DecodeConfig,
    dead: BufWriter<File>,
    /// Accepted records with their visibility times.
    log: Vec<Accepted>,
    /// (feed, event_id) → highest (version, digest) applied: an equal or lower version is a
    /// duplicate, except an equal version with other bytes, which the lifecycle resolves.
    seen: HashMap<(Feed, String), (u32, [u8; 32])>,
    /// Largest `ingest_time` read; the watermark trails it by the allowed lateness.
    max_ingest: Ts,
    read: u64,
    duplicate: u64,
    rejected: BTreeMap<&'static str, u64>,
}

impl<'c> Ingest<'c> {
    fn new(cat: &'c Catalogue, output: &Path) -> Result<Self> {
        let path = output.join("dead_letters.jsonl");
        let dead = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Ingest {
            cat,
            cfg: DecodeConfig::default(),
            dead: BufWriter::new(dead),
            log: Vec::new(),
            seen: HashMap::new(),
            max_ingest: Ts::MIN,
            read: 0,
            duplicate: 0,
            rejected: BTreeMap::new(),
        })
    }

    /// Decodes one raw record read from `feed`'s topic at `offset`; a reject goes to the
    /// dead letters.
    fn decode(&mut self, feed: Feed, offset: u64, line: &[u8]) -> Result<Option<Event>> {
        self.read += 1;
        match decode(line, Some(feed), &self.cfg) {
            Ok(d) => Ok(Some(d.event)),
            Err(rej) => {
                *self.rejected.entry(rej.reason.as_str()).or_default() += 1;
                let row = json!({
                    "original": String::from_utf8_lossy(line),
                    "source_topic": feed.default_topic(),
                    "offset": offset,
                    "reason": rej.reason.as_str(),
                    "message": rej.message,
                    // When it was rejected (wall clock); lifecycle rows carry their logical time.
                    "time": format_rfc3339(now()),
                });
                serde_json::to_writer(&mut self.dead, &row)?;
                self.dead.write_all(b"\n")?;
                Ok(None)
            }
        }
    }

    /// Admits a decoded record in arrival order: duplicates are counted, the rest get their
    /// visibility time from the replay clock.
    fn admit(&mut self, e: Event) {
        let dg = digest(&e);
        match self.seen.entry((e.feed(), e.event_id.clone())) {
            Entry::Occupied(mut o) => {
                let (ver, old) = *o.get();
                if e.version < ver || (e.version == ver && dg == old) {
                    self.duplicate += 1;
                    return;
                }
                if e.version > ver {
                    o.insert((e.version, dg));
                }
            }
            Entry::Vacant(v) => {
                v.insert((e.version, dg));
            }
        }
        // Replay clock: a record behind the watermark is late and visible at the watermark.
        let watermark = self
            .max_ingest
            .saturating_sub(self.cat.lifecycle.lateness_secs);
        let v = e.ingest_time.max(watermark);
        self.max_ingest = self.max_ingest.max(e.ingest_time);
        self.log.push(Accepted {
            v,
            digest: dg,
            event: e,
        });
    }
}

/// Wall-clock time in whole seconds.
fn now() -> Ts {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as Ts)
}

fn run(input: Option<&Path>, output: &Path, cat: &Catalogue, gen: &GenConfig) -> Result<()> {
    std::fs::create_dir_all(output).with_context(|| format!("creating {}", output.display()))?;
    let started = Instant::now();
    let mut ingest = Ingest::new(cat, output)?;
    match input {
        Some(dir) => {
            // Files have no arrival order across feeds: merge them by ingest time (stable, so
            // each file keeps its own order) before the replay clock sees them.
            let mut files = 0;
            let mut events = Vec::new();
            for feed in Feed::ALL {
                let path = dir.join(format!("{}.jsonl", feed.as_str().to_ascii_lowercase()));
                if !path.exists() {
                    continue;
                }
                files += 1;
                let f = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
                for (i, line) in BufReader::new(f).split(b'\n').enumerate() {
                    events.extend(ingest.decode(*feed, i as u64, &line?)?);
                }
            }
            if files == 0 {
                bail!("no <feed>.jsonl files in {}", dir.display());
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
                return Err(e);
            }
        }
    }
    let log = &ingest.log;
    let as_of = log.iter().map(|a| a.v).max().unwrap_or(0);
    let visible: Vec<&Accepted> = log.iter().collect();
    let (facts, lifecycle_dead) = facts_of(&visible, cat);
    // Lifecycle dead letters decided by the end of the input join the decoder's rejects.
    let by_version: HashMap<(Feed, &str, u32), &Accepted> = log
        .iter()
        .map(|a| {
            (
                (a.event.feed(), a.event.event_id.as_str(), a.event.version),
                a,
            )
        })
        .collect();
    let mut lifecycle_dead_now = 0u64;
    for d in lifecycle_dead.iter().filter(|d| d.at <= as_of) {
        let Some(a) = by_version.get(&(d.id.0, d.id.1.as_str(), d.version)) else {
            continue;
        };
        lifecycle_dead_now += 1;
        let row = json!({
            "original": String::from_utf8_lossy(&encode(&a.event)),
            "source_topic": d.id.0.default_topic(),
            "offset": null,
            "reason": d.reason.as_str(),
            "message": format!("{} {} version {}", d.id.0, d.id.1, d.version),
            "time": format_rfc3339(d.at),
        });
        serde_json::to_writer(&mut ingest.dead, &row)?;
        ingest.dead.write_all(b"\n")?;
    }
    ingest.dead.flush()?;
    let states = evaluate_facts(&facts, as_of, cat);

    let mut out = BufWriter::new(File::create(output.join("state.jsonl"))?);
    let mut colours: BTreeMap<Colour, u64> = BTreeMap::new();
    for (uscc, (local, e)) in &states {
        let colour = e.colour_without_hysteresis();
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
    let rejected: u64 = ingest.rejected.values().sum();
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
    println!("records read      {:>10}", ingest.read);
    println!(
        "records applied   {:>10}",
        log.len() as u64 - lifecycle_dead_now
    );
    println!("duplicates        {:>10}", ingest.duplicate);
    println!("rejected          {rejected:>10}");
    for (reason, n) in &ingest.rejected {
        println!("  {reason:<20} {n:>8}");
    }
    println!("dead-lettered by lifecycle (version_kind_change, target_mismatch, unknown_target) {lifecycle_dead_now}");
    println!(
        "wrote {}/state.jsonl and dead_letters.jsonl in {secs:.1} s ({:.0} records/s)",
        output.display(),
        ingest.read as f64 / secs
    );
    Ok(())
}
