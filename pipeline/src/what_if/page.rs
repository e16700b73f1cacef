//! `what-if.html`: one self-contained page (no script, no external file) with the catalogue
//! changes, the colour migration matrix, the events under each version, the colour
//! distribution over time under both (an inline SVG chart), the largest differences and
//! the breakdowns by region and industry.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use plotters::prelude::*;
use rules::score::Colour;

use super::{Breakdown, WhatIf};

/// How many differences, and rows of each breakdown, the page lists (the JSON has all).
const LISTED: usize = 50;

/// A chart that could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing the colour distribution: {0}")]
pub struct ChartError(String);

fn rgb(c: Colour) -> RGBColor {
    match c {
        Colour::Blue => RGBColor(31, 95, 191),
        Colour::Green => RGBColor(46, 139, 87),
        Colour::Yellow => RGBColor(218, 165, 32),
        Colour::Red => RGBColor(200, 30, 30),
        Colour::None => RGBColor(128, 128, 128),
    }
}

/// The colour distribution over time as inline SVG: one line per colour, solid for the
/// current rules and dashed for the candidate.
pub fn chart(w: &WhatIf) -> Result<String, ChartError> {
    let e = |x: String| ChartError(x);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let days = w.distribution.len().max(2) - 1;
        let top = w
            .distribution
            .iter()
            .flat_map(|d| d.current.iter().chain(&d.candidate))
            .copied()
            .max()
            .unwrap_or(1)
            .max(1);
        let mut c = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d(0..days, 0..top + top / 10 + 1)
            .map_err(|x| e(x.to_string()))?;
        let date = |i: &usize| {
            w.distribution
                .get(*i)
                .map_or_else(String::new, |d| d.date.clone())
        };
        c.configure_mesh()
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&date)
            .x_desc("date (Asia/Shanghai)")
            .y_desc("enterprises")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|x| e(x.to_string()))?;
        for (k, colour) in Colour::ALL.iter().enumerate() {
            let style = rgb(*colour).stroke_width(2);
            let current = w
                .distribution
                .iter()
                .enumerate()
                .map(|(i, d)| (i, d.current[k]));
            let candidate = w
                .distribution
                .iter()
                .enumerate()
                .map(|(i, d)| (i, d.candidate[k]));
            c.draw_series(LineSeries::new(current, style))
                .map_err(|x| e(x.to_string()))?
                .label(format!("{} (current)", colour.as_str()));
            c.draw_series(DashedLineSeries::new(candidate, 6, 4, style))
                .map_err(|x| e(x.to_string()))?
                .label(format!("{} (candidate)", colour.as_str()));
        }
        root.present().map_err(|x| e(x.to_string()))?;
    }
    Ok(svg)
}

const STYLE: &str = "body{font-family:'Noto Sans CJK SC',sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%;vertical-align:top}\
th{background:#f3f3f3;text-align:left}td.n{text-align:right}td.same{background:#f3f3f3}td.moved{font-weight:bold}\
.blue{color:#1f5fbf}.green{color:#2e8b57}.yellow{color:#b8860b}.red{color:#c81e1e}.none{color:#808080}";

fn colour(c: Colour) -> Markup {
    html! { span class=(c.as_str()) { (c.as_str()) } }
}

fn score(s: Option<f64>) -> String {
    s.map_or_else(|| "stopped".to_owned(), |s| format!("{s:.1}"))
}

fn breakdown(title: &str, id: &str, rows: &[Breakdown]) -> Markup {
    let mut rows: Vec<&Breakdown> = rows.iter().filter(|b| b.colour_differs > 0).collect();
    rows.sort_by(|a, b| {
        b.colour_differs
            .cmp(&a.colour_differs)
            .then(a.code.cmp(&b.code))
    });
    html! {
        h2 { (title) }
        @if rows.is_empty() {
            p { "No difference." }
        } @else {
            table id=(id) {
                tr { th { "code" } th { "enterprises" } th { "colour differs" } th { "worse" } th { "better" } }
                @for b in rows.iter().take(LISTED) {
                    tr {
                        td { @if b.code.is_empty() { "(unknown)" } @else { (b.code) } }
                        td.n { (b.enterprises) } td.n { (b.colour_differs) }
                        td.n { (b.worse) } td.n { (b.better) }
                    }
                }
            }
        }
    }
}

/// The page.
pub fn html(w: &WhatIf) -> Result<String, ChartError> {
    let svg = chart(w)?;
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "What-if: " (w.candidate.rules_version) " against " (w.current.rules_version) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "What-if: " (w.candidate.rules_version) " against " (w.current.rules_version) }
                p {
                    "Colours at " span id="at" { (w.at) } "; events from " (w.from) " to " (w.at) ". "
                    (w.enterprises) " enterprises, of which " strong id="differs" { (w.colour_differs) }
                    " change colour and " (w.score_differs) " change score."
                }
                h2 { "What the candidate changes" }
                @if w.catalogue_changes.is_empty() {
                    p id="catalogue-changes" { "The catalogues are the same." }
                } @else {
                    table id="catalogue-changes" {
                        tr { th { "field" } th { "current" } th { "candidate" } }
                        @for c in &w.catalogue_changes {
                            tr {
                                td { code { (c.path) } }
                                td { @if let Some(v) = &c.current { code { (v) } } @else { "(absent)" } }
                                td { @if let Some(v) = &c.candidate { code { (v) } } @else { "(absent)" } }
                            }
                        }
                    }
                }
                p {
                    "Models: " (w.current.model_version.as_deref().unwrap_or("none")) " now, "
                    (w.candidate.model_version.as_deref().unwrap_or("none")) " under the candidate."
                }
                h2 { "Colour migration at " (w.at) }
                table id="matrix" {
                    tr { th { "now ↓ / candidate →" } @for c in Colour::ALL { th { (colour(c)) } } }
                    @for (i, row) in w.matrix.iter().enumerate() {
                        tr {
                            th { (colour(Colour::ALL[i])) }
                            @for (j, n) in row.iter().enumerate() {
                                @let class = if i == j { "n same" } else if *n > 0 { "n moved" } else { "n" };
                                td class=(class) { (n) }
                            }
                        }
                    }
                }
                h2 { "Events from " (w.from) " to " (w.at) }
                table id="events" {
                    tr { th {} th { "colour changes" } th { "alerts raised" } }
                    tr { th { "current" } td.n { (w.events.current.colour_changes) } td.n { (w.events.current.alerts) } }
                    tr { th { "candidate" } td.n { (w.events.candidate.colour_changes) } td.n { (w.events.candidate.alerts) } }
                }
                h2 { "Colour distribution over time" }
                p { "Solid: current rules; dashed: candidate." }
                figure { (PreEscaped(svg)) }
                h2 { "Largest differences" }
                @if w.differences.is_empty() {
                    p id="differences" { "No enterprise changes colour." }
                } @else {
                    @if w.differences.len() > LISTED {
                        p { "The first " (LISTED) " of " (w.differences.len()) "; what-if.json lists all." }
                    }
                    table id="differences" {
                        tr {
                            th { "enterprise" } th { "region" } th { "industry" }
                            th { "now" } th { "candidate" } th { "rows that differ most (contribution to R: now → candidate)" }
                        }
                        @for d in w.differences.iter().take(LISTED) {
                            tr {
                                td { code { (d.uscc) } }
                                td { (d.region.as_deref().unwrap_or("")) }
                                td { (d.industry.as_deref().unwrap_or("")) }
                                td { (colour(d.current.colour)) " " (score(d.current.score)) }
                                td { (colour(d.candidate.colour)) " " (score(d.candidate.score)) }
                                td {
                                    @for r in &d.rows {
                                        (r.row) " " (r.name_zh) ": " (format!("{:.4} → {:.4}", r.current, r.candidate)) br;
                                    }
                                    @if d.current.triggers != d.candidate.triggers {
                                        "triggers: " (d.current.triggers.join(" ")) " → " (d.candidate.triggers.join(" ")) br;
                                    }
                                    @if d.rows.is_empty() {
                                        @if d.current.score == d.candidate.score {
                                            "The same score: the colour bands, their hysteresis or a trigger's cap place it differently."
                                        } @else {
                                            "The rows contribute the same: the score's other parts (P, the model's Q, the score weights) differ."
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                (breakdown("By region", "by-region", &w.by_region))
                (breakdown("By industry", "by-industry", &w.by_industry))
            }
        }
    };
    Ok(page.into_string())
}
