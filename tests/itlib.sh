# tests/itlib.sh — sourced by integration scripts. Gives each script
# a temp dir ($T, removed on success), the binaries ($FV_BIN) and ok/fail
# reporting in the runner's "ok NAME" / "FAIL NAME" form.
set -u
FV_ROOT=${FV_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
FV_BIN=${FV_BIN:-$FV_ROOT/build/bin}
PATH=$FV_BIN:$PATH
T=$(mktemp -d "${TMPDIR:-/tmp}/fvit.XXXXXX")
FV_FAILS=0
FV_PIDS=()
FASHION=/usr/share/datasets/fashion-mnist
SHARED_DATA=${FV_SHARED_DATA:-$FV_ROOT/../shared/data}

fv_cleanup() {
	local p
	for p in "${FV_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "$FV_FAILS" = 0 ]; then rm -rf "$T"; else echo "(kept $T)"; fi
}
trap fv_cleanup EXIT

ok()   { echo "ok $1"; }
fail() { echo "FAIL $1${2:+: $2}"; FV_FAILS=$((FV_FAILS + 1)); }
# check NAME COMMAND...: ok if the command succeeds
check() { local n=$1; shift; if "$@"; then ok "$n"; else fail "$n" "$*"; fi; }
# check_eq NAME GOT WANT
check_eq() { if [ "$2" == "$3" ]; then ok "$1"; else fail "$1" "got '$2', want '$3'"; fi; }
# bg COMMAND...: start in the background, remembered for cleanup; pid in $!
bg() { "$@" & FV_PIDS+=($!); }
# wait_for SECONDS COMMAND...: poll until the command succeeds
wait_for() {
	local limit=$1; shift
	local end=$((SECONDS + limit))
	while ((SECONDS < end)); do "$@" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
fv_done() { exit $((FV_FAILS > 0)); }

# slow_sync_shim: build tests/integration/slow_sync.c as $T/slow_sync.so, an
# LD_PRELOAD shim that slows every fsync (SLOW_SYNC_MS) and can signal the
# process at its Nth (SLOW_SYNC_SIGNAL_AT, SLOW_SYNC_SIGNAL). A sanitized
# build wants its runtime first among the libraries; the shim does not mind.
slow_sync_shim() {
	cc -O1 -shared -fPIC -o "$T/slow_sync.so" "$FV_ROOT/tests/integration/slow_sync.c" -ldl ||
		{ fail build_slow_sync_shim; fv_done; }
	export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
}

# fake_systemd SOCK LOG: a datagram socket at SOCK (give it to a daemon as
# NOTIFY_SOCKET) that writes each sd_notify message to LOG, one per line
# after the monotonic time it came ("12.345 READY=1"), until STOPPING=1 or
# 60 s of silence. Started in the background; its pid in $!.
fake_systemd() {
	python3 - "$1" "$2" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
with open(sys.argv[2], "a", buffering=1) as f:
    try:
        while True:
            m = s.recv(4096).decode()
            f.write("%.3f %s\n" % (time.monotonic(), m.replace("\n", " ")))
            if "STOPPING=1" in m:
                break
    except socket.timeout:
        pass
PY
	FV_PIDS+=($!)
	wait_for 5 test -S "$1" || fail fake_systemd_socket "no socket at $1"
}

# fashion_subset train|t10k N DIR [SKIP]: write the first N images (after SKIP)
# of the real Fashion-MNIST file and their labels as DIR/<name>-{images-idx3,
# labels-idx1}-ubyte.gz, so tests ingest a real subset quickly.
fashion_subset() {
	python3 - "$FASHION" "$1" "$2" "$3" "${4:-0}" <<'PY'
import gzip, struct, sys, os
src, which, n, out, skip = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
os.makedirs(out, exist_ok=True)
with gzip.open(f"{src}/{which}-images-idx3-ubyte.gz") as f:
    magic, total, rows, cols = struct.unpack(">IIII", f.read(16))
    f.read(skip * rows * cols)
    pix = f.read(n * rows * cols)
with gzip.open(f"{src}/{which}-labels-idx1-ubyte.gz") as f:
    f.read(8 + skip)
    lab = f.read(n)
with gzip.open(f"{out}/{which}-images-idx3-ubyte.gz", "wb") as f:
    f.write(struct.pack(">IIII", magic, n, rows, cols) + pix)
with gzip.open(f"{out}/{which}-labels-idx1-ubyte.gz", "wb") as f:
    f.write(struct.pack(">II", 2049, n) + lab)
PY
}

# json_get FILE KEY...: a value from a JSON object (nested keys), printed.
json_get() {
	python3 - "$@" <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    v = json.load(f)
for k in sys.argv[2:]:
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)
PY
}

# fashion_pngs N DIR CLASSES...: N real Fashion-MNIST train images of the
# given class labels written as DIR/<label>/<i>.png (an ImageFolder tree).
fashion_pngs() { fashion_png_tree first "$@"; }
# fashion_range_pngs FROM TO DIR: train images FROM..TO-1, every class, the
# same way.
fashion_range_pngs() { fashion_png_tree range "$@"; }

fashion_png_tree() {
	python3 - "$FASHION" "$@" <<'PY'
import gzip, struct, sys, os, zlib
src, mode = sys.argv[1], sys.argv[2]
def png(path, w, h, pix):
    raw = b"".join(b"\0" + pix[y*w:(y+1)*w] for y in range(h))
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
with gzip.open(f"{src}/train-images-idx3-ubyte.gz") as f:
    _, total, rows, cols = struct.unpack(">IIII", f.read(16)); pix = f.read()
with gzip.open(f"{src}/train-labels-idx1-ubyte.gz") as f:
    f.read(8); lab = f.read()
if mode == "first":
    n, out, classes = int(sys.argv[3]), sys.argv[4], set(int(c) for c in sys.argv[5:])
    picked = [i for i in range(total) if lab[i] in classes][:n]
else:
    lo, hi, out = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    picked = range(lo, hi)
for i in picked:
    d = f"{out}/{lab[i]}"; os.makedirs(d, exist_ok=True)
    png(f"{d}/{i}.png", cols, rows, pix[i*rows*cols:(i+1)*rows*cols])
PY
}
