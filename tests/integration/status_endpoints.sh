#!/usr/bin/env bash
# status_endpoints.sh — `fovea status --endpoints` asks real daemons over
# their status endpoints (tcp:// and ipc://): fovea-ingest --watch and
# fovea-serve answer with their figures (the dataset's equal `fovea stats`),
# garbage sent to a status socket is refused or dropped and the daemon goes
# on answering, a killed daemon shows down, and a config file can name the
# endpoints.
# timeout: 60
source "$(dirname "$0")/../itlib.sh"
cc -O1 -o "$T/garbage" "$FV_ROOT/tests/integration/status_garbage.c" -lzmq || { fail build_garbage; fv_done; }
IN=$T/inbox
fashion_pngs 40 "$IN" 0 1 7
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ING=tcp://127.0.0.1:$PORT
SRV=ipc://$T/serve-status.sock
bg fovea ingest --db "$T/db" --watch "$IN" --val-fraction 0.2 --batch-ms 100 --nosync \
	--status-endpoint "$ING" 2>"$T/ingest.log"
ING_PID=$!
mkdir -p "$T/models"
bg fovea-serve --model-dir "$T/models" --http-port 0 --watch-ms 0 --status-endpoint "$SRV" 2>"$T/serve.log"
SRV_PID=$!

EPS="ingest=$ING,serve=$SRV"
st() { fovea status --endpoints "$EPS" --json --timeout-ms 1000; }
all_in() { [ -z "$(find "$IN"/0 "$IN"/1 "$IN"/7 -type f)" ]; }
check inbox_ingested wait_for 30 all_in
both_up() { st | grep -q '"answering":2'; }
check both_answer wait_for 20 both_up
sleep 0.5 # the figures are at most a fill interval (250 ms) old
st >"$T/s1.json"
fovea stats --db "$T/db" --json >"$T/stats.json"
check figures_match_stats python3 - "$T/s1.json" "$T/stats.json" "$ING_PID" "$SRV_PID" <<'PY'
import json, sys
s, t = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
d = {x["name"]: x for x in s["daemons"]}
assert s["endpoints"] and s["answering"] == 2, s
assert d["ingest"]["state"] == "up" and d["ingest"]["pid"] == int(sys.argv[3]), d
assert d["serve"]["state"] == "up" and d["serve"]["pid"] == int(sys.argv[4]), d
assert d["ingest"]["host"] and d["ingest"]["since"] > 0, d
ds = s["dataset"]
assert ds["records"] == 40 and ds["classes"] == 3, ds
for k in ("version", "records", "classes"):
    assert ds[k] == t[k], (k, ds[k], t[k])
for k in ("train", "val", "test"):
    assert ds[k] == t["splits"][k], (k, ds[k], t["splits"])
assert ds["train"] + ds["val"] == 40 and ds["val"] > 0, ds
assert s["ingest"]["added"] == 40 and s["ingest"]["rejected"] == 0, s["ingest"]
assert s["serve"]["requests"] == 0 and s["serve"]["model_version"] == 0, s["serve"]
PY
fovea status --endpoints "$EPS" >"$T/table.txt"
check table_daemons_up bash -c "grep -q '^ingest  *up  *$ING_PID' '$T/table.txt' && grep -q '^serve  *up  *$SRV_PID' '$T/table.txt'"
check table_dataset_line grep -q '^dataset     v[0-9]*: 40 images' "$T/table.txt"

# garbage: refused (an answer with an error) or dropped, never a crash
G=$("$T/garbage" "$SRV")
check garbage_refused test "$G" -ge 1
"$T/garbage" "$ING" >/dev/null
exec 3<>"/dev/tcp/127.0.0.1/$PORT" && head -c 4096 /dev/urandom >&3; exec 3>&- # not even ZMTP
check ingest_alive_after_garbage kill -0 "$ING_PID"
check serve_alive_after_garbage kill -0 "$SRV_PID"
check still_answers_after_garbage both_up

# more images: the live figures follow
fashion_pngs 10 "$T/more" 2
mkdir -p "$IN/2" && mv "$T/more/2/"* "$IN/2/"
grown() { st | python3 -c 'import json,sys; assert json.load(sys.stdin)["dataset"]["records"] == 50'; }
check figures_follow_new_images wait_for 20 grown

# a config file names the endpoints; a killed daemon is down
echo "endpoints = $EPS" >"$T/status.conf"
echo "timeout-ms = 500" >>"$T/status.conf"
kill -9 "$SRV_PID"
fovea status -c "$T/status.conf" --json >"$T/s2.json"
check_eq exit_status_one_up $? 0
check killed_daemon_down python3 - "$T/s2.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
d = {x["name"]: x for x in s["daemons"]}
assert s["answering"] == 1 and d["serve"]["state"] == "down" and "no answer" in d["serve"]["error"], s
assert d["ingest"]["state"] == "up" and s["dataset"]["records"] == 50, s
PY
kill -9 "$ING_PID"
fovea status -c "$T/status.conf" >"$T/table2.txt"
check_eq exit_status_none_up $? 1
check table_both_down bash -c "grep -q '^ingest  *down' '$T/table2.txt' && grep -q '^serve  *down' '$T/table2.txt'"
fovea status --endpoints "nonsense" >/dev/null 2>&1
check_eq bad_list_exit_2 $? 2
fv_done
