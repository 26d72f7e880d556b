#!/usr/bin/env bash
# Augment throughput: the train transform as the trainer runs it by default
# (RandomResizedCrop, flip, normalize), the same with ColorJitter 0.4/0.4/0.4,
# the decode of the train crop alone (the floor under the train figure),
# and the eval transform, against a full TurboJPEG decode measured in the same
# run (train_vs_decode; target >= 1.3), and the pipeline through 1 and 2 real
# worker processes when those are built.
set -u
dir=${FV_SHARED_DATA:-../shared/data}/jpeg-bench
exec "${FV_BIN:-build/bin}/fovea-bench" augment --images "$dir" "$@"
