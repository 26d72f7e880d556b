#!/usr/bin/env bash
# End-to-end training throughput through real augment workers (fovea train:
# LMDB -> workers -> engine) as a ratio to the engine alone (fovea bench
# train), both resnet20 on Fashion-MNIST at batch 128 on the same thread
# count, measured back to back in this run. Target >= 0.9: the data path
# must cost under 10%.
set -u
BIN=${FV_BIN:-build/bin}
T=${FV_BENCH_THREADS:-2}
W=${FV_BENCH_WORKERS:-1}
dir=$(mktemp -d "${TMPDIR:-/tmp}/fvbench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
F=/usr/share/datasets/fashion-mnist
"$BIN/fovea" ingest --db "$dir/db" "$F/train-images-idx3-ubyte.gz" >/dev/null 2>&1 || { echo "ingest failed"; exit 1; }
engine=$("$BIN/fovea-bench" train --model resnet20 --input 1x28x28 --batch 128 --threads "$T" --json 2>/dev/null |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["img_per_s"])')
# 40 warm-up steps, then the mean over the next 120 (metrics lines every 40)
"$BIN/fovea" train --db "$dir/db" --out "$dir/run" --model resnet20 --batch 128 --threads "$T" \
	--workers "$W" --max-steps 160 --log-steps 40 --eval-every 0 >"$dir/train.log" 2>&1 || {
	echo "fovea train failed:"; tail -5 "$dir/train.log"; exit 1; }
python3 - "$dir/run/metrics.jsonl" "$engine" "$W" "$T" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"val_top1"' not in l]
steady = [r for r in rows if r["step"] > 40]
ips = sum(r["img_per_s"] for r in steady) / len(steady)
starved = sum(r["starved"] for r in steady) / len(steady)
engine = float(sys.argv[2])
print(json.dumps({"engine_img_per_s": round(engine, 1), "pipeline_img_per_s": round(ips, 1),
                  "pipeline_vs_engine": round(ips / engine, 3), "starved": round(starved, 4),
                  "workers": int(sys.argv[3]), "threads": int(sys.argv[4])}))
PY
