#!/usr/bin/env bash
# Crash safety: kill -9 a Fashion-MNIST ingest mid-run; the dataset still
# opens and `fovea stats` works; re-running the same command ends with
# exactly the records of a clean run (no loss, no duplicates).
# timeout: 120
source "$(dirname "$0")/../itlib.sh"
jnum() { grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
IMG=$FASHION/train-images-idx3-ubyte.gz

fovea ingest --db "$T/db" --batch 200 "$IMG" >/dev/null 2>&1 &
pid=$!
FV_PIDS+=($pid)
# kill once some commits have landed, so the kill falls between commits or
# inside one
has_records() { test "$(fovea stats --db "$T/db" --json 2>/dev/null | jnum records)" -gt 0; }
wait_for 20 has_records
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
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
