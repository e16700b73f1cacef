//! What the engine's benches share: their arguments, their generated input and the peak
//! resident memory they report.

use std::collections::BTreeMap;
use std::sync::Arc;

use engine::ingest::Ingest;
use generator::{generate, GenConfig};
use rules::catalogue::Catalogue;
use rules::event::Feed;
use rules::lifecycle::Accepted;
use rules::time::{Ts, DAY};

/// The `i`-th positional argument (options starting with `--` skipped) as a whole number,
/// or `default`.
pub fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .filter(|a| !a.starts_with("--"))
        .nth(i)
        .map(|a| a.parse().expect("a whole number"))
        .unwrap_or(default)
}

/// The generated history of `enterprises` enterprises over `years` years, decoded and
/// admitted as `steward run` admits it: the whole history, or with `days` only the records
/// ingested in its first `days` days (the historical load comes first, so 30 days give
/// about ten records per enterprise: the pipeline issue's shape).
pub fn generated(
    cat: &Catalogue,
    enterprises: u32,
    years: u32,
    days: Option<i64>,
) -> Arc<[Arc<Accepted>]> {
    let cfg = GenConfig {
        enterprises,
        years,
        ..GenConfig::default()
    };
    let until = days.map_or(Ts::MAX, |d| cfg.start + d * DAY);
    let mut ingest = Ingest::new(cat, std::io::sink());
    let mut offsets: BTreeMap<Feed, u64> = BTreeMap::new();
    generate(&cfg, &mut |_| {}, &mut |r| {
        let off = offsets.entry(r.feed).or_default();
        *off += 1;
        if let Ok(Some(e)) = ingest.decode(r.feed, *off, &r.line) {
            if e.ingest_time < until {
                ingest.admit(e);
            }
        }
    })
    .expect("valid generator configuration");
    engine::replay::shared(std::mem::take(&mut ingest.log))
}

/// Peak resident memory of this process, in KiB.
pub fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}
