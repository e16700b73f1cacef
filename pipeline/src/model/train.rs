//! `steward train`: history → samples → split by time → logistic regression and random
//! forest → held-out metrics → model files, `metrics.json` and `roc.svg`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser};
use generator::GenConfig;
use indicatif::{ProgressBar, ProgressStyle};
use rules::catalogue::Catalogue;
use rules::model::{feature_names, AtRed, EarlyWarning, Metrics, Model, TrainingData, FORMAT};
use rules::score::{assemble, round_half_away, score_colour, Colour, Triggers};
use rules::time::format_rfc3339;
use serde_json::json;

use super::dataset::{digest, load_log, samples, split, Sample, Sampling, Source};
use super::fit::{export_forest, export_logistic, fit_forest, fit_logistic, ForestSettings};
use super::metrics::{at_red, auc, calibration, roc};
use super::plot::{roc_svg, Curve};
use super::TrainError;

/// Settings of `steward train`.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Input directory with `<feed>.jsonl` files; without it (and without
    /// `--from-clickhouse`), history is generated in-process.
    #[arg(long, conflicts_with = "from_clickhouse")]
    pub input: Option<PathBuf>,
    /// Read the history from the ClickHouse `records` table that `steward serve` writes
    /// (the database and credentials of the connector configuration, `--config`).
    #[arg(long)]
    pub from_clickhouse: bool,
    /// Connector configuration for `--from-clickhouse`; default: the embedded one, with
    /// environment overrides.
    #[arg(long, requires = "from_clickhouse")]
    pub config: Option<PathBuf>,
    /// Enterprises to generate (without `--input`).
    #[arg(long, default_value_t = 2_000)]
    pub enterprises: u32,
    /// Generator seed (without `--input`).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Years of generated history (without `--input`).
    #[arg(long, default_value_t = 5)]
    pub years: u32,
    /// Output directory for the model files, `metrics.json` and `roc.svg`.
    #[arg(long, default_value = "steward-model")]
    pub out: PathBuf,
    /// Catalogue file (TOML); default: the embedded catalogue.
    #[arg(long)]
    pub catalogue: Option<PathBuf>,
    /// Months between sampled as-of times.
    #[arg(long, default_value_t = 3)]
    pub every_months: u32,
    /// Months of history before the first sample.
    #[arg(long, default_value_t = 12)]
    pub warmup_months: u32,
    /// Label horizon in months.
    #[arg(long, default_value_t = 12)]
    pub horizon_months: u32,
    /// Share of the sampled as-of times (the latest) held out for testing.
    #[arg(long, default_value_t = 0.25)]
    pub test_share: f64,
    /// L2 penalty of the logistic regression (on standardised features).
    #[arg(long, default_value_t = 100.0)]
    pub alpha: f64,
    /// Trees in the random forest.
    #[arg(long, default_value_t = 51)]
    pub trees: u16,
    /// Maximum depth of a tree.
    #[arg(long, default_value_t = 10)]
    pub max_depth: u16,
    /// Minimum samples in a leaf.
    #[arg(long, default_value_t = 5)]
    pub min_samples_leaf: usize,
    /// Seed of the forest's bootstrap samples and feature choices.
    #[arg(long, default_value_t = 7)]
    pub forest_seed: u64,
    /// Times each positive sample enters the forest's training set (class weight of the
    /// rare label; vote shares then overstate `p`, as the calibration table shows).
    #[arg(long, default_value_t = 5)]
    pub forest_positive_weight: usize,
}

impl TrainArgs {
    /// The command's defaults (as `steward train` parses them), reading `enterprises`
    /// generated with `seed` over `years`, writing to `out`.
    pub fn generated(enterprises: u32, seed: u64, years: u32, out: PathBuf) -> Self {
        /// `TrainArgs` as a command line of its own, to read clap's defaults.
        #[derive(Debug, Parser)]
        struct Defaults {
            #[command(flatten)]
            args: TrainArgs,
        }
        TrainArgs {
            enterprises,
            seed,
            years,
            out,
            ..Defaults::parse_from(["train"]).args
        }
    }
}

/// What a training run wrote.
#[derive(Debug, Clone)]
pub struct Trained {
    /// The models, with their held-out metrics.
    pub models: Vec<Model>,
    /// Where each model was written, in the same order.
    pub model_files: Vec<PathBuf>,
    /// The metrics file.
    pub metrics_file: PathBuf,
    /// The ROC plot.
    pub roc_file: PathBuf,
}

fn spinner(msg: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_message(msg.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Runs `steward train`.
pub fn train(args: &TrainArgs) -> Result<Trained, TrainError> {
    let cat = match &args.catalogue {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(TrainError::io(p))?;
            Catalogue::from_toml(&text).map_err(|e| TrainError::Data(format!("catalogue: {e}")))?
        }
        None => Catalogue::embedded(),
    };
    let gen = GenConfig {
        enterprises: args.enterprises,
        seed: args.seed,
        years: args.years,
        ..GenConfig::default()
    };
    let source = Source::of(
        args.input.clone(),
        args.from_clickhouse,
        args.config.as_deref(),
        &gen,
    )?;
    std::fs::create_dir_all(&args.out).map_err(TrainError::io(&args.out))?;

    let bar = spinner("reading history");
    let log = load_log(&source, &cat)?;
    bar.finish_and_clear();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("checkpoints");
    let sampling = Sampling {
        every_months: args.every_months,
        warmup_months: args.warmup_months,
        horizon_months: args.horizon_months,
    };
    let all = samples(&log, sampling, &cat, &bar)?;
    bar.finish_and_clear();
    let sp = split(&all, args.test_share, args.horizon_months)?;

    let p_impute = median(sp.train.iter().filter_map(|s| s.p)).unwrap_or(0.0);
    let x_train: Vec<Vec<f64>> = sp.train.iter().map(|s| s.x(p_impute)).collect();
    let y_train: Vec<bool> = sp.train.iter().map(|s| s.label).collect();
    let training = TrainingData {
        source: source.describe(),
        digest: digest(&sp.train),
        samples: sp.train.len() as u64,
        positives: y_train.iter().filter(|y| **y).count() as u64,
        first_as_of: sp
            .train
            .first()
            .map(|s| format_rfc3339(s.as_of))
            .unwrap_or_default(),
        last_as_of: sp
            .train
            .last()
            .map(|s| format_rfc3339(s.as_of))
            .unwrap_or_default(),
    };

    let bar = spinner("fitting logistic regression");
    let (lr, mean, scale) = fit_logistic(&x_train, &y_train, args.alpha)?;
    let logistic = export_logistic(&lr, mean, scale);
    bar.finish_and_clear();
    let bar = spinner(&format!("fitting random forest ({} trees)", args.trees));
    let forest = fit_forest(
        &x_train,
        &y_train,
        ForestSettings {
            trees: args.trees,
            max_depth: args.max_depth,
            min_samples_leaf: args.min_samples_leaf,
            seed: args.forest_seed,
            positive_weight: args.forest_positive_weight,
        },
    )?;
    let forest = export_forest(&forest)?;
    bar.finish_and_clear();

    let labels: Vec<bool> = sp.test.iter().map(|s| s.label).collect();
    let without: Vec<f64> = sp.test.iter().map(|s| -s.s).collect();
    let mut models = Vec::new();
    let mut curves = Vec::new();
    for params in [logistic, forest] {
        let mut model = Model {
            format: FORMAT,
            model_version: Model::version_of(&training.digest, &params),
            rules_version: cat.version.clone(),
            features: feature_names(&cat),
            p_impute,
            horizon_months: args.horizon_months,
            training: training.clone(),
            settings: settings(args),
            metrics: Metrics::default(),
            params,
        };
        let (m, p) = evaluate(&model, &sp.test, &cat);
        curves.push(Curve {
            label: format!("{} p (AUC {:.3})", model.params.kind(), m.auc),
            points: roc(&p, &labels),
        });
        model.metrics = Metrics {
            first_as_of: format_rfc3339(sp.test_from),
            ..m
        };
        models.push(model);
    }
    let auc_without = auc(&without, &labels);
    curves.push(Curve {
        label: format!("S without model (AUC {auc_without:.3})"),
        points: roc(&without, &labels),
    });

    let mut model_files = Vec::new();
    for m in &models {
        let path = args.out.join(format!("{}.model.json", m.params.kind()));
        write_json(&path, &serde_json::to_value(m)?)?;
        model_files.push(path);
    }
    let metrics_file = args.out.join("metrics.json");
    let summary = json!({
        "source": training.source,
        "horizon_months": args.horizon_months,
        "training": { "samples": training.samples, "positives": training.positives,
                      "first_as_of": training.first_as_of, "last_as_of": training.last_as_of,
                      "digest": training.digest },
        "test": { "samples": sp.test.len(), "positives": labels.iter().filter(|l| **l).count(),
                  "first_as_of": format_rfc3339(sp.test_from) },
        "auc_score_without_model": auc_without,
        "models": models.iter().map(|m| json!({
            "model_version": m.model_version,
            // Relative to the output directory, which can move.
            "file": format!("{}.model.json", m.params.kind()),
            "metrics": m.metrics,
        })).collect::<Vec<_>>(),
    });
    write_json(&metrics_file, &summary)?;
    let roc_file = args.out.join("roc.svg");
    roc_svg(
        &roc_file,
        &format!(
            "ROC, held-out as-of times from {}",
            format_rfc3339(sp.test_from)
        ),
        &curves,
    )?;
    print_report(&models, &training, sp.test.len(), auc_without);
    println!(
        "wrote {}, {} and {}",
        model_files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        metrics_file.display(),
        roc_file.display()
    );
    Ok(Trained {
        models,
        model_files,
        metrics_file,
        roc_file,
    })
}

/// The held-out metrics of `model` (without `first_as_of`), and its `p` per test sample.
fn evaluate(model: &Model, test: &[&Sample], cat: &Catalogue) -> (Metrics, Vec<f64>) {
    let labels: Vec<bool> = test.iter().map(|s| s.label).collect();
    let p: Vec<f64> = test
        .iter()
        .map(|s| model.probability(&s.x(model.p_impute)))
        .collect();
    // S with this model's Q, as the pipeline computes it.
    let s_with: Vec<i64> = test
        .iter()
        .map(|s| {
            assemble(
                s.r.clone(),
                s.p,
                Some(model),
                Triggers::default(),
                false,
                |_| Vec::new(),
                cat,
            )
            .s10
            .unwrap_or(0)
        })
        .collect();
    let s_without: Vec<i64> = test.iter().map(|s| round_half_away(10.0 * s.s)).collect();
    let red = |s10: &[i64]| -> Vec<bool> {
        s10.iter()
            .map(|s| score_colour(*s, cat) == Colour::Red)
            .collect()
    };
    let neg = |s10: &[i64]| -> Vec<f64> { s10.iter().map(|s| -(*s as f64)).collect() };
    let warned = |s10: &[i64]| -> Vec<bool> {
        s10.iter()
            .map(|s| matches!(score_colour(*s, cat), Colour::Yellow | Colour::Red))
            .collect()
    };
    // The samples not red at their as-of time.
    let early: Vec<usize> = (0..test.len()).filter(|&i| !test[i].red_now).collect();
    let pick = |xs: &[f64]| -> Vec<f64> { early.iter().map(|&i| xs[i]).collect() };
    let flag = |xs: &[bool]| -> Vec<bool> { early.iter().map(|&i| xs[i]).collect() };
    let early_labels = flag(&labels);
    let by_model: Vec<bool> = p.iter().map(|p| *p >= 0.5).collect();
    let metrics = Metrics {
        samples: test.len() as u64,
        positives: labels.iter().filter(|l| **l).count() as u64,
        first_as_of: String::new(),
        early_warning: EarlyWarning {
            samples: early.len() as u64,
            positives: early_labels.iter().filter(|l| **l).count() as u64,
            auc: auc(&pick(&p), &early_labels),
            auc_score_with_model: auc(&pick(&neg(&s_with)), &early_labels),
            auc_score_without_model: auc(&pick(&neg(&s_without)), &early_labels),
            warned_by_model: at_red(&flag(&by_model), &early_labels),
            warned_with_model: at_red(&flag(&warned(&s_with)), &early_labels),
            warned_without_model: at_red(&flag(&warned(&s_without)), &early_labels),
        },
        auc: auc(&p, &labels),
        auc_score_with_model: auc(&neg(&s_with), &labels),
        auc_score_without_model: auc(&neg(&s_without), &labels),
        red_with_model: at_red(&red(&s_with), &labels),
        red_without_model: at_red(&red(&s_without), &labels),
        calibration: calibration(&p, &labels, 10),
    };
    (metrics, p)
}

/// The settings stored in a model file.
fn settings(args: &TrainArgs) -> BTreeMap<String, f64> {
    [
        ("every_months", f64::from(args.every_months)),
        ("warmup_months", f64::from(args.warmup_months)),
        ("horizon_months", f64::from(args.horizon_months)),
        ("test_share", args.test_share),
        ("logistic_alpha", args.alpha),
        ("forest_trees", f64::from(args.trees)),
        ("forest_max_depth", f64::from(args.max_depth)),
        ("forest_min_samples_leaf", args.min_samples_leaf as f64),
        ("forest_seed", args.forest_seed as f64),
        ("forest_positive_weight", args.forest_positive_weight as f64),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn median(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = xs.collect();
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").map_err(TrainError::io(path))
}

fn print_report(models: &[Model], training: &TrainingData, test: usize, auc_without: f64) {
    println!(
        "training: {} samples ({} positive) from {} to {}; test: {test} samples",
        training.samples, training.positives, training.first_as_of, training.last_as_of
    );
    let row = |name: &str, auc: f64, red: &AtRed| {
        println!(
            "{name:<24} {auc:>7.3} {:>10} {:>10.3} {:>10.3}",
            red.flagged, red.precision, red.recall
        );
    };
    if let Some(e) = models.first().map(|m| m.metrics.early_warning) {
        println!();
        println!(
            "early warning: the {} test samples not red at their as-of time ({} positive)",
            e.samples, e.positives
        );
        println!(
            "{:<24} {:>7} {:>10} {:>10} {:>10}",
            "score", "AUC", "warned", "precision", "recall"
        );
        println!("(warned: S yellow or red; for p: p ≥ 0.5)");
        row(
            "S without model",
            e.auc_score_without_model,
            &e.warned_without_model,
        );
    }
    for m in models {
        let e = &m.metrics.early_warning;
        row(&format!("{} p", m.params.kind()), e.auc, &e.warned_by_model);
        row(
            &format!("S with {}", m.params.kind()),
            e.auc_score_with_model,
            &e.warned_with_model,
        );
    }
    println!();
    println!("all test samples (enterprises already red included: easy positives)");
    println!(
        "{:<24} {:>7} {:>10} {:>10} {:>10}",
        "score", "AUC", "red flags", "precision", "recall"
    );
    if let Some(m) = models.first() {
        row("S without model", auc_without, &m.metrics.red_without_model);
    }
    for m in models {
        println!(
            "{:<24} {:>7.3}",
            format!("{} p", m.params.kind()),
            m.metrics.auc
        );
        row(
            &format!("S with {}", m.params.kind()),
            m.metrics.auc_score_with_model,
            &m.metrics.red_with_model,
        );
    }
    for m in models {
        println!();
        println!("calibration of {} ({}):", m.params.kind(), m.model_version);
        println!(
            "{:>11} {:>8} {:>10} {:>9}",
            "p", "samples", "predicted", "observed"
        );
        for b in &m.metrics.calibration {
            println!(
                "{:>5.1}–{:<5.1} {:>8} {:>10.3} {:>9.3}",
                b.from, b.to, b.samples, b.mean_predicted, b.observed
            );
        }
    }
}
