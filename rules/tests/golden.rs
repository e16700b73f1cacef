//! Golden test on a small generated dataset: the decoded records' final evaluation (colour,
//! S₁₀, triggers and all 49 r-values of every enterprise) must match the committed file.
//! After an intended model change, rewrite it with `UPDATE_GOLDEN=1 cargo test -p rules --test golden`
//! and review the diff.

use std::fmt::Write as _;

mod generated;

use generator::GenConfig;
use rules::catalogue::Catalogue;
use rules::reference::evaluate_at;
use rules::score::Colour;
use rules::time::add_years;

#[test]
fn small_generated_dataset_matches_golden() {
    let cfg = GenConfig {
        enterprises: 150,
        seed: 3,
        years: 2,
        ..GenConfig::default()
    };
    let (log, rejected) = generated::accepted(&cfg);
    let cat = Catalogue::embedded();
    let states = evaluate_at(&log, add_years(cfg.start, cfg.years), None, &cat);
    let mut text = format!(
        "records {} rejected {rejected} enterprises {}\n",
        log.len(),
        states.len()
    );
    for (uscc, (_, e)) in &states {
        let colour = e.colour_without_hysteresis();
        let r: Vec<String> = e.r.iter().map(|x| format!("{x}")).collect();
        writeln!(
            text,
            "{uscc} {} s10={:?} [{}] r={}",
            colour.as_str(),
            e.s10,
            e.triggers.codes().collect::<Vec<_>>().join(","),
            r.join(",")
        )
        .expect("write to string");
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/small.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &text).expect("write golden file");
    }
    let want = std::fs::read_to_string(path).expect("golden file (UPDATE_GOLDEN=1 creates it)");
    assert!(
        states.len() >= 150,
        "every generated enterprise is evaluated"
    );
    assert!(
        text == want,
        "evaluation differs from {path}; first differing line: {:?}",
        text.lines().zip(want.lines()).find(|(a, b)| a != b)
    );
}

/// With default generator settings the final colour shares land near the spec's
/// calibration targets (about 5% blue, 75% green, 15% yellow, 5% red).
#[test]
fn default_colour_shares_are_near_the_targets() {
    let cfg = GenConfig {
        enterprises: 3_000,
        seed: 11,
        ..GenConfig::default()
    };
    let (log, _) = generated::accepted(&cfg);
    let cat = Catalogue::embedded();
    let states = evaluate_at(&log, add_years(cfg.start, cfg.years), None, &cat);
    let share = |c: Colour| {
        let n = states
            .values()
            .filter(|(_, e)| e.colour_without_hysteresis() == c)
            .count();
        100.0 * n as f64 / states.len() as f64
    };
    let shares = [Colour::Blue, Colour::Green, Colour::Yellow, Colour::Red].map(share);
    let bounds = [(3.0, 8.0), (68.0, 80.0), (11.0, 19.0), (2.5, 7.5)];
    for ((c, s), (lo, hi)) in ["blue", "green", "yellow", "red"]
        .iter()
        .zip(shares)
        .zip(bounds)
    {
        assert!(
            (lo..=hi).contains(&s),
            "{c} {s:.1}% outside {lo}–{hi}%: {shares:?}"
        );
    }
}
