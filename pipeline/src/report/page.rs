//! The credit report as a person reads it: the HTML page (Chinese by default, or English),
//! its score chart, and the PDF that headless Chromium prints from it (D66).
//!
//! The page is a function of the report's content alone (the language, the colour bands and
//! the indicators' names are in the content), so `steward report verify` can render it
//! again and compare byte for byte.

use std::path::PathBuf;
use std::process::Command;

use chrono::{DateTime, FixedOffset};
use plotters::prelude::*;
use rules::time::{parse_rfc3339, Ts};
use serde_json::Value;

use super::{ReportError, DATA_ID};

/// The language of a report's page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Lang {
    /// Simplified Chinese (the default).
    #[default]
    Zh,
    /// English.
    En,
}

impl Lang {
    /// The code written in the content (`zh`, `en`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// The text in this language, of its Chinese and English forms.
    fn pick(self, zh: &str, en: &str) -> String {
        match self {
            Lang::Zh => zh.to_owned(),
            Lang::En => en.to_owned(),
        }
    }

    fn of(r: &Value) -> Self {
        match r["lang"].as_str() {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }
}

/// Every fixed text of the page, in one language.
struct Words {
    html_lang: &'static str,
    title: &'static str,
    uscc: &'static str,
    period: &'static str,
    whole_history: &'static str,
    current: &'static str,
    colour: &'static str,
    score: &'static str,
    as_of: &'static str,
    region: &'static str,
    industry: &'static str,
    pre_credit: &'static str,
    rules_version: &'static str,
    legend: &'static str,
    triggers: &'static str,
    no_triggers: &'static str,
    review_flags: &'static str,
    explanation: &'static str,
    indicator: &'static str,
    contribution: &'static str,
    r_value: &'static str,
    records_behind: &'static str,
    history: &'static str,
    chart_x: &'static str,
    chart_y: &'static str,
    from: &'static str,
    to: &'static str,
    records: &'static str,
    feed: &'static str,
    kind: &'static str,
    event_id: &'static str,
    event_time: &'static str,
    visible_from: &'static str,
    issuing_body: &'static str,
    status: &'static str,
    note: &'static str,
    commitments: &'static str,
    commitment: &'static str,
    commitment_type: &'static str,
    matter: &'static str,
    valid_until: &'static str,
    result: &'static str,
    checks: &'static str,
    issued: &'static str,
    digest: &'static str,
    verify: &'static str,
    time_zone: &'static str,
}

const ZH: Words = Words {
    html_lang: "zh-CN",
    title: "企业信用报告",
    uscc: "统一社会信用代码",
    period: "报告期间",
    whole_history: "全部记录",
    current: "当前信用评价",
    colour: "信用颜色",
    score: "信用分",
    as_of: "评价时间",
    region: "地区",
    industry: "行业",
    pre_credit: "预授信",
    rules_version: "规则版本",
    legend: "颜色说明",
    triggers: "规则触发",
    no_triggers: "无",
    review_flags: "待复核的信用修复",
    explanation: "影响最大的五项指标",
    indicator: "指标",
    contribution: "对风险值 R 的贡献",
    r_value: "风险值",
    records_behind: "依据记录",
    history: "颜色与信用分变化",
    chart_x: "日期（北京时间）",
    chart_y: "信用分",
    from: "原颜色",
    to: "新颜色",
    records: "信用记录",
    feed: "来源",
    kind: "类型",
    event_id: "记录编号",
    event_time: "发生时间",
    visible_from: "接收时间",
    issuing_body: "发布机关",
    status: "状态",
    note: "说明",
    commitments: "信用承诺",
    commitment: "承诺编号",
    commitment_type: "承诺类型",
    matter: "事项",
    valid_until: "有效期至",
    result: "核查结果",
    checks: "核查次数",
    issued: "签发时间",
    digest: "数字摘要（内容的 RFC 8785 规范 JSON 的 SHA-256）",
    verify: "核验方法：steward report verify 文件名（重新计算摘要并比对全文）",
    time_zone: "北京时间",
};

const EN: Words = Words {
    html_lang: "en",
    title: "Enterprise credit report",
    uscc: "Unified social credit code",
    period: "Period",
    whole_history: "whole history",
    current: "Current assessment",
    colour: "Colour",
    score: "Score",
    as_of: "Assessed at",
    region: "Region",
    industry: "Industry",
    pre_credit: "Pre-credit",
    rules_version: "Rules version",
    legend: "What the colours mean",
    triggers: "Rule triggers",
    no_triggers: "none",
    review_flags: "Repairs flagged for review",
    explanation: "The five indicators that weigh most",
    indicator: "Indicator",
    contribution: "Contribution to R",
    r_value: "Risk value",
    records_behind: "Records behind it",
    history: "Colour and score history",
    chart_x: "Date (Asia/Shanghai)",
    chart_y: "Score",
    from: "From",
    to: "To",
    records: "Records",
    feed: "Source",
    kind: "Kind",
    event_id: "Record id",
    event_time: "Event time",
    visible_from: "Received",
    issuing_body: "Issued by",
    status: "Status",
    note: "Note",
    commitments: "Commitments",
    commitment: "Commitment",
    commitment_type: "Type",
    matter: "Matter",
    valid_until: "Valid until",
    result: "Result",
    checks: "Checks",
    issued: "Issued",
    digest: "Digest (SHA-256 of the content's RFC 8785 canonical JSON)",
    verify: "Check it with: steward report verify FILE (recomputes the digest and compares the whole file)",
    time_zone: "Asia/Shanghai",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    }
}

/// A colour's name.
pub(crate) fn colour_name(c: &str, lang: Lang) -> String {
    let zh = match c {
        "blue" => "蓝码",
        "green" => "绿码",
        "yellow" => "黄码",
        "red" => "红码",
        "none" => "停止评价",
        other => return other.to_owned(),
    };
    lang.pick(zh, c)
}

/// What a colour means for the reader, with its band from the content.
pub(crate) fn colour_meaning(c: &str, r: &Value, lang: Lang) -> String {
    let band = |k: &str| r["bands"][k].as_f64().unwrap_or(f64::NAN);
    let (blue, green, yellow) = (band("blue"), band("green"), band("yellow"));
    match (c, lang) {
        ("blue", Lang::Zh) => format!("信用优良，风险低（信用分 ≥ {blue}），监管抽查最少。"),
        ("green", Lang::Zh) => {
            format!("信用良好，风险低（{green} ≤ 信用分 < {blue}），常规监管。")
        }
        ("yellow", Lang::Zh) => {
            format!("信用一般，风险中等（{yellow} ≤ 信用分 < {green}），需关注，抽查比例提高。")
        }
        ("red", Lang::Zh) => format!(
            "信用较差，风险高（信用分 < {yellow}，或有严重失信规则触发），重点监管。"
        ),
        ("blue", Lang::En) => format!(
            "Excellent credit, low risk (score ≥ {blue}): the fewest random inspections."
        ),
        ("green", Lang::En) => {
            format!("Good credit, low risk ({green} ≤ score < {blue}): routine supervision.")
        }
        ("yellow", Lang::En) => format!(
            "Fair credit, medium risk ({yellow} ≤ score < {green}): watched, inspected more often."
        ),
        ("red", Lang::En) => format!(
            "Poor credit, high risk (score < {yellow}, or a serious rule trigger): focus of supervision."
        ),
        _ => String::new(),
    }
}

/// A rule trigger explained in a sentence (`model.md`, rule triggers).
fn trigger_sentence(code: &str, lang: Lang) -> String {
    let (zh, en) = match code {
        "R1" => (
            "被法院列为失信被执行人，颜色为红码。",
            "Listed by a court as a dishonest judgment debtor: red.",
        ),
        "R2" => (
            "被列入严重违法失信名单，颜色为红码。",
            "On the list of serious illegal and dishonest acts: red.",
        ),
        "R3" => (
            "存在重大税收违法记录，颜色为红码。",
            "A major tax violation is in effect: red.",
        ),
        "R4" => (
            "存在逃废债或公安失信记录，颜色为红码。",
            "Debt evasion or a police dishonesty record is in effect: red.",
        ),
        "R5" => (
            "24 个月内两次以上违背信用承诺，颜色为红码。",
            "Two or more broken commitments in 24 months: red.",
        ),
        "R6" => (
            "处于经营异常名录、有严重行政处罚、纳税信用 D 级或为非正常户，颜色最好为黄码。",
            "Listed as abnormal, a serious penalty, tax grade D or an abnormal taxpayer: yellow at best.",
        ),
        "R7" => (
            "贷款逾期超过 90 天、法定代表人失信、涉诉被执行或违背一次信用承诺，颜色最好为黄码。",
            "A loan overdue more than 90 days, a dishonest legal representative, an enforcement case or one broken commitment: yellow at best.",
        ),
        "R8" => (
            "存在有效的负面记录、纳税信用非 A/B 级或成立未满两年，不能评为蓝码。",
            "An active negative record, a tax grade below B or a firm younger than two years: green at best.",
        ),
        "R9" => (
            "已吊销或注销，停止信用评价。",
            "Revoked or deregistered: scoring has stopped.",
        ),
        other => return other.to_owned(),
    };
    lang.pick(zh, en)
}

/// A feed's name.
fn feed_name(feed: &str, lang: Lang) -> String {
    let zh = match feed {
        "PEN" => "行政处罚",
        "LIST" => "名录",
        "INSP" => "监管检查",
        "TAX" => "税务",
        "REG" => "登记",
        "JUD" => "司法",
        "FIN" => "金融",
        "PER" => "人员",
        "PCS" => "公共信用",
        "RPR" => "信用修复",
        "CMT" => "信用承诺",
        other => other,
    };
    match lang {
        Lang::Zh => format!("{zh}（{feed}）"),
        Lang::En => feed.to_owned(),
    }
}

/// A pre-credit decision's name (D40–D42).
fn pre_credit_name(decision: &str, lang: Lang) -> String {
    let (zh, en) = match decision {
        "LINE" => ("可预授信", "line"),
        "REVIEW" => ("需人工审核", "manual review"),
        "INELIGIBLE" => ("不予预授信", "not eligible"),
        "" => ("无", "none"),
        other => (other, other),
    };
    lang.pick(zh, en)
}

/// A record status's name (D11).
fn status_name(status: &str, lang: Lang) -> String {
    let zh = match status {
        "accepted" => "已采纳",
        "active" => "有效",
        "expired" => "已到期",
        "repaired" => "已修复",
        "revoked" => "已撤销",
        "superseded" => "已被更正",
        "rejected" => "未采纳",
        other => other,
    };
    lang.pick(zh, status)
}

/// An RFC 3339 time of the content as a date and time in Asia/Shanghai.
fn local(t: &Value) -> String {
    t.as_str()
        .and_then(parse_rfc3339)
        .map(shanghai)
        .unwrap_or_default()
}

fn shanghai_at(t: Ts) -> Option<DateTime<FixedOffset>> {
    let east8 = FixedOffset::east_opt(8 * 3600)?;
    Some(DateTime::from_timestamp(t, 0)?.with_timezone(&east8))
}

pub(crate) fn shanghai(t: Ts) -> String {
    shanghai_at(t).map_or_else(String::new, |d| d.format("%Y-%m-%d %H:%M").to_string())
}

/// An amount in fen as yuan with thousands separators: `1,234,567.89`.
fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let (whole, cents) = (fen.unsigned_abs() / 100, fen.unsigned_abs() % 100);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{cents:02}")
}

/// `S` as the spec rounds it for thresholds: one decimal.
fn score(v: &Value) -> String {
    v.as_f64().map_or_else(String::new, |s| format!("{s:.1}"))
}

/// A value as text (empty for null).
fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(x) => x.clone(),
        x => x.to_string(),
    }
}

/// The score points of the chart: each colour change with a score, then the current state.
fn points(r: &Value) -> Vec<(Ts, f64, String)> {
    let mut out: Vec<(Ts, f64, String)> = Vec::new();
    let at = |v: &Value| v.as_str().and_then(parse_rfc3339);
    for h in r["history"].as_array().into_iter().flatten() {
        if let (Some(t), Some(s)) = (at(&h["as_of"]), h["score"].as_f64()) {
            out.push((t, s, h["to"].as_str().unwrap_or_default().to_owned()));
        }
    }
    let c = &r["current"];
    if let (Some(t), Some(s)) = (at(&c["as_of"]), c["s"].as_f64()) {
        out.push((t, s, c["colour"].as_str().unwrap_or_default().to_owned()));
    }
    out
}

fn colour_rgb(c: &str) -> RGBColor {
    match c {
        "blue" => RGBColor(31, 95, 191),
        "green" => RGBColor(46, 139, 87),
        "yellow" => RGBColor(218, 165, 32),
        "red" => RGBColor(200, 30, 30),
        _ => RGBColor(128, 128, 128),
    }
}

/// The score chart as inline SVG: the colour bands behind, the score over time with each
/// point in its colour, dates (Asia/Shanghai) on the x axis and the score on the y axis.
pub fn chart(r: &Value) -> Result<String, ReportError> {
    let w = words(Lang::of(r));
    let pts = points(r);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 300)).into_drawing_area();
        let e = |x: String| ReportError::Chart(x);
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let (t0, t1) = match (pts.first(), pts.last()) {
            (Some(a), Some(b)) if a.0 < b.0 => (a.0, b.0),
            (Some(a), _) => (a.0 - 86_400, a.0 + 86_400),
            _ => (0, 86_400),
        };
        let mut c = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d(t0..t1, 0f64..1000f64)
            .map_err(|x| e(x.to_string()))?;
        let band = |k: &str| r["bands"][k].as_f64();
        if let (Some(blue), Some(green), Some(yellow)) =
            (band("blue"), band("green"), band("yellow"))
        {
            let bands = [
                (blue, 1000.0, "blue"),
                (green, blue, "green"),
                (yellow, green, "yellow"),
                (0.0, yellow, "red"),
            ];
            c.draw_series(bands.iter().map(|(lo, hi, col)| {
                Rectangle::new([(t0, *lo), (t1, *hi)], colour_rgb(col).mix(0.08).filled())
            }))
            .map_err(|x| e(x.to_string()))?;
        }
        let date =
            |t: &Ts| shanghai_at(*t).map_or_else(String::new, |d| d.format("%Y-%m-%d").to_string());
        c.configure_mesh()
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&date)
            .y_label_formatter(&|s| format!("{s:.0}"))
            .x_desc(w.chart_x)
            .y_desc(w.chart_y)
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|x| e(x.to_string()))?;
        c.draw_series(LineSeries::new(
            pts.iter().map(|(t, s, _)| (*t, *s)),
            &RGBColor(90, 90, 90),
        ))
        .map_err(|x| e(x.to_string()))?;
        c.draw_series(
            pts.iter()
                .map(|(t, s, col)| Circle::new((*t, *s), 5, colour_rgb(col).filled())),
        )
        .map_err(|x| e(x.to_string()))?;
        root.present().map_err(|x| e(x.to_string()))?;
    }
    Ok(svg)
}

/// Screen and A4 print styles.
pub(crate) const STYLE: &str = "body{font-family:'WenQuanYi Micro Hei','Noto Sans CJK SC',sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%;vertical-align:top}\
th{background:#f3f3f3;text-align:left}.swatch{display:inline-block;width:0.9em;height:0.9em;border-radius:2px;margin-right:0.3em;vertical-align:middle}\
.colour-blue{color:#1f5fbf}.colour-green{color:#2e8b57}.colour-yellow{color:#b8860b}.colour-red{color:#c81e1e}\
#digest{font-size:8pt}footer{margin-top:2em;border-top:1px solid #ccc;font-size:85%}\
@page{size:A4;margin:15mm}\
@media print{body{margin:0;font-size:10pt}section{break-inside:auto}tr,figure,#legend{break-inside:avoid}h2{break-after:avoid}a{color:inherit}}";

/// The human-readable report: an HTML document in the content's language, with the chart
/// inline and the content embedded for `steward report verify`.
pub fn html(r: &Value) -> Result<String, ReportError> {
    render(r, None)
}

/// [`html`] with `nav` (the supervisor view's navigation) at the top of the page: what
/// `steward web` shows as an enterprise's page. `report verify` accepts only [`html`]'s page.
pub fn html_with_nav(r: &Value, nav: maud::Markup) -> Result<String, ReportError> {
    render(r, Some(nav))
}

fn render(r: &Value, nav: Option<maud::Markup>) -> Result<String, ReportError> {
    use maud::{html, PreEscaped, DOCTYPE};
    let lang = Lang::of(r);
    let w = words(lang);
    let svg = chart(r)?;
    // The content, for `steward report verify`; `</` escaped so that no string ends the
    // script element.
    let data = serde_json::to_string(r)?.replace("</", "<\\/");
    let empty = Vec::new();
    let list = |k: &str| r[k].as_array().unwrap_or(&empty).clone();
    let cur = &r["current"];
    let colour = cur["colour"].as_str().unwrap_or_default();
    let period = match (r["period"]["from"].as_str(), r["period"]["to"].as_str()) {
        (None, None) => w.whole_history.to_owned(),
        _ => format!(
            "{} – {}",
            local(&r["period"]["from"]),
            local(&r["period"]["to"])
        ),
    };
    let triggers: Vec<String> = cur["triggers"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let decision = pre_credit_name(cur["pre_credit"].as_str().unwrap_or_default(), lang);
    let pre_credit = match cur["pre_credit_line_fen"].as_i64() {
        Some(fen) => match lang {
            Lang::Zh => format!("{decision}：{} 元", yuan(fen)),
            Lang::En => format!("{decision}: CNY {}", yuan(fen)),
        },
        None => decision,
    };
    let indicator = |x: &Value| match (lang, x["name_zh"].as_str()) {
        (Lang::Zh, Some(n)) => format!("{n}（{}）", text(&x["indicator"])),
        _ => text(&x["indicator"]).replace('_', " "),
    };
    let sources = |x: &Value| {
        x["records"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .map(|s| match s.as_array().map(Vec::as_slice) {
                Some([f, id]) => format!("{}.{}", text(f), text(id)),
                _ => text(s),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let record_note = |x: &Value| {
        let mut notes = Vec::new();
        if !x["repaired"].is_null() {
            notes.push(match lang {
                Lang::Zh => format!(
                    "已于 {} 完成信用修复，不再计入失信。",
                    local(&x["repaired"])
                ),
                Lang::En => format!(
                    "Repaired on {}: it no longer counts against the enterprise.",
                    local(&x["repaired"])
                ),
            });
        }
        if !x["revoked"].is_null() {
            notes.push(match lang {
                Lang::Zh => format!("已于 {} 被撤销或更正。", local(&x["revoked"])),
                Lang::En => format!("Revoked or corrected on {}.", local(&x["revoked"])),
            });
        }
        notes.join(" ")
    };
    let doc = html! {
        (DOCTYPE)
        html lang=(w.html_lang) {
            head {
                meta charset="utf-8";
                title { (w.title) " " (text(&r["uscc"])) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                @if let Some(nav) = nav { (nav) }
                h1 { (w.title) }
                p { (w.uscc) "：" span id="uscc" { (text(&r["uscc"])) } }
                p id="period" { (w.period) "：" (period) }
                section id="current" {
                    h2 { (w.current) }
                    table {
                        tr { th { (w.colour) } td class=(format!("colour-{colour}")) { span class="swatch" style=(format!("background:{}", css(colour))) {} strong id="colour" { (colour_name(colour, lang)) } } }
                        tr { th { (w.score) } td id="score" { (score(&cur["s"])) } }
                        tr { th { (w.as_of) } td { (local(&cur["as_of"])) " (" (w.time_zone) ")" } }
                        tr { th { (w.region) } td id="region" { (text(&cur["region"])) } }
                        tr { th { (w.industry) } td id="industry" { (text(&cur["industry"])) } }
                        tr { th { (w.pre_credit) } td id="pre-credit" { (pre_credit) } }
                        tr { th { (w.rules_version) } td { (text(&cur["rules_version"])) } }
                    }
                    h3 { (w.triggers) }
                    @if triggers.is_empty() {
                        p id="triggers" { (w.no_triggers) }
                    } @else {
                        ul id="triggers" {
                            @for t in &triggers { li { strong { (t) } " " (trigger_sentence(t, lang)) } }
                        }
                    }
                    @if cur["review_flags"].as_array().is_some_and(|f| !f.is_empty()) {
                        p id="review-flags" { (w.review_flags) "：" (text(&cur["review_flags"])) }
                    }
                    h3 { (w.explanation) }
                    table id="explanation" {
                        tr { th { (w.indicator) } th { (w.r_value) } th { (w.contribution) } th { (w.records_behind) } }
                        @for x in cur["explanation"].as_array().unwrap_or(&empty) {
                            tr {
                                td class="indicator" { (indicator(x)) }
                                td { (x["r"].as_f64().map_or_else(String::new, |v| format!("{v:.2}"))) }
                                td { (x["contribution"].as_f64().map_or_else(String::new, |v| format!("{v:.2}"))) }
                                td { (sources(x)) }
                            }
                        }
                    }
                    h3 { (w.legend) }
                    table id="legend" {
                        @for c in ["blue", "green", "yellow", "red"] {
                            tr { th class=(format!("colour-{c}")) { span class="swatch" style=(format!("background:{}", css(c))) {} (colour_name(c, lang)) } td { (colour_meaning(c, r, lang)) } }
                        }
                    }
                }
                section id="history" {
                    h2 { (w.history) }
                    figure id="chart" { (PreEscaped(svg)) }
                    table {
                        tr { th { (w.as_of) } th { (w.from) } th { (w.to) } th { (w.score) } th { (w.triggers) } }
                        @for h in list("history") {
                            tr class="change" {
                                td { (local(&h["as_of"])) }
                                td { (colour_name(h["from"].as_str().unwrap_or_default(), lang)) }
                                td { (colour_name(h["to"].as_str().unwrap_or_default(), lang)) }
                                td { (score(&h["score"])) }
                                td { (h["triggers"].as_array().map(|t| t.iter().map(text).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                            }
                        }
                    }
                }
                section id="records" {
                    h2 { (w.records) }
                    table {
                        tr { th { (w.feed) } th { (w.kind) } th { (w.event_id) } th { (w.event_time) } th { (w.visible_from) } th { (w.issuing_body) } th { (w.status) } th { (w.note) } }
                        @for x in list("records") {
                            tr class="record" {
                                td { (feed_name(x["feed"].as_str().unwrap_or_default(), lang)) }
                                td { (text(&x["kind"])) }
                                td { (text(&x["event_id"])) }
                                td { (local(&x["event_time"])) }
                                td { (local(&x["visible_from"])) }
                                td { (text(&x["issuing_body"])) }
                                td { (status_name(x["status"].as_str().unwrap_or_default(), lang)) }
                                td { (record_note(&x)) }
                            }
                        }
                    }
                }
                section id="commitments" {
                    h2 { (w.commitments) }
                    table {
                        tr { th { (w.commitment) } th { (w.commitment_type) } th { (w.matter) } th { (w.valid_until) } th { (w.result) } th { (w.checks) } }
                        @for c in list("commitments") {
                            tr class="commitment" { td { (text(&c["commitment_id"])) } td { (text(&c["type"])) } td { (text(&c["matter"])) } td { (text(&c["valid_until"])) } td { (text(&c["result"])) } td { (c["checks"].as_array().map_or(0, Vec::len)) } }
                        }
                    }
                }
                footer {
                    p { (w.issued) "：" span id="issued-at" { (text(&r["issued_at"])) } " (UTC; " (local(&r["issued_at"])) " " (w.time_zone) ")" }
                    p { (w.digest) "：" br; code id="digest" { (text(&r["digest"])) } }
                    p { (w.verify) }
                    script type="application/json" id=(DATA_ID) { (PreEscaped(data)) }
                }
            }
        }
    };
    Ok(doc.into_string())
}

/// A colour as CSS.
pub(crate) fn css(c: &str) -> String {
    let RGBColor(r, g, b) = colour_rgb(c);
    format!("rgb({r},{g},{b})")
}

/// Headless Chromium with no sandbox (it runs as the user who asked), a fresh profile given
/// by the caller, and no background connections (the machines have no network).
pub const CHROMIUM_FLAGS: [&str; 7] = [
    "--headless",
    "--disable-gpu",
    "--no-sandbox",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// The Chromium that prints PDFs: `STEWARD_CHROMIUM`, else `chromium` on the path.
fn chromium() -> PathBuf {
    std::env::var_os("STEWARD_CHROMIUM").map_or_else(|| PathBuf::from("chromium"), PathBuf::from)
}

/// The page printed to an A4 PDF by headless Chromium (installed by
/// `scripts/services.sh install`, or any Chromium named by `STEWARD_CHROMIUM`).
pub fn pdf(page: &str) -> Result<Vec<u8>, ReportError> {
    let dir = tempfile::tempdir().map_err(|e| ReportError::Pdf(e.to_string()))?;
    let input = dir.path().join("report.html");
    let output = dir.path().join("report.pdf");
    std::fs::write(&input, page).map_err(|e| ReportError::Pdf(e.to_string()))?;
    let bin = chromium();
    let run = Command::new(&bin)
        .args(CHROMIUM_FLAGS)
        .arg("--no-pdf-header-footer")
        .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
        .arg(format!("--print-to-pdf={}", output.display()))
        .arg(format!("file://{}", input.display()))
        .output()
        .map_err(|e| {
            ReportError::Pdf(format!(
                "cannot run {} ({e}): install Chromium (scripts/services.sh install) or set STEWARD_CHROMIUM",
                bin.display()
            ))
        })?;
    if !run.status.success() {
        return Err(ReportError::Pdf(format!(
            "{} failed: {}",
            bin.display(),
            String::from_utf8_lossy(&run.stderr).trim()
        )));
    }
    std::fs::read(&output).map_err(|e| ReportError::Pdf(format!("no PDF written: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_groups_thousands_and_keeps_fen() {
        assert_eq!(yuan(0), "0.00");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(yuan(123_456_789), "1,234,567.89");
        assert_eq!(yuan(-100_000), "-1,000.00");
    }

    #[test]
    fn times_are_shown_in_shanghai() {
        assert_eq!(
            local(&Value::from("2024-03-05T16:30:00Z")),
            "2024-03-06 00:30"
        );
    }
}
