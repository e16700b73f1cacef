//! Credit Steward's pipeline: the incremental dataflow and what drives it.
//!
//! See `pipeline/README.md` for which module owns what.

pub mod allocator;
pub mod checkpoint;
pub mod dataflow;
pub mod ingest;
pub mod live;
pub mod log;
pub mod messages;
pub mod model;
pub mod observe;
pub mod ordered;
pub mod plan;
pub mod profile;
pub mod progress;
pub mod replay;
pub mod report;
pub mod rows;
pub mod tracker;
pub mod web;
pub mod what_if;
