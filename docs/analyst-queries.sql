-- Credit Steward: example queries for analysts (read-only `analyst` account, database
-- `credit`). Each runs on ClickHouse 18.16 and on current ClickHouse; the test
-- `tests/clickhouse_panels.rs` runs every one on both. Times are DateTime in UTC; days are
-- cut in Asia/Shanghai with toDate(t, 'Asia/Shanghai'). Statements are separated by lines
-- holding only `;`.

-- Enterprises by colour in each region, now.
SELECT region, colour, count() AS enterprises
FROM credit.v_current_state
GROUP BY region, colour
ORDER BY region, colour
;
-- Enterprises with review flags on their repairs, by colour (D47).
SELECT colour, countIf(notEmpty(review_flags)) AS with_review_flags, count() AS enterprises
FROM credit.v_current_state
GROUP BY colour
ORDER BY colour
;
-- Colour changes per Shanghai day over the last 30 days of data, worsened against improved.
SELECT toDate(as_of, 'Asia/Shanghai') AS day,
       countIf(direction = 'worsened') AS worsened,
       countIf(direction = 'improved') AS improved
FROM credit.colour_history
WHERE as_of >= (SELECT max(as_of) FROM credit.colour_history) - 30 * 86400
GROUP BY day
ORDER BY day
;
-- The latest enterprises that turned red, with the indicators behind it.
SELECT as_of, uscc, from_colour, score, triggers, reason_indicators
FROM credit.v_worsened
WHERE to_colour = 'red'
ORDER BY as_of DESC, uscc
LIMIT 50
;
-- Which indicators stand behind the red enterprises.
SELECT indicator, enterprises, round(total_contribution, 2) AS total_contribution
FROM credit.v_top_indicators_red
ORDER BY enterprises DESC, indicator
LIMIT 10
;
-- Firing alerts per Shanghai day and rule.
SELECT day, rule, severity, sum(alerts) AS alerts
FROM credit.v_alert_counts
WHERE state = 'firing'
GROUP BY day, rule, severity
ORDER BY day DESC, alerts DESC, rule
LIMIT 100
;
-- Records whose effect ended or that were replaced, latest first, with their status.
SELECT uscc, feed, event_id, kind, status, status_since
FROM credit.v_records
WHERE status != 'active'
ORDER BY status_since DESC, feed, event_id
LIMIT 100
;
-- Inspection coverage of the latest campaign, by colour.
SELECT campaign_id, colour, population, selected, round(rate, 3) AS rate
FROM credit.v_plan_coverage
ORDER BY campaign_id DESC, colour
LIMIT 20
