#!/usr/bin/env bash
# tests/gpu/augment_path.sh — resnet50 training on the GPU fed by the real
# data path: JPEG photos -> fovea-ingest -> LMDB -> fovea-trainer (bf16,
# batch 256, 3x224x224) with W local fovea-augment workers sending uint8
# NHWC batches that go through pinned slots and are normalised on the GPU.
# Prints each run's img/s and starved share from its metrics.jsonl. Called by
# tests/gpu/run.sh; alone: device run, carry ["build/gpu"],
#   bash tests/gpu/augment_path.sh ["W1 W2 ..."]
# The carried photos (tests/gpu/prepare.sh packs 64 of ../shared/data/jpeg-bench)
# become distinct images here (shifted crops, mirrors; PIL is on the GPU
# machines), enough that the measured steps stay inside the first epoch.
set -uo pipefail
cd "$(dirname "$0")/../.."
P=${P:-build/gpu}
OUT=${OUT:-/tmp/fv-gpu-out}
. tests/gpu/env.sh >/dev/null || exit 1
WL=${1:-"8 15"}
STEPS=${STEPS:-40} MODEL=${MODEL:-resnet50} INPUT=${INPUT:-3x224x224} BATCH=${BATCH:-256}
DEVICE=${DEVICE:-cuda:bf16} # the overrides make a smoke run on a CPU possible
T=/tmp/fv-augpath
rm -rf "$T" && mkdir -p "$T/img"
N=$((BATCH * (STEPS + 2)))
python3 - "$P/photos" "$T/img" "$N" <<'PY' || exit 1
import os, sys
from concurrent.futures import ProcessPoolExecutor
from PIL import Image
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = sorted(f for f in os.listdir(src) if f.endswith('.jpg'))
def make(i):
    v = i // len(files)
    im = Image.open(os.path.join(src, files[i % len(files)])).convert('RGB')
    w, h = im.size
    dx, dy = v % 16, (v // 16) % 10
    im = im.crop((dx, dy, w - 16 + dx, h - 10 + dy))
    if v // 160 % 2:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    d = os.path.join(dst, 'c%d' % (i % 8))
    os.makedirs(d, exist_ok=True)
    im.save(os.path.join(d, '%05d.jpg' % i), quality=90)
with ProcessPoolExecutor(os.cpu_count()) as ex:
    list(ex.map(make, range(n), chunksize=64))
PY
"$BIN/fovea-ingest" --db "$T/db" --jobs "$(nproc)" "$T/img" >"$OUT/augpath_ingest.txt" 2>&1 ||
	{ tail -5 "$OUT/augpath_ingest.txt"; exit 1; }
echo "augpath_images: $(find "$T/img" -name '*.jpg' | wc -l), cores: $(nproc)"
rc=0
for w in $WL; do
	timeout 150 "$BIN/fovea-trainer" --db "$T/db" --out "$T/run$w" --model "$MODEL" \
		--input "$INPUT" --device "$DEVICE" --batch "$BATCH" --workers "$w" --epochs 1 \
		--max-steps "$STEPS" --log-steps 10 --mean 123.7,116.3,103.5 --std 58.4,57.1,57.4 \
		>"$OUT/augpath_w$w.txt" 2>&1 || { rc=1; tail -5 "$OUT/augpath_w$w.txt"; }
	grep -h "uint8 batches" "$OUT/augpath_w$w.txt" | head -1
	# the last two windows (the first holds the start-up)
	tail -2 "$T/run$w/metrics.jsonl" 2>/dev/null | sed -n \
		's/.*"step": \([0-9]*\).*"img_per_s": \([0-9.]*\), "starved": \([0-9.]*\), "workers": \([0-9]*\).*/augpath_w'"$w"': step \1 \2 img\/s starved \3 workers \4/p'
done
exit $rc
