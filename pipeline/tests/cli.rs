//! The `steward` binary: `check-config` names the bad field and exits non-zero; secrets never
//! reach the logs; `run` writes the pre-credit line with the state; bad input and layouts
//! are refused with a message naming them; redirected logs are plain text or JSON.

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
        ("max_rows = 100000", "max_rows = 0", "batch.max_rows"),
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
            _ => assert!(
                v.get("pre_credit").is_some_and(|p| p.is_null()) && line_fen.is_none(),
                "colour none: pre_credit null (item 8): {line}"
            ),
        }
        // Values named by the catalogue's codes and ids (item 8).
        let named = |level: &str, n: usize, key: &str| {
            let o = v[level]
                .as_object()
                .unwrap_or_else(|| panic!("{level}: {line}"));
            assert_eq!(o.len(), n, "{level}");
            assert!(o[key].is_number(), "{level}.{key}: {line}");
        };
        named("level1", 8, "A");
        named("level2", 19, "A1");
        named("level3", 49, "pen_general_active");
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
    // One time format: RFC 3339 on every output a person reads (issue 18 items 6 and 8).
    assert!(
        summary.contains("data as of 2024-01-06T17:44:16Z (the input's latest visibility time"),
        "{summary}"
    );
    let changes = std::fs::read_to_string(out.join("colour_changes.jsonl")).expect("changes");
    let alerts = std::fs::read_to_string(out.join("alerts.jsonl")).expect("alerts");
    assert!(
        !changes.is_empty() && !alerts.is_empty(),
        "{changes}{alerts}"
    );
    for line in changes.lines().chain(alerts.lines()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        assert_eq!(v["as_of"], "2024-01-06T17:44:16Z", "{line}");
    }
    let dead = std::fs::read_to_string(out.join("dead_letters.jsonl")).expect("dead letters");
    let dead: serde_json::Value = serde_json::from_str(dead.trim()).expect("one dead letter");
    assert_eq!(dead["reason"], "future_ingest_time", "{dead}");
    assert!(dead["original"]
        .as_str()
        .is_some_and(|o| o.contains("list-2")));
    let _ = std::fs::remove_dir_all(dir);
}

/// `--version` names the tool and `--help` opens with what it does (issue 18 item 9).
#[test]
fn help_and_version_name_the_tool() {
    let version = steward().arg("--version").output().expect("run");
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("steward {}", env!("CARGO_PKG_VERSION"))
    );
    let help = steward().arg("--help").output().expect("run");
    let help = String::from_utf8_lossy(&help.stdout);
    let first = help.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("Credit Steward: keeps every enterprise's 49 credit indicators"),
        "{help}"
    );
    assert!(
        help.contains("Usage: steward [OPTIONS] <COMMAND>"),
        "{help}"
    );
    assert!(help.contains("--log-format"), "{help}");
}

/// A fresh directory under the temp dir for one test, removed when it is dropped (also
/// when the test fails).
fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("steward-cli-{name}-"))
        .tempdir()
        .expect("scratch dir")
}

/// `steward run --input IN --output OUT`: (success, stdout, stderr).
fn run_on(input: &std::path::Path, out: &std::path::Path) -> (bool, String, String) {
    let run = steward()
        .args(["run", "-w", "1", "--input"])
        .arg(input)
        .arg("--output")
        .arg(out)
        .output()
        .expect("run");
    (
        run.status.success(),
        String::from_utf8_lossy(&run.stdout).into_owned(),
        String::from_utf8_lossy(&run.stderr).into_owned(),
    )
}

/// One valid LIST record.
fn list_record(id: &str) -> String {
    let uscc = rules::uscc::with_check("91330802MA2A00017").expect("valid prefix");
    serde_json::json!({
        "uscc": uscc, "feed": "LIST", "kind": "LISTED", "event_id": id,
        "list_kind": "ABNORMAL", "source_org": "QZ-AMR", "version": 1,
        "event_time": "2024-01-06T17:44:16Z", "ingest_time": "2024-01-06T17:44:16Z",
    })
    .to_string()
}

/// Input errors say what is wrong, and a failed run leaves the output directory as it was
/// (issue 18 item 5).
#[test]
fn input_errors_say_what_is_wrong_and_leave_the_output_alone() {
    let tmp = scratch("input-errors");
    let dir = tmp.path();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).expect("out");
    std::fs::write(out.join("state.jsonl"), "old state\n").expect("old state");
    std::fs::write(out.join("dead_letters.jsonl"), "old letters\n").expect("old letters");
    let untouched = |case: &str| {
        let mut names: Vec<_> = std::fs::read_dir(&out)
            .expect("out")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["dead_letters.jsonl", "state.jsonl"], "{case}");
        let letters = std::fs::read_to_string(out.join("dead_letters.jsonl")).expect("read");
        assert_eq!(letters, "old letters\n", "{case}");
    };

    let (ok, _, err) = run_on(&dir.join("missing"), &out);
    assert!(
        !ok && err.contains("input directory") && err.contains("missing"),
        "{err}"
    );
    untouched("missing");

    let file = dir.join("a-file");
    std::fs::write(&file, "").expect("file");
    let (ok, _, err) = run_on(&file, &out);
    assert!(!ok && err.contains("is not a directory"), "{err}");
    untouched("a file");

    let upper = dir.join("upper");
    std::fs::create_dir_all(&upper).expect("dir");
    std::fs::write(upper.join("PEN.jsonl"), list_record("x")).expect("feed");
    let (ok, _, err) = run_on(&upper, &out);
    assert!(!ok, "{err}");
    assert!(err.contains("pen.jsonl, "), "expected names missing: {err}");
    assert!(
        err.contains("found only PEN.jsonl"),
        "ignored file missing: {err}"
    );
    untouched("upper case");

    let nested = dir.join("nested");
    std::fs::create_dir_all(nested.join("list.jsonl")).expect("dir as feed");
    let (ok, _, err) = run_on(&nested, &out);
    assert!(!ok && err.contains("list.jsonl is a directory"), "{err}");
    untouched("a feed path that is a directory");
}

/// A byte-order mark at the start of a feed file is accepted, files that are not feeds are
/// named in a warning, and a successful run replaces the old outputs (issue 18 item 5).
#[test]
fn a_byte_order_mark_is_accepted_and_other_files_are_named() {
    let tmp = scratch("bom");
    let dir = tmp.path();
    let (input, out) = (dir.join("in"), dir.join("out"));
    std::fs::create_dir_all(&input).expect("input");
    std::fs::create_dir_all(&out).expect("out");
    std::fs::write(out.join("state.jsonl"), "old state\n").expect("old state");
    let feed = format!("\u{feff}{}\n{}\n", list_record("a"), list_record("b"));
    std::fs::write(input.join("list.jsonl"), feed).expect("feed");
    std::fs::write(input.join("notes.txt"), "not a feed").expect("notes");
    let (ok, summary, err) = run_on(&input, &out);
    assert!(ok, "{err}");
    assert!(err.contains("ignoring notes.txt"), "{err}");
    assert!(
        summary.contains("records read               2"),
        "{summary}"
    );
    let letters = std::fs::read_to_string(out.join("dead_letters.jsonl")).expect("letters");
    assert_eq!(letters, "", "the first line was rejected");
    let state = std::fs::read_to_string(out.join("state.jsonl")).expect("state");
    assert!(state.contains("\"uscc\""), "old state kept: {state}");
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .expect("out")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
}

/// A LIST record of the enterprise with check-code prefix `prefix`.
fn list_of(prefix: &str, fields: serde_json::Value) -> String {
    let uscc = rules::uscc::with_check(prefix).expect("valid prefix");
    let mut v = serde_json::json!({
        "uscc": uscc, "feed": "LIST", "kind": "LISTED", "list_kind": "ABNORMAL",
        "source_org": "QZ-AMR", "version": 1,
    });
    for (k, x) in fields.as_object().expect("object") {
        v[k] = x.clone();
    }
    v.to_string()
}

/// The summary's count on the line starting with `label`.
fn count(summary: &str, label: &str) -> u64 {
    summary
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {label} in {summary}"))
}

/// Runs `lines` as `list.jsonl`: the summary and the scratch directory, whose `out` holds
/// the output.
fn run_list(name: &str, lines: &[String]) -> (String, tempfile::TempDir) {
    let tmp = scratch(name);
    let (input, out) = (tmp.path().join("in"), tmp.path().join("out"));
    std::fs::create_dir_all(&input).expect("input");
    std::fs::write(input.join("list.jsonl"), lines.join("\n") + "\n").expect("feed");
    let (ok, summary, err) = run_on(&input, &out);
    assert!(ok, "{err}");
    let (read, applied) = (
        count(&summary, "records read"),
        count(&summary, "records applied"),
    );
    let (dup, rejected) = (count(&summary, "duplicates"), count(&summary, "rejected"));
    assert_eq!(
        read,
        applied + dup + rejected,
        "counts do not balance: {summary}"
    );
    (summary, tmp)
}

/// A retraction of an unknown target is rejected once the hold ends: counted as rejected,
/// and its enterprise, known through it alone, has no state, colour change or alert (issue
/// 18 items 1 and 3).
#[test]
fn a_dead_lettered_record_is_counted_rejected_and_leaves_no_state() {
    let t0 = "2024-01-06T10:00:00Z";
    let later = "2024-01-20T10:00:00Z"; // after the 7-day hold
    let lines = [
        list_of(
            "91330802MA2A00017",
            serde_json::json!({"kind": "REMOVED", "event_id": "rm-1", "ref_event_id": "nowhere",
                               "event_time": t0, "ingest_time": t0}),
        ),
        list_of(
            "91330802MA2A00025",
            serde_json::json!({"event_id": "l-2", "event_time": later, "ingest_time": later}),
        ),
    ];
    let (summary, tmp) = run_list("unknown-target", &lines);
    let out = tmp.path().join("out");
    assert_eq!(count(&summary, "records read"), 2);
    assert_eq!(count(&summary, "records applied"), 1, "{summary}");
    assert_eq!(count(&summary, "unknown_target"), 1, "{summary}");
    let ghost = rules::uscc::with_check("91330802MA2A00017").expect("valid prefix");
    for file in ["state.jsonl", "colour_changes.jsonl", "alerts.jsonl"] {
        let text = std::fs::read_to_string(out.join(file)).expect(file);
        assert!(
            !text.contains(&ghost),
            "{file} has the rejected enterprise: {text}"
        );
    }
    let state = std::fs::read_to_string(out.join("state.jsonl")).expect("state");
    assert_eq!(state.lines().count(), 1, "{state}");
    // The letter says where the record was read, with its exact bytes, and why (item 7).
    let letters = std::fs::read_to_string(out.join("dead_letters.jsonl")).expect("letters");
    let letter: serde_json::Value = serde_json::from_str(letters.trim()).expect("one letter");
    assert_eq!(letter["reason"], "unknown_target", "{letter}");
    assert_eq!(
        (&letter["partition"], &letter["offset"]),
        (&serde_json::json!(0), &serde_json::json!(0)),
        "line 0 of list.jsonl: {letter}"
    );
    assert_eq!(letter["original"], lines[0].as_str(), "{letter}");
    let message = letter["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("LIST rm-1 version 1: ") && message.contains("hold"),
        "{message}"
    );
    assert_eq!(letter["time"], "2024-01-13T10:00:00Z", "the hold's end");
}

/// A decoder reject in file mode keeps the line's exact bytes (base64 beside the lossy text)
/// and says where it was read: partition 0 of the feed, offset = line index (item 7).
#[test]
fn a_decoder_letter_keeps_the_exact_bytes_and_its_line() {
    use base64::Engine as _;
    let tmp = scratch("exact-bytes");
    let dir = tmp.path();
    let (input, out) = (dir.join("in"), dir.join("out"));
    std::fs::create_dir_all(&input).expect("input");
    let bad: &[u8] = b"{\"uscc\": \"\xff\xfe\"}";
    let mut file = list_record("l-1").into_bytes();
    file.push(b'\n');
    file.extend_from_slice(bad);
    file.push(b'\n');
    std::fs::write(input.join("list.jsonl"), file).expect("feed");
    let (ok, _, err) = run_on(&input, &out);
    assert!(ok, "{err}");
    let letters = std::fs::read_to_string(out.join("dead_letters.jsonl")).expect("letters");
    let letter: serde_json::Value = serde_json::from_str(letters.trim()).expect("one letter");
    let exact = base64::engine::general_purpose::STANDARD.encode(bad);
    assert_eq!(letter["original_base64"], exact.as_str(), "{letter}");
    assert_eq!(letter["source_topic"], "credit.in.list", "{letter}");
    assert_eq!(
        (&letter["partition"], &letter["offset"]),
        (&serde_json::json!(0), &serde_json::json!(1)),
        "{letter}"
    );
}

/// Two records with the same `(feed, event_id)` and version but other bytes: the one with
/// the smaller SHA-256 is applied and the other counted a duplicate, in either order and
/// with redeliveries (issue 18 item 2, `semantics.md` §2).
#[test]
fn an_equal_version_with_other_bytes_is_a_duplicate_in_any_order() {
    let t = "2024-01-06T10:00:00Z";
    let at = |org: &str| {
        list_of(
            "91330802MA2A00017",
            serde_json::json!({"event_id": "same", "source_org": org, "event_time": t,
                               "ingest_time": t}),
        )
    };
    let (a, b) = (at("QZ-AMR"), at("QZ-TAX"));
    let mut states = Vec::new();
    for (i, lines) in [
        vec![a.clone(), b.clone()],
        vec![b.clone(), a.clone()],
        vec![a.clone(), b.clone(), a.clone(), b.clone()],
    ]
    .iter()
    .enumerate()
    {
        let (summary, tmp) = run_list(&format!("tie-{i}"), lines);
        let out = tmp.path().join("out");
        let read = lines.len() as u64;
        assert_eq!(count(&summary, "records applied"), 1, "{summary}");
        assert_eq!(count(&summary, "duplicates"), read - 1, "{summary}");
        states.push(std::fs::read_to_string(out.join("state.jsonl")).expect("state"));
    }
    assert!(states.windows(2).all(|w| w[0] == w[1]), "{states:?}");
}

/// `-w 0` and `-n 0` are refused with a message naming the option (issue 19 item 7).
#[test]
fn zero_workers_or_processes_are_refused() {
    for (args, option) in [(["-w", "0"], "--workers"), (["-n", "0"], "--processes")] {
        let out = steward()
            .args(["run", "--enterprises", "5"])
            .args(args)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(err.contains(option), "{option} not named in: {err}");
    }
}

/// Logs redirected to a file or a pipe carry no colour escapes, with or without `NO_COLOR`;
/// `--log-format json` writes one JSON object per line; the metrics endpoint is announced
/// once (issue 19 item 7).
#[test]
fn redirected_logs_are_plain_text_or_json_and_say_things_once() {
    let tmp = scratch("logs");
    let dir = tmp.path();
    let run = |format: &str, no_color: Option<&str>| {
        let mut cmd = steward();
        cmd.args([
            "--log-format",
            format,
            "run",
            "--enterprises",
            "20",
            "-w",
            "1",
        ])
        .args(["--metrics-addr", "127.0.0.1:0", "--output"])
        .arg(dir.join(format))
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null());
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let out = cmd.output().expect("run");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stderr).expect("utf-8 log")
    };
    for no_color in [None, Some("1")] {
        let text = run("text", no_color);
        assert!(
            !text.contains('\u{1b}'),
            "colour escapes in a redirected log:\n{text}"
        );
        assert_eq!(
            text.matches("serving /metrics").count(),
            1,
            "announced once:\n{text}"
        );
    }
    let json = run("json", None);
    let lines: Vec<serde_json::Value> = json
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty(), "no JSON log lines:\n{json}");
    assert!(lines
        .iter()
        .all(|l| l["level"].is_string() && l["fields"].is_object()));
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("serving /metrics")))
            .count(),
        1,
        "{json}"
    );
}
