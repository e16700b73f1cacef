-- Migration 2: supervision views for analysts (outputs.md). They read the latest rows
-- (FINAL) so that a not-yet-merged ReplacingMergeTree never shows an enterprise twice.

CREATE VIEW IF NOT EXISTS {db}.v_current_state AS
SELECT *
FROM {db}.enterprise_state FINAL
WHERE deleted = 0
;
-- Colour distribution by region and industry.
CREATE VIEW IF NOT EXISTS {db}.v_colour_distribution AS
SELECT region, industry, colour, count() AS enterprises
FROM {db}.enterprise_state FINAL
WHERE deleted = 0
GROUP BY region, industry, colour
;
-- Enterprises whose published colour worsened, with the reasons (filter on as_of).
CREATE VIEW IF NOT EXISTS {db}.v_worsened AS
SELECT as_of, uscc, from_colour, to_colour, score, triggers, reason_indicators,
       reason_contributions, region, industry, change_id
FROM {db}.colour_history
WHERE direction = 'worsened'
;
-- Which indicators stand behind the red enterprises.
CREATE VIEW IF NOT EXISTS {db}.v_top_indicators_red AS
SELECT indicator, count() AS enterprises, sum(contribution) AS total_contribution
FROM
(
    SELECT reason_indicators, reason_contributions
    FROM {db}.enterprise_state FINAL
    WHERE deleted = 0 AND colour = 'red'
)
ARRAY JOIN reason_indicators AS indicator, reason_contributions AS contribution
GROUP BY indicator
;
-- Alert counts per day, rule and state.
CREATE VIEW IF NOT EXISTS {db}.v_alert_counts AS
SELECT toDate(as_of) AS day, rule, severity, state, count() AS alerts
FROM {db}.alerts
GROUP BY day, rule, severity, state
;
-- Inspection-plan coverage per campaign and colour.
CREATE VIEW IF NOT EXISTS {db}.v_plan_coverage AS
SELECT campaign_id, colour, population, selected,
       if(population = 0, 0, selected / population) AS rate
FROM {db}.inspection_campaigns
