#!/usr/bin/env bash
# tests/gpu/profile.sh — where a GPU training step's time goes, for a session
# tuning the CUDA backend (run.sh is the check; this is the diagnosis):
#   device run: carry ["build/gpu"], command "bash tests/gpu/profile.sh [STEPS]"
# Runs the op check (failures and the whole-net lines only), then resnet50
# training at 224 in bf16 (batch 256; cuDNN's algorithm choices logged under
# $OUT) and in fp32 (batch 128), and bf16 again with each variant named in
# FV_GPU_VARIANTS (default: FV_NET_NOFUSE=2, the residual add unfolded, then
# bf16 once more as it is, since cuDNN's algorithm picks move the figure
# between processes; FV_CUDA_BN_LEGACY=1 gives the old batch norm), printing
# each run's per-op profile (fv_net_profile_report) and img/s.
set -uo pipefail
cd "$(dirname "$0")/../.."
P=build/gpu
OUT=${OUT:-/tmp/fv-gpu-out}
. tests/gpu/env.sh >/dev/null || exit 1
STEPS=${1:-10}
"$BIN/fv-gpu-check" all >"$OUT/check.txt" 2>&1
grep -E "FAIL|worst|resnet20 all|check_ops:" "$OUT/check.txt"
run() { # name, env assignments..., then the bench arguments after --
	local name=$1; shift
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	echo "---- $name ${envs[*]}"
	env "${envs[@]}" timeout 120 "$BIN/fv-gpu-train" bench "$@" >"$OUT/$name.txt" 2>&1
	grep -E "^profile: |^bench_(img|ms)|rror" "$OUT/$name.txt" | grep -v "profile: node" | head -16
	grep -E "^profile: node" "$OUT/$name.txt" | head -5
}
run bf16 FV_CUDA_ALGOS=1 -- resnet50 cuda:bf16 256 "$STEPS" 224
run fp32 FV_CUDA_ALGOS=1 -- resnet50 cuda 128 "$((STEPS / 2 + 1))" 224
k=0
for v in ${FV_GPU_VARIANTS:-FV_NET_NOFUSE=2 FV_NET_NOFUSE=0}; do
	k=$((k + 1))
	run "bf16-$k-${v%%=*}" "$v" -- resnet50 cuda:bf16 256 "$STEPS" 224
done
