//! `rules::status::Record` (D76): the dataflow names a record's status steps by the shared
//! record, which must compare, order and hash exactly as its `RecordKey`.

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
    Record(Arc::new(Accepted {
        digest: digest.unwrap_or(a.digest),
        ..a
    }))
}

/// Whether or not two copies share one allocation.
#[test]
fn a_record_is_ordered_and_hashed_as_its_key() {
    let records = [
        listed("A", 1, None),
        listed("A", 1, Some([7; 32])),
        listed("A", 2, None),
        listed("B", 1, None),
        // The first again, in its own allocation.
        listed("A", 1, None),
    ];
    let hasher = std::collections::hash_map::RandomState::new();
    for a in &records {
        for b in &records {
            assert_eq!(a.cmp(b), a.key().cmp(&b.key()), "{:?} {:?}", a.key(), b.key());
            assert_eq!(a == b, a.key() == b.key());
            if a == b {
                assert_eq!(hasher.hash_one(a), hasher.hash_one(b));
            }
        }
    }
    assert!(!Arc::ptr_eq(&records[0].0, &records[4].0));
    assert_eq!(records[0], records[4]);
    assert_ne!(records[0], records[1]);
}
