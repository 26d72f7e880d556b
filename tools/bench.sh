#!/usr/bin/env bash
# make bench: runs every tools/bench.d/*.sh in order. Each prints its figures
# as ratios against a reference measured in the same run on this machine.
set -u
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-build} FV_BIN=$PWD/${BUILD:-build}/bin FV_ROOT=$PWD
export PATH=$FV_BIN:$PATH
export FV_SHARED_DATA=${FV_SHARED_DATA:-$PWD/../shared/data}
rc=0
for b in tools/bench.d/*.sh; do
	[ -f "$b" ] || continue
	echo "== $(basename "$b" .sh)"
	bash "$b" || { echo "bench $(basename "$b") failed"; rc=1; }
done
exit $rc
