//! Kafka with TLS and SASL/SCRAM (issue 19 item 2), on the local broker's `SASL_SSL`
//! listener (127.0.0.1:9094): its certificate is signed by a test CA that
//! `scripts/services.sh` makes with keytool, and its users are SCRAM-SHA-256
//! (`scripts/services.sh kafka-scram-user`). `steward serve` runs the whole pipeline over
//! it; a wrong password and an untrusted certificate stop start-up with a message naming
//! the setting, and the password is never printed.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::serve::{gen, produce, snapshot, wait, wait_exit};
use e2e::{repo_root, spawn_captured, steward_bin, Captured, Namespace};

const USER: &str = "steward-e2e";
const PASSWORD: &str = "scram-pw-5417";

/// The TLS material `scripts/services.sh` made for the broker.
fn tls_dir() -> PathBuf {
    std::env::var_os("STEWARD_CACHE")
        .map_or_else(|| repo_root().join(".cache"), PathBuf::from)
        .join("services/kafka/tls")
}

/// `steward serve` on `ns`'s topics and database through the SASL_SSL listener, trusting
/// `ca` and logging in with `password` (given as `STEWARD_KAFKA_SASL_PASSWORD`).
fn serve_secure(ns: &Namespace, ca: &str, password: &str) -> Captured {
    let text = std::fs::read_to_string(&ns.config).expect("config");
    let brokers = format!("brokers = \"{}\"", ns.cfg.kafka.brokers);
    assert!(text.contains(&brokers), "{text}");
    let secure = text
        .replace(&brokers, "brokers = \"127.0.0.1:9094\"")
        .replace(
            "security_protocol = \"plaintext\"",
            &format!(
                "security_protocol = \"sasl_ssl\"\nsasl_mechanism = \"SCRAM-SHA-256\"\n\
             sasl_username = \"{USER}\"\nssl_ca_location = \"{ca}\""
            ),
        );
    let path = ns.config.with_extension("tls.toml");
    std::fs::write(&path, secure).expect("write config");
    spawn_captured(
        Command::new(steward_bin().expect("steward"))
            .args(["serve", "--config"])
            .arg(&path)
            .args(["--drain-after", "1.5", "--exit-when-drained", "-w", "2"])
            .args(["--metrics-addr", "127.0.0.1:0"])
            .env("STEWARD_KAFKA_SASL_PASSWORD", password)
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

#[test]
fn serve_runs_over_tls_with_scram_and_refuses_bad_credentials_and_certificates() {
    let status = Command::new(repo_root().join("scripts/services.sh"))
        .args(["kafka-scram-user", USER, PASSWORD])
        .status()
        .expect("services.sh kafka-scram-user");
    assert!(status.success(), "creating the SCRAM user: {status}");
    let ca = tls_dir().join("ca.pem").display().to_string();

    // The records arrive over the plain listener; steward reads and writes over TLS.
    let ns = Namespace::new("e2e_tls");
    produce(&ns.cfg, &gen(30));
    wait(serve_secure(&ns, &ca, PASSWORD), Duration::from_secs(300));
    let snap = snapshot(&ns);
    assert!(!snap.changes.is_empty(), "no colour change over TLS");
    assert_eq!(snap.topic_changes.len(), snap.changes.len());

    // A wrong password: start-up stops and names the setting, without the password.
    let wrong = "not-the-pw-8812";
    let mut child = serve_secure(&ns, &ca, wrong);
    let status = wait_exit(&mut child, Duration::from_secs(120));
    let log = log_after_exit(&child, "kafka.sasl_password");
    assert!(!status.success(), "serve accepted a wrong password");
    assert!(log.contains("kafka.sasl_password"), "{log}");
    assert!(!log.contains(wrong), "the password is in the log: {log}");

    // A certificate signed by a CA steward was not told to trust.
    let other = tls_dir().join("other-ca.pem").display().to_string();
    let mut child = serve_secure(&ns, &other, PASSWORD);
    let status = wait_exit(&mut child, Duration::from_secs(120));
    let log = log_after_exit(&child, "kafka.ssl_ca_location");
    assert!(!status.success(), "serve trusted an unknown CA");
    assert!(log.contains("kafka.ssl_ca_location"), "{log}");
}
