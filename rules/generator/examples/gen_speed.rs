//! Measures the generator's throughput: `cargo run --release -p generator --example gen_speed [enterprises]`.

use std::time::Instant;

use generator::{generate, GenConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut cfg = GenConfig::default();
    if let Some(n) = std::env::args().nth(1) {
        cfg.enterprises = n.parse()?;
    }
    let started = Instant::now();
    let mut bytes = 0u64;
    let summary = generate(&cfg, &mut |_| {}, &mut |r| bytes += r.line.len() as u64 + 1)?;
    let secs = started.elapsed().as_secs_f64();
    println!("{}", serde_json::to_string_pretty(&summary)?);
    println!(
        "{} records, {:.1} MB in {secs:.2} s: {:.0} records/s; {:.1} records per enterprise-year",
        summary.records,
        bytes as f64 / 1e6,
        summary.records as f64 / secs,
        summary.records as f64 / f64::from(cfg.enterprises) / f64::from(cfg.years),
    );
    Ok(())
}
