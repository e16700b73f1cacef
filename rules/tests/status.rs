//! `rules::status::Record` (D76): the dataflow names a record's status steps by the shared
//! record, which must compare, order and hash exactly as its `RecordKey`, and cross
//! processes as the key alone.

// Shared builders, of which this test uses one.
#[allow(dead_code)]
mod common;

use std::hash::BuildHasher;
use std::sync::Arc;

use common::rec;
use rules::lifecycle::Accepted;
use rules::status::Record;
use serde_json::json;

/// A shared LIST record of `id` at `version`, with `digest` when one is given.
fn listed(id: &str, version: u32, digest: Option<[u8; 32]>) -> Record {
    let extra = json!({"version": version, "list_kind": "ABNORMAL"});
    let a = rec(1, "LIST", "LISTED", id, "2024-01-01T00:00:00Z", extra);
    Record::Shared(Arc::new(Accepted {
        digest: digest.unwrap_or(a.digest),
        ..a
    }))
}

/// The same record as it arrives from another process: its key alone.
fn sent(r: &Record) -> Record {
    let bytes = bincode::serialize(r).expect("bincode");
    assert_eq!(bytes, bincode::serialize(&r.key()).expect("bincode"));
    let back: Record = bincode::deserialize(&bytes).expect("reads back");
    assert!(matches!(back, Record::Key(_)));
    back
}

/// Shared, in two allocations of one record, or as the key alone.
#[test]
fn a_record_is_ordered_and_hashed_as_its_key() {
    let shared = [
        listed("A", 1, None),
        listed("A", 1, Some([7; 32])),
        listed("A", 2, None),
        listed("B", 1, None),
        // The first again, in its own allocation.
        listed("A", 1, None),
    ];
    let keys: Vec<Record> = shared.iter().map(sent).collect();
    let records: Vec<&Record> = shared.iter().chain(&keys).collect();
    let hasher = std::collections::hash_map::RandomState::new();
    for a in &records {
        assert_eq!(hasher.hash_one(a), hasher.hash_one(a.key()));
        for b in &records {
            assert_eq!(
                a.cmp(b),
                a.key().cmp(&b.key()),
                "{:?} {:?}",
                a.key(),
                b.key()
            );
            assert_eq!(a == b, a.key() == b.key());
        }
    }
    assert_eq!(shared[0], shared[4]);
    assert_eq!(shared[0], keys[0]);
    assert_ne!(shared[0], shared[1]);
    assert_eq!(keys[3].id(), shared[3].id());
}
