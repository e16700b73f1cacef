//! Colour shares on generated data, from the reference computation at the end of the
//! generated period: `cargo run --release -p rules --example calibrate -- [enterprises] [seed]`.

use std::collections::BTreeMap;

use rules::catalogue::Catalogue;
use rules::event::Event;
use rules::generate::{generate, GenConfig};
use rules::lifecycle::Accepted;
use rules::reference::evaluate_at;
use rules::score::{published, score_colour, Colour};
use rules::time::add_years;
use sha2::{Digest, Sha256};

fn main() {
    let mut args = std::env::args().skip(1);
    let cfg = GenConfig {
        enterprises: args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000),
        seed: args.next().and_then(|a| a.parse().ok()).unwrap_or(7),
        ..GenConfig::default()
    };
    let mut log = Vec::new();
    let summary = generate(&cfg, &mut |_| {}, &mut |r| {
        if let Ok(event) = serde_json::from_slice::<Event>(&r.line) {
            let digest = Sha256::digest(&r.line).into();
            log.push(Accepted {
                v: event.ingest_time,
                digest,
                event,
            });
        }
    })
    .expect("valid config");
    let cat = Catalogue::embedded();
    let end = add_years(cfg.start, cfg.years);
    let states = evaluate_at(&log, end, &cat);
    let mut shares: BTreeMap<Colour, usize> = BTreeMap::new();
    let mut plain: BTreeMap<Colour, usize> = BTreeMap::new();
    for (_, e) in states.values() {
        let c = e
            .s10
            .map_or(Colour::None, |s| published(score_colour(s, &cat), e.cap));
        *shares.entry(c).or_default() += 1;
        *plain.entry(e.score_colour).or_default() += 1;
    }
    println!("records {} enterprises {}", summary.records, states.len());
    for (c, n) in &shares {
        let p = plain.get(c).copied().unwrap_or(0);
        println!(
            "{:<7} {:>6} {:>6.1}%   score colour only {:>6.1}%",
            c.as_str(),
            n,
            100.0 * *n as f64 / states.len() as f64,
            100.0 * p as f64 / states.len() as f64
        );
    }
}
