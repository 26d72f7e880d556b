# nn/ — the tensor/layer engine: graph building (net.c), compile and run
# (run.c), the loss (loss.c), backend choice (backend.c); the CPU backend is
# nn/cpu/ (and a CUDA one would be nn/cuda/).
LIB_SRCS += nn/net.c nn/run.c nn/loss.c nn/backend.c
BENCH_SRCS += nn/bench.c
