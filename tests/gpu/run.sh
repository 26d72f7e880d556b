#!/usr/bin/env bash
# tests/gpu/run.sh — the one prepared check for a lent GPU machine (see
# /work/.library/device/README.md): one call, under 10 minutes, repo root of a
# copy of the working tree, files for the caller under $OUT.
#
#   here:   tests/gpu/prepare.sh            (builds CUDA=1, packs build/gpu)
#   there:  bash tests/gpu/run.sh           (carry ["build/gpu"], timeout_s 600)
#
# Without a carried build/gpu it tries `make CUDA=1` there (works only where
# the Debian build deps are installed). Steps, each under its own limit:
#   1. fv-gpu-check: every CUDA op vs the CPU backend, fp32 (1e-4) and bf16 (2e-2),
#      device SGD / cross-entropy / uint8 input, a whole resnet20 step
#   2. test_cuda_fallback: the CUDA=1 unit test (here it sees the GPU)
#   3. fv-gpu-train fmnist: resnet20, one epoch of Fashion-MNIST on the GPU
#      (fp32, then bf16), val top-1 >= 85%, and the synced weights classify
#      alike on the CPU
#   4. fv-gpu-train bench: resnet50 3x224x224 batch 256 bf16 training img/s
#      on synthetic data in GPU memory
#   5. augment_path.sh: the same model fed by the real path (photos -> LMDB
#      -> fovea-trainer with 8 and 15 local augment workers), img/s against 4
#   6. fp32 for comparison when time is left
# and prints a short table last. Exit status: 0 when every step passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/fv-gpu-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu.log") 2>&1
T0=$SECONDS
P=build/gpu
declare -A RES
note() { printf '== %s (t=%ds)\n' "$*" $((SECONDS - T0)); }

. tests/gpu/env.sh || exit 1

step() { # name, limit, command...
	local name=$1 limit=$2; shift 2
	note "$name"
	timeout -k 5 "$limit" "$@" 2>&1 | tee "$OUT/$name.txt"
	local rc=${PIPESTATUS[0]}
	RES[$name]=$([ $rc = 0 ] && echo ok || echo "FAIL (exit $rc$([ $rc = 124 ] && echo ", timed out"))")
}

step check_ops 150 "$BIN/fv-gpu-check" all
step fallback_test 60 "$TBIN/test_cuda_fallback"
if [ -z "${FV_GPU_SMOKE:-}" ]; then
	step fmnist 210 "$BIN/fv-gpu-train" fmnist "$DATA" cuda 1
	step fmnist_bf16 120 "$BIN/fv-gpu-train" fmnist "$DATA" cuda:bf16 1
	step bench_bf16 150 "$BIN/fv-gpu-train" bench resnet50 cuda:bf16 256 20 224
	[ -d "$P/photos" ] && step augment_path 300 bash tests/gpu/augment_path.sh "${FV_GPU_WORKERS:-8 15}"
	if [ $((SECONDS - T0)) -lt 420 ]; then
		step bench_fp32 100 "$BIN/fv-gpu-train" bench resnet50 cuda 128 10 224
	fi
else # FV_GPU_SMOKE=1: the script's plumbing on a machine without a GPU, in seconds
	step fmnist 120 "$BIN/fv-gpu-train" fmnist "$DATA" cuda 1 5
	step bench_bf16 60 "$BIN/fv-gpu-train" bench resnet20 cuda:bf16 8 2 32
fi

val() { sed -n "s/^$1: //p" "$2" 2>/dev/null | tail -1; }
echo
echo "==================== fovea GPU check ($(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)), $((SECONDS - T0)) s"
printf '%-16s %-10s %s\n' step result detail
printf '%-16s %-10s %s\n' check_ops "${RES[check_ops]}" "$(tail -1 "$OUT/check_ops.txt" 2>/dev/null); fails: $(grep -c FAIL "$OUT/check_ops.txt" 2>/dev/null)"
printf '%-16s %-10s %s\n' fallback_test "${RES[fallback_test]}" "$(tail -1 "$OUT/fallback_test.txt" 2>/dev/null)"
printf '%-16s %-10s %s\n' fmnist "${RES[fmnist]}" "top1 $(val fmnist_top1 "$OUT/fmnist.txt")% (>= 85), cpu agreement $(val fmnist_cpu_agreement "$OUT/fmnist.txt")%, $(val fmnist_train_s "$OUT/fmnist.txt") s, $(val fmnist_img_per_s "$OUT/fmnist.txt") img/s"
[ -n "${RES[fmnist_bf16]:-}" ] && printf '%-16s %-10s %s\n' fmnist_bf16 "${RES[fmnist_bf16]}" "top1 $(val fmnist_top1 "$OUT/fmnist_bf16.txt")% (>= 85), cpu agreement $(val fmnist_cpu_agreement "$OUT/fmnist_bf16.txt")%, $(val fmnist_img_per_s "$OUT/fmnist_bf16.txt") img/s"
printf '%-16s %-10s %s\n' bench_bf16 "${RES[bench_bf16]}" "$(val bench_model "$OUT/bench_bf16.txt"): $(val bench_img_per_s "$OUT/bench_bf16.txt") img/s train, $(val bench_ms_per_step "$OUT/bench_bf16.txt") ms/step, compile $(val bench_compile_s "$OUT/bench_bf16.txt") s"
if [ -n "${RES[augment_path]:-}" ]; then # the real data path against the synthetic figure
	syn=$(val bench_img_per_s "$OUT/bench_bf16.txt")
	for w in ${FV_GPU_WORKERS:-8 15}; do grep "^augpath_w$w:" "$OUT/augment_path.txt" | tail -1; done |
		while read -r _ _ _ ips _ _ st _ nw; do
			printf '%-16s %-10s %s\n' augment_path "${RES[augment_path]}" "$nw workers: $ips img/s = $(awk "BEGIN { printf \"%.2f\", $ips / (${syn:-0} + 1e-9) }")x synthetic, starved $st"
		done
fi
[ -n "${RES[bench_fp32]:-}" ] && printf '%-16s %-10s %s\n' bench_fp32 "${RES[bench_fp32]}" "$(val bench_model "$OUT/bench_fp32.txt"): $(val bench_img_per_s "$OUT/bench_fp32.txt") img/s train"
fails=0
for k in "${!RES[@]}"; do [ "${RES[$k]}" = ok ] || fails=$((fails + 1)); done
echo "$fails step(s) failed"
[ $fails = 0 ]
