//! `steward what-if` (issue 21, D78): the current rules and a candidate side by side in one
//! dataflow.
//! - An identical candidate changes nothing.
//! - Each side of the side-by-side dataflow gives what a replay under its rules alone gives
//!   (the candidate with a model).
//! - A candidate that moves level-1 weight changes the colour of exactly the enterprises
//!   that `rules::reference`, run separately with each catalogue, colours differently, and
//!   only through the rows of the groups it moved.
//! - A tightened trigger turns a hand-made listed enterprise red, and no other.

use std::collections::BTreeSet;
use std::sync::Arc;

use engine::replay::{replay, shared, side_by_side, Replayed, Rules, Schedule};
use generator::GenConfig;
use pipeline::model::dataset::{load_log, Source};
use pipeline::what_if::{self, diff, WhatIf, Window};
use rules::catalogue::{Catalogue, DEFAULT_TOML};
use rules::lifecycle::Accepted;
use rules::model::{feature_names, Model, Params};
use rules::score::Colour;
use rules::supervision::Supervision;
use serde_json::{json, Value};

/// The accepted records of a generated history.
fn generated(enterprises: u32, seed: u64) -> Vec<Accepted> {
    let cfg = GenConfig {
        enterprises,
        seed,
        years: 1,
        ..GenConfig::default()
    };
    load_log(&Source::Generated(Box::new(cfg)), &Catalogue::embedded()).expect("generated")
}

fn rules_of(text: &str) -> Rules {
    Rules {
        cat: Arc::new(Catalogue::from_toml(text).expect("valid catalogue")),
        model: None,
        commitments: None,
    }
}

/// The whole log's period.
fn whole(log: &[Accepted]) -> Window {
    Window {
        from: log.iter().map(|a| a.v).min().unwrap_or(0),
        at: log.iter().map(|a| a.v).max().unwrap_or(0),
    }
}

fn what_if_of(log: &[Accepted], candidate: &str) -> WhatIf {
    what_if::run(
        shared(log.to_vec()),
        &rules_of(DEFAULT_TOML),
        &rules_of(candidate),
        whole(log),
        diff::catalogues(DEFAULT_TOML, candidate).expect("TOML"),
        timely::Config::process(2),
    )
    .expect("dataflow runs")
}

/// The catalogue with level-1 group `code`'s weight `old` replaced by `new`.
fn level1_weight(text: &str, code: &str, old: &str, new: &str) -> String {
    let at = text
        .find(&format!("[[level1]]\ncode = \"{code}\""))
        .expect("level-1 group");
    let w = at
        + text[at..]
            .find(&format!("weight = {old}"))
            .expect("its weight");
    format!("{}weight = {new}{}", &text[..w], &text[w + 9 + old.len()..])
}

#[test]
fn an_identical_candidate_changes_nothing() {
    let log = generated(150, 3);
    let w = what_if_of(&log, DEFAULT_TOML);
    assert!(w.catalogue_changes.is_empty());
    assert_eq!((w.colour_differs, w.score_differs), (0, 0));
    assert!(w.differences.is_empty());
    assert_eq!(w.enterprises, 150);
    let mut diagonal = 0;
    for (i, row) in w.matrix.iter().enumerate() {
        for (j, n) in row.iter().enumerate() {
            if i == j {
                diagonal += n;
            } else {
                assert_eq!(*n, 0, "{i} -> {j}");
            }
        }
    }
    assert_eq!(diagonal, 150);
    let e = w.events;
    assert!(
        e.current.colour_changes > 0 && e.current.alerts > 0,
        "{e:?}"
    );
    assert_eq!(
        (e.current.colour_changes, e.current.alerts),
        (e.candidate.colour_changes, e.candidate.alerts)
    );
    assert!(w.distribution.len() > 300);
    assert!(w.distribution.iter().all(|d| d.current == d.candidate));
    assert!(w.by_region.iter().all(|b| b.colour_differs == 0));
    assert_eq!(w.by_region.iter().map(|b| b.enterprises).sum::<u64>(), 150);
}

/// A logistic model whose probability grows with every r-value.
fn a_model(cat: &Catalogue) -> Model {
    let n = feature_names(cat).len();
    let params = Params::Logistic {
        mean: vec![0.0; n],
        scale: vec![1.0; n],
        coefficients: (0..n).map(|j| if j < 49 { 0.02 } else { 0.0 }).collect(),
        intercept: -2.0,
    };
    generator::hand_made_model(params, cat).expect("a valid model")
}

/// What a replay gave, as comparable text.
fn lines(r: &Replayed) -> Vec<String> {
    let states = r
        .states
        .iter()
        .map(|(u, (s, c))| format!("{u} {c:?} {s:?}"));
    let changes = r.changes.iter().map(|c| format!("{c:?}"));
    let alerts = r.alerts.iter().map(|a| format!("{a:?}"));
    states.chain(changes).chain(alerts).collect()
}

#[test]
fn each_side_equals_a_replay_under_its_own_rules() {
    let log = generated(120, 4);
    let until = whole(&log).at;
    let tighter = DEFAULT_TOML
        .replace("green = 700.0", "green = 750.0")
        .replace("version = \"catalogue-v1\"", "version = \"green-750\"");
    // The candidate also scores `Q` with a model.
    let mut candidate = rules_of(&tighter);
    candidate.model = Some(Arc::new(a_model(&candidate.cat)));
    let sides = [rules_of(DEFAULT_TOML), candidate];
    let together = side_by_side(
        shared(log.clone()),
        sides.to_vec(),
        timely::Config::process(2),
        Schedule::new(500, until),
    )
    .expect("dataflow runs");
    assert_eq!(together.len(), 2);
    for (side, got) in sides.iter().zip(&together) {
        let alone = replay(
            shared(log.clone()),
            side.cat.clone(),
            side.model.clone(),
            None,
            timely::Config::process(1),
            Schedule::new(500, until),
            |_, _, _, _| {},
        )
        .expect("dataflow runs");
        assert_eq!(lines(got), lines(&alone), "{}", side.cat.version);
    }
    assert_ne!(lines(&together[0]), lines(&together[1]), "the bands differ");
}

#[test]
fn moved_weight_changes_exactly_the_colours_the_reference_changes() {
    let log = generated(40, 5);
    let mut candidate = level1_weight(DEFAULT_TOML, "A", "0.20", "0.50");
    candidate = level1_weight(&candidate, "F", "0.17", "0.02");
    candidate = level1_weight(&candidate, "G", "0.17", "0.02");
    let w = what_if_of(&log, &candidate);
    let paths: Vec<&str> = w
        .catalogue_changes
        .iter()
        .map(|c| c.path.as_str())
        .collect();
    assert_eq!(
        paths,
        ["level1[A].weight", "level1[F].weight", "level1[G].weight"]
    );

    let until = whole(&log).at;
    let commitments = Supervision::embedded().commitments;
    let colours = |text: &str| {
        let cat = Catalogue::from_toml(text).expect("valid catalogue");
        rules::reference::run(&log, until, None, &cat, &commitments).last
    };
    let (a, b) = (colours(DEFAULT_TOML), colours(&candidate));
    let want: BTreeSet<&String> = a
        .iter()
        .filter(|(u, (_, c))| b.get(*u).map(|(_, d)| d) != Some(c))
        .map(|(u, _)| u)
        .collect();
    let got: BTreeSet<&String> = w.differences.iter().map(|d| &d.uscc).collect();
    assert!(
        !want.is_empty(),
        "the candidate moves no colour: a weaker test"
    );
    assert_eq!(got, want);

    // Only the rows of the groups whose weight moved contribute differently.
    let cat = Catalogue::embedded();
    let moved: BTreeSet<usize> = cat
        .indicators
        .iter()
        .filter(|i| {
            let l2 = cat
                .level2
                .iter()
                .find(|g| g.code == i.group)
                .expect("group");
            ["A", "F", "G"].contains(&l2.parent.as_str())
        })
        .map(|i| i.row)
        .collect();
    for d in &w.differences {
        assert!(!d.rows.is_empty(), "{d:?}");
        assert!(d.rows.iter().all(|r| moved.contains(&r.row)), "{d:?}");
        assert!(d.rows.windows(2).all(|p| {
            (p[0].candidate - p[0].current).abs() >= (p[1].candidate - p[1].current).abs()
        }));
        let (sa, sb) = (&a[&d.uscc].0, &b[&d.uscc].0);
        assert_eq!((d.current.score, d.candidate.score), (sa.s, sb.s));
    }
}

fn rec(uscc: &str, feed: &str, kind: &str, id: &str, at: &str, fields: Value) -> Accepted {
    generator::hand_made(uscc, feed, kind, id, at, fields).expect("valid test record")
}

#[test]
fn a_tightened_trigger_turns_a_listed_enterprise_red() {
    let listed = rules::uscc::with_check("91330802MA2A00001").expect("valid prefix");
    let clean = rules::uscc::with_check("91330802MA2A00002").expect("valid prefix");
    let established = |u: &str, id| {
        let at = "2015-01-01T00:00:00+08:00";
        rec(
            u,
            "REG",
            "ESTABLISHED",
            id,
            at,
            json!({"region_code": "330802"}),
        )
    };
    let log = vec![
        established(&listed, "e1"),
        established(&clean, "e2"),
        rec(
            &listed,
            "LIST",
            "LISTED",
            "l1",
            "2024-01-10T00:00:00+08:00",
            json!({"list_kind": "ABNORMAL"}),
        ),
    ];
    // R6 (row 4, the abnormal-operations list among them) caps at red instead of yellow.
    let at = DEFAULT_TOML
        .find("code = \"R6\"\ncap = \"yellow\"")
        .expect("R6");
    let candidate = format!(
        "{}code = \"R6\"\ncap = \"red\"{}",
        &DEFAULT_TOML[..at],
        &DEFAULT_TOML[at + "code = \"R6\"\ncap = \"yellow\"".len()..]
    );
    let w = what_if_of(&log, &candidate);
    assert_eq!(w.enterprises, 2);
    assert_eq!(w.differences.len(), 1, "{:?}", w.differences);
    let d = &w.differences[0];
    assert_eq!(d.uscc, listed);
    assert_eq!(d.current.colour, Colour::Yellow);
    assert_eq!(d.candidate.colour, Colour::Red);
    assert!(d.candidate.triggers.contains(&"R6".to_owned()));
    // The same score: the trigger's cap, not a row, moved it.
    assert_eq!(d.current.score, d.candidate.score);
    assert!(d.rows.is_empty());
    assert_eq!(
        w.events.candidate.colour_changes,
        w.events.current.colour_changes
    );
    let p = what_if::page::html(&w).expect("page");
    assert!(p.contains("id=\"matrix\"") && p.contains(&listed));
}
