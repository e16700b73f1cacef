-- Credit Steward ClickHouse schema, migration 4: what a commitment_checks row is
-- (docs/decisions.md D46). `kind` is `scheduled` (the verification method chosen at
-- PUBLISHED; `method` RANDOM / ONSITE / EXEMPT), `offsite` (the automatic result, method
-- OFFSITE) or `inspector` (a CMT.VERIFIED result). `as_of` is the logical time the row
-- became final; `effective` the event time the decision or result takes effect; `due` the
-- inspection task's due date; `colour` the published colour the method was chosen from;
-- `record` the event id of the record behind it (the CMT.SCHEDULED record, the
-- contradicting record, the PUBLISHED record or the VERIFIED record).
ALTER TABLE {db}.commitment_checks
    ADD COLUMN kind String,
    ADD COLUMN colour String,
    ADD COLUMN effective DateTime,
    ADD COLUMN due Nullable(DateTime),
    ADD COLUMN record String
