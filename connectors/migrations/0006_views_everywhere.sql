-- Credit Steward ClickHouse schema, migration 6: the analysts' views that current ClickHouse
-- (24.x, 26.x) refused or read wrongly, made again in a form valid on 18.16 and current
-- releases (docs/decisions.md D57). Each view is dropped and made again, so a rerun after a
-- crash between the statements ends in the same place. (`DROP TABLE` drops a view on every
-- version; `DROP VIEW` is newer than 18.16.)
--
-- `v_current_state` names its columns: current ClickHouse fixes a view's columns when it is
-- made, so the `SELECT *` of migration 2 never showed the columns migration 3 added.
DROP TABLE IF EXISTS {db}.v_current_state
;
CREATE VIEW IF NOT EXISTS {db}.v_current_state AS
SELECT uscc, as_of, colour, score_colour, s, p, m, q, r, triggers, level1, level2,
       reason_indicators, reason_contributions, reasons, region, industry, pre_credit,
       pre_credit_line, rules_version, model_version, review_flags, review_flag_repairs,
       deleted, version
FROM {db}.enterprise_state FINAL
WHERE deleted = 0
;
-- Alert counts per day, rule and state; days are cut in Asia/Shanghai (the credit centre's
-- day), not in the server's time zone.
DROP TABLE IF EXISTS {db}.v_alert_counts
;
CREATE VIEW IF NOT EXISTS {db}.v_alert_counts AS
SELECT toDate(as_of, 'Asia/Shanghai') AS day, rule, severity, state, count() AS alerts
FROM {db}.alerts
GROUP BY day, rule, severity, state
;
-- Every accepted record with its current status: what analysts query. The joined subquery
-- has an alias (current ClickHouse requires one: joined_subquery_requires_alias).
DROP TABLE IF EXISTS {db}.v_records
;
CREATE VIEW IF NOT EXISTS {db}.v_records AS
SELECT feed, event_id, record_version, digest, uscc, kind, event_time, ingest_time, v, body,
       if(current_status = '', status, current_status) AS status, status_since
FROM {db}.records FINAL
ANY LEFT JOIN
(
    SELECT feed, event_id, record_version, digest, status AS current_status,
           as_of AS status_since
    FROM {db}.record_status FINAL
) AS latest_status USING (feed, event_id, record_version, digest)
