//! The accepted records of a generated history, for the tests that read whole histories.

use generator::{generate, GenConfig};
use rules::decode::{decode, digest, DecodeConfig};
use rules::lifecycle::Accepted;

/// Every line of `cfg`'s history that decodes, in arrival order, visible at its ingest time;
/// and how many lines were rejected.
pub fn accepted(cfg: &GenConfig) -> (Vec<Accepted>, usize) {
    let mut log = Vec::new();
    let mut rejected = 0;
    generate(cfg, &mut |_| {}, &mut |r| match decode(
        &r.line,
        Some(r.feed),
        &DecodeConfig::default(),
    ) {
        Ok(d) => log.push(Accepted {
            v: d.event.ingest_time,
            digest: digest(&d.event),
            event: d.event,
            origin: None,
        }),
        Err(_) => rejected += 1,
    })
    .expect("valid generator config");
    (log, rejected)
}
