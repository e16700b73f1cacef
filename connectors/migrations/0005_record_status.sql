-- Credit Steward ClickHouse schema, migration 5: what became of every accepted record
-- (outputs.md `records`; docs/decisions.md D11). `records` rows are written once, when a
-- record is accepted; its lifecycle status (active, expired, repaired, revoked, superseded,
-- rejected) changes later and is kept here, one row per change, the latest winning.
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
;
-- Every accepted record with its current status: what analysts query.
CREATE VIEW IF NOT EXISTS {db}.v_records AS
SELECT feed, event_id, record_version, digest, uscc, kind, event_time, ingest_time, v, body,
       if(current_status = '', status, current_status) AS status, status_since
FROM {db}.records FINAL
ANY LEFT JOIN
(
    SELECT feed, event_id, record_version, digest, status AS current_status,
           as_of AS status_since
    FROM {db}.record_status FINAL
) USING (feed, event_id, record_version, digest)
