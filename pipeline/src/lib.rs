//! Credit Steward's `steward` binary around the engine (crate `engine`): `run` and `serve`,
//! and the tools (train, plan, report, what-if, web).
//!
//! See `pipeline/README.md` for which module owns what.

pub mod live;
pub mod messages;
pub mod model;
pub mod outputs;
pub mod plan;
pub mod progress;
pub mod report;
pub mod rows;
pub mod web;
pub mod what_if;
