# tests/itlib.sh — sourced by integration scripts. Gives each script
# a temp dir ($T, removed on success), the binaries ($FV_BIN) and ok/fail
# reporting in the runner's "ok NAME" / "FAIL NAME" form.
set -u
FV_ROOT=${FV_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
FV_BIN=${FV_BIN:-$FV_ROOT/build/bin}
PATH=$FV_BIN:$PATH
T=$(mktemp -d "${TMPDIR:-/tmp}/fvit.XXXXXX")
FV_FAILS=0
FV_PIDS=()
FASHION=/usr/share/datasets/fashion-mnist
SHARED_DATA=${FV_SHARED_DATA:-$FV_ROOT/../shared/data}

fv_cleanup() {
	local p
	for p in "${FV_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "$FV_FAILS" = 0 ]; then rm -rf "$T"; else echo "(kept $T)"; fi
}
trap fv_cleanup EXIT

ok()   { echo "ok $1"; }
fail() { echo "FAIL $1${2:+: $2}"; FV_FAILS=$((FV_FAILS + 1)); }
# check NAME COMMAND...: ok if the command succeeds
check() { local n=$1; shift; if "$@"; then ok "$n"; else fail "$n" "$*"; fi; }
# check_eq NAME GOT WANT
check_eq() { if [ "$2" == "$3" ]; then ok "$1"; else fail "$1" "got '$2', want '$3'"; fi; }
# bg COMMAND...: start in the background, remembered for cleanup; pid in $!
bg() { "$@" & FV_PIDS+=($!); }
# wait_for SECONDS COMMAND...: poll until the command succeeds
wait_for() {
	local limit=$1; shift
	local end=$((SECONDS + limit))
	while ((SECONDS < end)); do "$@" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
fv_done() { exit $((FV_FAILS > 0)); }
