#!/usr/bin/env bash
# Ingest's memory does not grow with the input: a folder of 60000 files
# (empty, so each is rejected at once) peaks within a few MB of one of 3000
# (the listing runs at most 4096 items ahead of the decoders; rejects
# commit batch by batch), and so does a list file naming them.
# timeout: 120
source "$(dirname "$0")/../itlib.sh"
mkfiles() { python3 -c "
import os, sys
d = sys.argv[1]
os.makedirs(d)
for i in range(int(sys.argv[2])):
    open(os.path.join(d, '%06d.jpg' % i), 'w').close()" "$1" "$2"; }
# a sanitized build keeps freed memory in quarantine: have it reuse it at once
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0
mkfiles "$T/small/c" 3000
mkfiles "$T/big/c" 60000
# peak RSS in kB of fovea ingest over a folder (the child's, from getrusage)
peak() { local name=${1//\//-}; python3 -c "
import resource, subprocess, sys
out = open(sys.argv[3], 'w')
subprocess.run(['$FV_BIN/fovea', 'ingest', '--db', sys.argv[1], '--jobs', '2', sys.argv[2]],
               stdout=out, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)" "$T/db-$name" "$T/$1" "$T/out-$name"; }
s=$(peak small) b=$(peak big)
echo "    peak RSS: 3000 files $s kB, 60000 files $b kB"
check_eq big_summary "$(grep -o 'added .*rejected [0-9]*' "$T/out-big")" "added 0, duplicates 0, rejected 60000"
check big_within_8MB_of_small test $((b - s)) -lt 8192
(cd "$T/small" && ls c | sed 's|^|c/|; s|$| 0|') >"$T/small/list.txt"
(cd "$T/big" && ls c | sed 's|^|c/|; s|$| 0|') >"$T/big/list.txt"
s=$(peak small/list.txt) b=$(peak big/list.txt)
echo "    peak RSS: list of 3000 files $s kB, of 60000 files $b kB"
check_eq big_list_summary "$(grep -o 'added .*rejected [0-9]*' "$T/out-big-list.txt")" "added 0, duplicates 0, rejected 60000"
check big_list_within_8MB_of_small test $((b - s)) -lt 8192
fv_done
