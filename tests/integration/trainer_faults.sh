#!/usr/bin/env bash
# The trainer under faults: kill -9 while checkpoints are being written (the
# newest complete checkpoint always loads, and resume works), an augment
# worker killed mid-epoch (every sample of the epoch trained exactly once),
# SIGTERM (checkpoint, exit 0), and bad input (one clear error each).
# timeout: 500
. "$(dirname "$0")/../itlib.sh"

fashion_subset train 2048 "$T/src"
fashion_subset t10k 300 "$T/src"
fovea ingest --db "$T/db" "$T/src/train-images-idx3-ubyte.gz" >/dev/null 2>&1
fovea ingest --db "$T/db" --split val "$T/src/t10k-images-idx3-ubyte.gz" >/dev/null 2>&1

# --- kill -9 during checkpoint writes: one checkpoint per step, killed at
# scattered moments; every file that is there must load
common=(--db "$T/db" --model resnet20 --batch 32 --threads 1 --workers 1 --eval-every 0)
ok_loads=1
bg fovea train "${common[@]}" --out "$T/k" --epochs 3 --ckpt-steps 1 --keep-last 3
pid=$!
wait_for 60 bash -c "ls '$T/k/checkpoints/' 2>/dev/null | grep -q fvc"
for delay in 0.37 0.61 0.23 0.89 0.45; do
	sleep $delay
	kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
	for f in "$T/k/checkpoints/"ckpt-*.fvc; do
		fovea-trainer inspect "$f" >/dev/null 2>"$T/inspect.err" || { ok_loads=0; cat "$T/inspect.err"; }
	done
	bg fovea train --resume "$T/k"
	pid=$!
	sleep 1
done
kill -TERM $pid; wait $pid
check_eq sigterm_exits_0 $? 0
check_eq every_checkpoint_loads_after_kills "$ok_loads" 1
check temp_files_never_count bash -c "! fovea-trainer inspect '$T/k/checkpoints/'.ckpt* 2>/dev/null"

# --- a worker killed mid-epoch: the trace lists every key exactly once
bg fovea train "${common[@]}" --out "$T/w" --epochs 1 --workers 2 --trace "$T/trace" --log-steps 1
pid=$!
wait_for 60 bash -c "grep -q '\"step\": 5,' '$T/w/metrics.jsonl' 2>/dev/null"
victim=$(pgrep -P $pid -f fovea-augment | head -1)
check found_a_worker test -n "$victim"
kill -9 "$victim"
wait $pid
check_eq trainer_survives_worker_kill $? 0
check every_sample_exactly_once python3 - "$T/trace" <<'PY'
import sys
keys = [k for line in open(sys.argv[1]) for k in line.split()[2:]]
batches = [tuple(line.split()[:2]) for line in open(sys.argv[1])]
assert len(batches) == len(set(batches)) == 64, len(batches)
assert len(keys) == len(set(keys)) == 2048, (len(keys), len(set(keys)))
PY

# --- a stop mid-epoch (--max-steps), then --resume to the epoch's end: the
# trainer fetches each next batch while a step runs, and the trace lists
# only the batches it trained on, each once across the stop
fovea train "${common[@]}" --out "$T/m" --epochs 1 --max-steps 7 --trace "$T/mtrace" \
	>/dev/null 2>&1
check_eq max_steps_trace_lists_trained_batches "$(wc -l <"$T/mtrace")" 7
fovea train --resume "$T/m" --max-steps 0 >/dev/null 2>&1
check resumed_epoch_each_batch_once python3 - "$T/mtrace" <<'PY'
import sys
batches = [tuple(line.split()[:2]) for line in open(sys.argv[1])]
keys = [k for line in open(sys.argv[1]) for k in line.split()[2:]]
assert len(batches) == len(set(batches)) == 64, len(batches)
assert len(keys) == len(set(keys)) == 2048, (len(keys), len(set(keys)))
PY

# --- bad input: one clear line naming the problem, exit 1
fovea train --db "$T/nope" --out "$T/x1" >"$T/e1" 2>&1
check_eq missing_db_fails $? 1
check missing_db_named grep -q "$T/nope" "$T/e1"
fovea train --db "$T/db" --out "$T/x2" --model resnet9000 >"$T/e2" 2>&1
check_eq unknown_model_fails $? 1
check unknown_model_named grep -q "resnet9000" "$T/e2"
printf 'FVCKPT\0\0garbage' >"$T/bad.fvc"
fovea train --db "$T/db" --out "$T/x3" --init "$T/bad.fvc" >"$T/e3" 2>&1
check_eq bad_init_fails $? 1
check bad_init_named grep -q "bad.fvc" "$T/e3"
fovea ingest --db "$T/empty" --split val "$T/src/t10k-images-idx3-ubyte.gz" >/dev/null 2>&1
fovea train --db "$T/empty" --out "$T/x4" >"$T/e4" 2>&1
check_eq empty_train_split_fails $? 1
check empty_split_named grep -q "train split" "$T/e4"
fovea train --db "$T/db" --out "$T/x5" --epochs 0 >"$T/e5" 2>&1
check_eq bad_option_fails $? 1
check bad_option_named grep -q "epochs" "$T/e5"
fv_done
