//! The JSON API of `steward web` and its OpenAPI document (`/api/openapi.json`, generated
//! from these handlers and the types of `data` by utoipa, so that it cannot drift from them).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use connectors::config::WebRole;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::auth::Viewer;
use super::data::{self, Campaign, Listed, Page, PublicCode, Search, Worsened, Worsening};
use super::{Failure, Form, Shared, WebError};
use crate::report::{self, Lang, Period};

/// A failed request's answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// A stable code: `bad_uscc`, `bad_parameter`, `not_found`, `unauthorized`,
    /// `throttled`, `forbidden`, `too_large`, `unavailable`, `report_failed` or
    /// `qr_failed`.
    pub error: String,
    /// What went wrong, in words.
    pub message: String,
}

/// The API's routes.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/public/{uscc}", get(public))
        .route("/api/v1/enterprises", get(search))
        .route("/api/v1/enterprises/{uscc}", get(enterprise))
        .route("/api/v1/worsened", get(worsened))
        .route("/api/v1/campaign", get(campaign))
        .route(
            "/api/openapi.json",
            get(|| async { Json(ApiDoc::openapi()) }),
        )
}

fn json(e: WebError) -> Failure {
    Failure(e, Form::Json)
}

/// A query string's parameters, or 400 naming what is wrong with it.
pub(super) fn params<T>(q: Result<Query<T>, QueryRejection>, form: Form) -> Result<T, Failure> {
    q.map(|Query(t)| t)
        .map_err(|e| Failure(WebError::BadParameter("query", e.body_text()), form))
}

fn unpublished(uscc: &str) -> WebError {
    WebError::NotFound(format!("no colour code is published for {uscc}"))
}

/// The public colour code of the enterprise `raw` names.
pub(super) async fn public_code(app: &Shared, raw: &str) -> Result<PublicCode, WebError> {
    let uscc = data::uscc(raw)?;
    data::public(&app.ch, &uscc, &app.cfg.public_url)
        .await?
        .ok_or_else(|| unpublished(&uscc))
}

/// The USCC `raw` names and its public page's address, if its colour code is published
/// (one query: what a QR code needs).
pub(super) async fn published_page(app: &Shared, raw: &str) -> Result<(String, String), WebError> {
    let uscc = data::uscc(raw)?;
    if !data::published(&app.ch, &uscc).await? {
        return Err(unpublished(&uscc));
    }
    let page = data::page_of(&app.cfg.public_url, &uscc);
    Ok((uscc, page))
}

/// An enterprise's public colour code.
#[utoipa::path(
    get,
    path = "/api/v1/public/{uscc}",
    params(("uscc" = String, Path, description = "Unified social credit code (18 characters)")),
    responses(
        (status = 200, description = "The colour code", body = PublicCode),
        (status = 400, description = "Not a valid USCC", body = ApiError),
        (status = 404, description = "No colour code is published for it", body = ApiError),
    ),
    tag = "public"
)]
async fn public(
    State(app): State<Shared>,
    Path(raw): Path<String>,
) -> Result<Json<PublicCode>, Failure> {
    public_code(&app, &raw).await.map(Json).map_err(json)
}

/// Current states matching a search.
#[utoipa::path(
    get,
    path = "/api/v1/enterprises",
    params(Search),
    responses(
        (status = 200, description = "Matching enterprises by USCC", body = Page<Listed>),
        (status = 400, description = "A parameter is not allowed", body = ApiError),
        (status = 401, description = "No or wrong credentials", body = ApiError),
    ),
    security(("basic" = [])),
    tag = "supervision"
)]
async fn search(
    State(app): State<Shared>,
    viewer: Viewer,
    q: Result<Query<Search>, QueryRejection>,
) -> Result<Json<Page<Listed>>, Failure> {
    viewer.needs(WebRole::Analyst)?;
    let s = params(q, Form::Json)?;
    data::search(&app.ch, &s, app.cfg.max_rows)
        .await
        .map(Json)
        .map_err(json)
}

/// The language of an enterprise's content.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Language {
    /// `zh` (the default) or `en`.
    pub lang: Option<String>,
}

impl Language {
    pub(super) fn lang(&self) -> Result<Lang, WebError> {
        match self.lang.as_deref() {
            None | Some("zh") => Ok(Lang::Zh),
            Some("en") => Ok(Lang::En),
            Some(_) => Err(WebError::BadParameter("lang", "zh or en".into())),
        }
    }
}

/// The content of an enterprise's credit report over its whole history, issued now.
pub(super) async fn report_of(app: &Shared, raw: &str, lang: Lang) -> Result<Value, WebError> {
    let uscc = data::uscc(raw)?;
    let src = report::fetch(&app.ch, &uscc).await.map_err(|e| match e {
        report::ReportError::ClickHouse(e) => WebError::Unavailable(e),
        other => WebError::Report(other),
    })?;
    if src.state.is_none() && src.records.is_empty() {
        return Err(WebError::NotFound(format!("nothing is known of {uscc}")));
    }
    report::report(
        &uscc,
        Period::default(),
        &src,
        engine::ingest::now(),
        &app.cat,
        lang,
    )
    .map_err(WebError::Report)
}

/// An enterprise's whole record: its current assessment with the explanation, its colour
/// history, its records with their statuses, its commitments (supervisors only). The
/// content of its credit report, issued now, with the digest.
#[utoipa::path(
    get,
    path = "/api/v1/enterprises/{uscc}",
    params(("uscc" = String, Path, description = "Unified social credit code"), Language),
    responses(
        (status = 200, description = "The credit report's content (see `steward report --format json`)", body = Object),
        (status = 400, description = "Not a valid USCC", body = ApiError),
        (status = 401, description = "No or wrong credentials", body = ApiError),
        (status = 403, description = "The role `analyst` may not read records", body = ApiError),
        (status = 404, description = "Nothing is known of it", body = ApiError),
    ),
    security(("basic" = [])),
    tag = "supervision"
)]
async fn enterprise(
    State(app): State<Shared>,
    viewer: Viewer,
    Path(raw): Path<String>,
    q: Result<Query<Language>, QueryRejection>,
) -> Result<Json<Value>, Failure> {
    viewer.needs(WebRole::Supervisor)?;
    let lang = params(q, Form::Json)?.lang().map_err(json)?;
    report_of(&app, &raw, lang).await.map(Json).map_err(json)
}

/// The latest changes to a worse colour, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/worsened",
    params(Worsening),
    responses(
        (status = 200, description = "Changes to a worse colour", body = Page<Worsened>),
        (status = 400, description = "A parameter is not allowed", body = ApiError),
        (status = 401, description = "No or wrong credentials", body = ApiError),
    ),
    security(("basic" = [])),
    tag = "supervision"
)]
async fn worsened(
    State(app): State<Shared>,
    viewer: Viewer,
    q: Result<Query<Worsening>, QueryRejection>,
) -> Result<Json<Page<Worsened>>, Failure> {
    viewer.needs(WebRole::Analyst)?;
    let w = params(q, Form::Json)?;
    data::worsened(&app.ch, &w, app.cfg.max_rows)
        .await
        .map(Json)
        .map_err(json)
}

/// The current inspection campaign: the one with the latest snapshot.
#[utoipa::path(
    get,
    path = "/api/v1/campaign",
    responses(
        (status = 200, description = "The campaign", body = Campaign),
        (status = 401, description = "No or wrong credentials", body = ApiError),
        (status = 404, description = "No campaign was planned", body = ApiError),
    ),
    security(("basic" = [])),
    tag = "supervision"
)]
async fn campaign(State(app): State<Shared>, viewer: Viewer) -> Result<Json<Campaign>, Failure> {
    viewer.needs(WebRole::Analyst)?;
    data::campaign(&app.ch, app.cfg.max_rows)
        .await
        .and_then(|c| c.ok_or_else(|| WebError::NotFound("no campaign was planned".into())))
        .map(Json)
        .map_err(json)
}

/// HTTP Basic authentication, as the supervisor view asks for it.
struct BasicAuth;

impl Modify for BasicAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    }
}

/// The OpenAPI document of the API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Credit Steward web API",
        description = "Colour codes, current states, colour changes, inspection campaigns and credit reports, read from ClickHouse. `/api/v1/public/*` is open to anyone; the rest needs a user of the supervisor view (HTTP Basic)."
    ),
    paths(public, search, enterprise, worsened, campaign),
    components(schemas(ApiError)),
    modifiers(&BasicAuth)
)]
#[derive(Debug)]
pub struct ApiDoc;
