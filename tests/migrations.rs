//! The ClickHouse schema migrations on the real server: a second run changes nothing, and a
//! rerun after a crash between a migration's statements and its `schema_migrations` row
//! succeeds (18.16 has no `ADD COLUMN IF NOT EXISTS`).

use connectors::clickhouse::{applies_on, ClickHouse, MIGRATIONS};
use e2e::Namespace;

#[test]
fn migrations_rerun_after_a_crash_before_they_were_recorded() {
    let ns = Namespace::new("e2e_migrate");
    let ch = ClickHouse::new(&ns.cfg.clickhouse).expect("client");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // The test server is 18.16: the migrations that need a newer one are skipped.
    let all: Vec<u32> = MIGRATIONS
        .iter()
        .map(|m| m.0)
        .filter(|v| applies_on(*v, (18, 16)))
        .collect();
    assert!(
        all.len() < MIGRATIONS.len(),
        "a migration is for newer servers"
    );
    assert_eq!(rt.block_on(ch.migrate()).expect("first run"), all);
    assert!(rt.block_on(ch.migrate()).expect("second run").is_empty());
    // As if the process had died after each migration's statements, before recording it.
    rt.block_on(ch.execute(&format!("DROP TABLE {}.schema_migrations", ns.name)))
        .expect("drop schema_migrations");
    assert_eq!(rt.block_on(ch.migrate()).expect("rerun"), all);
    let flags: u64 = rt
        .block_on(
            ns.clickhouse()
                .query(
                    "SELECT count() FROM system.columns WHERE database = ? \
                     AND table = 'enterprise_state' AND name = 'review_flags'",
                )
                .bind(&ns.name)
                .fetch_one(),
        )
        .expect("system.columns");
    assert_eq!(flags, 1, "the ALTER's column exists once");
}

/// A database that applied migration 5's first text (whose `v_records` current ClickHouse
/// refuses) is accepted, and migration 6 gives it the views of today (D57).
#[test]
fn a_database_with_the_first_text_of_migration_5_is_brought_up_to_date() {
    use sha2::{Digest, Sha256};
    let ns = Namespace::new("e2e_migrate_first5");
    let db = &ns.name;
    let first = include_str!("fixtures/0005_record_status.first.sql");
    let checksum = hex::encode(Sha256::digest(first.as_bytes()));
    assert!(
        connectors::clickhouse::EARLIER_CHECKSUMS.contains(&(5, checksum.as_str())),
        "the fixture is migration 5's first text"
    );
    // The schema as a program of stop 24 left it: migrations 1-4, then 5's first text.
    let mut applied = Vec::new();
    for (version, name, text) in MIGRATIONS.iter().filter(|m| m.0 <= 5) {
        let text = if *version == 5 { first } else { text };
        for s in connectors::clickhouse::statements(text, db) {
            e2e::clickhouse_http(&s, "").expect("an earlier migration");
        }
        let sum = hex::encode(Sha256::digest(text.as_bytes()));
        let row = serde_json::json!({
            "version": version, "name": name, "checksum": sum, "applied_at": 0,
        });
        applied.push(row.to_string());
    }
    e2e::clickhouse_http(&connectors::clickhouse::schema_migrations_table(db), "")
        .expect("schema_migrations");
    e2e::clickhouse_http(
        &format!("INSERT INTO {db}.schema_migrations FORMAT JSONEachRow"),
        &applied.join("\n"),
    )
    .expect("record the earlier migrations");

    let ch = ClickHouse::new(&ns.cfg.clickhouse).expect("client");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let later: Vec<u32> = MIGRATIONS
        .iter()
        .map(|m| m.0)
        .filter(|v| *v > 5 && applies_on(*v, (18, 16)))
        .collect();
    assert_eq!(rt.block_on(ch.migrate()).expect("migrate"), later);
    let view = e2e::clickhouse_http(
        &format!("SHOW CREATE TABLE {db}.v_records FORMAT TSVRaw"),
        "",
    )
    .expect("v_records");
    assert!(view.contains("latest_status"), "migration 6's view: {view}");
    e2e::clickhouse_http(
        &format!("SELECT review_flags FROM {db}.v_current_state LIMIT 1"),
        "",
    )
    .expect("v_current_state has migration 3's columns");
}
