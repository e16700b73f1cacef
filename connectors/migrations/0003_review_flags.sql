-- Credit Steward ClickHouse schema, migration 3: review flags of credit repairs in the
-- enterprise state (docs/decisions.md D47). `review_flags[i]` is a flag
-- (`repair_before_min_publicity`, `repair_unknown_target`, `repair_non_repairable`) and
-- `review_flag_repairs[i]` the event id of the RPR record it is on.
-- One statement: ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS, and a single ALTER is
-- applied whole or not at all.
ALTER TABLE {db}.enterprise_state
    ADD COLUMN review_flags Array(String),
    ADD COLUMN review_flag_repairs Array(String)
