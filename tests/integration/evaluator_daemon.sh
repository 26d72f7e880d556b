#!/usr/bin/env bash
# fovea-evaluator as a daemon over a real (short) Fashion-MNIST run: every
# checkpoint gets exactly one eval.jsonl line, also across a kill -9 mid-way
# and a torn last line; the champion file names the best (top-1, ties lower
# loss) and champion.fvc is a copy of it; garbage on the SUB socket does not
# kill it; checkpoints the trainer announces later (scan timer off) are
# evaluated from CheckpointReady alone, with EvalResult/NewBest published; an
# unreadable checkpoint is recorded as failed; SIGTERM exits 0.
# timeout: 300
. "$(dirname "$0")/../itlib.sh"

cc -O1 -o "$T/zt" "$FV_ROOT/tests/integration/evaluator_zt.c" -lzmq || { fail build_zt; fv_done; }
fashion_subset train 2000 "$T/src"
fashion_subset t10k 1000 "$T/src"
fovea ingest --db "$T/db" "$T/src/train-images-idx3-ubyte.gz" >/dev/null 2>&1
fovea ingest --db "$T/db" --split val "$T/src/t10k-images-idx3-ubyte.gz" >/dev/null 2>&1
R=$T/run
targs=(--db "$T/db" --model "conv 16 3; bn; relu; maxpool 2; conv 32 3; bn; relu; gap; linear"
       --batch 64 --threads 1 --workers 1 --ckpt-steps 3 --ckpt-minutes 0 --keep-last 1000
       --eval-every 0 --lr 0.2 --seed 3)
fovea train "${targs[@]}" --epochs 1 --out "$R" >"$T/train1.log" 2>&1
check_eq train_ok $? 0
n1=$(ls "$R"/checkpoints/ckpt-*.fvc | wc -l)
echo "# $n1 checkpoints after epoch 1"

EVPID=
ev_start() {
	bg fovea-evaluator --runs "$R" --db "$T/db" --threads 1 --scan-ms 600000 >>"$T/ev.log" 2>&1
	EVPID=$!
}
lines() { [ -f "$R/eval.jsonl" ] && wc -l <"$R/eval.jsonl" || echo 0; }
lines_at_least() { [ "$(lines)" -ge "$1" ]; }

# --- kill -9 mid-way, a torn line, restart: nothing lost, nothing twice
ev_start
wait_for 60 lines_at_least 3
kill -9 "$EVPID"; wait "$EVPID" 2>/dev/null
k=$(lines)
echo "# killed after $k of $n1 evaluations"
check killed_midway test "$k" -lt "$n1"
printf '{"ckpt": "ckpt-0000000' >>"$R/eval.jsonl"   # a crash mid-write
printf 'ckpt=ckpt-000000003.fvc\n' >"$R/champion"  # ... or between eval.jsonl and champion
ev_start
check all_evaluated_after_restart wait_for 120 lines_at_least "$n1"

verify() { # every checkpoint file exactly once, every line whole
	python3 - "$R" <<'PY'
import json, os, sys
run = sys.argv[1]
rows = [json.loads(l) for l in open(f"{run}/eval.jsonl")]
names = [r["ckpt"] for r in rows]
files = sorted(f for f in os.listdir(f"{run}/checkpoints") if f.startswith("ckpt-") and f.endswith(".fvc"))
assert sorted(names) == files, (sorted(names), files)
for r in rows:
    if r["status"] == "ok":
        assert r["n"] == 1000 and len(r["per_class"]) == 10 and len(r["confusion"]) == 10, r["ckpt"]
        assert sum(map(sum, r["confusion"])) == r["n"]
        assert abs(sum(r["confusion"][i][i] for i in range(10)) / r["n"] - r["top1"]) < 1e-6
PY
}
check each_checkpoint_exactly_once verify

champion_ok() {
	python3 - "$R" <<'PY'
import json, sys
run = sys.argv[1]
rows = [json.loads(l) for l in open(f"{run}/eval.jsonl") if '"ok"' in l]
best = min(rows, key=lambda r: (-r["top1"], r["loss"], r["step"]))
champ = dict(l.rstrip("\n").split("=", 1) for l in open(f"{run}/champion"))
assert champ["ckpt"] == best["ckpt"], (champ["ckpt"], best["ckpt"])
assert abs(float(champ["top1"]) - best["top1"]) < 1e-9
print(best["ckpt"])
PY
}
champ=$(champion_ok)
check champion_is_best test -n "$champ"
# the put-back champion file is behind the verdicts (at least ckpt-6's):
# what came after it was judged again, whatever the kill's timing
check champion_file_behind_rejudged grep -q "judged before the last verdict" "$T/ev.log"
check champion_fvc_is_its_copy cmp -s "$R/champion.fvc" "$R/checkpoints/$champ"

# --- garbage on the SUB endpoint (the trainer's event socket)
env_bad=$(printf '08291001%s' "22" ; printf '04ffffffff')      # CheckpointReady, payload garbage
env_trunc=0829100122050a10616263                                 # payload truncated inside
"$T/zt" pub "ipc://$R/events.sock" deadbeef "$env_bad" "$env_trunc" "00:01:02" "" 0829 ffffffffffffffffffff
sleep 0.5
check survives_garbage kill -0 "$EVPID"
check garbage_logged grep -q "malformed" "$T/ev.log"

# --- more checkpoints later, announced only by CheckpointReady
printf 'FVCKPT\0\0garbage' >"$R/checkpoints/ckpt-garbage.fvc"
bg "$T/zt" sub "ipc://$R/eval.sock" 60 >"$T/sub.txt"
SUBPID=$!
fovea train "${targs[@]}" --epochs 2 --resume "$R" >"$T/train2.log" 2>&1
check_eq resume_train_ok $? 0
n2=$(ls "$R"/checkpoints/ckpt-*.fvc | wc -l)
echo "# $n2 checkpoint files after epoch 2 (one garbage)"
check new_checkpoints_evaluated_from_events wait_for 120 lines_at_least "$n2"
check each_checkpoint_exactly_once_again verify
check bad_checkpoint_recorded_failed python3 -c "
import json,sys
r=[json.loads(l) for l in open('$R/eval.jsonl') if 'ckpt-garbage' in l]
assert len(r)==1 and r[0]['status']=='failed' and r[0]['error'], r"
check bad_checkpoint_one_line grep -q "ckpt-garbage.fvc: cannot evaluate" "$T/ev.log"
champ=$(champion_ok)
check champion_still_best test -n "$champ"
check champion_moved_to_epoch_2 python3 -c "import sys; sys.exit(0 if int('$champ'[5:14]) > 31 else 1)"
check champion_fvc_current cmp -s "$R/champion.fvc" "$R/checkpoints/$champ"
sleep 1
kill "$SUBPID" 2>/dev/null
check eval_result_published grep -q "type 60" "$T/sub.txt"
check new_best_published grep -q "type 61" "$T/sub.txt"

# --- SIGTERM: clean exit 0, local augment workers gone
kill -TERM "$EVPID"
wait "$EVPID"
check_eq sigterm_exit_0 $? 0
no_workers() { ! pgrep -f "$T/.*[e]val-augment.sock" >/dev/null; } # only this test's workers; [e]: not our own text
check no_workers_left wait_for 5 no_workers
fv_done
