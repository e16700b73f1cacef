"""A current ClickHouse (chdb, in process) behind a line protocol, for the Rust tests.

Reads one JSON object per line on stdin, {"sql": "..."}, runs it in one chdb session (its
data in the directory given as the first argument) and answers one JSON object per line on
stdout: {"ok": "<the result in the format the statement asks for>"} or {"error": "..."}.
"""

import json
import sys

from chdb import session


def main() -> None:
    s = session.Session(sys.argv[1])
    for line in sys.stdin:
        sql = json.loads(line)["sql"]
        try:
            res = s.query(sql)
            answer = {"ok": res.bytes().decode("utf-8") if res is not None else ""}
        except Exception as e:  # chdb raises its own error types; all mean "refused"
            answer = {"error": str(e)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
