# fovea — the one build. Non-recursive: every folder adds to the lists below
# through its module.mk; everything lands under $(BUILD).
#
#   make            build every program into build/bin/
#   make test       build and run the unit and integration tests
#   make bench      print the benchmark figures (ratios against same-run references)
#   make deps       install the Debian packages the build and tests need (root)
#   make demo       deps, build, then the Fashion-MNIST demo
#   make SANITIZE=address,undefined test   the same tree, sanitized, in build/san
#   make CUDA=1     adds the CUDA backend (nn/cuda)

SHELL    := /bin/bash
CC       ?= cc
ifeq ($(origin CC),default)
CC       := cc
endif
BUILD    ?= build
ifneq ($(SANITIZE),)
BUILD    := build/san
endif
ifeq ($(CUDA),1)
ifeq ($(SANITIZE),)
BUILD    := build/cuda
endif
endif
BIN      := $(BUILD)/bin
OBJ      := $(BUILD)/obj
GEN      := $(BUILD)/gen
WERROR   ?= -Werror
ARCH     ?= -march=x86-64-v3

CPPFLAGS += -D_GNU_SOURCE -I. -Ilib -Itests -I$(GEN) -MMD -MP
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -Wall -Wextra $(WERROR) -pthread $(ARCH)
LDFLAGS  += -pthread -Wl,--as-needed
LDLIBS   += -lzmq -lprotobuf-c -llmdb -lturbojpeg -ljpeg -lpng -lz -lsystemd -ldnnl -lm
ifneq ($(SANITIZE),)
# pattern: a local read before it is written holds 0xfe bytes, not whatever
# this glibc's stack happened to leave (often zeros here, not on others)
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -O1 -ftrivial-auto-var-init=pattern
LDFLAGS  += -fsanitize=$(SANITIZE)
endif

# Lists the module.mk files extend.
LIB_SRCS :=
PROGRAMS :=
TEST_BINS :=
FUZZ_BINS :=
PROTOS   := $(wildcard proto/*.proto)
PROTO_C  := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS))
PROTO_H  := $(PROTO_C:.c=.h)

# $(call fv_program,NAME,SOURCES): a program in $(BIN) linked against libfovea.
define fv_program
$(BIN)/$(1): $(patsubst %.c,$(OBJ)/%.o,$(2)) $(BUILD)/libfovea.a
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) $(BUILD)/libfovea.a $$(LDLIBS)
PROGRAMS += $(BIN)/$(1)
endef

all: programs

BENCH_SRCS :=
include $(sort $(wildcard */module.mk) $(wildcard */*/module.mk))

# Objects depend on the flags they were built with: changing ARCH, CFLAGS or
# CC rebuilds everything instead of linking stale objects with new ones.
FLAGS_STAMP := $(BUILD)/flags
FLAGS_NOW   := $(CC) $(CPPFLAGS) $(CFLAGS) $(NVCCFLAGS)
$(shell mkdir -p $(BUILD) && (printf '%s\n' '$(FLAGS_NOW)' | cmp -s - $(FLAGS_STAMP) || \
  printf '%s\n' '$(FLAGS_NOW)' > $(FLAGS_STAMP)))

# fovea-bench links each module's bench entry point directly (BENCH_SRCS).
$(eval $(call fv_program,fovea-bench,fovea/bench.c $(BENCH_SRCS)))

# Every tests/unit/test_<module>.c is one test program.
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
TEST_BINS += $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

$(BUILD)/tests/test_%: $(OBJ)/tests/unit/test_%.o $(OBJ)/tests/fv_test.o $(BUILD)/libfovea.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(BUILD)/libfovea.a $(LDLIBS)

LIB_OBJS := $(patsubst %.c,$(OBJ)/%.o,$(LIB_SRCS)) $(patsubst $(GEN)/%.c,$(OBJ)/gen/%.o,$(PROTO_C))

$(BUILD)/libfovea.a: $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)
	protoc-c --proto_path=proto --c_out=$(GEN) $<

$(OBJ)/gen/%.o: $(GEN)/%.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(filter-out -Werror,$(CFLAGS)) -c -o $@ $<

# Generated headers must exist before anything compiles.
$(OBJ)/%.o: %.c $(FLAGS_STAMP) | $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

programs: $(PROGRAMS)

tests: programs $(TEST_BINS)

test: deps-check tests
	@BUILD=$(BUILD) tests/run.sh $(T)

test-continual: deps-check programs
	@BUILD=$(BUILD) tests/run.sh continual

bench: deps-check programs
	@BUILD=$(BUILD) tools/bench.sh

bench-accuracy: deps-check programs
	@BUILD=$(BUILD) tools/bench-accuracy.sh

fuzz: deps-check
	@$(MAKE) --no-print-directory -f tests/fuzz/fuzz.mk BUILD=$(BUILD) FUZZ_SECONDS=$${FUZZ_SECONDS:-120} run-fuzz

DEB_PACKAGES := build-essential pkg-config clang libclang-rt-14-dev libzmq3-dev libprotobuf-c-dev \
  protobuf-c-compiler liblmdb-dev lmdb-utils libturbojpeg0-dev libjpeg62-turbo-dev libpng-dev \
  zlib1g-dev libxxhash-dev libsystemd-dev libdnnl-dev dataset-fashion-mnist python3 procps psmisc libmicrohttpd-dev curl \
  libonnx-dev python3-onnx python3-pil nodejs systemd

deps:
	@tools/deps.sh install $(DEB_PACKAGES)

deps-check:
	@tools/deps.sh check $(DEB_PACKAGES)

demo: deps-check programs
	@BUILD=$(BUILD) tools/demo.sh

clean:
	rm -rf build

.PHONY: all programs tests test test-continual bench bench-accuracy fuzz deps deps-check demo clean
.DELETE_ON_ERROR:
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
