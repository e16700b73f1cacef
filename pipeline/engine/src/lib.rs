//! Credit Steward's engine: the incremental dataflow and what drives it, with no CLI and no
//! services of its own.
//!
//! See `pipeline/engine/README.md` for which module owns what.

pub mod allocator;
pub mod checkpoint;
pub mod dataflow;
mod enterprise;
pub mod ingest;
pub mod log;
pub mod observe;
pub mod ordered;
pub mod profile;
pub mod replay;
pub mod tracker;
