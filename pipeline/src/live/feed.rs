//! Stage 1: feed topics → the internal log, exactly once.
//!
//! Each batch of input records becomes log entries (accepted with `v`, or rejected), written
//! in one Kafka transaction together with the input offsets. On any failure the stage
//! aborts, waits, and starts over from the log and the committed offsets, so its state (the
//! duplicate filter and the watermark) is always the one the log implies.
//!
//! The replay clock over several partitions (`docs/decisions.md` D7): a record is late when
//! its ingest time is behind its own partition's largest ingest time minus the lateness, so
//! its `v` depends on that partition's records alone. The watermark that moves the dataflow
//! is the smallest of the partitions' own watermarks, over partitions that still have
//! records to read (when every partition is at its end: the largest ingest time read, minus
//! the lateness); `v` is never below it.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use connectors::config::{ClockMode, Config};
use connectors::dead_letter::DeadLetter;
use connectors::kafka::{FeedSource, KafkaFailure, StallWatch, TxnProducer};
use connectors::metrics::Service;
use rules::catalogue::Catalogue;
use rules::time::Ts;

use super::{Options, Shared};
use engine::ingest::{now, Ingest};
use engine::log::{Entry, Origin, Outgoing};

/// Runs the stage until `shared.stop`, restarting it after failures with backoff.
pub fn run(cfg: &Config, cat: &Catalogue, opts: &Options, shared: &Shared) -> anyhow::Result<()> {
    let mut delays = super::backoff(Duration::from_millis(200), Duration::from_secs(10));
    while !shared.stop.load(Ordering::SeqCst) {
        match once(cfg, cat, opts, shared) {
            Ok(()) => return Ok(()),
            Err(e) => {
                shared.readiness.set(Service::Kafka, false);
                shared.metrics.retry(Service::Kafka, 0);
                if let Some(failure) = e.downcast_ref::<KafkaFailure>() {
                    shared.metrics.kafka_failure(failure);
                }
                let backoff = delays.next().unwrap_or(Duration::from_secs(10));
                tracing::warn!(error = %format!("{e:#}"), ?backoff, "feed stage failed; restarting from the log");
                std::thread::sleep(backoff);
            }
        }
    }
    Ok(())
}

/// The watermark state: each partition's largest ingest time.
#[derive(Debug, Default)]
struct Clock {
    max: BTreeMap<(String, i32), Ts>,
    wm: Ts,
}

impl Clock {
    /// Takes in an accepted record's ingest time, read from `topic`/`partition`.
    fn saw(&mut self, topic: &str, partition: i32, ingest: Ts) {
        let max = self
            .max
            .entry((topic.to_owned(), partition))
            .or_insert(Ts::MIN);
        *max = (*max).max(ingest);
    }

    /// The partition's own watermark: its largest ingest time minus the lateness.
    fn own(&self, topic: &str, partition: i32, lateness: Ts) -> Ts {
        self.max
            .get(&(topic.to_owned(), partition))
            .copied()
            .unwrap_or(Ts::MIN)
            .saturating_sub(lateness)
    }

    fn candidate(&self, source: &FeedSource, lateness: Ts, live: bool) -> Ts {
        let parts = source.partitions();
        let open: Vec<Ts> = parts
            .iter()
            .filter(|(t, p)| !source.at_end(t, *p))
            .map(|k| self.max.get(k).copied().unwrap_or(Ts::MIN))
            .collect();
        let replay = if open.is_empty() {
            self.max.values().copied().max().unwrap_or(Ts::MIN)
        } else {
            open.into_iter().min().unwrap_or(Ts::MIN)
        };
        let wall = if live { now() } else { Ts::MIN };
        replay.max(wall).saturating_sub(lateness)
    }
}

/// How long a feed partition may read nothing while the broker holds records it has not
/// read, before the feed consumer is replaced ([`connectors::kafka::StallWatch`], D69).
const FEED_STALL: Duration = Duration::from_secs(15);

/// How often the feed partitions' lag is asked of the broker (a metric, and what the stall
/// watch calls "behind").
const LAG_EVERY: Duration = Duration::from_secs(5);

/// Watches each feed partition for a consumer that stopped fetching: behind without reading
/// anything for [`FEED_STALL`].
///
/// Behind means more records than the partition's residue: the offsets the broker counts
/// past the last record a consumer can read, which are transaction markers and aborted
/// records (the internal commitments topic is written in transactions). The residue is the
/// lag asked once the partition was read to its end, and is forgotten when it is read from.
#[derive(Debug, Default)]
struct Stalls(BTreeMap<(String, i32), Watched>);

/// What [`Stalls`] knows of one partition.
#[derive(Debug)]
struct Watched {
    /// Its lag as last asked.
    lag: i64,
    /// Its residue, if known.
    residue: Option<i64>,
    /// Its position (next offset to read) at the last look: it read when that moved.
    seen: Option<i64>,
    watch: StallWatch,
}

impl Stalls {
    /// Takes in the `lag` of `topic`/`partition` just asked, and whether it is `at_end`.
    fn lagged(&mut self, topic: String, partition: i32, lag: i64, at_end: bool) {
        let w = self.0.entry((topic, partition)).or_insert(Watched {
            lag,
            residue: None,
            seen: None,
            watch: StallWatch::new(FEED_STALL),
        });
        w.lag = lag;
        if at_end && w.residue.is_none() {
            w.residue = Some(lag);
        }
    }

    /// Looks at each partition's `position` at `now`; the first partition found stalled.
    fn observe(
        &mut self,
        position: impl Fn(&str, i32) -> Option<i64>,
        now: Instant,
    ) -> Option<(String, i32)> {
        let mut stalled = None;
        for (key, w) in &mut self.0 {
            let at = position(&key.0, key.1);
            let progressed = at != w.seen;
            w.seen = at;
            if progressed {
                w.residue = None;
            }
            let behind = w.lag > w.residue.unwrap_or(0);
            if w.watch.stalled(progressed, behind, now) && stalled.is_none() {
                stalled = Some(key.clone());
            }
        }
        stalled
    }

    /// Forgets the time without progress (the stage did not poll: its input was paused, or
    /// the consumer is new).
    fn reset(&mut self) {
        for w in self.0.values_mut() {
            w.watch = StallWatch::new(FEED_STALL);
        }
    }
}

fn once(cfg: &Config, cat: &Catalogue, opts: &Options, shared: &Shared) -> anyhow::Result<()> {
    let k = &cfg.kafka;
    let topics = &k.topics;
    let producer = TxnProducer::new(k, &format!("{}-ingest", k.transactional_id))?;
    let mut ingest = Ingest::new(cat, std::io::sink()).metered(shared.metrics.clone());
    let mut clock = Clock {
        wm: Ts::MIN,
        ..Clock::default()
    };
    // Restore from the log.
    let restored =
        connectors::kafka::read_all(k, &topics.accepted, &format!("{}-restore", k.group_id))?;
    // The largest `v` accepted: records read back from the internal commitments topic are
    // late, and a drain must move the watermark past them too.
    let mut max_v = Ts::MIN;
    for m in &restored {
        let e = Entry::decode(&m.payload)?;
        clock.wm = clock.wm.max(e.wm);
        if let Some(a) = e.into_record() {
            ingest.restore(&a);
            if let Some(origin) = &a.origin {
                clock.saw(&origin.topic, origin.partition, a.event.ingest_time);
            }
            max_v = max_v.max(a.v);
        }
    }
    shared
        .produced
        .store(restored.len() as u64, Ordering::SeqCst);
    tracing::info!(
        entries = restored.len(),
        watermark = clock.wm,
        "feed stage restored from the log"
    );
    let mut source = FeedSource::new(k, &topics.inputs())?;
    let lateness = cat.lifecycle.lateness_secs;
    let live = cfg.clock.mode == ClockMode::Live;
    shared.readiness.set(Service::Kafka, true);
    let mut idle_since = Instant::now();
    // The sink's count of commitment-loop publishes when the idle period began (D46).
    let mut idle_seq = shared.loop_seq.load(Ordering::SeqCst);
    let mut last_lag = Instant::now();
    let mut stalls = Stalls::default();
    // A partition found stalled: the consumer is replaced at the next turn.
    let mut stalled: Option<(String, i32)> = None;
    while !shared.stop.load(Ordering::SeqCst) {
        if let Some((topic, partition)) = stalled.take() {
            // Every batch read so far is committed with its offsets, so a consumer that
            // starts at the committed offsets reads on exactly where this one stopped.
            let at = source.position(&topic, partition).unwrap_or(-1);
            shared.metrics.consumer_stalled("feed", FEED_STALL, at);
            source = FeedSource::new(k, &topics.inputs())?;
            stalls.reset();
        }
        let backlog = shared
            .produced
            .load(Ordering::SeqCst)
            .saturating_sub(shared.consumed.load(Ordering::SeqCst));
        if backlog > cfg.batch.max_backlog_records as u64 {
            stalls.reset();
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        if last_lag.elapsed() >= LAG_EVERY {
            last_lag = Instant::now();
            for (topic, partition, lag) in source.lag() {
                shared
                    .metrics
                    .consumer_lag
                    .with_label_values(&[&topic, &partition.to_string()])
                    .set(lag);
                let at_end = source.at_end(&topic, partition);
                stalls.lagged(topic, partition, lag, at_end);
            }
        }
        // Every record of the batch is held to the watermark as of the batch's start: taken
        // before the poll, because the poll can read a partition to its end and mark it so,
        // and a partition at its end no longer holds the watermark back.
        let before = clock.wm.max(clock.candidate(&source, lateness, live));
        let batch = source.poll(cfg.batch.max_rows, Duration::from_millis(100))?;
        let position = |t: &str, p| source.position(t, p);
        stalled = stalled.or(stalls.observe(position, Instant::now()));
        let mut entries = Vec::with_capacity(batch.len());
        if batch.is_empty() {
            let last_ingest = clock.max.values().copied().max().unwrap_or(Ts::MIN);
            let complete =
                source.all_at_end() && opts.drain_after.is_some_and(|d| idle_since.elapsed() >= d);
            let target = if complete {
                last_ingest.max(max_v).saturating_add(1)
            } else if live {
                // The wall clock's watermark moves once a second; an idle poll (at most
                // 100 ms) notices it, so the entry follows the second's end closely.
                clock.candidate(&source, lateness, live)
            } else {
                Ts::MIN
            };
            if target > clock.wm {
                clock.wm = target;
                entries.push(Outgoing::watermark(target));
            } else if complete {
                shared.drained_seq.store(idle_seq, Ordering::SeqCst);
                shared.drained.store(clock.wm, Ordering::SeqCst);
                continue;
            } else {
                continue;
            }
        } else {
            idle_since = Instant::now();
            idle_seq = shared.loop_seq.load(Ordering::SeqCst);
        }
        clock.wm = clock.wm.max(before);
        for (topic, m) in batch {
            let feed = topics.feed_of(&topic);
            let checked = match feed {
                Some(f) => ingest.check(f, &m.payload),
                None => {
                    let reason = rules::reject::Reason::UnknownFeed;
                    shared.metrics.rejected(None, reason);
                    Err(rules::reject::Rejection::new(
                        reason,
                        format!("topic {topic} is not a feed topic"),
                    ))
                }
            };
            match checked {
                Ok(e) => {
                    let ingest_time = e.ingest_time;
                    // Late within its own partition: a function of that partition's records
                    // alone, so no interleaving of partitions or restart point changes `v`.
                    let own = clock.own(&topic, m.partition, lateness);
                    let Some((a, canonical)) = ingest.admit_encoded(e, before.max(own)) else {
                        continue;
                    };
                    clock.saw(&topic, m.partition, ingest_time);
                    max_v = max_v.max(a.v);
                    let origin = Origin {
                        topic: topic.clone(),
                        partition: m.partition,
                        offset: m.offset,
                    };
                    entries.push(Outgoing::accepted(&a, canonical, origin, clock.wm));
                }
                Err(rej) => {
                    let letter = DeadLetter {
                        original: m.payload.clone(),
                        source_topic: topic.clone(),
                        partition: m.partition,
                        offset: m.offset,
                        reason: rej.reason.as_str().to_owned(),
                        message: rej.message,
                        time: now(),
                    };
                    entries.push(Outgoing::rejected(letter, clock.wm));
                }
            }
        }
        // The last entry carries the watermark the batch moved to.
        clock.wm = clock.wm.max(clock.candidate(&source, lateness, live));
        if let Some(last) = entries.last_mut() {
            last.set_wm(clock.wm);
        }
        let offsets = source.offsets()?;
        let group = source
            .group_metadata()
            .ok_or_else(|| anyhow::anyhow!("the feed consumer has no group metadata"))?;
        let result = (|| {
            producer.begin()?;
            for e in &entries {
                producer.send(&topics.accepted, b"", &e.encode())?;
            }
            if offsets.count() > 0 {
                producer.send_offsets(offsets, group)?;
            }
            producer.commit()
        })();
        if let Err(e) = result {
            // After an abandoned `send_offsets` librdkafka refuses this abort at once (another
            // transactional call is in progress); the producer is rebuilt anyway.
            let _ = producer.abort();
            return Err(e.into());
        }
        shared
            .produced
            .fetch_add(entries.len() as u64, Ordering::SeqCst);
        tracing::debug!(
            entries = entries.len(),
            watermark = clock.wm,
            "log batch committed"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(topic: &str, partition: i32) -> Option<(String, i32)> {
        Some((topic.to_owned(), partition))
    }

    /// A source that has read nothing yet.
    fn nothing(_: &str, _: i32) -> Option<i64> {
        None
    }

    #[test]
    fn a_partition_behind_that_reads_nothing_is_stalled() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut s = Stalls::default();
        s.lagged("pen".into(), 1, 40, false);
        assert_eq!(s.observe(nothing, at(0)), None);
        assert_eq!(s.observe(nothing, at(14)), None);
        assert_eq!(s.observe(nothing, at(15)), key("pen", 1));
        // Reading, however slowly, is progress.
        let mut s = Stalls::default();
        s.lagged("pen".into(), 1, 40, false);
        for t in 0..60 {
            let read = |_: &str, _| Some(100 + t as i64 / 10);
            assert_eq!(s.observe(read, at(t)), None, "at {t} s");
        }
        // A pause (backpressure) does not count as time without progress.
        let mut s = Stalls::default();
        s.lagged("pen".into(), 1, 40, false);
        assert_eq!(s.observe(nothing, at(0)), None);
        s.reset();
        assert_eq!(s.observe(nothing, at(20)), None);
    }

    /// A partition written in transactions keeps a marker (or aborted records) past its last
    /// readable record: read to its end, that lag is its residue, not a stall; records
    /// arriving after it are.
    #[test]
    fn transaction_markers_are_not_a_stall_but_records_after_them_are() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut s = Stalls::default();
        s.lagged("cmt".into(), 0, 1, true);
        assert_eq!(s.observe(nothing, at(0)), None);
        assert_eq!(s.observe(nothing, at(600)), None);
        s.lagged("cmt".into(), 0, 4, true);
        assert_eq!(s.observe(nothing, at(601)), None);
        assert_eq!(s.observe(nothing, at(616)), key("cmt", 0));
        // Once read from, the residue is asked again at its next end.
        let read = |_: &str, _| Some(8);
        let mut s = Stalls::default();
        s.lagged("cmt".into(), 0, 1, true);
        assert_eq!(s.observe(read, at(0)), None);
        s.lagged("cmt".into(), 0, 2, true);
        assert_eq!(s.observe(read, at(1)), None);
        assert_eq!(s.observe(read, at(100)), None);
    }
}
