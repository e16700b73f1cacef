//! TLS and authentication end to end (issue 19 item 2), on the local services:
//! - Kafka's `SASL_SSL` listener (127.0.0.1:9094), whose certificate a test CA signed
//!   (`scripts/services.sh` makes it with keytool), with SCRAM-SHA-256 users
//!   (`scripts/services.sh kafka-scram-user`);
//! - ClickHouse's `https_port` (`STEWARD_CLICKHOUSE_HTTPS_URL`, default
//!   `https://127.0.0.1:8443`) with a self-signed certificate (made with openssl) and the
//!   password login `steward_tls` (`scripts/services/clickhouse/users.xml`).
//!
//! `steward serve` runs the whole pipeline over each; a wrong password and an untrusted
//! certificate stop start-up with a message naming the setting, and the password is never
//! printed.

use std::process::Command;
use std::time::{Duration, Instant};

use e2e::serve::{gen, produce, snapshot, wait, wait_exit};
use e2e::{repo_root, service_dir, spawn_captured, steward_bin, Captured, Namespace};

/// The TLS material `scripts/services.sh` made for `service`.
fn tls_file(service: &str, file: &str) -> String {
    service_dir(service)
        .join("tls")
        .join(file)
        .display()
        .to_string()
}

/// `steward serve` on `ns`'s topics and database with the configuration text changed by
/// each `(from, to)` of `edits` (each must apply), and the password variable `secret` set.
fn serve_edited(ns: &Namespace, edits: &[(String, String)], secret: (&str, &str)) -> Captured {
    let mut text = std::fs::read_to_string(&ns.config).expect("config");
    for (from, to) in edits {
        assert!(text.contains(from.as_str()), "{from} not in {text}");
        text = text.replace(from.as_str(), to);
    }
    let path = ns.config.with_extension("tls.toml");
    std::fs::write(&path, text).expect("write config");
    spawn_captured(
        Command::new(steward_bin().expect("steward"))
            .args(["serve", "--config"])
            .arg(&path)
            .args(["--drain-after", "1.5", "--exit-when-drained", "-w", "2"])
            .args(["--metrics-addr", "127.0.0.1:0"])
            .env(secret.0, secret.1)
            .env("RUST_LOG", "warn,pipeline=info")
            .stdout(std::process::Stdio::null()),
    )
    .expect("spawn steward serve")
}

/// The child's log once it has exited (its reader thread may still be draining the pipe).
fn log_after_exit(child: &Captured, expect: &str) -> String {
    let started = Instant::now();
    loop {
        let text = child.lines().join("\n");
        if text.contains(expect) || started.elapsed() > Duration::from_secs(5) {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `serve` with `password` and `ca` (through `start`) and checks that it stops at
/// start-up, naming `setting`, without printing the password.
fn refused(start: impl Fn(&str, &str) -> Captured, ca: &str, password: &str, setting: &str) {
    let mut child = start(ca, password);
    let status = wait_exit(&mut child, Duration::from_secs(120));
    let log = log_after_exit(&child, setting);
    assert!(!status.success(), "serve started with {setting} wrong");
    assert!(log.contains(setting), "{log}");
    assert!(!log.contains(password), "the password is in the log: {log}");
}

/// A full run through `start(ns, ca, password)` with the first of `service`'s certificates
/// `files` as CA, then a wrong password and the second certificate as CA, which must stop
/// start-up naming `settings` (the password's, the CA's).
fn runs_and_refuses(
    (prefix, service, files): (&str, &str, [&str; 2]),
    start: impl Fn(&Namespace, &str, &str) -> Captured,
    password: &str,
    settings: [&str; 2],
) {
    let [ca, other_ca] = files.map(|f| tls_file(service, f));
    // The records arrive over the plain listener; steward works over TLS.
    let ns = Namespace::new(prefix);
    produce(&ns.cfg, &gen(30));
    wait(start(&ns, &ca, password), Duration::from_secs(300));
    let snap = snapshot(&ns);
    assert!(!snap.changes.is_empty(), "no colour change over TLS");
    assert_eq!(snap.topic_changes.len(), snap.changes.len());

    let start = |ca: &str, pw: &str| start(&ns, ca, pw);
    refused(start, &ca, "not-the-pw-8812", settings[0]);
    refused(start, &other_ca, password, settings[1]);
}

#[test]
fn serve_runs_over_kafka_tls_with_scram_and_refuses_bad_credentials_and_certificates() {
    const USER: &str = "steward-e2e";
    const PASSWORD: &str = "scram-pw-5417";
    let status = Command::new(repo_root().join("scripts/services.sh"))
        .args(["kafka-scram-user", USER, PASSWORD])
        .status()
        .expect("services.sh kafka-scram-user");
    assert!(status.success(), "creating the SCRAM user: {status}");
    let start = |ns: &Namespace, ca: &str, password: &str| {
        let edits = [
            (
                format!("brokers = \"{}\"", ns.cfg.kafka.brokers),
                "brokers = \"127.0.0.1:9094\"".to_owned(),
            ),
            (
                "security_protocol = \"plaintext\"".to_owned(),
                format!(
                    "security_protocol = \"sasl_ssl\"\nsasl_mechanism = \"SCRAM-SHA-256\"\n\
                     sasl_username = \"{USER}\"\nssl_ca_location = \"{ca}\""
                ),
            ),
        ];
        serve_edited(ns, &edits, ("STEWARD_KAFKA_SASL_PASSWORD", password))
    };
    runs_and_refuses(
        ("e2e_tls", "kafka", ["ca.pem", "other-ca.pem"]),
        start,
        PASSWORD,
        ["kafka.sasl_password", "kafka.ssl_ca_location"],
    );
}

#[test]
fn serve_writes_to_clickhouse_over_https_with_a_password_and_refuses_bad_ones() {
    let url = std::env::var("STEWARD_CLICKHOUSE_HTTPS_URL")
        .unwrap_or_else(|_| "https://127.0.0.1:8443".to_owned());
    let start = |ns: &Namespace, ca: &str, password: &str| {
        let edits = [
            (
                format!("url = \"{}\"", ns.cfg.clickhouse.url),
                format!("url = \"{url}\"\nca_location = \"{ca}\""),
            ),
            (
                "user = \"default\"".to_owned(),
                "user = \"steward_tls\"".to_owned(),
            ),
        ];
        serve_edited(ns, &edits, ("STEWARD_CLICKHOUSE_PASSWORD", password))
    };
    runs_and_refuses(
        ("e2e_https", "clickhouse", ["server.pem", "other.pem"]),
        start,
        "ch-tls-pw-6203",
        ["clickhouse.password", "clickhouse.ca_location"],
    );
}
