#!/usr/bin/env bash
# CMYK JPEGs (Photoshop's print files; ImageNet's train set has 22) are
# taken, not rejected: decoded to RGB exactly as Pillow converts them (so a
# model sees what torchvision's loader would give it), stored raw with
# --encoding raw, and re-encoded as an RGB JPEG by default (the augment
# workers and every reader decode RGB), never stored as the CMYK bytes.
# The file without its Adobe marker converts the same (Pillow assumes
# Adobe's inverted values for every CMYK JPEG).
# timeout: 60
source "$(dirname "$0")/../itlib.sh"
J=$SHARED_DATA/jpeg-bench
PY=/usr/bin/python3 # Debian's python3-pil lives there, not in other pythons on PATH
jnum() { grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }
# in_db DB FILE: are FILE's exact bytes inside a stored record?
in_db() { mdb_dump -s records "$1" | tr -d ' \n' | grep -qF -f <(hex "$2"); }

mkdir -p "$T/src/ink"
$PY - "$J" "$T" <<'PY' || fail make_cmyk
import sys
from PIL import Image
j, t = sys.argv[1], sys.argv[2]
for n, src in (("cmyk", "img0001.jpg"), ("noadobe", "img0002.jpg")):
    Image.open(f"{j}/{src}").convert("CMYK").save(f"{t}/src/ink/{n}.jpg", quality=90)
# the second without its APP14 "Adobe" segment
d = bytearray(open(f"{t}/src/ink/noadobe.jpg", "rb").read())
i = 2
while d[i + 1] != 0xda:
    seg = d[i + 2] << 8 | d[i + 3]
    if d[i + 1] == 0xee and d[i + 4:i + 9] == b"Adobe":
        del d[i:i + 2 + seg]
        break
    i += 2 + seg
else:
    sys.exit("no Adobe marker to strip")
open(f"{t}/src/ink/noadobe.jpg", "wb").write(d)
for n in ("cmyk", "noadobe"):
    im = Image.open(f"{t}/src/ink/{n}.jpg")
    assert im.mode == "CMYK", im.mode
    open(f"{t}/{n}.rgb", "wb").write(im.convert("RGB").tobytes())
PY

out=$(fovea ingest --db "$T/raw" --encoding raw "$T/src" 2>&1)
check_eq raw_summary "$(grep -o 'added .*rejected [0-9]*' <<<"$out")" "added 2, duplicates 0, rejected 0"
check raw_as_pillow in_db "$T/raw" "$T/cmyk.rgb"
check raw_as_pillow_no_adobe_marker in_db "$T/raw" "$T/noadobe.rgb"

out=$(fovea ingest --db "$T/jpeg" "$T/src" 2>&1)
check_eq jpeg_summary "$(grep -o 'added .*rejected [0-9]*' <<<"$out")" "added 2, duplicates 0, rejected 0"
check not_stored_as_cmyk_bytes eval '! in_db "$T/jpeg" "$T/src/ink/cmyk.jpg"'
# each stored record is an RGB JPEG (3 components) whose pixels are
# Pillow's RGB of the CMYK file, within JPEG's loss
mdb_dump -s records "$T/jpeg" >"$T/jpeg.dump"
$PY - "$T" <<'PY'
import io, sys
from PIL import Image
t = sys.argv[1]
vals = [bytes.fromhex(l.strip()) for i, l in enumerate(open(f"{t}/jpeg.dump").read().split("HEADER=END")[1].split("DATA=END")[0].strip().splitlines()) if i % 2]

def field(buf, want):  # the bytes of protobuf field `want` (length-delimited)
    i = 0
    while i < len(buf):
        tag = 0; s = 0
        while True:
            b = buf[i]; i += 1; tag |= (b & 0x7f) << s; s += 7
            if b < 0x80: break
        n, wt = tag >> 3, tag & 7
        if wt == 0:
            while buf[i] >= 0x80: i += 1
            i += 1
        elif wt == 2:
            ln = 0; s = 0
            while True:
                b = buf[i]; i += 1; ln |= (b & 0x7f) << s; s += 7
                if b < 0x80: break
            if n == want: return buf[i:i + ln]
            i += ln
        else:
            sys.exit(f"wire type {wt}")

ok = 0
for v in vals:
    src, data = field(v, 8).decode(), field(v, 9)
    im = Image.open(io.BytesIO(data))
    want = open(f"{t}/{src.rsplit('/', 1)[1][:-4]}.rgb", "rb").read()
    got = im.convert("RGB").tobytes()
    diff = sum(abs(a - b) for a, b in zip(got, want)) / len(want)
    print(f"    {src}: {im.mode} {im.size}, mean |diff| {diff:.2f} levels")
    ok += im.format == "JPEG" and im.mode == "RGB" and len(got) == len(want) and diff < 3
sys.exit(0 if ok == 2 == len(vals) else 1)
PY
check stored_rgb_jpegs_as_pillow test $? = 0
fv_done
