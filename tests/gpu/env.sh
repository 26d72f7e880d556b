# tests/gpu/env.sh — sourced by tests/gpu/run.sh (and by hand-made device
# commands): finds the programs (a carried build/gpu, else a CUDA=1 build
# made there) and CUDA's libraries, and sets BIN, TBIN, DATA and
# LD_LIBRARY_PATH. Needs P, OUT and note() from the caller when sourced by
# run.sh; works alone too.
P=${P:-build/gpu}
OUT=${OUT:-/tmp/fv-gpu-out}
mkdir -p "$OUT"
type note >/dev/null 2>&1 || note() { echo "== $*"; }
if [ -x "$P/bin/fv-gpu-check" ]; then
	note "using the carried $P"
	mkdir -p /tmp/fv-libs && tar -C /tmp/fv-libs -xzf "$P/libs.tar.gz"
	BIN=$P/bin TBIN=$P/bin DATA=$P/data LIBS=/tmp/fv-libs/libs
else
	note "no carried $P: building with CUDA=1 here"
	make CUDA=1 -j"$(nproc)" build/cuda/bin/fv-gpu-check build/cuda/bin/fv-gpu-train \
		build/cuda/tests/test_cuda_fallback >"$OUT/build.log" 2>&1 ||
		{ tail -30 "$OUT/build.log"; echo "build failed: run tests/gpu/prepare.sh here and carry $P"; return 1; }
	BIN=build/cuda/bin TBIN=build/cuda/tests DATA=${FASHION:-/usr/share/datasets/fashion-mnist} LIBS=
fi

# CUDA's libraries: the machine's toolkit, else the pip wheels beside PyTorch
# (nvrtc only lets cuDNN use its runtime-compiled engines)
dirs=
for lib in libcudnn.so.9 libcublas.so.13 libcublasLt.so.13 libcudart.so.13 libnvrtc.so.13; do
	f=$(find -H /usr/local/cuda*/lib* /usr/lib/x86_64-linux-gnu /opt /usr/local/lib /usr/lib/python3* \
		-name "$lib*" 2>/dev/null | head -1)
	[ -n "$f" ] && dirs=$dirs:$(dirname "$f")
	[ -z "$f" ] && echo "warning: $lib not found"
done
export LD_LIBRARY_PATH=${LIBS:+$LIBS:}${dirs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvidia-smi -L 2>&1 | head -2
missing=$(ldd "$BIN"/* 2>/dev/null | grep 'not found' | sort -u) # every carried program
if [ -n "$missing" ]; then
	echo "missing libraries:"
	echo "$missing"
	return 1
fi

