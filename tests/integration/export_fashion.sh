#!/usr/bin/env bash
# export_fashion.sh — end to end on Fashion-MNIST: ingest, a short real
# training run, `fovea export`, then the judged properties: INT8 top-1
# within 0.5 points of FP32 on val, model.fovea >= 3.5x smaller than
# model-fp32.fovea, both ONNX files pass onnx.checker (full_check) and
# give fovea's own labels in onnxruntime on >= 99% of val images; a
# refused export publishes nothing; the daemon exports a new champion.
# timeout: 420
source "$(dirname "$0")/../itlib.sh"
PY=/usr/bin/python3   # Debian's python3-onnx lives there, not in other pythons on PATH
NPM_DIR=$FV_ROOT/build/npm   # shared by the plain and sanitized builds
SPEC="conv 16 3; bn; relu; maxpool 2; res { conv 16 3; bn; relu; conv 16 3; bn }; relu; res { conv 32 3 s2; bn; relu; conv 32 3; bn }; relu; gap; linear"
STEPS=200

fovea ingest --db "$T/db" --nosync "$FASHION/train-images-idx3-ubyte.gz" >"$T/ingest.log" 2>&1 &&
	fovea ingest --db "$T/db" --nosync --split val "$FASHION/t10k-images-idx3-ubyte.gz" >>"$T/ingest.log" 2>&1
check ingest test -d "$T/db"

fovea train --db "$T/db" --out "$T/run" --model "$SPEC" --max-steps $STEPS --batch 128 --lr 0.4 \
	--eval-every 0 --ckpt-steps $STEPS --ckpt-minutes 0 --threads 2 >"$T/train.log" 2>&1
CKPT=$(ls "$T"/run/checkpoints/ckpt-*.fvc 2>/dev/null | tail -1)
check train test -f "$CKPT"

fovea export --ckpt "$CKPT" --db "$T/db" --out "$T/models" --json >"$T/export.json" 2>"$T/export.log"
check export_publishes test -f "$T/models/current/model.fovea" -a -f "$T/models/current/model-fp32.fovea" \
	-a -f "$T/models/current/model.onnx" -a -f "$T/models/current/model-fp32.onnx"
check_eq current_is_v1 "$(readlink "$T/models/current")" v1
cat "$T/export.json"

# The judged rules, from the exporter's own report and from the files.
"$PY" - "$T/export.json" "$T/models/current" <<'PYEOF' && ok accuracy_and_size || fail accuracy_and_size
import json, os, sys
r = json.loads(open(sys.argv[1]).read())
d = sys.argv[2]
drop = (r["top1_fp32"] - r["top1_int8"]) * 100
ratio = os.path.getsize(d + "/model-fp32.fovea") / os.path.getsize(d + "/model.fovea")
print("fp32 %.2f%% int8 %.2f%% drop %.2f points, size ratio %.2fx, val %d" %
      (r["top1_fp32"] * 100, r["top1_int8"] * 100, drop, ratio, r["val_images"]))
ok = r["published"] and drop <= 0.5 and ratio >= 3.5 and r["val_images"] == 10000 and r["top1_fp32"] > 0.6
sys.exit(0 if ok else 1)
PYEOF

"$PY" - "$T/models/current" <<'PYEOF' && ok onnx_checker || fail onnx_checker
import sys, onnx
for f in ("model.onnx", "model-fp32.onnx"):
    m = onnx.load(sys.argv[1] + "/" + f)
    onnx.checker.check_model(m, full_check=True)
    meta = {p.key: p.value for p in m.metadata_props}
    assert m.opset_import[0].version >= 13, f
    assert meta["class_names"].startswith("["), f
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch", f
    if f == "model.onnx":
        ops = {n.op_type for n in m.graph.node}
        assert "QuantizeLinear" in ops and "DequantizeLinear" in ops, ops
PYEOF

# onnxruntime (npm's onnxruntime-node carries its CPU runtime).
if [ ! -d "$NPM_DIR/node_modules/onnxruntime-node" ]; then
	mkdir -p "$NPM_DIR" && (cd "$NPM_DIR" && timeout 300 npm install --ignore-scripts --no-audit --no-fund \
		onnxruntime-node@1.30.0 >"$T/npm.log" 2>&1)
fi
if [ ! -d "$NPM_DIR/node_modules/onnxruntime-node" ]; then
	fail onnxruntime "npm install onnxruntime-node into $NPM_DIR failed (registry unreachable?): $(tail -3 "$T/npm.log" 2>/dev/null)"
else
	fovea-exporter predict --model "$T/models/current/model.fovea" --db "$T/db" --images 2000 \
		--inputs-out "$T/in.f32" --labels-out "$T/fv8.txt" >/dev/null &&
	fovea-exporter predict --model "$T/models/current/model-fp32.fovea" --db "$T/db" --images 2000 \
		--labels-out "$T/fv32.txt" >/dev/null
	for v in "" -fp32; do
		NODE_PATH=$NPM_DIR/node_modules node "$FV_ROOT/tests/integration/export_ort.js" \
			"$T/models/current/model$v.onnx" "$T/in.f32" 1 28 28 "$T/ort$v.txt" 2>"$T/ort$v.log"
		want=$([ -z "$v" ] && echo "$T/fv8.txt" || echo "$T/fv32.txt")
		agree=$(paste "$want" "$T/ort$v.txt" | awk 'NF == 2 && $1 == $2 { s++ } END { printf "%d", NR ? 10000 * s / NR : 0 }')
		n=$(wc -l <"$T/ort$v.txt" 2>/dev/null || echo 0)
		echo "onnxruntime model$v.onnx: same top-1 as model$v.fovea on $((agree / 100)).$((agree % 100))% of $n val images"
		if [ "$agree" -ge 9900 ] && [ "$n" = 2000 ]; then ok "onnxruntime_agrees$v"; else fail "onnxruntime_agrees$v" "$(cat "$T/ort$v.log")"; fi
	done
fi

# A refused export (demanding INT8 beat FP32 by 50 points) exits non-zero and publishes nothing.
fovea export --ckpt "$CKPT" --db "$T/db" --out "$T/models" --max-drop -50 --calib minmax \
	--select-images 500 --val-images 1000 >/dev/null 2>"$T/refuse.log"
rc=$?
check refused_exit_nonzero test "$rc" != 0
check refused_says_why grep -q "not published" "$T/refuse.log"
check refused_publishes_nothing test ! -e "$T/models/v2" -a "$(readlink "$T/models/current")" = v1

# The daemon: a champion appears in the run directory -> exported.
bg fovea-exporter --watch "$T/run" --db "$T/db" --out "$T/dmodels" --poll-ms 200 --calib minmax \
	--select-images 500 --val-images 1000 --calib-images 256 >"$T/daemon.log" 2>&1
ln "$CKPT" "$T/run/champion.fvc"
if wait_for 90 test -L "$T/dmodels/current"; then ok daemon_exports_champion; else fail daemon_exports_champion "$(tail -5 "$T/daemon.log")"; fi
check daemon_manifest grep -q "step=$STEPS" "$T/dmodels/current/manifest"
fv_done
