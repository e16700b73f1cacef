//! Records and models stated one by one, for tests that need an exact history or model
//! rather than a generated or trained one.

use std::collections::BTreeMap;

use rules::catalogue::Catalogue;
use rules::decode::digest;
use rules::event::Event;
use rules::lifecycle::Accepted;
use rules::model::{feature_names, Metrics, Model, ModelError, Params, TrainingData, FORMAT};
use serde_json::{json, Value};

/// An accepted record of enterprise `uscc`: feed, kind, event id and time (RFC 3339) as
/// given, the feed's fields from the object `fields`, version 1, and visible at its event
/// time (`v = ingest_time = event_time`). Fails when `fields` is not an object or the
/// fields do not make a record.
pub fn hand_made(
    uscc: &str,
    feed: &str,
    kind: &str,
    id: &str,
    at: &str,
    fields: Value,
) -> Result<Accepted, serde_json::Error> {
    let mut obj = json!({
        "uscc": uscc, "feed": feed, "kind": kind, "event_id": id, "version": 1,
        "event_time": at, "ingest_time": at,
    });
    let Value::Object(fields) = fields else {
        return Err(serde::de::Error::custom(
            "a record's fields are a JSON object",
        ));
    };
    for (k, v) in fields {
        obj[k] = v;
    }
    let event: Event = serde_json::from_value(obj)?;
    Ok(Accepted {
        v: event.ingest_time,
        digest: digest(&event),
        event,
        origin: None,
    })
}

/// A model of `params` for catalogue `cat`, as if trained on nothing (no samples, no
/// metrics), checked as a model file is. Fails when `params` do not fit the catalogue's
/// features.
pub fn hand_made_model(params: Params, cat: &Catalogue) -> Result<Model, ModelError> {
    let training = TrainingData {
        source: "hand-made".into(),
        digest: "0".repeat(64),
        samples: 0,
        positives: 0,
        first_as_of: String::new(),
        last_as_of: String::new(),
    };
    let m = Model {
        format: FORMAT,
        model_version: Model::version_of(&training.digest, &params),
        rules_version: cat.version.clone(),
        features: feature_names(cat),
        p_impute: 650.0,
        horizon_months: 12,
        training,
        settings: BTreeMap::new(),
        metrics: Metrics::default(),
        params,
    };
    m.check(cat)?;
    Ok(m)
}
