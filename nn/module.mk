# nn/ — the tensor/layer engine: graph building (net.c), compile and run
# (run.c); backends under nn/cpu/ (and nn/cuda/), chosen in backend.c.
LIB_SRCS += nn/net.c nn/run.c
