#!/usr/bin/env bash
# make bench-accuracy: the long run (not in CI). Ingests Fashion-MNIST, trains
# with the recipe in deploy/fashion-mnist.conf, and reports the val top-1 it
# reached and the wall time it took. Exit 1 below the target.
set -u
cd "$(dirname "$0")/.."
BIN=$PWD/${BUILD:-build}/bin
D=${FV_ACC_DIR:-$PWD/build/accuracy}
F=/usr/share/datasets/fashion-mnist
TARGET=${FV_ACC_TARGET:-0.945}
rm -rf "$D" && mkdir -p "$D"
"$BIN/fovea" ingest --db "$D/db" --labels deploy/fashion-mnist.labels "$F/train-images-idx3-ubyte.gz" || exit 1
"$BIN/fovea" ingest --db "$D/db" --labels deploy/fashion-mnist.labels --split val "$F/t10k-images-idx3-ubyte.gz" || exit 1
start=$(date +%s)
"$BIN/fovea" train -c deploy/fashion-mnist.conf --db "$D/db" --out "$D/run" ${FV_ACC_ARGS:-} || exit 1
took=$(( $(date +%s) - start ))
python3 - "$D/run/metrics.jsonl" "$took" "$TARGET" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if '"val_top1"' in l]
top1, took, target = ev[-1]["val_top1"], int(sys.argv[2]), float(sys.argv[3])
print(json.dumps({"val_top1": top1, "val_top5": ev[-1]["val_top5"], "epochs": ev[-1]["epoch"] + 1,
                  "seconds": took, "target": target}))
sys.exit(0 if top1 >= target else 1)
PY
