//! Engine v2's record table against the present lifecycle (D93, D94, D99, D100): a
//! generated history's winning records enter each enterprise's `rules::table::Table` one
//! change at a time (`Table::update`, which returns the records whose lifecycle view
//! changed), against `rules::lifecycle::resolve_enterprise` over the enterprise's winners
//! after each change (what an engine without the table does, deriving the facts on top).
//! The identity stage's winners are computed first and not timed; so is `Fields::of`,
//! which is timed on its own. Then the facts: after each change
//! `fact::derive`, `status::of_enterprise` and `fact::commitment_events` over the
//! resolution, against `table::enterprise_facts` from scratch and against
//! `table::fact_changes` (only the records and groups a change reaches, and the status
//! steps of the records whose view or facts changed; the facts its changes add up to are
//! checked against those from scratch).
//!
//! ```sh
//! cargo run --release -p engine --example table_bench -- 20000 1 30   # ENTERPRISES YEARS [DAYS]
//! ```
//!
//! Prints one Markdown row: the history, the winner changes, the medians of three
//! interleaved runs of each (µs per change) and their ratios, the table's heap bytes per record,
//! its spilled records and the bench's peak resident memory.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use rules::catalogue::Catalogue;
use rules::event::Feed;
use rules::fact::{commitment_events, derive};
use rules::lifecycle::{resolve_enterprise, resolve_versions, Accepted};
use rules::status::of_enterprise;
use rules::table::{enterprise_facts, fact_changes, Context, Fields, KindSet, Seed, Table};
use rules::uscc::Uscc;
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
    let seed = Seed::new(0x2026_1206);

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

    // Event ids by fingerprint, for the rare ties on both times (the engine's store).
    let ids: HashMap<u64, &str> = log
        .iter()
        .map(|a| (of(a).rid, a.event.event_id.as_str()))
        .collect();
    let ties = |x: u64, y: u64| ids[&x].cmp(ids[&y]);
    let owners: Vec<Uscc> = {
        let mut o = vec![None; ents.len()];
        for (u, i) in &ents {
            o[*i] = Some(Uscc::admitted(u));
        }
        o.into_iter()
            .map(|u| u.expect("every enterprise"))
            .collect()
    };
    let offsite = KindSet::offsite(&cat);
    let cx = |ent: usize| Context {
        own: owners[ent],
        seed,
        ties: &ties,
        cat: &cat,
        offsite: &offsite,
    };
    // How each change is applied: the lifecycle's deltas alone, then the enterprise's facts
    // from scratch, or the changes of its facts (`fact_changes`).
    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        Lifecycle,
        Scratch,
        Changes,
    }
    let table_run = |mode: Mode| {
        let mut tables: Vec<Table> = vec![Table::default(); ents.len()];
        let (mut deltas, mut derived) = (0usize, 0isize);
        let t = Instant::now();
        for s in &steps {
            let mut changes = Vec::with_capacity(2);
            changes.extend(s.old.map(|a| (of(a), -1)));
            changes.extend(s.new.map(|a| (of(a), 1)));
            let table = &mut tables[s.ent];
            match mode {
                Mode::Lifecycle => {
                    deltas += table.update(&changes, &cat).expect("no collision").len();
                }
                Mode::Scratch => {
                    table.update(&changes, &cat).expect("no collision");
                    derived = enterprise_facts(table, &cx(s.ent)).facts.len() as isize;
                }
                Mode::Changes => {
                    let c = fact_changes(table, &changes, &cx(s.ent)).expect("no collision");
                    derived += c.facts.added.len() as isize - c.facts.removed.len() as isize;
                }
            }
        }
        (t.elapsed().as_secs_f64(), tables, deltas, derived)
    };
    let resolve_run = |facts: bool| {
        let mut winners: Vec<BTreeMap<*const Accepted, &Accepted>> =
            vec![BTreeMap::new(); ents.len()];
        let (mut known, mut derived) = (0usize, 0usize);
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
            let resolved = resolve_enterprise(&list, &cat);
            known += usize::from(resolved.is_known());
            if facts {
                let facts = derive(&resolved, &cat);
                derived = facts.len()
                    + of_enterprise(&resolved, &facts).len()
                    + commitment_events(&resolved, &cat).len();
            }
        }
        (t.elapsed().as_secs_f64(), known, derived)
    };

    let (mut table_s, mut resolve_s) = (Vec::new(), Vec::new());
    let (mut table_f, mut derive_f, mut changes_f) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..3 {
        let (s, tables, deltas, _) = table_run(Mode::Lifecycle);
        table_s.push(s);
        last = Some((tables, deltas));
        let (s, known, _) = resolve_run(false);
        resolve_s.push(s);
        assert!(known > 0, "the resolution ran");
        let (s, tables, _, _) = table_run(Mode::Scratch);
        table_f.push(s);
        let from_scratch: usize = (0..tables.len())
            .map(|e| enterprise_facts(&tables[e], &cx(e)).facts.len())
            .sum();
        drop(tables);
        let (s, _, _) = resolve_run(true);
        derive_f.push(s);
        let (s, _, _, from_changes) = table_run(Mode::Changes);
        changes_f.push(s);
        assert_eq!(
            from_changes as usize, from_scratch,
            "the changes add up to the facts"
        );
    }
    let (tables, deltas) = last.expect("three runs");
    let records: usize = tables.iter().map(Table::len).sum();
    let bytes: usize = tables.iter().map(Table::heap_bytes).sum();
    let spilled: usize = tables.iter().map(Table::spilled).sum();
    let per = |s: f64| s * 1e6 / steps.len() as f64;
    let (table_us, resolve_us) = (per(median(table_s)), per(median(resolve_s)));
    let (table_f_us, derive_f_us) = (per(median(table_f)), per(median(derive_f)));
    let changes_us = per(median(changes_f));
    println!(
        "| {enterprises} × {years} y{} | {} records, {} winner changes, {deltas} deltas | Fields::of {fields_us:.3} µs | table {table_us:.3} µs | resolve {resolve_us:.3} µs | {:.1}× | resolve + derive + statuses + events {derive_f_us:.3} µs | table + facts from scratch {table_f_us:.3} µs | fact, status and event changes {changes_us:.3} µs | {:.1}× | {:.1} B per record | {spilled} spilled | peak {} MiB |",
        days.map_or(String::new(), |d| format!(" ({d} days)")),
        log.len(),
        steps.len(),
        resolve_us / table_us,
        derive_f_us / changes_us,
        bytes as f64 / records as f64,
        support::peak_kib() / 1024,
    );
}
