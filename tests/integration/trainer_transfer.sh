#!/usr/bin/env bash
# Transfer learning and distillation on real data: a 10-class checkpoint
# initializes a 3-class model (the head has another shape and is left fresh),
# --freeze '!fc.*' trains only the head (the backbone's weights do not move),
# and --teacher distills a model into another.
# timeout: 400
. "$(dirname "$0")/../itlib.sh"

fashion_subset train 1024 "$T/src"
fovea ingest --db "$T/ten" "$T/src/train-images-idx3-ubyte.gz" >/dev/null 2>&1
fashion_pngs 300 "$T/three" 0 1 7
fovea ingest --db "$T/db3" "$T/three" >"$T/ingest3.log" 2>&1
check_eq three_classes "$(fovea stats --db "$T/db3" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["classes"])')" 3

common=(--model resnet20 --batch 32 --threads 1 --workers 1 --eval-every 0)
fovea train "${common[@]}" --db "$T/ten" --out "$T/src_run" --max-steps 8 >"$T/a.log" 2>&1
check_eq source_run_ok $? 0
src=$(ls "$T/src_run/checkpoints/"ckpt-*.fvc | tail -1)

fovea train "${common[@]}" --db "$T/db3" --out "$T/ft" --init "$src" --freeze '!fc.*' --max-steps 6 >"$T/ft.log" 2>&1
check_eq finetune_ok $? 0
check head_skipped grep -q "fc.weight has another shape" "$T/ft.log"
dst=$(ls "$T/ft/checkpoints/"ckpt-*.fvc | tail -1)
fovea-trainer inspect "$src" --tensors >"$T/src.json"
fovea-trainer inspect "$dst" --tensors >"$T/dst.json"
check backbone_frozen_and_loaded python3 - "$T/src.json" "$T/dst.json" <<'PY'
import json, sys
a, b = (json.load(open(p))["fingerprints"] for p in sys.argv[1:])
conv = [k for k in a if k.endswith(".weight") and not k.startswith("fc.") and "bn" not in k]
assert conv and all(a[k] == b[k] for k in conv), [k for k in conv if a[k] != b[k]][:3]
assert a["fc.weight"] != b["fc.weight"]
PY
check_eq three_class_head "$(json_get "$T/dst.json" classes)" 3

fovea train "${common[@]}" --db "$T/ten" --out "$T/kd" --teacher "$src" --kd-alpha 0.7 --kd-temperature 4 --max-steps 6 >"$T/kd.log" 2>&1
check_eq distillation_runs $? 0
check distillation_logged grep -q "distilling from" "$T/kd.log"
fovea train "${common[@]}" --db "$T/db3" --out "$T/kd3" --teacher "$src" --max-steps 2 >"$T/kd3.log" 2>&1
check_eq teacher_class_mismatch_refused $? 1
check mismatch_named grep -q "teacher .* classes" "$T/kd3.log"
fv_done
