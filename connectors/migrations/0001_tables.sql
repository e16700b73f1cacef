-- Credit Steward ClickHouse schema, migration 1: the output tables (outputs.md).
-- `{db}` is replaced by the configured database. Every statement is idempotent
-- (IF NOT EXISTS) and valid on ClickHouse 18.16 and current releases: no LowCardinality,
-- no DateTime64, no Map. Times are DateTime in UTC; logical times are visibility times.
-- Statements are separated by lines holding only `;`.

CREATE DATABASE IF NOT EXISTS {db}
;
-- Latest state per enterprise; a replay writes the same final version (the logical time).
CREATE TABLE IF NOT EXISTS {db}.enterprise_state
(
    uscc String,
    as_of DateTime,
    colour String,
    score_colour String,
    s Nullable(Float64),
    p Nullable(Float64),
    m Float64,
    q Nullable(Float64),
    r Float64,
    triggers Array(String),
    level1 Array(Float64),
    level2 Array(Float64),
    reason_indicators Array(String),
    reason_contributions Array(Float64),
    reasons String,
    region String,
    industry String,
    pre_credit String,
    pre_credit_line Nullable(Float64),
    rules_version String,
    model_version String,
    deleted UInt8,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY uscc
;
-- Latest 49 level-3 values per enterprise, in catalogue order (see indicator_catalogue).
CREATE TABLE IF NOT EXISTS {db}.indicator_values
(
    uscc String,
    as_of DateTime,
    level3 Array(Float64),
    rules_version String,
    deleted UInt8,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY uscc
;
-- The catalogue's indicators, one row per (rules_version, row), for joins and ARRAY JOIN;
-- group_weight is the weight of the level-2 group in R (level-1 weight x level-2 weight).
CREATE TABLE IF NOT EXISTS {db}.indicator_catalogue
(
    rules_version String,
    row UInt8,
    indicator String,
    name String,
    level2 String,
    level1 String,
    group_weight Float64
)
ENGINE = ReplacingMergeTree
ORDER BY (rules_version, row)
;
-- Every change of published colour with its explanation.
CREATE TABLE IF NOT EXISTS {db}.colour_history
(
    change_id String,
    uscc String,
    as_of DateTime,
    from_colour String,
    to_colour String,
    direction String,
    score Nullable(Float64),
    score_colour String,
    triggers Array(String),
    reason_indicators Array(String),
    reason_contributions Array(Float64),
    reasons String,
    region String,
    industry String,
    model_version String,
    rules_version String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(as_of)
ORDER BY (uscc, as_of, change_id)
;
-- Every alert state change.
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    alert_id String,
    uscc String,
    rule String,
    severity String,
    state String,
    as_of DateTime,
    detail String,
    region String,
    industry String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(as_of)
ORDER BY (uscc, as_of, alert_id)
;
-- Every accepted input record with its visibility time `v` (semantics.md §1).
CREATE TABLE IF NOT EXISTS {db}.records
(
    feed String,
    event_id String,
    record_version UInt32,
    uscc String,
    kind String,
    event_time DateTime,
    ingest_time DateTime,
    v DateTime,
    digest String,
    body String,
    status String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (feed, event_id, record_version, digest)
;
-- Every rejected record: original bytes, where it came from, and why.
CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    letter_id String,
    original String,
    source_topic String,
    partition Int32,
    offset Int64,
    reason String,
    message String,
    time DateTime
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (reason, time, letter_id)
;
-- Inspection selections: one row per selected enterprise.
CREATE TABLE IF NOT EXISTS {db}.inspection_plans
(
    campaign_id String,
    seed UInt64,
    snapshot DateTime,
    uscc String,
    colour String,
    score Nullable(Float64),
    u Float64,
    probability Float64,
    reason String,
    reasons String,
    region String,
    industry String
)
ENGINE = MergeTree
ORDER BY (campaign_id, uscc)
;
-- Each campaign's population per colour, for coverage.
CREATE TABLE IF NOT EXISTS {db}.inspection_campaigns
(
    campaign_id String,
    seed UInt64,
    snapshot DateTime,
    colour String,
    population UInt64,
    selected UInt64
)
ENGINE = MergeTree
ORDER BY (campaign_id, colour)
;
-- Commitment verification decisions and results.
CREATE TABLE IF NOT EXISTS {db}.commitment_checks
(
    check_id String,
    commitment_id String,
    uscc String,
    as_of DateTime,
    method String,
    result String,
    detail String
)
ENGINE = MergeTree
ORDER BY (uscc, commitment_id, as_of, check_id)
