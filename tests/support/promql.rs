//! A small PromQL reader for the tests that check the dashboards' and rules' expressions:
//! the series selectors (metric names and their label matchers) of an expression.

use std::collections::BTreeSet;

use anyhow::Result;

/// PromQL words that are not metric names.
const KEYWORDS: [&str; 12] = [
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "atan2",
];

/// PromQL aggregation operators, which may be followed by `by (…)` before their `(`.
const AGGREGATORS: [&str; 12] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// One series selector of a PromQL expression: a metric name and its label matchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// The metric name.
    pub name: String,
    /// The matchers with their braces (`{job="steward",to="red"}`), or empty.
    pub matchers: String,
}

/// Metric names referenced by a PromQL expression.
pub fn metric_names(expr: &str) -> Result<BTreeSet<String>> {
    Ok(selectors(expr)?.into_iter().map(|s| s.name).collect())
}

/// The series selectors of a PromQL expression, in order: identifiers outside strings, label
/// matchers, ranges and grouping lists that are neither functions nor keywords, each with
/// the matchers that follow it.
pub fn selectors(expr: &str) -> Result<Vec<Selector>> {
    let b = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_to = |i: usize, close: u8| -> Result<usize> {
        let mut j = i + 1;
        let mut quote = None;
        while j < b.len() {
            match (quote, b[j]) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), b'\\') => j += 1,
                (Some(_), _) => {}
                (None, b'"' | b'\'' | b'`') => quote = Some(b[j]),
                (None, c) if c == close => return Ok(j + 1),
                _ => {}
            }
            j += 1;
        }
        anyhow::bail!("unbalanced {:?} in {expr}", close as char)
    };
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' || c == b'`' {
            i = skip_to(i, c)?;
        } else if c == b'{' {
            i = skip_to(i, b'}')?;
        } else if c == b'[' {
            i = skip_to(i, b']')?;
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            // Numbers, also 1e-9, and durations such as 5m.
            i += 1;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || b[i] == b'.'
                    || ((b[i] == b'-' || b[i] == b'+') && matches!(b[i - 1], b'e' | b'E')))
            {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                i += 1;
            }
            let word = &expr[start..i];
            let mut j = i;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            let call = b.get(j) == Some(&b'(');
            let lower = word.to_ascii_lowercase();
            if KEYWORDS.contains(&lower.as_str()) {
                if call
                    && matches!(
                        lower.as_str(),
                        "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                    )
                {
                    i = skip_to(j, b')')?;
                }
            } else if !call
                && !AGGREGATORS.contains(&word)
                && !matches!(lower.as_str(), "inf" | "nan")
            {
                let mut matchers = String::new();
                if b.get(j) == Some(&b'{') {
                    i = skip_to(j, b'}')?;
                    matchers = expr[j..i].to_owned();
                }
                out.push(Selector {
                    name: word.to_owned(),
                    matchers,
                });
            }
        } else {
            i += 1;
        }
    }
    Ok(out)
}
