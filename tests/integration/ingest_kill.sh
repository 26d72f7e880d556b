#!/usr/bin/env bash
# Crash safety: kill -9 a Fashion-MNIST ingest mid-run; the dataset still
# opens and `fovea stats` works; re-running the same command ends with
# exactly the records of a clean run (no loss, no duplicates).
# timeout: 120
source "$(dirname "$0")/../itlib.sh"
jnum() { grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
IMG=$FASHION/train-images-idx3-ubyte.gz
# kill -9 as the fifth fsync starts (tests/integration/slow_sync.c): three
# commits are durable, the fourth's pages are written but not synced. The
# point is chosen, not timed, so the kill falls mid-run on any machine.
slow_sync_shim
SLOW_SYNC_MS=20 SLOW_SYNC_SIGNAL_AT=5 SLOW_SYNC_SIGNAL=9 LD_PRELOAD=$T/slow_sync.so \
	fovea ingest --db "$T/db" --batch 200 "$IMG" >/dev/null 2>&1
check_eq killed_status $? 137
s=$(fovea stats --db "$T/db" --json); rc=$?
check_eq stats_after_kill "$rc" 0
n=$(jnum records <<<"$s")
echo "    killed after $n of 60000 records"
check killed_mid_run test "$n" -gt 0 -a "$n" -lt 60000
check_eq counts_agree_after_kill "$(jnum train <<<"$s")" "$n"
check rerun fovea ingest --db "$T/db" "$IMG"
s=$(fovea stats --db "$T/db" --json)
check_eq exactly_60000 "$(jnum records <<<"$s")" 60000
check_eq train_60000 "$(jnum train <<<"$s")" 60000
check_eq keys_dense "$(mdb_stat -s records "$T/db" | grep -o 'Entries: [0-9]*')" "Entries: 60000"
check_eq hashes_match "$(mdb_stat -s hashes "$T/db" | grep -o 'Entries: [0-9]*')" "Entries: 60000"
fv_done
