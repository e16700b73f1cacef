//! `steward what-if` as a user runs it (issue 21): on a generated history with a candidate
//! whose green band starts higher, it writes `what-if.json` and a self-contained
//! `what-if.html` that headless Chromium renders with the catalogue's changes, the colour
//! migration matrix (the JSON's counts, cell by cell) and the chart; a candidate that fails
//! validation stops it with a message naming the field, and nothing is written. The
//! inspection what-if with the current policy as candidate gives equal rates, and an
//! invalid policy is refused naming the field.

use std::process::Command;

use e2e::{steward_bin, TempDir};
use pipeline::report::CHROMIUM_FLAGS;
use serde_json::Value;

fn what_if(dir: &TempDir, candidate: &str) -> std::process::Output {
    let cand = dir.0.join("candidate.toml");
    std::fs::write(&cand, candidate).expect("candidate written");
    Command::new(steward_bin().expect("steward binary"))
        .args([
            "what-if",
            "--enterprises",
            "200",
            "--years",
            "1",
            "--seed",
            "7",
        ])
        .arg("--catalogue")
        .arg(&cand)
        .arg("--output")
        .arg(dir.0.join("out"))
        .output()
        .expect("steward runs")
}

#[test]
fn the_page_shows_the_migration_matrix_of_the_json() {
    let dir = TempDir::new("what_if").expect("temp dir");
    let candidate = rules::catalogue::DEFAULT_TOML
        .replace("green = 700.0", "green = 760.0")
        .replace("version = \"catalogue-v1\"", "version = \"green-760\"");
    let out = what_if(&dir, &candidate);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("of 200 enterprises change colour"), "{said}");

    let json: Value = serde_json::from_slice(
        &std::fs::read(dir.0.join("out/what-if.json")).expect("what-if.json"),
    )
    .expect("JSON");
    let differs = json["colour_differs"].as_u64().expect("count");
    assert!(differs > 0, "a band 60 points higher moves some colour");
    assert_eq!(
        json["differences"].as_array().map(Vec::len),
        Some(differs as usize)
    );
    let changed: Vec<&str> = json["catalogue_changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["path"].as_str())
        .collect();
    assert_eq!(changed, ["colours.green", "version"]);

    let page = dir.0.join("out/what-if.html");
    let profile = dir.0.join("chromium-profile");
    let dom = Command::new("chromium")
        .args(CHROMIUM_FLAGS)
        .arg("--dump-dom")
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium, which `scripts/services.sh install` installs");
    assert!(dom.status.success());
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("What-if: green-760 against catalogue-v1"),
        "{dom}"
    );
    assert!(dom.contains("<code>colours.green</code>"));
    assert!(
        dom.contains("<svg") && dom.contains("<polyline"),
        "no chart"
    );
    // The matrix: a header row, then one row per colour with the JSON's counts in order.
    let table = dom
        .split("<table id=\"matrix\">")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .expect("the matrix table");
    let rows: Vec<Vec<u64>> = table
        .split("<tr>")
        .skip(2)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .filter_map(|cell| cell.split('>').nth(1)?.split('<').next()?.parse().ok())
                .collect()
        })
        .collect();
    let want: Vec<Vec<u64>> = serde_json::from_value(json["matrix"].clone()).expect("matrix");
    assert_eq!(rows, want);
    assert_eq!(want.iter().flatten().sum::<u64>(), 200);
    assert_eq!(
        dom.matches("<td class=\"n moved\">").count(),
        want.iter()
            .enumerate()
            .flat_map(|(i, r)| r
                .iter()
                .enumerate()
                .filter(move |(j, n)| *j != i && **n > 0))
            .count()
    );
}

#[test]
fn an_invalid_candidate_is_refused_naming_the_field() {
    let dir = TempDir::new("what_if_invalid").expect("temp dir");
    let candidate = rules::catalogue::DEFAULT_TOML.replace("green = 700.0", "green = 900.0");
    let out = what_if(&dir, &candidate);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("the candidate catalogue"), "{said}");
    assert!(said.contains("green"), "{said}");
    assert!(!dir.0.join("out").exists(), "nothing written");
}

#[test]
fn the_inspection_what_if_of_the_current_policy_gives_equal_rates() {
    let dir = TempDir::new("what_if_inspection").expect("temp dir");
    let policy = dir.0.join("supervision.toml");
    std::fs::write(&policy, include_str!("../config/supervision.toml")).expect("written");
    let run = |policy: &std::path::Path| {
        Command::new(steward_bin().expect("steward binary"))
            .args([
                "what-if",
                "--enterprises",
                "300",
                "--years",
                "2",
                "--seeds",
                "50",
            ])
            .arg("--inspection")
            .arg(policy)
            .arg("--output")
            .arg(dir.0.join("out"))
            .output()
            .expect("steward runs")
    };
    let out = run(&policy);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(
        &std::fs::read(dir.0.join("out/inspection-what-if.json")).expect("written"),
    )
    .expect("JSON");
    assert_eq!(json["current"], json["candidate"]);
    assert_eq!(json["seeds"], 50);
    assert!(
        json["enterprises"].as_u64().is_some_and(|n| n > 250),
        "{json}"
    );
    assert!(
        json["with_problem"].as_u64().is_some_and(|n| n > 0),
        "{json}"
    );
    assert_eq!(json["uniform"]["selected"], json["current"]["selected"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("lift over uniform"), "{said}");

    // A probability above 1 is refused, naming the field.
    let bad = include_str!("../config/supervision.toml")
        .replace("probability = 0.30", "probability = 1.30");
    std::fs::write(&policy, bad).expect("written");
    let out = run(&policy);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("the candidate inspection policy") && said.contains("yellow"),
        "{said}"
    );
}
