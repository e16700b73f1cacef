//! The `steward` binary: `check-config` names the bad field and exits non-zero; secrets never
//! reach the logs; `run` writes the pre-credit line with the state.

use std::process::{Command, Stdio};
use std::time::Duration;

fn steward() -> Command {
    Command::new(env!("CARGO_BIN_EXE_steward"))
}

fn default_config() -> String {
    connectors::config::DEFAULT_TOML.to_owned()
}

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("steward-cli-{}-{name}.toml", std::process::id()));
    std::fs::write(&p, text).expect("write config");
    p
}

#[test]
fn check_config_accepts_the_default_and_names_the_bad_field() {
    let good = write("good", &default_config());
    let out = steward()
        .arg("check-config")
        .arg(&good)
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");

    let cases = [
        (
            "alerts = \"credit.out.alerts\"",
            "alerts = \"bad topic!\"",
            "kafka.topics.alerts",
        ),
        ("max_rows = 20000", "max_rows = 0", "batch.max_rows"),
        ("[clock]", "[clock]\nspeed = 3", "speed"),
    ];
    for (i, (from, to, field)) in cases.into_iter().enumerate() {
        let bad = write(&format!("bad{i}"), &default_config().replacen(from, to, 1));
        let out = steward()
            .arg("check-config")
            .arg(&bad)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{field}: accepted");
        assert!(err.contains(field), "{field} not named in: {err}");
        let _ = std::fs::remove_file(bad);
    }
    let _ = std::fs::remove_file(good);
}

#[test]
fn passwords_never_reach_the_logs() {
    let sentinel_ch = "ch-secret-5150";
    let sentinel_kafka = "kafka-secret-8675309";
    let cfg = write(
        "secret",
        &default_config()
            .replacen("brokers = \"127.0.0.1:9092\"", "brokers = \"127.0.0.1:1\"", 1)
            .replacen("url = \"http://127.0.0.1:8123\"", "url = \"http://127.0.0.1:1\"", 1)
            .replacen(
                "security_protocol = \"plaintext\"",
                "security_protocol = \"sasl_plaintext\"\nsasl_mechanism = \"PLAIN\"\nsasl_username = \"u\"",
                1,
            ),
    );
    let mut child = steward()
        .args(["serve", "--metrics-addr", "127.0.0.1:0", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "debug")
        .env("STEWARD_CLICKHOUSE_PASSWORD", sentinel_ch)
        .env("STEWARD_KAFKA_SASL_PASSWORD", sentinel_kafka)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Long enough to fail to reach both services and log about it.
    std::thread::sleep(Duration::from_secs(4));
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.len() > 100, "it logged something: {text}");
    assert!(
        !text.contains(sentinel_ch),
        "clickhouse password logged: {text}"
    );
    assert!(
        !text.contains(sentinel_kafka),
        "kafka password logged: {text}"
    );
    let _ = std::fs::remove_file(cfg);
}

/// `steward run` writes each enterprise's pre-credit line with its state: a line for blue
/// and green, `REVIEW` for yellow, `INELIGIBLE` for red (`supervision.md`, D44).
#[test]
fn run_writes_the_pre_credit_line_with_the_state() {
    let out = std::env::temp_dir().join(format!("steward-cli-{}-run", std::process::id()));
    let status = steward()
        .args(["run", "--enterprises", "150", "-w", "1", "--output"])
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .expect("run");
    assert!(status.success());
    let text = std::fs::read_to_string(out.join("state.jsonl")).expect("state.jsonl");
    let mut lines_with_credit = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        let (colour, pre) = (v["colour"].as_str(), v["pre_credit"].as_str());
        let line_fen = v["pre_credit_line_fen"].as_i64();
        match colour {
            Some("blue" | "green") => {
                assert_eq!(pre, Some("LINE"), "{line}");
                assert!(line_fen.is_some_and(|x| x >= 0), "{line}");
                lines_with_credit += usize::from(line_fen.is_some_and(|x| x > 0));
            }
            Some("yellow") => assert_eq!((pre, line_fen), (Some("REVIEW"), None), "{line}"),
            Some("red") => assert_eq!((pre, line_fen), (Some("INELIGIBLE"), None), "{line}"),
            _ => assert_eq!((pre, line_fen), (Some(""), None), "{line}"),
        }
    }
    assert!(lines_with_credit > 0, "no enterprise has a credit line");
    let _ = std::fs::remove_dir_all(out);
}

/// One record from the far future is dead-lettered as `future_ingest_time` and moves no
/// clock: the run's `as_of` stays at the other records' time (`events.md`).
#[test]
fn a_record_from_the_future_moves_no_clock() {
    let dir = std::env::temp_dir().join(format!("steward-cli-{}-future", std::process::id()));
    let (input, out) = (dir.join("in"), dir.join("out"));
    std::fs::create_dir_all(&input).expect("input dir");
    let uscc = rules::uscc::with_check("91330802MA2A00017").expect("valid prefix");
    let record = |id: &str, t: &str| {
        serde_json::json!({
            "uscc": uscc, "feed": "LIST", "kind": "LISTED", "event_id": id,
            "list_kind": "ABNORMAL", "source_org": "QZ-AMR", "version": 1,
            "event_time": t, "ingest_time": t,
        })
        .to_string()
    };
    let lines = [
        record("list-1", "2024-01-06T17:44:16Z"),
        record("list-2", "3024-01-06T17:44:16Z"),
    ];
    std::fs::write(input.join("list.jsonl"), lines.join("\n") + "\n").expect("feed");
    let run = steward()
        .args(["run", "-w", "1", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&out)
        .output()
        .expect("run");
    let summary = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{run:?}");
    assert!(summary.contains("future_ingest_time"), "{summary}");
    let state = std::fs::read_to_string(out.join("state.jsonl")).expect("state.jsonl");
    let state: serde_json::Value = serde_json::from_str(state.trim()).expect("one state");
    assert_eq!(state["as_of"], "2024-01-06T17:44:16Z", "{state}");
    let dead = std::fs::read_to_string(out.join("dead_letters.jsonl")).expect("dead letters");
    let dead: serde_json::Value = serde_json::from_str(dead.trim()).expect("one dead letter");
    assert_eq!(dead["reason"], "future_ingest_time", "{dead}");
    assert!(dead["original"]
        .as_str()
        .is_some_and(|o| o.contains("list-2")));
    let _ = std::fs::remove_dir_all(dir);
}
