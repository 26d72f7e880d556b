#!/usr/bin/env bash
# The inbox daemon against a batch run, on the same photos: the bench photos
# renamed one by one into INBOX/photos/ of a running `fovea ingest --watch`
# (each an inotify event), timed until the last is committed and moved to
# .done; against `fovea ingest --jobs 2` of the same folder (process start
# included). Both decode on 2 threads and commit durably, so the ratio
# (batch seconds over daemon seconds) shows what the daemon's event
# handling, moves and per-commit syncs cost: near 1 it keeps up with a
# batch run. Best of 3 runs each.
set -u
cd "$(dirname "$0")/../.."
BIN=${FV_BIN:-$PWD/${BUILD:-build}/bin}
dir=$(mktemp -d "${TMPDIR:-/tmp}/fvbench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
python3 - "$BIN/fovea-ingest" "$dir" "${FV_SHARED_DATA:-$PWD/../shared/data}/jpeg-bench" <<'PY'
import json, os, shutil, signal, subprocess, sys, time
ingest, d, photos = sys.argv[1:4]
names = sorted(f for f in os.listdir(photos) if f.endswith(".jpg"))

def stage():
    """A fresh copy of the photos in d/stage/photos (the inbox moves them on)."""
    shutil.rmtree(f"{d}/stage", ignore_errors=True)
    os.makedirs(f"{d}/stage/photos")
    for n in names:
        shutil.copyfile(f"{photos}/{n}", f"{d}/stage/photos/{n}")

def batch():
    stage()
    shutil.rmtree(f"{d}/db", ignore_errors=True)
    t0 = time.monotonic()
    subprocess.run([ingest, "--db", f"{d}/db", "--jobs", "2", "--progress", "0", f"{d}/stage"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - t0

def daemon():
    stage()
    for p in ("db", "inbox"):
        shutil.rmtree(f"{d}/{p}", ignore_errors=True)
    os.makedirs(f"{d}/inbox/photos")
    log = open(f"{d}/watch.log", "w")
    p = subprocess.Popen([ingest, "--db", f"{d}/db", "--watch", f"{d}/inbox", "--jobs", "2",
                          "--batch-ms", "20"], stdout=subprocess.DEVNULL, stderr=log)
    while "watching" not in open(f"{d}/watch.log").read():
        time.sleep(0.01)
    done = f"{d}/inbox/.done/photos"
    t0 = time.monotonic()
    for n in names:
        os.rename(f"{d}/stage/photos/{n}", f"{d}/inbox/photos/{n}")
    while not os.path.isdir(done) or len(os.listdir(done)) < len(names):
        if time.monotonic() - t0 > 120:
            sys.exit("bench ingest-watch: the daemon did not finish")
        time.sleep(0.002)
    t = time.monotonic() - t0
    p.send_signal(signal.SIGTERM)
    p.wait()
    return t

b = min(batch() for _ in range(3))
w = min(daemon() for _ in range(3))
print(json.dumps({"photos": len(names), "batch_s": round(b, 3), "watch_s": round(w, 3),
                  "batch_over_watch": round(b / w, 3)}))
PY
