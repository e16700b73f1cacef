//! Credit Steward's domain model: pure and I/O-free.
//!
//! See `rules/README.md` for which module owns what.

pub mod event;
pub mod generate;
pub mod time;
pub mod uscc;
pub mod catalogue;
pub mod fact;
pub mod lifecycle;
pub mod indicators;
pub mod score;
pub mod reference;
