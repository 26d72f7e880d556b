#!/usr/bin/env bash
# Ingest on a disk whose fsync is slow, against the same ingest on this
# machine's disk, measured back to back: the bench photos (--jobs 2) and
# Fashion-MNIST IDX, each with every fsync made SLOW_SYNC_MS (default 20,
# a busy network or spinning disk) slower by tests/integration/slow_sync.c
# (LD_PRELOAD; real LMDB, real files). Batches that come ready while a
# sync runs go into the next commit together, so the ratio stays near 1
# but for the few syncs a run cannot do without (create, last commit,
# final sync). Best of 2 runs each.
set -u
cd "$(dirname "$0")/../.."
BIN=${FV_BIN:-$PWD/${BUILD:-build}/bin}
MS=${SLOW_SYNC_MS:-20}
dir=$(mktemp -d "${TMPDIR:-/tmp}/fvbench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cc -O2 -shared -fPIC -o "$dir/slow_sync.so" tests/integration/slow_sync.c -ldl || exit 1
mkdir -p "$dir/src/photos"
ln -s "${FV_SHARED_DATA:-$PWD/../shared/data}/jpeg-bench"/*.jpg "$dir/src/photos/"
IDX=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
python3 - "$BIN/fovea-ingest" "$dir" "$MS" "$IDX" <<'PY'
import json, os, shutil, subprocess, sys, time
ingest, d, ms, idx = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

def secs(slow, src, *args):
    """Best wall seconds of 2 runs into a fresh dataset."""
    env = dict(os.environ, SLOW_SYNC_MS=str(ms))
    if slow:
        env["LD_PRELOAD"] = f"{d}/slow_sync.so"
    best = None
    for _ in range(2):
        shutil.rmtree(f"{d}/db", ignore_errors=True)
        t0 = time.monotonic()
        subprocess.run([ingest, "--db", f"{d}/db", "--progress", "0", *args, src], env=env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t = time.monotonic() - t0
        best = t if best is None else min(best, t)
    return best

pf, ps = secs(False, f"{d}/src", "--jobs", "2"), secs(True, f"{d}/src", "--jobs", "2")
i_f, i_s = secs(False, idx), secs(True, idx)
print(json.dumps({"fsync_added_ms": ms,
                  "photos_s": round(pf, 3), "photos_slow_disk_s": round(ps, 3),
                  "photos_fast_over_slow": round(pf / ps, 3),
                  "idx_s": round(i_f, 3), "idx_slow_disk_s": round(i_s, 3),
                  "idx_fast_over_slow": round(i_f / i_s, 3)}))
PY
