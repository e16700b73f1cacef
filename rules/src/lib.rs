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
pub mod part;
mod raw;
pub mod reference;
pub mod reject;
pub mod schema;
pub mod score;
pub mod status;
pub mod supervision;
pub mod time;
pub mod uscc;
