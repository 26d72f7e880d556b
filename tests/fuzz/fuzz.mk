# tests/fuzz/fuzz.mk — libFuzzer targets built with clang
# (-fsanitize=fuzzer,address,undefined) into $(BUILD)/fuzz, from the sources
# they exercise (not libfovea.a, which is built without instrumentation).
#   make fuzz [FUZZ_SECONDS=N]     run each target N seconds (top Makefile)
#   make -f tests/fuzz/fuzz.mk BUILD=build FUZZ_SECONDS=3 run-fuzz
BUILD        ?= build
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FZ           := $(BUILD)/fuzz
FZGEN        := $(FZ)/gen
FZFLAGS      := -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -I. -Ilib -Iingest -I$(FZGEN)
FZLIBS       := -lzmq -lprotobuf-c -lturbojpeg -lpng -lz -lxxhash -llmdb -lpthread

FUZZ_TARGETS := idx list msg image json
fuzz_idx_SRCS   := tests/fuzz/fuzz_idx.c lib/fv_idx.c lib/fv_error.c
fuzz_list_SRCS  := tests/fuzz/fuzz_list.c ingest/list.c lib/fv_error.c
fuzz_msg_SRCS   := tests/fuzz/fuzz_msg.c lib/fv_msg.c lib/fv_store.c lib/fv_json.c lib/fv_error.c \
  $(FZGEN)/fovea.pb-c.c
fuzz_image_SRCS := tests/fuzz/fuzz_image.c lib/fv_image.c lib/fv_error.c
fuzz_json_SRCS  := tests/fuzz/fuzz_json.c lib/fv_json.c

BINS := $(patsubst %,$(FZ)/fuzz_%,$(FUZZ_TARGETS))

all-fuzz: $(BINS)

$(FZGEN)/fovea.pb-c.c $(FZGEN)/fovea.pb-c.h: proto/fovea.proto
	@mkdir -p $(FZGEN)
	protoc-c --proto_path=proto --c_out=$(FZGEN) $<

$(FZ)/fuzz_%: $(FZGEN)/fovea.pb-c.h tests/fuzz/fuzz.mk $(wildcard lib/*.h ingest/*.h)
	$(FUZZ_CC) $(FZFLAGS) -o $@ $(fuzz_$*_SRCS) $(FZLIBS)

$(foreach t,$(FUZZ_TARGETS),$(eval $(FZ)/fuzz_$(t): $(fuzz_$(t)_SRCS)))

# Seeds: a real JPEG from the shared bench photos when present (copied at run
# time, never into the repository), a valid IDX header, a list line, and a
# packed Envelope. Each target runs FUZZ_SECONDS; a crash fails the run.
run-fuzz: $(BINS)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  c=$(FZ)/corpus/$$t; mkdir -p $$c; \
	  case $$t in \
	    image) j=$${FV_SHARED_DATA:-../shared/data}/jpeg-bench/img0000.jpg; \
	           [ -f $$j ] && cp $$j $$c/seed.jpg || true; \
	           python3 tests/fuzz/png_seeds.py $$c;; \
	    idx)   printf '\0\0\10\3\0\0\0\1\0\0\0\2\0\0\0\2\1\2\3\4' >$$c/seed;; \
	    list)  printf 'a/b.jpg 1\n# c\n\nd e.png cat\n' >$$c/seed;; \
	    msg)   printf '\10\1\20\1\30\7\42\4\10\5\20\1' >$$c/seed;; \
	    json)  printf 'caf\303\251 \"q\" \351\t\360\237\220\210' >$$c/seed;; \
	  esac; \
	  echo "fuzz_$$t: $(FUZZ_SECONDS)s"; \
	  $(FZ)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=2048 -artifact_prefix=$(FZ)/ \
	    -max_len=$$([ $$t = image ] && echo 65536 || echo 4096) -print_final_stats=0 \
	    $$c >$(FZ)/fuzz_$$t.log 2>&1 || { tail -n 40 $(FZ)/fuzz_$$t.log; echo "FAIL fuzz_$$t"; exit 1; }; \
	  echo "ok fuzz_$$t $$(grep -o 'cov: [0-9]*' $(FZ)/fuzz_$$t.log | tail -1)"; \
	done

.PHONY: all-fuzz run-fuzz
