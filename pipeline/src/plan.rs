//! `steward plan`: an inspection campaign (`supervision.md`, graded random inspection).
//!
//! The candidates are the enterprises of the current state in ClickHouse (optionally one
//! region or industry) with a colour; the snapshot is the state's logical time. Each is
//! decided by [`rules::supervision::Inspection::decide`] with the campaign's seed, its
//! level-3 values (targeted overrides), its latest registered capital and the snapshots of
//! earlier campaigns that selected it by colour (frequency caps). The selections go to
//! `inspection_plans` and the plans topic, then the per-colour counts to
//! `inspection_campaigns`, which marks the campaign as planned: a campaign id is planned once.

use std::collections::{BTreeMap, HashMap};

use clickhouse::Row;
use connectors::clickhouse::{CampaignRow, ClickHouse, ClickHouseError, PlanRow};
use connectors::config::Config;
use connectors::kafka::{KafkaFailure, TxnProducer};
use rules::score::Colour;
use rules::supervision::{Candidate, Supervision};
use rules::time::Ts;
use serde::{Deserialize, Serialize};

use crate::messages::{to_bytes, CampaignMessage, PlanMessage, SelectionMessage};

/// A planning failure.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// ClickHouse failed.
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    /// Kafka failed.
    #[error(transparent)]
    Kafka(#[from] KafkaFailure),
    /// An argument cannot be used in a query.
    #[error("{name} {value:?}: only letters, digits, '_', '-' and '.' are allowed")]
    BadArgument {
        /// The argument.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// The campaign was planned before.
    #[error("campaign {0:?} was already planned; plans are kept as they were made")]
    AlreadyPlanned(String),
    /// The async runtime could not start.
    #[error("tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// There is no state to plan from.
    #[error("no enterprise state in database {0}: run `steward serve` first")]
    NoState(String),
}

/// What to plan.
#[derive(Debug, Clone)]
pub struct Campaign {
    /// The campaign's id.
    pub id: String,
    /// The seed of the sampling hash.
    pub seed: u64,
    /// Only this region code, if given.
    pub region: Option<String>,
    /// Only this industry code, if given.
    pub industry: Option<String>,
}

/// Population and selections of one colour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Count {
    /// Candidates of the colour.
    pub population: u64,
    /// Selected.
    pub selected: u64,
    /// Selected by a targeted override.
    pub overridden: u64,
    /// Drawn but not selected because of the frequency cap.
    pub capped: u64,
}

impl Count {
    /// `selected / population` (0 for an empty population).
    pub fn rate(&self) -> f64 {
        if self.population == 0 {
            0.0
        } else {
            self.selected as f64 / self.population as f64
        }
    }
}

/// A campaign's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The snapshot: the logical time of the state the colours come from.
    pub snapshot: Ts,
    /// Counts by colour.
    pub counts: BTreeMap<Colour, Count>,
    /// The selections, by USCC.
    pub rows: Vec<PlanRow>,
}

impl Plan {
    /// The pooled selection rate of the low-risk colours (blue and green).
    pub fn low_risk_rate(&self) -> f64 {
        let (mut n, mut k) = (0, 0);
        for c in [Colour::Blue, Colour::Green] {
            if let Some(x) = self.counts.get(&c) {
                n += x.population;
                k += x.selected;
            }
        }
        if n == 0 {
            0.0
        } else {
            k as f64 / n as f64
        }
    }
}

#[derive(Debug, Row, Deserialize)]
struct StateQ {
    uscc: String,
    colour: String,
    s: Option<f64>,
    reasons: String,
    region: String,
    industry: String,
    level3: Vec<f64>,
}

#[derive(Debug, Row, Deserialize)]
struct CapitalQ {
    uscc: String,
    capital: i64,
}

#[derive(Debug, Row, Deserialize)]
struct EarlierQ {
    uscc: String,
    snapshot: u32,
}

#[derive(Debug, Row, Deserialize)]
struct Exists {
    n: u64,
}

#[derive(Debug, Row, Deserialize)]
struct MaxQ {
    t: u32,
}

fn checked(name: &'static str, value: &str) -> Result<String, PlanError> {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        Ok(value.to_owned())
    } else {
        Err(PlanError::BadArgument {
            name,
            value: value.to_owned(),
        })
    }
}

/// The colour named by `enterprise_state.colour`.
pub fn colour_of(s: &str) -> Colour {
    match s {
        "blue" => Colour::Blue,
        "green" => Colour::Green,
        "yellow" => Colour::Yellow,
        "red" => Colour::Red,
        _ => Colour::None,
    }
}

/// Selects the campaign's enterprises from the current state in ClickHouse (nothing is
/// written).
pub async fn select(ch: &ClickHouse, sup: &Supervision, c: &Campaign) -> Result<Plan, PlanError> {
    let db = ch.database();
    let id = checked("--campaign", &c.id)?;
    let mut filter = String::new();
    if let Some(r) = &c.region {
        filter.push_str(&format!(" AND region = '{}'", checked("--region", r)?));
    }
    if let Some(i) = &c.industry {
        filter.push_str(&format!(" AND industry = '{}'", checked("--industry", i)?));
    }
    let snapshot = ch
        .fetch::<MaxQ>(&format!(
            "SELECT max(as_of) AS t FROM {db}.enterprise_state FINAL WHERE deleted = 0"
        ))
        .await?
        .first()
        .map_or(0, |m| m.t);
    if snapshot == 0 {
        return Err(PlanError::NoState(db.to_owned()));
    }
    let states: Vec<StateQ> = ch
        .fetch(&format!(
            "SELECT uscc, colour, s, reasons, region, industry, level3 \
             FROM (SELECT uscc, colour, s, reasons, region, industry \
                   FROM {db}.enterprise_state FINAL WHERE deleted = 0{filter}) \
             ANY LEFT JOIN (SELECT uscc, level3 FROM {db}.indicator_values FINAL \
                            WHERE deleted = 0) USING uscc \
             ORDER BY uscc"
        ))
        .await?;
    let capital: HashMap<String, i64> = ch
        .fetch::<CapitalQ>(&format!(
            "SELECT uscc, argMax(visitParamExtractInt(body, 'registered_capital_fen'), \
                                 toUInt64(event_time) * 100000 + record_version) AS capital \
             FROM {db}.records FINAL \
             WHERE feed = 'REG' AND position(body, '\"registered_capital_fen\"') > 0 \
             GROUP BY uscc"
        ))
        .await?
        .into_iter()
        .map(|r| (r.uscc, r.capital))
        .collect();
    let mut earlier: HashMap<String, Vec<Ts>> = HashMap::new();
    for r in ch
        .fetch::<EarlierQ>(&format!(
            "SELECT uscc, snapshot FROM {db}.inspection_plans \
             WHERE reason = 'colour' AND campaign_id != '{id}'"
        ))
        .await?
    {
        earlier
            .entry(r.uscc)
            .or_default()
            .push(Ts::from(r.snapshot));
    }
    let at = Ts::from(snapshot);
    // Every colour has a count, so that an empty population is recorded too.
    let mut counts: BTreeMap<Colour, Count> =
        [Colour::Blue, Colour::Green, Colour::Yellow, Colour::Red]
            .into_iter()
            .map(|c| (c, Count::default()))
            .collect();
    let mut rows = Vec::new();
    for s in &states {
        let colour = colour_of(&s.colour);
        let cand = Candidate {
            uscc: &s.uscc,
            colour,
            level3: &s.level3,
            registered_capital_fen: capital.get(&s.uscc).copied(),
            earlier: earlier.get(&s.uscc).map_or(&[], Vec::as_slice),
        };
        let Some(d) = sup.inspection.decide(c.seed, at, &cand) else {
            continue;
        };
        let count = counts.entry(colour).or_default();
        count.population += 1;
        count.capped += u64::from(d.capped);
        if !d.selected {
            continue;
        }
        count.selected += 1;
        count.overridden += u64::from(d.reason != "colour");
        rows.push(PlanRow {
            campaign_id: id.clone(),
            seed: c.seed,
            snapshot,
            uscc: s.uscc.clone(),
            colour: s.colour.clone(),
            score: s.s,
            u: d.u,
            probability: d.probability,
            reason: d.reason,
            reasons: s.reasons.clone(),
            region: s.region.clone(),
            industry: s.industry.clone(),
        });
    }
    Ok(Plan {
        snapshot: at,
        counts,
        rows,
    })
}

/// Plans campaign `c`: selects, then writes `inspection_plans`, the plans topic (one
/// transaction: every selection and a campaign summary) and `inspection_campaigns`.
pub fn plan(cfg: &Config, sup: &Supervision, c: &Campaign) -> Result<Plan, PlanError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PlanError::Runtime)?;
    let ch = ClickHouse::new(&cfg.clickhouse)?;
    let db = ch.database();
    let id = checked("--campaign", &c.id)?;
    let p = rt.block_on(async {
        ch.migrate().await?;
        let done = ch
            .fetch::<Exists>(&format!(
                "SELECT count() AS n FROM {db}.inspection_campaigns WHERE campaign_id = '{id}'"
            ))
            .await?;
        if done.first().is_some_and(|e| e.n > 0) {
            return Err(PlanError::AlreadyPlanned(id.clone()));
        }
        let p = select(&ch, sup, c).await?;
        ch.insert("inspection_plans", &p.rows).await?;
        Ok(p)
    })?;

    let k = &cfg.kafka;
    connectors::kafka::ensure_topics(k, &[(k.topics.plans.as_str(), 3, false)])?;
    let producer = TxnProducer::new(k, &format!("{}-plan", k.transactional_id))?;
    producer.begin()?;
    let sent = (|| {
        for r in &p.rows {
            let msg = PlanMessage::InspectionSelection(SelectionMessage::of(r));
            producer.send(&k.topics.plans, r.uscc.as_bytes(), &to_bytes(msg))?;
        }
        let summary = PlanMessage::InspectionCampaign(CampaignMessage {
            campaign_id: id.clone(),
            seed: c.seed,
            snapshot: p.snapshot,
            region: c.region.clone(),
            industry: c.industry.clone(),
            counts: p.counts.clone(),
            low_risk_rate: p.low_risk_rate(),
        });
        producer.send(&k.topics.plans, id.as_bytes(), &to_bytes(summary))?;
        producer.commit()
    })();
    if let Err(e) = sent {
        let _ = producer.abort();
        return Err(e.into());
    }
    let campaigns: Vec<CampaignRow> = p
        .counts
        .iter()
        .map(|(colour, n)| CampaignRow {
            campaign_id: id.clone(),
            seed: c.seed,
            snapshot: p.snapshot as u32,
            colour: colour.as_str().to_owned(),
            population: n.population,
            selected: n.selected,
        })
        .collect();
    rt.block_on(ch.insert("inspection_campaigns", &campaigns))?;
    Ok(p)
}
