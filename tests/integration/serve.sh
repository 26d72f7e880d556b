#!/usr/bin/env bash
# serve.sh — fovea-serve for real: a small model trained (--max-steps) and
# exported here, real Fashion-MNIST PNGs classified over HTTP and ZMQ with
# the same top-1 as `fovea classify --model`; bad inputs answered 4xx with
# the server still up; a body over the limit is 413; models swapped (SIGHUP,
# a new export) while a request loop runs, with no failed request; SIGTERM
# stops it.
# timeout: 180
source "$(dirname "$0")/../itlib.sh"
SPEC="conv 8 3; bn; relu; maxpool 2; conv 16 3 s2; bn; relu; gap; linear"
fashion_subset train 1000 "$T/src"
fashion_subset t10k 200 "$T/src"
fovea ingest --db "$T/db" --nosync "$T/src/train-images-idx3-ubyte.gz" >"$T/ingest.log" 2>&1 &&
	fovea ingest --db "$T/db" --nosync --split val "$T/src/t10k-images-idx3-ubyte.gz" >>"$T/ingest.log" 2>&1
fovea train --db "$T/db" --out "$T/run" --model "$SPEC" --max-steps 30 --batch 64 --eval-every 0 \
	--ckpt-steps 15 --ckpt-minutes 0 --threads 2 --workers 1 >"$T/train.log" 2>&1
CK=($(ls "$T"/run/checkpoints/ckpt-*.fvc 2>/dev/null))
check trained test ${#CK[@]} -ge 2
export_ckpt() {
	fovea export --ckpt "$1" --db "$T/db" --out "$T/models" --max-drop 100 --calib-images 64 \
		--select-images 64 --val-images 100 >>"$T/export.log" 2>&1
}
check exported export_ckpt "${CK[-1]}"

# Real images: the first val images as PNG, and one broken and one huge file.
python3 - "$T" <<'PY'
import gzip, struct, zlib, sys
T = sys.argv[1]
with gzip.open(T + "/src/t10k-images-idx3-ubyte.gz") as f:
    f.read(16); pix = f.read(28 * 28 * 6)
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
def png(w, h, rows):
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(b"".join(b"\0" + r for r in rows))) + chunk(b"IEND", b""))
for i in range(6):
    im = pix[i * 784:(i + 1) * 784]
    open(f"{T}/img{i}.png", "wb").write(png(28, 28, [im[r * 28:(r + 1) * 28] for r in range(28)]))
open(T + "/trunc.png", "wb").write(open(T + "/img0.png", "rb").read()[:120])
# 20000 x 20000 gray: a small file that claims 400 Mpixel (a decompression bomb)
open(T + "/bomb.png", "wb").write(png(20000, 20000, [bytes(20000)] * 64)[:4000])
PY
JPG=$(ls "$SHARED_DATA"/jpeg-bench/*.jpg 2>/dev/null | head -1)

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
bg fovea-serve --model-dir "$T/models" --http-port "$PORT" --zmq "ipc://$T/serve.sock" \
	--max-body-kb 64 --max-mpixels 1 --watch-ms 300 --stats "$T/serve.json" 2>"$T/serve.log"
SERVE=$!
check healthz wait_for 10 curl -sf "$URL/healthz" -o /dev/null

for i in 0 1 2 3 4 5; do
	curl -s -XPOST -H 'Content-Type: image/png' --data-binary @"$T/img$i.png" "$URL/v1/classify" >"$T/http$i.json"
done
fovea classify --model "$T/models/current/model.fovea" --json "$T"/img[0-5].png >"$T/cli.json"
fovea classify --endpoint "ipc://$T/serve.sock" --json "$T"/img[0-5].png >"$T/zmq.json"
python3 - "$T" <<'PY' && ok http_zmq_cli_agree || fail http_zmq_cli_agree
import json, sys
T = sys.argv[1]
cli = [json.loads(l) for l in open(T + "/cli.json")]
zmq = [json.loads(l) for l in open(T + "/zmq.json")]
assert len(cli) == len(zmq) == 6
for i in range(6):
    r = json.load(open(f"{T}/http{i}.json"))
    t = r["top5"]
    assert len(t) == 5 and r["version"] == 1 and r["model"] == "v1/model.fovea", r
    assert all(set(p) == {"label", "name", "score"} for p in t), r
    s = [p["score"] for p in t]
    assert s == sorted(s, reverse=True) and 0 < sum(s) <= 1.0001 and len({p["label"] for p in t}) == 5, r
    assert [p["label"] for p in t] == [p["label"] for p in cli[i]["top5"]] == [p["label"] for p in zmq[i]["top5"]], (i, r, cli[i], zmq[i])
    assert zmq[i]["image"].endswith(f"img{i}.png")
PY
fovea classify --model-dir "$T/models" --precision fp32 --json "$T/img0.png" >"$T/fp32.json"
check fp32_on_request grep -q '"model":"v1/model-fp32.fovea"' "$T/fp32.json"
if [ -n "$JPG" ]; then
	check jpeg_accepted curl -sf -XPOST -H 'Content-Type: image/jpeg' --data-binary @"$JPG" "$URL/v1/classify" -o /dev/null
fi

code() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }
check_eq not_image "$(code -XPOST --data-binary @"$FV_ROOT/Makefile" "$URL/v1/classify")" 415
check_eq wrong_type "$(code -XPOST -H 'Content-Type: text/html' --data-binary @"$T/img0.png" "$URL/v1/classify")" 415
check_eq truncated "$(code -XPOST -H 'Content-Type: image/png' --data-binary @"$T/trunc.png" "$URL/v1/classify")" 400
check error_is_json python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["error"]' "$T/body"
check_eq empty "$(code -XPOST -H 'Content-Type: image/png' "$URL/v1/classify")" 400
check_eq pixel_bomb "$(code -XPOST -H 'Content-Type: image/png' --data-binary @"$T/bomb.png" "$URL/v1/classify")" 413
head -c 100000 /dev/urandom >"$T/big.bin"
check_eq body_limit "$(code -XPOST -H 'Content-Type: image/png' --data-binary @"$T/big.bin" "$URL/v1/classify")" 413
check_eq body_limit_chunked "$(code -XPOST -H 'Content-Type: image/png' -H 'Transfer-Encoding: chunked' --data-binary @"$T/big.bin" "$URL/v1/classify")" 413
check_eq get_classify "$(code "$URL/v1/classify")" 405
check_eq not_found "$(code "$URL/nope")" 404
check zmq_bad_image bash -c "! fovea classify --endpoint ipc://$T/serve.sock $T/trunc.png 2>/dev/null"
check still_up curl -sf "$URL/healthz" -o /dev/null
check metrics_counts bash -c "curl -s $URL/metrics | grep -q 'fovea_serve_requests_total{transport=\"http\",status=\"413\"} [1-9]'"

# Swap models under a request loop: SIGHUP (same version, forced), then a new export (v2).
python3 - "$URL" "$T/img1.png" "$T/loop.out" <<'PY' &
import sys, time, urllib.request
url, img, out = sys.argv[1], open(sys.argv[2], "rb").read(), sys.argv[3]
ok = bad = 0
versions = set()
end = time.time() + 6
while time.time() < end:
    try:
        r = urllib.request.urlopen(urllib.request.Request(url + "/v1/classify", data=img,
                                   headers={"Content-Type": "image/png"}), timeout=10)
        import json
        versions.add(json.loads(r.read())["version"]); ok += 1
    except Exception as e:
        bad += 1
open(out, "w").write(f"{ok} {bad} {sorted(versions)}\n")
PY
LOOP=$!
sleep 1; kill -HUP $SERVE; sleep 0.5; kill -HUP $SERVE
export_ckpt "${CK[0]}"
wait $LOOP
read -r nok nbad vers <"$T/loop.out"
echo "reload loop: $nok ok, $nbad failed, versions $vers"
check_eq reload_no_failed_request "$nbad" 0
check reload_loop_ran test "$nok" -ge 20
check_eq reload_saw_both_versions "$vers" "[1, 2]"
check reloads_counted bash -c "curl -s $URL/metrics | grep -q '^fovea_serve_reloads_total [3-9]'"
check_eq model_version_2 "$(curl -s "$URL/metrics" | awk '/^fovea_serve_model_version/{print $2}')" 2
check stats_file python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["requests"] > 20 and d["model_version"] == 2' "$T/serve.json"

kill -TERM $SERVE
wait_for 10 bash -c "! kill -0 $SERVE" && ok sigterm_stops || fail sigterm_stops
wait $SERVE; check_eq exit_status_0 $? 0
fv_done
