/* Unit tests for ingest's decode pool (ingest/sources.c) and the writer it
 * feeds: each item gets its own file's bytes, whichever thread opened the
 * file (the prefetcher or a decoder), with the files in the page cache or
 * not. */
#include "fv_test.h"
#include "fv_file.h"
#include "fv_store.h"
#include "ingest/ingest.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NPHOTOS 60

typedef struct seen {
	size_t n, wrong;
	char first_wrong[PATH_MAX + 64];
} seen;

/* The stored bytes (JPEGs are stored untouched) must be the item's file. */
static void on_done(void *ctx, ing_item *it, int stored, uint64_t version)
{
	seen *s = ctx;
	size_t len = 0;
	uint8_t *b = stored ? fv_test_slurp(it->path, &len) : NULL;
	(void)version;
	s->n++;
	if (!b || len != it->len || memcmp(b, it->data, len)) {
		if (!s->wrong++)
			snprintf(s->first_wrong, sizeof s->first_wrong, "%s (stored %d, %zu bytes)",
				 it->path, stored, it->len);
	}
	free(b);
}

/* Drop the files' pages from the page cache, so the prefetcher's reads are
 * real reads. */
static void evict(const char *dir)
{
	char p[PATH_MAX + 32];
	for (int i = 0; i < NPHOTOS; i++) {
		snprintf(p, sizeof p, "%s/%s/%04d.jpg", dir, i % 2 ? "b" : "a", i);
		FV_CHECK_OK(fv_file_uncache(p));
	}
}

FV_TEST(pool_gives_each_item_its_own_file)
{
	const char *shared = fv_test_shared_data();
	char data[PATH_MAX], src[PATH_MAX], db[PATH_MAX], from[PATH_MAX + 64], to[PATH_MAX + 64];
	if (!shared || !realpath(shared, data)) {
		FV_CHECK_MSG(0, "no shared data folder");
		return;
	}
	/* copies, not links: their pages can be dropped without touching the
	 * shared photos' */
	snprintf(src, sizeof src, "%s/src", fv_test_tmpdir());
	mkdir(src, 0775);
	for (int c = 0; c < 2; c++) {
		snprintf(to, sizeof to, "%s/%s", src, c ? "b" : "a");
		mkdir(to, 0775);
	}
	for (int i = 0; i < NPHOTOS; i++) {
		size_t len;
		snprintf(from, sizeof from, "%s/jpeg-bench/img%04d.jpg", data, i);
		snprintf(to, sizeof to, "%s/%s/%04d.jpg", src, i % 2 ? "b" : "a", i);
		uint8_t *b = fv_test_slurp(from, &len);
		FV_CHECK(b);
		int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		FV_CHECK(fd >= 0 && write(fd, b, len) == (ssize_t)len);
		close(fd);
		free(b);
	}
	ingest_cfg cfg;
	fv_cfg_defaults(ingest_options, &cfg);
	for (int jobs = 1; jobs <= 5; jobs += 2)
		for (int cold = 0; cold < 2; cold++) {
			fv_store *s;
			ing_writer *w;
			seen sn = { 0 };
			uint64_t added, dups, rej, v;
			cfg.jobs = jobs;
			cfg.batch = 7; /* commits (and frees) while the prefetcher runs */
			snprintf(db, sizeof db, "%s/db%d%d", fv_test_tmpdir(), jobs, cold);
			if (cold)
				evict(src);
			FV_CHECK_OK(fv_store_open(db, FV_STORE_CREATE, 0, &s));
			FV_CHECK_OK(ing_writer_new(s, &cfg, &w));
			ing_writer_on_done(w, on_done, &sn);
			FV_CHECK_OK(ing_source_folder(&cfg, w, src));
			FV_CHECK_OK(ing_writer_flush(w));
			ing_writer_totals(w, &added, &dups, &rej, &v);
			FV_CHECK_EQ(added, NPHOTOS);
			FV_CHECK_EQ(sn.n, NPHOTOS);
			FV_CHECK_MSG(!sn.wrong, "jobs %d%s: %zu items stored other bytes than their file's, first %s",
				     jobs, cold ? " (cold)" : "", sn.wrong, sn.first_wrong);
			ing_writer_destroy(&w);
			fv_store_close(&s);
		}
	fv_cfg_free(ingest_options, &cfg);
}
