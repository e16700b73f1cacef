//! What `steward web` reads from ClickHouse, and the JSON types of its API (the pages are
//! rendered from the same values). Every value a request brings is checked here and bound
//! into its query by the client's escaping, never pasted; the database name comes from the
//! validated configuration.

use clickhouse::Row;
use connectors::clickhouse::{CampaignRow, ClickHouse};
use rules::time::{format_rfc3339, Ts};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::WebError;

/// The colours a search may ask for (`none`: scoring stopped).
pub const COLOURS: [&str; 5] = ["blue", "green", "yellow", "red", "none"];

/// `raw` as a USCC: normalised (spaces and hyphens dropped, upper case) and checked
/// (GB 32100-2015: alphabet, authority, region digits, check character).
pub fn uscc(raw: &str) -> Result<String, WebError> {
    let code = rules::uscc::normalise(raw);
    rules::uscc::check(&code)
        .map_err(|e| WebError::BadUscc(raw.chars().take(40).collect(), e.to_string()))?;
    Ok(code)
}

/// Every query of the service: `{db}` is the configured database, each `?` a value bound
/// by the client (`LIMIT ?` a number, the others strings). Kept here as text so that the
/// tests run each on ClickHouse 18.16 and on a current ClickHouse.
pub const QUERIES: [&str; 6] = [
    PUBLIC_STATE,
    COLOUR_SINCE,
    SEARCH,
    WORSENED,
    CAMPAIGN,
    CAMPAIGN_PLANS,
];

const PUBLIC_STATE: &str = "SELECT colour, region, industry, rules_version, as_of \
     FROM {db}.enterprise_state FINAL WHERE deleted = 0 AND uscc = ?";
const COLOUR_SINCE: &str = "SELECT max(as_of) AS since, count() AS changes \
     FROM {db}.colour_history WHERE uscc = ? AND to_colour = ?";
const SEARCH: &str = "SELECT uscc, colour, s, region, industry, as_of \
     FROM {db}.enterprise_state FINAL \
     WHERE deleted = 0 AND uscc LIKE ? AND (? = '' OR region = ?) \
     AND (? = '' OR industry = ?) AND (? = '' OR colour = ?) \
     ORDER BY uscc LIMIT ?";
const WORSENED: &str = "SELECT as_of, uscc, from_colour, to_colour, score, triggers, region, \
     industry FROM {db}.colour_history WHERE direction = 'worsened' \
     AND (? = '' OR region = ?) AND (? = '' OR industry = ?) \
     ORDER BY as_of DESC, uscc LIMIT ?";
const CAMPAIGN: &str = "SELECT * FROM {db}.inspection_campaigns WHERE campaign_id = \
     (SELECT campaign_id FROM {db}.inspection_campaigns \
      ORDER BY snapshot DESC, campaign_id DESC LIMIT 1) ORDER BY colour";
const CAMPAIGN_PLANS: &str = "SELECT uscc, colour, score, reason, region, industry \
     FROM {db}.inspection_plans WHERE campaign_id = ? ORDER BY uscc LIMIT ?";

/// `sql` on `ch`'s database, for its values to be bound.
fn query(ch: &ClickHouse, sql: &str) -> clickhouse::query::Query {
    ch.query(&sql.replace("{db}", ch.database()))
}

/// What anyone may see of an enterprise's colour code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PublicCode {
    /// The unified social credit code.
    pub uscc: String,
    /// `blue`, `green`, `yellow`, `red`, or `none` when scoring stopped.
    pub colour: String,
    /// Since when the enterprise has had this colour (RFC 3339, UTC): its last change to it.
    pub colour_since: String,
    /// Region code.
    pub region: String,
    /// Industry code.
    pub industry: String,
    /// The version of the rules that gave the colour.
    pub rules_version: String,
    /// The address of the public page (what the QR code holds).
    pub page: String,
}

#[derive(Debug, Row, Deserialize)]
struct PublicRow {
    colour: String,
    region: String,
    industry: String,
    rules_version: String,
    as_of: u32,
}

#[derive(Debug, Row, Deserialize)]
struct Since {
    since: u32,
    changes: u64,
}

/// The address of `uscc`'s public page: what its QR code holds.
pub fn page_of(public_url: &str, uscc: &str) -> String {
    format!("{public_url}/c/{uscc}")
}

/// The current state of `uscc` (checked), if it has a published colour.
async fn public_state(ch: &ClickHouse, uscc: &str) -> Result<Option<PublicRow>, WebError> {
    let q = query(ch, PUBLIC_STATE).bind(uscc);
    Ok(ch
        .fetch_bound::<PublicRow>("public state", q)
        .await?
        .into_iter()
        .next())
}

/// Whether `uscc` (checked) has a published colour code.
pub async fn published(ch: &ClickHouse, uscc: &str) -> Result<bool, WebError> {
    Ok(public_state(ch, uscc).await?.is_some())
}

/// The public colour code of `uscc` (checked), or `None` when ClickHouse has no state of it.
pub async fn public(
    ch: &ClickHouse,
    uscc: &str,
    public_url: &str,
) -> Result<Option<PublicCode>, WebError> {
    let Some(state) = public_state(ch, uscc).await? else {
        return Ok(None);
    };
    let q = query(ch, COLOUR_SINCE)
        .bind(uscc)
        .bind(state.colour.as_str());
    let since = ch.fetch_bound::<Since>("colour since", q).await?;
    let since = match since.first() {
        Some(s) if s.changes > 0 => s.since,
        _ => state.as_of,
    };
    Ok(Some(PublicCode {
        uscc: uscc.to_owned(),
        colour: state.colour,
        colour_since: format_rfc3339(Ts::from(since)),
        region: state.region,
        industry: state.industry,
        rules_version: state.rules_version,
        page: page_of(public_url, uscc),
    }))
}

/// A search of the current states; every field is optional, and all given must match.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Search {
    /// The USCC or its beginning (letters and digits, up to 18).
    pub uscc: Option<String>,
    /// Region code.
    pub region: Option<String>,
    /// Industry code.
    pub industry: Option<String>,
    /// `blue`, `green`, `yellow`, `red` or `none`.
    pub colour: Option<String>,
}

/// `v` trimmed, `None` when empty; refused unless it is at most `max` letters, digits, `_`
/// or `-`.
fn code(field: &'static str, v: Option<&str>, max: usize) -> Result<Option<String>, WebError> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.len() > max
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(WebError::BadParameter(
            field,
            format!("at most {max} letters, digits, _ or -"),
        ));
    }
    Ok(Some(v.to_owned()))
}

impl Search {
    /// The checked filters: `(uscc prefix, region, industry, colour)`, empty when not given.
    fn checked(&self) -> Result<[String; 4], WebError> {
        let uscc = code("uscc", self.uscc.as_deref(), 18)?
            .map(|u| rules::uscc::normalise(&u))
            .unwrap_or_default();
        if uscc.contains(['_', '-']) {
            return Err(WebError::BadParameter(
                "uscc",
                "letters and digits only".into(),
            ));
        }
        let colour = code("colour", self.colour.as_deref(), 8)?.unwrap_or_default();
        if !colour.is_empty() && !COLOURS.contains(&colour.as_str()) {
            return Err(WebError::BadParameter(
                "colour",
                "blue, green, yellow, red or none".into(),
            ));
        }
        Ok([
            uscc,
            code("region", self.region.as_deref(), 32)?.unwrap_or_default(),
            code("industry", self.industry.as_deref(), 32)?.unwrap_or_default(),
            colour,
        ])
    }

    /// Whether no filter is given.
    pub fn is_empty(&self) -> bool {
        [&self.uscc, &self.region, &self.industry, &self.colour]
            .iter()
            .all(|v| v.as_deref().is_none_or(|v| v.trim().is_empty()))
    }
}

/// An enterprise as a search lists it.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize, ToSchema)]
pub struct Listed {
    /// The unified social credit code.
    pub uscc: String,
    /// The current colour.
    pub colour: String,
    /// The score `S`; absent when scoring stopped.
    pub s: Option<f64>,
    /// Region code.
    pub region: String,
    /// Industry code.
    pub industry: String,
    /// When it was last assessed (Unix seconds, UTC).
    pub as_of: u32,
}

/// Rows of a list, and whether more matched than were returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    /// The rows, at most `web.max_rows`.
    pub rows: Vec<T>,
    /// More rows matched than were returned.
    pub truncated: bool,
}

impl<T> Page<T> {
    fn of(mut rows: Vec<T>, max: u32) -> Self {
        let truncated = rows.len() > max as usize;
        rows.truncate(max as usize);
        Page { rows, truncated }
    }
}

/// The current states matching `s`, by USCC, at most `max`.
pub async fn search(ch: &ClickHouse, s: &Search, max: u32) -> Result<Page<Listed>, WebError> {
    let [uscc, region, industry, colour] = s.checked()?;
    let q = query(ch, SEARCH)
        .bind(format!("{uscc}%"))
        .bind(region.as_str())
        .bind(region.as_str())
        .bind(industry.as_str())
        .bind(industry.as_str())
        .bind(colour.as_str())
        .bind(colour.as_str())
        .bind(max + 1);
    Ok(Page::of(ch.fetch_bound("search", q).await?, max))
}

/// A filter of the list of worsened enterprises.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Worsening {
    /// Region code.
    pub region: Option<String>,
    /// Industry code.
    pub industry: Option<String>,
}

/// A colour change to a worse colour.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize, ToSchema)]
pub struct Worsened {
    /// When (Unix seconds, UTC).
    pub as_of: u32,
    /// The enterprise.
    pub uscc: String,
    /// The colour before (empty for a first colour).
    pub from_colour: String,
    /// The colour after.
    pub to_colour: String,
    /// The score then; absent when scoring stopped.
    pub score: Option<f64>,
    /// The rule triggers in effect.
    pub triggers: Vec<String>,
    /// Region code.
    pub region: String,
    /// Industry code.
    pub industry: String,
}

/// The latest changes to a worse colour, newest first, at most `max`.
pub async fn worsened(
    ch: &ClickHouse,
    w: &Worsening,
    max: u32,
) -> Result<Page<Worsened>, WebError> {
    let region = code("region", w.region.as_deref(), 32)?.unwrap_or_default();
    let industry = code("industry", w.industry.as_deref(), 32)?.unwrap_or_default();
    let q = query(ch, WORSENED)
        .bind(region.as_str())
        .bind(region.as_str())
        .bind(industry.as_str())
        .bind(industry.as_str())
        .bind(max + 1);
    Ok(Page::of(ch.fetch_bound("worsened", q).await?, max))
}

/// One colour's share of a campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Stratum {
    /// The colour.
    pub colour: String,
    /// Enterprises of that colour at the snapshot.
    pub population: u64,
    /// Of them, selected for inspection.
    pub selected: u64,
}

/// An enterprise selected for inspection.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize, ToSchema)]
pub struct Planned {
    /// The enterprise.
    pub uscc: String,
    /// Its colour at the snapshot.
    pub colour: String,
    /// Its score then.
    pub score: Option<f64>,
    /// Why it was selected.
    pub reason: String,
    /// Region code.
    pub region: String,
    /// Industry code.
    pub industry: String,
}

/// The current inspection campaign (the one with the latest snapshot).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Campaign {
    /// Its id.
    pub campaign_id: String,
    /// The seed of its sampling.
    pub seed: u64,
    /// The colours it was planned from (RFC 3339, UTC).
    pub snapshot: String,
    /// Population and selection by colour, best colour first.
    pub strata: Vec<Stratum>,
    /// The selected enterprises, by USCC, at most `web.max_rows`.
    pub selected: Page<Planned>,
}

/// The campaign with the latest snapshot, or `None` when none was planned.
pub async fn campaign(ch: &ClickHouse, max: u32) -> Result<Option<Campaign>, WebError> {
    let q = query(ch, CAMPAIGN);
    let rows: Vec<CampaignRow> = ch.fetch_bound("campaign", q).await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let q = query(ch, CAMPAIGN_PLANS)
        .bind(first.campaign_id.as_str())
        .bind(max + 1);
    let selected = Page::of(ch.fetch_bound("campaign plans", q).await?, max);
    let mut strata: Vec<Stratum> = rows
        .iter()
        .map(|r| Stratum {
            colour: r.colour.clone(),
            population: r.population,
            selected: r.selected,
        })
        .collect();
    // Best colour first.
    strata.sort_by_key(|s| COLOURS.iter().position(|c| *c == s.colour));
    Ok(Some(Campaign {
        campaign_id: first.campaign_id.clone(),
        seed: first.seed,
        snapshot: format_rfc3339(Ts::from(first.snapshot)),
        strata,
        selected,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_searches_are_checked() {
        let good = rules::uscc::with_check("91330106MA2AB3CD4").expect("17 characters");
        assert_eq!(uscc(&good.to_lowercase()).unwrap(), good);
        assert!(matches!(uscc("9133"), Err(WebError::BadUscc(..))));
        assert!(matches!(uscc("' OR 1=1 --"), Err(WebError::BadUscc(..))));
        let s = |uscc: &str, colour: &str| Search {
            uscc: Some(uscc.into()),
            colour: Some(colour.into()),
            ..Search::default()
        };
        assert_eq!(
            s(" 9133 ", "red").checked().unwrap(),
            [
                "9133".to_owned(),
                String::new(),
                String::new(),
                "red".into()
            ]
        );
        for bad in [
            s("91%", ""),
            s("9_1", ""),
            s("", "purple"),
            s("x' OR '1'='1", ""),
        ] {
            assert!(
                matches!(bad.checked(), Err(WebError::BadParameter(..))),
                "{bad:?}"
            );
        }
        assert!(Search::default().is_empty());
        assert!(!s("9", "").is_empty());
        let page = Page::of(vec![1, 2, 3], 2);
        assert_eq!((page.rows, page.truncated), (vec![1, 2], true));
    }
}
