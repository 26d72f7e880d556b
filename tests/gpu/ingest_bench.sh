#!/usr/bin/env bash
# tests/gpu/ingest_bench.sh — on a lent machine (see ingest_prepare.sh):
# `fovea bench ingest` pinned to two cores (taskset -c 0,1) ROUNDS times, then
# on all cores with --jobs 2 and --jobs 8; JSON of each pinned run under $OUT;
# a table of the pinned runs last.
cd "$(dirname "$0")/../.."
P=${P:-build/gpu-ingest}
OUT=${OUT:-/tmp/fv-gpu-out}
mkdir -p "$OUT" /tmp/fv-ingest-libs && tar -C /tmp/fv-ingest-libs -xzf "$P/libs.tar.gz" || exit 1
export LD_LIBRARY_PATH=/tmp/fv-ingest-libs/libs
echo "cores: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
B=("$P/bin/fovea-bench" ingest --images "$P/photos" --idx "$P/t10k-images-idx3-ubyte.gz")
rc=0
for r in $(seq "${ROUNDS:-6}"); do
	taskset -c 0,1 "${B[@]}" --json >"$OUT/pinned_$r.json" 2>"$OUT/pinned_$r.err" || rc=1
done
for j in 2 8; do
	echo "== all cores, --jobs $j"
	"${B[@]}" --jobs $j 2>&1 | grep -E '^(ingest JPEG folder:|ratio|machine|ingest /|CPU)' || rc=1
done
echo "== pinned to cores 0,1: ratio, 2-thread ceiling, share of it, CPU over decode"
for f in "$OUT"/pinned_*.json; do
	python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); d = d.get("ingest", d)
print("%.3f  %.3f  %.3f  %.3f" % (d["ratio"], d["decode_2t_over_1t"], d["ingest_over_decode_2t"], d["cpu_ingest_over_decode"]))' "$f" || rc=1
done
exit $rc
