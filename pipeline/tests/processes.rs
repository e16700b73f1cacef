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
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("steward starts")
}

fn ok(mut child: std::process::Child) {
    let status = child.wait().expect("steward runs");
    assert!(status.success(), "steward failed: {status}");
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

    let one = tmp.join("one");
    ok(steward(&[
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
    ok(p0);
    ok(p1);

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
