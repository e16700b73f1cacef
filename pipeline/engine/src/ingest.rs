//! Ingest for replays: decode and validate each raw record, dead-letter rejects with their
//! reason, drop duplicate deliveries, and give each accepted record its visibility time
//! from the replay clock (`semantics.md` §1).

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use connectors::dead_letter::DeadLetter;
use connectors::metrics::Metrics;
use rules::catalogue::Catalogue;
use rules::decode::{decode, digest_of, encode, DecodeConfig};
use rules::event::{Event, Feed};
use rules::lifecycle::{Accepted, RecordId};
use rules::reject::{Reason, Rejection};
use rules::time::{format_rfc3339, Ts};
use rules::CompactString;

/// Reads records one at a time: decodes, dead-letters rejects, drops duplicates and
/// assigns visibility times with the replay clock.
pub struct Ingest<'c, W: Write> {
    cat: &'c Catalogue,
    cfg: DecodeConfig,
    /// Where dead letters are written, one JSON object per line.
    pub dead: W,
    /// Accepted records with their visibility times.
    pub log: Vec<Accepted>,
    /// (feed, event_id) → what was admitted at its highest version.
    seen: HashMap<(Feed, CompactString), Top>,
    /// Largest `ingest_time` read; the watermark trails it by the allowed lateness.
    max_ingest: Ts,
    /// The wall clock, when live; `None` replays.
    wall: Option<fn() -> Ts>,
    /// This process's wall clock, against which an `ingest_time` from the future is
    /// rejected (whether live or not).
    clock: fn() -> Ts,
    /// Records read.
    pub read: u64,
    /// Duplicates dropped.
    pub duplicate: u64,
    /// The `(feed, event_id)` of each duplicate dropped, when asked for
    /// ([`Ingest::noting_drops`]).
    pub dropped: Option<Vec<RecordId>>,
    /// Rejections by reason code.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Counts reads, rejects and duplicates by feed, when set.
    metrics: Option<Metrics>,
}

impl<W: Write> std::fmt::Debug for Ingest<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("read", &self.read)
            .field("accepted", &self.log.len())
            .field("duplicate", &self.duplicate)
            .field("rejected", &self.rejected)
            .finish_non_exhaustive()
    }
}

impl<'c, W: Write> Ingest<'c, W> {
    /// An ingest writing dead letters to `dead`.
    pub fn new(cat: &'c Catalogue, dead: W) -> Self {
        Ingest {
            cat,
            cfg: DecodeConfig::default(),
            dead,
            log: Vec::new(),
            seen: HashMap::new(),
            max_ingest: Ts::MIN,
            wall: None,
            clock: now,
            read: 0,
            duplicate: 0,
            dropped: None,
            rejected: BTreeMap::new(),
            metrics: None,
        }
    }

    /// Also notes which record each dropped duplicate was a copy of: a process of a cluster
    /// counts the duplicates of the records it owns.
    pub fn noting_drops(mut self) -> Self {
        self.dropped = Some(Vec::new());
        self
    }

    /// Also counts records read, rejected and duplicate in `metrics`, by feed.
    pub fn metered(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The live clock (`semantics.md` §1): the wall clock also advances the watermark, so
    /// expiries happen on time while feeds are idle.
    pub fn live(mut self, wall: fn() -> Ts) -> Self {
        self.wall = Some(wall);
        self
    }

    /// Reads the wall clock from `clock` instead of the system's, for `future_ingest_time`.
    pub fn clocked(mut self, clock: fn() -> Ts) -> Self {
        self.clock = clock;
        self
    }

    /// The watermark: the largest `ingest_time` read minus the allowed lateness, and when
    /// live at least the wall clock minus the lateness.
    pub fn watermark(&self) -> Ts {
        let replay = self.max_ingest;
        let wall = self.wall.map_or(Ts::MIN, |now| now());
        replay
            .max(wall)
            .saturating_sub(self.cat.lifecycle.lateness_secs)
    }

    /// Decodes one raw record read from `feed`'s topic at `offset`; a reject goes to the
    /// dead letters.
    pub fn decode(
        &mut self,
        feed: Feed,
        offset: u64,
        line: &[u8],
    ) -> std::io::Result<Option<Event>> {
        match self.check(feed, line) {
            Ok(e) => Ok(Some(e)),
            Err(rej) => {
                // The shape of `serve`'s letters: a file is partition 0 of its feed's topic,
                // and the offset is the line's index (D54).
                let letter = DeadLetter {
                    original: line.to_vec(),
                    source_topic: feed.default_topic(),
                    partition: 0,
                    offset: offset as i64,
                    reason: rej.reason.as_str().to_owned(),
                    message: rej.message,
                    // When it was rejected (wall clock); lifecycle letters carry their
                    // logical time.
                    time: now(),
                };
                self.dead.write_all(&letter.to_json())?;
                self.dead.write_all(b"\n")?;
                Ok(None)
            }
        }
    }

    /// Decodes and validates one raw record of `feed`, counting it as read, and a reject by
    /// its reason.
    pub fn check(&mut self, feed: Feed, line: &[u8]) -> Result<Event, Rejection> {
        self.read += 1;
        if let Some(m) = &self.metrics {
            m.records_read.with_label_values(&[feed.as_str()]).inc();
        }
        decode(line, Some(feed), &self.cfg)
            .map(|d| d.event)
            .and_then(|e| self.not_from_the_future(e))
            .inspect_err(|rej| {
                *self.rejected.entry(rej.reason.as_str()).or_default() += 1;
                if let Some(m) = &self.metrics {
                    m.rejected(Some(feed), rej.reason);
                }
            })
    }

    /// Rejects a record whose `ingest_time` is more than the catalogue's tolerance after this
    /// process's wall clock (`events.md`): one such record would move the watermark and
    /// make every later record late. The rejection is a dead letter (and, in `serve`, an
    /// entry of the log), so a replay agrees with the decision taken here.
    fn not_from_the_future(&self, e: Event) -> Result<Event, Rejection> {
        let now = (self.clock)();
        let tolerance = self.cat.lifecycle.future_ingest_tolerance_secs;
        let ahead = e.ingest_time.saturating_sub(now);
        if ahead > tolerance {
            return Err(Rejection::new(
                Reason::FutureIngestTime,
                format!(
                    "ingest_time {} is {ahead} s after this process's clock ({}), at most \
                     {tolerance} s allowed",
                    format_rfc3339(e.ingest_time),
                    format_rfc3339(now),
                ),
            ));
        }
        Ok(e)
    }

    /// Admits a decoded record in arrival order: duplicates are counted, the rest get their
    /// visibility time from the replay clock.
    pub fn admit(&mut self, e: Event) {
        let ingest = e.ingest_time;
        if let Some(a) = self.admit_at(e, self.watermark()) {
            self.max_ingest = self.max_ingest.max(ingest);
            self.log.push(a);
        }
    }

    /// Admits a decoded record against `watermark`: `None` for a duplicate delivery (counted),
    /// else the accepted record, visible at `max(ingest_time, watermark)`.
    pub fn admit_at(&mut self, e: Event, watermark: Ts) -> Option<Accepted> {
        self.admit_encoded(e, watermark).map(|(a, _)| a)
    }

    /// [`Ingest::admit_at`], also giving the record's canonical bytes (what its digest is
    /// taken of), which the log stores.
    pub fn admit_encoded(&mut self, e: Event, watermark: Ts) -> Option<(Accepted, Vec<u8>)> {
        let canonical = encode(&e);
        let dg = digest_of(&canonical);
        let admission = self.take(&e, dg);
        let feed = e.feed().as_str();
        let m = self.metrics.as_ref();
        match admission {
            Admission::Duplicate => {
                self.duplicate += 1;
                if let Some(d) = &mut self.dropped {
                    d.push((e.feed(), e.event_id.clone()));
                }
                m.inspect(|m| m.records_duplicate.with_label_values(&[feed]).inc());
                return None;
            }
            // Kept for the records' statuses, but a duplicate from the start.
            Admission::Loser => {
                m.inspect(|m| m.records_duplicate.with_label_values(&[feed]).inc());
            }
            Admission::Applied => {
                m.inspect(|m| m.records_applied.with_label_values(&[feed]).inc());
            }
            // The record it beat was counted applied: now it is a duplicate.
            Admission::Winner => {
                m.inspect(|m| {
                    m.records_applied.with_label_values(&[feed]).inc();
                    m.withdrawn(e.feed(), None);
                });
            }
        }
        // A record behind the watermark is late and becomes visible at the watermark.
        let a = Accepted {
            v: e.ingest_time.max(watermark),
            digest: dg,
            event: e,
            origin: None,
        };
        Some((a, canonical))
    }

    /// Takes back the duplicate-detection state of a record accepted before a restart.
    pub fn restore(&mut self, a: &Accepted) {
        self.take(&a.event, a.digest);
    }

    /// Takes a record of digest `dg` into the duplicate-detection state.
    fn take(&mut self, e: &Event, dg: [u8; 32]) -> Admission {
        let class = e.body.is_retraction();
        match self.seen.entry((e.feed(), e.event_id.clone())) {
            Entry::Occupied(mut o) => o.get_mut().admit(e.version, class, dg),
            Entry::Vacant(v) => {
                v.insert(Top::new(e.version, class, dg));
                Admission::Applied
            }
        }
    }
}

/// How [`Top::admit`] takes a record (`semantics.md` §2, D52).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    /// A higher version, or the first of its version and kind class: applied.
    Applied,
    /// A lower version, or the same bytes again: dropped.
    Duplicate,
    /// An equal version of the same class with a larger digest than one admitted: it loses
    /// the tie, so it counts as a duplicate, but it enters the log so that every record's
    /// status is the same in any arrival order.
    Loser,
    /// An equal version of the same class with a smaller digest than the one admitted: it
    /// wins the tie, and the one it beat becomes a duplicate.
    Winner,
}

/// What was admitted of one `(feed, event_id)` at its highest version: each digest with its
/// kind class (`true` for a retraction). The record of the other class at the same version
/// is admitted for the lifecycle to dead-letter as `version_kind_change`.
#[derive(Debug, Clone)]
struct Top {
    version: u32,
    first: ([u8; 32], bool),
    more: Vec<([u8; 32], bool)>,
}

impl Top {
    fn new(version: u32, class: bool, digest: [u8; 32]) -> Self {
        Top {
            version,
            first: (digest, class),
            more: Vec::new(),
        }
    }

    /// Takes a record of `version`, `class` and `digest`, updating the state.
    fn admit(&mut self, version: u32, class: bool, digest: [u8; 32]) -> Admission {
        if version < self.version {
            return Admission::Duplicate;
        }
        if version > self.version {
            *self = Top::new(version, class, digest);
            return Admission::Applied;
        }
        let admitted = || std::iter::once(&self.first).chain(&self.more);
        if admitted().any(|(d, _)| *d == digest) {
            return Admission::Duplicate;
        }
        let smallest = admitted()
            .filter(|(_, c)| *c == class)
            .map(|(d, _)| *d)
            .min();
        self.more.push((digest, class));
        match smallest {
            None => Admission::Applied,
            Some(s) if s < digest => Admission::Loser,
            Some(_) => Admission::Winner,
        }
    }
}

/// Wall-clock time in whole seconds.
pub fn now() -> Ts {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as Ts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rules::time::{format_rfc3339, parse_rfc3339};
    use serde_json::json;

    fn line(id: &str, ingest: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "uscc": rules::uscc::with_check("91330802MA2A00017").expect("valid prefix"),
            "feed": "LIST", "kind": "LISTED", "event_id": id, "list_kind": "ABNORMAL",
            "event_time": ingest, "ingest_time": ingest,
        }))
        .expect("json")
    }

    fn admit_all(ingest: &mut Ingest<'_, std::io::Sink>, lines: &[(&str, &str)]) -> Vec<String> {
        for (id, t) in lines {
            let e = ingest
                .decode(Feed::List, 0, &line(id, t))
                .expect("sink")
                .expect("valid");
            ingest.admit(e);
        }
        ingest.log.iter().map(|a| format_rfc3339(a.v)).collect()
    }

    #[test]
    fn replay_clock_makes_records_behind_the_watermark_late() {
        let cat = Catalogue::embedded();
        let mut ingest = Ingest::new(&cat, std::io::sink());
        let vs = admit_all(
            &mut ingest,
            &[
                ("a", "2024-01-01T10:00:00Z"),
                ("b", "2024-01-01T09:55:00Z"), // within the 10 minutes: on time
                ("c", "2024-01-01T09:45:00Z"), // 15 minutes behind: late
            ],
        );
        assert_eq!(
            vs,
            [
                "2024-01-01T10:00:00Z",
                "2024-01-01T09:55:00Z",
                "2024-01-01T09:50:00Z"
            ]
        );
    }

    #[test]
    fn live_clock_advances_the_watermark_while_feeds_are_idle() {
        fn wall() -> Ts {
            parse_rfc3339("2024-01-01T12:00:00Z").expect("time")
        }
        let cat = Catalogue::embedded();
        let mut ingest = Ingest::new(&cat, std::io::sink()).live(wall);
        assert_eq!(format_rfc3339(ingest.watermark()), "2024-01-01T11:50:00Z");
        let vs = admit_all(&mut ingest, &[("a", "2024-01-01T10:00:00Z")]);
        assert_eq!(
            vs,
            ["2024-01-01T11:50:00Z"],
            "two hours behind the wall clock: late"
        );
    }

    #[test]
    fn a_record_from_the_future_is_rejected_and_moves_no_clock() {
        fn wall() -> Ts {
            parse_rfc3339("2024-01-01T12:00:00Z").expect("time")
        }
        let cat = Catalogue::embedded();
        let mut ingest = Ingest::new(&cat, Vec::new()).clocked(wall);
        let mut read = |id: &str, t: &str| {
            let e = ingest
                .decode(Feed::List, 7, &line(id, t))
                .expect("in memory");
            e.map(|e| ingest.admit(e)).is_some()
        };
        // The tolerance is 5 minutes: at it is accepted, a second past it is not.
        assert!(read("a", "2024-01-01T12:05:00Z"));
        assert!(!read("b", "2024-01-01T12:05:01Z"));
        assert!(!read("c", "3024-01-06T17:44:16Z"));
        assert_eq!(ingest.rejected.get("future_ingest_time"), Some(&2));
        assert_eq!(ingest.log.len(), 1);
        assert_eq!(format_rfc3339(ingest.watermark()), "2024-01-01T11:55:00Z");
        let dead = String::from_utf8(ingest.dead).expect("utf-8");
        let far = dead.lines().last().expect("two dead letters");
        let far: serde_json::Value = serde_json::from_str(far).expect("json");
        assert_eq!(far["reason"], "future_ingest_time");
        assert_eq!(
            far["message"],
            "ingest_time 3024-01-06T17:44:16Z is 31557361456 s after this process's clock \
             (2024-01-01T12:00:00Z), at most 300 s allowed"
        );
    }

    /// Equal versions with other bytes: whatever the order and the redeliveries, one is
    /// applied and the rest are duplicates, and the metrics balance at every step (D52).
    #[test]
    fn an_equal_version_tie_counts_one_applied_in_any_order() {
        let cat = Catalogue::embedded();
        let t = "2024-01-01T10:00:00Z";
        let with_org = |org: &str| {
            let mut v: serde_json::Value = serde_json::from_slice(&line("x", t)).expect("json");
            v["source_org"] = json!(org);
            serde_json::to_vec(&v).expect("json")
        };
        let (a, b) = (with_org("A"), with_org("B"));
        for order in [vec![&a, &b, &a, &b], vec![&b, &a, &b, &a], vec![&a, &a, &b]] {
            let metrics = Metrics::new(&prometheus::Registry::new()).expect("metrics");
            let mut ingest = Ingest::new(&cat, std::io::sink()).metered(metrics.clone());
            for raw in &order {
                let e = ingest
                    .decode(Feed::List, 0, raw)
                    .expect("sink")
                    .expect("valid");
                ingest.admit(e);
                let get = |c: &prometheus::IntCounterVec, l: &[&str]| c.with_label_values(l).get();
                let applied = get(&metrics.records_applied, &["LIST"]);
                let withdrawn = get(&metrics.records_withdrawn, &["LIST", "duplicate"]);
                let duplicate = get(&metrics.records_duplicate, &["LIST"]);
                assert_eq!(applied - withdrawn + duplicate, ingest.read, "{order:?}");
            }
            assert_eq!(ingest.log.len(), 2, "both versions kept for their statuses");
            let log: Vec<&Accepted> = ingest.log.iter().collect();
            let applied = rules::lifecycle::outcomes(&log, &[])
                .into_iter()
                .filter(|(_, o)| *o == rules::lifecycle::Outcome::Applied)
                .map(|(a, _)| a.digest)
                .collect::<Vec<_>>();
            let smaller = log.iter().map(|a| a.digest).min();
            assert_eq!(
                applied,
                Vec::from_iter(smaller),
                "the smaller SHA-256 is applied"
            );
        }
    }
}
