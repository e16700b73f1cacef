//! `steward report` against real ClickHouse: the JSON report of a generated enterprise holds
//! its whole colour history, every record and a digest that verifies; a period narrows it;
//! the HTML report, rendered by headless Chromium, shows the enterprise, the chart with its
//! axes and dates, one row per colour change and per record, the explanation with the
//! indicators' Chinese names, the colour legend and its digest, in Chinese by default and in
//! English on request; the PDF renders (`pdftoppm`) and its text holds the colour and the
//! digest; `steward report verify` accepts the files as written and rejects each with one
//! character changed.

use std::collections::BTreeSet;
use std::process::Command;

use clickhouse::Row;
use connectors::clickhouse::ClickHouse;
use e2e::{chinese, load_generated, steward_bin, Namespace, TempDir};
use generator::GenConfig;
use pipeline::report::CHROMIUM_FLAGS;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Row, Deserialize)]
struct Most {
    uscc: String,
    n: u64,
}

#[derive(Debug, Row, Deserialize)]
struct Key {
    feed: String,
    event_id: String,
}

fn report(ns: &Namespace, args: &[&str]) -> Vec<u8> {
    report_with_digest(ns, args).0
}

/// Runs `cmd` (`what` names it if it cannot start) and checks that it succeeded.
fn succeeded(cmd: &mut Command, what: &str) -> std::process::Output {
    let out = cmd.output().expect(what);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `steward report`'s output and the digest it says it issued.
fn report_with_digest(ns: &Namespace, args: &[&str]) -> (Vec<u8>, String) {
    let out = succeeded(
        Command::new(steward_bin().expect("steward binary"))
            .args(["report", "--config"])
            .arg(&ns.config)
            .args(args),
        "run steward report",
    );
    let said = String::from_utf8_lossy(&out.stderr);
    let digest = said
        .rsplit("digest ")
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    (out.stdout, digest)
}

/// `steward report verify FILE`: whether it exits 0, and what it printed.
fn verify(file: &std::path::Path) -> (bool, String) {
    let out = Command::new(steward_bin().expect("steward binary"))
        .args(["report", "verify"])
        .arg(file)
        .output()
        .expect("run steward report verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Writes `text` with its first `from` changed to `to` next to `file`, and verifies it.
fn verify_changed(file: &std::path::Path, from: &str, to: &str) -> (bool, String) {
    let text = std::fs::read_to_string(file).expect("report file");
    assert!(text.contains(from), "{from} not in {}", file.display());
    let changed = file.with_extension("changed");
    std::fs::write(&changed, text.replacen(from, to, 1)).expect("write changed report");
    verify(&changed)
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[test]
fn report_json_and_html() {
    let ns = Namespace::new("report");
    let gen = GenConfig {
        enterprises: 150,
        seed: 5,
        ..GenConfig::default()
    };
    load_generated(&ns, &gen).expect("load generated data");
    let ch = ClickHouse::new(&ns.cfg.clickhouse).expect("client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let db = ch.database().to_owned();
    let most: Most = rt
        .block_on(ch.fetch::<Most>(&format!(
            "SELECT uscc, count() AS n FROM {db}.colour_history GROUP BY uscc \
             ORDER BY n DESC, uscc LIMIT 1"
        )))
        .expect("colour history")
        .remove(0);
    assert!(most.n >= 2, "{most:?}");
    let uscc = most.uscc.as_str();
    let keys: BTreeSet<(String, String)> = rt
        .block_on(ch.fetch::<Key>(&format!(
            "SELECT feed, event_id FROM {db}.records FINAL WHERE uscc = '{uscc}'"
        )))
        .expect("records")
        .into_iter()
        .map(|k| (k.feed, k.event_id))
        .collect();

    // JSON: everything, an issue time, and a digest over the canonical content.
    let dir = TempDir::new("report_files").expect("temp dir");
    let json = report(&ns, &["--uscc", uscc, "--format", "json"]);
    let r: Value = serde_json::from_slice(&json).expect("json report");
    assert_eq!(r["uscc"], uscc);
    assert_eq!(
        r["history"].as_array().expect("history").len() as u64,
        most.n
    );
    let recs = r["records"].as_array().expect("records");
    let got: BTreeSet<(String, String)> = recs
        .iter()
        .map(|x| {
            (
                x["feed"].as_str().unwrap().to_owned(),
                x["event_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(got, keys);
    assert!(recs.iter().all(|x| x["issuing_body"].is_string()));
    // Each record with its status (D11) from `record_status`.
    let active = recs.iter().filter(|x| x["status"] == "active").count();
    assert!(active > 0, "no record with status active");
    assert!(r["current"]["colour"].is_string());
    assert!(r["current"]["explanation"].is_array());
    assert!(r["issued_at"].is_string());
    // `report verify` accepts the file as written and finds one changed character.
    let json_file = dir.0.join("report.json");
    std::fs::write(&json_file, &json).expect("write report");
    let (ok, said) = verify(&json_file);
    assert!(ok && said.contains(r["digest"].as_str().unwrap()), "{said}");
    let mut other = uscc.to_owned();
    other.replace_range(17.., if uscc.ends_with('0') { "1" } else { "0" });
    let (ok, said) = verify_changed(&json_file, uscc, &other);
    assert!(!ok && said.contains("altered"), "{said}");
    // The same report again has the same content (only its issue time and digest differ).
    let again: Value = serde_json::from_slice(&report(&ns, &["--uscc", uscc, "--format", "json"]))
        .expect("json report");
    let content = |mut v: Value| {
        let o = v.as_object_mut().expect("object");
        o.remove("issued_at");
        o.remove("digest");
        v
    };
    assert_eq!(content(again), content(r.clone()));

    // A period: only the changes and records in it.
    let first = r["history"][0]["as_of"].as_str().unwrap()[..10].to_owned();
    let narrow: Value = serde_json::from_slice(&report(
        &ns,
        &[
            "--uscc", uscc, "--format", "json", "--from", &first, "--to", &first,
        ],
    ))
    .expect("json report");
    let n = narrow["history"].as_array().unwrap().len();
    assert!(n >= 1 && (n as u64) < most.n, "{n} of {}", most.n);
    assert!(narrow["records"].as_array().unwrap().len() < recs.len());
    assert_ne!(narrow["digest"], r["digest"]);

    // HTML, rendered by headless Chromium.
    let page = dir.0.join("report.html");
    let out = page.to_str().unwrap();
    report(&ns, &["--uscc", uscc, "--format", "html", "--out", out]);
    let (ok, said) = verify(&page);
    assert!(ok, "{said}");
    let digest = said
        .rsplit("digest ")
        .next()
        .expect("digest")
        .trim()
        .to_owned();
    let (ok, said) = verify_changed(&page, "<h2>信用记录</h2>", "<h2>信用纪录</h2>");
    assert!(!ok && said.contains("altered"), "{said}");
    let dom = dump_dom(&dir, out);
    assert!(
        dom.contains(&format!("<span id=\"uscc\">{uscc}</span>")),
        "{dom}"
    );
    assert!(dom.contains(&format!("<code id=\"digest\">{digest}</code>")));
    assert!(dom.contains("<svg") && dom.contains("<circle"), "no chart");
    // The chart's axes are labelled, its dates are dates.
    assert!(
        dom.contains("日期（北京时间）") && dom.contains("信用分"),
        "axes"
    );
    let year = &r["history"][0]["as_of"].as_str().unwrap()[..4];
    assert!(dom.contains(&format!(">{year}-")), "no date on the x axis");
    assert_eq!(count(&dom, "<tr class=\"change\">") as u64, most.n);
    assert_eq!(count(&dom, "<tr class=\"record\">"), recs.len());
    let colour = r["current"]["colour"].as_str().unwrap();
    let zh = chinese(colour);
    assert!(
        dom.contains(&format!("<strong id=\"colour\">{zh}</strong>")),
        "{colour}"
    );
    assert_eq!(
        count(&dom, "<table id=\"explanation\">"),
        1,
        "explanation table"
    );
    // Indicators by their Chinese names, times in Asia/Shanghai, a legend of the colours.
    let cat = rules::catalogue::Catalogue::embedded();
    for x in r["current"]["explanation"].as_array().unwrap() {
        let id = x["indicator"].as_str().unwrap();
        let name = &cat.indicators.iter().find(|i| i.id == id).unwrap().name_zh;
        assert!(dom.contains(&format!("{name}（{id}）")), "{id}");
    }
    assert!(dom.contains("北京时间") && dom.contains("<td>有效</td>"));
    for c in ["blue", "green", "yellow", "red"] {
        assert!(dom.contains(chinese(c)), "legend {c}");
    }

    // English on request.
    let page_en = dir.0.join("report-en.html");
    let out_en = page_en.to_str().unwrap();
    report(
        &ns,
        &[
            "--uscc", uscc, "--format", "html", "--lang", "en", "--out", out_en,
        ],
    );
    assert!(verify(&page_en).0);
    let dom = dump_dom(&dir, out_en);
    assert!(dom.contains("<h2>Records</h2>") && dom.contains("Date (Asia/Shanghai)"));
    assert!(dom.contains(&format!("<strong id=\"colour\">{colour}</strong>")));

    // PDF: it renders, and its text holds the colour and the digest.
    let pdf = dir.0.join("report.pdf");
    let (_, issued) = report_with_digest(
        &ns,
        &[
            "--uscc",
            uscc,
            "--format",
            "pdf",
            "--out",
            pdf.to_str().unwrap(),
        ],
    );
    assert_eq!(issued.len(), 64, "{issued}");
    let png = dir.0.join("page");
    let render = Command::new("pdftoppm")
        .args(["-png", "-r", "60", "-f", "1", "-l", "1"])
        .arg(&pdf)
        .arg(&png)
        .status()
        .expect("pdftoppm, which `scripts/services.sh install` installs");
    assert!(render.success());
    let first = std::fs::read_dir(&dir.0)
        .expect("temp dir")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("page"))
        .expect("a rendered page");
    assert!(
        first.metadata().expect("png").len() > 10_000,
        "an empty page"
    );
    let text = Command::new("pdftotext")
        .arg(&pdf)
        .arg("-")
        .output()
        .expect("pdftotext, which `scripts/services.sh install` installs");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("企业信用报告") && text.contains(zh), "{text}");
    assert!(text.contains(&issued), "digest {issued} not in {text}");

    // With STEWARD_REPORT_SCREENSHOTS=DIR, keep a screenshot of the Chinese page and the
    // PDF's first page there (`docs/report/` holds those of one run).
    if let Some(keep) = std::env::var_os("STEWARD_REPORT_SCREENSHOTS") {
        let keep = std::path::PathBuf::from(keep);
        std::fs::create_dir_all(&keep).expect("screenshot directory");
        let shot = Command::new("chromium")
            .args(CHROMIUM_FLAGS)
            .arg(format!(
                "--user-data-dir={}",
                dir.0.join("shot-profile").display()
            ))
            .arg("--window-size=1100,2400")
            .arg(format!(
                "--screenshot={}",
                keep.join("report-zh.png").display()
            ))
            .arg(format!("file://{out}"))
            .status()
            .expect("chromium");
        assert!(shot.success());
        std::fs::copy(first.path(), keep.join("report-pdf-page1.png")).expect("copy page");
    }
}

/// The page at `out` as headless Chromium builds it.
fn dump_dom(dir: &TempDir, out: &str) -> String {
    let profile = dir.0.join("chromium-profile");
    let dom = succeeded(
        Command::new("chromium")
            .args(CHROMIUM_FLAGS)
            .arg("--dump-dom")
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("file://{out}")),
        "chromium, which `scripts/services.sh install` installs",
    );
    String::from_utf8_lossy(&dom.stdout).into_owned()
}
