//! The output contract's version (`docs/outputs.md`): every message on an output topic and
//! every line of `steward run`'s JSON-lines files carries it as `format_version`, first.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The output contract's format version. It changes when a consumer could notice a change
/// of any output message (`docs/outputs.md`, "History").
pub const FORMAT_VERSION: u32 = 3;

/// A message with the contract's format version: `{"format_version": 3, …the body's
/// fields}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Versioned<T> {
    /// The output contract's format version (`docs/outputs.md`).
    pub format_version: u32,
    /// The message.
    #[serde(flatten)]
    pub body: T,
}

impl<T> Versioned<T> {
    /// `body` with the current [`FORMAT_VERSION`].
    pub fn new(body: T) -> Self {
        Versioned {
            format_version: FORMAT_VERSION,
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
    struct Body {
        a: u8,
    }

    #[test]
    fn the_version_comes_first_beside_the_bodys_fields() {
        let text = serde_json::to_string(&Versioned::new(Body { a: 7 })).expect("json");
        assert_eq!(text, r#"{"format_version":3,"a":7}"#);
        let back: Versioned<Body> = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back.body, Body { a: 7 });
        let schema = serde_json::to_value(schemars::schema_for!(Versioned<Body>)).expect("schema");
        assert_eq!(schema["properties"]["format_version"]["type"], "integer");
        assert_eq!(schema["properties"]["a"]["type"], "integer");
    }
}
