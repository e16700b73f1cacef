//! Deterministic test data: synthetic enterprises and their input records on all eleven
//! feeds, in arrival order, with duplicates, corrections, late arrivals and malformed lines.
//!
//! Pure: no files and no threads. The `steward generate` command writes what [`generate`]
//! emits.
//!
//! # How records are made
//! - Every enterprise draws from its own random stream, derived from `(seed, index)`, so the
//!   work per enterprise does not depend on the order of enterprises; relationships
//!   (shareholders, investments, shared legal representatives) name partners by index.
//! - An enterprise gets a latent [`RiskLevel`] from [`GenConfig::risk`], an establishment
//!   date, routine filings (monthly tax, social insurance, scores, grades, annual reports,
//!   inspections, commitments) and risk-driven event chains (penalties, lists, court cases,
//!   overdue loans …) with their follow-ups, retractions and repairs.
//! - Records are kept in a compact numeric form, sorted by arrival (`ingest_time` plus the
//!   delay of late and duplicate deliveries) and only then serialised with
//!   `serde_json::to_vec(&Event)`, so every valid line is in canonical form.
//! - Large configurations are produced in several arrival-time windows: each pass generates
//!   every enterprise again and keeps only the records arriving in its window, which bounds
//!   memory at about [`WINDOW_RECORDS`] compact records.

mod config;
mod enterprise;
mod hand_made;
mod ids;
pub mod ops;
mod record;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;

pub use config::{
    GenConfig, GenConfigError, RiskLevel, RiskLevelConfig, RiskLevels, MAX_ENTERPRISES,
};
pub use hand_made::{hand_made, hand_made_model};

use record::{Ctx, Delivery, Rec};
use rules::event::Feed;
use rules::time::{add_years, Ts};

/// One generated input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenRecord {
    /// The feed (topic) the line belongs to; malformed lines keep their original's feed.
    pub feed: Feed,
    /// One JSON object, no newline (malformed lines may not be JSON).
    pub line: Vec<u8>,
}

/// What [`generate`] emitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GenSummary {
    /// Enterprises generated.
    pub enterprises: u64,
    /// Lines emitted, all kinds of delivery included.
    pub records: u64,
    /// Lines per feed, all kinds of delivery included.
    pub per_feed: BTreeMap<Feed, u64>,
    /// Malformed lines (meant to be dead-lettered).
    pub malformed: u64,
    /// Second deliveries of identical bytes.
    pub duplicates: u64,
    /// Corrected versions (`version` 2, `PEN.CORRECTED`), first deliveries only.
    pub corrections: u64,
    /// Original lines delivered late, after lines ingested later than them (by at most the
    /// lateness).
    pub late: u64,
}

/// Upper bound on compact records held at once; more records are produced in several
/// arrival-time windows.
pub const WINDOW_RECORDS: u64 = 2_000_000;

/// Expected records per enterprise and year on the default mix, used to size windows.
const RECORDS_PER_ENTERPRISE_YEAR: u64 = 60;

/// Generates every record of `cfg`, calling `sink` with each line in arrival order and
/// `progress` with the number of enterprises done (scaled across passes, ending at
/// `cfg.enterprises`). The same configuration always yields the same lines.
pub fn generate(
    cfg: &GenConfig,
    progress: &mut dyn FnMut(u64),
    sink: &mut dyn FnMut(GenRecord),
) -> Result<GenSummary, GenConfigError> {
    run_windows(cfg, WINDOW_RECORDS, progress, sink)
}

/// [`generate`] with windows sized for `window_records` expected records.
fn run_windows(
    cfg: &GenConfig,
    window_records: u64,
    progress: &mut dyn FnMut(u64),
    sink: &mut dyn FnMut(GenRecord),
) -> Result<GenSummary, GenConfigError> {
    cfg.validate()?;
    let usccs = ids::usccs(cfg);
    let ctx = Ctx {
        seed: cfg.seed,
        usccs: &usccs,
    };
    let n = u64::from(cfg.enterprises);
    let estimate = n * u64::from(cfg.years) * RECORDS_PER_ENTERPRISE_YEAR;
    let passes = estimate.div_ceil(window_records).max(1);
    let end = add_years(cfg.start, cfg.years);
    let bound = |pass: u64| match pass {
        0 => Ts::MIN,
        p if p == passes => Ts::MAX,
        p => cfg.start + ((end - cfg.start) as i128 * i128::from(p) / i128::from(passes)) as Ts,
    };
    let mut summary = GenSummary {
        enterprises: n,
        ..GenSummary::default()
    };
    let mut window = Vec::new();
    let mut one = Vec::new();
    for pass in 0..passes {
        let (from, to) = (bound(pass), bound(pass + 1));
        for ent in 0..cfg.enterprises {
            enterprise::generate(cfg, ent, &mut one);
            window.extend(one.drain(..).filter(|r| (from..to).contains(&r.arrival())));
            let done = u64::from(ent) + 1;
            if done % 1024 == 0 || done == n {
                progress((pass * n + done) / passes);
            }
        }
        window.sort_unstable_by_key(Rec::order_key);
        for rec in window.drain(..) {
            summary.count(&rec);
            let mut rng = ids::rng(ids::mix64(cfg.seed ^ u64::from(rec.seq)), rec.ent);
            let line = rec.to_line(&ctx, &mut rng);
            sink(GenRecord {
                feed: rec.body.feed(),
                line,
            });
        }
    }
    Ok(summary)
}

impl GenSummary {
    fn count(&mut self, rec: &Rec) {
        self.records += 1;
        *self.per_feed.entry(rec.body.feed()).or_default() += 1;
        match rec.delivery {
            Delivery::Malformed(_) => self.malformed += 1,
            Delivery::Duplicate => self.duplicates += 1,
            Delivery::Original => {
                self.corrections += u64::from(rec.version > 1);
                self.late += u64::from(rec.delay > 0);
            }
        }
    }
}
