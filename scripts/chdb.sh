#!/usr/bin/env bash
# Installs chdb (ClickHouse 26.x in-process, from PyPI) into a git-ignored virtual
# environment, `.cache/chdb/venv`, so that tests can run the schema and every query on a
# current ClickHouse without a server (issue 19, D57). Idempotent: a second call only checks.
#
#   scripts/chdb.sh          install if missing, then print the environment's python
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=4.4.0
VENV="$ROOT/.cache/chdb/venv"
PY="$VENV/bin/python"

have() {
  [ -x "$PY" ] && "$PY" -c "import chdb, sys; sys.exit(0 if chdb.__version__ == '$VERSION' else 1)" 2>/dev/null
}

if ! have; then
  echo "[chdb] installing chdb $VERSION into $VENV" >&2
  python3 -m venv "$VENV" || {
    echo "[chdb] python3 -m venv failed: install Python 3 with its venv module" >&2
    exit 1
  }
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "chdb==$VERSION" >&2
  have || {
    echo "[chdb] chdb $VERSION does not import after installing" >&2
    exit 1
  }
fi
echo "$PY"
