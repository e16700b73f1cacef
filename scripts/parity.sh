#!/usr/bin/env bash
# Parity of `steward run` with another revision (issue 16: a rewrite runs old and new side
# by side until their outputs agree). Builds REV (default: HEAD) from `git archive` and the
# working tree, both in release, runs `steward run` on the default input and on
# `--enterprises 5000 --years 3 --seed 9` with each, and compares every output file byte for
# byte; dead letters are compared without their `time`, the wall clock of the run.
#
#   scripts/parity.sh [REV]
#
# Exits 0 when every file agrees, 1 when one differs (naming it and its first differing
# line), 2 on a usage error. REV's build is kept under `.cache/parity/<commit>/` (git-ignored),
# so a second comparison with the same REV builds only the working tree.
# Environment: PARITY_WORKERS (worker threads of each run, default 2).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
rev=${1:-HEAD}
commit=$(git -C "$root" rev-parse --verify --quiet "$rev^{commit}") || {
	echo "parity: '$rev' is not a revision of this repository" >&2
	exit 2
}
workers=${PARITY_WORKERS:-2}
cache="$root/.cache/parity"
old="$cache/$commit"

if [ ! -x "$old/target/release/steward" ]; then
	echo "parity: building $rev ($commit) in $old" >&2
	rm -rf "$old/src"
	mkdir -p "$old/src"
	git -C "$root" archive "$commit" | tar -x -C "$old/src"
	(cd "$old/src" && CARGO_TARGET_DIR="$old/target" cargo build --release --locked -p pipeline --bin steward)
fi
echo "parity: building the working tree" >&2
(cd "$root" && cargo build --release --locked -p pipeline --bin steward)
new="$root/target/release/steward"

# The runs' output, without the wall clock of dead letters.
comparable() {
	case "$(basename "$1")" in
	dead_letters.jsonl) sed 's/"time":"[^"]*"//' "$1" ;;
	*) cat "$1" ;;
	esac
}

status=0
runs="$cache/runs"
for case in default seed9; do
	case $case in
	default) args=() ;;
	seed9) args=(--enterprises 5000 --years 3 --seed 9) ;;
	esac
	for side in old new; do
		rm -rf "${runs:?}/$case/$side"
		mkdir -p "$runs/$case"
		bin=$new
		[ "$side" = old ] && bin="$old/target/release/steward"
		"$bin" run -w "$workers" "${args[@]}" --output "$runs/$case/$side" >"$runs/$case/$side.log" 2>&1 || {
			echo "parity: the $side build failed on $case (log: $runs/$case/$side.log)" >&2
			exit 1
		}
	done
	files=$( (cd "$runs/$case/old" && ls; cd "$runs/$case/new" && ls) | sort -u)
	for f in $files; do
		a="$runs/$case/old/$f" b="$runs/$case/new/$f"
		if [ ! -f "$a" ] || [ ! -f "$b" ]; then
			echo "$case: $f is written by one side only"
			status=1
		elif cmp -s <(comparable "$a") <(comparable "$b"); then
			echo "$case: $f same ($(wc -l <"$b") lines)"
		else
			line=$(cmp <(comparable "$a") <(comparable "$b") | sed -n 's/.*line \([0-9]*\).*/\1/p')
			echo "$case: $f DIFFERS from line ${line:-?}"
			status=1
		fi
	done
done
exit $status
