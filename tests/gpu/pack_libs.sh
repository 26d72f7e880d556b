#!/usr/bin/env bash
# tests/gpu/pack_libs.sh P — packs every library the programs in P/bin load,
# except glibc's own and CUDA's (the GPU machine's driver-matched ones must be
# used), into P/libs.tar.gz (gzip: xz may be missing there). Called by
# prepare.sh and ingest_prepare.sh; the lent machine unpacks it and puts the
# folder on LD_LIBRARY_PATH (env.sh, ingest_bench.sh).
set -euo pipefail
P=$1
rm -rf "$P/libs" && mkdir -p "$P/libs"
ldd "$P"/bin/* | awk '/=>/ { print $3 }' | sort -u |
	grep -Ev '/(libc|libm|libdl|librt|libpthread|ld-linux[^/]*|libcud[^/]*|libcublas[^/]*|libstdc\+\+|libgcc_s)\.so' |
	while read -r lib; do cp -L "$lib" "$P/libs/"; done
tar -C "$P" -czf "$P/libs.tar.gz" libs
rm -rf "$P/libs"
