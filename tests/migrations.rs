//! The ClickHouse schema migrations on the real server: a second run changes nothing, and a
//! rerun after a crash between a migration's statements and its `schema_migrations` row
//! succeeds (18.16 has no `ADD COLUMN IF NOT EXISTS`).

use connectors::clickhouse::{ClickHouse, MIGRATIONS};
use e2e::Namespace;

#[test]
fn migrations_rerun_after_a_crash_before_they_were_recorded() {
    let ns = Namespace::new("e2e_migrate");
    let ch = ClickHouse::new(&ns.cfg.clickhouse);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let all: Vec<u32> = MIGRATIONS.iter().map(|m| m.0).collect();
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
