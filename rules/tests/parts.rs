//! `rules::part` (D65): stage 2 over the parts of an enterprise's records, taken together,
//! equals stage 2 over the whole, on generated histories (at every tenth of their arrival)
//! and on hand-made records for each reason a record stays in the core part.

// Shared builders, of which this test uses one.
#[allow(dead_code)]
mod common;
mod generated;

use std::collections::BTreeMap;

use common::rec;
use generator::GenConfig;
use rules::catalogue::Catalogue;
use rules::lifecycle::{resolve_versions, Accepted};
use rules::part::{outcome, Detachable, Outcome, Part, Parts};
use serde_json::json;

/// The parts' outcomes as one: what an engine that keeps them per part emits.
fn merged<'a>(parts: &Parts<&'a Accepted>, cat: &Catalogue) -> Outcome<'a> {
    let mut all = Outcome::default();
    for (p, rs) in parts.parts() {
        let o = outcome(rs, p, cat);
        all.dead.extend(o.dead);
        all.statuses.extend(o.statuses);
        all.facts.extend(o.facts);
        all.commitments.extend(o.commitments);
        if p == Part::Core {
            all.known = o.known;
        }
    }
    sorted(all)
}

fn sorted(mut o: Outcome<'_>) -> Outcome<'_> {
    o.dead.sort();
    o.statuses.sort();
    o.facts.sort();
    o.commitments.sort();
    o
}

/// The parts of `winners`, placed all at once.
fn placed<'a>(winners: &[&'a Accepted], cat: &Catalogue) -> Parts<&'a Accepted> {
    let mut parts = Parts::default();
    parts.update(winners.iter().map(|a| (*a, 1)), &Detachable::of(cat));
    parts
}

/// Checks that the parts of an enterprise's winners give the outcome of the whole.
fn check(parts: &Parts<&Accepted>, winners: &[&Accepted], cat: &Catalogue) {
    let whole = sorted(outcome(winners, Part::Core, cat));
    assert_eq!(merged(parts, cat), whole, "parts differ from the whole");
}

/// The part of each of `records`, checked against the whole.
fn parts_of(records: &[Accepted], cat: &Catalogue) -> Vec<Part> {
    let ws: Vec<&Accepted> = records.iter().collect();
    let parts = placed(&ws, cat);
    check(&parts, &ws, cat);
    ws.iter()
        .map(|a| {
            parts
                .parts()
                .find(|(_, rs)| rs.contains(a))
                .map(|(p, _)| p)
                .expect("every record has a part")
        })
        .collect()
}

/// Every enterprise's winning versions among `log`.
fn winners<'a>(log: &[&'a Accepted]) -> BTreeMap<String, Vec<&'a Accepted>> {
    let mut versions: BTreeMap<_, Vec<&Accepted>> = BTreeMap::new();
    for a in log {
        versions.entry(a.id()).or_default().push(a);
    }
    let mut out: BTreeMap<String, Vec<&Accepted>> = BTreeMap::new();
    for vs in versions.values() {
        if let Some(w) = resolve_versions(vs).winner {
            out.entry(w.event.uscc.to_string()).or_default().push(w);
        }
    }
    for ws in out.values_mut() {
        ws.sort();
    }
    out
}

#[test]
fn parts_kept_as_records_arrive_equal_the_whole_on_generated_histories() {
    let cat = Catalogue::embedded();
    let kinds = Detachable::of(&cat);
    let (mut detached, mut records) = (0, 0);
    for seed in [1, 2] {
        let cfg = GenConfig {
            enterprises: 40,
            years: 2,
            seed,
            ..GenConfig::default()
        };
        let (mut log, _) = generated::accepted(&cfg);
        log.sort_by_key(|a| a.v);
        // Each enterprise's parts, kept as each tenth of the history arrives: a new
        // version replaces its predecessor as the winner.
        let mut kept: BTreeMap<String, Parts<&Accepted>> = BTreeMap::new();
        let mut before: BTreeMap<String, Vec<&Accepted>> = BTreeMap::new();
        for tenth in 1..=10 {
            let seen: Vec<&Accepted> = log[..log.len() * tenth / 10].iter().collect();
            let now = winners(&seen);
            for (u, ws) in &now {
                let old = before.get(u).map_or(&[][..], Vec::as_slice);
                let changes = ws
                    .iter()
                    .filter(|a| !old.contains(a))
                    .map(|a| (*a, 1))
                    .chain(old.iter().filter(|a| !ws.contains(a)).map(|a| (*a, -1)));
                let parts = kept.entry(u.clone()).or_default();
                parts.update(changes, &kinds);
                check(parts, ws, &cat);
                // Placed one by one, as all at once.
                let all: Vec<_> = placed(ws, &cat)
                    .parts()
                    .map(|(p, rs)| (p, rs.to_vec()))
                    .collect();
                let one: Vec<_> = parts.parts().map(|(p, rs)| (p, rs.to_vec())).collect();
                assert_eq!(one, all, "kept parts differ from placed parts");
                records += ws.len();
                detached += ws.len() - parts.members(Part::Core).len();
            }
            before = now;
        }
    }
    // Most records of a long history are detached: the check is not vacuous.
    assert!(
        detached * 2 > records,
        "{detached} of {records} records detached"
    );
}

fn established() -> Accepted {
    rec(
        1,
        "REG",
        "ESTABLISHED",
        "re",
        "2020-03-01T00:00:00Z",
        json!({}),
    )
}

fn paid(id: &str, period: &str) -> Accepted {
    rec(
        1,
        "TAX",
        "PAID",
        id,
        "2022-04-10T00:00:00Z",
        json!({"period": period, "amount_fen": 500_000}),
    )
}

fn score(id: &str) -> Accepted {
    rec(
        1,
        "PER",
        "SCORE",
        id,
        "2022-05-01T00:00:00Z",
        json!({"person_hash": "P1", "score": 700, "scale_max": 1000}),
    )
}

fn declared(id: &str, et: &str, sales: i64) -> Accepted {
    rec(
        1,
        "TAX",
        "DECLARED",
        id,
        et,
        json!({"period": "2022-03", "sales_fen": sales}),
    )
}

#[test]
fn bulk_records_are_detached_when_nothing_reads_them() {
    let cat = Catalogue::embedded();
    let rs = [
        established(),
        paid("t1", "2022-03"),
        score("s1"),
        declared("d1", "2022-04-15T00:00:00Z", 100),
        declared("d2", "2022-04-20T00:00:00Z", 0),
    ];
    let parts = parts_of(&rs, &cat);
    assert_eq!(parts[0], Part::Core);
    assert!(parts[1..].iter().all(|p| *p != Part::Core), "{parts:?}");
    // A period's declarations share a part (the latest of them counts).
    assert_eq!(parts[3], parts[4]);
    assert_ne!(parts[1], parts[2]);
}

/// A retraction of another kind that names the declaration `d1` (`target_mismatch`).
fn lifted_naming_d1() -> Accepted {
    rec(
        1,
        "TAX",
        "ABNORMAL_LIFTED",
        "x2",
        "2022-06-03T00:00:00Z",
        json!({"ref_event_id": "d1"}),
    )
}

#[test]
fn without_establishment_every_record_is_core() {
    let cat = Catalogue::embedded();
    let parts = parts_of(&[paid("t1", "2022-03"), score("s1")], &cat);
    assert_eq!(parts, vec![Part::Core, Part::Core]);
}

#[test]
fn a_named_record_and_its_period_stay_in_the_core() {
    let cat = Catalogue::embedded();
    // A retraction of another kind names a score (target_mismatch), a repair names a
    // payment, a retraction names one declaration of a period.
    let mismatch = rec(
        1,
        "PER",
        "DISHONEST_REMOVED",
        "x1",
        "2022-06-01T00:00:00Z",
        json!({"ref_event_id": "s1", "person_hash": "P1"}),
    );
    let repair = rec(
        1,
        "RPR",
        "COMPLETED",
        "r1",
        "2022-06-02T00:00:00Z",
        json!({"target_feed": "TAX", "target_event_id": "t1", "repair_type": "TERMINATE_PUBLICITY", "effective_time": "2022-06-02T00:00:00Z"}),
    );
    let lifted = lifted_naming_d1();
    let rs = [
        established(),
        paid("t1", "2022-03"),
        score("s1"),
        declared("d1", "2022-04-15T00:00:00Z", 100),
        declared("d2", "2022-04-20T00:00:00Z", 0),
        mismatch,
        repair,
        lifted,
        score("s2"),
    ];
    let parts = parts_of(&rs, &cat);
    assert!(parts[..8].iter().all(|p| *p == Part::Core), "{parts:?}");
    assert_ne!(parts[8], Part::Core);
}

#[test]
fn row_16_keeps_the_year_s_tax_in_the_core() {
    let cat = Catalogue::embedded();
    let report = rec(
        1,
        "REG",
        "ANNUAL_REPORT",
        "ar",
        "2023-05-01T00:00:00Z",
        json!({"report_year": 2022, "reported_tax_fen": 0, "reported_staff": 3}),
    );
    let rs = [
        established(),
        paid("t1", "2022-03"),
        paid("t2", "2023-01"),
        report,
    ];
    let parts = parts_of(&rs, &cat);
    assert_eq!(parts[1], Part::Core, "a payment of the reported year");
    assert_ne!(parts[2], Part::Core, "a payment of another year");
}

#[test]
fn a_contradicting_kind_stays_in_the_core() {
    let mut cat = Catalogue::embedded();
    cat.commitments
        .matters
        .insert("TAX_FILING".into(), vec!["TAX.PAID".into()]);
    let published = rec(
        1,
        "CMT",
        "PUBLISHED",
        "c1",
        "2022-01-01T00:00:00Z",
        json!({"commitment_id": "K1", "matter": "TAX_FILING", "commitment_type": "VOLUNTARY"}),
    );
    let rs = [established(), published, paid("t1", "2022-03"), score("s1")];
    let parts = parts_of(&rs, &cat);
    assert_eq!(parts[2], Part::Core);
    assert_ne!(parts[3], Part::Core);
}

#[test]
fn parts_follow_what_names_a_record_as_it_comes_and_goes() {
    let cat = Catalogue::embedded();
    let kinds = Detachable::of(&cat);
    let est = established();
    let (d1, d2, s1) = (
        declared("d1", "2022-04-15T00:00:00Z", 100),
        declared("d2", "2022-04-20T00:00:00Z", 0),
        score("s1"),
    );
    let lifted = lifted_naming_d1();
    let core_of = |p: &Parts<&Accepted>| p.members(Part::Core).len();
    let mut parts: Parts<&Accepted> = Parts::default();
    // Declarations and a score, then the retraction naming one declaration: the period's
    // part moves to the core, and back when the retraction goes.
    let dirty = parts.update([(&est, 1), (&d1, 1), (&d2, 1), (&s1, 1)], &kinds);
    assert_eq!(dirty.len(), 3, "core, the period, the score: {dirty:?}");
    assert_eq!(core_of(&parts), 1);
    let dirty = parts.update([(&lifted, 1)], &kinds);
    assert_eq!(core_of(&parts), 4);
    assert_eq!(dirty.len(), 2, "core and the period's part: {dirty:?}");
    check(&parts, &[&est, &d1, &d2, &s1, &lifted], &cat);
    parts.update([(&lifted, -1)], &kinds);
    assert_eq!(core_of(&parts), 1);
    check(&parts, &[&est, &d1, &d2, &s1], &cat);
    // The retraction first, its target later; then the establishment goes.
    parts.update([(&d1, -1), (&lifted, 1)], &kinds);
    parts.update([(&d1, 1)], &kinds);
    assert_eq!(core_of(&parts), 4);
    check(&parts, &[&est, &d1, &d2, &s1, &lifted], &cat);
    parts.update([(&est, -1)], &kinds);
    assert_eq!(parts.parts().count(), 1, "every record in the core");
    check(&parts, &[&d1, &d2, &s1, &lifted], &cat);
    // A score alone in its part: only that part changes.
    let s2 = score("s2");
    parts.update([(&est, 1)], &kinds);
    let dirty = parts.update([(&s2, 1)], &kinds);
    assert_eq!(dirty.len(), 1);
    assert!(!dirty.contains(&Part::Core));
}

#[test]
fn a_record_that_leaves_as_the_establishment_arrives_is_gone() {
    let cat = Catalogue::embedded();
    let kinds = Detachable::of(&cat);
    let (est, s1, s2) = (established(), score("s1"), score("s2"));
    let mut parts: Parts<&Accepted> = Parts::default();
    // Without an establishment both scores are core; in one update the establishment comes
    // and one score goes (looked for where it would be placed now, then merged).
    parts.update([(&s1, 1), (&s2, 1)], &kinds);
    assert_eq!(parts.members(Part::Core).len(), 2);
    parts.update([(&est, 1), (&s1, -1)], &kinds);
    check(&parts, &[&est, &s2], &cat);
    let held: usize = parts.parts().map(|(_, rs)| rs.len()).sum();
    assert_eq!(held, 2, "the establishment and one score");
    // And back: the establishment goes and the score returns in one update.
    parts.update([(&est, -1), (&s1, 1)], &kinds);
    check(&parts, &[&s1, &s2], &cat);
    assert_eq!(parts.members(Part::Core).len(), 2);
}
