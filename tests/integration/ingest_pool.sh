#!/usr/bin/env bash
# The decode pool and the commit queue under load: 302 photos in 3 classes
# (linked files, a linked subfolder), bad files and cross-class copies among
# them, small batches so many commits queue up behind fsync and the workers
# wait for the writer. The dataset
# (record keys, hashes, bytes) must not depend on --jobs; a second run of
# the same folder adds nothing; and kill -9 mid-run then a re-run gives the
# same keys and hashes as a clean run; so does SIGTERM, which stops it
# cleanly (both sent at a chosen fsync by tests/integration/slow_sync.c).
# timeout: 120
source "$(dirname "$0")/../itlib.sh"
J=$SHARED_DATA/jpeg-bench
jnum() { grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
records() { mdb_dump -s records "$1" | sha1sum; }

S=$T/src
mkdir -p "$S/a" "$S/b" "$S/c"
photos=("$J"/img0[0-2]*.jpg) # 300, dealt out a b c a b c ...
a=() b=() c=()
for ((i = 0; i < ${#photos[@]}; i += 3)); do
	a+=("${photos[i]}") b+=("${photos[i + 1]}") c+=("${photos[i + 2]}")
done
ln -s "${a[@]}" "$S/a/" && ln -s "${b[@]}" "$S/b/" && ln -s "${c[@]}" "$S/c/"
cp "$J/img0000.jpg" "$S/c/zz-copy.jpg"            # a copy of a/img0000.jpg
cp "$J/img0100.jpg" "$S/a/img0100-copy.jpg"       # of b/img0100.jpg
head -c 9000 "$J/img0042.jpg" >"$S/b/img0042-trunc.jpg"
: >"$S/a/img0150-empty.jpg"
echo nope >"$S/c/img0200-text.jpg"
mkdir "$T/extra" && cp "$J/img0300.jpg" "$J/img0301.jpg" "$T/extra/"
ln -s "$T/extra" "$S/b/zz-linked-folder" # a linked subfolder belongs to b too

for j in 1 2 5; do
	out=$(fovea ingest --db "$T/j$j" --jobs $j --batch 10 "$S" 2>&1)
	check_eq "jobs${j}_summary" "$(grep -o 'added .*rejected [0-9]*' <<<"$out")" \
		"added 302, duplicates 2, rejected 3"
done
s=$(fovea stats --db "$T/j2" --json)
check_eq stats_records "$(jnum records <<<"$s")" 302
check_eq stats_rejected "$(jnum rejected <<<"$s")" 3
hashes=$(mdb_dump -s hashes "$T/j1" | sha1sum)
check_eq hashes_jobs2_as_jobs1 "$(mdb_dump -s hashes "$T/j2" | sha1sum)" "$hashes"
check_eq records_jobs5_as_jobs1 "$(records "$T/j5")" "$(records "$T/j1")"

out=$(fovea ingest --db "$T/j2" --jobs 2 "$S" 2>&1)
check_eq rerun_adds_nothing "$(grep -o 'added .*rejected [0-9]*' <<<"$out")" \
	"added 0, duplicates 304, rejected 3"

# A crash and a stop at a chosen point, whatever the machine's speed: the
# shim sends the signal as the run enters a given fsync (the first is the
# dataset's creation, each commit has one). kill -9 as the fourth sync
# starts: two commits are durable (the second holds what was decoded
# while the first synced), the third's pages are written but not synced.
# Then the re-run.
slow_sync_shim
SLOW_SYNC_MS=20 SLOW_SYNC_SIGNAL_AT=4 SLOW_SYNC_SIGNAL=9 LD_PRELOAD=$T/slow_sync.so \
	fovea ingest --db "$T/k" --jobs 2 --batch 1 "$S" >/dev/null 2>&1
check_eq killed_status $? 137
n=$(fovea stats --db "$T/k" --json | jnum records)
echo "    killed after $n of 302 records"
check killed_mid_run test "$n" -gt 0 -a "$n" -lt 302
check rerun_after_kill fovea ingest --db "$T/k" --jobs 2 "$S"
check_eq kill_rerun_records "$(fovea stats --db "$T/k" --json | jnum records)" 302
check_eq kill_rerun_hashes "$(mdb_dump -s hashes "$T/k" | sha1sum)" "$hashes"

# SIGTERM (or Ctrl-C) as the first commit syncs: the decoders stop, what
# is validated is committed, the run says so and exits 1; a re-run goes on
# from there
SLOW_SYNC_MS=20 SLOW_SYNC_SIGNAL_AT=2 SLOW_SYNC_SIGNAL=15 LD_PRELOAD=$T/slow_sync.so \
	fovea ingest --db "$T/t" --jobs 2 --batch 1 "$S" >"$T/t.out" 2>&1
rc=$?
n=$(fovea stats --db "$T/t" --json | jnum records)
echo "    stopped after $n of 302 records"
check_eq sigterm_exit_1 "$rc" 1
check sigterm_mid_run test "$n" -gt 0 -a "$n" -lt 302
check sigterm_says_stopped grep -q "stopped; run the same command again" "$T/t.out"
check_eq sigterm_summary_counts "$(grep -o '^added [0-9]*' "$T/t.out")" "added $n"
check rerun_after_sigterm fovea ingest --db "$T/t" --jobs 2 "$S"
check_eq sigterm_rerun_hashes "$(mdb_dump -s hashes "$T/t" | sha1sum)" "$hashes"
fv_done
