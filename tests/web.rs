//! `steward web` (D83) against real ClickHouse, on the data of a real `steward serve` run
//! (generated feeds through Kafka) and a campaign `steward plan` made:
//! - the public colour-code page shows the colour, the date it holds from, region, industry
//!   and rules version, and none of the enterprise's records or person data (checked on the
//!   enterprise with records of the most feeds); its QR codes (PNG read back by a QR
//!   decoder, and SVG) link to the page; a malformed USCC gets 400, an unknown one 404;
//! - the supervisor view refuses no credentials and wrong ones (401), the analyst role on
//!   supervisor-only pages (403), and a name after five failed sign-ins (429); search,
//!   worsened and campaign agree with ClickHouse; the enterprise page holds the explanation by indicator names, the chart and every record;
//!   the credit report it issues passes `steward report verify`;
//! - SQL injection in every parameter, unknown parameters and an oversized request get 4xx
//!   and leave the service running; API answers match the OpenAPI document's schemas;
//!   metrics carry route templates, never a USCC;
//! - with ClickHouse stopped, pages and API answer 503 (counted) and `/readyz` 503; started
//!   again, they return;
//! - headless Chromium renders the public page (the badge's pixels are the colour's), the
//!   supervisor pages (signed in) and the report; `STEWARD_WEB_SCREENSHOTS=DIR` keeps the
//!   screenshots (`docs/web/` holds those of one run).

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use clickhouse::Row;
use connectors::clickhouse::ClickHouse;
use e2e::serve::{produce, serve, wait};
use e2e::{
    chinese, free_port, services, steward_bin, wait_for, ChildGuard, Namespace, Restore, TempDir,
};
use generator::GenConfig;
use pipeline::report::CHROMIUM_FLAGS;
use serde::Deserialize;
use serde_json::Value;

const SUPERVISOR: (&str, &str) = ("sup", "correct horse battery");
const ANALYST: (&str, &str) = ("ana", "analyst-pass-1");

/// An HTTP answer.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
    www_authenticate: Option<String>,
    digest: Option<String>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
}

struct Web {
    base: String,
    _child: ChildGuard,
}

impl Web {
    fn get(&self, path: &str, user: Option<(&str, &str)>) -> Answer {
        self.request(path, user, &[])
    }

    fn request(&self, path: &str, user: Option<(&str, &str)>, headers: &[(&str, &str)]) -> Answer {
        let mut req = ureq::get(&format!("{}{path}", self.base)).timeout(Duration::from_secs(60));
        if let Some((name, password)) = user {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
            req = req.set("Authorization", &format!("Basic {token}"));
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let resp = match req.call() {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("GET {path}: {e}"),
        };
        let status = resp.status();
        let content_type = resp.header("content-type").unwrap_or_default().to_owned();
        let www_authenticate = resp.header("www-authenticate").map(str::to_owned);
        let digest = resp.header("x-steward-report-digest").map(str::to_owned);
        let mut body = Vec::new();
        resp.into_reader()
            .take(50 << 20)
            .read_to_end(&mut body)
            .expect("body");
        Answer {
            status,
            content_type,
            body,
            www_authenticate,
            digest,
        }
    }

    fn alive(&self) {
        assert_eq!(self.get("/livez", None).status, 200, "the service stopped");
    }
}

/// `steward web hash-password` of `password`.
fn hash(password: &str) -> String {
    let mut child = Command::new(steward_bin().expect("steward binary"))
        .args(["web", "hash-password"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("steward web hash-password");
    writeln!(child.stdin.take().expect("stdin"), "{password}").expect("write password");
    let out = child.wait_with_output().expect("hash");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// Starts `steward web` on `ns`'s ClickHouse with the two users.
fn start(ns: &Namespace, dir: &TempDir) -> Web {
    let mut text = std::fs::read_to_string(&ns.config).expect("config");
    for ((name, password), role) in [(SUPERVISOR, "supervisor"), (ANALYST, "analyst")] {
        text.push_str(&format!(
            "\n[[web.users]]\nname = \"{name}\"\nrole = \"{role}\"\npassword_hash = \"{}\"\n",
            hash(password)
        ));
    }
    text = text.replace("max_rows = 500", "max_rows = 50");
    let config = dir.0.join("web.toml");
    std::fs::write(&config, text).expect("write config");
    let port = free_port().expect("port");
    let base = format!("http://127.0.0.1:{port}");
    let child = ChildGuard::spawn(
        "steward web",
        Command::new(steward_bin().expect("steward binary"))
            .args(["web", "--config"])
            .arg(&config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "info"),
        &dir.0.join("web.log"),
    )
    .expect("start steward web");
    let web = Web {
        base,
        _child: child,
    };
    wait_for("steward web to answer", Duration::from_secs(60), || {
        ureq::get(&format!("{}/readyz", web.base))
            .call()
            .ok()
            .filter(|r| r.status() == 200)
    })
    .expect("steward web ready");
    web
}

#[derive(Debug, Row, Deserialize)]
struct Richest {
    uscc: String,
    feeds: Vec<String>,
}

/// What the public page of `uscc` must never show: its record ids, and the person hashes
/// and decision, case, loan and commitment numbers in its records.
fn private_of(ch: &ClickHouse, db: &str, uscc: &str) -> BTreeSet<String> {
    let bodies: Vec<Body> = e2e::runtime()
        .block_on(ch.fetch::<Body>(&format!(
            "SELECT event_id, body FROM {db}.records FINAL WHERE uscc = '{uscc}'"
        )))
        .expect("bodies");
    let mut private: BTreeSet<String> = bodies.iter().map(|b| b.event_id.clone()).collect();
    for b in &bodies {
        let v: Value = serde_json::from_str(&b.body).expect("body JSON");
        for key in [
            "person_hash",
            "decision_no",
            "case_no",
            "loan_id",
            "commitment_id",
        ] {
            strings_at(&v, key, &mut private);
        }
    }
    assert!(private.len() >= bodies.len(), "record ids");
    private
}

#[derive(Debug, Row, Deserialize)]
struct Body {
    event_id: String,
    body: String,
}

#[derive(Debug, Row, Deserialize)]
struct State {
    colour: String,
    region: String,
    industry: String,
    rules_version: String,
}

fn count(ch: &ClickHouse, sql: &str) -> u64 {
    e2e::runtime()
        .block_on(ch.fetch::<u64>(sql))
        .expect("count")[0]
}

/// Every string value in `v`, recursively, of the keys named `key`.
fn strings_at(v: &Value, key: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if k == key {
                    if let Some(s) = x.as_str() {
                        out.insert(s.to_owned());
                    }
                }
                strings_at(x, key, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| strings_at(x, key, out)),
        _ => {}
    }
}

#[test]
fn web_service() {
    // A real serve run into ClickHouse, and a campaign.
    let ns = Namespace::new("web");
    let gen = GenConfig {
        enterprises: 120,
        seed: 11,
        ..GenConfig::default()
    };
    produce(&ns.cfg, &gen);
    wait(serve(&ns), Duration::from_secs(900));
    let planned = Command::new(steward_bin().expect("steward binary"))
        .args(["plan", "--config"])
        .arg(&ns.config)
        .args(["--campaign", "web-1", "--seed", "5"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("steward plan");
    assert!(
        planned.status.success(),
        "{}",
        String::from_utf8_lossy(&planned.stderr)
    );

    let ch = ClickHouse::new(&ns.cfg.clickhouse).expect("client");
    let db = ch.database().to_owned();
    // The enterprises with records of the most feeds, as many as cover every feed.
    let all_feeds: BTreeSet<String> = e2e::runtime()
        .block_on(ch.fetch::<String>(&format!("SELECT DISTINCT feed FROM {db}.records")))
        .expect("feeds")
        .into_iter()
        .collect();
    assert!(all_feeds.len() >= 10, "{all_feeds:?}");
    let richest: Vec<Richest> = e2e::runtime()
        .block_on(ch.fetch::<Richest>(&format!(
            "SELECT uscc, groupUniqArray(feed) AS feeds FROM {db}.records FINAL \
             GROUP BY uscc ORDER BY length(feeds) DESC, uscc LIMIT 20"
        )))
        .expect("records");
    let mut covered = BTreeSet::new();
    let mut checked = Vec::new();
    for r in richest {
        if r.feeds.iter().any(|f| !covered.contains(f)) {
            covered.extend(r.feeds.iter().cloned());
            checked.push(r.uscc);
        }
        if covered == all_feeds {
            break;
        }
    }
    assert_eq!(
        covered, all_feeds,
        "the checked enterprises cover every feed"
    );
    let uscc = checked[0].as_str();
    let state: State = e2e::runtime()
        .block_on(ch.fetch::<State>(&format!(
            "SELECT colour, region, industry, rules_version FROM {db}.enterprise_state FINAL \
             WHERE deleted = 0 AND uscc = '{uscc}'"
        )))
        .expect("state")
        .remove(0);

    let dir = TempDir::new("web").expect("temp dir");
    let web = start(&ns, &dir);

    // The public page: what it shows, and nothing private.
    let page = web.get(&format!("/c/{uscc}"), None);
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    let zh = chinese(&state.colour);
    assert!(
        html.contains(&format!("<strong id=\"colour\">{zh}</strong>")),
        "{html}"
    );
    assert!(html.contains(&format!("<td id=\"region\">{}</td>", state.region)));
    assert!(html.contains(&format!("<td id=\"industry\">{}</td>", state.industry)));
    assert!(html.contains(&format!(
        "<td id=\"rules-version\">{}</td>",
        state.rules_version
    )));
    // No record id, person hash, decision, case, loan or commitment number of any of them.
    for u in &checked {
        let private = private_of(&ch, &db, u);
        let shown = web.get(&format!("/c/{u}"), None);
        assert_eq!(shown.status, 200);
        let shown = shown.text() + &web.get(&format!("/api/v1/public/{u}"), None).text();
        for secret in &private {
            assert!(
                !shown.contains(secret.as_str()),
                "the public page of {u} shows {secret}"
            );
        }
    }
    let code = web.get(&format!("/api/v1/public/{uscc}"), None).json();
    let keys: BTreeSet<&str> = code
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "uscc",
            "colour",
            "colour_since",
            "region",
            "industry",
            "rules_version",
            "page"
        ])
    );
    assert_eq!(code["colour"], state.colour.as_str());
    let since: String = code["colour_since"]
        .as_str()
        .expect("since")
        .chars()
        .take(10)
        .collect();
    assert!(
        html.contains(&format!(">{since}<")) || html.contains("id=\"since\""),
        "since"
    );
    // The date it holds from is its last change to this colour.
    #[derive(Debug, Row, Deserialize)]
    struct Last {
        t: u32,
    }
    let last = e2e::runtime()
        .block_on(ch.fetch::<Last>(&format!(
            "SELECT max(as_of) AS t FROM {db}.colour_history WHERE uscc = '{uscc}' AND to_colour = '{}'",
            state.colour
        )))
        .expect("last change")[0]
        .t;
    assert_eq!(
        rules::time::parse_rfc3339(code["colour_since"].as_str().unwrap()),
        Some(i64::from(last))
    );
    // Any spelling of the code reaches the same page.
    let lower = web.get(&format!("/c/{}", uscc.to_lowercase()), None);
    assert_eq!(lower.status, 200);

    // QR codes: the PNG read back holds the page's address; the SVG is a drawing.
    let png = web.get(&format!("/c/{uscc}/qr.png"), None);
    assert_eq!((png.status, png.content_type.as_str()), (200, "image/png"));
    let img = image::load_from_memory(&png.body).expect("PNG").to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    let (_, content) = grids[0].decode().expect("decodes");
    assert_eq!(content, format!("http://127.0.0.1:8080/c/{uscc}"));
    assert_eq!(content, code["page"]);
    let svg = web.get(&format!("/c/{uscc}/qr.svg"), None);
    assert_eq!(svg.status, 200);
    assert!(svg.content_type.starts_with("image/svg+xml") && svg.text().contains("<svg"));

    // Malformed and unknown codes.
    let unknown = rules::uscc::with_check("91110000MA00000Q0").expect("a valid code");
    let mut wrong_check = uscc.to_owned();
    wrong_check.replace_range(17.., if uscc.ends_with('0') { "1" } else { "0" });
    for (path, want) in [
        (format!("/c/{unknown}"), 404),
        (format!("/c/{unknown}/qr.png"), 404),
        (format!("/api/v1/public/{unknown}"), 404),
        ("/c/12345".to_owned(), 400),
        (format!("/c/{wrong_check}"), 400),
        ("/c/%27%20OR%20%271%27%3D%271".to_owned(), 400),
        (
            "/api/v1/public/%27%3B%20DROP%20TABLE%20records%3B--".to_owned(),
            400,
        ),
        ("/c?uscc=not-a-code".to_owned(), 400),
        ("/no/such/page".to_owned(), 404),
    ] {
        let a = web.get(&path, None);
        assert_eq!(a.status, want, "{path}: {}", a.text());
        if path.starts_with("/api/") {
            assert!(a.json()["error"].is_string(), "{path}");
        } else {
            assert!(a.content_type.starts_with("text/html"), "{path}: a page");
        }
    }
    let found = web.get(&format!("/c?uscc={}", uscc.to_lowercase()), None);
    assert_eq!(found.status, 200, "the look-up form follows to the page");

    // Authentication and roles.
    let none = web.get("/s", None);
    assert_eq!(none.status, 401);
    assert!(none
        .www_authenticate
        .as_deref()
        .is_some_and(|h| h.starts_with("Basic")));
    assert_eq!(web.get("/s", Some((SUPERVISOR.0, "wrong"))).status, 401);
    assert_eq!(web.get("/s", Some(("nobody", SUPERVISOR.1))).status, 401);
    assert_eq!(
        web.get("/api/v1/enterprises", None).json()["error"],
        "unauthorized"
    );
    for path in [
        format!("/s/e/{uscc}"),
        format!("/report/{uscc}?format=json"),
        format!("/api/v1/enterprises/{uscc}"),
    ] {
        let a = web.get(&path, Some(ANALYST));
        assert_eq!(a.status, 403, "{path}");
        assert!(
            !a.text().contains(uscc) || path.starts_with("/api"),
            "{path} leaks"
        );
    }
    for path in ["/s", "/s/worsened", "/s/campaign", "/api/v1/campaign"] {
        assert_eq!(web.get(path, Some(ANALYST)).status, 200, "{path}");
    }

    // Search agrees with ClickHouse.
    let red = count(
        &ch,
        &format!(
            "SELECT count() FROM {db}.enterprise_state FINAL WHERE deleted = 0 AND colour = 'red'"
        ),
    );
    let found = web
        .get("/api/v1/enterprises?colour=red", Some(ANALYST))
        .json();
    let rows = found["rows"].as_array().expect("rows");
    assert_eq!(rows.len() as u64, red.min(50));
    assert_eq!(found["truncated"], red > 50);
    assert!(rows.iter().all(|r| r["colour"] == "red"));
    let prefix = &uscc[..10];
    let found = web
        .get(&format!("/api/v1/enterprises?uscc={prefix}"), Some(ANALYST))
        .json();
    let rows = found["rows"].as_array().expect("rows");
    assert!(rows.iter().any(|r| r["uscc"] == uscc), "{found}");
    assert!(rows
        .iter()
        .all(|r| r["uscc"].as_str().unwrap().starts_with(prefix)));
    let found = web
        .get(
            &format!(
                "/api/v1/enterprises?region={}&industry={}",
                state.region, state.industry
            ),
            Some(ANALYST),
        )
        .json();
    assert!(found["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["region"] == state.region.as_str() && r["industry"] == state.industry.as_str()));
    let page = web.get(&format!("/s?uscc={uscc}"), Some(SUPERVISOR)).text();
    assert_eq!(page.matches("<tr class=\"result\">").count(), 1);
    assert!(
        page.contains(&format!("href=\"/s/e/{uscc}\"")),
        "a supervisor gets the link"
    );

    // Injection, unknown parameters and oversized requests: 4xx, and the service lives.
    let stored = count(&ch, &format!("SELECT count() FROM {db}.records"));
    for path in [
        "/api/v1/enterprises?region=%27%20OR%201%3D1%20--",
        "/api/v1/enterprises?industry=x%27)%20UNION%20SELECT%201--",
        "/api/v1/enterprises?colour=red%27%20OR%20%271%27%3D%271",
        "/api/v1/enterprises?uscc=9%27%20OR%20%271",
        "/api/v1/enterprises?uscc=91%25",
        "/api/v1/enterprises?drop=1",
        "/api/v1/worsened?region=%27%3B%20DROP%20TABLE%20records",
        "/s?colour=%3Cscript%3E",
        "/s/worsened?industry=%27--",
    ] {
        let a = web.get(path, Some(SUPERVISOR));
        assert_eq!(a.status, 400, "{path}: {}", a.text());
    }
    for path in [
        format!("/report/{uscc}?format=exe"),
        format!("/report/{uscc}?lang=fr"),
        format!("/s/e/{uscc}?lang=%27"),
    ] {
        assert_eq!(web.get(&path, Some(SUPERVISOR)).status, 400, "{path}");
    }
    let long = "9".repeat(100_000);
    let a = web.get(
        &format!("/api/v1/enterprises?uscc={long}"),
        Some(SUPERVISOR),
    );
    assert!(
        (400..500).contains(&a.status),
        "a long address: {}",
        a.status
    );
    let big = "x".repeat(60_000);
    let a = web.request("/livez", None, &[("X-Big", &big)]);
    assert!(
        (400..500).contains(&a.status),
        "large headers: {}",
        a.status
    );
    let posted = ureq::post(&format!("{}/s", web.base)).send_bytes(&vec![b'a'; 2 << 20]);
    let refused = match posted {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(c, _)) => c,
        // The server may close the connection before reading a body it refuses.
        Err(_) => 413,
    };
    assert!((400..500).contains(&refused), "a large body: {refused}");
    assert_eq!(
        count(&ch, &format!("SELECT count() FROM {db}.records")),
        stored,
        "the records are all there"
    );
    web.alive();

    // Worsened and campaign agree with ClickHouse.
    let worse = count(
        &ch,
        &format!("SELECT count() FROM {db}.colour_history WHERE direction = 'worsened'"),
    );
    let list = web.get("/api/v1/worsened", Some(ANALYST)).json();
    let rows = list["rows"].as_array().expect("rows");
    assert_eq!(rows.len() as u64, worse.min(50));
    let times: Vec<u64> = rows.iter().map(|r| r["as_of"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let campaign = web.get("/api/v1/campaign", Some(ANALYST)).json();
    assert_eq!(campaign["campaign_id"], "web-1");
    let order: Vec<&str> = campaign["strata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["colour"].as_str().unwrap())
        .collect();
    let rank = |c: &&str| {
        ["blue", "green", "yellow", "red", "none"]
            .iter()
            .position(|x| x == c)
    };
    assert!(
        order.windows(2).all(|w| rank(&w[0]) < rank(&w[1])),
        "{order:?}"
    );
    let selected: u64 = campaign["strata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["selected"].as_u64().unwrap())
        .sum();
    let plans = count(
        &ch,
        &format!("SELECT count() FROM {db}.inspection_plans WHERE campaign_id = 'web-1'"),
    );
    assert_eq!(selected, plans);
    assert_eq!(
        campaign["selected"]["rows"].as_array().unwrap().len() as u64,
        plans.min(50)
    );

    // The enterprise page and its report.
    let e = web
        .get(&format!("/api/v1/enterprises/{uscc}"), Some(SUPERVISOR))
        .json();
    assert_eq!(e["uscc"], uscc);
    let records = e["records"].as_array().expect("records").len();
    assert!(records > 0);
    let page = web.get(&format!("/s/e/{uscc}"), Some(SUPERVISOR)).text();
    assert_eq!(page.matches("<tr class=\"record\">").count(), records);
    assert!(
        page.contains("<svg") && page.contains("日期（北京时间）"),
        "the chart"
    );
    assert!(page.contains("id=\"downloads\"") && page.contains("id=\"user\""));
    let cat = rules::catalogue::Catalogue::embedded();
    for x in e["current"]["explanation"].as_array().expect("explanation") {
        let id = x["indicator"].as_str().unwrap();
        let name = &cat.indicators.iter().find(|i| i.id == id).unwrap().name_zh;
        assert!(page.contains(&format!("{name}（{id}）")), "{id}");
    }
    for format in ["html", "json"] {
        let file = dir.0.join(format!("report.{format}"));
        let a = web.get(&format!("/report/{uscc}?format={format}"), Some(SUPERVISOR));
        assert_eq!(a.status, 200);
        std::fs::write(&file, &a.body).expect("write report");
        let out = Command::new(steward_bin().expect("steward binary"))
            .args(["report", "verify"])
            .arg(&file)
            .output()
            .expect("verify");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // One changed character: altered.
    let html_file = dir.0.join("report.html");
    let text = std::fs::read_to_string(&html_file).expect("report");
    std::fs::write(
        &html_file,
        text.replacen("<h2>信用记录</h2>", "<h2>信用纪录</h2>", 1),
    )
    .expect("write");
    let out = Command::new(steward_bin().expect("steward binary"))
        .args(["report", "verify"])
        .arg(&html_file)
        .output()
        .expect("verify");
    assert!(!out.status.success(), "a changed report passed");
    // The PDF prints the digest its header names.
    let pdf = web.get(
        &format!("/report/{uscc}?format=pdf&lang=en"),
        Some(SUPERVISOR),
    );
    assert_eq!(
        (pdf.status, pdf.content_type.as_str()),
        (200, "application/pdf")
    );
    let digest = pdf.digest.clone().expect("a digest header");
    assert_eq!(digest.len(), 64);
    let file = dir.0.join("report.pdf");
    std::fs::write(&file, &pdf.body).expect("write PDF");
    let text = Command::new("pdftotext")
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext, which `scripts/services.sh install` installs");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&digest) && text.contains(uscc), "{text}");

    // The answers match the OpenAPI document.
    let doc = web.get("/api/openapi.json", None).json();
    for p in [
        "/api/v1/public/{uscc}",
        "/api/v1/enterprises",
        "/api/v1/enterprises/{uscc}",
        "/api/v1/worsened",
        "/api/v1/campaign",
    ] {
        assert!(doc["paths"][p]["get"].is_object(), "{p} documented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["basic"]["scheme"],
        "basic"
    );
    for (schema, answer) in [("PublicCode", &code), ("Campaign", &campaign)] {
        let mut root = doc.clone();
        root["$ref"] = Value::from(format!("#/components/schemas/{schema}"));
        let v = jsonschema::validator_for(&root).expect("schema");
        let errors: Vec<String> = v.iter_errors(answer).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{schema}: {errors:?}");
    }

    // Metrics: by route template, never by enterprise.
    let metrics = web.get("/metrics", None).text();
    assert!(
        metrics.contains("steward_web_requests_total{route=\"/c/{uscc}\",status=\"200\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("steward_web_failures_total{error_code=\"forbidden\"}"));
    assert!(!metrics.contains(uscc), "a USCC in a label");

    // Headless Chromium: the pages as people see them.
    browser(&web, &dir, uscc, &state.colour);

    // ClickHouse down: a clear 503 page and answer, /readyz says so, the failures are
    // counted; back up, the pages return.
    {
        let _restore = Restore("start", "clickhouse");
        services("stop", "clickhouse");
        let down = web.get(&format!("/c/{uscc}"), None);
        assert_eq!(down.status, 503, "{}", down.text());
        assert!(down.content_type.starts_with("text/html") && !down.text().contains("Code:"));
        let api = web.get("/api/v1/enterprises?colour=red", Some(SUPERVISOR));
        assert_eq!(
            (api.status, api.json()["error"].as_str()),
            (503, Some("unavailable"))
        );
        assert_eq!(web.get("/readyz", None).status, 503);
        web.alive();
    }
    wait_for("steward web ready again", Duration::from_secs(60), || {
        (web.get("/readyz", None).status == 200).then_some(())
    })
    .expect("ready again");
    assert_eq!(web.get(&format!("/c/{uscc}"), None).status, 200);
    let metrics = web.get("/metrics", None).text();
    assert!(
        metrics.lines().any(|l| l
            .starts_with("steward_web_failures_total{error_code=\"unavailable\"}")
            && !l.ends_with(" 0")),
        "{metrics}"
    );

    // Guessing is throttled: after five failures the right password waits too (429).
    for _ in 0..5 {
        assert_eq!(web.get("/s", Some((ANALYST.0, "guess"))).status, 401);
    }
    let throttled = web.get("/api/v1/campaign", Some(ANALYST));
    assert_eq!(throttled.status, 429, "{}", throttled.text());
    assert_eq!(throttled.json()["error"], "throttled");
    assert_eq!(
        web.get("/s", Some(SUPERVISOR)).status,
        200,
        "other users are not"
    );
    web.alive();
}

/// The RGB of a colour's badge (the report's colours).
fn rgb(colour: &str) -> [u8; 3] {
    match colour {
        "blue" => [31, 95, 191],
        "green" => [46, 139, 87],
        "yellow" => [218, 165, 32],
        "red" => [200, 30, 30],
        _ => [128, 128, 128],
    }
}

fn chromium(dir: &TempDir, args: &[String]) -> std::process::Output {
    let out = Command::new("chromium")
        .args(CHROMIUM_FLAGS)
        .arg(format!(
            "--user-data-dir={}",
            dir.0.join("chromium-profile").display()
        ))
        .args(args)
        .output()
        .expect("chromium, which `scripts/services.sh install` installs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn browser(web: &Web, dir: &TempDir, uscc: &str, colour: &str) {
    let keep = std::env::var_os("STEWARD_WEB_SCREENSHOTS").map(std::path::PathBuf::from);
    if let Some(k) = &keep {
        std::fs::create_dir_all(k).expect("screenshot directory");
    }
    let signed_in = |user: (&str, &str), path: &str| {
        format!(
            "http://{}:{}@{}{path}",
            user.0,
            user.1.replace(' ', "%20"),
            &web.base["http://".len()..]
        )
    };
    let pages = [
        ("public", format!("{}/c/{uscc}", web.base)),
        ("enterprise", signed_in(SUPERVISOR, &format!("/s/e/{uscc}"))),
        ("search", signed_in(ANALYST, "/s?colour=red")),
        ("campaign", signed_in(ANALYST, "/s/campaign")),
        (
            "report",
            signed_in(SUPERVISOR, &format!("/report/{uscc}?format=html")),
        ),
    ];
    for (name, url) in &pages {
        let dom =
            String::from_utf8_lossy(&chromium(dir, &["--dump-dom".to_owned(), url.clone()]).stdout)
                .into_owned();
        match *name {
            "public" => assert!(
                dom.contains(&format!(
                    "<strong id=\"colour\">{}</strong>",
                    chinese(colour)
                )),
                "{dom}"
            ),
            "enterprise" => {
                assert!(
                    dom.contains(&format!("<span id=\"uscc\">{uscc}</span>")),
                    "{dom}"
                );
                assert!(
                    dom.contains("日期（北京时间）") && dom.contains("信用分"),
                    "axes"
                );
            }
            "search" => assert!(dom.contains("<table id=\"results\">"), "{dom}"),
            "campaign" => assert!(
                dom.contains("<strong id=\"campaign-id\">web-1</strong>"),
                "{dom}"
            ),
            _ => assert!(dom.contains("<code id=\"digest\">"), "{dom}"),
        }
        let shot = dir.0.join(format!("web-{name}.png"));
        chromium(
            dir,
            &[
                "--window-size=1100,1400".to_owned(),
                format!("--screenshot={}", shot.display()),
                url.clone(),
            ],
        );
        let img = image::open(&shot).expect("screenshot").to_rgb8();
        if *name == "public" {
            // The badge is painted in the colour.
            let want = rgb(colour);
            let painted = img.pixels().filter(|p| p.0 == want).count();
            assert!(painted > 5_000, "{painted} pixels of {colour}");
        }
        let distinct: BTreeSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        assert!(distinct.len() > 20, "{name}: a blank screenshot");
        if let Some(k) = &keep {
            std::fs::copy(&shot, k.join(format!("web-{name}.png"))).expect("keep screenshot");
        }
    }
}
