#!/usr/bin/env bash
# Ingest throughput: Fashion-MNIST IDX records/s, and a JPEG folder with
# --jobs 2 as a ratio to single-thread TurboJPEG decode-only of the same
# files, measured in the same run (target >= 1.6); and the same ingest with
# the photos dropped from the page cache first, against the cached figure;
# and a re-run over the unchanged folder, against the ingest.
set -u
cd "$(dirname "$0")/../.."
BIN=${FV_BIN:-$PWD/${BUILD:-build}/bin}
"$BIN/fovea" bench ingest --images "${FV_SHARED_DATA:-../shared/data}/jpeg-bench" "$@"
