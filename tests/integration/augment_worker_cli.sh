#!/usr/bin/env bash
# fovea-augment as a daemon: command line errors, systemd notifications
# (READY after connecting, STOPPING on SIGTERM), reconnect backoff while no
# client listens, and a clean exit on SIGTERM.
# timeout: 30
source "$(dirname "$0")/../itlib.sh"

out=$(fovea augment --help 2>&1)
check augment_help_exits_0 [ $? = 0 ]
case "$out" in *--connect*) ok augment_help_names_connect ;; *) fail augment_help_names_connect "$out" ;; esac

fovea-augment >"$T/noargs.out" 2>&1
check_eq augment_no_connect_exit_2 "$?" 2
check augment_no_connect_says_why grep -q -- "--connect" "$T/noargs.out"

fovea-augment --connect "ipc://$T/x.sock" --threads -3 >"$T/bad.out" 2>&1
check_eq augment_bad_threads_exit_2 "$?" 2
check augment_bad_threads_says_why grep -q -- "threads" "$T/bad.out"

fake_systemd "$T/notify.sock" "$T/notify.log" # records what the worker notifies

# no client at this endpoint: the worker keeps reconnecting with backoff
NOTIFY_SOCKET="$T/notify.sock" fovea-augment --connect "ipc://$T/nobody.sock" \
	--threads 2 --heartbeat-ms 50 --backoff-max-ms 400 2>"$T/worker.log" &
wpid=$!
FV_PIDS+=($wpid)
check augment_notifies_ready wait_for 5 grep -q "READY=1" "$T/notify.log"
sleep 1.5
n=$(grep -c "reconnecting in" "$T/worker.log")
check augment_reconnects_with_backoff [ "$n" -ge 2 ]
check augment_backoff_capped grep -q "reconnecting in 400 ms" "$T/worker.log"
kill -TERM $wpid
t0=$SECONDS
wait $wpid
check_eq augment_sigterm_exit_0 "$?" 0
check augment_sigterm_prompt [ $((SECONDS - t0)) -le 2 ]
check augment_notifies_stopping wait_for 3 grep -q "STOPPING=1" "$T/notify.log"
fv_done
