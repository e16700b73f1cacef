//! Engine v2's record table against the present lifecycle (D93, D94): a generated history's
//! winning records enter each enterprise's `rules::table::Table` one change at a time
//! (`Table::update`, which returns the records whose lifecycle view changed), against
//! `rules::lifecycle::resolve_enterprise` over the enterprise's winners after each change
//! (what an engine without parts does; the present engine does it per part, D65, and
//! derives the facts on top). The identity stage's winners are computed first and not
//! timed; so is `Fields::of`, which is timed on its own.
//!
//! ```sh
//! cargo run --release -p engine --example table_bench -- 20000 1 30   # ENTERPRISES YEARS [DAYS]
//! ```
//!
//! Prints one Markdown row: the history, the winner changes, the medians of three
//! interleaved runs of each (µs per change), their ratio, the table's heap bytes per record,
//! its spilled records and the bench's peak resident memory.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use rules::catalogue::Catalogue;
use rules::event::Feed;
use rules::lifecycle::{resolve_enterprise, resolve_versions, Accepted};
use rules::table::{Fields, Seed, Table};
use rules::CompactString;

/// The allocator `steward` uses.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One winner change of one enterprise: the old winner and the new.
struct Step<'a> {
    ent: usize,
    old: Option<&'a Accepted>,
    new: Option<&'a Accepted>,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let enterprises = support::arg(1, 20_000) as u32;
    let years = support::arg(2, 1) as u32;
    let days = Some(support::arg(3, 30) as i64).filter(|d| *d > 0);
    let cat = Catalogue::embedded();
    let log = support::generated(&cat, enterprises, years, days);
    let seed = Seed(0x2026_1206);

    // The identity stage, untimed: each record's change of its id's winner.
    let mut ents: HashMap<&str, usize> = HashMap::new();
    let mut versions: HashMap<(Feed, CompactString), Vec<&Accepted>> = HashMap::new();
    let mut steps = Vec::new();
    for a in log.iter() {
        let n = ents.len();
        let ent = *ents.entry(a.event.uscc.as_str()).or_insert(n);
        let vs = versions.entry(a.id()).or_default();
        let old = resolve_versions(vs).winner;
        vs.push(a);
        let new = resolve_versions(vs).winner;
        if old.map(std::ptr::from_ref) != new.map(std::ptr::from_ref) {
            steps.push(Step { ent, old, new });
        }
    }

    let t = Instant::now();
    let fields: HashMap<*const Accepted, Fields> = log
        .iter()
        .map(|a| (std::ptr::from_ref(&**a), Fields::of(a, seed)))
        .collect();
    let fields_us = t.elapsed().as_secs_f64() * 1e6 / log.len() as f64;
    let of = |a: &Accepted| fields[&std::ptr::from_ref(a)];

    let table_run = || {
        let mut tables: Vec<Table> = vec![Table::default(); ents.len()];
        let mut deltas = 0usize;
        let t = Instant::now();
        for s in &steps {
            let mut changes = Vec::with_capacity(2);
            changes.extend(s.old.map(|a| (of(a), -1)));
            changes.extend(s.new.map(|a| (of(a), 1)));
            let d = tables[s.ent].update(&changes, &cat).expect("no collision");
            deltas += d.len();
        }
        (t.elapsed().as_secs_f64(), tables, deltas)
    };
    let resolve_run = || {
        let mut winners: Vec<BTreeMap<*const Accepted, &Accepted>> =
            vec![BTreeMap::new(); ents.len()];
        let mut known = 0usize;
        let t = Instant::now();
        for s in &steps {
            let w = &mut winners[s.ent];
            if let Some(a) = s.old {
                w.remove(&std::ptr::from_ref(a));
            }
            if let Some(a) = s.new {
                w.insert(std::ptr::from_ref(a), a);
            }
            let list: Vec<&Accepted> = w.values().copied().collect();
            known += usize::from(resolve_enterprise(&list, &cat).is_known());
        }
        (t.elapsed().as_secs_f64(), known)
    };

    let (mut table_s, mut resolve_s) = (Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..3 {
        let (s, tables, deltas) = table_run();
        table_s.push(s);
        last = Some((tables, deltas));
        let (s, known) = resolve_run();
        resolve_s.push(s);
        assert!(known > 0, "the resolution ran");
    }
    let (tables, deltas) = last.expect("three runs");
    let records: usize = tables.iter().map(Table::len).sum();
    let bytes: usize = tables.iter().map(Table::heap_bytes).sum();
    let spilled: usize = tables.iter().map(Table::spilled).sum();
    let per = |s: f64| s * 1e6 / steps.len() as f64;
    let (table_us, resolve_us) = (per(median(table_s)), per(median(resolve_s)));
    println!(
        "| {enterprises} × {years} y{} | {} records, {} winner changes, {deltas} deltas | Fields::of {fields_us:.3} µs | table {table_us:.3} µs | resolve {resolve_us:.3} µs | {:.1}× | {:.1} B per record | {spilled} spilled | peak {} MiB |",
        days.map_or(String::new(), |d| format!(" ({d} days)")),
        log.len(),
        steps.len(),
        resolve_us / table_us,
        bytes as f64 / records as f64,
        support::peak_kib() / 1024,
    );
}
