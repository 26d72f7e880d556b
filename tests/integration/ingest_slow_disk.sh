#!/usr/bin/env bash
# Ingest on a disk whose fsync is slow (an LD_PRELOAD shim adds 50 ms to
# every fsync; real LMDB, real files). The commit thread takes every batch
# that waited during one sync into the next transaction (group commit), so
# 300 photos in batches of 5 (60 batches) need far fewer syncs than
# batches, and the dataset — record keys, bytes, per-record versions, the
# dataset version — is exactly what the same run on a fast disk gives. The
# same for an IDX file in batches of 100. A disk that fills up mid-run gets
# one clear error and loses nothing committed.
# timeout: 120
source "$(dirname "$0")/../itlib.sh"
J=$SHARED_DATA/jpeg-bench
jnum() { grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
records() { mdb_dump -s records "$1" | sha1sum; }

slow_sync_shim
slow() { SLOW_SYNC_COUNT=$T/syncs LD_PRELOAD=$T/slow_sync.so "$@"; }

mkdir -p "$T/src/photos"
ln -s "$J"/img0[0-2]*.jpg "$T/src/photos/"
n=$(ls "$T/src/photos" | wc -l)
check_eq photos "$n" 300

fovea ingest --db "$T/fast" --jobs 2 --batch 5 "$T/src" >/dev/null 2>&1
check_eq fast_version "$(fovea stats --db "$T/fast" --json | jnum version)" 60
out=$(slow fovea ingest --db "$T/slow" --jobs 2 --batch 5 "$T/src" 2>&1)
check_eq slow_summary "$(grep -o 'added .*version [0-9]*' <<<"$out")" \
	"added 300, duplicates 0, rejected 0; dataset version 60"
syncs=$(cat "$T/syncs")
echo "    60 batches, $syncs syncs"
check fewer_syncs_than_batches test "$syncs" -lt 30
check_eq slow_records_as_fast "$(records "$T/slow")" "$(records "$T/fast")"
check_eq slow_hashes_as_fast "$(mdb_dump -s hashes "$T/slow" | sha1sum)" \
	"$(mdb_dump -s hashes "$T/fast" | sha1sum)"
check slow_stats eval "fovea stats --db $T/slow >/dev/null"

# the disk fills up mid-run (the third sync fails with ENOSPC): one clear
# error, exit 1, what was committed before stays, and a re-run completes
out=$(SLOW_SYNC_MS=0 SLOW_SYNC_FAIL_AT=3 LD_PRELOAD=$T/slow_sync.so \
	fovea ingest --db "$T/full" --jobs 2 --batch 5 "$T/src" 2>&1); rc=$?
check_eq full_exit_1 "$rc" 1
check_eq full_one_error "$(grep -c 'error: .*no space left on the device' <<<"$out")" 1
n=$(fovea stats --db "$T/full" --json | jnum records)
echo "    disk full after $n of 300 records"
check full_kept_first_commit test "$n" -gt 0 -a "$n" -lt 300
fovea ingest --db "$T/full" --jobs 2 --batch 5 "$T/src" >/dev/null 2>&1
check_eq full_rerun_records_as_fast "$(records "$T/full")" "$(records "$T/fast")"

fashion_subset train 3000 "$T/idx"
fovea ingest --db "$T/ifast" --batch 100 "$T/idx/train-images-idx3-ubyte.gz" >/dev/null 2>&1
slow fovea ingest --db "$T/islow" --batch 100 "$T/idx/train-images-idx3-ubyte.gz" >/dev/null 2>&1
syncs=$(cat "$T/syncs")
echo "    IDX: 30 batches, $syncs syncs"
check idx_fewer_syncs test "$syncs" -lt 20
check_eq idx_version "$(fovea stats --db "$T/islow" --json | jnum version)" 30
check_eq idx_records_as_fast "$(records "$T/islow")" "$(records "$T/ifast")"
fv_done
