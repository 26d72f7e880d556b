#!/usr/bin/env bash
# Training and inference throughput of the nn engine (CPU backend), each as a
# share of this machine's sgemm peak measured in the same run, on the same
# thread count (fovea bench train/infer print both). Best of several runs:
# the machine may be shared.
set -u
B=${FV_BIN:-build/bin}/fovea-bench
T=${FV_BENCH_THREADS:-2}
run() { echo "\$ fovea bench $*"; "$B" "$@" || echo "bench $1 failed"; }
run train --model resnet20 --input 1x28x28 --batch 128 --threads "$T"
run infer --model resnet20 --input 1x28x28 --batch 128 --threads "$T"
run train --model resnet18 --input 3x224x224 --batch 32 --threads "$T" --steps 2 --repeat 3
run infer --model resnet18 --input 3x224x224 --batch 32 --threads "$T" --steps 3 --repeat 3
