//! The HTML pages of `steward web` (maud), rendered on the server from the values the API
//! returns (`data`, `api`), so a page and its API answer cannot disagree. Chinese first,
//! with the English words beside them on the public page.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use connectors::config::WebRole;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use rules::time::parse_rfc3339;
use serde::Deserialize;
use serde_json::json;

use super::api::{params, public_code, report_of, Language};
use super::auth::Viewer;
use super::data::{self, Search, Worsening, COLOURS};
use super::{Failure, Form, Shared, WebError};
use crate::report::{self, colour_meaning, colour_name, css, shanghai, Lang, STYLE};

fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Credit Steward" }
                style { (PreEscaped(STYLE)) (PreEscaped(EXTRA_STYLE)) }
            }
            body { (body) }
        }
    }
    .into_string()
}

const EXTRA_STYLE: &str = ".badge{display:inline-block;color:#fff;font-size:2.2em;font-weight:bold;padding:0.4em 1em;border-radius:8px;margin:0.3em 0}\
.muted{color:#666;font-size:90%}form label{margin-right:1em}";

fn html_err(e: WebError) -> Failure {
    Failure(e, Form::Html)
}

/// The page of a failed request.
pub(super) fn failure(status: StatusCode, err: &WebError) -> String {
    let title = match status {
        StatusCode::BAD_REQUEST => "请求有误 Bad request",
        StatusCode::NOT_FOUND => "未找到 Not found",
        StatusCode::UNAUTHORIZED => "请登录 Sign in",
        StatusCode::FORBIDDEN => "无权访问 Forbidden",
        s if s.is_server_error() => "暂时无法提供 Unavailable",
        _ => "请求未完成 Not done",
    };
    page(
        title,
        html! {
            h1 { (title) }
            p id="status" { (status.as_u16()) }
            p id="message" { (err.to_string()) }
            p { a href="/" { "返回首页 Home" } }
        },
    )
}

/// `/`: look up a colour code, or go to the supervisor view.
pub async fn index() -> Html<String> {
    Html(page(
        "企业信用码 Enterprise credit codes",
        html! {
            h1 { "企业信用码查询 " span class="muted" { "Enterprise credit code" } }
            form method="get" action="/c" {
                label { "统一社会信用代码 USCC " input name="uscc" size="22" maxlength="40" required; }
                button type="submit" { "查询 Look up" }
            }
            p { a href="/s" { "监管端 Supervisor view" } }
        },
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lookup {
    uscc: String,
}

/// `/c?uscc=…` (the look-up form): to the code's page, or 400.
pub async fn lookup(q: Result<Query<Lookup>, QueryRejection>) -> Result<Redirect, Failure> {
    let l = params(q, Form::Html)?;
    let uscc = data::uscc(&l.uscc).map_err(html_err)?;
    Ok(Redirect::to(&format!("/c/{uscc}")))
}

/// The colour's words, Chinese then English.
fn both(colour: &str) -> String {
    let zh = colour_name(colour, Lang::Zh);
    let en = colour_name(colour, Lang::En);
    format!("{zh} {en}")
}

/// `/c/{uscc}`: what anyone may see, with the code to print.
pub async fn public(
    State(app): State<Shared>,
    Path(raw): Path<String>,
) -> Result<Html<String>, Failure> {
    let c = public_code(&app, &raw).await.map_err(html_err)?;
    let bands = json!({ "bands": report::bands(&app.cat) });
    let since = parse_rfc3339(&c.colour_since)
        .map(shanghai)
        .unwrap_or_default();
    let since_day = since.get(..10).unwrap_or_default().to_owned();
    Ok(Html(page(
        &format!("{} {}", c.uscc, both(&c.colour)),
        html! {
            h1 { "企业信用码 " span class="muted" { "Enterprise credit code" } }
            div class="badge" id="badge" style=(format!("background:{}", css(&c.colour))) {
                strong id="colour" { (colour_name(&c.colour, Lang::Zh)) }
                " " span { (colour_name(&c.colour, Lang::En)) }
            }
            table id="code" {
                tr { th { "统一社会信用代码 USCC" } td id="uscc" { (c.uscc) } }
                tr { th { "自 Since" } td id="since" title=(since) { (since_day) } }
                tr { th { "地区 Region" } td id="region" { (c.region) } }
                tr { th { "行业 Industry" } td id="industry" { (c.industry) } }
                tr { th { "规则版本 Rules version" } td id="rules-version" { (c.rules_version) } }
            }
            p id="meaning" { (colour_meaning(&c.colour, &bands, Lang::Zh)) br; span class="muted" { (colour_meaning(&c.colour, &bands, Lang::En)) } }
            figure {
                img id="qr" src=(format!("/c/{}/qr.svg", c.uscc)) width="240" height="240" alt=(format!("QR {}", c.page));
                figcaption {
                    "扫码查看本页 Scan for this page · "
                    a href=(format!("/c/{}/qr.png", c.uscc)) download { "PNG" } " · "
                    a href=(format!("/c/{}/qr.svg", c.uscc)) download { "SVG" }
                }
            }
            p class="muted" { "本页只显示公开的信用码信息，不含信用记录或个人信息。 This page shows the public colour code only: no records, no personal data." }
        },
    )))
}

/// The supervisor view's navigation, with the user; styled in place, so that it looks the
/// same on the report's page, which has its own style sheet.
fn nav(v: &Viewer) -> Markup {
    const LINK: &str = "margin-right:1.2em";
    html! {
        nav style="margin-bottom:1.5em;padding:0.4em 0;border-bottom:1px solid #ccc" {
            a style=(LINK) href="/s" { "查询 Search" }
            a style=(LINK) href="/s/worsened" { "颜色变差 Worsened" }
            a style=(LINK) href="/s/campaign" { "检查计划 Campaign" }
            span style="color:#666;font-size:90%" id="user" { (v.name) " (" (v.role.as_str()) ")" }
        }
    }
}

fn score(s: Option<f64>) -> String {
    s.map_or_else(|| "—".to_owned(), |s| format!("{s:.1}"))
}

fn at(t: u32) -> String {
    shanghai(rules::time::Ts::from(t))
}

/// A USCC, linked to its page for a supervisor.
fn enterprise_link(v: &Viewer, uscc: &str) -> Markup {
    html! {
        @if v.role == WebRole::Supervisor {
            a href=(format!("/s/e/{uscc}")) { (uscc) }
        } @else {
            (uscc)
        }
    }
}

fn truncated_note(truncated: bool, max: u32) -> Markup {
    html! {
        @if truncated { p class="muted" id="truncated" { "只显示前 " (max) " 条；请缩小范围。 Only the first " (max) " are shown." } }
    }
}

/// `/s`: search by USCC, region, industry and colour.
pub async fn search(
    State(app): State<Shared>,
    viewer: Viewer,
    q: Result<Query<Search>, QueryRejection>,
) -> Result<Html<String>, Failure> {
    viewer.needs(WebRole::Analyst)?;
    let s = params(q, Form::Html)?;
    let found = if s.is_empty() {
        None
    } else {
        Some(
            data::search(&app.ch, &s, app.cfg.max_rows)
                .await
                .map_err(html_err)?,
        )
    };
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    Ok(Html(page(
        "查询 Search",
        html! {
            (nav(&viewer))
            h1 { "查询企业 " span class="muted" { "Search" } }
            form method="get" action="/s" id="search" {
                label { "USCC " input name="uscc" value=(value(&s.uscc)) size="20" maxlength="18"; }
                label { "地区 Region " input name="region" value=(value(&s.region)) size="8" maxlength="32"; }
                label { "行业 Industry " input name="industry" value=(value(&s.industry)) size="8" maxlength="32"; }
                label { "颜色 Colour "
                    select name="colour" {
                        option value="" { "—" }
                        @for c in COLOURS {
                            option value=(c) selected[s.colour.as_deref() == Some(c)] { (both(c)) }
                        }
                    }
                }
                button type="submit" { "查询 Search" }
            }
            @if let Some(found) = found {
                p id="count" { (found.rows.len()) " 家企业 enterprises" }
                table id="results" {
                    tr { th { "USCC" } th { "颜色 Colour" } th { "信用分 Score" } th { "地区 Region" } th { "行业 Industry" } th { "评价时间 Assessed" } }
                    @for r in &found.rows {
                        tr class="result" {
                            td { (enterprise_link(&viewer, &r.uscc)) }
                            td class=(format!("colour-{}", r.colour)) { (both(&r.colour)) }
                            td { (score(r.s)) }
                            td { (r.region) } td { (r.industry) } td { (at(r.as_of)) }
                        }
                    }
                }
                (truncated_note(found.truncated, app.cfg.max_rows))
            }
        },
    )))
}

/// `/s/worsened`: the latest changes to a worse colour.
pub async fn worsened(
    State(app): State<Shared>,
    viewer: Viewer,
    q: Result<Query<Worsening>, QueryRejection>,
) -> Result<Html<String>, Failure> {
    viewer.needs(WebRole::Analyst)?;
    let w = params(q, Form::Html)?;
    let found = data::worsened(&app.ch, &w, app.cfg.max_rows)
        .await
        .map_err(html_err)?;
    Ok(Html(page(
        "颜色变差 Worsened",
        html! {
            (nav(&viewer))
            h1 { "颜色变差的企业 " span class="muted" { "Enterprises that worsened" } }
            table id="worsened" {
                tr { th { "时间 When" } th { "USCC" } th { "原颜色 From" } th { "新颜色 To" } th { "信用分 Score" } th { "规则触发 Triggers" } th { "地区 Region" } th { "行业 Industry" } }
                @for r in &found.rows {
                    tr class="change" {
                        td { (at(r.as_of)) }
                        td { (enterprise_link(&viewer, &r.uscc)) }
                        td { (if r.from_colour.is_empty() { "—".to_owned() } else { both(&r.from_colour) }) }
                        td class=(format!("colour-{}", r.to_colour)) { (both(&r.to_colour)) }
                        td { (score(r.score)) }
                        td { (r.triggers.join(", ")) }
                        td { (r.region) } td { (r.industry) }
                    }
                }
            }
            (truncated_note(found.truncated, app.cfg.max_rows))
        },
    )))
}

/// `/s/campaign`: the current inspection campaign.
pub async fn campaign(State(app): State<Shared>, viewer: Viewer) -> Result<Html<String>, Failure> {
    viewer.needs(WebRole::Analyst)?;
    let c = data::campaign(&app.ch, app.cfg.max_rows)
        .await
        .map_err(html_err)?;
    Ok(Html(page(
        "检查计划 Campaign",
        html! {
            (nav(&viewer))
            h1 { "当前双随机检查计划 " span class="muted" { "Current inspection campaign" } }
            @match c {
                None => p id="no-campaign" { "尚无检查计划。 No campaign was planned yet." },
                Some(c) => {
                    p { "计划 Campaign " strong id="campaign-id" { (c.campaign_id) } "，抽样种子 seed " (c.seed) "，依据 " (parse_rfc3339(&c.snapshot).map(shanghai).unwrap_or_default()) " 的颜色 colours at snapshot" }
                    table id="strata" {
                        tr { th { "颜色 Colour" } th { "企业数 Population" } th { "抽中 Selected" } }
                        @for s in &c.strata {
                            tr class="stratum" { td class=(format!("colour-{}", s.colour)) { (both(&s.colour)) } td { (s.population) } td { (s.selected) } }
                        }
                    }
                    h2 { "抽中的企业 Selected enterprises" }
                    table id="selected" {
                        tr { th { "USCC" } th { "颜色 Colour" } th { "信用分 Score" } th { "原因 Reason" } th { "地区 Region" } th { "行业 Industry" } }
                        @for p in &c.selected.rows {
                            tr class="planned" { td { (enterprise_link(&viewer, &p.uscc)) } td { (both(&p.colour)) } td { (score(p.score)) } td { (p.reason) } td { (p.region) } td { (p.industry) } }
                        }
                    }
                    (truncated_note(c.selected.truncated, app.cfg.max_rows))
                }
            }
        },
    )))
}

/// `/s/e/{uscc}`: an enterprise's whole record (supervisors): its credit report's page,
/// issued now, under the view's navigation, with the report to download.
pub async fn enterprise(
    State(app): State<Shared>,
    viewer: Viewer,
    Path(raw): Path<String>,
    q: Result<Query<Language>, QueryRejection>,
) -> Result<Html<String>, Failure> {
    viewer.needs(WebRole::Supervisor)?;
    let lang = params(q, Form::Html)?.lang().map_err(html_err)?;
    let r = report_of(&app, &raw, lang).await.map_err(html_err)?;
    let uscc = r["uscc"].as_str().unwrap_or_default().to_owned();
    let links = html! {
        (nav(&viewer))
        p id="downloads" {
            "信用报告 Credit report: "
            a href=(format!("/report/{uscc}?format=pdf")) { "PDF" } " · "
            a href=(format!("/report/{uscc}?format=html")) { "HTML" } " · "
            a href=(format!("/report/{uscc}?format=json")) { "JSON" } " · "
            a href=(format!("/report/{uscc}?format=pdf&lang=en")) { "PDF (English)" } " · "
            a href=(format!("/c/{uscc}")) { "公开信用码 Public code" }
        }
    };
    report::html_with_nav(&r, links)
        .map(Html)
        .map_err(|e| html_err(WebError::Report(e)))
}

/// The response header of an issued report that holds its digest.
const DIGEST_HEADER: &str = "x-steward-report-digest";

/// The format and language of a report to download.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    format: Option<String>,
    lang: Option<String>,
}

/// `/report/{uscc}?format=html|pdf|json&lang=zh|en` (supervisors): the credit report,
/// issued now, shown in the browser and saved under its own file name; the HTML and JSON
/// files pass `steward report verify`.
pub async fn report(
    State(app): State<Shared>,
    viewer: Viewer,
    Path(raw): Path<String>,
    q: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, Failure> {
    viewer.needs(WebRole::Supervisor)?;
    let q = params(q, Form::Html)?;
    let lang = Language { lang: q.lang }.lang().map_err(html_err)?;
    let format = q.format.unwrap_or_else(|| "html".to_owned());
    if !["html", "pdf", "json"].contains(&format.as_str()) {
        return Err(html_err(WebError::BadParameter(
            "format",
            "html, pdf or json".into(),
        )));
    }
    let r = report_of(&app, &raw, lang).await.map_err(html_err)?;
    let uscc = r["uscc"].as_str().unwrap_or_default().to_owned();
    let digest = r["digest"].as_str().unwrap_or_default().to_owned();
    tracing::info!(user = %viewer.name, format = %format, digest = %digest, "credit report issued");
    let failed = |e| html_err(WebError::Report(e));
    let not_printed = |e: String| failed(report::ReportError::Pdf(e));
    let name = format!("credit-report-{uscc}.{format}");
    let (content_type, bytes) = match format.as_str() {
        "json" => (
            "application/json",
            report::json_text(&r).map_err(failed)?.into_bytes(),
        ),
        "html" => (
            "text/html; charset=utf-8",
            report::html(&r).map_err(failed)?.into_bytes(),
        ),
        _ => {
            let page = report::html(&r).map_err(failed)?;
            // At most `super::PDFS_AT_ONCE` Chromiums; the semaphore is never closed, and should
            // the wait fail, the report fails.
            let _turn = app
                .pdfs
                .acquire()
                .await
                .map_err(|e| not_printed(e.to_string()))?;
            let pdf = tokio::task::spawn_blocking(move || report::pdf(&page))
                .await
                .map_err(|e| not_printed(e.to_string()))?
                .map_err(failed)?;
            ("application/pdf", pdf)
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            // The digest printed on the report, for the recipient's records.
            (header::HeaderName::from_static(DIGEST_HEADER), digest),
        ],
        bytes,
    )
        .into_response())
}
