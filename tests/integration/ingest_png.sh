#!/usr/bin/env bash
# PNGs of every colour type and depth (tests/fuzz/png_seeds.py: RGBA,
# gray+alpha, palette with tRNS, 16-bit RGB, 1-bit gray, interlaced, plus a
# Pillow-made RGBA photo with transparent white) are stored with
# --encoding raw as exactly the pixels Pillow's convert("RGB") gives, or
# convert("L") for gray ones: alpha dropped, not composited onto black;
# 16-bit to the high byte, no gamma. So a PNG dataset trains on what
# torchvision's loader would have given.
# timeout: 60
source "$(dirname "$0")/../itlib.sh"
J=$SHARED_DATA/jpeg-bench
PY=/usr/bin/python3 # Debian's python3-pil lives there, not in other pythons on PATH
hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }
in_db() { mdb_dump -s records "$1" | tr -d ' \n' | grep -qF -f <(hex "$2"); }

mkdir -p "$T/src/png" "$T/want"
python3 "$FV_ROOT/tests/fuzz/png_seeds.py" "$T/src/png" || fail make_seeds
$PY - "$J/img0003.jpg" "$T" <<'PY' || fail make_expected
import sys
from PIL import Image
photo, t = sys.argv[1], sys.argv[2]
im = Image.open(photo).convert("RGBA")
w, h = im.size
px = im.load()
for y in range(h // 3):  # a transparent white band: Pillow keeps the white
    for x in range(w):
        px[x, y] = (255, 255, 255, 0)
im.save(f"{t}/src/png/photo_rgba.png")
import glob, os
for f in sorted(glob.glob(f"{t}/src/png/*.png")):
    im = Image.open(f)
    gray = im.mode in ("1", "L", "LA", "I", "I;16")
    out = im.convert("L" if gray else "RGB").tobytes()
    open(f"{t}/want/{os.path.basename(f)}.raw", "wb").write(out)
PY
n=$(ls "$T/src/png" | wc -l)
check_eq png_kinds "$n" 7
out=$(fovea ingest --db "$T/db" --encoding raw "$T/src" 2>&1)
check_eq summary "$(grep -o 'added .*rejected [0-9]*' <<<"$out")" "added $n, duplicates 0, rejected 0"
for f in "$T"/want/*.raw; do
	b=$(basename "$f" .png.raw)
	check "as_pillow_$b" in_db "$T/db" "$f"
done
fv_done
