#!/usr/bin/env bash
# The inbox daemon with a backlog: its files decode on the pool's threads,
# so the daemon's own thread stays free. SIGTERM in the middle of a backlog
# stops it within about a file's decode, keeping what it committed and
# leaving the rest in the inbox for the next start; a file the start-up
# scan finds half written waits for its close; the systemd watchdog is
# fed all through a backlog that takes seconds to decode (systemd kills a
# daemon that stays silent for WatchdogSec: 30 s in deploy/systemd, about
# 5,000 ImageNet photos on one thread).
# timeout: 90
source "$(dirname "$0")/../itlib.sh"
J=$SHARED_DATA/jpeg-bench
PY=/usr/bin/python3 # Debian's python3-pil lives there, not in other pythons on PATH
jnum() { grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
slow_sync_shim

# A backlog of 200 photos waiting at the start; SIGTERM comes as the first
# commit (10 files) syncs (sync 1 creates the dataset).
mkdir -p "$T/in/cat"
ls "$J"/*.jpg | head -200 | xargs cp -t "$T/in/cat/"
SLOW_SYNC_MS=0 SLOW_SYNC_SIGNAL_AT=2 SLOW_SYNC_SIGNAL=15 LD_PRELOAD=$T/slow_sync.so \
	fovea ingest --db "$T/db" --watch "$T/in" --batch 10 2>"$T/stop.log"
check_eq stop_mid_backlog_exit_0 "$?" 0
left=$(ls "$T/in/cat" | wc -l)
done=$(ls "$T/in/.done/cat" | wc -l)
# the daemon that decoded on its own thread took the whole backlog first
check stop_mid_backlog_leaves_the_rest [ "$left" -ge 100 ]
check stop_mid_backlog_kept_its_commit [ "$done" -ge 10 ]
check_eq stop_mid_backlog_done_are_stored "$(fovea stats --db "$T/db" --json | jnum records)" "$done"
check_eq stop_mid_backlog_no_file_lost $((left + done)) 200

fovea ingest --db "$T/db" --watch "$T/in" --jobs 3 --batch-ms 100 2>"$T/restart.log" &
d=$!
FV_PIDS+=($d)
wait_for 10 grep -q watching "$T/restart.log" # (signals are handled from then on)
check restart_takes_the_rest wait_for 30 eval 'test "$(ls "$T/in/.done/cat" | wc -l)" = 200'
kill -TERM $d
wait $d
check_eq restart_exit_0 "$?" 0
check_eq restart_records "$(fovea stats --db "$T/db" --json | jnum records)" 200
check_eq restart_inbox_empty "$(ls "$T/in/cat" | wc -l)" 0

# A file still being written when the start-up scan finds it (decoded on a
# pool thread, it fails) is neither rejected nor lost: its writer's close
# brings it in.
mkdir -p "$T/in3/cat"
exec 3>"$T/in3/cat/slow.jpg"
head -c 5000 "$J/img0040.jpg" >&3
fovea ingest --db "$T/db3" --watch "$T/in3" --batch-ms 100 --log-level debug 2>"$T/slow.log" &
d=$!
FV_PIDS+=($d)
check half_written_seen wait_for 10 grep -q "slow.jpg: still being written" "$T/slow.log"
check half_written_not_rejected test ! -e "$T/in3/.rejected/cat/slow.jpg"
check half_written_waits test -e "$T/in3/cat/slow.jpg"
tail -c +5001 "$J/img0040.jpg" >&3
exec 3>&-
check half_written_done wait_for 20 test -f "$T/in3/.done/cat/slow.jpg"
check half_written_whole cmp -s "$T/in3/.done/cat/slow.jpg" "$J/img0040.jpg"
kill -TERM $d
wait $d
check_eq half_written_records "$(fovea stats --db "$T/db3" --json | jnum records)" 1

fake_systemd "$T/notify.sock" "$T/notify.log"
np=$!

# 24 copies of a 17-megapixel photo, about 80 ms each to decode on one
# thread: 2 s of backlog. The watchdog interval is 0.6 s; the daemon pings
# every half of it.
$PY - "$J/img0001.jpg" "$T/big.jpg" <<'PY' || fail make_big_photo
import sys
from PIL import Image
Image.open(sys.argv[1]).resize((4800, 3600)).save(sys.argv[2], quality=90)
PY
mkdir -p "$T/in2/cat"
for i in $(seq 1 24); do cp "$T/big.jpg" "$T/in2/cat/big$i.jpg"; done
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=600000 \
	fovea ingest --db "$T/db2" --watch "$T/in2" --jobs 1 --batch-ms 100 2>"$T/wd.log" &
d=$!
FV_PIDS+=($d)
check watchdog_backlog_done wait_for 60 eval 'test "$(ls "$T/in2/.done/cat" | wc -l)" = 24'
kill -TERM $d
wait $d
check_eq watchdog_exit_0 "$?" 0
wait $np
# the longest time without a ping, from READY=1 to STOPPING=1
gap=$(awk '/READY=1/ { on = 1 } on && /READY=1|WATCHDOG=1|STOPPING=1/ {
	if (last) { g = $1 - last; if (g > max) max = g } last = $1 }
	/STOPPING=1/ { on = 0 } END { printf "%d", max * 1000 }' "$T/notify.log")
check watchdog_pinged [ "$(grep -c WATCHDOG=1 "$T/notify.log")" -ge 3 ]
check watchdog_never_silent_for_an_interval [ "$gap" -lt 600 ]
[ "$gap" -lt 600 ] || cat "$T/notify.log" >&2
check_eq watchdog_records "$(fovea stats --db "$T/db2" --json | jnum records)" 1
fv_done
