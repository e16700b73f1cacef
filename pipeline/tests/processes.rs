//! `steward run` in timely cluster mode: two processes on localhost give the same state,
//! colour changes, alerts and dead letters as one process.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

const STEWARD: &str = env!("CARGO_BIN_EXE_steward");

fn steward(args: &[&str]) -> std::process::Child {
    Command::new(STEWARD)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("steward starts")
}

/// Waits for `child` to succeed; its standard output.
fn ok(child: std::process::Child) -> String {
    let out = child.wait_with_output().expect("steward runs");
    assert!(out.status.success(), "steward failed: {}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number on the summary line that starts with `label`.
fn count(summary: &str, label: &str) -> u64 {
    summary
        .lines()
        .find(|l| l.starts_with(label))
        .and_then(|l| l.split_whitespace().nth(label.split_whitespace().count()))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {label} in {summary}"))
}

/// A loopback port that is free now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The lines of the named output files of all directories, as a set; the wall-clock
/// `time` of decoder rejects is left out.
fn lines(dirs: &[&Path], file: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for d in dirs {
        let text = std::fs::read_to_string(d.join(file)).expect("output file");
        for line in text.lines() {
            let mut v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            let lifecycle = v["reason"]
                .as_str()
                .and_then(rules::reject::Reason::parse)
                .is_some_and(rules::reject::Reason::is_lifecycle);
            if v.get("reason").is_some() && !lifecycle {
                v.as_object_mut().map(|o| o.remove("time"));
            }
            out.insert(v.to_string());
        }
    }
    out
}

#[test]
fn two_processes_equal_one() {
    let tmp = std::env::temp_dir().join(format!("steward-processes-{}", std::process::id()));
    let input = tmp.join("in");
    let s = |p: &Path| p.to_str().expect("utf-8 path").to_owned();
    ok(steward(&[
        "generate",
        "--enterprises",
        "80",
        "--seed",
        "3",
        "--years",
        "2",
        "--out",
        &s(&input),
    ]));

    // Lifecycle letters of enterprises spread over both processes: retractions of records
    // that never arrive, dead-lettered `unknown_target` when the hold ends.
    let list = input.join("list.jsonl");
    let text = std::fs::read_to_string(&list).expect("list.jsonl");
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("a LIST record")).expect("json");
    let mut with_letters = text.clone();
    for i in 0..8 {
        let uscc = rules::uscc::with_check(&format!("91330802MA2C{i:05}")).expect("uscc");
        let r = serde_json::json!({
            "uscc": uscc, "feed": "LIST", "kind": "REMOVED", "event_id": format!("gone-{i}"),
            "ref_event_id": format!("never-{i}"), "version": 1,
            "event_time": first["ingest_time"], "ingest_time": first["ingest_time"],
        });
        with_letters.push_str(&format!("{r}\n"));
    }
    std::fs::write(&list, with_letters).expect("list.jsonl");

    let one = tmp.join("one");
    let single = ok(steward(&[
        "run",
        "--input",
        &s(&input),
        "--output",
        &s(&one),
        "-w",
        "2",
    ]));

    let hostfile = tmp.join("hosts");
    std::fs::write(
        &hostfile,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port()),
    )
    .expect("hostfile");
    let (a, b) = (tmp.join("p0"), tmp.join("p1"));
    let run = |p: &str, out: &Path| {
        steward(&[
            "run",
            "--input",
            &s(&input),
            "--output",
            &s(out),
            "-w",
            "1",
            "-n",
            "2",
            "-p",
            p,
            "--hostfile",
            &s(&hostfile),
        ])
    };
    let (p0, p1) = (run("0", &a), run("1", &b));
    let shares = [ok(p0), ok(p1)];

    // Each process counts its share of the records, and the shares add up to the input's
    // counts; process 0 alone prints the input's total (issue 18 item 5).
    for label in ["records read", "records applied", "duplicates", "rejected"] {
        let parts: Vec<u64> = shares.iter().map(|s| count(s, label)).collect();
        assert!(
            parts.iter().all(|n| *n > 0) || label == "rejected",
            "{label}: {parts:?}"
        );
        assert_eq!(
            parts.iter().sum::<u64>(),
            count(&single, label),
            "{label}: {parts:?}\n{}\n{single}",
            shares.join("\n")
        );
    }
    assert_eq!(count(&shares[0], "input:"), count(&single, "records read"));
    assert!(count(&single, "  unknown_target") >= 8, "{single}");
    assert!(
        !shares[1].contains("input:"),
        "the total once: {}",
        shares[1]
    );

    for file in [
        "state.jsonl",
        "colour_changes.jsonl",
        "alerts.jsonl",
        "dead_letters.jsonl",
    ] {
        let single = lines(&[&one], file);
        assert!(
            !single.is_empty() || file == "dead_letters.jsonl",
            "{file} is empty"
        );
        assert_eq!(lines(&[&a, &b], file), single, "{file} differs");
    }
    assert!(!lines(&[&a], "state.jsonl").is_empty() && !lines(&[&b], "state.jsonl").is_empty());
    std::fs::remove_dir_all(&tmp).ok();
}
