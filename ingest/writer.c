/* writer.c — from input to stored record: ing_item_prepare validates one input
 * (thread-safe, runs on the pool's threads), the writer gathers prepared
 * items and commits them in batches on the one writer thread. */
#include "ingest.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fv_error.h"
#include "fv_image.h"
#include "fv_log.h"

#define MAX_FILE_BYTES ((size_t)1 << 30)
/* A commit at least every 2 MB: small enough that the memory of one batch
 * (file bytes, LMDB's dirty pages) is reused by the next instead of being
 * faulted in fresh (which costs more than the fsyncs saved), large enough
 * that fsyncs stay rare. */
#define BATCH_MAX_BYTES ((size_t)2 << 20)

/* Free stored bytes by how they were obtained (ing_item.data_owned). */
static void release(uint8_t *data, size_t len, int how)
{
	if (how == DATA_MALLOC)
		free(data);
	else if (how == DATA_MAPPED && data)
		munmap(data, len);
}

void ing_item_free(ing_item *it)
{
	if (!it)
		return;
	free(it->path);
	free(it->source);
	free(it->cls);
	free(it->reason);
	release(it->data, it->len, it->data_owned);
	free(it);
}

ing_item *ing_item_reject(ing_item *it, const char *fmt, ...)
{
	va_list ap;
	char buf[1024];
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	for (char *p = buf; *p; p++) /* one line, whatever the decoder said */
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	free(it->reason);
	it->reason = strdup(buf);
	release(it->data, it->len, it->data_owned);
	it->data = NULL;
	it->data_owned = DATA_BORROWED;
	return it;
}

uint32_t ing_item_split(const ingest_cfg *cfg, const uint8_t hash[FV_HASH_LEN])
{
	uint64_t h = 0;
	for (int i = 0; i < 8; i++)
		h = h << 8 | hash[i];
	if (cfg->val_fraction > 0 && (double)(h >> 11) * 0x1p-53 < cfg->val_fraction)
		return 1; /* SPLIT_VAL */
	return (uint32_t)cfg->split;
}

/* Read path whole: mapped (MAP_POPULATE: the page cache pages themselves,
 * no copy and no fault per page) when `map`, else read into malloc'd memory.
 * The watch daemon reads, because a file truncated under a mapping would
 * kill it with SIGBUS; batch sources are files at rest. *how says which. */
static int read_file(const char *path, int map, uint8_t **buf, size_t *len, int *how)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	uint8_t *b = NULL;
	size_t got = 0;
	if (fd < 0)
		return errno;
	if (fstat(fd, &st)) {
		rc = errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = EISDIR;
		goto out;
	}
	if ((size_t)st.st_size > MAX_FILE_BYTES) {
		rc = EFBIG;
		goto out;
	}
	if (map && st.st_size > 0) {
		void *m = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
		if (m != MAP_FAILED) {
			*buf = m;
			*len = st.st_size;
			*how = DATA_MAPPED;
			goto out;
		}
	}
	if (!(b = malloc(st.st_size ? st.st_size : 1))) {
		rc = ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, b + got, st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? errno : EIO;
			goto out;
		}
		got += r;
	}
	*buf = b;
	*len = got;
	*how = DATA_MALLOC;
	b = NULL;
out:
	close(fd);
	free(b);
	return rc;
}

/* The stored form: the file untouched when it is a JPEG that needs no
 * resize, else (resized) pixels as raw or re-encoded JPEG. Takes buf. */
static int encode(const ingest_cfg *cfg, ing_item *it, uint8_t *buf, size_t len, int how,
		  fv_image *im)
{
	int w, h, rc = 0, jpeg_in = fv_image_sniff(buf, len) == FV_IMG_JPEG;
	fv_image small = { 0 };
	fv_image_resize_dims(im->width, im->height, (int)cfg->resize, &w, &h);
	if (cfg->encoding == ENC_OPT_JPEG && jpeg_in && w == im->width && h == im->height) {
		it->data = buf;
		it->len = len;
		it->encoding = 1; /* ENC_JPEG */
		it->data_owned = how;
	} else {
		release(buf, len, how);
		it->data_owned = DATA_MALLOC;
		if ((w != im->width || h != im->height) && (rc = fv_image_resize(im, w, h, &small)))
			return rc;
		fv_image *out = small.pixels ? &small : im;
		if (cfg->encoding == ENC_OPT_RAW) {
			it->data = out->pixels;
			it->len = (size_t)w * h * out->channels;
			it->encoding = 0; /* ENC_RAW */
			out->pixels = NULL;
			out->capacity = 0;
		} else {
			rc = fv_image_encode_jpeg(out, (int)cfg->quality, &it->data, &it->len);
			it->encoding = 1;
		}
	}
	it->width = (uint32_t)w;
	it->height = (uint32_t)h;
	it->channels = (uint32_t)im->channels;
	fv_image_free(&small);
	return rc;
}

void ing_item_prepare(const ingest_cfg *cfg, ing_item *it, fv_image *scratch)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	fv_image own = { 0 }, *im = scratch ? scratch : &own;
	int how = DATA_MALLOC, rc = read_file(it->path, 0, &buf, &len, &how);
	if (rc) {
		ing_item_reject(it, "%s: cannot read: %s", it->path, strerror(rc));
		return;
	}
	if (!len) {
		release(buf, len, how);
		ing_item_reject(it, "%s: empty file", it->path);
		return;
	}
	rc = fv_image_decode_into(buf, len, (uint64_t)cfg->max_mpixels * 1000000, im);
	if (rc) {
		release(buf, len, how);
		ing_item_reject(it, "%s: %s", it->path, fv_err_msg(rc));
	} else {
		fv_image_hash(im->width, im->height, im->channels, im->pixels, it->hash);
		it->split = ing_item_split(cfg, it->hash);
		if ((rc = encode(cfg, it, buf, len, how, im)))
			ing_item_reject(it, "%s: %s", it->path, fv_err_msg(rc));
	}
	fv_image_free(&own);
}

/* ---------------------------------------------------------------- ing_writer */

/* One batch on its way into the store. The writer hands a full batch to a
 * commit thread and goes on gathering the next one, so the fsync of batch k
 * overlaps the decoding of batch k+1; at most one commit is in flight (LMDB
 * has one writer anyway), which keeps records in input order. */
typedef struct job {
	ing_writer *w;
	ing_item **items;
	size_t n;
	char **ids, **names;
	size_t ncls;
	uint64_t nrej;
	int rc;
	uint64_t added, dups, version;
} job;

struct ing_writer {
	fv_store *s;
	const ingest_cfg *cfg;
	ing_item **items;
	size_t n, cap, bytes, nrej;
	char **cls_ids, **cls_names;
	size_t ncls;
	ing_writer_done_fn done;
	void *done_ctx;
	uint64_t added, dups, rejected, version;
	pthread_t th;
	int inflight;
	job job;
};

int ing_writer_new(fv_store *s, const ingest_cfg *cfg, ing_writer **out)
{
	ing_writer *w = calloc(1, sizeof *w);
	*out = w;
	if (!w)
		return ENOMEM;
	w->s = s;
	w->cfg = cfg;
	fv_store_meta m;
	if (!fv_store_meta_get(s, &m))
		w->version = m.version;
	return 0;
}

static void names_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void job_free(job *j)
{
	for (size_t i = 0; i < j->n; i++)
		ing_item_free(j->items[i]);
	free(j->items);
	names_free(j->ids, j->ncls);
	names_free(j->names, j->ncls);
	memset(j, 0, sizeof *j);
}

/* Commit j, then tell the caller about every item; frees j's contents. */
static int job_run(job *j)
{
	ing_writer *w = j->w;
	fv_store_batch b = { 0 };
	fv_store_put *puts = j->n ? calloc(j->n, sizeof *puts) : NULL;
	size_t np = 0;
	if (j->n && !puts) {
		j->rc = ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < j->n; i++) {
		ing_item *it = j->items[i];
		if (it->reason)
			continue;
		fv_store_put *p = &puts[np++];
		p->class_id = it->cls;
		p->class_name = it->cls_name;
		p->split = it->split;
		p->encoding = it->encoding;
		p->width = it->width;
		p->height = it->height;
		p->channels = it->channels;
		memcpy(p->hash, it->hash, FV_HASH_LEN);
		p->source = it->source ? it->source : it->path;
		p->data = it->data;
		p->data_len = it->len;
	}
	b.class_ids = (const char *const *)j->ids;
	b.class_names = (const char *const *)j->names;
	b.nclasses = j->ncls;
	b.items = puts;
	b.n = np;
	b.rejected = j->nrej;
	if ((j->rc = fv_store_commit(w->s, &b)))
		goto out; /* nothing of the batch was stored */
	j->added = b.added;
	j->dups = b.duplicates;
	j->version = b.version;
	for (size_t i = 0, k = 0; i < j->n; i++) {
		ing_item *it = j->items[i];
		int stored = !it->reason;
		if (stored && puts[k++].duplicate)
			fv_debug("duplicate %s", it->source ? it->source : it->path);
		if (w->done)
			w->done(w->done_ctx, it, stored, b.version);
	}
out:
	free(puts);
	int rc = j->rc;
	uint64_t a = j->added, d = j->dups, v = j->version, r = j->nrej;
	job_free(j);
	j->rc = rc;
	j->added = a;
	j->dups = d;
	j->version = v;
	j->nrej = r;
	return rc;
}

static void *job_thread(void *arg)
{
	job_run(arg);
	return NULL;
}

static int job_account(ing_writer *w, const job *j)
{
	if (j->rc)
		return j->rc;
	w->added += j->added;
	w->dups += j->dups;
	w->rejected += j->nrej;
	w->version = j->version;
	return 0;
}

static int wait_inflight(ing_writer *w)
{
	if (!w->inflight)
		return 0;
	pthread_join(w->th, NULL);
	w->inflight = 0;
	return job_account(w, &w->job);
}

/* Move what is pending into j. */
static void take_pending(ing_writer *w, job *j)
{
	memset(j, 0, sizeof *j);
	j->w = w;
	j->items = w->items;
	j->n = w->n;
	j->ids = w->cls_ids;
	j->names = w->cls_names;
	j->ncls = w->ncls;
	j->nrej = w->nrej;
	w->items = NULL;
	w->cls_ids = w->cls_names = NULL;
	w->n = w->cap = w->bytes = w->nrej = w->ncls = 0;
}

void ing_writer_destroy(ing_writer **wp)
{
	ing_writer *w = *wp;
	if (!w)
		return;
	wait_inflight(w);
	job j;
	take_pending(w, &j);
	job_free(&j);
	free(w);
	*wp = NULL;
}

void ing_writer_on_done(ing_writer *w, ing_writer_done_fn fn, void *ctx)
{
	w->done = fn;
	w->done_ctx = ctx;
}

size_t ing_writer_pending(const ing_writer *w)
{
	return w->n + (size_t)w->inflight;
}

void ing_writer_totals(const ing_writer *w, uint64_t *added, uint64_t *dups, uint64_t *rejected,
		   uint64_t *version)
{
	*added = w->added;
	*dups = w->dups;
	*rejected = w->rejected;
	*version = w->version;
}

int ing_writer_classes(ing_writer *w, char **ids, char **names, size_t n)
{
	char **gi = realloc(w->cls_ids, (w->ncls + n) * sizeof *gi);
	if (gi)
		w->cls_ids = gi;
	char **gn = realloc(w->cls_names, (w->ncls + n) * sizeof *gn);
	if (gn)
		w->cls_names = gn;
	if (!gi || !gn)
		return ENOMEM;
	for (size_t i = 0; i < n; i++) {
		w->cls_ids[w->ncls] = strdup(ids[i]);
		w->cls_names[w->ncls] = strdup(names && names[i] ? names[i] : ids[i]);
		w->ncls++;
	}
	return 0;
}

int ing_writer_flush(ing_writer *w)
{
	int rc = wait_inflight(w);
	if (rc || (!w->n && !w->ncls))
		return rc;
	job j;
	take_pending(w, &j);
	job_run(&j);
	return job_account(w, &j);
}

int ing_writer_add(ing_writer *w, ing_item *it)
{
	int rc;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 256;
		ing_item **g = realloc(w->items, cap * sizeof *g);
		if (!g) {
			ing_item_free(it);
			return ENOMEM;
		}
		w->items = g;
		w->cap = cap;
	}
	w->items[w->n++] = it;
	if (it->reason) {
		fv_warn("rejected %s", it->reason);
		w->nrej++;
	}
	w->bytes += it->len;
	if (w->n - w->nrej < (size_t)w->cfg->batch && w->bytes < BATCH_MAX_BYTES)
		return 0;
	if ((rc = wait_inflight(w)))
		return rc;
	take_pending(w, &w->job);
	if (pthread_create(&w->th, NULL, job_thread, &w->job)) {
		job_run(&w->job); /* no thread: commit here */
		return job_account(w, &w->job);
	}
	w->inflight = 1;
	return 0;
}
