# ingest/ — fovea-ingest: folders, list files and IDX into the LMDB dataset,
# the inbox daemon (--watch) and `fovea stats`; its benchmark.
INGEST_SRCS := ingest/main.c ingest/options.c ingest/writer.c ingest/pool.c ingest/sources.c ingest/list.c ingest/stats.c \
  ingest/watch.c
$(eval $(call fv_program,fovea-ingest,$(INGEST_SRCS)))
BENCH_SRCS += ingest/bench.c ingest/options.c ingest/writer.c ingest/pool.c ingest/sources.c ingest/list.c
LDLIBS += -lxxhash # lib/fv_image.c hashes pixels with XXH3-128 (libxxhash-dev)
# tests/unit/test_ingest.c runs the decode pool and the writer themselves
$(BUILD)/tests/test_ingest: $(patsubst %.c,$(OBJ)/%.o,ingest/options.c ingest/writer.c ingest/pool.c ingest/sources.c ingest/list.c)
