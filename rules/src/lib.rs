//! Credit Steward's domain model: pure and I/O-free.
//!
//! See `rules/README.md` for which module owns what.

pub mod decode;
pub mod event;
mod raw;
pub mod reject;
pub mod schema;
pub mod time;
pub mod uscc;
