#!/usr/bin/env bash
# INT8 vs FP32 throughput of the .fovea runtime (resnet20, 1x28x28), batch 1
# and 64 in the same run; ratios are against the FP32 path (dnnl_sgemm)
# measured alongside. The second run caps oneDNN at AVX2, as on a CPU
# without AVX-512, so the AVX2 maddubs kernel meets FP32 on equal terms.
set -u
"$FV_BIN/fovea-bench" int8 --model resnet20 --input 1x28x28 --seconds ${FV_BENCH_SECONDS:-0.4} || exit 1
echo "with FP32 capped at AVX2 (DNNL_MAX_CPU_ISA=AVX2):"
DNNL_MAX_CPU_ISA=AVX2 "$FV_BIN/fovea-bench" int8 --model resnet20 --input 1x28x28 --seconds ${FV_BENCH_SECONDS:-0.4}
