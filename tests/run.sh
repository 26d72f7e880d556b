#!/usr/bin/env bash
# The test runner: every unit-test program in $BUILD/tests and every
# integration script in tests/integration, each under a time limit. Each
# prints "ok NAME" / "FAIL NAME" lines; a program that dies or times out
# without saying so counts as one failure. Ends with "N passed, N failed".
#   tests/run.sh [FILTER]   only programs/scripts whose name contains FILTER
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD FV_BIN=$PWD/$BUILD/bin FV_ROOT=$PWD
filter=${1:-}
pass=0 fail=0 failed=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run() { # name, limit, command...
	local name=$1 limit=$2; shift 2
	[ -n "$filter" ] && [[ $name != *"$filter"* ]] && return
	local t0=$SECONDS
	timeout -k 10 "$limit" "$@" >"$log" 2>&1
	local rc=$? p f
	p=$(grep -c '^ok ' "$log"); f=$(grep -c '^FAIL ' "$log")
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		f=1; echo "FAIL $name (exit $rc$([ $rc = 124 ] && echo ", timed out after ${limit}s"))" >>"$log"
	fi
	pass=$((pass + p)); fail=$((fail + f))
	printf '%-40s %3d ok %3d failed  %3ds\n' "$name" "$p" "$f" $((SECONDS - t0))
	if [ "$f" != 0 ]; then
		failed+=("$name"); sed 's/^/    /' "$log" | tail -n 60
	fi
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	run "$(basename "$t")" "${FV_TEST_TIMEOUT:-300}" "$t"
done
for t in tests/integration/*.sh; do
	[ -f "$t" ] || continue
	limit=$(sed -n 's/^# timeout: *\([0-9]*\).*/\1/p' "$t" | head -1)
	run "$(basename "$t" .sh)" "${limit:-300}" bash "$t"
done

((${#failed[@]})) && echo "failing: ${failed[*]}"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
