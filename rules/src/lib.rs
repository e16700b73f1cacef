//! Credit Steward's domain model: pure and I/O-free.
//!
//! See `rules/README.md` for which module owns what.

pub mod catalogue;
pub mod contract;
pub mod decode;
pub mod event;
pub mod fact;
pub mod indicators;
pub mod lifecycle;
pub mod model;
pub mod monitor;
mod raw;
pub mod reference;
pub mod reject;
pub mod rename;
pub mod schema;
pub mod score;
pub mod status;
pub mod supervision;
pub mod table;
pub mod time;
pub mod uscc;

/// Short strings (event ids, codes, USCCs) held inline up to 24 bytes, with no allocation of
/// their own: the type of every id an input record carries.
pub use compact_str::{format_compact, CompactString};

/// Makes room for `additional` more elements in a list kept for long (an enterprise's
/// records, facts or outputs), growing it by a quarter instead of doubling it: the many
/// small lists an engine holds at once then carry little unused room.
pub fn reserve_kept<T>(list: &mut Vec<T>, additional: usize) {
    if list.capacity() - list.len() < additional {
        list.reserve_exact(additional.max(list.len() / 4));
    }
}
