#!/usr/bin/env bash
# up.sh — `fovea up` with 1 worker and a tiny config on a small real
# dataset: every daemon up in `fovea status --json`, the pipeline trains,
# evaluates, exports and serves; a daemon killed with -9 is restarted;
# SIGTERM stops everything and leaves no process behind.
# timeout: 150
source "$(dirname "$0")/../itlib.sh"
S=$T/state
fashion_subset train 500 "$T/src"
fashion_subset t10k 100 "$T/src"
fovea ingest --db "$S/db" --nosync "$T/src/train-images-idx3-ubyte.gz" >"$T/ingest.log" 2>&1 &&
	fovea ingest --db "$S/db" --nosync --split val "$T/src/t10k-images-idx3-ubyte.gz" >>"$T/ingest.log" 2>&1
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$T/up.conf" <<CONF
# a tiny pipeline: one worker, a 2-layer model, quick checkpoints
workers = 1
model = conv 8 3; bn; relu; gap; linear
epochs = 100000
http-port = $PORT
backoff-min-ms = 200
stop-timeout-ms = 8000
trainer-args = --batch 32 --threads 1 --ckpt-steps 20 --ckpt-minutes 0 --eval-every 0
evaluator-args = --threads 1 --batch 64
exporter-args = --calib-images 32 --select-images 32 --val-images 100 --max-drop 100 --threads 1
CONF
bg fovea up -c "$T/up.conf" --dir "$S"
UP=$!
st() { fovea status --dir "$S" --json 2>/dev/null; }
nup() { st | grep -o '"state":"up"' | wc -l; }
all_up() { [ "$(nup)" = 6 ]; }
check all_six_up wait_for 60 all_up
st >"$T/status1.json"
check status_json python3 - "$T/status1.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
names = [d["name"] for d in s["daemons"]]
assert names == ["ingest", "trainer", "augment-1", "evaluator", "exporter", "serve"], names
assert s["running"] and s["dataset"]["train"] == 500 and s["dataset"]["val"] == 100, s
assert all(d["pid"] > 0 and d["since"] > 0 for d in s["daemons"]), s
PY
fovea status --dir "$S" >"$T/status.txt"
check status_table grep -q '^trainer  *up' "$T/status.txt"
# each daemon answers on ipc://STATE/status-NAME.sock: fovea status shows it live
live_trainer() { st | python3 -c '
import json, sys
s = json.load(sys.stdin)
d = {x["name"]: x for x in s["daemons"]}
assert d["trainer"]["live"]["figures"]["trainer.phase"] and d["trainer"]["live"]["pid"] == d["trainer"]["pid"]
assert d["ingest"]["live"]["figures"]["dataset.train"] == 500 and "live" not in d["augment-1"]'; }
check status_live_figures wait_for 20 live_trainer
check status_table_live bash -c "fovea status --dir '$S' | grep -q '^live  *trainer: trainer.phase='"
# the one worker, by name, with what it delivered
one_worker() { [ "$(fovea status --dir "$S" | grep -c '^  worker  *[^ ]*:[0-9]* .* img/s, [1-9][0-9]* samples, capacity 1$')" = 1 ]; }
check status_table_worker wait_for 20 one_worker
trainer_pid=$(st | grep -o '"name":"trainer","state":"up","pid":[0-9]*' | grep -o '[0-9]*$')
check trainer_continual_by_default bash -c "tr '\0' ' ' </proc/$trainer_pid/cmdline | grep -q -- '--continual --dataset-sub ipc://'"

# the whole loop: a model gets exported and served over HTTP
served() { curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; }
check model_served wait_for 60 served
check status_sees_model bash -c "fovea status --dir '$S' --json | grep -q '\"model\":{\"version\":[1-9]'"

pid_of() { st | grep -o "\"name\":\"$1\",\"state\":\"[a-z]*\",\"pid\":[0-9]*" | grep -o '[0-9]*$'; }
OLD=$(pid_of serve)
PIDS="$(st | grep -o '"pid":[0-9]*' | grep -o '[0-9]*' | tr '\n' ' ')"
kill -9 "$OLD"
restarted() { local p; p=$(pid_of serve); [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$OLD" ] &&
	st | grep -q '"name":"serve","state":"up","pid":[0-9]*,"since":[0-9]*,"restarts":1'; }
check killed_daemon_restarted wait_for 20 restarted
check served_after_restart wait_for 20 served
PIDS="$PIDS $(st | grep -o '"pid":[0-9]*' | grep -o '[0-9]*' | tr '\n' ' ')"

kill -TERM $UP
gone() { ! kill -0 $UP 2>/dev/null; }
check sigterm_stops_up wait_for 20 gone
wait $UP; check_eq up_exit_status_0 $? 0
left=""
for p in $PIDS; do [ "$p" != 0 ] && kill -0 "$p" 2>/dev/null && left="$left $p"; done
check_eq no_process_left "$left" ""
check_eq no_process_under_state "$(pgrep -f "$S/" | tr '\n' ' ')" ""
check status_says_down bash -c "fovea status --dir '$S' --json | grep -q '\"running\":false'"
fv_done
