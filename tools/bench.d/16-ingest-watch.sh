#!/usr/bin/env bash
# The inbox daemon against a batch run, on the same photos: the bench photos
# renamed one by one into INBOX/photos/ of a running `fovea ingest --watch`
# (each an inotify event), timed until the last is committed and moved to
# .done; against `fovea ingest --jobs 2` of the same folder (process start
# included). Both decode on 2 threads and commit durably, so the ratio
# (batch seconds over daemon seconds) shows what the daemon's event
# handling, moves and per-commit syncs cost: near 1 it keeps up with a
# batch run. And a stop: with the photos waiting in the inbox at the start,
# SIGTERM once the first is in .done; the seconds from the signal to the
# exit over the seconds the whole backlog takes (small: a stop does not
# wait for the backlog). Best of 3 runs each.
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

def start(waiting=False):
    """A daemon on a fresh inbox (the photos in it already when waiting);
    it runs once it says it is watching."""
    stage()
    for p in ("db", "inbox"):
        shutil.rmtree(f"{d}/{p}", ignore_errors=True)
    os.makedirs(f"{d}/inbox")
    if waiting:
        os.rename(f"{d}/stage/photos", f"{d}/inbox/photos")
    else:
        os.makedirs(f"{d}/inbox/photos")
    log = open(f"{d}/watch.log", "w")
    p = subprocess.Popen([ingest, "--db", f"{d}/db", "--watch", f"{d}/inbox", "--jobs", "2",
                          "--batch-ms", "20"], stdout=subprocess.DEVNULL, stderr=log)
    while "watching" not in open(f"{d}/watch.log").read():
        time.sleep(0.002)
    return p

def wait_done(count, t0):
    done = f"{d}/inbox/.done/photos"
    while not os.path.isdir(done) or len(os.listdir(done)) < count:
        if time.monotonic() - t0 > 120:
            sys.exit("bench ingest-watch: the daemon did not finish")
        time.sleep(0.002)

def daemon():
    p = start()
    t0 = time.monotonic()
    for n in names:
        os.rename(f"{d}/stage/photos/{n}", f"{d}/inbox/photos/{n}")
    wait_done(len(names), t0)
    t = time.monotonic() - t0
    p.send_signal(signal.SIGTERM)
    p.wait()
    return t

def backlog(stop):
    """Seconds the waiting photos take, all of them; or, with stop, from a
    SIGTERM sent once the first is done to the daemon's exit."""
    t0 = time.monotonic()
    p = start(waiting=True)
    wait_done(1 if stop else len(names), t0)
    t1 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    p.wait()
    return time.monotonic() - t1 if stop else t1 - t0

b = min(batch() for _ in range(3))
w = min(daemon() for _ in range(3))
full = min(backlog(False) for _ in range(3))
stop = min(backlog(True) for _ in range(3))
print(json.dumps({"photos": len(names), "batch_s": round(b, 3), "watch_s": round(w, 3),
                  "batch_over_watch": round(b / w, 3), "backlog_s": round(full, 3),
                  "stop_s": round(stop, 3), "stop_over_backlog": round(stop / full, 3)}))
PY
