//! D92's collision checks (D105): a fingerprint of an enterprise's table stands for one
//! text, or the table is not used under that seed.
//!
//! The table compares fingerprints where the reference compares texts: a record's id with
//! the id a retraction or a repair names, one record's business key with another's, a
//! commitment's matter with the catalogue's. Two texts with one fingerprint would join
//! what the reference keeps apart (two loans counted as one, a retraction acting on another
//! record). [`collision`] finds such a pair before a change applies, comparing texts only
//! where two fingerprints are equal; the engine then builds the table again under the next
//! seed, as it does when two records share an id (D101).

use std::borrow::Borrow;

use crate::catalogue::Catalogue;
use crate::event::{Body, Feed};
use crate::lifecycle::Accepted;
use crate::CompactString;

use super::{from_signed, key_text, listed_matters, Fields, Kind, Seed, Table};

/// Where two fingerprints are compared: the table's ids (one space over every feed, as the
/// table keys its records by id alone), a feed's business keys, and the matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Space {
    Id,
    Key(Feed),
    Matter,
}

/// Where in a record a fingerprint sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Its own id.
    Id,
    /// The record its retraction or its repair names.
    Target,
    /// Its business key (an absent key is the empty text, as the groups read it).
    Key,
    /// Its commitment's matter.
    Matter,
}

impl Slot {
    fn space(self, f: &Fields) -> Space {
        match self {
            Slot::Id | Slot::Target => Space::Id,
            Slot::Key => Space::Key(f.kind.feed()),
            Slot::Matter => Space::Matter,
        }
    }
}

/// What a fingerprint stands for.
#[derive(Debug, PartialEq, Eq)]
enum Text<'a> {
    /// A record's `(feed, event_id)`.
    Record(Feed, &'a str),
    /// A business key.
    Key(CompactString),
    /// A matter.
    Matter(&'a str),
}

/// The business key's fingerprint of `f`, for the feeds whose records are grouped or
/// named by it: a penalty's decision (only when present, as the table compares it), and a
/// person, a commitment, a court case, a loan or an account (absent: `empty`, the empty
/// text's fingerprint in `f`'s feed, asked only then).
fn key_fp(f: &Fields, empty: impl FnOnce() -> u64) -> Option<u64> {
    match f.kind.feed() {
        Feed::Pen => f.key,
        Feed::Per | Feed::Cmt | Feed::Jud | Feed::Fin => Some(f.key.unwrap_or_else(empty)),
        _ => None,
    }
}

/// The id of the record that retraction or repair `f` names.
fn target(f: &Fields) -> Option<u64> {
    if f.retraction {
        f.b
    } else if f.is_repair() {
        f.key
    } else {
        None
    }
}

/// The fingerprints of `f` that stand for texts, with where each sits.
fn slots(f: &Fields, seed: Seed) -> [Option<(Slot, u64)>; 4] {
    let matter = match f.kind.feed() {
        Feed::Cmt => f.a.map(from_signed),
        _ => None,
    };
    [
        Some((Slot::Id, f.rid)),
        target(f).map(|t| (Slot::Target, t)),
        key_fp(f, || seed.business_key(f.kind.feed(), "")).map(|k| (Slot::Key, k)),
        matter.map(|m| (Slot::Matter, m)),
    ]
}

/// The text of the fingerprint in `slot` of record `a`.
fn text(a: &Accepted, slot: Slot) -> Text<'_> {
    let e = &a.event;
    match (slot, &e.body) {
        (Slot::Id, _) => Text::Record(e.feed(), &e.event_id),
        (Slot::Target, Body::Rpr(r)) if !e.body.is_retraction() => Text::Record(
            r.target_feed.unwrap_or(Feed::Rpr),
            r.target_event_id.as_deref().unwrap_or_default(),
        ),
        (Slot::Target, _) => Text::Record(e.feed(), e.ref_event_id.as_deref().unwrap_or_default()),
        (Slot::Key, _) => Text::Key(key_text(e).unwrap_or_default()),
        (Slot::Matter, Body::Cmt(c)) => Text::Matter(c.matter.as_deref().unwrap_or_default()),
        (Slot::Matter, _) => Text::Matter(""),
    }
}

/// Whether a record of `table` other than `leaving` (sorted ids) has fingerprint `fp` in
/// `space` for a text that `differs` from the one the caller holds, asked with the record's
/// id and where the fingerprint sits in it: a record by id, the retractions and repairs
/// naming it, or the first record of a business key (which stands for one text already).
fn held_apart(
    table: &Table,
    (space, fp): (Space, u64),
    leaving: &[u64],
    seed: Seed,
    differs: impl Fn(u64, Slot) -> bool,
) -> bool {
    let stays = |rid: u64| leaving.binary_search(&rid).is_err();
    match space {
        Space::Id => {
            table
                .get(fp)
                .is_some_and(|g| stays(g.rid) && differs(g.rid, Slot::Id))
                || table
                    .links()
                    .any(|g| stays(g.rid) && target(&g) == Some(fp) && differs(g.rid, Slot::Target))
        }
        Space::Key(feed) => {
            let empty = seed.business_key(feed, "");
            table
                .of_kinds(Kind::of_feed(feed))
                .find(|g| stays(g.rid) && key_fp(g, || empty) == Some(fp))
                .is_some_and(|g| differs(g.rid, Slot::Key))
        }
        Space::Matter => false,
    }
}

/// A fingerprint that would stand for two texts in an enterprise's table once `leaving`
/// (by id, sorted) leave it and `entering` (with their records) enter it, given that each
/// fingerprint of `table` stands for one text now (`stored` gives its records by id): the
/// first found, or `None`. A matter stands for one text when no other matter the catalogue
/// lists has its fingerprint. Texts are compared only where fingerprints are equal. With an
/// empty table, it checks `entering` from scratch.
pub fn collision<'a, A: Borrow<Accepted>>(
    table: &Table,
    leaving: &[u64],
    entering: &'a [(Fields, A)],
    stored: &dyn Fn(u64) -> &'a Accepted,
    seed: Seed,
    cat: &Catalogue,
) -> Option<u64> {
    // Each fingerprint of the entering records that the records compare: space, value,
    // which record, where in it.
    let mut all: Vec<(Space, u64, usize, Slot)> = Vec::new();
    // One record compares its own fingerprints only if it names another record: its id and
    // that record's are the only two of one space.
    let alone = match entering {
        [(f, _)] => target(f).is_none(),
        _ => false,
    };
    for (i, (f, a)) in entering.iter().enumerate() {
        let a: &Accepted = a.borrow();
        for (slot, fp) in slots(f, seed).into_iter().flatten() {
            let space = slot.space(f);
            if space == Space::Matter {
                if listed_matters(cat, seed, fp).any(|m| text(a, slot) != Text::Matter(m)) {
                    return Some(fp);
                }
                continue;
            }
            let differs = |rid: u64, theirs: Slot| text(stored(rid), theirs) != text(a, slot);
            if held_apart(table, (space, fp), leaving, seed, differs) {
                return Some(fp);
            }
            if !alone {
                all.push((space, fp, i, slot));
            }
        }
    }
    if all.len() < 2 {
        return None;
    }
    all.sort_unstable_by_key(|(space, fp, ..)| (*space, *fp));
    let text_of =
        |(_, _, i, slot): &(Space, u64, usize, Slot)| text(entering[*i].1.borrow(), *slot);
    all.windows(2)
        .find(|w| (w[0].0, w[0].1) == (w[1].0, w[1].1) && text_of(&w[0]) != text_of(&w[1]))
        .map(|w| w[0].1)
}
