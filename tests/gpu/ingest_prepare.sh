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
rm -rf "$P" && mkdir -p "$P/bin" "$P/libs"
cp build/bin/fovea-bench build/bin/fovea-ingest "$P/bin/"
ldd "$P"/bin/* | awk '/=>/ { print $3 }' | sort -u |
	grep -Ev '/(libc|libm|libdl|librt|libpthread|ld-linux[^/]*|libstdc\+\+|libgcc_s)\.so' |
	while read -r lib; do cp -L "$lib" "$P/libs/"; done
tar -C "$P" -czf "$P/libs.tar.gz" libs && rm -rf "$P/libs"
cp -r "${PHOTOS:-../shared/data/jpeg-bench}" "$P/photos"
FM=${FASHION:-/usr/share/datasets/fashion-mnist}
cp "$FM"/t10k-{images-idx3,labels-idx1}-ubyte.gz "$P/"
du -sh "$P"
