# augment/ — the augment worker: per-sample transforms (aug-transform) and
# the worker process and broker protocol (aug-proto).
AUG_XFORM_SRCS := augment/transform.c augment/resample.c augment/color.c \
  augment/resample_fx.c augment/jpeg_region.c augment/png_decode.c augment/transform_pb.c
LIB_SRCS += $(AUG_XFORM_SRCS)
BENCH_SRCS += augment/bench.c
# hot loops: let gcc vectorize fully
$(patsubst %.c,$(OBJ)/%.o,$(AUG_XFORM_SRCS)): CFLAGS += -O3
# the worker program and its end-to-end benchmark (aug-proto)
$(eval $(call fv_program,fovea-augment,augment/main.c augment/worker.c))
BENCH_SRCS += augment/bench_workers.c
