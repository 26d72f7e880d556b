#!/usr/bin/env bash
# The inbox daemon: files already waiting are ingested at start; files that
# land in INBOX/<class>/ (written in place or moved in, in class folders made
# while it runs) are ingested and moved to the same place under .done/ (a
# name taken there gets the version), bad ones to .rejected/ with a .reason
# (a FIFO too, never waited on); a SUB socket receives DatasetUpdated;
# SIGTERM drains and exits 0; a restart picks up what arrived meanwhile; a
# full disk makes it wait and try again, not stop; a periodic scan finds
# what no event announced; folders in class folders are taken too; an inbox
# moved away or removed is made again; folders moved out are not watched; a
# file that cannot leave the inbox is not taken again and again.
# timeout: 90
source "$(dirname "$0")/../itlib.sh"
J=$SHARED_DATA/jpeg-bench
jnum() { grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
IN=$T/inbox
EP=ipc://$T/pub
mkdir -p "$IN/cat"
cp "$J/img0010.jpg" "$IN/cat/early.jpg" # waiting before the daemon starts

fovea ingest --db "$T/db" --watch "$IN" --pub "$EP" --batch-ms 100 2>"$T/daemon.log" &
d=$!
FV_PIDS+=($d)
check backlog_ingested wait_for 20 test -f "$IN/.done/cat/early.jpg"

fovea-ingest events --sub "$EP" --count 1 --timeout-ms 20000 >"$T/events" &
sub=$!
FV_PIDS+=($sub)
sleep 0.5 # let the subscription reach the publisher (PUB drops until then)
mkdir -p "$IN/dog" "$IN/.stage"
sleep 0.3 # the daemon watches new class folders as they appear
cp "$J/img0011.jpg" "$IN/.stage/moved.jpg" && mv "$IN/.stage/moved.jpg" "$IN/dog/moved.jpg"
cp "$J/img0012.jpg" "$IN/cat/written.jpg"
head -c 5000 "$J/img0013.jpg" >"$IN/dog/broken.jpg"
echo "hello" >"$IN/dog/notes.jpg"
mkfifo "$IN/.stage/pipe.jpg" && mv "$IN/.stage/pipe.jpg" "$IN/dog/pipe.jpg" # an open would hang
check moved_in_done wait_for 20 test -f "$IN/.done/dog/moved.jpg"
check written_done wait_for 20 test -f "$IN/.done/cat/written.jpg"
check broken_rejected wait_for 20 test -f "$IN/.rejected/dog/broken.jpg"
check notes_rejected wait_for 20 test -f "$IN/.rejected/dog/notes.jpg.reason"
grep -q "Premature end" "$IN/.rejected/dog/broken.jpg.reason" && ok reason_says_why || fail reason_says_why "$(cat "$IN/.rejected/dog/broken.jpg.reason")"
check fifo_rejected wait_for 20 test -f "$IN/.rejected/dog/pipe.jpg.reason"
grep -q "not a regular file" "$IN/.rejected/dog/pipe.jpg.reason" && ok fifo_reason ||
	fail fifo_reason "$(cat "$IN/.rejected/dog/pipe.jpg.reason" 2>&1)"
check inbox_emptied test -z "$(find "$IN/cat" "$IN/dog" ! -type d)"
wait $sub; rc=$?
check_eq subscriber_got_event "$rc" 0
grep -q '"type":"DatasetUpdated".*"version":[1-9]' "$T/events" && ok event_content || fail event_content "$(cat "$T/events")"

s=$(fovea stats --db "$T/db" --json) # a reader while the daemon runs
check_eq watch_records "$(jnum records <<<"$s")" 3
check_eq watch_rejected "$(jnum rejected <<<"$s")" 3

kill -TERM $d
wait $d; rc=$?
check_eq sigterm_exit_0 "$rc" 0
cp "$J/img0014.jpg" "$IN/dog/late.jpg"
cp "$J/img0010.jpg" "$IN/dog/again.jpg" # a duplicate: stored once, still moved
cp "$J/img0015.jpg" "$IN/dog/moved.jpg" # a new photo under a name .done has
sleep 2.1 # old enough that a batch run would remember their stat
fovea ingest --db "$T/db" --watch "$IN" --batch-ms 100 2>>"$T/daemon.log" &
d=$!
FV_PIDS+=($d)
check restart_backlog wait_for 20 test -f "$IN/.done/dog/late.jpg" -a -f "$IN/.done/dog/again.jpg"
check done_name_taken_gets_version wait_for 20 eval 'cmp -s "$J/img0015.jpg" "$IN"/.done/dog/moved.v*.jpg'
check done_name_taken_kept_old cmp -s "$J/img0011.jpg" "$IN/.done/dog/moved.jpg"
kill -TERM $d
wait $d
s=$(fovea stats --db "$T/db" --json)
check_eq restart_records "$(jnum records <<<"$s")" 5
check_eq restart_duplicates "$(jnum duplicates <<<"$s")" 1
check_eq watch_classes "$(jnum classes <<<"$s")" 2
# .done keeps each file's class folder: an ImageFolder of what was stored
fovea ingest --db "$T/redo" "$IN/.done" 2>/dev/null
r=$(fovea stats --db "$T/redo" --json)
check_eq done_reingests_records "$(jnum records <<<"$r")" 5
check_eq done_reingests_classes "$(jnum classes <<<"$r")" 2
# inbox files move to .done: the daemon remembers no stat to skip them by
check_eq no_sources_kept "$(mdb_stat -s sources "$T/db" | grep -o 'Entries: [0-9]*')" "Entries: 0"

# A full disk (the shim fails the 2nd and 3rd fsync with ENOSPC: the first
# commit and its first retry) does not stop the daemon: it says so, keeps
# the files in the inbox, tries again after 1 s, then 2 s, and stores each
# file once when there is room again.
slow_sync_shim
mkdir -p "$T/in2/cat"
SLOW_SYNC_MS=0 SLOW_SYNC_FAIL_AT=2 SLOW_SYNC_FAILS=2 LD_PRELOAD=$T/slow_sync.so \
	fovea ingest --db "$T/db2" --watch "$T/in2" --batch-ms 100 --status-endpoint "ipc://$T/st2" \
	2>"$T/full.log" &
d=$!
FV_PIDS+=($d)
sleep 0.5
cp "$J"/img002[0-4].jpg "$T/in2/cat/"
check full_disk_said wait_for 20 grep -q "no space left on the device.*trying again in 1 s" "$T/full.log"
check full_disk_files_wait test "$(ls "$T/in2/cat" | wc -l)" = 5
check full_disk_status wait_for 5 eval 'fovea status --endpoints ingest=ipc://$T/st2 --json 2>/dev/null | grep -q commit_error'
check full_disk_status_table eval 'fovea status --endpoints ingest=ipc://$T/st2 2>/dev/null | grep -q "^ingest .*in2: .*commits failing: .*no space left"'
check full_disk_backoff wait_for 20 grep -q "trying again in 2 s" "$T/full.log"
check full_disk_alive kill -0 $d
check full_disk_recovered wait_for 20 eval 'test "$(ls "$T/in2/.done/cat" | wc -l)" = 5'
check_eq full_disk_records "$(fovea stats --db "$T/db2" --json | jnum records)" 5
check full_disk_works_again grep -q "commits work again" "$T/full.log"
kill -TERM $d
wait $d; rc=$?
check_eq full_disk_exit_0 "$rc" 0

# A hard link made into the inbox sends IN_CREATE only (as a file written
# over NFS sends nothing): the periodic scan (--rescan-s) finds it.
mkdir -p "$T/in3/cat"
fovea ingest --db "$T/db3" --watch "$T/in3" --batch-ms 100 --rescan-s 1 2>"$T/rescan.log" &
d=$!
FV_PIDS+=($d)
sleep 0.5
cp "$J/img0030.jpg" "$T/img0030.jpg" && touch -d '-1 min' "$T/img0030.jpg"
ln "$T/img0030.jpg" "$T/in3/cat/linked.jpg"
check rescan_finds_hard_link wait_for 20 test -f "$T/in3/.done/cat/linked.jpg"
check_eq rescan_records "$(fovea stats --db "$T/db3" --json | jnum records)" 1
kill -TERM $d
wait $d

# Folders in class folders are taken too, as a batch run takes them: one
# waiting at the start (two deep), one moved in whole, one made and then
# written into; their files count for the class folder they are in. So are
# symbolic links to images, waiting or made while it runs.
mkdir -p "$T/in4/cat/pre/deeper" "$T/stage/b1/inner"
cp "$J/img0041.jpg" "$T/in4/cat/pre/"
cp "$J/img0042.jpg" "$T/in4/cat/pre/deeper/"
cp "$J/img0043.jpg" "$J/img0044.jpg" "$T/stage/b1/"
cp "$J/img0045.jpg" "$T/stage/b1/inner/"
ln -s "$J/img0047.jpg" "$T/in4/cat/pre/link0.jpg" # a symbolic link: its target is ingested
fovea ingest --db "$T/db4" --watch "$T/in4" --batch-ms 100 --rescan-s 0 2>"$T/sub.log" &
d=$!
FV_PIDS+=($d)
check subfolder_waiting_taken wait_for 20 test -f "$T/in4/.done/cat/pre/deeper/img0042.jpg"
mv "$T/stage/b1" "$T/in4/cat/"
mkdir -p "$T/in4/dog/new"
sleep 0.3 # (a file written before its folder is watched is found by the folder's scan too)
cp "$J/img0046.jpg" "$T/in4/dog/new/"
ln -s "$J/img0048.jpg" "$T/in4/dog/new/link1.jpg" # (IN_CREATE only; no scan but at the start)
ln -s "$T/nothing.jpg" "$T/in4/dog/new/dangling.jpg" # a link to nothing is rejected, not left
check subfolder_moved_in_taken wait_for 20 test -f "$T/in4/.done/cat/b1/inner/img0045.jpg" -a -f "$T/in4/.done/cat/b1/img0043.jpg"
check subfolder_made_taken wait_for 20 test -f "$T/in4/.done/dog/new/img0046.jpg"
check symlink_waiting_taken wait_for 20 test -L "$T/in4/.done/cat/pre/link0.jpg"
check symlink_made_taken wait_for 20 test -L "$T/in4/.done/dog/new/link1.jpg"
check dangling_symlink_rejected wait_for 20 test -f "$T/in4/.rejected/dog/new/dangling.jpg.reason"
kill -TERM $d
wait $d
s=$(fovea stats --db "$T/db4" --json)
check_eq subfolder_records "$(jnum records <<<"$s")" 8
check_eq subfolder_classes "$(jnum classes <<<"$s")" 2
check subfolder_class_is_the_top_folder grep -q '"id":"cat","name":"cat","train":6' <<<"$s"
# --delete-stored: a stored file (or one stored already) is deleted, not
# moved to .done; a bad one still goes to .rejected with its reason.
mkdir -p "$T/in5/cat"
fovea ingest --db "$T/db5" --watch "$T/in5" --batch-ms 100 --delete-stored 2>"$T/del.log" &
d=$!
FV_PIDS+=($d)
sleep 0.5
cp "$J/img0050.jpg" "$J/img0051.jpg" "$T/in5/cat/"
cp "$J/img0050.jpg" "$T/in5/cat/again.jpg"
head -c 3000 "$J/img0052.jpg" >"$T/in5/cat/cut.jpg"
check delete_stored_rejected_kept wait_for 20 test -f "$T/in5/.rejected/cat/cut.jpg.reason"
check delete_stored_inbox_emptied wait_for 20 eval 'test -z "$(ls "$T/in5/cat")"'
check_eq delete_stored_no_done "$(find "$T/in5/.done" -type f | wc -l)" 0
kill -TERM $d
wait $d
s=$(fovea stats --db "$T/db5" --json)
check_eq delete_stored_records "$(jnum records <<<"$s")/$(jnum duplicates <<<"$s")" "2/1"

# A folder moved out of the inbox is no longer watched (nor are the folders
# in it), and one renamed in it is watched under its new name only: the
# daemon's inotify watches (in /proc/PID/fdinfo) do not pile up.
watches() {
	local f
	for f in /proc/$1/fd/*; do
		[ "$(readlink "$f")" = "anon_inode:inotify" ] && grep -c '^inotify wd' "/proc/$1/fdinfo/${f##*/}"
	done
}
mkdir -p "$T/in7/cat/b1/inner" "$T/in7/cat/b2" "$T/out7"
fovea ingest --db "$T/db7" --watch "$T/in7" --batch-ms 100 --rescan-s 0 2>"$T/moved.log" &
d=$!
FV_PIDS+=($d)
cp "$J/img0070.jpg" "$T/in7/cat/b1/inner/"
check moved_out_before wait_for 20 test -f "$T/in7/.done/cat/b1/inner/img0070.jpg"
check_eq watches_before "$(watches $d)" 5 # the inbox, cat, b1, inner, b2
mv "$T/in7/cat/b1" "$T/out7/"
mv "$T/in7/cat/b2" "$T/in7/cat/b3"
sleep 0.3
cp "$J/img0071.jpg" "$T/in7/cat/b3/"
cp "$J/img0072.jpg" "$T/out7/b1/inner/"
check renamed_folder_taken wait_for 20 test -f "$T/in7/.done/cat/b3/img0071.jpg"
check_eq watches_after_moves "$(watches $d)" 3 # the inbox, cat, b3
check moved_out_left_alone test -f "$T/out7/b1/inner/img0072.jpg"
kill -TERM $d
wait $d
check_eq moved_out_records "$(fovea stats --db "$T/db7" --json | jnum records)" 2

# A file stored that cannot leave the inbox (the shim fails its rename, as
# a folder the daemon may not write would) is said once and left there, not
# decoded and counted again at every scan; once its folder is fixed (its
# ctime moves), the next scan moves it.
mkdir -p "$T/in8/cat"
touch "$T/nomove"
SLOW_SYNC_MS=0 SLOW_SYNC_NOMOVE=in8/cat/ SLOW_SYNC_NOMOVE_WHILE=$T/nomove LD_PRELOAD=$T/slow_sync.so \
	fovea ingest --db "$T/db8" --watch "$T/in8" --batch-ms 100 --rescan-s 1 \
	--status-endpoint "ipc://$T/st8" 2>"$T/stuck.log" &
d=$!
FV_PIDS+=($d)
sleep 0.5
cp "$J/img0080.jpg" "$T/in8/cat/"
check stuck_said wait_for 20 grep -q "img0080.jpg: cannot move out of the inbox: Permission denied; left there" "$T/stuck.log"
sleep 3.5 # three scans
check_eq stuck_said_once "$(grep -c "cannot move" "$T/stuck.log")" 1
check_eq stuck_not_counted_again "$(fovea stats --db "$T/db8" --json | jnum duplicates)" 0
check stuck_status wait_for 5 eval 'fovea status --endpoints ingest=ipc://$T/st8 --json 2>/dev/null | grep -q "\"ingest.stuck\":1"'
check stuck_status_table eval 'fovea status --endpoints ingest=ipc://$T/st8 | grep -q "^ingest .*inbox .*in8: 0 pending, 1 stuck"'
rm "$T/nomove"
chmod 0755 "$T/in8/cat" # (as fixing its permissions would)
check stuck_moved_once_fixed wait_for 20 test -f "$T/in8/.done/cat/img0080.jpg"
kill -TERM $d
wait $d

# The inbox folder moved away (an operator rotating it), then removed: the
# daemon says so, makes it again at its path and takes what lands there;
# what landed in the old folder after the move is left alone there. Its
# parent removed as well: it stops with an error naming the inbox.
mkdir -p "$T/p6/in6/cat"
fovea ingest --db "$T/db6" --watch "$T/p6/in6" --batch-ms 100 --rescan-s 0 2>"$T/lost.log" &
d=$!
FV_PIDS+=($d)
sleep 0.5
cp "$J/img0060.jpg" "$T/p6/in6/cat/"
check inbox_before_move wait_for 20 test -f "$T/p6/in6/.done/cat/img0060.jpg"
mv "$T/p6/in6" "$T/p6/old6"
check inbox_moved_said wait_for 20 grep -q "in6: the inbox folder was moved or removed" "$T/lost.log"
check inbox_made_again wait_for 20 test -d "$T/p6/in6/.done"
mkdir -p "$T/p6/in6/dog"
sleep 0.3
cp "$J/img0061.jpg" "$T/p6/in6/dog/"
cp "$J/img0062.jpg" "$T/p6/old6/cat/"
check inbox_new_taken wait_for 20 test -f "$T/p6/in6/.done/dog/img0061.jpg"
rm -rf "$T/p6/in6"
check inbox_removed_made_again wait_for 20 test -d "$T/p6/in6/.done"
mkdir -p "$T/p6/in6/cow"
sleep 0.3
cp "$J/img0063.jpg" "$T/p6/in6/cow/"
check inbox_after_removal_taken wait_for 20 test -f "$T/p6/in6/.done/cow/img0063.jpg"
check old_inbox_left_alone test -f "$T/p6/old6/cat/img0062.jpg"
check_eq inbox_lost_records "$(fovea stats --db "$T/db6" --json | jnum records)" 3
mv "$T/p6" "$T/p6.gone" # (the daemon sees nothing yet; an rm -rf would race its mkdir)
rm -rf "$T/p6.gone/in6"
wait $d; rc=$?
check_eq inbox_parent_gone_exit "$rc" 2
check inbox_parent_gone_said grep -q "error: .*p6/in6: No such file" "$T/lost.log"
fv_done
