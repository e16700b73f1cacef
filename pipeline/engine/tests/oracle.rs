//! The oracle test: on random record streams, the incremental dataflow's state equals the
//! `rules` reference computation after every step, and its colour changes equal the
//! reference's, on 1, 2 and 4 workers.
//!
//! The same holds with a risk model loaded (`Q` enters `S`), and every colour change then
//! carries the model's version.
//!
//! Streams mix every feed, with reused event ids (versions, duplicates, kind switches),
//! retractions by reference and by business key, repairs (also of unknown targets and of
//! non-repairable classes, which are flagged for review), published and verified
//! commitments, the pipeline's own `CMT.SCHEDULED` records, relations between enterprises,
//! and horizons long enough for windows and publicity periods to expire. The commitment
//! loop's scheduling decisions and verification results equal the reference's too.
//!
//! A run resumed from a checkpoint at any time gives the uninterrupted run's outputs after
//! that time, and its state after every later step (D68).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use engine::checkpoint::Checkpoint;
use engine::replay::{replay, Replayed, Schedule};
use generator::ops::{log_of, op, Op, ENTERPRISES, TEMPLATES};
use proptest::prelude::*;
use rules::catalogue::Catalogue;
use rules::fact::Checker;
use rules::lifecycle::Accepted;
use rules::model::{feature_names, Model, Node, Params, Tree};
use rules::reference::{evaluate_at, run, statuses_at};
use rules::score::Evaluation;
use rules::status::{RecordKey, Status};
use rules::supervision::Supervision;
use rules::time::{format_rfc3339, ymd, Ts, DAY};

/// States keyed by USCC, as evaluations.
fn dataflow_states<'a>(
    states: impl IntoIterator<Item = (impl ToString, &'a engine::dataflow::Scored)>,
    model: Option<&Model>,
) -> BTreeMap<String, Evaluation> {
    states
        .into_iter()
        .map(|(u, s)| (u.to_string(), s.evaluation(model, &Catalogue::embedded())))
        .collect()
}

/// A model file's contents around `params`, with the catalogue's features.
fn model(params: Params) -> Model {
    generator::hand_made_model(params, &Catalogue::embedded()).expect("a valid model")
}

/// A logistic model reading many rows and `P` with awkward coefficients, so that `Q`
/// takes many values with long binary fractions.
fn logistic() -> Model {
    let n = feature_names(&Catalogue::embedded()).len();
    let coefficients = (0..n)
        .map(|j| ((j * 37 % 11) as f64 - 4.0) / 17.0)
        .collect();
    // `P` (feature 50) is centred on 650 with a scale of 150, like real scores.
    let at_p = |j: usize, p: f64, other: f64| if j == 49 { p } else { other };
    model(Params::Logistic {
        mean: (0..n)
            .map(|j| at_p(j, 650.0, (j % 5) as f64 * 3.3))
            .collect(),
        scale: (0..n)
            .map(|j| at_p(j, 150.0, 10.0 + (j % 3) as f64 * 7.1))
            .collect(),
        coefficients,
        intercept: -0.3,
    })
}

/// A forest of stumps on the rows the oracle's records move, `P` and the missing-P flag.
fn forest() -> Model {
    let stump = |f: usize, t: f64| Tree {
        nodes: vec![
            Node::Split { f, t, l: 1, r: 2 },
            Node::Leaf { vote: 0 },
            Node::Leaf { vote: 1 },
        ],
    };
    let trees = [0, 1, 3, 4, 7, 8, 19, 33, 36, 39, 44, 49, 50]
        .into_iter()
        .map(|f| stump(f, if f == 49 { 600.0 } else { 0.5 }))
        .collect();
    model(Params::Forest { trees })
}

fn check(ops: &[Op], workers: usize) -> Result<(), TestCaseError> {
    check_with(ops, workers, None)
}

fn check_with(ops: &[Op], workers: usize, model: Option<Model>) -> Result<(), TestCaseError> {
    let model = model.map(Arc::new);
    let cat = Arc::new(Catalogue::embedded());
    let log = log_of(ops);
    let until = log.iter().map(|a| a.v).max().unwrap_or(0) + 800 * DAY;
    // Every worker's state after every step; the union over workers is the whole state.
    type Steps = BTreeMap<Ts, BTreeMap<String, Evaluation>>;
    let steps: Arc<Mutex<Steps>> = Arc::default();
    let s = steps.clone();
    // And every record's status after every step (D11).
    type StatusSteps = BTreeMap<Ts, BTreeMap<RecordKey, (String, Status)>>;
    let status_steps: Arc<Mutex<StatusSteps>> = Arc::default();
    let st = status_steps.clone();
    let m = model.clone();
    let commitments = Supervision::embedded().commitments;
    let out = replay(
        engine::replay::shared(log.clone()),
        cat.clone(),
        model.clone(),
        Some(commitments.clone()),
        timely::Config::process(workers),
        Schedule::new(1, until),
        move |_, t, tracker, _| {
            s.lock()
                .expect("lock")
                .entry(t)
                .or_default()
                .extend(dataflow_states(
                    tracker.colours.current.iter().map(|(u, s)| (u, s.as_ref())),
                    m.as_deref(),
                ));
            st.lock().expect("lock").entry(t).or_default().extend(
                tracker
                    .statuses
                    .current()
                    .map(|(k, (u, st))| (k, (u.to_string(), st))),
            );
        },
    )
    .map_err(TestCaseError::fail)?;
    for (t, got) in steps.lock().expect("lock").iter() {
        let want: BTreeMap<String, Evaluation> = evaluate_at(&log, *t, model.as_deref(), &cat)
            .into_iter()
            .map(|(u, (_, e))| (u, e))
            .collect();
        prop_assert_eq!(got, &want, "state differs at {}", format_rfc3339(*t));
    }
    for (t, got) in status_steps.lock().expect("lock").iter() {
        let want = statuses_at(&log, *t, &cat);
        prop_assert_eq!(
            got,
            &want,
            "record statuses differ at {}",
            format_rfc3339(*t)
        );
    }

    let reference = run(&log, until, model.as_deref(), &cat, &commitments);
    let want_final: BTreeMap<String, Evaluation> = reference
        .last
        .iter()
        .map(|(u, (e, _))| (u.clone(), e.clone()))
        .collect();
    let finals: BTreeMap<String, engine::dataflow::Scored> = out
        .states
        .iter()
        .map(|(u, (s, _))| (u.clone(), s.clone()))
        .collect();
    prop_assert_eq!(dataflow_states(&finals, model.as_deref()), want_final);
    let want_colours: BTreeMap<&String, _> =
        reference.last.iter().map(|(u, (_, c))| (u, *c)).collect();
    let got_colours: BTreeMap<&String, _> = out.states.iter().map(|(u, (_, c))| (u, *c)).collect();
    prop_assert_eq!(got_colours, want_colours);
    prop_assert_eq!(&out.changes, &reference.changes);
    let version = model.as_ref().map(|m| m.model_version.clone());
    prop_assert!(out.changes.iter().all(|c| c.model_version == version));
    prop_assert_eq!(&out.alerts, &reference.alerts);
    let want_dead: Vec<_> = reference
        .dead
        .iter()
        .filter(|d| d.at <= until)
        .cloned()
        .collect();
    prop_assert_eq!(out.dead, want_dead);
    prop_assert_eq!(&out.scheduled, &reference.scheduled);
    prop_assert_eq!(&out.checks, &reference.checks);
    Ok(())
}

/// Each step's evaluations after `after` (debug text, per enterprise) of one replay.
type StepsAfter = BTreeMap<Ts, BTreeMap<String, String>>;

/// Replays `log` up to `until` on `workers` workers with the commitment loop, collecting
/// every step's evaluations after `after`.
fn replay_steps(
    log: &[Accepted],
    workers: usize,
    schedule: Schedule,
    after: Ts,
) -> Result<(Replayed, StepsAfter), TestCaseError> {
    let steps: Arc<Mutex<StepsAfter>> = Arc::default();
    let s = steps.clone();
    let out = replay(
        engine::replay::shared(log.to_vec()),
        Arc::new(Catalogue::embedded()),
        None,
        Some(Supervision::embedded().commitments),
        timely::Config::process(workers),
        schedule,
        move |_, t, tracker, _| {
            if t > after {
                let mut s = s.lock().expect("lock");
                let at = s.entry(t).or_default();
                for (u, sc) in tracker.colours.current.iter() {
                    at.insert(u.to_string(), format!("{sc:?}"));
                }
            }
        },
    )
    .map_err(TestCaseError::fail)?;
    let steps = std::mem::take(&mut *steps.lock().expect("lock"));
    Ok((out, steps))
}

/// Stops a run at `cut` with a checkpoint and resumes it from there: the two parts' outputs
/// are the uninterrupted run's, and the resumed run's state after every step and at the end
/// is the uninterrupted run's (D68).
fn check_resume(ops: &[Op], workers: usize, cut: Ts) -> Result<(), TestCaseError> {
    let log = log_of(ops);
    let until = log.iter().map(|a| a.v).max().unwrap_or(0) + 800 * DAY;
    let (whole, whole_steps) = replay_steps(&log, workers, Schedule::new(1, until), cut)?;
    let first = Schedule {
        checkpoint: true,
        ..Schedule::new(1, cut)
    };
    let (first, _) = replay_steps(&log, workers, first, cut)?;
    let checkpoint = Checkpoint {
        format: engine::checkpoint::FORMAT,
        at: cut,
        setup: String::new(),
        workers: first.kept.values().cloned().collect(),
    };
    prop_assert_eq!(first.kept.len(), workers);
    let rest = Schedule {
        resume: Some(Arc::new(checkpoint)),
        ..Schedule::new(1, until)
    };
    let (rest, rest_steps) = replay_steps(&log, workers, rest, cut)?;
    // The resumed run steps at the whole run's times after the cut, except the first (the
    // whole run's step that ends with its last record before the cut).
    let whole_at: StepsAfter = whole_steps
        .into_iter()
        .filter(|(t, _)| rest_steps.contains_key(t))
        .collect();
    prop_assert_eq!(whole_at.len(), rest_steps.len(), "steps at other times");
    prop_assert_eq!(rest_steps, whole_at);
    let lines = |r: &Replayed| -> Vec<String> {
        r.states
            .iter()
            .map(|(u, (s, c))| format!("{u} {c:?} {s:?}"))
            .collect()
    };
    prop_assert_eq!(lines(&rest), lines(&whole));
    prop_assert_eq!(&rest.dead, &whole.dead);
    prop_assert_eq!(&rest.statuses, &whole.statuses);
    prop_assert_eq!(
        [&first.changes[..], &rest.changes[..]].concat(),
        whole.changes.clone()
    );
    prop_assert_eq!(
        [&first.alerts[..], &rest.alerts[..]].concat(),
        whole.alerts.clone()
    );
    prop_assert_eq!(
        [&first.scheduled[..], &rest.scheduled[..]].concat(),
        whole.scheduled.clone()
    );
    prop_assert_eq!(
        [&first.checks[..], &rest.checks[..]].concat(),
        whole.checks.clone()
    );
    Ok(())
}

/// A time to cut `ops`'s log at: one of its visibility times, or just before or after one.
fn cut_of(ops: &[Op], pick: usize, shift: i64) -> Ts {
    let mut times: Vec<Ts> = log_of(ops).iter().map(|a| a.v).collect();
    times.sort_unstable();
    times.get(pick % times.len().max(1)).copied().unwrap_or(0) + shift
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_run_resumed_from_a_checkpoint_equals_the_whole_run(
        ops in proptest::collection::vec(op(), 1..40),
        pick in 0usize..40,
        shift in prop_oneof![Just(0i64), Just(-1), Just(1), 0i64..400 * DAY],
    ) {
        let cut = cut_of(&ops, pick, shift);
        check_resume(&ops, 1, cut)?;
        check_resume(&ops, 2, cut)?;
    }

    #[test]
    fn dataflow_equals_reference_after_every_step(ops in proptest::collection::vec(op(), 1..40)) {
        check(&ops, 1)?;
    }

    #[test]
    fn dataflow_equals_reference_with_a_model(ops in proptest::collection::vec(op(), 1..40)) {
        check_with(&ops, 1, Some(logistic()))?;
        check_with(&ops, 2, Some(forest()))?;
    }

    #[test]
    fn same_result_on_two_and_four_workers(ops in proptest::collection::vec(op(), 1..40)) {
        check(&ops, 2)?;
        check(&ops, 4)?;
    }
}

/// A fixed stream with every template once.
fn fixed_ops() -> Vec<Op> {
    (0..TEMPLATES)
        .map(|k| Op {
            ent: k % ENTERPRISES,
            template: k,
            day: i64::from(k) * 9,
            lag_secs: 60,
            id: k % 4,
            version: 1,
            other: (k + 1) % 4,
        })
        .collect()
}

#[test]
fn every_template_once() {
    let ops = fixed_ops();
    assert_eq!(
        log_of(&ops).len(),
        usize::from(TEMPLATES),
        "every template builds a valid record"
    );
    check(&ops, 1).expect("dataflow equals reference");
    check_with(&ops, 1, Some(logistic())).expect("with the logistic model");
    check_with(&ops, 1, Some(forest())).expect("with the forest");
}

#[test]
fn the_model_moves_scores_on_the_fixed_stream() {
    // Guards the model oracle: Q is present, varies, and changes S and colours.
    let log = log_of(&fixed_ops());
    let cat = Catalogue::embedded();
    let until = ymd(2025, 1, 1);
    let (lr, fo) = (logistic(), forest());
    let rules = Supervision::embedded().commitments;
    let without = run(&log, until, None, &cat, &rules);
    for m in [&lr, &fo] {
        let with = run(&log, until, Some(m), &cat, &rules);
        let qs: std::collections::BTreeSet<String> = with
            .last
            .values()
            .filter_map(|(e, _)| e.q.map(|q| format!("{q}")))
            .collect();
        assert!(qs.len() >= 2, "{}: Q takes {qs:?}", m.model_version);
        assert_ne!(with.changes, without.changes, "{}", m.model_version);
        assert!(with
            .last
            .values()
            .all(|(e, _)| e.model_version.as_deref() == Some(m.model_version.as_str())));
    }
}

#[test]
fn reference_is_not_trivial_on_the_fixed_stream() {
    // Guards the oracle itself: the fixed stream produces colour changes and triggers.
    let out = run(
        &log_of(&fixed_ops()),
        ymd(2025, 1, 1),
        None,
        &Catalogue::embedded(),
        &Supervision::embedded().commitments,
    );
    assert!(out.changes.len() >= ENTERPRISES as usize);
    assert!(!out.scheduled.is_empty(), "a commitment is scheduled");
    assert!(out
        .checks
        .iter()
        .any(|c| c.check.checker == Checker::Offsite));
    assert!(out
        .checks
        .iter()
        .any(|c| c.check.checker == Checker::Inspector));
    assert!(
        out.last.values().any(|(e, _)| !e.review_flags.is_empty()),
        "a repair is flagged"
    );
    assert!(out.changes.iter().any(|c| !c.triggers.is_empty()));
    assert!(out.alerts.iter().any(|a| a.rule == "COLOUR_WORSENED"));
}

/// Every record status occurs on a small stream, and the dataflow gives the reference's
/// statuses after every step of it.
#[test]
fn every_record_status_occurs() {
    let op = |template, id, other, version, day| Op {
        ent: 0,
        template,
        day,
        lag_secs: 60,
        id,
        version,
        other,
    };
    let ops = vec![
        op(0, 0, 0, 1, 0),  // PEN p0 version 1 …
        op(0, 0, 0, 2, 1),  // … superseded by version 2, …
        op(28, 0, 0, 1, 2), // … which a repair ends.
        op(0, 1, 0, 1, 3),  // PEN p1, revoked by
        op(2, 0, 1, 1, 4),  // PEN.REVOKED pr0.
        op(1, 2, 0, 1, 5),  // PEN p2 (no fine to pay): its publicity ends; the repair rp2 …
        op(28, 2, 2, 1, 6),
        op(34, 0, 2, 1, 7), // … is revoked.
        op(2, 3, 3, 1, 8),  // PEN.REVOKED of a p3 never seen: rejected after the hold.
    ];
    let cat = Catalogue::embedded();
    let got: BTreeMap<String, &str> = statuses_at(&log_of(&ops), ymd(2030, 1, 1), &cat)
        .into_iter()
        .map(|(k, (_, s))| (format!("{} v{}", k.id.1, k.version), s.as_str()))
        .collect();
    let want: BTreeMap<String, &str> = [
        ("p0 v1", "superseded"),
        ("p0 v2", "repaired"),
        ("rp0 v1", "active"),
        ("p1 v1", "revoked"),
        ("pr0 v1", "active"),
        ("p2 v1", "expired"),
        ("rp2 v1", "revoked"),
        ("rv0 v1", "active"),
        ("pr3 v1", "rejected"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(got, want);
    check(&ops, 2).expect("dataflow equals the reference");
}
