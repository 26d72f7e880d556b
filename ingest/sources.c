/* sources.c — where inputs come from: an ImageFolder tree (SOURCE/<class>/
 * <file>), a Caffe-style list file ("<path> <label>", paths relative to the
 * list), or an IDX images file with its labels beside it; plus the pool
 * that validates files on cfg->jobs threads and feeds the writer in input
 * order (so keys are the same whatever the thread count). */
#include "ingest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fv_daemon.h"
#include "fv_error.h"
#include "fv_idx.h"
#include "fv_image.h"
#include "fv_log.h"

/* ---------------------------------------------------------------- pool */

/* The workers themselves hand finished items to the writer, in input order:
 * whoever completes the item the writer waits for delivers it and every
 * finished item after it. The calling thread is one of the workers, so
 * --jobs N runs N decoders and nothing else; no thread sleeps and wakes per
 * item (each wakeup costs a futex call and, on a busy machine, preempts a
 * decoder), and workers wait only when the window of finished, undelivered
 * items is full because the writer is behind. Items may keep arriving while
 * the workers run (a folder is decoded while it is still being listed), at
 * most LIST_AHEAD ahead of the decoders: past that the listing thread
 * decodes one itself, so memory stays bounded for folders of millions.
 *
 * One more thread, the prefetcher, opens the files a little ahead of the
 * decoders and asks the kernel to read them in (POSIX_FADV_WILLNEED), so
 * files not in the page cache are read from disk while earlier ones decode
 * instead of stalling a decoder each; it hands each open descriptor to the
 * worker that takes the item. It sleeps while PREFETCH_AHEAD items are
 * ready and wakes when half of them are taken. */
#define PREFETCH_AHEAD 32
#define LIST_AHEAD 4096

typedef struct pool {
	const ingest_cfg *cfg;
	ing_writer *w;
	fv_store *index; /* files it has unchanged are not read (NULL: --recheck) */
	/* A ring: item i (delivered <= i < n) sits in slot i & mask; n -
	 * delivered stays under LIST_AHEAD + window, so slots never collide. */
	ing_item **items; /* the pool's; NULL once handed to the writer */
	uint8_t *ready;
	int *fds;         /* the prefetcher's open descriptor per item, or -1 */
	size_t mask, n, next, delivered, window;
	size_t ahead;     /* items ..ahead were prefetched (or taken before) */
	int open; /* pool_add may still come */
	int delivering, space_waiters, item_waiters, rc, started;
	int pf_started, pf_waiting, pf_stop;
	char err[1024]; /* rc's detail, for the caller's thread */
	fv_image scratch; /* the calling thread's decode buffer */
	pthread_t th[256], pf;
	pthread_mutex_t mu;
	pthread_cond_t cv_space, cv_items, cv_pf;
} pool;

/* Stop on rc (the first one wins); called with p->mu held. */
static void pool_fail(pool *p, int rc)
{
	if (p->rc)
		return;
	p->rc = rc;
	snprintf(p->err, sizeof p->err, "%s", fv_err_msg(rc));
	pthread_cond_broadcast(&p->cv_space);
	pthread_cond_broadcast(&p->cv_items);
	pthread_cond_signal(&p->cv_pf);
}

/* Hand items from delivered on to the writer while they are finished;
 * called and returns with p->mu held. */
static void pool_deliver(pool *p)
{
	p->delivering = 1;
	while (!p->rc && p->delivered < p->n && p->ready[p->delivered & p->mask]) {
		size_t s = p->delivered++ & p->mask;
		ing_item *it = p->items[s];
		p->items[s] = NULL;
		pthread_mutex_unlock(&p->mu);
		int rc = ing_writer_add(p->w, it);
		pthread_mutex_lock(&p->mu);
		if (rc) /* stop: the others finish the item in hand and leave */
			pool_fail(p, rc);
	}
	p->delivering = 0;
	if (p->space_waiters)
		pthread_cond_broadcast(&p->cv_space);
}

/* Validate the next item and deliver what is finished, when there is one
 * and the window has room; with p->mu held. 1 if it took one. */
static int pool_take(pool *p, fv_image *scratch)
{
	if (fv_stopping() && !p->rc) /* SIGINT/SIGTERM: keep what is done, stop */
		pool_fail(p, fv_err_set(ECANCELED, "stopped by a signal"));
	if (p->rc || p->next >= p->n || p->next >= p->delivered + p->window)
		return 0;
	size_t s = p->next++ & p->mask;
	ing_item *it = p->items[s];
	int fd = p->fds[s];
	p->fds[s] = -1;
	if (p->pf_waiting && p->ahead < p->next + PREFETCH_AHEAD / 2)
		pthread_cond_signal(&p->cv_pf);
	pthread_mutex_unlock(&p->mu);
	ing_item_prepare(p->cfg, it, fd, p->index, scratch);
	pthread_mutex_lock(&p->mu);
	p->ready[s] = 1;
	if (!p->delivering)
		pool_deliver(p);
	return 1;
}

/* Wait on cv, counted in *waiters (so wakers know to signal). */
static void pool_wait(pool *p, pthread_cond_t *cv, int *waiters)
{
	(*waiters)++;
	pthread_cond_wait(cv, &p->mu);
	(*waiters)--;
}

/* Work until the pool is closed and empty, or failed. */
static void pool_work(pool *p, fv_image *scratch)
{
	pthread_mutex_lock(&p->mu);
	while (!p->rc && (p->next < p->n || p->open)) {
		if (p->next >= p->n)
			pool_wait(p, &p->cv_items, &p->item_waiters);
		else if (!pool_take(p, scratch) && !p->rc) /* (a stop fails the pool) */
			pool_wait(p, &p->cv_space, &p->space_waiters);
	}
	pthread_mutex_unlock(&p->mu);
}

/* A decode buffer reserved, not touched: pages fault in once, as the
 * largest image so far needs them, instead of anew at every growth. */
static void scratch_reserve(fv_image *im)
{
	fv_image_alloc(im, 2048, 2048, 3);
}

static void *pool_worker(void *arg)
{
	fv_image scratch = { 0 };
	scratch_reserve(&scratch);
	pool_work(arg, &scratch);
	fv_image_free(&scratch);
	return NULL;
}

static void *pool_prefetch(void *arg)
{
	pool *p = arg;
	char path[PATH_MAX];
	pthread_mutex_lock(&p->mu);
	while (!p->rc && !p->pf_stop) {
		if (p->ahead < p->next)
			p->ahead = p->next; /* the decoders overtook: skip those */
		if (p->ahead >= p->n || p->ahead >= p->next + PREFETCH_AHEAD) {
			if (!p->open && p->ahead >= p->n)
				break;
			pool_wait(p, &p->cv_pf, &p->pf_waiting);
			continue;
		}
		size_t i = p->ahead++;
		const char *ip = p->items[i & p->mask]->path;
		size_t len = ip ? strlen(ip) : 0;
		if (len && len < sizeof path) /* a copy: the item may be stored and freed meanwhile */
			memcpy(path, ip, len + 1);
		pthread_mutex_unlock(&p->mu);
		/* O_NONBLOCK: a FIFO among the images must not hang the open */
		int fd = len && len < sizeof path ? open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) : -1;
		if (fd >= 0) /* a failure is the worker's to report, on its own open */
			posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
		pthread_mutex_lock(&p->mu);
		if (fd >= 0 && i >= p->next) /* not taken yet, so its slot is still its own */
			p->fds[i & p->mask] = fd;
		else if (fd >= 0)
			close(fd); /* taken meanwhile: its worker opened it itself */
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Start cfg->jobs - 1 workers, waiting for pool_add; the caller is the
 * last one, in pool_add when the listing runs ahead and in pool_close. */
static int pool_open(const ingest_cfg *cfg, ing_writer *w, pool **out)
{
	pool *p = calloc(1, sizeof *p);
	int jobs = cfg->jobs < 1 ? 1 : cfg->jobs > 256 ? 256 : (int)cfg->jobs;
	size_t cap = 1;
	*out = p;
	if (!p)
		return ENOMEM;
	p->cfg = cfg;
	p->w = w;
	p->index = cfg->recheck ? NULL : ing_writer_store(w);
	p->open = 1;
	p->window = (size_t)jobs * 8; /* bounds memory: finished, undelivered items */
	while (cap <= LIST_AHEAD + p->window)
		cap *= 2;
	p->mask = cap - 1;
	p->items = calloc(cap, sizeof *p->items);
	p->ready = calloc(cap, 1);
	p->fds = malloc(cap * sizeof *p->fds);
	if (!p->items || !p->ready || !p->fds) {
		free(p->items);
		free(p->ready);
		free(p->fds);
		free(p);
		*out = NULL;
		return ENOMEM;
	}
	scratch_reserve(&p->scratch);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv_space, NULL);
	pthread_cond_init(&p->cv_items, NULL);
	pthread_cond_init(&p->cv_pf, NULL);
	for (; p->started < jobs - 1; p->started++)
		if (pthread_create(&p->th[p->started], NULL, pool_worker, p))
			break;
	p->pf_started = !pthread_create(&p->pf, NULL, pool_prefetch, p);
	return 0;
}

/* Queue it for validation; takes it, also on failure. Returns the pool's
 * error once it has stopped, so the caller stops adding. */
static int pool_add(pool *p, ing_item *it)
{
	int rc = 0;
	pthread_mutex_lock(&p->mu);
	while (!p->rc && p->n - p->next >= LIST_AHEAD) /* listed far enough ahead: decode */
		if (!pool_take(p, &p->scratch) && !p->rc)
			pool_wait(p, &p->cv_space, &p->space_waiters);
	if (!p->rc) {
		size_t s = p->n++ & p->mask;
		p->items[s] = it;
		p->fds[s] = -1;
		p->ready[s] = 0;
		it = NULL;
		if (p->item_waiters)
			pthread_cond_signal(&p->cv_items);
		if (p->pf_waiting && p->ahead < p->next + PREFETCH_AHEAD)
			pthread_cond_signal(&p->cv_pf);
	}
	rc = p->rc;
	pthread_mutex_unlock(&p->mu);
	ing_item_free(it);
	return rc;
}

/* No more items (rc: the producer's own failure, which stops the pool):
 * work along until all are delivered, then free the pool. 0 or the first
 * error, its detail on this thread. */
static int pool_close(pool **pp, int rc)
{
	pool *p = *pp;
	if (!p)
		return rc;
	pthread_mutex_lock(&p->mu);
	p->open = 0;
	if (rc)
		pool_fail(p, rc);
	pthread_cond_broadcast(&p->cv_items);
	pthread_cond_signal(&p->cv_pf);
	pthread_mutex_unlock(&p->mu);
	pool_work(p, &p->scratch);
	for (int i = 0; i < p->started; i++)
		pthread_join(p->th[i], NULL);
	pthread_mutex_lock(&p->mu);
	p->pf_stop = 1;
	pthread_cond_signal(&p->cv_pf);
	pthread_mutex_unlock(&p->mu);
	if (p->pf_started)
		pthread_join(p->pf, NULL);
	for (size_t i = p->delivered; i < p->n; i++) { /* what a failure left undelivered */
		ing_item_free(p->items[i & p->mask]);
		if (p->fds[i & p->mask] >= 0)
			close(p->fds[i & p->mask]);
	}
	rc = p->rc ? fv_err_set(p->rc, "%s", p->err) : 0;
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv_space);
	pthread_cond_destroy(&p->cv_items);
	pthread_cond_destroy(&p->cv_pf);
	fv_image_free(&p->scratch);
	free(p->items);
	free(p->ready);
	free(p->fds);
	free(p);
	*pp = NULL;
	return rc;
}

ing_item *ing_item_new_file(const char *path, const char *cls)
{
	ing_item *it = calloc(1, sizeof *it);
	if (!it)
		return NULL;
	it->path = strdup(path);
	it->cls = strdup(cls);
	if (!it->path || !it->cls) {
		ing_item_free(it);
		return NULL;
	}
	return it;
}

/* A directory entry: its name and dirent type (DT_UNKNOWN where the file
 * system does not say). */
typedef struct dent {
	char *name;
	unsigned char type;
} dent;

static int cmp_dent(const void *a, const void *b)
{
	return strcmp(((const dent *)a)->name, ((const dent *)b)->name);
}

static void dents_free(dent *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

/* Sorted entries of dir (no dot files); *out owned by the caller. */
static int list_dir(const char *dir, dent **out, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	dent *v = NULL;
	size_t cnt = 0, cap = 0;
	if (!d)
		return fv_err_set(errno, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 64;
			dent *g = realloc(v, cap * sizeof *g);
			if (!g)
				break;
			v = g;
		}
		if (!(v[cnt].name = strdup(e->d_name)))
			break;
		v[cnt++].type = e->d_type;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof *v, cmp_dent);
	*out = v;
	*n = cnt;
	return 0;
}

/* Is dir/e a folder? The entry's type says so for plain files and folders
 * (no stat: one system call less per image); links and file systems that
 * give no type are asked. */
static int is_dir(const char *path, const dent *e)
{
	struct stat st;
	if (e->type == DT_REG || e->type == DT_DIR)
		return e->type == DT_DIR;
	return !stat(path, &st) && S_ISDIR(st.st_mode);
}

/* Every file under dir (sorted, subfolders included, dot files skipped) as
 * an item of class cls, into the pool (which decodes them meanwhile). */
static int collect(const char *dir, const char *cls, pool *p, size_t *count, int depth)
{
	dent *ents = NULL;
	char path[PATH_MAX];
	size_t n = 0;
	int rc = depth > 16 ? fv_err_set(FV_E_TOOBIG, "%s: folders nested too deep", dir)
			    : list_dir(dir, &ents, &n);
	for (size_t i = 0; i < n && !rc; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, ents[i].name);
		if (is_dir(path, &ents[i])) {
			rc = collect(path, cls, p, count, depth + 1);
			continue;
		}
		ing_item *it = ing_item_new_file(path, cls);
		rc = it ? pool_add(p, it) : ENOMEM;
		*count += !rc;
	}
	dents_free(ents, n);
	return rc;
}

int ing_source_folder(const ingest_cfg *cfg, ing_writer *w, const char *dir)
{
	dent *ents = NULL;
	char **cls = NULL, path[PATH_MAX];
	size_t n = 0, ncls = 0, count = 0;
	pool *p = NULL;
	int rc = list_dir(dir, &ents, &n);
	if (rc)
		return rc;
	if (n && !(cls = calloc(n, sizeof *cls)))
		rc = ENOMEM;
	for (size_t c = 0; c < n && !rc; c++) {
		snprintf(path, sizeof path, "%s/%s", dir, ents[c].name);
		if (is_dir(path, &ents[c]))
			cls[ncls++] = ents[c].name; /* only folders, in sorted order */
		else
			fv_warn("%s: not a class folder, skipped", path);
	}
	/* sorted class names get the first indices, as torchvision's ImageFolder
	 * (registered before any image, so empty classes are no exception) */
	if (!rc)
		rc = ing_writer_classes(w, cls, NULL, ncls);
	if (!rc)
		rc = pool_open(cfg, w, &p);
	for (size_t c = 0; c < ncls && !rc; c++) {
		snprintf(path, sizeof path, "%s/%s", dir, cls[c]);
		rc = collect(path, cls[c], p, &count, 0);
	}
	if (p) /* a listing error stops the decoding too */
		rc = pool_close(&p, rc);
	if (!rc && !count)
		fv_warn("%s: no images found (expected %s/<class>/<image>)", dir, dir);
	free(cls); /* the names are ents' */
	dents_free(ents, n);
	return rc;
}

/* ---------------------------------------------------------------- list file */

/* Two passes over the list: the first checks every line and finds the
 * labels (integer labels are class indices, registered before any image),
 * the second feeds the pool as it goes, so a list of millions of lines
 * holds a bounded number of items at a time. */
typedef struct list_ctx {
	pool *p; /* the second pass's; NULL in the first */
	char base[PATH_MAX];
	int numeric;
	long max_label;
} list_ctx;

static int list_entry(void *ctx, const char *path, const char *label, size_t line)
{
	list_ctx *l = ctx;
	char full[PATH_MAX * 2];
	(void)line;
	if (!l->p) {
		char *end;
		long v = strtol(label, &end, 10);
		if (*end || v < 0 || v > 1000000 || end == label)
			l->numeric = 0;
		else if (v > l->max_label)
			l->max_label = v;
		return 0;
	}
	if (path[0] == '/')
		snprintf(full, sizeof full, "%s", path);
	else
		snprintf(full, sizeof full, "%s/%s", l->base, path);
	ing_item *it = ing_item_new_file(full, label);
	return it ? pool_add(l->p, it) : ENOMEM;
}

int ing_source_list(const ingest_cfg *cfg, ing_writer *w, const char *list)
{
	list_ctx l = { .numeric = 1, .max_label = -1 };
	uint8_t *buf = NULL;
	size_t len = 0;
	char **names = NULL;
	size_t nnames = 0;
	FILE *f = fopen(list, "rb");
	int rc = 0;
	if (!f)
		return fv_err_set(errno, "%s: %s", list, strerror(errno));
	for (size_t cap = 0;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			uint8_t *g = realloc(buf, cap);
			if (!g) {
				rc = ENOMEM;
				break;
			}
			buf = g;
		}
		size_t r = fread(buf + len, 1, cap - len, f);
		len += r;
		if (!r)
			break;
	}
	fclose(f);
	const char *slash = strrchr(list, '/');
	snprintf(l.base, sizeof l.base, "%.*s", slash ? (int)(slash - list) : 1, slash ? list : ".");
	if (!rc)
		rc = ing_list_parse((const char *)buf, len, list, list_entry, &l);
	if (!rc && cfg->labels)
		rc = ing_labels_read(cfg->labels, &names, &nnames);
	/* integer labels are class indices, as in Caffe: register 0..max in order */
	if (!rc && l.numeric && l.max_label >= 0) {
		size_t k = (size_t)l.max_label + 1 > nnames ? (size_t)l.max_label + 1 : nnames;
		for (size_t i = 0; i < k && !rc; i++) {
			char id[24], *ids[1] = { id }, *nm[1] = { i < nnames ? names[i] : NULL };
			snprintf(id, sizeof id, "%zu", i);
			rc = ing_writer_classes(w, ids, nm, 1);
		}
	}
	ing_labels_free(&names, nnames);
	if (!rc && !(rc = pool_open(cfg, w, &l.p))) {
		rc = ing_list_parse((const char *)buf, len, list, list_entry, &l);
		rc = pool_close(&l.p, rc);
	}
	free(buf);
	return rc;
}

/* ---------------------------------------------------------------- IDX */

int ing_source_idx(const ingest_cfg *cfg, ing_writer *w, const char *images)
{
	char lpath[PATH_MAX], **names = NULL;
	size_t nnames = 0;
	fv_idx im = { 0 }, lb = { 0 };
	const char *base = strrchr(images, '/');
	int rc;
	base = base ? base + 1 : images;
	if ((rc = fv_idx_labels_path(images, lpath, sizeof lpath)))
		return rc;
	if ((rc = fv_idx_open(images, 0, &im)) || (rc = fv_idx_open(lpath, 0, &lb)))
		goto out;
	if (im.ndims != 3 || lb.ndims != 1 || lb.count != im.count) {
		rc = fv_err_set(FV_E_MISMATCH, "%s: %zu images (%d dims) but %s has %zu labels",
				images, im.count, im.ndims, lpath, lb.count);
		goto out;
	}
	if (cfg->labels && (rc = ing_labels_read(cfg->labels, &names, &nnames)))
		goto out;
	unsigned maxl = 0;
	for (size_t i = 0; i < lb.count; i++)
		maxl = lb.data[i] > maxl ? lb.data[i] : maxl;
	/* label k is class "k", so indices equal the file's labels */
	for (size_t i = 0; i < (size_t)maxl + 1 || i < nnames; i++) {
		char id[8], *ids[1] = { id }, *nm[1] = { i < nnames ? names[i] : NULL };
		snprintf(id, sizeof id, "%zu", i);
		if ((rc = ing_writer_classes(w, ids, nm, 1)))
			goto out;
	}
	uint32_t h = im.dims[1], wd = im.dims[2];
	for (size_t i = 0; i < im.count && !rc; i++) {
		if (fv_stopping()) {
			rc = fv_err_set(ECANCELED, "stopped by a signal");
			break;
		}
		ing_item *it = calloc(1, sizeof *it);
		char src[PATH_MAX + 32], id[8];
		if (!it) {
			rc = ENOMEM;
			break;
		}
		snprintf(src, sizeof src, "%s#%zu", base, i);
		snprintf(id, sizeof id, "%u", lb.data[i]);
		it->source = strdup(src);
		it->cls = strdup(id);
		it->cls_name = lb.data[i] < nnames ? names[lb.data[i]] : NULL;
		it->data = (uint8_t *)im.data + i * im.item_size; /* borrowed until the flush */
		it->len = im.item_size;
		it->width = wd;
		it->height = h;
		it->channels = 1;
		it->encoding = 0; /* raw: 784 bytes beat any JPEG of a 28x28 digit */
		fv_image_hash((int)wd, (int)h, 1, it->data, it->hash);
		it->split = ing_item_split(cfg, it->hash);
		if (!it->source || !it->cls) {
			ing_item_free(it);
			rc = ENOMEM;
			break;
		}
		rc = ing_writer_add(w, it);
	}
	/* items borrow im's buffer: commit them before it goes, also after a
	 * failure (a failed flush frees them) */
	int frc = ing_writer_flush(w);
	if (!rc)
		rc = frc;
out:
	ing_labels_free(&names, nnames);
	fv_idx_free(&im);
	fv_idx_free(&lb);
	return rc;
}

/* ---------------------------------------------------------------- dispatch */

int ing_source_add(const ingest_cfg *cfg, ing_writer *w, const char *src)
{
	struct stat st;
	if (stat(src, &st))
		return fv_err_set(errno, "%s: %s", src, strerror(errno));
	if (S_ISDIR(st.st_mode))
		return ing_source_folder(cfg, w, src);
	const char *base = strrchr(src, '/');
	base = base ? base + 1 : src;
	if (strstr(base, "-idx3-"))
		return ing_source_idx(cfg, w, src);
	return ing_source_list(cfg, w, src);
}
