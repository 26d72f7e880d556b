/* Unit tests for lib/fv_store: create/reopen, zero-copy reads, stable
 * class indices, version bumps, dedup, group commit, map growth from a tiny
 * map, and a read-only open while another process holds a write
 * transaction. */
#include "fv_test.h"
#include "fv_store.h"
#include "fv_error.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void mkput(fv_store_put *p, const char *cls, uint32_t seed, uint8_t *data, size_t len)
{
	memset(p, 0, sizeof *p);
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(seed * 31 + i * 7);
	p->class_id = cls;
	p->split = seed % 2;
	p->width = 4;
	p->height = (uint32_t)(len / 4);
	p->channels = 1;
	memset(p->hash, 0, FV_HASH_LEN);
	memcpy(p->hash, &seed, sizeof seed);
	p->source = "unit";
	p->data = data;
	p->data_len = len;
}

FV_TEST(store_put_get_reopen)
{
	fv_store *s;
	uint8_t d[3][64];
	fv_store_put p[3];
	const char *ids[] = { "zebra", "ant" };
	FV_CHECK_OK(fv_store_open(fv_test_tmpdir(), FV_STORE_CREATE, 0, &s));
	for (int i = 0; i < 3; i++)
		mkput(&p[i], i == 2 ? "ant" : "zebra", (uint32_t)i + 1, d[i], sizeof d[i]);
	fv_store_batch b = { .class_ids = ids, .nclasses = 2, .items = p, .n = 3, .rejected = 2 };
	FV_CHECK_OK(fv_store_commit(s, &b));
	FV_CHECK_EQ(b.added, 3);
	FV_CHECK_EQ(b.version, 1);
	fv_store_close(&s);
	FV_CHECK(s == NULL);

	FV_CHECK_OK(fv_store_open(fv_test_tmpdir(), FV_STORE_RDONLY, 0, &s));
	fv_store_meta m;
	FV_CHECK_OK(fv_store_meta_get(s, &m));
	FV_CHECK_EQ(m.records, 3);
	FV_CHECK_EQ(m.split[0] + m.split[1], 3);
	FV_CHECK_EQ(m.classes, 2);
	FV_CHECK_EQ(m.rejected, 2);
	FV_CHECK_EQ(m.schema, FV_STORE_SCHEMA);
	fv_store_rtxn *t;
	fv_record r;
	FV_CHECK_OK(fv_store_read_begin(s, &t));
	for (int i = 0; i < 3; i++) {
		FV_CHECK_OK(fv_store_get(t, p[i].key, &r));
		FV_CHECK_EQ(r.data_len, 64);
		FV_CHECK(!memcmp(r.data, d[i], 64));
		FV_CHECK_EQ(r.label, i == 2 ? 1 : 0); /* classes given first keep their order */
		FV_CHECK_EQ(r.height, 16);
		FV_CHECK_EQ(r.hash_len, FV_HASH_LEN);
		FV_CHECK(r.source_len == 4 && !memcmp(r.source, "unit", 4));
	}
	FV_CHECK_EQ(fv_store_get(t, 999, &r), FV_E_NOTFOUND);
	fv_store_read_end(&t);
	FV_CHECK(t == NULL);
	uint64_t *keys, ver;
	uint32_t *labels;
	size_t n;
	FV_CHECK_OK(fv_store_split_index(s, 1, &keys, &labels, &n, &ver));
	FV_CHECK_EQ(n, m.split[1]);
	FV_CHECK_EQ(ver, 1);
	for (size_t i = 0; i < n; i++)
		FV_CHECK_EQ(keys[i] % 2, 0); /* seeds 1 and 3 -> split 1 -> keys 0 and 2 */
	free(keys);
	free(labels);
	fv_store_close(&s);
}

FV_TEST(store_classes_stable_versions_dedup)
{
	fv_store *s;
	uint8_t d[4][16];
	fv_store_put p[4];
	FV_CHECK_OK(fv_store_open(fv_test_tmpdir(), FV_STORE_CREATE, 0, &s));
	mkput(&p[0], "b", 1, d[0], 16);
	mkput(&p[1], "a", 2, d[1], 16);
	fv_store_batch b = { .items = p, .n = 2 };
	FV_CHECK_OK(fv_store_commit(s, &b));
	FV_CHECK_EQ(b.version, 1);
	fv_store_close(&s);
	/* reopen; a new class and a duplicate of seed 1 (also twice in one batch) */
	FV_CHECK_OK(fv_store_open(fv_test_tmpdir(), FV_STORE_CREATE, 0, &s));
	const char *ids[] = { "c", "a" };
	mkput(&p[0], "c", 3, d[2], 16);
	mkput(&p[1], "a", 1, d[0], 16);
	mkput(&p[2], "c", 3, d[2], 16);
	fv_store_batch b2 = { .class_ids = ids, .nclasses = 2, .items = p, .n = 3 };
	FV_CHECK_OK(fv_store_commit(s, &b2));
	FV_CHECK_EQ(b2.version, 2);
	FV_CHECK_EQ(b2.added, 1);
	FV_CHECK_EQ(b2.duplicates, 2);
	FV_CHECK(p[1].duplicate && p[1].key == 0);
	FV_CHECK(p[2].duplicate && p[2].key == p[0].key);
	fv_class *c;
	uint32_t n;
	FV_CHECK_OK(fv_store_classes(s, &c, &n));
	FV_CHECK_EQ(n, 3);
	FV_CHECK(!strcmp(c[0].id, "b") && !strcmp(c[1].id, "a") && !strcmp(c[2].id, "c"));
	FV_CHECK_EQ(c[2].split[0] + c[2].split[1], 1);
	fv_store_classes_free(&c, n);
	FV_CHECK(c == NULL);
	/* a batch of duplicates only: counted, version unchanged */
	fv_store_batch b3 = { .items = p + 1, .n = 1, .rejected = 1 };
	FV_CHECK_OK(fv_store_commit(s, &b3));
	FV_CHECK_EQ(b3.version, 2);
	fv_store_meta m;
	FV_CHECK_OK(fv_store_meta_get(s, &m));
	FV_CHECK_EQ(m.records, 3);
	FV_CHECK_EQ(m.duplicates, 3);
	FV_CHECK_EQ(m.rejected, 1);
	FV_CHECK_EQ(m.version, 2);
	fv_store_close(&s);
}

/* Four batches: new class and records; a new class, a duplicate and
 * rejects; duplicates only (no version of its own); one more record. */
typedef struct four {
	uint8_t d[5][16];
	fv_store_put p[5];
	fv_store_batch b[4];
} four;

static void four_make(four *f)
{
	static const char *ids[] = { "x" };
	mkput(&f->p[0], "x", 1, f->d[0], 16);
	mkput(&f->p[1], "x", 2, f->d[1], 16);
	mkput(&f->p[2], "y", 3, f->d[2], 16);
	mkput(&f->p[3], "x", 1, f->d[0], 16);
	mkput(&f->p[4], "x", 4, f->d[3], 16);
	memset(f->b, 0, sizeof f->b);
	f->b[0] = (fv_store_batch){ .class_ids = ids, .nclasses = 1, .items = f->p, .n = 2 };
	f->b[1] = (fv_store_batch){ .items = f->p + 2, .n = 2, .rejected = 2 };
	f->b[2] = (fv_store_batch){ .items = f->p + 3, .n = 1 };
	f->b[3] = (fv_store_batch){ .items = f->p + 4, .n = 1 };
}

/* Group commit: four batches in one transaction leave exactly what four
 * commits leave (record versions, keys, labels, meta), and a group is all
 * or nothing. */
FV_TEST(store_commit_many_as_one_by_one)
{
	char da[4096], db[4096];
	fv_store *a, *b;
	four fa, fb;
	snprintf(da, sizeof da, "%s/many", fv_test_tmpdir());
	snprintf(db, sizeof db, "%s/one", fv_test_tmpdir());
	FV_CHECK_OK(fv_store_open(da, FV_STORE_CREATE | FV_STORE_LAZYMETA, 0, &a));
	FV_CHECK_OK(fv_store_open(db, FV_STORE_CREATE, 0, &b));
	four_make(&fa);
	four_make(&fb);
	FV_CHECK_OK(fv_store_commit_many(a, fa.b, 4));
	for (int i = 0; i < 4; i++)
		FV_CHECK_OK(fv_store_commit(b, &fb.b[i]));
	static const uint64_t want[4] = { 1, 2, 2, 3 };
	for (int i = 0; i < 4; i++) {
		FV_CHECK_EQ(fa.b[i].version, want[i]);
		FV_CHECK_EQ(fa.b[i].version, fb.b[i].version);
		FV_CHECK_EQ(fa.b[i].added, fb.b[i].added);
		FV_CHECK_EQ(fa.b[i].duplicates, fb.b[i].duplicates);
	}
	fv_store_meta ma, mb;
	FV_CHECK_OK(fv_store_meta_get(a, &ma));
	FV_CHECK_OK(fv_store_meta_get(b, &mb));
	FV_CHECK(!memcmp(&ma, &mb, sizeof ma));
	FV_CHECK_EQ(ma.version, 3);
	FV_CHECK_EQ(ma.records, 4);
	FV_CHECK_EQ(ma.duplicates, 2);
	FV_CHECK_EQ(ma.rejected, 2);
	fv_store_rtxn *ta, *tb;
	FV_CHECK_OK(fv_store_read_begin(a, &ta));
	FV_CHECK_OK(fv_store_read_begin(b, &tb));
	for (uint64_t k = 0; k < 4; k++) {
		fv_record ra, rb;
		FV_CHECK_OK(fv_store_get(ta, k, &ra));
		FV_CHECK_OK(fv_store_get(tb, k, &rb));
		FV_CHECK_EQ(ra.dataset_version, rb.dataset_version);
		FV_CHECK_EQ(ra.label, rb.label);
		FV_CHECK(ra.data_len == rb.data_len && !memcmp(ra.data, rb.data, ra.data_len));
	}
	fv_record r;
	FV_CHECK_OK(fv_store_get(ta, 3, &r)); /* the fourth batch's record */
	FV_CHECK_EQ(r.dataset_version, 3);
	fv_store_read_end(&ta);
	fv_store_read_end(&tb);

	/* a bad batch fails the group: the good one before it is not stored */
	uint8_t d[2][16];
	fv_store_put p[2];
	mkput(&p[0], "x", 5, d[0], 16);
	mkput(&p[1], "x", 6, d[1], 16);
	p[1].split = 7;
	fv_store_batch bad[2] = { { .items = p, .n = 1 }, { .items = p + 1, .n = 1 } };
	FV_CHECK(fv_store_commit_many(a, bad, 2) != 0);
	FV_CHECK_OK(fv_store_meta_get(a, &ma));
	FV_CHECK_EQ(ma.records, 4);
	FV_CHECK_EQ(ma.version, 3);
	FV_CHECK_OK(fv_store_sync(a));
	fv_store_close(&a);
	fv_store_close(&b);
}

/* Thousands of classes (the id index grows many times): after a reopen,
 * a put names its class by id in any order and gets that class's index;
 * no class is added twice. */
FV_TEST(store_many_classes_found_by_id)
{
	enum { N = 3000 };
	fv_store *s;
	static char idbuf[N][16];
	static const char *ids[N];
	for (int i = 0; i < N; i++) {
		snprintf(idbuf[i], sizeof idbuf[i], "n%08d", i * 7919 % 100003);
		ids[i] = idbuf[i];
	}
	FV_CHECK_OK(fv_store_open(fv_test_tmpdir(), FV_STORE_CREATE, 0, &s));
	fv_store_batch b = { .class_ids = ids, .nclasses = N };
	FV_CHECK_OK(fv_store_commit(s, &b));
	fv_store_close(&s);
	FV_CHECK_OK(fv_store_open(fv_test_tmpdir(), FV_STORE_CREATE, 0, &s));
	static uint8_t d[64][16];
	fv_store_put p[64];
	int want[64];
	for (int k = 0; k < 64; k++) {
		want[k] = (int)(fv_test_rand() % N);
		mkput(&p[k], ids[want[k]], (uint32_t)(k + 10), d[k], 16);
	}
	fv_store_batch b2 = { .items = p, .n = 64 };
	FV_CHECK_OK(fv_store_commit(s, &b2));
	int wrong = 0;
	for (int k = 0; k < 64; k++)
		wrong += p[k].label != (uint32_t)want[k];
	FV_CHECK_EQ(wrong, 0);
	fv_store_meta m;
	FV_CHECK_OK(fv_store_meta_get(s, &m));
	FV_CHECK_EQ(m.classes, N);
	fv_store_close(&s);
}

/* Protobuf strings hold UTF-8: a Latin-1 class id and source path are
 * stored with U+FFFD for the bad byte, and the raw id finds its class
 * again (no second class on the next batch). */
FV_TEST(store_latin1_names_stored_as_utf8)
{
	fv_store *s;
	uint8_t d[2][16];
	fv_store_put p[2];
	FV_CHECK_OK(fv_store_open(fv_test_tmpdir(), FV_STORE_CREATE, 0, &s));
	mkput(&p[0], "caf\xe9", 1, d[0], 16);
	p[0].source = "photos/caf\xe9/\xff.jpg";
	fv_store_batch b = { .items = p, .n = 1 };
	FV_CHECK_OK(fv_store_commit(s, &b));
	mkput(&p[1], "caf\xe9", 2, d[1], 16);
	fv_store_batch b2 = { .items = p + 1, .n = 1 };
	FV_CHECK_OK(fv_store_commit(s, &b2));
	FV_CHECK_EQ(p[1].label, p[0].label);
	fv_class *c;
	uint32_t n;
	FV_CHECK_OK(fv_store_classes(s, &c, &n));
	FV_CHECK_EQ(n, 1);
	FV_CHECK(!strcmp(c[0].id, "caf\xef\xbf\xbd") && !strcmp(c[0].name, "caf\xef\xbf\xbd"));
	fv_store_classes_free(&c, n);
	fv_store_rtxn *t;
	fv_record r;
	FV_CHECK_OK(fv_store_read_begin(s, &t));
	FV_CHECK_OK(fv_store_get(t, p[0].key, &r));
	static const char want[] = "photos/caf\xef\xbf\xbd/\xef\xbf\xbd.jpg";
	FV_CHECK(r.source_len == sizeof want - 1 && !memcmp(r.source, want, r.source_len));
	fv_store_read_end(&t);
	fv_store_close(&s);
}

/* sources: a put with its file's stat makes the path known with exactly
 * that stat (a duplicate's too); a known put counts a duplicate, stores
 * nothing and reports the key remembered. */
FV_TEST(store_sources_remember_stat)
{
	fv_store *s;
	uint8_t d[3][16];
	fv_store_put p[3];
	fv_source_stat st = { .size = 1234, .ino = 99, .mtime_ns = 1700000000123456789LL,
			      .ctime_ns = 1700000001000000000LL };
	FV_CHECK_OK(fv_store_open(fv_test_tmpdir(), FV_STORE_CREATE, 0, &s));
	FV_CHECK(!fv_store_source_known(s, "dir/a.jpg", &st));
	mkput(&p[0], "c", 1, d[0], 16);
	p[0].source = "dir/a.jpg";
	p[0].src_stat = &st;
	mkput(&p[1], "c", 1, d[1], 16); /* same content, another path: a duplicate */
	p[1].source = "dir/copy.jpg";
	p[1].src_stat = &st;
	mkput(&p[2], "c", 2, d[2], 16); /* no stat: not remembered */
	p[2].source = "dir/b.jpg";
	fv_store_batch b = { .items = p, .n = 3 };
	FV_CHECK_OK(fv_store_commit(s, &b));
	FV_CHECK_EQ(b.added, 2);
	FV_CHECK(fv_store_source_known(s, "dir/a.jpg", &st));
	FV_CHECK(fv_store_source_known(s, "dir/copy.jpg", &st));
	FV_CHECK(!fv_store_source_known(s, "dir/b.jpg", &st));
	FV_CHECK(!fv_store_source_known(s, "dir/a.jpg/", &st));
	fv_source_stat other[4] = { st, st, st, st };
	other[0].size++;
	other[1].ino++;
	other[2].mtime_ns++;
	other[3].ctime_ns++;
	for (int i = 0; i < 4; i++)
		FV_CHECK_MSG(!fv_store_source_known(s, "dir/a.jpg", &other[i]), "stat field %d ignored", i);
	uint64_t key = p[0].key;
	fv_store_close(&s);

	FV_CHECK_OK(fv_store_open(fv_test_tmpdir(), FV_STORE_RDONLY, 0, &s));
	FV_CHECK(fv_store_source_known(s, "dir/a.jpg", &st)); /* readers see it too */
	fv_store_close(&s);
	FV_CHECK_OK(fv_store_open(fv_test_tmpdir(), FV_STORE_CREATE, 0, &s));
	fv_store_put k = { .class_id = "c", .source = "dir/a.jpg", .known = 1 };
	fv_store_batch b2 = { .items = &k, .n = 1 };
	FV_CHECK_OK(fv_store_commit(s, &b2));
	FV_CHECK_EQ(b2.added, 0);
	FV_CHECK_EQ(b2.duplicates, 1);
	FV_CHECK(k.duplicate && k.key == key);
	fv_store_meta m;
	FV_CHECK_OK(fv_store_meta_get(s, &m));
	FV_CHECK_EQ(m.records, 2);
	FV_CHECK_EQ(m.duplicates, 2);
	FV_CHECK_EQ(m.version, 1);
	fv_store_close(&s);
}

FV_TEST(store_map_grows)
{
	fv_store *s;
	enum { N = 300, LEN = 8192 };
	static uint8_t d[LEN];
	fv_store_put p[N];
	FV_CHECK_OK(fv_store_open(fv_test_tmpdir(), FV_STORE_CREATE | FV_STORE_NOSYNC, 64 << 10, &s));
	size_t before = fv_store_mapsize(s);
	for (int i = 0; i < N; i++) {
		mkput(&p[i], "x", (uint32_t)i + 7, d, LEN);
	}
	fv_store_batch b = { .items = p, .n = N };
	FV_CHECK_OK(fv_store_commit(s, &b)); /* ~2.4 MB through a 64 KiB map */
	FV_CHECK_EQ(b.added, N);
	FV_CHECK(fv_store_mapsize(s) > before * 16);
	fv_store_rtxn *t;
	fv_record r;
	FV_CHECK_OK(fv_store_read_begin(s, &t));
	FV_CHECK_OK(fv_store_get(t, N - 1, &r));
	FV_CHECK_EQ(r.data_len, LEN);
	fv_store_read_end(&t);
	fv_store_close(&s);
}

/* A child holds a write txn open (after growing the map); the parent opens
 * read-only, reads the last committed snapshot and is not blocked. */
FV_TEST(store_reader_while_writer)
{
	fv_store *s;
	uint8_t d[64];
	fv_store_put p;
	int up[2], down[2];
	char c;
	FV_CHECK_OK(fv_store_open(fv_test_tmpdir(), FV_STORE_CREATE, 64 << 10, &s));
	mkput(&p, "a", 1, d, 64);
	fv_store_batch b = { .items = &p, .n = 1 };
	FV_CHECK_OK(fv_store_commit(s, &b));
	fv_store_close(&s);
	FV_CHECK(!pipe(up) && !pipe(down));
	pid_t pid = fork();
	if (pid == 0) {
		fv_store_wtxn *w;
		static uint8_t big[1 << 20];
		if (fv_store_open(fv_test_tmpdir(), FV_STORE_CREATE, 0, &s) || fv_store_grow(s) ||
		    fv_store_grow(s) || fv_store_grow(s) || fv_store_grow(s) || fv_store_grow(s) ||
		    fv_store_write_begin(s, &w))
			_exit(1);
		mkput(&p, "a", 2, big, sizeof big);
		if (fv_store_write_put(w, &p) || write(up[1], "x", 1) != 1 || read(down[0], &c, 1) != 1)
			_exit(2);
		_exit(fv_store_write_commit(&w, 0, NULL) ? 3 : 0);
	}
	FV_CHECK_EQ(read(up[0], &c, 1), 1);
	FV_CHECK_OK(fv_store_open(fv_test_tmpdir(), FV_STORE_RDONLY, 0, &s));
	fv_store_meta m;
	FV_CHECK_OK(fv_store_meta_get(s, &m));
	FV_CHECK_EQ(m.records, 1);
	FV_CHECK_EQ(write(down[1], "x", 1), 1);
	int st;
	FV_CHECK_EQ(waitpid(pid, &st, 0), pid);
	FV_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* the writer grew the map and committed 1 MB: a new read txn follows */
	fv_store_rtxn *t;
	fv_record r;
	FV_CHECK_OK(fv_store_read_begin(s, &t));
	FV_CHECK_OK(fv_store_get(t, 1, &r));
	FV_CHECK_EQ(r.data_len, 1 << 20);
	fv_store_read_end(&t);
	FV_CHECK_OK(fv_store_meta_get(s, &m));
	FV_CHECK_EQ(m.records, 2);
	FV_CHECK_EQ(m.version, 2);
	fv_store_close(&s);
}

FV_TEST(store_missing_and_garbage)
{
	fv_store *s;
	char path[600];
	snprintf(path, sizeof path, "%s/nope", fv_test_tmpdir());
	FV_CHECK_EQ(fv_store_open(path, FV_STORE_RDONLY, 0, &s), FV_E_NOTFOUND);
	FV_CHECK(s == NULL);
	fv_record r;
	uint8_t buf[64];
	for (int k = 0; k < 2000; k++) { /* random bytes never crash the parser */
		size_t n = fv_test_rand() % sizeof buf;
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)fv_test_rand();
		if (!fv_record_parse(buf, n, &r)) {
			FV_CHECK(r.data_len <= n && r.source_len <= n && r.hash_len <= n);
		}
	}
	const uint8_t trunc[] = { 0x4a, 0x10, 1, 2 }; /* field 9, 16 bytes claimed, 2 present */
	FV_CHECK_EQ(fv_record_parse(trunc, sizeof trunc, &r), FV_E_CORRUPT);
}
