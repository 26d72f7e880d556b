#!/usr/bin/env bash
# tests/gpu/ingest_prepare.sh — run HERE: packs fovea-bench, fovea-ingest, the
# libraries they load (gzipped), the 512 benchmark photos and the small
# Fashion-MNIST IDX into build/gpu-ingest (about 45 MiB), for a lent machine's
# CPUs to measure `fovea bench ingest` on two pinned cores (#2's ratio on a
# host other than this 2-core guest):
#   tests/gpu/ingest_prepare.sh
#   device run: carry ["build/gpu-ingest"], command "bash tests/gpu/ingest_bench.sh", timeout_s 300
set -euo pipefail
cd "$(dirname "$0")/../.."
make -j"${J:-2}" build/bin/fovea-bench build/bin/fovea-ingest
P=build/gpu-ingest
rm -rf "$P" && mkdir -p "$P/bin"
cp build/bin/fovea-bench build/bin/fovea-ingest "$P/bin/"
tests/gpu/pack_libs.sh "$P"
cp -r "${PHOTOS:-../shared/data/jpeg-bench}" "$P/photos"
FM=${FASHION:-/usr/share/datasets/fashion-mnist}
cp "$FM"/t10k-{images-idx3,labels-idx1}-ubyte.gz "$P/"
du -sh "$P"
