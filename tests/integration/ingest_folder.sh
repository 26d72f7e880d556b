#!/usr/bin/env bash
# ImageFolder (subfolders of a class folder included) and list-file sources with bad inputs among good ones: a
# truncated JPEG, an empty file, text named .jpg, headers claiming 65000x65000
# (JPEG) and 70000x70000 (PNG) pixels, one image copied twice; and a FIFO;
# 200 MB files, judged by their head; a JPEG stored to its EOI. Every bad file
# is named and rejected, the run exits 0, the copy is stored once, JPEGs
# that need no resize are stored byte for byte, PNG is re-encoded, and the
# result does not depend on --jobs.
# timeout: 120
source "$(dirname "$0")/../itlib.sh"
J=$SHARED_DATA/jpeg-bench
jnum() { grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }
# in_db DB FILE: are FILE's exact bytes inside a stored record?
in_db() { mdb_dump -s records "$1" | tr -d ' \n' | grep -qF -f <(hex "$2"); }

S=$T/src
mkdir -p "$S/cat" "$S/dog"
cp "$J/img0000.jpg" "$J/img0001.jpg" "$J/img0002.jpg" "$S/cat/"
cp "$J/img0003.jpg" "$J/img0004.jpg" "$S/dog/"
mkdir -p "$S/cat/more" && cp "$J/img0007.jpg" "$S/cat/more/" # subfolders belong to the class
cp "$J/img0000.jpg" "$S/dog/copy.jpg"
head -c 20000 "$J/img0005.jpg" >"$S/dog/trunc.jpg"
: >"$S/dog/empty.jpg"
echo "not an image" >"$S/cat/text.jpg"
python3 - "$J/img0006.jpg" "$S" <<'PY'
import struct, sys, zlib
d = bytearray(open(sys.argv[1], 'rb').read())
i = 2
while not (d[i] == 0xff and d[i + 1] in (0xc0, 0xc1, 0xc2)):
    i += 1
d[i + 5:i + 9] = struct.pack('>HH', 65000, 65000)
open(sys.argv[2] + '/cat/bomb.jpg', 'wb').write(d)
def chunk(t, x):
    return struct.pack('>I', len(x)) + t + x + struct.pack('>I', zlib.crc32(t + x))
def png(w, h, rows):
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) +
            chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))
open(sys.argv[2] + '/dog/bomb.png', 'wb').write(png(70000, 70000, b'\0' * 1000))
rows = b''.join(b'\0' + bytes((x * 5 + y * 3 + c * 50) % 256 for x in range(40) for c in range(3)) for y in range(30))
open(sys.argv[2] + '/dog/good.png', 'wb').write(png(40, 30, rows))
PY

out=$(fovea ingest --db "$T/db" --jobs 2 "$S" 2>&1); rc=$?
echo "$out" | sed 's/^/    /'
check_eq folder_exit_0 "$rc" 0
for f in cat/text.jpg cat/bomb.jpg dog/trunc.jpg dog/empty.jpg dog/bomb.png; do
	grep -q "rejected $S/$f: ." <<<"$out" && ok "named_$f" || fail "named_$f" "no reject line for $f"
done
check_eq folder_summary "$(grep -o 'added .*rejected [0-9]*' <<<"$out")" "added 7, duplicates 1, rejected 5"
s=$(fovea stats --db "$T/db" --json)
check_eq folder_records "$(jnum records <<<"$s")" 7
check_eq folder_duplicates "$(jnum duplicates <<<"$s")" 1
check_eq folder_rejected "$(jnum rejected <<<"$s")" 5
check_eq folder_classes "$(grep -o '"id":"[a-z]*"' <<<"$s" | tr '\n' ' ')" '"id":"cat" "id":"dog" '
for f in cat/img0000.jpg cat/img0002.jpg dog/img0004.jpg cat/more/img0007.jpg; do
	in_db "$T/db" "$S/$f" && ok "untouched_$f" || fail "untouched_$f" "stored bytes differ from the file"
done
in_db "$T/db" "$S/dog/good.png" && fail png_reencoded "PNG stored as PNG" || ok png_reencoded

# --resize re-encodes (the shorter side 375 -> 64); never upscales the 40x30 PNG
fovea ingest --db "$T/small" --resize 64 "$S" >/dev/null 2>&1
check_eq resize_records "$(fovea stats --db "$T/small" --json | jnum records)" 7
in_db "$T/small" "$S/cat/img0000.jpg" && fail resize_reencoded "stored untouched" || ok resize_reencoded
big=$(mdb_dump -s records "$T/db" | wc -c); small=$(mdb_dump -s records "$T/small" | wc -c)
check resize_smaller test "$small" -lt $((big / 4))

# the same records, keys and bytes whatever the thread count
fovea ingest --db "$T/j1" --jobs 1 "$S" >/dev/null 2>&1
fovea ingest --db "$T/j3" --jobs 3 "$S" >/dev/null 2>&1
check jobs_deterministic cmp -s <(mdb_dump -s records "$T/j1") <(mdb_dump -s records "$T/j3")

# list file: paths relative to the list, integer labels are class indices
cat >"$S/list.txt" <<LIST
# path label
cat/img0001.jpg 1
dog/img0003.jpg 0

cat/missing.jpg 1
dog/empty.jpg 0
LIST
out=$(fovea ingest --db "$T/list" "$S/list.txt" 2>&1); rc=$?
check_eq list_exit_0 "$rc" 0
check_eq list_summary "$(grep -o 'added .*rejected [0-9]*' <<<"$out")" "added 2, duplicates 0, rejected 2"
grep -q "missing.jpg: cannot read" <<<"$out" && ok list_missing_named || fail list_missing_named "$out"
s=$(fovea stats --db "$T/list" --json)
check_eq list_per_class "$(grep -o '"id":"[0-9]*","name":"[0-9]*","train":[0-9]*' <<<"$s" | tr '\n' ' ')" \
	'"id":"0","name":"0","train":1 "id":"1","name":"1","train":1 '
echo "cat/img0001.jpg" >"$S/bad.txt"
out=$(fovea ingest --db "$T/list2" "$S/bad.txt" 2>&1); rc=$?
check list_bad_line test "$rc" != 0 -a -n "$(grep -F "bad.txt:1" <<<"$out")"

# a list on standard input ("-", or a pipe as /dev/stdin): its paths are
# relative to the working directory
out=$(cd "$S" && printf 'cat/img0001.jpg 1\ndog/img0003.jpg 0\n' | fovea ingest --db "$T/stdin" - 2>&1); rc=$?
check_eq stdin_list_exit_0 "$rc" 0
check_eq stdin_list_summary "$(grep -o 'added .*rejected [0-9]*' <<<"$out")" "added 2, duplicates 0, rejected 0"
out=$(cd "$S" && echo "cat/img0001.jpg 1" | fovea ingest --db "$T/stdin2" /dev/stdin 2>&1); rc=$?
check_eq dev_stdin_list "$rc/$(grep -o 'added [0-9]*' <<<"$out")" "0/added 1"
out=$(echo "cat/img0001.jpg" | fovea ingest --db "$T/stdin3" - 2>&1); rc=$?
check stdin_bad_line_named test "$rc" != 0 -a -n "$(grep -F "standard input:1" <<<"$out")"

# a source that is none of the three says what it is and what a source is
out=$(fovea ingest --db "$T/wrong" "$S/cat/img0001.jpg" 2>&1); rc=$?
check image_as_source_refused test "$rc" = 1 -a -n "$(grep -F "img0001.jpg: an image, not a source" <<<"$out")"
out=$(fovea ingest --db "$T/wrong" "$FASHION/train-labels-idx1-ubyte.gz" 2>&1); rc=$?
check labels_as_source_refused test "$rc" = 1 -a -n "$(grep -F "IDX labels; give the images file" <<<"$out")"
cp "$FASHION/t10k-images-idx3-ubyte.gz" "$T/renamed.gz"
out=$(fovea ingest --db "$T/wrong" "$T/renamed.gz" 2>&1); rc=$?
check renamed_idx_refused test "$rc" = 1 -a -n "$(grep -F 'renamed.gz: gzip data, but an IDX images file' <<<"$out")"

# a FIFO named like an image is rejected, not waited on (an open of it
# would block until a writer came)
F=$T/fifo && mkdir -p "$F/cat" && cp "$J/img0008.jpg" "$F/cat/" && mkfifo "$F/cat/pipe.jpg"
out=$(timeout 30 fovea ingest --db "$T/fifodb" --jobs 2 "$F" 2>&1); rc=$?
check_eq fifo_exit_0 "$rc" 0
check_eq fifo_summary "$(grep -o 'added .*rejected [0-9]*' <<<"$out")" "added 1, duplicates 0, rejected 1"
grep -q "rejected $F/cat/pipe.jpg: cannot read: not a regular file" <<<"$out" && ok fifo_named ||
	fail fifo_named "$out"

# big files (200 MB, sparse) are judged by their head before they are read
# whole: one that is no image and a header over the pixel limit are
# rejected, as small ones are, without their size in memory; a JPEG with
# 200 MB after its EOI (as a motion photo's video) is stored up to its EOI
B=$T/big && mkdir -p "$B/cat" && cp "$J/img0010.jpg" "$B/cat/"
truncate -s 200M "$B/cat/video.jpg"
cp "$S/cat/bomb.jpg" "$B/cat/bomb.jpg" && truncate -s 200M "$B/cat/bomb.jpg"
out=$(python3 -c "
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stderr=subprocess.STDOUT).returncode
print('maxrss', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(r)" "$FV_BIN/fovea-ingest" --db "$T/bigdb" --jobs 2 "$B" 2>&1); rc=$?
check_eq big_exit_0 "$rc" 0
check_eq big_summary "$(grep -o 'added .*rejected [0-9]*' <<<"$out")" "added 1, duplicates 0, rejected 2"
grep -q "rejected $B/cat/video.jpg: not a JPEG or PNG image" <<<"$out" && ok big_not_image_named ||
	fail big_not_image_named "$out"
grep -q "rejected $B/cat/bomb.jpg: 65000x65000 is .* over the limit" <<<"$out" && ok big_bomb_named ||
	fail big_bomb_named "$out"
rss=$(grep -o 'maxrss [0-9]*' <<<"$out" | cut -d' ' -f2)
echo "    peak RSS over a photo and two bad files of 200 MB: $rss kB"
check big_not_read_whole test "${rss:-999999}" -lt 150000 # KiB; each file is 200 MB
M=$T/motion && mkdir -p "$M/cat" && cp "$J/img0011.jpg" "$M/cat/" && truncate -s 200M "$M/cat/img0011.jpg"
fovea ingest --db "$T/motiondb" "$M" >/dev/null 2>&1
in_db "$T/motiondb" "$J/img0011.jpg" && ok big_jpeg_stored_to_eoi || fail big_jpeg_stored_to_eoi "its bytes not stored"
check big_tail_not_stored test "$(mdb_dump -s records "$T/motiondb" | wc -c)" -lt 1000000

# a class folder named in Latin-1 ("caf\xe9"): stored, and fovea stats
# --json is still JSON a strict parser takes (the bad byte as U+FFFD)
L=$T/latin1 && mkdir -p "$L/$(printf 'caf\xe9')" && cp "$J/img0009.jpg" "$L/$(printf 'caf\xe9')/"
fovea ingest --db "$T/latindb" "$L" >/dev/null 2>&1
id=$(fovea stats --db "$T/latindb" --json | python3 -c '
import json, sys
print(json.loads(sys.stdin.buffer.read().decode("utf-8"))["per_class"][0]["id"].encode("unicode_escape").decode())')
check_eq latin1_class_json "$id" 'caf\ufffd'
fv_done
