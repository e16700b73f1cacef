#!/usr/bin/env bash
# README command (b): installs and starts the local services (Kafka, ClickHouse, Prometheus,
# Alertmanager), checks formatting and lints, and runs every test of the workspace — unit,
# property, integration and end to end. `.ci/run` calls exactly this.
#
# Services that this script started are stopped again at the end; set
# STEWARD_KEEP_SERVICES=1 to leave them running for the next run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

started=0
if ! scripts/services.sh status >/dev/null 2>&1; then
  started=1
fi
stop_services() {
  if [ "$started" = 1 ] && [ "${STEWARD_KEEP_SERVICES:-0}" != 1 ]; then
    scripts/services.sh down || true
  fi
}
trap stop_services EXIT

scripts/services.sh up
# A current ClickHouse in process (chdb), for the tests that run the schema and the queries
# on it as well as on the 18.16 server.
scripts/chdb.sh >/dev/null

# One build from a clean tree: incremental compilation only costs disk here (it doubled the
# target directory, and a CI run once stopped on "No space left on device").
export CARGO_INCREMENTAL=0

# A clean build of every test takes about 7 GiB under target/, and the services' data and
# chdb about 2 GiB more (measured 2026-12-05). A CI run once stopped in the linker on a disk
# with 4 GiB free ("No space left on device", then a bus error): say so first, not after
# ten minutes of building.
target=${CARGO_TARGET_DIR:-$ROOT/target}
probe=$target
while [ ! -d "$probe" ]; do probe=$(dirname "$probe"); done
free_gib=$(($(df -Pk "$probe" | awk 'NR == 2 {print $4}') / 1024 / 1024))
echo "== disk: $free_gib GiB free for $target"
if [ "$free_gib" -lt 10 ]; then
  echo "WARNING: a clean build of the tests needs about 9 GiB (target/ and the services'" \
    "data); $free_gib GiB are free. Free some (e.g. cargo clean, scripts/services.sh reset)" \
    "if the build stops on 'No space left on device'." >&2
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test (unit, property, integration, end to end)"
log=$(mktemp)
status=0
{ cargo test --workspace --doc --locked && cargo test --workspace --all-targets --locked --no-fail-fast; } 2>&1 |
  tee "$log" || status=$?
# One closing line over every test binary, in the plain 'N passed, N failed' form.
passed=$(grep -oE '^test result: [A-Za-z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -oE '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
rm -f "$log"
echo "all tests: $passed passed, $failed failed"
exit "$status"
