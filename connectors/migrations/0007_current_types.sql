-- Credit Steward ClickHouse schema, migration 7: the better types of current ClickHouse,
-- applied only on a server of 20.3 or later (`MIN_SERVER` in src/clickhouse.rs; D57). On
-- ClickHouse 18.16 it is skipped and not recorded, so it applies once the server is upgraded.
-- Every change keeps the wire format: RowBinary writes LowCardinality(String) as String, so
-- the sink's rows are the same on every server. Key columns (ORDER BY) keep their type.
--
-- Columns with few distinct values: LowCardinality(String).
ALTER TABLE {db}.enterprise_state
    MODIFY COLUMN colour LowCardinality(String),
    MODIFY COLUMN score_colour LowCardinality(String),
    MODIFY COLUMN region LowCardinality(String),
    MODIFY COLUMN industry LowCardinality(String),
    MODIFY COLUMN pre_credit LowCardinality(String),
    MODIFY COLUMN rules_version LowCardinality(String),
    MODIFY COLUMN model_version LowCardinality(String)
;
ALTER TABLE {db}.colour_history
    MODIFY COLUMN from_colour LowCardinality(String),
    MODIFY COLUMN to_colour LowCardinality(String),
    MODIFY COLUMN direction LowCardinality(String),
    MODIFY COLUMN score_colour LowCardinality(String),
    MODIFY COLUMN region LowCardinality(String),
    MODIFY COLUMN industry LowCardinality(String),
    MODIFY COLUMN model_version LowCardinality(String),
    MODIFY COLUMN rules_version LowCardinality(String)
;
ALTER TABLE {db}.alerts
    MODIFY COLUMN rule LowCardinality(String),
    MODIFY COLUMN severity LowCardinality(String),
    MODIFY COLUMN state LowCardinality(String),
    MODIFY COLUMN region LowCardinality(String),
    MODIFY COLUMN industry LowCardinality(String)
;
ALTER TABLE {db}.records
    MODIFY COLUMN kind LowCardinality(String),
    MODIFY COLUMN status LowCardinality(String)
;
ALTER TABLE {db}.record_status
    MODIFY COLUMN status LowCardinality(String)
;
ALTER TABLE {db}.inspection_plans
    MODIFY COLUMN colour LowCardinality(String),
    MODIFY COLUMN region LowCardinality(String),
    MODIFY COLUMN industry LowCardinality(String)
;
-- `records` is ordered by record identity; analysts look an enterprise's records up by
-- USCC (v_records WHERE uscc = …): a bloom-filter skip index on it, built for the rows
-- already there too.
ALTER TABLE {db}.records
    ADD INDEX IF NOT EXISTS records_uscc uscc TYPE bloom_filter GRANULARITY 4
;
ALTER TABLE {db}.records
    MATERIALIZE INDEX records_uscc
