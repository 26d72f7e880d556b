#!/usr/bin/env bash
# `fovea eval` and `fovea explain` on a short real Fashion-MNIST run:
# eval --json agrees with an independent recount from its own per-image
# --predictions (top-1, per-class, n) and with the trainer's own val score of
# the same checkpoint; explain writes a PNG of the image's size whose heat
# maps differ between two classes, for a stored record and for a JPEG file;
# damaged checkpoints fail with one line naming the file.
# timeout: 200
. "$(dirname "$0")/../itlib.sh"

fashion_subset train 2000 "$T/src"
fashion_subset t10k 1000 "$T/src"
fovea ingest --db "$T/db" "$T/src/train-images-idx3-ubyte.gz" >/dev/null 2>&1
fovea ingest --db "$T/db" --split val "$T/src/t10k-images-idx3-ubyte.gz" >/dev/null 2>&1
fovea train --db "$T/db" --out "$T/run" --model "conv 16 3; bn; relu; maxpool 2; conv 32 3; bn; relu; gap; linear" \
	--epochs 1 --batch 64 --threads 1 --workers 1 --lr 0.2 --seed 3 >"$T/train.log" 2>&1
check_eq train_ok $? 0
ck=$(ls "$T"/run/checkpoints/ckpt-*.fvc | tail -1)

fovea eval --db "$T/db" --ckpt "$ck" --json --predictions "$T/pred.txt" --threads 1 >"$T/eval.json" 2>"$T/eval.err"
check_eq eval_ok $? 0
check recount_matches python3 - "$T/eval.json" "$T/pred.txt" "$T/run/metrics.jsonl" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rows = [tuple(map(int, l.split())) for l in open(sys.argv[2])]
assert len(rows) == r["n"] == 1000, (len(rows), r["n"])
assert len({k for k, _, _ in rows}) == len(rows), "a key twice"
top1 = sum(l == p for _, l, p in rows) / len(rows)
assert abs(top1 - r["top1"]) < 1e-9, (top1, r["top1"])
for c in range(10):
    mine = [l == p for _, l, p in rows if l == c]
    assert abs(sum(mine) / len(mine) - r["per_class"][c]) < 1e-6, c
conf = r["confusion"]
for _, l, p in rows:
    conf[l][p] -= 1
assert all(v == 0 for row in conf for v in row), "confusion disagrees with predictions"
assert 0 <= r["top1"] <= r["top5"] <= 1 and r["loss"] > 0 and 0 <= r["ece"] <= 1
# the trainer scored the same checkpoint at the end of its epoch
ev = [json.loads(l) for l in open(sys.argv[3]) if "val_top1" in l][-1]
assert abs(ev["val_top1"] - r["top1"]) < 1e-6, (ev["val_top1"], r["top1"])
print("# top-1 %.4f over %d images, recounted" % (top1, len(rows)))
PY
check table_output bash -c "fovea eval --db '$T/db' --ckpt '$ck' --threads 1 2>/dev/null | grep -q '^top-1 '"

# --- external workers only (--workers 0): the same numbers; none at all: a clear error
bg fovea-augment --connect "ipc://$T/aug.sock" --threads 1 2>/dev/null
AUGPID=$!
fovea eval --db "$T/db" --ckpt "$ck" --json --augment-bind "ipc://$T/aug.sock" --workers 0 \
	--threads 1 >"$T/ext.json" 2>/dev/null
check_eq external_worker_eval_ok $? 0
check external_worker_same_scores python3 -c "
import json; a=json.load(open('$T/eval.json')); b=json.load(open('$T/ext.json'))
assert (a['top1'], a['loss'], a['confusion']) == (b['top1'], b['loss'], b['confusion'])"
kill "$AUGPID"; wait "$AUGPID" 2>/dev/null
fovea eval --db "$T/db" --ckpt "$ck" --augment-bind "ipc://$T/none.sock" --workers 0 >/dev/null 2>"$T/nw"
check_eq no_workers_fails $? 1
check no_workers_said grep -q "no augment workers" "$T/nw"

# --- explain: a stored record, two classes
key=$(awk 'NR == 7 { print $1 }' "$T/pred.txt")
fovea explain --ckpt "$ck" --db "$T/db" --key "$key" --class 0 --out "$T/c0.png" --threads 1 >"$T/x0.txt" 2>&1
check_eq explain_ok $? 0
fovea explain --ckpt "$ck" --db "$T/db" --key "$key" --class 1 --out "$T/c1.png" --threads 1 >"$T/x1.txt" 2>&1
check_eq explain_other_class_ok $? 0
check explain_prints_prediction grep -q "^predicted: " "$T/x0.txt"
png_size() { python3 -c "
import struct,sys
d=open(sys.argv[1],'rb').read(24)
assert d[:8]==b'\x89PNG\r\n\x1a\n'
print('%dx%d'%struct.unpack('>II',d[16:24]))" "$1"; }
check_eq explain_png_image_size "$(png_size "$T/c0.png")" 28x28
check classes_give_different_maps bash -c "! cmp -s '$T/c0.png' '$T/c1.png'"

# --- explain: a JPEG file is drawn at its own size
jpg=$(ls "$SHARED_DATA"/jpeg-bench/*.jpg 2>/dev/null | head -1)
if [ -n "$jpg" ]; then
	fovea explain --ckpt "$ck" "$jpg" --out "$T/j.png" --threads 1 >/dev/null 2>&1
	check_eq explain_jpeg_ok $? 0
	want=$(python3 -c "
import sys
d=open(sys.argv[1],'rb').read(); i=2
while i < len(d):
    m, n = d[i+1], int.from_bytes(d[i+2:i+4],'big')
    if m in (0xc0,0xc1,0xc2): print('%dx%d'%(int.from_bytes(d[i+7:i+9],'big'),int.from_bytes(d[i+5:i+7],'big'))); break
    i += 2 + n" "$jpg")
	check_eq explain_jpeg_size "$(png_size "$T/j.png")" "$want"
fi

# --- damaged checkpoints: exit 1, one line naming the file
head -c 3000 "$ck" >"$T/cut.fvc"
fovea eval --db "$T/db" --ckpt "$T/cut.fvc" --json >"$T/o" 2>"$T/e"
check_eq truncated_ckpt_fails $? 1
check truncated_ckpt_named grep -q "cut.fvc" "$T/e"
check_eq one_error_line "$(grep -vc 'fovea-augment' "$T/e")" 1
fovea explain --ckpt "$T/cut.fvc" --db "$T/db" --key "$key" --out "$T/z.png" >/dev/null 2>"$T/e2"
check_eq explain_bad_ckpt_fails $? 1
check explain_bad_ckpt_named grep -q "cut.fvc" "$T/e2"
fv_done
