//! The difference of two catalogue files, field by field: what a candidate changes (rows,
//! weights, windows, thresholds, triggers), read from the TOML as written.

use serde::Serialize;
use serde_json::{Map, Value};

/// One field that differs: where it is, and its value in each file (`None`: absent there).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The field: table keys joined by `.`, an element of an array of tables by its `id`
    /// or `code` (`indicator[pen_amount_36m].compute.k`, `level2[A1].weight`), another
    /// array's element by its index.
    pub path: String,
    /// The current file's value.
    pub current: Option<Value>,
    /// The candidate's value.
    pub candidate: Option<Value>,
}

/// Why two catalogue files could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A file is not TOML.
    #[error("the {which} catalogue is not TOML: {source}")]
    Toml {
        /// `current` or `candidate`.
        which: &'static str,
        /// The parser's error.
        #[source]
        source: toml::de::Error,
    },
    /// A value TOML reads has no JSON form (a date-time).
    #[error("the {which} catalogue has a value with no JSON form: {source}")]
    Json {
        /// `current` or `candidate`.
        which: &'static str,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
}

/// Every field that differs between the `current` and the `candidate` catalogue files, in
/// the order of the files' keys (tables' keys sorted).
pub fn catalogues(current: &str, candidate: &str) -> Result<Vec<Change>, DiffError> {
    let read = |which, text: &str| -> Result<Value, DiffError> {
        let t: toml::Value =
            toml::from_str(text).map_err(|source| DiffError::Toml { which, source })?;
        serde_json::to_value(t).map_err(|source| DiffError::Json { which, source })
    };
    let (a, b) = (read("current", current)?, read("candidate", candidate)?);
    let mut out = Vec::new();
    values("", Some(&a), Some(&b), &mut out);
    Ok(out)
}

fn values(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<Change>) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => tables(path, x, y, out),
        (Some(Value::Array(x)), Some(Value::Array(y))) => arrays(path, x, y, out),
        (a, b) if a != b => out.push(Change {
            path: path.to_owned(),
            current: a.cloned(),
            candidate: b.cloned(),
        }),
        _ => {}
    }
}

fn tables(path: &str, a: &Map<String, Value>, b: &Map<String, Value>, out: &mut Vec<Change>) {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let p = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        values(&p, a.get(k), b.get(k), out);
    }
}

/// The name of an element of an array of tables: its `id`, else its `code`.
fn name(v: &Value) -> Option<&str> {
    v.get("id").or_else(|| v.get("code"))?.as_str()
}

/// Every element's name, if every element has one.
fn named(xs: &[Value]) -> Option<Vec<&str>> {
    xs.iter().map(name).collect()
}

/// The element named `n`.
fn find<'a>(xs: &'a [Value], names: &[&str], n: &str) -> Option<&'a Value> {
    names.iter().position(|m| *m == n).map(|i| &xs[i])
}

fn arrays(path: &str, a: &[Value], b: &[Value], out: &mut Vec<Change>) {
    match (named(a), named(b)) {
        (Some(na), Some(nb)) if !na.is_empty() || !nb.is_empty() => {
            // Elements by name, in the current file's order, then the candidate's new ones.
            let mut order: Vec<&str> = na.clone();
            order.extend(nb.iter().filter(|n| !na.contains(n)));
            for n in order {
                values(
                    &format!("{path}[{n}]"),
                    find(a, &na, n),
                    find(b, &nb, n),
                    out,
                );
            }
        }
        _ if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                values(&format!("{path}[{i}]"), Some(x), Some(y), out);
            }
        }
        _ => out.push(Change {
            path: path.to_owned(),
            current: Some(Value::Array(a.to_vec())),
            candidate: Some(Value::Array(b.to_vec())),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = r#"
version = "v1"
[score]
w = 0.5
[[indicator]]
id = "a"
compute = { kind = "sat", k = 2.0 }
[[indicator]]
id = "b"
rows = [1, 2]
"#;

    #[test]
    fn the_same_file_has_no_change() {
        assert_eq!(catalogues(A, A).unwrap(), vec![]);
    }

    #[test]
    fn changes_name_their_field_and_both_values() {
        let b = A
            .replace("k = 2.0", "k = 3.0")
            .replace("w = 0.5", "w = 0.5\nnew = 1")
            .replace("rows = [1, 2]", "rows = [1, 3]")
            .replace("\"v1\"", "\"v2\"");
        let got = catalogues(A, &b).unwrap();
        let want = [
            ("indicator[a].compute.k", Some(json!(2.0)), Some(json!(3.0))),
            ("indicator[b].rows[1]", Some(json!(2)), Some(json!(3))),
            ("score.new", None, Some(json!(1))),
            ("version", Some(json!("v1")), Some(json!("v2"))),
        ];
        let want: Vec<Change> = want
            .into_iter()
            .map(|(p, a, b)| Change {
                path: p.to_owned(),
                current: a,
                candidate: b,
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn an_element_removed_or_added_is_one_change() {
        let b = A.replace(
            "[[indicator]]\nid = \"b\"\nrows = [1, 2]\n",
            "[[indicator]]\nid = \"c\"\n",
        );
        let got = catalogues(A, &b).unwrap();
        let paths: Vec<&str> = got.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["indicator[b]", "indicator[c]"]);
        assert!(got[0].candidate.is_none() && got[1].current.is_none());
    }

    #[test]
    fn a_file_that_is_not_toml_is_named() {
        let e = catalogues(A, "[score").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the candidate catalogue is not TOML"),
            "{e}"
        );
    }
}
