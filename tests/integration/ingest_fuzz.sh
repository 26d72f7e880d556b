#!/usr/bin/env bash
# A short libFuzzer run (a few seconds per target) of the IDX reader, the
# list-file parser, message/Record unpacking, image decode and JSON string
# escaping; `make fuzz` runs the same targets longer.
# timeout: 240
source "$(dirname "$0")/../itlib.sh"
cd "$FV_ROOT"
out=$(make --no-print-directory -f tests/fuzz/fuzz.mk BUILD="${BUILD:-build}" \
	FUZZ_SECONDS="${FV_FUZZ_SECONDS:-3}" run-fuzz 2>&1); rc=$?
grep -E '^(ok|FAIL) ' <<<"$out"
if [ $rc != 0 ]; then
	tail -n 30 <<<"$out" | sed 's/^/    /'
	fail fuzz_run "exit $rc"
fi
fv_done
