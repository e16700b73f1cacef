//! The generator's configuration and its validation.

use serde::{Deserialize, Serialize};

use rules::time::{rfc3339, ymd, Ts};

/// Latent risk levels of generated enterprises, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    /// Clean firms: tax grade A, high public credit scores, no adverse records by default.
    VeryLow,
    /// Ordinary firms with occasional minor adverse records.
    Low,
    /// Firms that tend to collect yellow-trigger records.
    Medium,
    /// Firms that tend to collect red-trigger records.
    High,
}

impl RiskLevel {
    /// Every level, best first (the order of [`RiskLevels::by_level`]).
    pub const ALL: [RiskLevel; 4] = [
        RiskLevel::VeryLow,
        RiskLevel::Low,
        RiskLevel::Medium,
        RiskLevel::High,
    ];

    /// Position in [`RiskLevel::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Share and event-rate multipliers of one latent risk level.
///
/// Adverse events have a base yearly rate each (per enterprise, in the generator's event
/// table) and a severity: *minor* events (minor or general penalties, lawsuits, short loan
/// overdues, freezes, tax arrears, suspicious accounts), *yellow-trigger* events (abnormal
/// list, serious penalties, loan overdue beyond 90 days, consumption restriction, terminated
/// enforcement, abnormal tax household, the legal representative's dishonesty) and
/// *red-trigger* events (serious illegal list, dishonest debtor, major tax violation, debt
/// evasion, police dishonesty list). The yearly rate of an event at this level is its base rate
/// times the multiplier of its severity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskLevelConfig {
    /// Share of enterprises at this level, in [0, 1]; the four shares sum to 1.
    pub share: f64,
    /// Multiplier on the base yearly rates of minor adverse events (≥ 0).
    pub minor_rate: f64,
    /// Multiplier on the base yearly rates of yellow-trigger events (≥ 0).
    pub yellow_rate: f64,
    /// Multiplier on the base yearly rates of red-trigger events (≥ 0).
    pub red_rate: f64,
}

/// The latent-risk mix: one [`RiskLevelConfig`] per [`RiskLevel`].
///
/// The defaults aim at the colour shares of `model.md` (~5% blue, 75% green, 15% yellow,
/// 5% red); the final shares can only be checked against the reference computation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskLevels {
    /// Clean enterprises (aimed at blue).
    pub very_low: RiskLevelConfig,
    /// Ordinary enterprises (aimed at green).
    pub low: RiskLevelConfig,
    /// Enterprises aimed at yellow.
    pub medium: RiskLevelConfig,
    /// Enterprises aimed at red.
    pub high: RiskLevelConfig,
}

impl RiskLevels {
    /// The four levels in [`RiskLevel::ALL`] order.
    pub fn by_level(&self) -> [(RiskLevel, &RiskLevelConfig); 4] {
        [
            (RiskLevel::VeryLow, &self.very_low),
            (RiskLevel::Low, &self.low),
            (RiskLevel::Medium, &self.medium),
            (RiskLevel::High, &self.high),
        ]
    }

    /// The configuration of one level.
    pub fn get(&self, level: RiskLevel) -> &RiskLevelConfig {
        self.by_level()[level.index()].1
    }
}

impl Default for RiskLevels {
    fn default() -> Self {
        let level = |share, minor_rate, yellow_rate, red_rate| RiskLevelConfig {
            share,
            minor_rate,
            yellow_rate,
            red_rate,
        };
        RiskLevels {
            very_low: level(0.05, 0.0, 0.0, 0.0),
            low: level(0.77, 0.7, 0.2, 0.25),
            medium: level(0.13, 2.5, 8.0, 1.0),
            high: level(0.05, 5.0, 8.0, 60.0),
        }
    }
}

/// Configuration of [`super::generate`]. The same configuration always produces the same bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenConfig {
    /// Number of enterprises (1 – 10,000,000).
    pub enterprises: u32,
    /// Seed of every random choice; each enterprise draws from its own stream derived from
    /// `(seed, enterprise index)`.
    pub seed: u64,
    /// City part of the region code: 4 digits (Quzhou 衢州 is `3308`). USCC positions 3–8 are
    /// this prefix followed by one of `districts`.
    pub region: String,
    /// District suffixes (2 digits each) completing the 6-digit region code; Quzhou's are
    /// 02 柯城, 03 衢江, 22 常山, 24 开化, 25 龙游, 81 江山. Earlier entries are more frequent.
    pub districts: Vec<String>,
    /// Start of the simulated period (RFC 3339); historical facts (establishment, capital,
    /// roles) are loaded in the first days after it.
    #[serde(with = "rfc3339")]
    pub start: Ts,
    /// Length of the simulated period in calendar years (1 – 50); nothing is ingested after it.
    pub years: u32,
    /// Share of records delivered a second time with identical bytes, in [0, 1].
    pub duplicate_rate: f64,
    /// Share of records followed later by a corrected version (`version` 2 with changed
    /// fields; `PEN.CORRECTED` for penalty decisions), in [0, 1]. Retractions are never corrected.
    pub correction_rate: f64,
    /// Share of records that arrive late, by up to `lateness_secs` after records ingested
    /// after them, in [0, 1].
    pub out_of_order_rate: f64,
    /// Allowed lateness in seconds (default 600, the pipeline's default): out-of-order and
    /// duplicate deliveries are delayed by at most this much.
    pub lateness_secs: u32,
    /// Share of extra malformed records, in [0, 1]: invalid JSON, a missing required field, a
    /// bad USCC check character, a negative amount, an unknown kind, or an `event_time` more
    /// than one day after `ingest_time`, in equal parts.
    pub malformed_rate: f64,
    /// Share of enterprises whose registration is revoked or deregistered during the period
    /// (`REG.STATUS`), in [0, 1]; a third of the revoked ones are later `ACTIVE` again.
    pub status_change_rate: f64,
    /// Latent-risk mix and per-level event-rate multipliers.
    pub risk: RiskLevels,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            enterprises: 10_000,
            seed: 0,
            region: "3308".to_owned(),
            districts: ["02", "03", "22", "24", "25", "81"]
                .map(str::to_owned)
                .to_vec(),
            start: ymd(2022, 1, 1),
            years: 3,
            duplicate_rate: 0.01,
            correction_rate: 0.01,
            out_of_order_rate: 0.05,
            lateness_secs: 600,
            malformed_rate: 0.001,
            status_change_rate: 0.005,
            risk: RiskLevels::default(),
        }
    }
}

/// Largest supported number of enterprises (organisation codes are unique below 31^7).
pub const MAX_ENTERPRISES: u32 = 10_000_000;

/// Why a [`GenConfig`] is rejected; each variant names the offending field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GenConfigError {
    /// A count or length outside its range.
    #[error("{field} must be in {min}..={max}, got {value}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
        /// The configured value.
        value: u64,
    },
    /// A rate or share outside [0, 1] (or not a number).
    #[error("{field} must be a number in [0, 1], got {value}")]
    Rate {
        /// The field.
        field: String,
        /// The configured value.
        value: f64,
    },
    /// A multiplier that is negative or not finite.
    #[error("{field} must be a finite number >= 0, got {value}")]
    Multiplier {
        /// The field.
        field: String,
        /// The configured value.
        value: f64,
    },
    /// The latent-risk shares do not sum to 1.
    #[error("risk.*.share must sum to 1, got {sum}")]
    MixSum {
        /// The sum of the shares.
        sum: f64,
    },
    /// A region or district code of the wrong shape.
    #[error("{field} must be {digits} ASCII digits, got {value:?}")]
    Digits {
        /// The field.
        field: &'static str,
        /// Required number of digits.
        digits: usize,
        /// The configured value.
        value: String,
    },
    /// No districts configured.
    #[error("districts must not be empty")]
    NoDistricts,
}

impl GenConfig {
    /// Checks every field; the error names the first offending one.
    pub fn validate(&self) -> Result<(), GenConfigError> {
        let range = |field, value: u64, min, max| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(GenConfigError::OutOfRange {
                    field,
                    min,
                    max,
                    value,
                })
            }
        };
        range(
            "enterprises",
            self.enterprises.into(),
            1,
            MAX_ENTERPRISES.into(),
        )?;
        range("years", self.years.into(), 1, 50)?;
        digits("region", &self.region, 4)?;
        if self.districts.is_empty() {
            return Err(GenConfigError::NoDistricts);
        }
        for d in &self.districts {
            digits("districts", d, 2)?;
        }
        for (field, value) in [
            ("duplicate_rate", self.duplicate_rate),
            ("correction_rate", self.correction_rate),
            ("out_of_order_rate", self.out_of_order_rate),
            ("malformed_rate", self.malformed_rate),
            ("status_change_rate", self.status_change_rate),
        ] {
            rate(field.to_owned(), value)?;
        }
        let mut sum = 0.0;
        for (level, c) in self.risk.by_level() {
            let name = serde_json::to_value(level).ok();
            let name = name.as_ref().and_then(|v| v.as_str()).unwrap_or("?");
            rate(format!("risk.{name}.share"), c.share)?;
            sum += c.share;
            for (field, value) in [
                ("minor_rate", c.minor_rate),
                ("yellow_rate", c.yellow_rate),
                ("red_rate", c.red_rate),
            ] {
                if !(value.is_finite() && value >= 0.0) {
                    return Err(GenConfigError::Multiplier {
                        field: format!("risk.{name}.{field}"),
                        value,
                    });
                }
            }
        }
        if (sum - 1.0).abs() > 1e-6 {
            return Err(GenConfigError::MixSum { sum });
        }
        Ok(())
    }
}

fn rate(field: String, value: f64) -> Result<(), GenConfigError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(GenConfigError::Rate { field, value })
    }
}

fn digits(field: &'static str, value: &str, n: usize) -> Result<(), GenConfigError> {
    if value.len() == n && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(GenConfigError::Digits {
            field,
            digits: n,
            value: value.to_owned(),
        })
    }
}
