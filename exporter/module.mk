# exporter/ — fovea-exporter: checkpoint -> folded FP32 graph -> calibrated
# INT8 -> model.fovea / model.onnx (+ FP32 twins), and the runtime that runs
# .fovea files (exporter/runtime.h; fovea-serve links it from libfovea).
LIB_SRCS += exporter/kernels.c exporter/runtime.c exporter/rtexec.c
LIB_SRCS += exporter/format.c exporter/fold.c exporter/quant.c exporter/calib.c nn/walk.c
$(OBJ)/exporter/runtime.o: CFLAGS += -fopenmp
LIB_SRCS += exporter/onnx.c

# ONNX: C from the onnx.proto Debian's libonnx-dev ships, generated at build
# time into $(GEN)/onnx (never copied into the repository).
ONNX_PROTO ?= /usr/include/onnx/onnx.proto
PROTO_C += $(GEN)/onnx/onnx.pb-c.c
PROTO_H += $(GEN)/onnx/onnx.pb-c.h
$(GEN)/onnx/onnx.pb-c.c $(GEN)/onnx/onnx.pb-c.h: $(ONNX_PROTO)
	@mkdir -p $(GEN)/onnx
	protoc-c --proto_path=$(dir $(ONNX_PROTO)) --c_out=$(GEN)/onnx $(ONNX_PROTO)
LIB_SRCS += exporter/data.c exporter/export.c
$(eval $(call fv_program,fovea-exporter,exporter/main.c exporter/predict.c))
BENCH_SRCS += exporter/bench.c
