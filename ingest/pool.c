/* pool.c — the decode pool: validates file items on cfg->jobs threads and
 * hands them to the writer in the order they were added (so keys are the
 * same whatever the thread count). A batch run adds a folder's or a list's
 * files and closes it; the inbox daemon keeps one open for its life. */
#include "ingest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fv_daemon.h"
#include "fv_error.h"
#include "fv_image.h"

/* The workers themselves hand finished items to the writer, in input order:
 * whoever completes the item the writer waits for delivers it and every
 * finished item after it. In a batch run the calling thread is one of
 * the workers, so --jobs N runs N decoders and nothing else; no thread sleeps and wakes per
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
 * ready and wakes when half of them are taken.
 *
 * The inbox daemon's pool (ing_pool_opts.daemon) has --jobs workers of its
 * own, so the daemon's thread stays free for events, its status endpoint
 * and the watchdog while a burst of files decodes; it flushes the writer
 * only when the pool has handed everything on (ing_pool_busy), since a
 * worker may be adding to the writer until then. */
#define PREFETCH_AHEAD 32
#define LIST_AHEAD 4096

struct ing_pool {
	const ingest_cfg *cfg;
	ing_writer *w;
	fv_store *index; /* files it has unchanged are not read (NULL: --recheck) */
	ing_pool_keep_fn keep;
	void (*on_idle)(void *ctx);
	void *ctx;
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
};

/* Stop on rc (the first one wins); called with p->mu held. */
static void pool_fail(ing_pool *p, int rc)
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
static void pool_deliver(ing_pool *p)
{
	size_t from = p->delivered;
	p->delivering = 1;
	while (!p->rc && p->delivered < p->n && p->ready[p->delivered & p->mask]) {
		size_t s = p->delivered++ & p->mask;
		ing_item *it = p->items[s];
		p->items[s] = NULL;
		pthread_mutex_unlock(&p->mu);
		int rc = 0;
		if (p->keep && !p->keep(p->ctx, it))
			ing_item_free(it);
		else
			rc = ing_writer_add(p->w, it);
		pthread_mutex_lock(&p->mu);
		if (rc) /* stop: the others finish the item in hand and leave */
			pool_fail(p, rc);
	}
	p->delivering = 0;
	if (p->space_waiters)
		pthread_cond_broadcast(&p->cv_space);
	if (p->on_idle && p->delivered == p->n && p->delivered > from)
		p->on_idle(p->ctx); /* (not busy any more, as ing_pool_busy sees it) */
}

/* Validate the next item and deliver what is finished, when there is one
 * and the window has room; with p->mu held. 1 if it took one. */
static int pool_take(ing_pool *p, fv_image *scratch)
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
	if (!it->reason)
		ing_item_prepare(p->cfg, it, fd, p->index, scratch);
	else if (fd >= 0) /* rejected already, by whoever added it */
		close(fd);
	pthread_mutex_lock(&p->mu);
	p->ready[s] = 1;
	if (!p->delivering)
		pool_deliver(p);
	return 1;
}

/* Wait on cv, counted in *waiters (so wakers know to signal). */
static void pool_wait(ing_pool *p, pthread_cond_t *cv, int *waiters)
{
	(*waiters)++;
	pthread_cond_wait(cv, &p->mu);
	(*waiters)--;
}

/* Work until the pool is closed and empty, or failed. */
static void pool_work(ing_pool *p, fv_image *scratch)
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
	ing_pool *p = arg;
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

int ing_pool_open(const ingest_cfg *cfg, ing_writer *w, const ing_pool_opts *o, ing_pool **out)
{
	ing_pool *p = calloc(1, sizeof *p);
	int jobs = cfg->jobs < 1 ? 1 : cfg->jobs > 256 ? 256 : (int)cfg->jobs;
	int daemon = o && o->daemon;
	size_t cap = 1;
	*out = p;
	if (!p)
		return ENOMEM;
	p->cfg = cfg;
	p->w = w;
	/* an inbox file moves on once stored: its stat names nothing to skip */
	p->index = cfg->recheck || daemon ? NULL : ing_writer_store(w);
	p->keep = o ? o->keep : NULL;
	p->on_idle = o ? o->on_idle : NULL;
	p->ctx = o ? o->ctx : NULL;
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
	for (; p->started < jobs - !daemon; p->started++)
		if (pthread_create(&p->th[p->started], NULL, pool_worker, p))
			break;
	p->pf_started = !pthread_create(&p->pf, NULL, pool_prefetch, p);
	if (daemon && !p->started) { /* no one would decode */
		ing_pool_close(out, 0);
		return fv_err_set(EAGAIN, "ingest: cannot start the decode threads");
	}
	return 0;
}

/* Queue it for validation; takes it, also on failure. Returns the pool's
 * error once it has stopped, so the caller stops adding. */
int ing_pool_add(ing_pool *p, ing_item *it)
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
int ing_pool_close(ing_pool **pp, int rc)
{
	ing_pool *p = *pp;
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

size_t ing_pool_busy(ing_pool *p, int *rc)
{
	pthread_mutex_lock(&p->mu);
	size_t n = p->n - p->delivered + (size_t)p->delivering;
	if (rc && (*rc = p->rc))
		fv_err_set(p->rc, "%s", p->err);
	pthread_mutex_unlock(&p->mu);
	return n;
}
