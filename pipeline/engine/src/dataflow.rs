//! The incremental dataflow: accepted records → versions → per enterprise: lifecycle, facts
//! with their intervals, active facts and links → cross-enterprise joins → evaluations.
//!
//! Logical time is visibility time (`rules::time::Ts`, seconds). Every domain decision is a
//! `rules` function; this module only arranges where they run:
//!
//! 1. `reduce` per `(feed, event_id)`: [`rules::lifecycle::resolve_versions`].
//! 2. Per USCC, one state machine (D71): the enterprise's winning records in a
//!    [`rules::table::Table`], and what each change does to its facts, statuses, dead
//!    letters and commitment events ([`rules::table::fact_changes`], D101); a fact derived
//!    at time `v` counts from `max(v, start)` to `max(v, end)` by the key's timers
//!    (windows, publicity periods and deadlines end by themselves); the active facts'
//!    [`rules::indicators::Local`], and the links other enterprises read (red trigger,
//!    status, legal representative, shares) when a fact of a kind they depend on
//!    ([`rules::score::LinkInputs`]) changes.
//! 3. Joins over persons, legal representatives, shareholders and affiliates (rows 45–49).
//! 4. `reduce` per USCC over its `Local` and joined parts: [`rules::score::decide`] (what
//!    the dataflow keeps of an evaluation, D75).
//!
//! Every keyed stage keeps each key's current state instead of its history (D48): the
//! `reduce`s are [`crate::ordered::ReduceOrdered::reduce_ordered`] (the same output as
//! differential's `reduce`), the enterprise stage a
//! [`crate::ordered::ProcessTimed::process_timed`].

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, BinaryHeap};
use std::hash::BuildHasher;
use std::rc::Rc;
use std::sync::Arc;

use differential_dataflow::input::{Input, InputSession};
use differential_dataflow::{AsCollection, Hashable, VecCollection};
use rules::catalogue::{Catalogue, ROWS};
use rules::fact::{by_event_id, CommitmentEvent, Fact, Src, What};
use rules::indicators::{
    hundredths, r_of_hundredths, Cross, Local, LocalState, ReviewFlag, OWN_ROWS,
};
use rules::lifecycle::{resolve_versions, Accepted, Dead};
use rules::model::Model;
use rules::monitor::Reading;
use rules::score::{
    assemble, decide, red_trigger, score_of_tenths, Colour, Decided, Evaluation, LinkInputs,
    Triggers,
};
use rules::status::{self, Record, Step};
use rules::table::{Context, KindSet, Seed, Ties};
use rules::time::Ts;
use rules::uscc::Uscc;
use rules::{format_compact, CompactString};
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Input as _, Probe};
use timely::dataflow::InputHandle;
use timely::progress::operate::FrontierInterest;

use crate::enterprise::TableLife;
use crate::ordered::{difference, Folded, Outputs, ProcessTimed, ReduceOrdered};
use crate::tracker::Kept;

/// Output of the enterprise lifecycle stage. The stage stores many of these per
/// enterprise, so every variant is a pointer wide: 16 bytes instead of 96.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum Derived {
    /// The enterprise has at least one record in effect.
    Known,
    /// A fact with its interval (shared by every stage that keeps it).
    Fact(Arc<Fact>),
    /// A lifecycle dead letter.
    Dead(Box<Dead>),
    /// A published commitment or a verification result (D46).
    Commitment(Box<CommitmentEvent>),
    /// A status step of one of the enterprise's records (D11).
    Status(Box<(Routed, Step)>),
}

/// Output of the version stage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Version {
    /// The version in effect (shared with the input, not copied), with its USCC, read
    /// here while the record is at hand so that the enterprise stage's key costs no
    /// second read of it.
    Winner(Uscc, Arc<Accepted>),
    /// A `version_kind_change` dead letter (boxed: rare, and the largest variant by far).
    Dead(Box<Dead>),
    /// A status step of a version, with its USCC.
    Status(Routed, Uscc, Step),
}

/// A status step's record, with what the exchange and the tracker read of it (D112): the
/// hash of its `(feed, event_id)`, which picks the worker that keeps its statuses (as it
/// picks the worker of its dead letters), and its digest's first eight bytes, which order
/// and find it there. Both are read where the step is made, while the record is at hand,
/// so that neither the exchange nor the tracker reads the record again. Equal records have
/// equal numbers, so the derived order compares the record only where both numbers tie.
/// Across processes it travels as its record does (D76), and the numbers are read again
/// from the key that arrives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Routed {
    /// The hash of its `(feed, event_id)`.
    route: u64,
    /// Its digest's first eight bytes ([`Record::digest_prefix`]).
    pub prefix: u64,
    /// The record.
    pub record: Record,
}

impl Routed {
    /// `record` with its numbers.
    pub(crate) fn new(record: Record) -> Self {
        Routed {
            route: record.id().hashed(),
            prefix: record.digest_prefix(),
            record,
        }
    }
}

/// Hashed by its digest's first eight bytes, as its record is, without reading the record.
impl std::hash::Hash for Routed {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.prefix);
    }
}

impl Serialize for Routed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.record.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Routed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Record::deserialize(d).map(Routed::new)
    }
}

/// A person of rows 45–46 (a legal representative's `person_hash`) as the joins on
/// persons key it: a 64-bit hash of its text ahead of the text. The derived order compares
/// the text only where the hashes tie (the same person, or two that collide, which the
/// text then tells apart), so the joins' sorts and merges rarely read a text, and the
/// exchange hashes the number alone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Person {
    /// The hash of `text`, the same in every process.
    print: u64,
    /// The person's `person_hash`, as the record gave it.
    text: CompactString,
}

impl Person {
    fn new(text: &CompactString) -> Self {
        Person {
            print: text.hashed(),
            text: text.clone(),
        }
    }
}

/// Hashed by its hash, without reading the text.
impl std::hash::Hash for Person {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.print);
    }
}

/// What other enterprises' rows 47–49 read about an enterprise.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Link {
    /// An active red trigger (R1–R5) and still scored.
    Red,
    /// Scoring stopped (R9).
    Stopped,
    /// `LR(E)`.
    Rep(Person),
    /// A corporate shareholder at ≥ 500 bp.
    Holder(Uscc),
    /// An affiliate invested in.
    Affiliate(Uscc),
}

/// Output of the enterprise stage (D71), each at its own time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Out {
    /// What the enterprise's own active facts decide, while it has a record in effect
    /// (shared with the stage's state until either changes).
    Own(Arc<Local>),
    /// What other enterprises' rows 47–49 read about it.
    Link(Link),
    /// An active personal fact that it recorded, with its person (rows 45–46 of that
    /// person's enterprises).
    Person(Person, Arc<Fact>),
    /// A lifecycle dead letter.
    Dead(Box<Dead>),
    /// A published commitment or a verification result (D46).
    Commitment(Box<CommitmentEvent>),
    /// A status step of one of its records (D11).
    Status(Box<(Routed, Step)>),
}

/// The inputs of the final evaluation of one enterprise.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Part {
    /// What its own active facts decide (it has records).
    Own(Arc<Local>),
    /// An active personal fact of its legal representative (from any enterprise).
    Person(Arc<Fact>),
    /// Another enterprise of its legal representative with a red trigger.
    RepOtherRed(Uscc),
    /// A shareholder with a red trigger.
    HolderRed(Uscc),
    /// An affiliate with a red trigger.
    AffiliateRed(Uscc),
    /// An affiliate that is still scored.
    AffiliateScored(Uscc),
}

/// One enterprise's evaluation at a logical time, compact and `Ord` as the dataflow needs
/// it (D75): what [`rules::score::decide`] decides, with the r-values in hundredths (each r
/// is rounded to 0.01), `P`, and the records of the top-five rows shared with the
/// enterprise's state. [`Scored::evaluation`] expands it with
/// [`rules::score::assemble`], which gives the same evaluation bit for bit (`Q` is a
/// function of the r-values and `P`, so it is recomputed with the same model).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Scored {
    /// `S` in tenths; `None` when scoring stopped.
    pub s10: Option<i64>,
    /// Active triggers.
    pub triggers: Triggers,
    /// Worst trigger cap.
    pub cap: Colour,
    /// Region code.
    pub region: Option<CompactString>,
    /// Industry code.
    pub industry: Option<CompactString>,
    /// The 49 r-values in hundredths (each is rounded to 0.01 and lies in 0–100), in place.
    #[serde(with = "serde_big_array::BigArray")]
    r: [u16; ROWS],
    /// Provincial public credit score.
    p: Option<i64>,
    /// The records behind the top-five rows: `(row, records)`.
    top: Vec<(u8, Arc<[Src]>)>,
    /// Σ `TAX.PAID` over the catalogue's window (the pre-credit line's base, fen).
    pub tax_paid_fen: i64,
    /// Review flags of the enterprise's repairs (D47).
    pub review_flags: Vec<ReviewFlag>,
}

impl Scored {
    /// The compact form of what `d` decides for the enterprise whose own facts decide `l`.
    fn new(d: Decided, l: &Local) -> Self {
        Scored {
            s10: d.s10,
            triggers: d.triggers,
            cap: d.cap,
            region: l.region.clone(),
            industry: l.industry.clone(),
            // Rows 1–44 are the state's own, held in hundredths already (`decide` reads
            // them back bit for bit); rows 45–49 come from the joins.
            r: std::array::from_fn(|i| match i {
                0..OWN_ROWS => l.r_hundredths()[i],
                _ => hundredths(d.r[i]),
            }),
            p: l.p,
            top: d.top,
            tax_paid_fen: l.tax_paid_fen,
            review_flags: l.review_flags(),
        }
    }

    /// The 49 r-values.
    pub fn r_values(&self) -> [f64; ROWS] {
        r_of_hundredths(&self.r)
    }

    /// `S` (rounded to 0.1); `None` when scoring stopped.
    pub fn score(&self) -> Option<f64> {
        self.s10.map(score_of_tenths)
    }

    /// The full evaluation, with `Q` from `model` (the model the dataflow was built with).
    pub fn evaluation(&self, model: Option<&Model>, cat: &Catalogue) -> Evaluation {
        let r = self.r_values().to_vec();
        let evidence = |row: usize| {
            self.top
                .iter()
                .find(|(x, _)| usize::from(*x) == row)
                .map(|(_, records)| records.to_vec())
                .unwrap_or_default()
        };
        let stopped = self.s10.is_none();
        Evaluation {
            review_flags: self.review_flags.clone(),
            ..assemble(
                r,
                self.p.map(|p| p as f64),
                model,
                self.triggers,
                stopped,
                evidence,
                cat,
            )
        }
    }
}

/// What the monitor reads of an evaluation, straight from the compact form.
impl From<&Scored> for Reading {
    fn from(s: &Scored) -> Self {
        Reading {
            s10: s.s10,
            triggers: s.triggers,
            cap: s.cap,
        }
    }
}

/// A message to one worker's tracker, sent at a logical time through the dataflow, so that
/// it is there before the frontier passes that time (D68).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Control {
    /// Keep the tracker's state at this time: a checkpoint.
    Checkpoint,
    /// Resume from this state of a checkpoint at this time (the records up to it enter the
    /// dataflow at it).
    Resume(Box<Kept>),
}

/// The control input: `(worker, message)` at a time.
pub type ControlInput = InputHandle<Ts, CapacityContainerBuilder<Vec<(usize, Control)>>>;

/// Handles to a built dataflow, for one worker.
pub struct Handles {
    /// Accepted records, inserted at their visibility time (shared: every stage that keeps
    /// a record keeps this one copy).
    pub input: InputSession<Ts, Arc<Accepted>, isize>,
    /// Messages to the workers' trackers, each to the worker it names.
    pub control: ControlInput,
    /// Progress of every output.
    pub probe: ProbeHandle<Ts>,
}

impl Handles {
    /// Advances both inputs to `t` (if behind it) and flushes them.
    pub fn advance_to(&mut self, t: Ts) {
        advance_inputs(&mut self.input, &mut self.control, t);
    }
}

/// Advances the record and control inputs to `t` (if behind it) and flushes them: the
/// frontier moves only when both have.
pub fn advance_inputs(
    input: &mut InputSession<Ts, Arc<Accepted>, isize>,
    control: &mut ControlInput,
    t: Ts,
) {
    if *input.time() < t {
        input.advance_to(t);
    }
    if *control.time() < t {
        control.advance_to(t);
    }
    input.flush();
    control.flush();
}

impl std::fmt::Debug for Handles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handles").finish_non_exhaustive()
    }
}

/// Where a worker's output updates go (each update is handed over, not copied).
pub trait Sink: 'static {
    /// An evaluation update of an enterprise (shared with the evaluation stage, which keeps
    /// its current one).
    fn scored(&mut self, uscc: Uscc, scored: Arc<Scored>, time: Ts, diff: isize);
    /// A lifecycle dead-letter update.
    fn dead(&mut self, dead: Dead, time: Ts, diff: isize);
    /// An update of an enterprise's published commitments and verification results.
    fn commitment(&mut self, uscc: Uscc, event: CommitmentEvent, time: Ts, diff: isize);
    /// An update of a record's status steps (D11), with the enterprise each is filed under.
    /// Every step of a record goes to one worker's sink.
    fn status(&mut self, record: Routed, uscc: Uscc, step: Step, time: Ts, diff: isize);
    /// A control message for this worker, sent at `time`.
    fn control(&mut self, control: Control, time: Ts);
}

/// One set of rules the dataflow evaluates under, and the sink its outputs go to.
#[derive(Debug)]
pub struct Variant<S> {
    /// The catalogue.
    pub cat: Arc<Catalogue>,
    /// The model that scores `Q`, if any.
    pub model: Option<Arc<Model>>,
    /// Where the outputs go.
    pub sink: Rc<RefCell<S>>,
}

/// Builds the dataflow in `worker`, scoring `Q` with `model` if one is given; its output
/// updates go to `sink` as they are produced.
pub fn build<S: Sink>(
    worker: &mut timely::worker::Worker,
    cat: Arc<Catalogue>,
    model: Option<Arc<Model>>,
    sink: Rc<RefCell<S>>,
) -> Handles {
    build_side_by_side(worker, Variant { cat, model, sink }, Vec::new())
}

/// Builds the dataflow in `worker` with one evaluation per variant over the same records
/// (`steward what-if`, D78): the version stage reads no rules and is shared; each variant
/// has its own enterprise stage, relations, evaluation and sink. Control messages go to
/// the `first` variant's sink.
pub fn build_side_by_side<S: Sink>(
    worker: &mut timely::worker::Worker,
    first: Variant<S>,
    others: Vec<Variant<S>>,
) -> Handles {
    let probe = ProbeHandle::new();
    let (input, control) = worker.dataflow::<Ts, _, _>(|scope| {
        let (input, records) = scope.new_collection::<Arc<Accepted>, isize>();
        let (control, messages) = scope.new_input::<Vec<(usize, Control)>>();
        let s = first.sink.clone();
        messages
            .unary::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
                Exchange::new(|(w, _): &(usize, Control)| *w as u64),
                "Sink: Control",
                |_, _| {
                    move |input, _output| {
                        input.for_each_stamp(|cap, data| {
                            // Messages are sent at a time, so their stamp has a least one.
                            let Some(&t) = cap.least() else { return };
                            for (_, c) in data.flat_map(|b| b.drain(..)) {
                                s.borrow_mut().control(c, t);
                            }
                        });
                    }
                },
            )
            .probe_with(&probe);
        let versions = versions_stage(records);
        for v in std::iter::once(first).chain(others) {
            let results = evaluations(versions.clone(), &v.cat, v.model);
            deliver_all(results, &v.sink, &probe);
        }
        (input, control)
    });
    Handles {
        input,
        control,
        probe,
    }
}

/// Sends each kind of output to `sink`, on the worker that takes it.
fn deliver_all<'s, S: Sink>(
    (scored, dead, commitments, statuses): Results<'s>,
    sink: &Rc<RefCell<S>>,
    probe: &ProbeHandle<Ts>,
) {
    let s = sink.clone();
    deliver(scored, "Sink: Scored", Pipeline, move |((u, sc), t, r)| {
        s.borrow_mut().scored(u, sc, t, r)
    })
    .probe_with(probe);
    let s = sink.clone();
    // A record's letters and status steps go to one worker, chosen by its `(feed,
    // event_id)`: a letter moving between enterprises nets there, and a process of a
    // cluster owns every outcome of the records it holds (`steward run`'s summary).
    let by_id = Exchange::new(|(d, _, _): &(Dead, Ts, isize)| d.id.hashed());
    deliver(dead, "Sink: Dead", by_id, move |(d, t, r)| {
        s.borrow_mut().dead(d, t, r)
    })
    .probe_with(probe);
    let s = sink.clone();
    deliver(
        commitments,
        "Sink: Commitments",
        Pipeline,
        move |((u, c), t, r)| s.borrow_mut().commitment(u, c, t, r),
    )
    .probe_with(probe);
    let s = sink.clone();
    // A record's steps come from the version and enterprise stages: one worker takes
    // them all and keeps the latest (the worker of its letters, above).
    let by_record = Exchange::new(|((k, _), _, _): &((Routed, _), Ts, isize)| k.route);
    deliver(
        statuses,
        "Sink: Statuses",
        by_record,
        move |((k, (u, st)), t, r)| s.borrow_mut().status(k, u, st, t, r),
    )
    .probe_with(probe);
}

/// The dataflow's outputs: evaluations, lifecycle dead letters, commitment events and
/// record status steps.
type Results<'s> = (
    VecCollection<'s, Ts, (Uscc, Arc<Scored>)>,
    VecCollection<'s, Ts, Dead>,
    VecCollection<'s, Ts, (Uscc, CommitmentEvent)>,
    VecCollection<'s, Ts, (Routed, (Uscc, Step))>,
);

/// The version stage's outputs: the winning records with their USCCs, its dead letters,
/// and its status steps at their own times.
type Versions<'s> = (
    VecCollection<'s, Ts, (Uscc, Arc<Accepted>)>,
    VecCollection<'s, Ts, Dead>,
    VecCollection<'s, Ts, (Routed, (Uscc, Step))>,
);

/// Stage 1, which reads no rules: versions per `(feed, event_id)`, keyed by its
/// fingerprint.
fn versions_stage<'s>(records: VecCollection<'s, Ts, Arc<Accepted>>) -> Versions<'s> {
    let versions = records.map(|a| (fingerprint(&a), a)).reduce_ordered(
        "Versions",
        Outputs::Recomputed,
        |_: &u64, vals, out| versions(vals, out),
    );
    let [winners, version_dead, version_statuses] = split(versions, |(_, x)| match x {
        Version::Winner(..) => 0,
        Version::Dead(_) => 1,
        Version::Status(..) => 2,
    });
    let winners = winners.flat_map(|(_, x)| match x {
        Version::Winner(u, a) => Some((u, a)),
        _ => None,
    });
    let version_dead = version_dead.flat_map(|(_, x)| match x {
        Version::Dead(d) => Some(*d),
        _ => None,
    });
    // A version's status step at its own time.
    let version_statuses = version_statuses
        .inner
        .flat_map(|((_, x), t, r)| match x {
            Version::Status(k, u, s) => Some(((k, (u, s)), t.max(s.from), r)),
            _ => None,
        })
        .as_collection();
    (winners, version_dead, version_statuses)
}

/// Stages 2–4 under one catalogue and model: from the winning records to evaluations,
/// lifecycle dead letters, commitment events and record status steps.
fn evaluations<'s>(
    (winners, version_dead, version_statuses): Versions<'s>,
    cat: &Arc<Catalogue>,
    model: Option<Arc<Model>>,
) -> Results<'s> {
    // 2. Per enterprise, one state machine (D71): lifecycle and facts on its record table,
    // derived again only where a change reaches (D101); each fact active from
    // `max(v, start)` to `max(v, end)` by the key's timers; what the active facts decide,
    // and the links other enterprises read.
    let seed = Seed::new(RandomState::new().hash_one(winners.inner.scope().index()));
    let stage = Stage::new(cat, seed);
    let firms = enterprises(winners, stage);

    // Its outputs by kind.
    let (own, links, persons, dead, commitments, statuses) = by_kind(firms);
    let dead = dead.concat(version_dead);
    // Each record's status steps; its status is the latest (D11, kept by the tracker).
    let statuses = statuses.concat(version_statuses);

    // 3. The links by kind, each moved to the operators that read it.
    let [red, stopped, reps, holders, affiliates] = split(links, |(_, l)| match l {
        Link::Red => 0,
        Link::Stopped => 1,
        Link::Rep(_) => 2,
        Link::Holder(_) => 3,
        Link::Affiliate(_) => 4,
    });
    // Enterprises with a red trigger: one arrangement serves three joins.
    let red = red.map(|(u, _)| u).arrange_by_self_named("Arrange: Red");
    let stopped = stopped.map(|(u, _)| u);
    // (person, enterprise), arranged once for both joins on the person.
    let reps = reps.flat_map(|(u, l)| match l {
        Link::Rep(p) => Some((p, u)),
        _ => None,
    });
    let reps_by_person = reps.clone().arrange_by_key_named("Arrange: Reps");
    let red_reps = reps
        .map(|(p, u)| (u, p))
        .join_core(red.clone(), |u, p, _| Some((p.clone(), *u)));

    // Rows 45–49 inputs.
    let person = persons.join_core(reps_by_person.clone(), |_p, f, u| {
        Some((*u, Part::Person(f.clone())))
    });
    let rep_others = red_reps.join_core(reps_by_person, |_p, other, u| {
        (u != other).then_some((*u, Part::RepOtherRed(*other)))
    });
    let holders = holders
        .flat_map(|(u, l)| match l {
            Link::Holder(h) => Some((h, u)),
            _ => None,
        })
        .join_core(red.clone(), |h, u, _| Some((*u, Part::HolderRed(*h))));
    let affiliates = affiliates.flat_map(|(u, l)| match l {
        Link::Affiliate(a) => Some((a, u)),
        _ => None,
    });
    let affiliates_red = affiliates
        .clone()
        .join_core(red, |a, u, _| Some((*u, Part::AffiliateRed(*a))));
    let affiliates_scored = affiliates
        .antijoin(stopped)
        .map(|(a, u)| (u, Part::AffiliateScored(a)));

    // 4. The evaluation.
    let c = cat.clone();
    let scored = own
        .map(|(u, l)| (u, Part::Own(l)))
        .concat(person)
        .concat(rep_others)
        .concat(holders)
        .concat(affiliates_red)
        .concat(affiliates_scored)
        .reduce_ordered("Evaluate", Outputs::Stored, move |_u: &Uscc, parts, out| {
            if let Some(sc) = evaluate_enterprise(parts, model.as_deref(), &c) {
                out.push((Arc::new(sc), 1));
            }
        });
    (scored, dead, commitments, statuses)
}

/// A record's `(feed, event_id)` as the version stage's key: a 64-bit fingerprint, with no
/// string to clone, hash or compare (D67). Records of two ids with one fingerprint share a
/// key, and [`versions`] resolves each id apart: a collision is handled, not assumed away.
fn fingerprint(a: &Accepted) -> u64 {
    (a.event.feed(), a.event.event_id.as_str()).hashed()
}

/// The version stage's output for the versions under one fingerprint (sorted, counts
/// non-zero): for each `(feed, event_id)` among them, its winner, dead letters and status
/// steps ([`resolve_versions`]).
fn versions(vals: &[(Arc<Accepted>, isize)], out: &mut Vec<(Version, isize)>) {
    fn id(a: &Accepted) -> (rules::event::Feed, &str) {
        (a.event.feed(), a.event.event_id.as_str())
    }
    // Almost always the versions of one id (most often a single version, whose id is not
    // read here): resolved as they are, with no grouping.
    let first = &vals[0].0;
    if vals[1..].iter().all(|(a, _)| id(a) == id(first)) {
        resolve(vals, vals.iter().map(|(a, _)| a.as_ref()).collect(), out);
        return;
    }
    let mut ids: Vec<_> = vals.iter().map(|(a, _)| id(a)).collect();
    ids.sort_unstable();
    ids.dedup();
    for this in ids {
        let vs = vals
            .iter()
            .map(|(a, _)| a.as_ref())
            .filter(|a| id(a) == this)
            .collect();
        resolve(vals, vs, out);
    }
}

/// The version stage's output for the versions `vs` of one `(feed, event_id)`, each
/// named by its shared copy among `vals`.
fn resolve(vals: &[(Arc<Accepted>, isize)], vs: Vec<&Accepted>, out: &mut Vec<(Version, isize)>) {
    let o = resolve_versions(&vs);
    // The shared copy of a version.
    let shared = |v: &Accepted| {
        let a = vals.iter().find(|(a, _)| std::ptr::eq(a.as_ref(), v));
        Arc::clone(&a.expect("one of the versions").0)
    };
    let mut steps = status::of_versions(&vs, &o);
    // The winner's first status step (from `Ts::MIN`: at the winner's time).
    steps.extend(o.winner.map(status::active));
    for (a, s) in steps {
        let u = Uscc::admitted(&a.event.uscc);
        out.push((
            Version::Status(Routed::new(Record::Shared(shared(a))), u, s),
            1,
        ));
    }
    for d in o.dead {
        out.push((Version::Dead(Box::new(d)), 1));
    }
    if let Some(w) = o.winner {
        out.push((Version::Winner(Uscc::admitted(&w.event.uscc), shared(w)), 1));
    }
}

/// The enterprise stage: one state machine per enterprise, on its record table.
fn enterprises<'s>(
    winners: VecCollection<'s, Ts, (Uscc, Arc<Accepted>)>,
    stage: Stage,
) -> VecCollection<'s, Ts, (Uscc, Out)> {
    winners.process_timed(
        "Enterprise",
        move |u: &Uscc, s: &mut Firm, t, changes, out| s.step(*u, t, changes, out, &stage),
    )
}

/// The enterprise stage's outputs by kind.
type Kinds<'s> = (
    VecCollection<'s, Ts, (Uscc, Arc<Local>)>,
    VecCollection<'s, Ts, (Uscc, Link)>,
    VecCollection<'s, Ts, (Person, Arc<Fact>)>,
    VecCollection<'s, Ts, Dead>,
    VecCollection<'s, Ts, (Uscc, CommitmentEvent)>,
    VecCollection<'s, Ts, (Routed, (Uscc, Step))>,
);

/// Each output of the enterprise stage to the stream of its kind, in one operator
/// (personal facts keyed by their person).
fn by_kind<'s>(firms: VecCollection<'s, Ts, (Uscc, Out)>) -> Kinds<'s> {
    let mut builder = OperatorBuilder::new("By kind".to_owned(), firms.inner.scope());
    let mut input = builder.new_input(firms.inner, Pipeline);
    builder.set_notify_for(0, FrontierInterest::Never);
    let (mut own_out, own) = builder.new_output();
    let (mut links_out, links) = builder.new_output();
    let (mut persons_out, persons) = builder.new_output();
    let (mut dead_out, dead) = builder.new_output();
    let (mut commitments_out, commitments) = builder.new_output();
    let (mut statuses_out, statuses) = builder.new_output();
    builder.build(move |_| {
        move |_frontiers| {
            let mut own_out = own_out.activate();
            let mut links_out = links_out.activate();
            let mut persons_out = persons_out.activate();
            let mut dead_out = dead_out.activate();
            let mut commitments_out = commitments_out.activate();
            let mut statuses_out = statuses_out.activate();
            input.for_each_stamp(|cap, data| {
                let (mut o, mut l, mut p, mut d, mut c, mut s) = (
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                );
                for ((u, x), t, r) in data.flat_map(|b| b.drain(..)) {
                    match x {
                        Out::Own(x) => o.push(((u, x), t, r)),
                        Out::Link(x) => l.push(((u, x), t, r)),
                        Out::Person(person, f) => p.push(((person, f), t, r)),
                        Out::Dead(x) => d.push((*x, t, r)),
                        Out::Commitment(e) => c.push(((u, *e), t, r)),
                        Out::Status(x) => {
                            let (key, step) = *x;
                            s.push(((key, (u, step)), t, r));
                        }
                    }
                }
                own_out.give(&cap, &mut o);
                links_out.give(&cap, &mut l);
                persons_out.give(&cap, &mut p);
                dead_out.give(&cap, &mut d);
                commitments_out.give(&cap, &mut c);
                statuses_out.give(&cap, &mut s);
            });
        }
    });
    (
        own.as_collection(),
        links.as_collection(),
        persons.as_collection(),
        dead.as_collection(),
        commitments.as_collection(),
        statuses.as_collection(),
    )
}

/// Hands every update of `c` to `give`, moving it, in an operator (on the worker that made
/// the update, or where `pact` sends it) whose (empty) output stream is complete for a
/// time only once `give` has seen every update at it, so a probe on it says when a sink
/// has everything up to a time.
fn deliver<'s, D, P>(
    c: VecCollection<'s, Ts, D>,
    name: &str,
    pact: P,
    mut give: impl FnMut((D, Ts, isize)) + 'static,
) -> timely::dataflow::StreamVec<'s, Ts, ()>
where
    D: differential_dataflow::Data,
    P: timely::dataflow::channels::pact::ParallelizationContract<Ts, Vec<(D, Ts, isize)>>,
{
    c.inner
        .unary::<CapacityContainerBuilder<Vec<()>>, _, _, _>(pact, name, |_, _| {
            move |input, _output| {
                input.for_each(|_, data| data.drain(..).for_each(&mut give));
            }
        })
}

/// Splits a collection in `N` by `part` (which returns an index below `N`), moving each
/// update to its part instead of cloning it for every consumer: in one operator, each
/// batch of a time straight to its part's output (timely's `partition` sorts them by part
/// in a map first and builds each part's containers again).
fn split<'s, D, const N: usize>(
    c: VecCollection<'s, Ts, D>,
    part: impl Fn(&D) -> usize + 'static,
) -> [VecCollection<'s, Ts, D>; N]
where
    D: differential_dataflow::Data,
{
    let mut builder = OperatorBuilder::new("Split".to_owned(), c.inner.scope());
    let mut input = builder.new_input(c.inner, Pipeline);
    builder.set_notify_for(0, FrontierInterest::Never);
    let (mut outputs, streams): (Vec<_>, Vec<_>) = (0..N).map(|_| builder.new_output()).unzip();
    builder.build(move |_| {
        move |_frontiers| {
            let mut handles: Vec<_> = outputs.iter_mut().map(|o| o.activate()).collect();
            input.for_each_stamp(|cap, data| {
                let mut parts: [Vec<(D, Ts, isize)>; N] = std::array::from_fn(|_| Vec::new());
                for (d, t, r) in data.flat_map(|b| b.drain(..)) {
                    parts[part(&d)].push((d, t, r));
                }
                for (handle, updates) in handles.iter_mut().zip(&mut parts) {
                    if !updates.is_empty() {
                        handle.give(&cap, updates);
                    }
                }
            });
        }
    });
    let streams: Vec<_> = streams.into_iter().map(|s| s.as_collection()).collect();
    streams
        .try_into()
        .unwrap_or_else(|_| unreachable!("N outputs were built"))
}

/// What the enterprise stage reads besides its input.
pub(crate) struct Stage {
    links: LinkInputs,
    /// [`KindSet::offsite`] of the catalogue.
    offsite: KindSet,
    /// The seed of the record tables' fingerprints (D92), random for each worker: the
    /// tables name nothing outside the stage.
    pub(crate) seed: Seed,
    pub(crate) cat: Arc<Catalogue>,
    /// What an enterprise with no active facts decides, shared by every new one (D108).
    empty: Arc<Local>,
}

impl Stage {
    /// The stage under catalogue `cat`, its record tables fingerprinted with `seed`.
    pub(crate) fn new(cat: &Arc<Catalogue>, seed: Seed) -> Stage {
        Stage {
            links: LinkInputs::new(cat),
            offsite: KindSet::offsite(cat),
            seed,
            cat: cat.clone(),
            empty: LocalState::<Arc<Fact>>::empty(cat, &by_event_id),
        }
    }

    /// How the record table reads enterprise `own`, fingerprinted with `seed`.
    pub(crate) fn context<'a>(&'a self, own: Uscc, seed: Seed, ties: Ties<'a>) -> Context<'a> {
        Context {
            own,
            seed,
            ties,
            cat: &self.cat,
            offsite: &self.offsite,
        }
    }
}

/// A fact that starts (`+r`) or ends (`−r`) at a timer's time.
type Due = (Arc<Fact>, isize);

/// The enterprise stage's state of one enterprise (D71): its record table (D101), its
/// active facts with what they decide, and what it last sent of those.
#[derive(Default)]
struct Firm {
    life: TableLife,
    /// Its active facts (not the personal ones, which go to their person's joins).
    facts: LocalState<Arc<Fact>>,
    /// Whether it has a record in effect: the table's `Known` (D52).
    known: isize,
    /// The facts that start or end later, earliest on top (the stage waits for it).
    timers: BinaryHeap<Reverse<(Ts, Due)>>,
    /// The links last sent (sorted, each once).
    links: Vec<(Link, isize)>,
    /// What its facts decided when last sent (while known).
    own: Option<Arc<Local>>,
}

impl Folded for Firm {
    fn is_empty(&self) -> bool {
        self.life.is_empty()
            && self.facts.is_empty()
            && self.known == 0
            && self.timers.is_empty()
            && self.links.is_empty()
            && self.own.is_none()
    }

    fn due(&self) -> Option<Ts> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }
}

impl Firm {
    /// One step of enterprise `own` at `t`: the record changes then and the facts that
    /// start or end then; the stage's outputs at `t` or at their own later times; a timer
    /// for every fact that starts or ends later.
    fn step(
        &mut self,
        own: Uscc,
        t: Ts,
        changes: &mut Vec<(Arc<Accepted>, isize)>,
        out: &mut Vec<(Out, Ts, isize)>,
        stage: &Stage,
    ) {
        // A new enterprise (or one that kept nothing) starts from the stage's empty state.
        if self.is_empty() {
            self.facts = LocalState::with_empty(Arc::clone(&stage.empty));
        }
        // The stage runs the step at every time the key is due, so none is before `t`.
        let mut due = Vec::new();
        while self.timers.peek().is_some_and(|Reverse((u, _))| *u <= t) {
            due.extend(self.timers.pop().map(|Reverse((_, d))| d));
        }
        let mut derived = Vec::new();
        if !changes.is_empty() {
            self.life.step(own, changes, stage, &mut derived);
        }
        // The facts that start or end now (with the ones due), and whether `known` changed.
        let mut now: Vec<Due> = Vec::new();
        let mut own = false;
        for (d, r) in derived {
            match d {
                Derived::Known => {
                    self.known += r;
                    own = true;
                }
                Derived::Fact(f) => {
                    let (from, to) = (t.max(f.start), t.max(f.end));
                    if let Some(person) = f.what.person() {
                        let person = Person::new(person);
                        if to < Ts::MAX {
                            out.push((Out::Person(person.clone(), Arc::clone(&f)), to, -r));
                        }
                        out.push((Out::Person(person, f), from, r));
                        continue;
                    }
                    if to == t {
                        now.push((Arc::clone(&f), -r));
                    } else if to < Ts::MAX {
                        self.timers.push(Reverse((to, (Arc::clone(&f), -r))));
                    }
                    if from == t {
                        now.push((f, r));
                    } else {
                        self.timers.push(Reverse((from, (f, r))));
                    }
                }
                Derived::Dead(x) => {
                    let from = t.max(x.at);
                    out.push((Out::Dead(x), from, r));
                }
                Derived::Commitment(e) => {
                    let from = t.max(e.from());
                    out.push((Out::Commitment(e), from, r));
                }
                Derived::Status(x) => {
                    let from = t.max(x.1.from);
                    out.push((Out::Status(x), from, r));
                }
            }
        }
        let mut links = false;
        let entering = now.iter().chain(&due).filter(|(_, r)| *r > 0).count();
        self.facts.reserve(entering);
        for (f, r) in now.into_iter().chain(due) {
            own = true;
            links |= stage.links.reads(&f.what);
            self.facts.update(f, r);
        }
        if !own {
            return;
        }
        let l = self.facts.local(&stage.cat, &by_event_id);
        if links {
            let mut new = links_of(l, &stage.cat);
            let mut diffs = Vec::new();
            self.links = difference(&mut new, std::mem::take(&mut self.links), true, &mut diffs);
            out.extend(diffs.into_iter().map(|(x, r)| (Out::Link(x), t, r)));
        }
        // `Local`'s equality tests a shared copy by pointer first.
        let new = (self.known > 0).then(|| Arc::clone(l));
        if self.own != new {
            if let Some(old) = self.own.take() {
                out.push((Out::Own(old), t, -1));
            }
            if let Some(new) = &new {
                out.push((Out::Own(Arc::clone(new)), t, 1));
            }
            self.own = new;
        }
    }
}

/// What other enterprises read about an enterprise whose own facts decide `l` (sorted,
/// each once).
fn links_of(l: &Local, cat: &Catalogue) -> Vec<(Link, isize)> {
    let mut out = Vec::new();
    if red_trigger(l, cat) {
        out.push(Link::Red);
    }
    if l.stopped() {
        out.push(Link::Stopped);
    }
    if let Some((p, _)) = &l.legal_rep {
        out.push(Link::Rep(Person::new(p)));
    }
    for (h, _) in &l.shareholders {
        out.push(Link::Holder(Uscc::admitted(h)));
    }
    for (a, _) in &l.investments {
        out.push(Link::Affiliate(Uscc::admitted(a)));
    }
    out.sort();
    out.dedup();
    out.into_iter().map(|x| (x, 1)).collect()
}

/// Assembles `Cross` from an enterprise's parts (sorted, counts non-zero) and evaluates
/// it with what its own facts decide; nothing while it has no record in effect.
fn evaluate_enterprise(
    parts: &[(Part, isize)],
    model: Option<&Model>,
    cat: &Catalogue,
) -> Option<Scored> {
    let mut own = None;
    let mut cross = Cross::default();
    let mut dishonest: BTreeSet<Src> = BTreeSet::new();
    let mut latest_score: Option<&Fact> = None;
    for (part, r) in parts {
        if *r <= 0 {
            continue;
        }
        match part {
            Part::Own(l) => own = Some(l),
            Part::Person(f) => match &f.what {
                What::PersonScore(_) => {
                    if latest_score.is_none_or(|g| g.latest_key() < f.latest_key()) {
                        latest_score = Some(f.as_ref());
                    }
                }
                _ => {
                    dishonest.insert(f.src.clone());
                }
            },
            Part::RepOtherRed(u) => cross.rep_others_red.push(format_compact!("{u}")),
            Part::HolderRed(u) => cross.shareholders_red.push(format_compact!("{u}")),
            Part::AffiliateRed(u) => cross.affiliates_red.push(format_compact!("{u}")),
            Part::AffiliateScored(_) => cross.affiliates_all += 1,
        }
    }
    let l = own?;
    cross.person_score = latest_score.and_then(|f| match &f.what {
        What::PersonScore(s) => Some((s.score, s.scale_max, f.src.clone())),
        _ => None,
    });
    cross.person_dishonest = dishonest.into_iter().collect();
    Some(Scored::new(decide(l, &cross, model, cat), l))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use differential_dataflow::consolidation::consolidate;
    use rules::decode::{decode, digest, DecodeConfig};

    /// A LIST record of `event_id` at `version`, visible at `v`.
    pub(crate) fn listed(event_id: &str, version: u32, v: Ts) -> (Arc<Accepted>, isize) {
        let line = serde_json::json!({
            "uscc": rules::uscc::with_check("91330802MA2A00017").expect("prefix"),
            "feed": "LIST", "kind": "LISTED", "event_id": event_id, "version": version,
            "list_kind": "ABNORMAL",
            "event_time": "2024-01-01T00:00:00Z", "ingest_time": "2024-01-01T00:00:05Z",
        });
        let event = decode(line.to_string().as_bytes(), None, &DecodeConfig::default())
            .expect("valid")
            .event;
        let a = Accepted {
            v,
            digest: digest(&event),
            event,
            origin: None,
        };
        (Arc::new(a), 1)
    }

    fn run(vals: &[(Arc<Accepted>, isize)]) -> Vec<(Version, isize)> {
        let mut vals = vals.to_vec();
        vals.sort();
        let mut out = Vec::new();
        versions(&vals, &mut out);
        consolidate(&mut out);
        out
    }

    /// Two records whose fingerprints collide share the stage's key: each is resolved as
    /// if it were alone, whatever the order of their versions.
    #[test]
    fn ids_sharing_a_fingerprint_are_resolved_apart() {
        let a = [listed("A", 1, 10), listed("A", 2, 20)];
        let b = [listed("B", 1, 15), listed("B", 1, 16)];
        let mut alone = [run(&a), run(&b)].concat();
        consolidate(&mut alone);
        let together = run(&[a[1].clone(), b[0].clone(), a[0].clone(), b[1].clone()]);
        assert_eq!(together, alone);
        let winners = together
            .iter()
            .filter(|(x, _)| matches!(x, Version::Winner(..)))
            .count();
        assert_eq!(winners, 2, "one winner per record: {together:?}");
    }

    /// A status step's record crosses processes as its key alone (D76) and arrives with the
    /// numbers it left with (D112): the worker its dead letters go to, and its prefix.
    #[test]
    fn a_routed_record_travels_as_its_key() {
        let (a, _) = listed("P1", 1, 5);
        let routed = Routed::new(Record::Shared(Arc::clone(&a)));
        let bytes = bincode::serialize(&routed).expect("serializes");
        let key = rules::status::RecordKey::of(&a);
        assert_eq!(bytes, bincode::serialize(&key).expect("serializes"));
        let back: Routed = bincode::deserialize(&bytes).expect("deserializes");
        assert!(matches!(back.record, Record::Key(_)));
        assert_eq!((back.route, back.prefix), (routed.route, routed.prefix));
        assert_eq!(back.route, key.id.hashed());
        assert_eq!(back, routed);
    }

    /// Persons whose hashes collide are still two persons: they order and compare by
    /// their texts, and they go to one worker (the hash alone picks it). Persons with
    /// different hashes order by the hash, whatever their texts.
    #[test]
    fn persons_sharing_a_hash_stay_apart() {
        let person = |print, text: &str| Person {
            print,
            text: text.into(),
        };
        let (a, b) = (person(7, "a"), person(7, "b"));
        assert_ne!(a, b);
        assert!(a < b);
        assert_eq!(a.hashed(), b.hashed());
        assert!(person(6, "b") < person(7, "a"));
        let p = Person::new(&"c".into());
        assert_eq!(p.print, CompactString::from("c").hashed());
        assert_eq!(p, Person::new(&"c".into()));
    }
}
