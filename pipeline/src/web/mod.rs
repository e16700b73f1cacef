//! `steward web` (D83): the colour code and the credit report as people meet them, read from
//! ClickHouse.
//!
//! - Public (anyone who scans an enterprise's code): `/c/{uscc}`, the colour, the date it
//!   holds from, region, industry and the rules version, nothing else; its QR code as PNG
//!   and SVG; `/api/v1/public/{uscc}`.
//! - Supervisor view (HTTP Basic authentication, `auth`): search, the enterprises that
//!   worsened and the current inspection campaign for the roles `analyst` and `supervisor`;
//!   an enterprise's page (explanation, chart, records with their statuses, commitments,
//!   repair flags) and its credit report for `supervisor` only.
//! - The JSON API of the same data, described by `/api/openapi.json` (`api`); the pages are
//!   rendered on the server from the same functions and types (`data`).
//! - `/livez`, `/readyz` (ClickHouse answers) and `/metrics` (`WebMetrics`).
//!
//! Every query binds its values (`data`), is bounded by `web.query_timeout_secs` on the
//! client and on the server, and returns at most `web.max_rows` rows; every request is
//! bounded in size (`web.max_request_bytes`) and time (`web.request_timeout_secs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use connectors::clickhouse::{ClickHouse, ClickHouseError};
use connectors::config::{WebConfig, WebRole};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use rules::catalogue::Catalogue;
use strum::IntoEnumIterator;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub mod api;
pub mod auth;
pub mod data;
mod pages;
mod qr;

/// Why a request failed; each kind has its status and says what to do in words, and its
/// bounded code ([`Code`]: the JSON answer's `error` and the failures metric's label).
#[derive(Debug, thiserror::Error, strum::EnumDiscriminants)]
#[strum_discriminants(
    name(Code),
    derive(strum::EnumIter, strum::IntoStaticStr),
    strum(serialize_all = "snake_case")
)]
pub enum WebError {
    /// The USCC in the address is not a valid code.
    #[error("{0:?} is not a valid unified social credit code: {1}")]
    BadUscc(String, String),
    /// A search or list parameter is not allowed.
    #[error("parameter {0}: {1}")]
    BadParameter(&'static str, String),
    /// Nothing is known of the enterprise (or the page does not exist).
    #[error("{0}")]
    NotFound(String),
    /// No or wrong credentials.
    #[error("sign in with a user of the supervisor view")]
    Unauthorized,
    /// Too many failed sign-ins under this name: refused for this many more seconds.
    #[error("too many failed sign-ins; try again in {0} s")]
    Throttled(u64),
    /// The user's role may not open this.
    #[error("the role {0} may not open this page")]
    Forbidden(&'static str),
    /// The request is larger than `web.max_request_bytes`.
    #[error("the request is larger than {0} bytes")]
    TooLarge(usize),
    /// ClickHouse did not answer (in time); nothing about the data is said.
    #[error("the data is unavailable for a moment; try again")]
    Unavailable(#[source] ClickHouseError),
    /// A report could not be made (its PDF, for example).
    #[error("the report could not be made: {0}")]
    #[strum_discriminants(strum(serialize = "report_failed"))]
    Report(#[source] crate::report::ReportError),
    /// A QR code could not be drawn.
    #[error("the QR code could not be made: {0}")]
    #[strum_discriminants(strum(serialize = "qr_failed"))]
    Qr(String),
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            WebError::BadUscc(..) | WebError::BadParameter(..) => StatusCode::BAD_REQUEST,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Report(_) | WebError::Qr(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A bounded code for the metrics and the JSON answer.
    fn code(&self) -> &'static str {
        Code::from(self).into()
    }
}

impl From<ClickHouseError> for WebError {
    fn from(e: ClickHouseError) -> Self {
        WebError::Unavailable(e)
    }
}

/// How a failure is answered: an HTML page, or JSON for the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// A page a person reads.
    Html,
    /// `{"error": code, "message": text}`.
    Json,
}

impl Form {
    /// The form of the answers under `path`.
    fn of(path: &str) -> Self {
        if path.starts_with("/api/") {
            Form::Json
        } else {
            Form::Html
        }
    }
}

/// A failed request, answered in its form.
#[derive(Debug)]
pub struct Failure(pub WebError, pub Form);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let Failure(err, form) = self;
        let status = err.status();
        if status.is_server_error() {
            tracing::warn!(error_code = err.code(), error = %err, cause = ?std::error::Error::source(&err).map(ToString::to_string), "web request failed");
        }
        let mut resp = match form {
            Form::Json => (
                status,
                axum::Json(serde_json::json!({"error": err.code(), "message": err.to_string()})),
            )
                .into_response(),
            Form::Html => (status, Html(pages::failure(status, &err))).into_response(),
        };
        resp.headers_mut()
            .insert(ERROR_CODE, HeaderValue::from_static(err.code()));
        if let WebError::Throttled(secs) = err {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if matches!(err, WebError::Unauthorized) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "Basic realm=\"Credit Steward supervisor view\", charset=\"UTF-8\"",
                ),
            );
        }
        resp
    }
}

/// The service's metrics, registered on the registry passed in (no per-enterprise label:
/// routes are the route templates).
#[derive(Debug, Clone)]
pub struct WebMetrics {
    /// `steward_web_requests_total{route, status}`.
    pub requests: IntCounterVec,
    /// `steward_web_request_duration_seconds{route}`.
    pub duration: HistogramVec,
    /// `steward_web_failures_total{error_code}`.
    pub failures: IntCounterVec,
}

impl WebMetrics {
    /// Creates the metrics on `r`.
    pub fn new(r: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "steward_web_requests_total",
                "HTTP requests answered by steward web, by route template and status code.",
            ),
            &["route", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "steward_web_request_duration_seconds",
                "Time to answer an HTTP request of steward web, by route template.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["route"],
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "steward_web_failures_total",
                "Requests of steward web that failed, by error code.",
            ),
            &["error_code"],
        )?;
        r.register(Box::new(requests.clone()))?;
        r.register(Box::new(duration.clone()))?;
        r.register(Box::new(failures.clone()))?;
        for code in Code::iter() {
            failures.with_label_values(&[<&str>::from(code)]);
        }
        Ok(WebMetrics {
            requests,
            duration,
            failures,
        })
    }
}

/// What every handler reads.
#[derive(Debug)]
pub struct App {
    /// ClickHouse, each request bounded by `web.query_timeout_secs`.
    pub ch: ClickHouse,
    /// Indicator names and colour bands.
    pub cat: Arc<Catalogue>,
    /// The service's settings.
    pub cfg: WebConfig,
    users: auth::Users,
    metrics: WebMetrics,
    registry: Registry,
    /// PDFs printed at once (each runs a headless Chromium): the others wait.
    pdfs: tokio::sync::Semaphore,
}

/// How many PDFs are printed at once.
const PDFS_AT_ONCE: usize = 2;

impl App {
    /// The service on `ch` (limited here to `cfg.query_timeout_secs`), reading `cat`, with
    /// its metrics on `registry`.
    pub fn new(
        ch: ClickHouse,
        cat: Arc<Catalogue>,
        cfg: WebConfig,
        registry: Registry,
    ) -> prometheus::Result<Self> {
        let metrics = WebMetrics::new(&registry)?;
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(App {
            ch: ch.limited_to(Duration::from_secs(cfg.query_timeout_secs)),
            cat,
            users: auth::Users::new(&cfg.users),
            cfg,
            metrics,
            registry,
            pdfs: tokio::sync::Semaphore::new(PDFS_AT_ONCE),
        })
    }
}

/// The shared state of the handlers.
pub type Shared = Arc<App>;

/// Every route of the service, with its limits.
pub fn router(app: Shared) -> Router {
    let limit = app.cfg.max_request_bytes;
    let timeout = Duration::from_secs(app.cfg.request_timeout_secs);
    Router::new()
        .route("/", get(pages::index))
        .route("/c", get(pages::lookup))
        .route("/c/{uscc}", get(pages::public))
        .route("/c/{uscc}/qr.png", get(qr::png))
        .route("/c/{uscc}/qr.svg", get(qr::svg))
        .route("/s", get(pages::search))
        .route("/s/worsened", get(pages::worsened))
        .route("/s/campaign", get(pages::campaign))
        .route("/s/e/{uscc}", get(pages::enterprise))
        .route("/report/{uscc}", get(pages::report))
        .merge(api::routes())
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), observe))
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .with_state(app)
}

async fn not_found(req: Request) -> Failure {
    let path = req.uri().path();
    Failure(
        WebError::NotFound(format!("there is no page {path}")),
        Form::of(path),
    )
}

/// 200 while ClickHouse answers.
async fn readyz(State(app): State<Shared>) -> Response {
    if app.ch.ping().await {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "clickhouse is down\n").into_response()
    }
}

async fn metrics(State(app): State<Shared>) -> Response {
    let mut buf = Vec::new();
    let enc = prometheus::TextEncoder::new();
    match enc.encode(&app.registry.gather(), &mut buf) {
        Ok(()) => ([(header::CONTENT_TYPE, enc.format_type().to_owned())], buf).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Refuses a request whose address and headers are larger than `web.max_request_bytes`
/// (the body is bounded by the layers), then counts and times the answer by route template.
async fn observe(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let head: usize = req.uri().path_and_query().map_or(0, |p| p.as_str().len())
        + req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    let started = Instant::now();
    let resp = if head > app.cfg.max_request_bytes {
        let form = Form::of(req.uri().path());
        let mut r = Failure(WebError::TooLarge(app.cfg.max_request_bytes), form).into_response();
        *r.status_mut() = StatusCode::URI_TOO_LONG;
        r
    } else {
        next.run(req).await
    };
    let status = resp.status();
    app.metrics
        .requests
        .with_label_values(&[route.as_str(), status.as_str()])
        .inc();
    app.metrics
        .duration
        .with_label_values(&[route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    if let Some(code) = resp.headers().get(ERROR_CODE).and_then(|v| v.to_str().ok()) {
        app.metrics.failures.with_label_values(&[code]).inc();
    }
    resp
}

/// The response header that names a failure's code for [`observe`].
const ERROR_CODE: &str = "x-steward-error";

/// Whether `role` may open what needs `needed`.
fn allows(role: WebRole, needed: WebRole) -> bool {
    role >= needed
}

/// Runs the service on `cfg.listen` until SIGINT or SIGTERM.
pub async fn serve(app: App) -> anyhow::Result<()> {
    let addr = app.cfg.listen.clone();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| anyhow::anyhow!("web.listen {addr}: {e}"))?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, users = app.users.len(), "steward web listening");
    let app = Arc::new(app);
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("steward web stopping");
}

#[cfg(test)]
mod tests {
    use strum::IntoEnumIterator;

    use super::Code;

    #[test]
    fn every_failure_code_is_distinct_and_documented_in_the_api() {
        let codes: Vec<&str> = Code::iter().map(<&str>::from).collect();
        let mut distinct = codes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), codes.len(), "codes: {codes:?}");
        // The codes clients and dashboards match on stay as they were published.
        assert!(codes.contains(&"report_failed") && codes.contains(&"bad_uscc"));
        // `ApiError::error`'s documentation (the OpenAPI document's) names every code.
        let doc = include_str!("api.rs");
        let start = doc.find("A stable code:").expect("ApiError's error field");
        let field = &doc[start..start + doc[start..].find("pub error").expect("the field")];
        for code in codes {
            assert!(
                field.contains(&format!("`{code}`")),
                "{code} is not documented"
            );
        }
    }
}
