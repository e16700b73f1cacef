//! What follows an enterprise's evaluations in logical-time order: hysteresis, the
//! published colour and its changes, and alerts. The reference run and the pipeline's
//! tracker both feed every evaluation instant through [`Monitor::observe`].
//!
//! Alerts (`outputs.md`): a trigger raised or resolved; `COLOUR_WORSENED` when the
//! published colour gets worse; `SCORE_DROP` while `S` is at least the configured points
//! below its highest value within the configured days (checked at evaluation instants).

use std::collections::VecDeque;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalogue::{Cap, Catalogue};
use crate::score::{hysteresis, published, Colour, Evaluation, Reason, Triggers};
use crate::time::{format_rfc3339, Ts, DAY};

/// A change of an enterprise's published colour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ColourChange {
    /// Enterprise.
    pub uscc: String,
    /// Previous published colour (`None` for the first).
    pub from: Option<Colour>,
    /// New published colour.
    pub to: Colour,
    /// `S` at the change.
    pub score: Option<f64>,
    /// Plain score colour.
    pub score_colour: Colour,
    /// Active triggers.
    pub triggers: Vec<String>,
    /// Top five contributions.
    pub reasons: Vec<Reason>,
    /// Logical time (RFC 3339, UTC, on the wire: output contract 2).
    #[serde(with = "crate::time::rfc3339")]
    #[schemars(with = "crate::time::Rfc3339")]
    pub as_of: Ts,
    /// Model version, if a model is used.
    pub model_version: Option<String>,
    /// Catalogue version.
    pub rules_version: String,
    /// Deterministic id for consumers to deduplicate.
    pub change_id: String,
}

/// Alert severity.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For the record.
    Info,
    /// Needs attention.
    Warning,
    /// Act now.
    Critical,
}

impl Severity {
    /// Lower-case name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Whether an alert starts or ends.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Raised.
    Firing,
    /// Cleared.
    Resolved,
}

impl AlertState {
    /// Lower-case name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// An alert state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Alert {
    /// Deterministic id: hex SHA-256 of `uscc|as_of|rule|state|rules_version`.
    pub alert_id: String,
    /// Enterprise.
    pub uscc: String,
    /// A trigger code, `COLOUR_WORSENED` or `SCORE_DROP`.
    pub rule: String,
    /// Severity.
    pub severity: Severity,
    /// Firing or resolved.
    pub state: AlertState,
    /// Logical time (RFC 3339, UTC, on the wire: output contract 2).
    #[serde(with = "crate::time::rfc3339")]
    #[schemars(with = "crate::time::Rfc3339")]
    pub as_of: Ts,
    /// Human-readable detail.
    pub detail: String,
}

/// Hex SHA-256 of `parts` joined by `|`: the deterministic ids of outputs.
pub fn id_of(parts: &[&str]) -> String {
    hex::encode(Sha256::digest(parts.join("|").as_bytes()))
}

/// `change_id`: hex SHA-256 of `uscc|as_of|from|to|rules_version` (as_of in RFC 3339 UTC,
/// `from` empty for the first colour).
pub fn change_id(
    uscc: &str,
    as_of: Ts,
    from: Option<Colour>,
    to: Colour,
    rules_version: &str,
) -> String {
    id_of(&[
        uscc,
        &format_rfc3339(as_of),
        from.map_or("", Colour::as_str),
        to.as_str(),
        rules_version,
    ])
}

impl ColourChange {
    /// The change of `uscc`'s published colour at `as_of`, explained by `e`.
    pub fn new(
        uscc: &str,
        as_of: Ts,
        from: Option<Colour>,
        to: Colour,
        e: &Evaluation,
        cat: &Catalogue,
    ) -> Self {
        ColourChange {
            change_id: change_id(uscc, as_of, from, to, &cat.version),
            uscc: uscc.to_owned(),
            from,
            to,
            score: e.s,
            score_colour: e.score_colour,
            triggers: e.triggers.to_strings(),
            reasons: e.reasons.clone(),
            as_of,
            model_version: e.model_version.clone(),
            rules_version: cat.version.clone(),
        }
    }
}

/// One enterprise's monitoring state, carried in logical-time order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Monitor {
    /// Score colour after hysteresis (`None` = no evaluation yet or scoring stopped).
    pub hyst: Option<Colour>,
    /// Published colour.
    pub published: Option<Colour>,
    /// `(S₁₀, triggers)` at the last evaluation instant.
    last: Option<(Option<i64>, Triggers)>,
    /// `(time, S₁₀)` of the evaluation instants within the score-drop window.
    recent: VecDeque<(Ts, i64)>,
    /// `SCORE_DROP` is firing.
    dropping: bool,
}

/// What monitoring reads of an evaluation: `S` in tenths (`None` when scoring stopped),
/// the active triggers and the worst trigger cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// `S₁₀`.
    pub s10: Option<i64>,
    /// Active triggers.
    pub triggers: Triggers,
    /// Worst trigger cap.
    pub cap: Colour,
}

impl From<&Evaluation> for Reading {
    fn from(e: &Evaluation) -> Self {
        Reading {
            s10: e.s10,
            triggers: e.triggers,
            cap: e.cap,
        }
    }
}

/// What one evaluation instant produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// The published colour changed: `(from, to)`.
    pub change: Option<(Option<Colour>, Colour)>,
    /// Alert state changes, in rule order.
    pub alerts: Vec<Alert>,
}

impl Monitor {
    /// Takes the evaluation of `uscc` at instant `t`. Nothing happens unless `S₁₀` or the
    /// triggers changed: evaluation instants are fixed by the input's times.
    pub fn observe(
        &mut self,
        uscc: &(impl std::fmt::Display + ?Sized),
        t: Ts,
        e: impl Into<Reading>,
        cat: &Catalogue,
    ) -> Observed {
        let e: Reading = e.into();
        let mut out = Observed::default();
        if self
            .last
            .as_ref()
            .is_some_and(|(s, tr)| (*s, *tr) == (e.s10, e.triggers))
        {
            return out;
        }
        let before = self.last.replace((e.s10, e.triggers));
        let old_triggers = before.map(|(_, tr)| tr).unwrap_or_default();
        let to = match e.s10 {
            None => {
                self.hyst = None;
                Colour::None
            }
            Some(s10) => {
                let h = hysteresis(self.hyst, s10, cat);
                self.hyst = Some(h);
                published(h, e.cap)
            }
        };
        let from = self.published;
        if from != Some(to) {
            self.published = Some(to);
            out.change = Some((from, to));
        }

        // The enterprise's name is written only into alerts.
        let name = std::cell::OnceCell::new();
        let mut alert = |rule: &str, severity: Severity, state: AlertState, detail: String| {
            let uscc: &String = name.get_or_init(|| uscc.to_string());
            let state_str = match state {
                AlertState::Firing => "firing",
                AlertState::Resolved => "resolved",
            };
            out.alerts.push(Alert {
                alert_id: id_of(&[uscc, &format_rfc3339(t), rule, state_str, &cat.version]),
                uscc: uscc.to_owned(),
                rule: rule.to_owned(),
                severity,
                state,
                as_of: t,
                detail,
            });
        };
        for code in e.triggers.without(old_triggers) {
            alert(
                code,
                trigger_severity(code, cat),
                AlertState::Firing,
                format!("trigger {code} raised"),
            );
        }
        for code in old_triggers.without(e.triggers) {
            alert(
                code,
                trigger_severity(code, cat),
                AlertState::Resolved,
                format!("trigger {code} resolved"),
            );
        }
        if let (Some(Some(f)), Some(to)) = (out.change.map(|(f, _)| f), out.change.map(|(_, t)| t))
        {
            if to > f && to != Colour::None {
                let severity = if to == Colour::Red {
                    Severity::Critical
                } else {
                    Severity::Warning
                };
                alert(
                    "COLOUR_WORSENED",
                    severity,
                    AlertState::Firing,
                    format!("{} → {}", f.as_str(), to.as_str()),
                );
            }
        }

        // SCORE_DROP over the window of evaluation instants.
        let window = cat.alerts.score_drop_days.saturating_mul(DAY);
        while self
            .recent
            .front()
            .is_some_and(|(ts, _)| *ts < t.saturating_sub(window))
        {
            self.recent.pop_front();
        }
        let dropping = match e.s10 {
            Some(s10) => {
                self.recent.push_back((t, s10));
                let high = self.recent.iter().map(|(_, s)| *s).max().unwrap_or(s10);
                let points = (10.0 * cat.alerts.score_drop_points).round() as i64;
                high - s10 >= points
            }
            None => {
                self.recent.clear();
                false
            }
        };
        if dropping != self.dropping {
            self.dropping = dropping;
            let state = if dropping {
                AlertState::Firing
            } else {
                AlertState::Resolved
            };
            let detail = format!(
                "S {} within {} days",
                if dropping { "dropped" } else { "recovered" },
                cat.alerts.score_drop_days
            );
            alert("SCORE_DROP", Severity::Warning, state, detail);
        }
        out
    }
}

/// Red-cap triggers are critical, yellow-cap and R9 warnings, the blue gate info.
fn trigger_severity(code: &str, cat: &Catalogue) -> Severity {
    match cat.triggers.iter().find(|t| t.code == code).map(|t| t.cap) {
        Some(Cap::Red) => Severity::Critical,
        Some(Cap::Green) => Severity::Info,
        _ => Severity::Warning,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(s10: Option<i64>, triggers: &[&str], cap: Colour) -> Evaluation {
        Evaluation {
            r: vec![0.0; 49],
            l2: Vec::new(),
            l1: Vec::new(),
            risk: 0.0,
            m: 0.0,
            p: None,
            q: None,
            model_version: None,
            s: s10.map(|s| s as f64 / 10.0),
            s10,
            score_colour: Colour::Green,
            triggers: Triggers::of(triggers.iter().copied()).expect("known codes"),
            cap,
            reasons: Vec::new(),
            review_flags: Vec::new(),
        }
    }

    fn rules(o: &Observed) -> Vec<(String, AlertState)> {
        o.alerts.iter().map(|a| (a.rule.clone(), a.state)).collect()
    }

    /// Colour changes and alerts carry `as_of` as RFC 3339 on the wire (topics and files,
    /// output contract 2), and read back.
    #[test]
    fn as_of_is_rfc3339_on_the_wire() {
        let cat = Catalogue::embedded();
        let mut m = Monitor::default();
        let first = m.observe(
            "U",
            1_704_563_056,
            &eval(Some(7500), &["R8"], Colour::Green),
            &cat,
        );
        let alert = serde_json::to_value(&first.alerts[0]).expect("json");
        assert_eq!(alert["as_of"], "2024-01-06T17:44:16Z", "{alert}");
        let back: Alert = serde_json::from_value(alert).expect("reads back");
        assert_eq!(back, first.alerts[0]);
        let change = ColourChange {
            uscc: "U".into(),
            from: None,
            to: Colour::Green,
            score: Some(750.0),
            score_colour: Colour::Green,
            triggers: Vec::new(),
            reasons: Vec::new(),
            as_of: 1_704_563_056,
            model_version: None,
            rules_version: cat.version.clone(),
            change_id: String::new(),
        };
        let json = serde_json::to_value(&change).expect("json");
        assert_eq!(json["as_of"], "2024-01-06T17:44:16Z", "{json}");
        assert_eq!(
            serde_json::from_value::<ColourChange>(json).expect("reads back"),
            change
        );
    }

    #[test]
    fn triggers_raise_and_resolve_and_colour_worsens() {
        let cat = Catalogue::embedded();
        let mut m = Monitor::default();
        let first = m.observe("U", 0, &eval(Some(7500), &["R8"], Colour::Green), &cat);
        assert_eq!(first.change, Some((None, Colour::Green)));
        assert_eq!(rules(&first), vec![("R8".into(), AlertState::Firing)]);
        assert_eq!(first.alerts[0].severity, Severity::Info);

        let red = m.observe("U", 10, &eval(Some(7500), &["R1", "R8"], Colour::Red), &cat);
        assert_eq!(red.change, Some((Some(Colour::Green), Colour::Red)));
        assert_eq!(
            rules(&red),
            vec![
                ("R1".into(), AlertState::Firing),
                ("COLOUR_WORSENED".into(), AlertState::Firing)
            ]
        );
        assert!(red.alerts.iter().all(|a| a.severity == Severity::Critical));

        let lifted = m.observe("U", 20, &eval(Some(7500), &["R8"], Colour::Green), &cat);
        assert_eq!(lifted.change, Some((Some(Colour::Red), Colour::Green)));
        assert_eq!(rules(&lifted), vec![("R1".into(), AlertState::Resolved)]);

        // The same evaluation again is not an instant: nothing happens.
        assert_eq!(
            m.observe("U", 30, &eval(Some(7500), &["R8"], Colour::Green), &cat),
            Observed::default()
        );
    }

    #[test]
    fn score_drop_within_thirty_days() {
        let cat = Catalogue::embedded();
        let mut m = Monitor::default();
        m.observe("U", 0, &eval(Some(8000), &[], Colour::Blue), &cat);
        let small = m.observe("U", 10 * DAY, &eval(Some(7510), &[], Colour::Blue), &cat);
        assert!(rules(&small).is_empty(), "49 points is not a drop");
        let drop = m.observe("U", 20 * DAY, &eval(Some(7500), &[], Colour::Blue), &cat);
        assert_eq!(
            rules(&drop),
            vec![("SCORE_DROP".into(), AlertState::Firing)]
        );
        // 31 days after the 800: the window's highest is now 751.
        let later = m.observe("U", 31 * DAY, &eval(Some(7490), &[], Colour::Blue), &cat);
        assert_eq!(
            rules(&later),
            vec![("SCORE_DROP".into(), AlertState::Resolved)]
        );
        let ids: std::collections::BTreeSet<&str> = drop
            .alerts
            .iter()
            .chain(&later.alerts)
            .map(|a| a.alert_id.as_str())
            .collect();
        assert_eq!(ids.len(), 2);
    }
}
