#!/usr/bin/env bash
# tests/gpu/prepare.sh — run HERE (the build machine) before the one GPU call.
# The lent GPU machine is bare (CUDA, cuDNN and PyTorch, no fovea build deps,
# no package registry), so the CUDA=1 programs are built here and packed with
# the non-CUDA shared libraries they need (oneDNN, OpenCL loader, libzmq, ...),
# the Fashion-MNIST files and 64 benchmark photos into build/gpu, which the
# call carries (about 56 MiB of the 64 a call may carry):
#   tests/gpu/prepare.sh
#   device run: carry ["build/gpu"], command "bash tests/gpu/run.sh", timeout_s 600
set -euo pipefail
cd "$(dirname "$0")/../.."
J=${J:-2}
make CUDA=1 -j"$J" build/cuda/bin/fv-gpu-check build/cuda/bin/fv-gpu-train \
	build/cuda/tests/test_cuda_fallback build/cuda/bin/fovea-trainer \
	build/cuda/bin/fovea-augment build/cuda/bin/fovea-ingest
P=build/gpu
rm -rf "$P" && mkdir -p "$P/bin" "$P/data"
cp build/cuda/bin/fv-gpu-check build/cuda/bin/fv-gpu-train build/cuda/tests/test_cuda_fallback \
	build/cuda/bin/fovea-trainer build/cuda/bin/fovea-augment build/cuda/bin/fovea-ingest \
	"$P/bin/"
tests/gpu/pack_libs.sh "$P"
FM=${FASHION:-/usr/share/datasets/fashion-mnist}
cp "$FM"/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz "$P/data/"
# 64 benchmark photos for the real augment path (tests/gpu/augment_path.sh)
PHOTOS=${PHOTOS:-../shared/data/jpeg-bench}
mkdir -p "$P/photos"
find "$PHOTOS" -maxdepth 1 -name '*.jpg' | sort | head -64 | xargs -r cp -t "$P/photos"
du -sh "$P"
echo "prepared $P: now run tests/gpu/run.sh on the GPU machine with carry [\"$P\"]"
