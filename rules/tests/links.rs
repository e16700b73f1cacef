//! The fact kinds behind each row (`rows_read`) and behind what other enterprises read
//! (`LinkInputs`), checked on generated histories: the pipeline feeds its links stage only
//! those facts, so a kind missing here would silently freeze rows 47–49 elsewhere. The
//! compact decision the pipeline keeps (`decide`) is checked against the full evaluation on
//! the same histories.

mod generated;

use generator::GenConfig;
use rules::catalogue::{Catalogue, ROWS};
use rules::event::Feed;
use rules::fact::Fact;
use rules::indicators::{local, rows_read, Cross, Local};
use rules::lifecycle::Accepted;
use rules::reference::facts_of;
use rules::score::{decide, evaluate, red_trigger, LinkInputs};
use rules::time::{Ts, DAY};

/// The accepted records of a generated history (duplicates and all, as delivered).
fn history(enterprises: u32, seed: u64) -> Vec<Accepted> {
    let cfg = GenConfig {
        enterprises,
        seed,
        ..GenConfig::default()
    };
    generated::accepted(&cfg).0
}

/// Every enterprise's active facts, every 30 days of the history.
fn snapshots(log: &[Accepted], cat: &Catalogue) -> Vec<(Ts, Vec<Vec<Fact>>)> {
    let first = log.iter().map(|a| a.v).min().expect("records");
    let last = log.iter().map(|a| a.v).max().expect("records");
    (0..)
        .map(|i| first + i * 30 * DAY)
        .take_while(|t| *t <= last + 400 * DAY)
        .map(|t| {
            let visible: Vec<&Accepted> = log.iter().filter(|a| a.v <= t).collect();
            let d = facts_of(&visible, cat);
            let active = d
                .facts
                .into_values()
                .map(|fs| fs.into_iter().filter(|f| f.active_at(t)).collect())
                .collect();
            (t, active)
        })
        .collect()
}

/// What other enterprises read from `l`.
fn links(l: &Local, cat: &Catalogue) -> impl PartialEq + std::fmt::Debug {
    (
        red_trigger(l, cat),
        // Every trigger, not only whether one is red: a red one can hide another.
        evaluate(l, &Cross::default(), None, cat).triggers,
        l.stopped(),
        l.legal_rep.clone(),
        l.shareholders.clone(),
        l.investments.clone(),
    )
}

/// A fact's kind: its variant's name.
fn kind(w: &rules::fact::What) -> String {
    let s = format!("{w:?}");
    s.split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn removing_a_fact_changes_only_the_rows_its_kind_reads() {
    let cat = Catalogue::embedded();
    let log = history(150, 3);
    let mut kinds = std::collections::BTreeSet::new();
    for (t, enterprises) in snapshots(&log, &cat) {
        for facts in enterprises {
            let all: Vec<&Fact> = facts.iter().collect();
            let whole_r = local(&all, &cat).r_values();
            for (i, f) in facts.iter().enumerate() {
                kinds.insert(kind(&f.what));
                let without: Vec<&Fact> = all
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, g)| *g)
                    .collect();
                let less = local(&without, &cat).r_values();
                for row in 1..=ROWS {
                    if whole_r[row - 1] != less[row - 1] {
                        assert!(
                            rows_read(&f.what).contains(&row),
                            "at {t}, removing {:?} changed row {row}",
                            f.what
                        );
                    }
                }
            }
        }
    }
    // The history exercises most kinds, or the check above proves little.
    assert!(kinds.len() >= 50, "only {} fact kinds seen", kinds.len());
}

#[test]
fn links_read_only_their_inputs() {
    // The embedded triggers, and a catalogue whose R8 reads every row 1–44.
    let embedded = Catalogue::embedded();
    let text = include_str!("../catalogue/v1.toml").replace(
        "rows = [1, 2, 3, 4, 5, 8, 34, 35, 36, 40, 41, 42, 43, 44]",
        &format!("rows = {:?}", (1..=44).collect::<Vec<_>>()),
    );
    let wide = Catalogue::from_toml(&text).expect("valid catalogue");
    let log = history(150, 5);
    for cat in [&embedded, &wide] {
        let inputs = LinkInputs::new(cat);
        let mut dropped = 0;
        let mut red = 0;
        for (t, enterprises) in snapshots(&log, cat) {
            for facts in enterprises {
                let all: Vec<&Fact> = facts.iter().collect();
                let read: Vec<&Fact> = facts.iter().filter(|f| inputs.reads(&f.what)).collect();
                dropped += all.len() - read.len();
                let whole = local(&all, cat);
                red += usize::from(red_trigger(&whole, cat));
                assert_eq!(links(&whole, cat), links(&local(&read, cat), cat), "at {t}");
            }
        }
        assert!(dropped > 0, "the filter dropped nothing");
        assert!(red > 0, "no red trigger in the history");
    }
}

/// What the pipeline keeps of an evaluation (`decide`: r-values, `S₁₀`, triggers, cap and
/// the records behind the top five rows) is what the full evaluation says, with rows 45–49
/// set by a joined person and red relations.
#[test]
fn the_compact_decision_is_the_full_evaluation() {
    let cat = Catalogue::embedded();
    let log = history(150, 7);
    let (mut compared, mut joined_in_top) = (0, 0);
    for (t, enterprises) in snapshots(&log, &cat) {
        for facts in enterprises {
            let all: Vec<&Fact> = facts.iter().collect();
            let l = local(&all, &cat);
            let plain = Cross::default();
            let related = Cross {
                person_score: Some((420, 1000, (Feed::Per, format!("score-{t}").into()))),
                person_dishonest: vec![(Feed::Per, format!("dishonest-{t}").into())],
                shareholders_red: l.shareholders.iter().map(|(u, _)| u.clone()).collect(),
                affiliates_red: l.investments.iter().map(|(u, _)| u.clone()).collect(),
                ..Cross::default()
            };
            for cross in [plain, related] {
                let e = evaluate(&l, &cross, None, &cat);
                let d = decide(&l, &cross, None, &cat);
                assert_eq!(
                    (&d.r[..], d.s10, d.triggers, d.cap),
                    (&e.r[..], e.s10, e.triggers, e.cap),
                    "at {t}"
                );
                let top: Vec<_> = d
                    .top
                    .iter()
                    .map(|(row, x)| (usize::from(*row), x.to_vec()))
                    .collect();
                let reasons: Vec<_> = e
                    .reasons
                    .iter()
                    .map(|x| (x.row, x.records.clone()))
                    .collect();
                assert_eq!(top, reasons, "at {t}");
                joined_in_top += d.top.iter().filter(|(row, _)| *row >= 45).count();
                compared += 1;
            }
        }
    }
    assert!(compared > 1000, "only {compared} evaluations compared");
    assert!(joined_in_top > 0, "no joined row among the top five");
}
