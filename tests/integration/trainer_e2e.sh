#!/usr/bin/env bash
# The judge's check for the trainer: real Fashion-MNIST (60000 train, 10000
# val) ingested, `fovea train --model resnet20 --epochs 1` through real
# augment workers reaches >= 85% val top-1, and the run directory holds what
# other stages read (config, metrics.jsonl with val_top1/top5, checkpoints/,
# trainer.log).
# timeout: 900
. "$(dirname "$0")/../itlib.sh"

fovea ingest --db "$T/db" "$FASHION/train-images-idx3-ubyte.gz" >"$T/ingest.log" 2>&1
fovea ingest --db "$T/db" --split val "$FASHION/t10k-images-idx3-ubyte.gz" >>"$T/ingest.log" 2>&1
check ingest_ok test -d "$T/db"

start=$SECONDS
fovea train --db "$T/db" --out "$T/run" --model resnet20 --epochs 1 --batch 128 --lr 0.2 \
	--threads 2 --workers 1 --log-steps 100 >"$T/train.log" 2>&1
rc=$?
check_eq train_exit_0 "$rc" 0
echo "# 1 epoch resnet20 on Fashion-MNIST took $((SECONDS - start)) s"
[ "$rc" = 0 ] || tail -20 "$T/train.log"

check config_written grep -q '^model = resnet20' "$T/run/config"
check log_written test -s "$T/run/trainer.log"
ckpt=$(ls "$T/run/checkpoints/"ckpt-*.fvc 2>/dev/null | tail -1)
check checkpoint_written test -n "$ckpt"
top1=$(python3 -c '
import json,sys
rows=[json.loads(l) for l in open(sys.argv[1])]
ev=[r for r in rows if "val_top1" in r]
assert all(k in rows[0] for k in ("epoch","step","loss","lr","img_per_s")), rows[0]
print(ev[-1]["val_top1"] if ev else -1)' "$T/run/metrics.jsonl")
echo "# val top-1 after 1 epoch: $top1"
check val_top1_at_least_85 python3 -c "import sys; sys.exit(0 if float('$top1') >= 0.85 else 1)"
check inspect_reads_checkpoint bash -c "fovea-trainer inspect '$ckpt' | grep -q '\"classes\": 10'"
fv_done
