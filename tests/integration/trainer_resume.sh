#!/usr/bin/env bash
# kill -9 mid-epoch, then `fovea train --resume`: on CPU with fixed threads
# the loss of every step equals an uninterrupted run's, bit for bit (the
# metrics keep 9 significant digits), and the run ends where it would have.
# timeout: 400
. "$(dirname "$0")/../itlib.sh"

fashion_subset train 2048 "$T/src"
fashion_subset t10k 500 "$T/src"
fovea ingest --db "$T/db" "$T/src/train-images-idx3-ubyte.gz" >/dev/null 2>&1
fovea ingest --db "$T/db" --split val "$T/src/t10k-images-idx3-ubyte.gz" >/dev/null 2>&1
args=(--db "$T/db" --model resnet20 --epochs 2 --batch 32 --threads 1 --workers 1 --seed 7
      --log-steps 1 --ckpt-steps 10 --eval-every 0 --lr 0.1)

fovea train "${args[@]}" --out "$T/a" >"$T/a.log" 2>&1
check_eq reference_run_ok $? 0

bg fovea train "${args[@]}" --out "$T/b"
pid=$!
# kill once it is past the checkpoint at step 20 and before the epoch ends (64 steps)
wait_for 120 bash -c "grep -q '\"step\": 25,' '$T/b/metrics.jsonl'"
kill -9 $pid; wait $pid 2>/dev/null
killed_at=$(grep -c '"step"' "$T/b/metrics.jsonl")
echo "# killed after $killed_at logged steps"
check killed_mid_epoch test "$killed_at" -lt 64
fovea train --resume "$T/b" >"$T/b2.log" 2>&1
check_eq resume_exit_0 $? 0
check resumed_from_checkpoint grep -q "resuming from .*ckpt-0*[1-9]0.fvc" "$T/b2.log"

check loss_curve_bit_identical python3 - "$T/a/metrics.jsonl" "$T/b/metrics.jsonl" <<'PY'
import json, sys
def curve(p):
    c = {}
    for line in open(p):
        r = json.loads(line)
        if "val_top1" not in r:
            c[r["step"]] = r["loss"]   # the last word on each step counts
    return c
a, b = curve(sys.argv[1]), curve(sys.argv[2])
assert len(a) == 128 and sorted(a) == sorted(b), (len(a), len(b))
diff = [s for s in a if a[s] != b[s]]
assert not diff, f"steps differ: {diff[:5]} a={a[diff[0]]} b={b[diff[0]]}"
PY
last_a=$(ls "$T/a/checkpoints" | tail -1); last_b=$(ls "$T/b/checkpoints" | tail -1)
check_eq same_final_checkpoint "$last_b" "$last_a"
fa=$(fovea-trainer inspect "$T/a/checkpoints/$last_a" --tensors | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprints"]["fc.weight"])')
fb=$(fovea-trainer inspect "$T/b/checkpoints/$last_b" --tensors | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprints"]["fc.weight"])')
check_eq same_final_weights "$fb" "$fa"
fv_done
