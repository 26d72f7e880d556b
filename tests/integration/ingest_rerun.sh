#!/usr/bin/env bash
# A re-run over files the dataset has, unchanged (same path, size, times,
# inode), does not read them again: it counts them as duplicates and says
# how many it skipped. A file that changed is read again: a link pointed at
# another photo (added), one rewritten in place with its old size and mtime
# put back (its ctime tells). --recheck reads everything.
# timeout: 60
source "$(dirname "$0")/../itlib.sh"
J=$SHARED_DATA/jpeg-bench
S=$T/src
mkdir -p "$S/a" "$S/b"
ln -s "$J"/img00[0-3]?.jpg "$S/a/" # 40, old files: their stat can be trusted
ln -s "$J"/img004?.jpg "$J"/img005?.jpg "$S/b/"
cp "$J/img0060.jpg" "$S/b/zz-real.jpg"
sleep 2.1 # a file changed in the last 2 s is not remembered (a write may follow in the same tick)
summary() { grep -o 'added .*rejected [0-9]*' <<<"$1"; }
known() { grep -o '^[0-9]* of the duplicates: files ingested before' <<<"$1" | cut -d' ' -f1; }

out=$(fovea ingest --db "$T/db" "$S" 2>&1)
check_eq first_run "$(summary "$out")" "added 61, duplicates 0, rejected 0"
check_eq first_run_knew_none "$(known "$out")" ""
out=$(fovea ingest --db "$T/db" "$S" 2>&1)
check_eq rerun "$(summary "$out")" "added 0, duplicates 61, rejected 0"
check_eq rerun_read_none "$(known "$out")" 61

ln -sfn "$J/img0100.jpg" "$S/a/img0005.jpg"                     # another photo now
touch "$T/ref" && touch -r "$S/b/zz-real.jpg" "$T/ref"               # its mtime, kept
printf 'X' | dd of="$S/b/zz-real.jpg" bs=1 seek=15 conv=notrunc 2>/dev/null # same size, new bytes
touch -r "$T/ref" "$S/b/zz-real.jpg"                                # old mtime back
sleep 2.1 # past the fresh window, so the ctime comparison is what tells
out=$(fovea ingest --db "$T/db" "$S" 2>&1)
echo "$out" | sed 's/^/    /'
check_eq changed_read_again "$(known "$out")" 59
check relinked_added grep -q "^added 1, " <<<"$out"
out=$(fovea ingest --db "$T/db" --recheck "$S" 2>&1)
check_eq recheck_reads_all "$(known "$out")" ""
check_eq recheck "$(summary "$out")" "added 0, duplicates 61, rejected 0"
check_eq records "$(fovea stats --db "$T/db" --json | grep -o '"records":[0-9]*')" '"records":62'
fv_done
