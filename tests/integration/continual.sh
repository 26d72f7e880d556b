#!/usr/bin/env bash
# The continual-retraining loop (issue 9) with every daemon a real process on
# ipc:// in a temp dir: fovea ingest --watch INBOX, fovea-trainer --continual,
# fovea-evaluator, fovea-exporter, fovea-serve. A first model trains on 2000 Fashion-MNIST
# images and is judged and exported; then 2000 more (PNGs of images the first
# model never saw) land in INBOX/<class>/, a share of them going to val. The
# trainer must start round 1 on exactly the new train images plus the
# configured replay, from the champion, and redo it after a kill -9 (rounds.jsonl
# is its durable state); the evaluator must re-score the
# champion on the grown val split and judge the round (verdicts.jsonl, old/new
# val top-1 in eval.jsonl); the exported and served model must be the
# champion (`fovea status` and `fovea-trainer rounds` show the round), and the
# round must have replaced it (a model of 4000 images against one of 2000, all
# seeds fixed and one compute thread each: the outcome is the same every run).
# Needs ~90 s on 2 idle cores; the generous limit is for a loaded CI machine.
# timeout: 420
source "$(dirname "$0")/../itlib.sh"

jnum() { grep -o "\"$1\":[0-9.e+-]*" | head -1 | cut -d: -f2; }
R=$T/run
IN=$T/inbox
M=$T/models
DS=ipc://$T/dataset.sock

fashion_subset train 2000 "$T/src"
fashion_subset t10k 500 "$T/src"
fovea ingest --db "$T/db" "$T/src/train-images-idx3-ubyte.gz" >/dev/null 2>&1
fovea ingest --db "$T/db" --split val "$T/src/t10k-images-idx3-ubyte.gz" >/dev/null 2>&1
mkdir -p "$IN"

bg fovea ingest --db "$T/db" --watch "$IN" --pub "$DS" --encoding raw --val-fraction 0.2 \
	--batch-ms 200 --status-endpoint "ipc://$T/st-ingest.sock" >"$T/ingest.log" 2>&1
bg fovea-trainer --db "$T/db" --out "$R" --model resnet20 --batch 64 --epochs 1 --lr 0.2 \
	--threads 1 --workers 1 --ckpt-minutes 0 --seed 5 --continual --round-min-new 1000 \
	--round-epochs 1 --replay-ratio 0.5 --round-lr 0.5 --dataset-sub "$DS" \
	--status-endpoint "ipc://$T/st-trainer.sock" >"$T/trainer.log" 2>&1
TR=$!
bg fovea-evaluator --runs "$R" --db "$T/db" --threads 1 --scan-ms 1000 \
	--status-endpoint "ipc://$T/st-evaluator.sock" >"$T/evaluator.log" 2>&1
bg fovea-exporter --watch "$R" --db "$T/db" --out "$M" --poll-ms 300 --calib minmax --threads 1 \
	--calib-images 128 --select-images 200 --val-images 500 --max-drop 5 \
	--status-endpoint "ipc://$T/st-exporter.sock" >"$T/exporter.log" 2>&1
bg fovea-serve --model-dir "$M" --http-port 0 --zmq "ipc://$T/serve.sock" --watch-ms 300 \
	--stats "$T/serve.json" --status-endpoint "ipc://$T/st-serve.sock" >"$T/serve.log" 2>&1
# served VERSION: fovea-serve answers with model version VERSION
IMG=$T/probe.png
served() { fovea classify --endpoint "ipc://$T/serve.sock" --json "$IMG" 2>/dev/null | grep -q "\"version\": *$1[,}]"; }

# --- the first model: trained, judged, exported
if wait_for 200 test -L "$M/current"; then ok first_model_exported
else fail first_model_exported "$(tail -3 "$T/trainer.log" "$T/evaluator.log" "$T/exporter.log")"; fv_done; fi
first=$(sed -n 's/^ckpt=//p' "$R/champion")
first_top1=$(sed -n 's/^top1=//p' "$R/champion")
echo "# first champion $first, val top-1 $first_top1"
python3 - "$FASHION" "$IMG" <<'PY'
import gzip, struct, sys, zlib
with gzip.open(f"{sys.argv[1]}/t10k-images-idx3-ubyte.gz") as f:
    f.read(16); pix = f.read(784)
raw = b"".join(b"\0" + pix[y*28:(y+1)*28] for y in range(28))
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
open(sys.argv[2], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
                             + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
PY
check first_model_served wait_for 30 served 1
check base_recorded grep -q '"event":"base","time":[0-9]*,"key_bound":2500' "$R/rounds.jsonl"

# --- 2000 images the first model never saw (train images 2000..3999) into the inbox
fashion_range_pngs 2000 4000 "$T/stage"
for c in "$T/stage"/*; do mv "$c" "$IN/"; done # whole class folders moved in: one burst
done_count() { [ "$(find "$IN/.done" -type f 2>/dev/null | wc -l)" -ge 2000 ]; }
check inbox_ingested wait_for 60 done_count
s=$(fovea stats --db "$T/db" --json)
train=$(grep -o '"train":[0-9]*' <<<"$s" | head -1 | cut -d: -f2)
val=$(grep -o '"val":[0-9]*' <<<"$s" | head -1 | cut -d: -f2)
new=$((train - 2000))
echo "# dataset now $train train, $val val ($new new train images)"
check some_new_val test "$val" -gt 500

# --- round 1, interrupted: the trainer is killed -9 as it starts; the restarted
# one (--resume: the run's own config) redoes the round on the same records
round_started() { grep -q '"event":"start","round":1' "$R/rounds.jsonl"; }
check round_started wait_for 120 round_started
kill -9 "$TR"
wait "$TR" 2>/dev/null
for i in "${!FV_PIDS[@]}"; do [ "${FV_PIDS[$i]}" = "$TR" ] && unset "FV_PIDS[$i]"; done
check killed_before_end test -z "$(grep '"event":"end"' "$R/rounds.jsonl")"
bg fovea-trainer --resume "$R" >>"$T/trainer.log" 2>&1

# --- round 1: trained on exactly the new images plus the replay, then judged
round_ended() { grep -q '"event":"end","round":1' "$R/rounds.jsonl"; }
if wait_for 240 round_ended; then ok round_trained
else fail round_trained "$(tail -3 "$T/trainer.log")"; fv_done; fi
end=$(grep '"event":"end","round":1' "$R/rounds.jsonl")
starts=$(grep '"event":"start","round":1' "$R/rounds.jsonl" | grep -o '"to_key":[0-9]*' | sort -u)
check_eq redone_on_same_records "$starts" "$(grep -o '"to_key":[0-9]*' <<<"$end")"
check_eq round_ended_once "$(grep -c '"event":"end"' "$R/rounds.jsonl")" 1
# the round wrote progress lines as the initial training does (fovea status follows it)
check round_progress_lines python3 - "$R/metrics.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
r = [l for l in lines if l.get("round") == 1]
assert r, "no round-1 progress line"
assert r[-1]["step"] > max(l["step"] for l in lines if "round" not in l), r[-1]
assert r[-1]["epoch"] == 0 and r[-1]["epochs"] == 1 and r[-1]["img_per_s"] > 0 and r[-1]["loss"] > 0, r[-1]
PY
# the round starts once >= 1000 new train images are in and the burst has
# settled: all of them, counted once
rnew=$(jnum new <<<"$end")
check_eq round_new_images "$rnew" "$new"
check_eq round_replay "$(jnum replay <<<"$end")" $(((rnew + 1) / 2))
check_eq round_from_key "$(jnum from_key <<<"$end")" 2500
check round_key_span test $(($(jnum to_key <<<"$end") - 2500)) -ge "$rnew"
grep -q "\"init\":\"$R/champion.fvc\"" <<<"$end" && ok round_from_champion || fail round_from_champion "$end"
ck=$(sed -n 's/.*"checkpoint":"\([^"]*\)".*/\1/p' <<<"$end")

judged() { grep -q '"round":1,' "$R/verdicts.jsonl" 2>/dev/null; }
if wait_for 120 judged; then ok round_judged
else fail round_judged "$(tail -3 "$T/evaluator.log")"; fv_done; fi
v=$(grep '"round":1,' "$R/verdicts.jsonl" | tail -1)
echo "# verdict: $(sed -n 's/.*"why":"\([^"]*\)".*/\1/p' <<<"$v")"
check_eq verdict_on_grown_val "$(jnum val_n <<<"$v")" "$val"
check_eq champion_rescored "$(grep -o '"rescored":[a-z]*' <<<"$v" | cut -d: -f2)" true
grep -q '"verdict":"replaced"' <<<"$v" && ok round_replaced_champion || fail round_replaced_champion "$v"
# eval.jsonl: the round's checkpoint scored on old (the 500 first) and new val images apart
read -r eround n_old n_new t_old t_new < <(python3 - "$R/eval.jsonl" "$(basename "$ck")" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["ckpt"] == sys.argv[2]:
        print(e.get("round"), e.get("n_old"), e.get("n_new"), e.get("top1_old"), e.get("top1_new"))
PY
)
check_eq eval_knows_round "$eround" 1
check_eq old_val_images "$n_old" 500
check_eq new_val_images "$n_new" $((val - 500))
check old_new_top1 python3 -c "import sys; a, b = float('$t_old'), float('$t_new'); sys.exit(not (0 < a <= 1 and 0 < b <= 1))"

# --- the champion is the round's model, better than the first, and it is what is exported
champ=$(sed -n 's/^ckpt=//p' "$R/champion")
check_eq champion_is_round "$champ" "$(basename "$ck")"
cstep=$(sed -n 's/^step=//p' "$R/champion")
exported() { grep -q "step=$cstep\$" "$M/current/manifest"; }
check exported_is_champion wait_for 120 exported
cur=$(readlink "$M/current")
check_eq round_model_exported_as_v2 "$cur" v2
check round_model_served wait_for 30 served 2
# every daemon answers on its status endpoint with what the files say
EPS=$(for d in ingest trainer evaluator exporter serve; do printf '%s=ipc://%s/st-%s.sock,' $d "$T" $d; done)
live_ok() {
	fovea status --endpoints "$EPS" --json >"$T/live.json"
	python3 - "$T/live.json" "$(basename "$ck")" "$(fovea stats --db "$T/db" --json)" <<'PY'
import json, sys
s, ck, db = json.load(open(sys.argv[1])), sys.argv[2], json.loads(sys.argv[3])
assert s["answering"] == 5, [(d["name"], d.get("error")) for d in s["daemons"]]
assert s["dataset"]["records"] == db["records"] and s["dataset"]["version"] == db["version"], s["dataset"]
assert s["trainer"]["phase"].startswith("waiting"), s["trainer"]
assert s["training"]["round"] == 1 and s["workers"]["count"] >= 1, (s["training"], s["workers"])
# each worker by name: what it delivered (the workers did all the batches)
w = s["worker"]
assert len([k for k in w if k.endswith(".samples")]) == s["workers"]["count"], w
assert sum(v for k, v in w.items() if k.endswith(".samples")) > 0, w
assert s["champion"]["checkpoint"] == ck, s["champion"]
assert s["model"]["version"] == 2 and s["serve"]["model_version"] == 2, (s["model"], s["serve"])
PY
}
live_ok 2>/dev/null || sleep 1 # a daemon's figures may be one tick behind the files
check live_status live_ok
fovea-trainer rounds "$R" >"$T/rounds.txt"
fovea status --dir "$T" >"$T/status.txt" 2>&1
check status_shows_round grep -q "^round 1 .* -> replaced: top-1" "$T/status.txt"
check rounds_shown grep -q "^round 1 .* $rnew new + $(((rnew + 1) / 2)) replayed .* -> replaced: top-1" "$T/rounds.txt"
cat "$T/rounds.txt" | sed 's/^/# /'

for p in "${FV_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
rc=0
for p in "${FV_PIDS[@]}"; do wait "$p" || rc=$?; done
FV_PIDS=()
check_eq all_stop_cleanly "$rc" 0
fv_done
