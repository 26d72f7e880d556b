#!/usr/bin/env bash
# make demo: the main job on Fashion-MNIST, end to end, with what is built so far.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/${BUILD:-build}/bin
D=${FV_DEMO_DIR:-$PWD/build/demo}
F=/usr/share/datasets/fashion-mnist
mkdir -p "$D"
echo "== ingest Fashion-MNIST into $D/db"
"$BIN/fovea" ingest --db "$D/db" "$F/train-images-idx3-ubyte.gz"
"$BIN/fovea" ingest --db "$D/db" --split val "$F/t10k-images-idx3-ubyte.gz"
"$BIN/fovea" stats --db "$D/db"
