# nn/cuda — the CUDA backend (cuDNN, cuBLAS, our kernels). Only with CUDA=1:
# a plain `make` never reads a CUDA header or library. The .cu objects join
# libfovea.a as extra prerequisites (its recipe archives $^), and the linker
# is told to pull fv_backend_cuda in, since nn/backend.c refers to it weakly.
ifeq ($(CUDA),1)
CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(CUDA_HOME)/bin/nvcc
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_90,code=compute_90
NVFLAGS   ?= -O2 -g
NVFLAGS   += -std=c++17 $(CUDA_ARCH) --Werror all-warnings \
             -Xcompiler -Wall,-Wextra$(if $(WERROR),$(comma)-Werror)
comma     := ,
CU_SRCS   := $(wildcard nn/cuda/*.cu)
CU_OBJS   := $(patsubst %.cu,$(OBJ)/%.o,$(CU_SRCS))
LIB_SRCS  += nn/cuda/backend.c
$(OBJ)/nn/cuda/%.o: CPPFLAGS += -I$(CUDA_HOME)/include

$(OBJ)/nn/cuda/%.o: nn/cuda/%.cu | $(PROTO_H)
	@mkdir -p $(@D)
	$(NVCC) -D_GNU_SOURCE -I. -Ilib -I$(CUDA_HOME)/include -MMD -MP $(NVFLAGS) -c -o $@ $<

$(BUILD)/libfovea.a: $(CU_OBJS)

# the trainer refers to the uint8 input path weakly too (trainer/run.c)
LDFLAGS += -Wl,--undefined=fv_backend_cuda -Wl,--undefined=fv_cuda_input_new \
           -L$(CUDA_HOME)/lib64 -L$(CUDA_HOME)/lib
LDLIBS  += -lcudnn -lcublas -lcublasLt -lcudart -lstdc++

# The fallback test (a CUDA=1 build on a machine without a GPU runs on the
# CPU) and the GPU check programs tests/gpu/run.sh drives.
TEST_BINS += $(BUILD)/tests/test_cuda_fallback
$(BUILD)/tests/test_cuda_fallback: $(OBJ)/tests/gpu/test_cuda_fallback.o $(OBJ)/tests/fv_test.o \
                                   $(BUILD)/libfovea.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(BUILD)/libfovea.a $(LDLIBS)
$(eval $(call fv_program,fv-gpu-check,tests/gpu/check_ops.c tests/gpu/check_net.c))
$(eval $(call fv_program,fv-gpu-train,tests/gpu/train.c))
endif
