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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fv_daemon.h"
#include "fv_error.h"
#include "fv_image.h"
#include "fv_log.h"

#define MAX_FILE_BYTES ((size_t)1 << 30)
/* A file bigger than this is judged by its head before it is read whole */
#define HEAD_CHECK_BYTES ((size_t)16 << 20)
#define HEAD_BYTES 65536
#define NOT_REGULAR (-1) /* open_file: a FIFO, socket or device */
/* A commit at least every 2 MB: small enough that the memory of one batch
 * (file bytes, LMDB's dirty pages) is reused by the next instead of being
 * faulted in fresh (which costs more than the fsyncs saved), large enough
 * that fsyncs stay rare. */
#define BATCH_MAX_BYTES ((size_t)2 << 20)

/* Free stored bytes by how they were obtained (ing_item.data_owned). */
static void release(uint8_t *data, int how)
{
	if (how == DATA_MALLOC)
		free(data);
}

void ing_item_free(ing_item *it)
{
	if (!it)
		return;
	free(it->path);
	free(it->source);
	free(it->cls);
	free(it->reason);
	release(it->data, it->data_owned);
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
	release(it->data, it->data_owned);
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

void ing_source_stat(const struct stat *sb, fv_source_stat *st)
{
	st->size = (uint64_t)sb->st_size;
	st->ino = (uint64_t)sb->st_ino;
	st->mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
	st->ctime_ns = (int64_t)sb->st_ctim.tv_sec * 1000000000 + sb->st_ctim.tv_nsec;
}

int ing_source_stat_eq(const fv_source_stat *a, const fv_source_stat *b)
{
	return a->size == b->size && a->ino == b->ino && a->mtime_ns == b->mtime_ns &&
	       a->ctime_ns == b->ctime_ns;
}

/* Open path (unless fd is it already: the pool's prefetcher opened it),
 * check it is a regular file of a sane size, and fill *st; on success *fd
 * is open, else closed. */
static int open_file(const char *path, int *fd, fv_source_stat *st, int *fresh)
{
	struct stat sb;
	int rc = 0;
	/* O_NONBLOCK: opening a FIFO would wait for a writer; fstat rejects it */
	if (*fd < 0 && (*fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0)
		return errno;
	if (fstat(*fd, &sb))
		rc = errno;
	else if (!S_ISREG(sb.st_mode))
		rc = S_ISDIR(sb.st_mode) ? EISDIR : NOT_REGULAR;
	else if ((size_t)sb.st_size > MAX_FILE_BYTES)
		rc = EFBIG;
	if (rc) {
		close(*fd);
		*fd = -1;
		return rc;
	}
	ing_source_stat(&sb, st);
	/* changed in the last 2 s: a write within the same timestamp tick could
	 * still follow unseen, so this stat is not one to trust on a re-run */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t changed = st->mtime_ns > st->ctime_ns ? st->mtime_ns : st->ctime_ns;
	*fresh = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec - changed < 2000000000LL;
	return 0;
}

/* Read the open file's size bytes into malloc'd memory; closes fd. (Mapping
 * the file instead saves the copy but costs more: each unmap shoots down
 * the other decoders' TLBs.) */
static int read_all(int fd, size_t size, uint8_t **buf, size_t *len)
{
	uint8_t *b = malloc(size ? size : 1);
	size_t got = 0;
	int rc = b ? 0 : ENOMEM;
	while (!rc && got < size) {
		ssize_t r = read(fd, b + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			rc = r < 0 ? errno : EIO;
		else
			got += r;
	}
	close(fd);
	if (rc) {
		free(b);
		return rc;
	}
	*buf = b;
	*len = got;
	return 0;
}

/* A big file's first bytes: an error when they show it is no image, or an
 * image over the pixel limit, so a video dropped among the photos is not
 * read into memory whole (up to MAX_FILE_BYTES per decoder) to be
 * rejected; 0 to read it. */
static int head_says_no(const ingest_cfg *cfg, int fd)
{
	uint8_t *head = malloc(HEAD_BYTES);
	ssize_t n = head ? pread(fd, head, HEAD_BYTES, 0) : -1;
	int rc = n > 0 ? fv_image_check_head(head, (size_t)n, (uint64_t)cfg->max_mpixels * 1000000) : 0;
	free(head);
	return rc;
}

/* The stored form: the file untouched when it is an RGB or gray JPEG that
 * needs no resize (up to its EOI: what a file appends after it, such as a
 * motion photo's video, is no part of the image), else (resized) pixels as
 * raw or re-encoded JPEG (a CMYK JPEG, too: every reader then decodes
 * RGB). Takes buf. */
static int encode(const ingest_cfg *cfg, ing_item *it, uint8_t *buf, size_t len, size_t end,
		  fv_image *im)
{
	int w, h, rc = 0, jpeg_in = fv_image_sniff(buf, len) == FV_IMG_JPEG;
	fv_image small = { 0 };
	fv_image_resize_dims(im->width, im->height, (int)cfg->resize, &w, &h);
	if (cfg->encoding == ENC_OPT_JPEG && jpeg_in && !im->cmyk && w == im->width && h == im->height) {
		uint8_t *fit = end < len / 2 ? realloc(buf, end) : NULL; /* give a long tail back */
		it->data = fit ? fit : buf;
		it->len = end;
		it->encoding = 1; /* ENC_JPEG */
	} else {
		free(buf);
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

void ing_item_prepare(const ingest_cfg *cfg, ing_item *it, int fd, fv_store *index,
		      fv_image *scratch)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	fv_image own = { 0 }, *im = scratch ? scratch : &own;
	int fresh = 1, rc = open_file(it->path, &fd, &it->src, &fresh);
	it->has_src = !rc && !fresh;
	if (!rc && it->has_src && index && fv_store_source_known(index, it->path, &it->src)) {
		it->known = 1; /* stored already, and unchanged since: not read again */
		close(fd);
		return;
	}
	if (!rc && it->src.size > HEAD_CHECK_BYTES && (rc = head_says_no(cfg, fd))) {
		close(fd);
		ing_item_reject(it, "%s: %s", it->path, fv_err_msg(rc));
		return;
	}
	if (!rc)
		rc = read_all(fd, it->src.size, &buf, &len);
	if (rc) {
		it->read_error = rc;
		ing_item_reject(it, "%s: cannot read: %s", it->path,
				rc == NOT_REGULAR ? "not a regular file" : strerror(rc));
		return;
	}
	if (!len) {
		free(buf);
		ing_item_reject(it, "%s: empty file", it->path);
		return;
	}
	size_t end = fv_jpeg_end(buf, len); /* (while buf is in the cache from the read) */
	rc = fv_image_decode_into(buf, len, (uint64_t)cfg->max_mpixels * 1000000, im);
	if (rc) {
		free(buf);
		ing_item_reject(it, "%s: %s", it->path, fv_err_msg(rc));
	} else {
		fv_image_hash(im->width, im->height, im->channels, im->pixels, it->hash);
		it->split = ing_item_split(cfg, it->hash);
		it->data_owned = DATA_MALLOC; /* encode hands buf or its own output over */
		if ((rc = encode(cfg, it, buf, len, end, im)))
			ing_item_reject(it, "%s: %s", it->path, fv_err_msg(rc));
	}
	fv_image_free(&own);
}

/* ---------------------------------------------------------------- ing_writer */

/* Full batches go into a queue that one commit thread, started with the
 * writer's first batch and kept for its life, commits in order. Whoever
 * adds items (a pool worker, mid-decode) only waits when QUEUE_MAX_BYTES of
 * batches are already waiting, so an fsync that runs long stalls no
 * decoder; order is kept because there is one commit thread (LMDB has one
 * writer anyway). The commit thread takes every batch waiting at once into
 * one transaction (group commit): on a disk whose fsync is slow the batches
 * pile up during one sync and the next commit takes them all, so the
 * commits keep pace with the decoders instead of holding them at one fsync
 * per batch. Each batch keeps its own version (fv_store_commit_many), so
 * the dataset is the same however they were grouped.
 * After a failed commit nothing later is committed: the queue is dropped
 * and every later call returns the error. */
#define QUEUE_MAX_BYTES ((size_t)32 << 20)
#define ITEM_WEIGHT 1024 /* a batch's weight in the queue: bytes + this per item */

typedef struct job {
	struct job *next;
	ing_item **items;
	size_t n;
	char **ids, **names;
	size_t ncls, weight;
	uint64_t nrej, known;
} job;

struct ing_writer {
	fv_store *s;
	const ingest_cfg *cfg;
	/* the batch being gathered: only the adding thread touches it */
	ing_item **items;
	size_t n, cap, bytes, nrej;
	char **cls_ids, **cls_names;
	size_t ncls;
	ing_writer_done_fn done;
	void *done_ctx;
	/* shared with the commit thread, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_idle;
	job *head, *tail;
	size_t queued;  /* batches queued or committing */
	size_t qweight; /* their weight (job.weight) */
	int started, stop, rc;
	char err[1024]; /* rc's detail: fv_err_msg is per thread */
	pthread_t th;
	uint64_t added, dups, rejected, version, known;
	int64_t progress_ms, last_ms; /* progress lines: interval (0 = none), the last */
	uint64_t last_seen;           /* added + dups + rejected at the last line */
};

int ing_writer_new(fv_store *s, const ingest_cfg *cfg, ing_writer **out)
{
	ing_writer *w = calloc(1, sizeof *w);
	*out = w;
	if (!w)
		return ENOMEM;
	w->s = s;
	w->cfg = cfg;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv_work, NULL);
	pthread_cond_init(&w->cv_idle, NULL);
	fv_store_meta m;
	if (!fv_store_meta_get(s, &m))
		w->version = m.version;
	/* the inbox daemon's commits come as files land: no rate to report */
	w->progress_ms = cfg->watch ? 0 : (int64_t)(cfg->progress * 1000);
	w->last_ms = fv_now_ms();
	return 0;
}

/* After a commit, with w->mu held: the progress line into buf when one is
 * due (a long ingest says how far it got and how fast), else "". */
static void progress(ing_writer *w, char *buf, size_t size)
{
	int64_t now = fv_now_ms();
	uint64_t seen = w->added + w->dups + w->rejected;
	buf[0] = 0;
	if (!w->progress_ms || now - w->last_ms < w->progress_ms)
		return;
	snprintf(buf, size, "progress: %llu added, %llu duplicates, %llu rejected; %.0f images/s; "
		 "dataset version %llu", (unsigned long long)w->added, (unsigned long long)w->dups,
		 (unsigned long long)w->rejected, (seen - w->last_seen) * 1000.0 / (now - w->last_ms),
		 (unsigned long long)w->version);
	w->last_ms = now;
	w->last_seen = seen;
}

static void names_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void job_free(job *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->n; i++)
		ing_item_free(j->items[i]);
	free(j->items);
	names_free(j->ids, j->ncls);
	names_free(j->names, j->ncls);
	free(j);
}

/* Fill b (and puts, j->n of them) from job j. */
static void job_batch(ing_writer *w, job *j, fv_store_put *puts, fv_store_batch *b)
{
	size_t np = 0;
	j->known = 0;
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
		/* an inbox file moves to .done: no re-run will meet it there */
		p->src_stat = it->has_src && !w->cfg->watch ? &it->src : NULL;
		p->known = it->known;
		j->known += it->known;
	}
	memset(b, 0, sizeof *b);
	b->class_ids = (const char *const *)j->ids;
	b->class_names = (const char *const *)j->names;
	b->nclasses = j->ncls;
	b->items = puts;
	b->n = np;
	b->rejected = j->nrej;
}

/* Commit the n jobs from j on in one transaction, then tell the done
 * callback about every item; 0 or the error. b gets each job's results.
 * Runs without w->mu; the totals are the caller's to add. */
static int jobs_commit(ing_writer *w, job *j, size_t n, fv_store_batch *b)
{
	size_t total = 0;
	job *x = j;
	for (size_t k = 0; k < n; k++, x = x->next)
		total += x->n;
	fv_store_put *puts = total ? calloc(total, sizeof *puts) : NULL;
	int rc;
	if (total && !puts)
		return ENOMEM;
	total = 0;
	x = j;
	for (size_t k = 0; k < n; k++, x = x->next) {
		job_batch(w, x, puts + total, &b[k]);
		total += x->n;
	}
	if ((rc = fv_store_commit_many(w->s, b, n)))
		goto out; /* nothing of them was stored */
	x = j;
	for (size_t k = 0; k < n; k++, x = x->next)
		for (size_t i = 0, m = 0; i < x->n; i++) {
			ing_item *it = x->items[i];
			int stored = !it->reason;
			if (stored && b[k].items[m++].duplicate)
				fv_debug("duplicate %s", it->source ? it->source : it->path);
			if (w->done)
				w->done(w->done_ctx, it, stored, b[k].version);
		}
out:
	free(puts);
	return rc;
}

static void *commit_thread(void *arg)
{
	ing_writer *w = arg;
	char line[256] = "";
	fv_store_batch *b = NULL;
	size_t bcap = 0;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->head && !w->stop)
			pthread_cond_wait(&w->cv_work, &w->mu);
		job *j = w->head;
		if (!j)
			break;
		size_t n = 0, weight = 0;
		for (job *x = j; x; x = x->next, n++)
			weight += x->weight;
		w->head = w->tail = NULL; /* all of them, in one transaction */
		int failed = w->rc, rc = 0;
		if (n > bcap) {
			fv_store_batch *g = realloc(b, n * sizeof *g);
			if (g) {
				b = g;
				bcap = n;
			} else {
				rc = ENOMEM;
			}
		}
		pthread_mutex_unlock(&w->mu);
		fv_err_clear();
		if (!failed && !rc)
			rc = jobs_commit(w, j, n, b);
		uint64_t known = 0;
		for (job *x = j, *next; x; x = next) {
			next = x->next;
			known += x->known;
			job_free(x);
		}
		pthread_mutex_lock(&w->mu);
		if (rc && !w->rc) {
			w->rc = rc;
			snprintf(w->err, sizeof w->err, "%s", fv_err_msg(rc));
		}
		if (!failed && !rc) {
			for (size_t k = 0; k < n; k++) {
				w->added += b[k].added;
				w->dups += b[k].duplicates;
				w->rejected += b[k].rejected;
			}
			w->known += known;
			w->version = b[n - 1].version;
			progress(w, line, sizeof line);
		}
		w->queued -= n;
		w->qweight -= weight;
		pthread_cond_broadcast(&w->cv_idle);
		if (line[0]) {
			pthread_mutex_unlock(&w->mu);
			fv_info("%s", line);
			line[0] = 0;
			pthread_mutex_lock(&w->mu);
		}
	}
	pthread_mutex_unlock(&w->mu);
	free(b);
	return NULL;
}

/* Hand what is gathered to the commit thread; waits while the queue is
 * full (over `room` in weight; 0: until all is committed) and returns the
 * sticky error, if any. */
static int enqueue(ing_writer *w, size_t room)
{
	job *j = NULL;
	int rc;
	if ((w->n || w->ncls) && !(j = calloc(1, sizeof *j)))
		return ENOMEM; /* pending stays pending; the destroy frees it */
	if (j) {
		j->items = w->items;
		j->n = w->n;
		j->ids = w->cls_ids;
		j->names = w->cls_names;
		j->ncls = w->ncls;
		j->nrej = w->nrej;
		j->weight = w->bytes + w->n * ITEM_WEIGHT;
		w->items = NULL;
		w->cls_ids = w->cls_names = NULL;
		__atomic_store_n(&w->n, 0, __ATOMIC_RELAXED);
		w->cap = w->bytes = w->nrej = w->ncls = 0;
	}
	pthread_mutex_lock(&w->mu);
	if (j && !w->started) {
		if (pthread_create(&w->th, NULL, commit_thread, w)) {
			w->rc = EAGAIN;
			snprintf(w->err, sizeof w->err, "ingest: cannot start the commit thread");
		} else
			w->started = 1;
	}
	if (j && w->started) {
		if (w->tail)
			w->tail->next = j;
		else
			w->head = j;
		w->tail = j;
		w->queued++;
		w->qweight += j->weight;
		j = NULL;
		pthread_cond_signal(&w->cv_work);
	}
	while ((room ? w->qweight > room : w->queued > 0) && !w->rc)
		pthread_cond_wait(&w->cv_idle, &w->mu);
	if ((rc = w->rc))
		fv_err_set(rc, "%s", w->err);
	pthread_mutex_unlock(&w->mu);
	job_free(j);
	return rc;
}

void ing_writer_destroy(ing_writer **wp)
{
	ing_writer *w = *wp;
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1; /* the thread commits what it was handed, then ends */
	pthread_cond_signal(&w->cv_work);
	pthread_mutex_unlock(&w->mu);
	if (w->started)
		pthread_join(w->th, NULL);
	for (size_t i = 0; i < w->n; i++)
		ing_item_free(w->items[i]);
	free(w->items);
	names_free(w->cls_ids, w->ncls);
	names_free(w->cls_names, w->ncls);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv_work);
	pthread_cond_destroy(&w->cv_idle);
	free(w);
	*wp = NULL;
}

fv_store *ing_writer_store(ing_writer *w)
{
	return w->s;
}

uint64_t ing_writer_known(const ing_writer *w)
{
	ing_writer *m = (ing_writer *)w;
	pthread_mutex_lock(&m->mu);
	uint64_t k = w->known;
	pthread_mutex_unlock(&m->mu);
	return k;
}

void ing_writer_on_done(ing_writer *w, ing_writer_done_fn fn, void *ctx)
{
	w->done = fn;
	w->done_ctx = ctx;
}

int ing_writer_failed(const ing_writer *w)
{
	ing_writer *m = (ing_writer *)w;
	pthread_mutex_lock(&m->mu);
	int rc = w->rc;
	if (rc)
		fv_err_set(rc, "%s", w->err);
	pthread_mutex_unlock(&m->mu);
	return rc;
}

size_t ing_writer_pending(const ing_writer *w)
{
	ing_writer *m = (ing_writer *)w; /* the lock is not part of the state */
	pthread_mutex_lock(&m->mu);
	size_t q = w->queued;
	pthread_mutex_unlock(&m->mu);
	return __atomic_load_n(&w->n, __ATOMIC_RELAXED) + q;
}

void ing_writer_totals(const ing_writer *w, uint64_t *added, uint64_t *dups, uint64_t *rejected,
		   uint64_t *version)
{
	ing_writer *m = (ing_writer *)w;
	pthread_mutex_lock(&m->mu);
	*added = w->added;
	*dups = w->dups;
	*rejected = w->rejected;
	*version = w->version;
	pthread_mutex_unlock(&m->mu);
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
	return enqueue(w, 0);
}

int ing_writer_add(ing_writer *w, ing_item *it)
{
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
	w->items[w->n] = it;
	__atomic_store_n(&w->n, w->n + 1, __ATOMIC_RELAXED); /* ing_writer_pending reads it */
	if (it->reason) {
		fv_warn("rejected %s", it->reason);
		w->nrej++;
	}
	w->bytes += it->len;
	/* rejects count too, at a quarter: a folder of bad files is held
	 * batch by batch, not whole until the flush */
	if (w->n - w->nrej < (size_t)w->cfg->batch && w->n < 4 * (size_t)w->cfg->batch &&
	    w->bytes < BATCH_MAX_BYTES)
		return 0;
	return enqueue(w, QUEUE_MAX_BYTES);
}
