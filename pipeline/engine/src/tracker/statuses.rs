//! Record statuses (D11): each record's status steps in effect, its status (the latest),
//! and the status changes since the outputs were last drained.

use std::hash::BuildHasher;

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use rules::status::{Record, RecordKey, Status, Step};
use rules::time::Ts;
use rules::uscc::Uscc;

use super::restoring;
use crate::dataflow::Routed;
use crate::ordered::{add, Pending};

/// One record's status steps in effect, each with the enterprise it is filed under
/// (sorted, counts non-zero).
type Steps = Vec<((Uscc, Step), isize)>;

/// A step update waiting for the frontier: its record's digest prefix, the record, the
/// enterprise, the step and its count.
type Waiting = (u64, Record, Uscc, Step, isize);

/// A waiting update with its time, as the frontier releases it.
type Update = (Ts, Waiting);

/// What puts a record's updates at one time together, in the order they are applied: the
/// time, the record's digest prefix, then the record (compared only where both tie).
fn run(x: &Update) -> (Ts, u64, &Record) {
    (x.0, x.1 .0, &x.1 .1)
}

/// A record's status: its latest step in effect, with the enterprise it is filed under
/// (of equal latest steps, the one under the greatest USCC).
fn latest(steps: &Steps) -> Option<(Uscc, Status)> {
    steps
        .iter()
        .filter(|(_, r)| *r > 0)
        .max_by_key(|((_, s), _)| *s)
        .map(|((u, s), _)| (*u, s.status))
}

/// The statuses of the records one worker takes (the dataflow sends every step of a
/// record to one worker).
#[derive(Debug, Default)]
pub struct Statuses {
    /// Step updates not yet passed by the frontier, each with its record's digest prefix.
    pending: Pending<Waiting>,
    /// The steps in effect per record, found by a hash of its digest prefix (D112): the
    /// prefix comes with each update, so finding a record reads no record but the one
    /// whose slot matches (by pointer, when it is shared).
    steps: HashTable<(Record, Steps)>,
    /// Hashes a digest prefix (seeded per run, as a `Lookup` is).
    hasher: foldhash::fast::RandomState,
    /// Status changes since this was last drained: `(time, record, uscc, new status)`.
    pub new: Vec<(Ts, RecordKey, Uscc, Status)>,
}

impl Statuses {
    /// A step update at `time`, applied once the frontier passes it.
    pub(super) fn push(&mut self, record: Routed, uscc: Uscc, step: Step, time: Ts, diff: isize) {
        let Routed { prefix, record, .. } = record;
        self.pending.push(time, (prefix, record, uscc, step, diff));
    }

    /// Applies the step updates at times before `frontier`, per time and record in time
    /// order; when a record's status (or its enterprise) changes, outputs `draining` every
    /// step get the new one in `new` (not while restoring a checkpoint), in the order of
    /// time and record.
    pub(super) fn apply(&mut self, frontier: Ts, resumed: Option<Ts>, draining: bool) {
        // Each record's updates at a time together, the records by their digests' first
        // bytes (carried with each update): their texts are compared only where two
        // records share those bytes. (A run resumed from a checkpoint sorts every record's
        // steps at once.)
        let mut ready = self.pending.before(Some(frontier));
        ready.sort_unstable_by(|a, b| run(a).cmp(&run(b)));
        let reported = self.new.len();
        let hasher = &self.hasher;
        let rehash = |(k, _): &(Record, Steps)| hasher.hash_one(k.digest_prefix());
        // A step that may add more records than the table holds (a run resumed from a
        // checkpoint adds them all in one) makes room for them at once: a table that grows
        // reads every record it holds again, once per doubling. (A smaller step grows the
        // table at most once, as it would anyway.)
        if ready.len() > self.steps.len() {
            let records = 1 + ready
                .windows(2)
                .filter(|w| run(&w[0]) != run(&w[1]))
                .count();
            if records > self.steps.len() {
                self.steps.reserve(records, rehash);
            }
        }
        let mut ready = ready.into_iter().peekable();
        while let Some((t, (p, k, u, step, r))) = ready.next() {
            // A new record's key moves into its slot: a shared record is not touched to
            // count one more reference to it.
            let mut entry = match self
                .steps
                .entry(hasher.hash_one(p), |(x, _)| *x == k, rehash)
            {
                Entry::Occupied(e) => e,
                Entry::Vacant(e) => e.insert((k, Steps::new())),
            };
            let (k, steps) = entry.get_mut();
            let report = draining && !restoring(resumed, t);
            let before = if report { latest(steps) } else { None };
            add(steps, (u, step), r);
            while let Some((_, (.., u, step, r))) = ready.next_if(|y| run(y) == (t, p, &*k)) {
                add(steps, (u, step), r);
            }
            if report {
                if let Some((u, st)) = latest(steps).filter(|x| before != Some(*x)) {
                    self.new.push((t, k.key(), u, st));
                }
            }
            if steps.is_empty() {
                entry.remove();
            }
        }
        // Reported in the order of time and record, as `serve` writes them.
        self.new[reported..].sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    }

    /// Every record's current status, with the enterprise it is filed under.
    pub fn current(&self) -> impl Iterator<Item = (RecordKey, (Uscc, Status))> + '_ {
        self.steps
            .iter()
            .filter_map(|(k, steps)| latest(steps).map(|x| (k.key(), x)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rules::event::Feed;

    /// A record's key, with a digest whose first bytes order it against the others.
    fn record(id: &str, first: u8) -> Record {
        let mut digest = [0; 32];
        digest[0] = first;
        Record::Key(Box::new(RecordKey {
            id: (Feed::Pen, id.into()),
            version: 1,
            digest,
        }))
    }

    /// Status changes come out in the order of time and record, whatever order the records'
    /// digests give them, and a record's updates at one time net before its status is read.
    #[test]
    fn changes_are_reported_in_time_and_record_order() {
        let u = Uscc::new("91330802MA2A00000K").expect("packs");
        let step = |from, status| Step { from, status };
        let mut s = Statuses::default();
        // Digests in the reverse order of the ids.
        let records: Vec<Routed> = (0..20u8)
            .map(|i| Routed::new(record(&format!("E{i:02}"), 200 - i)))
            .collect();
        for (i, k) in records.iter().enumerate() {
            let t = 5 + (i % 2) as Ts;
            s.push(k.clone(), u, step(t, Status::Active), t, 1);
        }
        // One record also retracts and replaces its step at its time.
        s.push(records[3].clone(), u, step(6, Status::Active), 6, -1);
        s.push(records[3].clone(), u, step(6, Status::Expired), 6, 1);
        s.apply(10, None, true);
        let mut want: Vec<(Ts, RecordKey, Uscc, Status)> = records
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let st = if i == 3 {
                    Status::Expired
                } else {
                    Status::Active
                };
                (5 + (i % 2) as Ts, k.record.key(), u, st)
            })
            .collect();
        want.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        assert_eq!(s.new, want);
        assert_eq!(s.current().count(), 20);
    }

    /// Two records whose digests share their first eight bytes share a hash and a place in
    /// the sort, and are still kept apart: each has its own steps and its own status.
    #[test]
    fn records_sharing_a_digest_prefix_are_kept_apart() {
        let u = Uscc::new("91330802MA2A00000K").expect("packs");
        let step = |from, status| Step { from, status };
        let (a, b) = (Routed::new(record("A", 7)), Routed::new(record("B", 7)));
        assert_eq!(a.prefix, b.prefix);
        let mut s = Statuses::default();
        s.push(b.clone(), u, step(5, Status::Active), 5, 1);
        s.push(a.clone(), u, step(5, Status::Active), 5, 1);
        s.push(b.clone(), u, step(5, Status::Active), 5, -1);
        s.push(b.clone(), u, step(5, Status::Expired), 5, 1);
        s.apply(6, None, true);
        let (ka, kb) = (a.record.key(), b.record.key());
        let want = vec![
            (5, ka.clone(), u, Status::Active),
            (5, kb.clone(), u, Status::Expired),
        ];
        assert_eq!(s.new, want);
        s.push(a, u, step(5, Status::Active), 7, -1);
        s.apply(8, None, true);
        let current: Vec<_> = s.current().collect();
        assert_eq!(current, vec![(kb, (u, Status::Expired))]);
    }
}
