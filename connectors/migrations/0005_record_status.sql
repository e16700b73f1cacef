-- Credit Steward ClickHouse schema, migration 5: what became of every accepted record
-- (outputs.md `records`; docs/decisions.md D11). `records` rows are written once, when a
-- record is accepted; its lifecycle status (active, expired, repaired, revoked, superseded,
-- rejected) changes later and is kept here, one row per change, the latest winning.
-- The view `v_records` over it is made by migration 6 (this migration's first text also
-- made it, in a form current ClickHouse refuses; a database that applied that text is
-- accepted, see `EARLIER_CHECKSUMS` in src/clickhouse.rs, and migration 6 replaces its view).
CREATE TABLE IF NOT EXISTS {db}.record_status
(
    feed String,
    event_id String,
    record_version UInt32,
    digest String,
    uscc String,
    status String,
    as_of DateTime,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (feed, event_id, record_version, digest)
