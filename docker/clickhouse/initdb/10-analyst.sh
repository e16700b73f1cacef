#!/bin/bash
# Runs once, when the ClickHouse volume is first initialised: creates the read-only
# account that Grafana's supervision dashboard uses, allowed to read the steward database.
set -euo pipefail
clickhouse client --user "$CLICKHOUSE_USER" --password "$CLICKHOUSE_PASSWORD" --multiquery <<SQL
CREATE USER IF NOT EXISTS ${CLICKHOUSE_ANALYST_USER}
    IDENTIFIED WITH sha256_password BY '${CLICKHOUSE_ANALYST_PASSWORD}'
    SETTINGS readonly = 2;
GRANT SELECT ON ${CLICKHOUSE_DB}.* TO ${CLICKHOUSE_ANALYST_USER};
SQL
