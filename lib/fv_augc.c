/* fv_augc.c — the augment client's caller side: options, bind, submit,
 * next (with substitutes under REPLACE), release, stats, local workers.
 * The broker thread (fv_augc_broker.c) does the talking to workers. */
#include "fv_augc_int.h"
#include "augment/transform_pb.h"
#include "fv_error.h"
#include "fv_log.h"
#include "fv_daemon.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void fv_augc_opts_default(fv_augc_opts *o)
{
	memset(o, 0, sizeof *o);
	o->window = 8;
	o->heartbeat_ms = 1000;
	o->liveness = 3;
	o->timeout_ms = 30000;
	o->max_attempts = 5;
	o->in_order = 1;
	o->policy = FV_AUGC_SKIP;
	o->replace_max = 3;
	o->max_message = FV_AUG_MAX_DEFAULT;
	o->shm = 1;
}

static int opts_check(const fv_augc_opts *o)
{
	if (!o->endpoint || !*o->endpoint)
		return fv_err_set(FV_E_CONFIG, "augment client: no endpoint to bind");
	if (o->window < 1 || o->heartbeat_ms < 10 || o->liveness < 1 || o->timeout_ms < 1 ||
	    o->max_attempts < 1 || o->replace_max < 0 || o->max_message < 4096)
		return fv_err_set(FV_E_CONFIG, "augment client: window, heartbeat_ms (>= 10), "
				  "liveness, timeout_ms, max_attempts must be positive");
	if (o->policy == FV_AUGC_REPLACE && !o->replace)
		return fv_err_set(FV_E_CONFIG, "augment client: REPLACE policy needs a callback");
	return 0;
}

/* CURVE: load the server's pair, start the ZAP handler (before the bind, so
 * no handshake can slip past it), make the socket a CURVE server. Without
 * keys a tcp:// endpoint works in plain text, with a warning: fine on a
 * trusted loopback, not across hosts. */
static int curve_setup(fv_augc *c, const fv_augc_opts *o)
{
	fv_curve_keypair kp;
	char pub[PATH_MAX];
	int rc;
	if (!o->curve_secret_key || !*o->curve_secret_key) {
		if (o->curve_allow && *o->curve_allow)
			return fv_err_set(FV_E_CONFIG, "augment client: an allow-list (%s) without "
					  "a server key: set curve_secret_key", o->curve_allow);
		if (!strncmp(o->endpoint, "tcp://", 6))
			fv_warn("augc: %s has no CURVE keys: samples travel in plain text and any "
				"host that reaches it can connect", o->endpoint);
		return 0;
	}
	if (!o->curve_allow || !*o->curve_allow)
		return fv_err_set(FV_E_CONFIG, "augment client: CURVE needs an allow-list of "
				  "worker keys (curve_allow: a directory of .pub files or a key file)");
	if ((rc = fv_curve_keypair_load(o->curve_secret_key, o->curve_public_key, &kp)))
		return rc;
	if (o->curve_public_key)
		snprintf(pub, sizeof pub, "%s", o->curve_public_key);
	else if ((rc = fv_curve_pub_path(o->curve_secret_key, pub, sizeof pub)))
		goto out;
	if (!(c->curve_sec = strdup(o->curve_secret_key)) ||
	    (!access(pub, R_OK) && !(c->curve_pub = strdup(pub)))) {
		rc = ENOMEM;
		goto out;
	}
	if ((rc = fv_zap_new(&c->zap, c->ctx, o->curve_allow, kp.pub)) ||
	    (rc = fv_curve_server_setup(c->sock, &kp)))
		goto out;
	fv_info("augc: %s is CURVE-protected, server key %.8s…", o->endpoint, kp.pub);
out:
	explicit_bzero(&kp, sizeof kp);
	return rc;
}

int fv_augc_new(fv_augc **out, const fv_augc_opts *opts)
{
	fv_augc *c;
	int rc, one = 1;
	*out = NULL;
	if ((rc = opts_check(opts)))
		return rc;
	if (!(c = calloc(1, sizeof *c)))
		return ENOMEM;
	c->o = *opts;
	c->o.endpoint = NULL; /* borrowed; we keep our copy in c->endpoint */
	c->wakefd = -1;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	if ((c->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		rc = fv_err_set(errno, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if (!(c->ctx = zmq_ctx_new()) || !(c->sock = zmq_socket(c->ctx, ZMQ_ROUTER))) {
		rc = fv_err_set(FV_E_ZMQ, "zmq socket: %s", zmq_strerror(zmq_errno()));
		goto fail;
	}
	if ((rc = fv_sock_limit(c->sock, opts->max_message)) || (rc = curve_setup(c, opts)))
		goto fail;
	zmq_setsockopt(c->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
	/* batches are tens of MB: big kernel buffers mean fewer wakeups per batch */
	int sockbuf = FV_AUG_SOCKBUF;
	zmq_setsockopt(c->sock, ZMQ_RCVBUF, &sockbuf, sizeof sockbuf);
	zmq_setsockopt(c->sock, ZMQ_SNDBUF, &sockbuf, sizeof sockbuf);
	if (fv_curve_mon_new(&c->mon, "augc", 1, NULL) ||
	    fv_curve_mon_attach(c->mon, c->ctx, c->sock)) {
		fv_warn("%s (failed handshakes will not be logged)", fv_err_msg(FV_E_ZMQ));
		fv_curve_mon_destroy(&c->mon);
	}
	if (zmq_bind(c->sock, opts->endpoint)) {
		rc = fv_err_set(FV_E_ZMQ, "bind %s: %s", opts->endpoint, zmq_strerror(zmq_errno()));
		goto fail;
	}
	size_t len = sizeof c->endpoint;
	if (zmq_getsockopt(c->sock, ZMQ_LAST_ENDPOINT, c->endpoint, &len))
		snprintf(c->endpoint, sizeof c->endpoint, "%s", opts->endpoint);
	/* ids unique across client sessions too: a worker that outlived our
	 * predecessor may still answer its requests */
	if (getrandom(&c->next_id, sizeof c->next_id, 0) != sizeof c->next_id)
		c->next_id = (uint64_t)fv_now_ms() * 2654435761u;
	c->next_id &= ~(uint64_t)0 >> 1;
	if ((rc = pthread_create(&c->thr, NULL, fv_augc_broker_main, c))) {
		rc = fv_err_set(rc, "augment client: thread: %s", strerror(rc));
		goto fail;
	}
	c->thr_started = 1;
	*out = c;
	return 0;
fail:
	fv_augc_destroy(&c);
	return rc;
}

/* Free a batch; its shared-memory segment goes back to c's pool (c NULL:
 * the client is gone, so the segment is dropped). Takes c->mu if c. */
static void bat_free(fv_augc *c, augc_bat *b)
{
	if (!b)
		return;
	if (b->seg && c) {
		pthread_mutex_lock(&c->mu);
		fv_augc_seg_put(c, b->seg);
		pthread_mutex_unlock(&c->mu);
	} else {
		fv_augc_seg_destroy(b->seg);
	}
	if (b->has_msg)
		zmq_msg_close(&b->out_msg);
	if (b->reasons)
		for (int i = 0; i < b->pub.n; i++)
			free(b->reasons[i]);
	free(b->reasons);
	free(b->out_buf);
	free(b->failed);
	free(b->replaces);
	free(b->final);
	free(b);
}

static void stop_locals(fv_augc *c)
{
	int left = 0;
	for (int i = 0; i < c->npids; i++)
		if (c->pids[i] > 0 && !kill(c->pids[i], SIGTERM))
			left++;
	for (int64_t end = fv_now_ms() + 2000; left && fv_now_ms() < end;) {
		left = 0;
		for (int i = 0; i < c->npids; i++) {
			if (c->pids[i] <= 0)
				continue;
			if (waitpid(c->pids[i], NULL, WNOHANG) == 0)
				left++;
			else
				c->pids[i] = 0;
		}
		if (left)
			nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	}
	for (int i = 0; i < c->npids; i++)
		if (c->pids[i] > 0) {
			kill(c->pids[i], SIGKILL);
			waitpid(c->pids[i], NULL, 0);
		}
	free(c->pids);
	c->pids = NULL;
	c->npids = 0;
}

void fv_augc_destroy(fv_augc **pc)
{
	fv_augc *c = *pc;
	if (!c)
		return;
	*pc = NULL;
	if (c->thr_started) {
		pthread_mutex_lock(&c->mu);
		c->stop = 1;
		pthread_mutex_unlock(&c->mu);
		fv_augc_wake(c);
		pthread_join(c->thr, NULL);
	}
	stop_locals(c);
	for (augc_req *r = c->qhead, *nx; r; r = nx)
		nx = r->next, fv_augc_req_free(r);
	for (augc_req *r = c->fhead, *nx; r; r = nx)
		nx = r->next, fv_augc_req_free(r);
	for (augc_bat *b = c->bhead, *nx; b; b = nx)
		nx = b->next, bat_free(NULL, b);
	for (augc_seg *s = c->free_segs, *nx; s; s = nx)
		nx = s->next, fv_augc_seg_destroy(s);
	for (augc_worker *w = c->whead, *nx; w; w = nx)
		nx = w->next, free(w);
	fv_curve_mon_destroy(&c->mon);
	if (c->sock)
		zmq_close(c->sock);
	fv_zap_destroy(&c->zap); /* its socket too must close before the context ends */
	free(c->curve_sec);
	free(c->curve_pub);
	if (c->ctx)
		zmq_ctx_term(c->ctx);
	if (c->wakefd >= 0)
		close(c->wakefd);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* ------------------------------------------------------------ submit */

/* A request for samples idx[0..n) with inputs in[0..n): their bytes are
 * copied into one blob. */
static int req_new(augc_req **out, augc_bat *b, const int *idx, const fv_aug_input *in,
		   const uint64_t *seeds, int n)
{
	augc_req *r = calloc(1, sizeof *r);
	size_t total = 0;
	*out = NULL;
	if (!r)
		return ENOMEM;
	zmq_msg_init(&r->blob);
	for (int k = 0; k < n; k++)
		total += in[k].len;
	r->pb = calloc(n, sizeof *r->pb);
	r->pbp = calloc(n, sizeof *r->pbp);
	if (!r->pb || !r->pbp || zmq_msg_init_size(&r->blob, total ? total : 1)) {
		fv_augc_req_free(r);
		return ENOMEM;
	}
	uint8_t *dst = zmq_msg_data(&r->blob);
	size_t off = 0;
	for (int k = 0; k < n; k++) {
		Fovea__AugSample *s = &r->pb[k];
		fovea__aug_sample__init(s);
		s->index = idx[k];
		s->encoding = (Fovea__Encoding)in[k].encoding;
		s->width = in[k].width;
		s->height = in[k].height;
		s->channels = in[k].channels;
		s->seed = seeds[k];
		s->offset = off;
		s->length = in[k].len;
		if (in[k].len)
			memcpy(dst + off, in[k].data, in[k].len);
		off += in[k].len;
		r->pbp[k] = s;
	}
	r->b = b;
	r->count = n;
	*out = r;
	return 0;
}

static augc_bat *bat_new(int n)
{
	augc_bat *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->pub.n = n;
	b->failed = calloc(n, 1);
	b->replaces = calloc(n, 1);
	b->final = calloc(n, 1);
	b->reasons = calloc(n, sizeof *b->reasons);
	if (!b->failed || !b->replaces || !b->final || !b->reasons) {
		bat_free(NULL, b);
		return NULL;
	}
	b->pub.failed = b->failed;
	b->pub.reasons = (const char *const *)b->reasons;
	return b;
}

int fv_augc_submit(fv_augc *c, uint64_t epoch, uint64_t batch, const fv_aug_params *p,
		   const fv_aug_input *in, const uint64_t *seeds, int n, void *tag)
{
	augc_bat *b = NULL;
	augc_req *r = NULL;
	int *idx = NULL, rc;

	if (n < 1 || n > FV_AUG_MAX_SAMPLES)
		return fv_err_set(EINVAL, "augment submit: %d samples (1..%d)", n, FV_AUG_MAX_SAMPLES);
	if ((rc = fv_aug_params_check(p)))
		return rc;
	size_t sb = fv_aug_out_bytes(p);
	if (sb == 0 || sb * (size_t)n > c->o.max_message)
		return fv_err_set(FV_E_TOOBIG, "augment submit: output of %d x %zu bytes is over "
				  "max_message %zu", n, sb, c->o.max_message);
	pthread_mutex_lock(&c->mu);
	rc = c->nbats >= c->o.window ? EAGAIN : 0;
	for (augc_bat *o = c->bhead; o && !rc; o = o->next)
		if (o->pub.epoch == epoch && o->pub.index == batch)
			rc = fv_err_set(FV_E_DUPLICATE, "augment submit: epoch %llu batch %llu is "
					"already in flight", (unsigned long long)epoch,
					(unsigned long long)batch);
	pthread_mutex_unlock(&c->mu);
	if (rc)
		return rc;
	if (!(b = bat_new(n)) || !(idx = malloc(n * sizeof *idx))) {
		rc = ENOMEM;
		goto out;
	}
	for (int i = 0; i < n; i++)
		idx[i] = i;
	b->pub.epoch = epoch;
	b->pub.index = batch;
	b->pub.tag = tag;
	b->pub.sample_bytes = sb;
	fv_aug_params_to_pb(p, &b->tf, b->mean, b->std);
	if ((rc = req_new(&r, b, idx, in, seeds, n)))
		goto out;
	b->npending = n;
	b->state = B_RUNNING;
	pthread_mutex_lock(&c->mu);
	r->id = ++c->next_id;
	AUGC_APPEND(c->bhead, c->btail, b);
	c->nbats++;
	AUGC_APPEND(c->qhead, c->qtail, r);
	c->st.submitted++;
	pthread_mutex_unlock(&c->mu);
	fv_augc_wake(c);
	b = NULL;
	r = NULL;
out:
	free(idx);
	fv_augc_req_free(r);
	bat_free(NULL, b);
	return rc;
}

/* ------------------------------------------------------------ next */

/* Ask the caller's callback for substitutes of b's failed samples and queue
 * one request for them. Called with c->mu held; drops it around the
 * callbacks (the broker leaves a batch in B_REPLACE alone). */
static void replace_failed(fv_augc *c, augc_bat *b)
{
	int n = b->pub.n, k = 0;
	int *idx = malloc(n * sizeof *idx);
	fv_aug_input *in = calloc(n, sizeof *in);
	uint64_t *seeds = calloc(n, sizeof *seeds);
	uint8_t **copies = calloc(n, sizeof *copies);
	augc_req *r = NULL;

	pthread_mutex_unlock(&c->mu);
	for (int i = 0; idx && in && seeds && copies && i < n; i++) {
		if (!b->failed[i] || b->final[i])
			continue;
		b->replaces[i]++;
		fv_aug_input sub = { 0 };
		uint64_t seed = 0;
		int rc = c->o.replace(c->o.replace_ctx, b->pub.epoch, b->pub.index, i, &sub, &seed);
		if (rc || (sub.len && !(copies[k] = malloc(sub.len)))) {
			b->final[i] = 1;
			continue;
		}
		if (sub.len)
			memcpy(copies[k], sub.data, sub.len);
		sub.data = copies[k];
		in[k] = sub;
		seeds[k] = seed;
		idx[k++] = i;
	}
	if (k && req_new(&r, b, idx, in, seeds, k))
		for (int j = 0; j < k; j++)
			b->final[idx[j]] = 1;
	pthread_mutex_lock(&c->mu);
	if (r) {
		c->st.replaced += k;
		r->id = ++c->next_id;
		b->npending = k;
		b->state = B_RUNNING;
		AUGC_APPEND(c->qhead, c->qtail, r);
		fv_augc_wake(c);
	} else {
		/* nothing to re-request: every failure is now final */
		for (int i = 0; i < n; i++)
			if (b->failed[i])
				b->final[i] = 1;
		b->pub.nfailed = 0;
		for (int i = 0; i < n; i++)
			b->pub.nfailed += b->failed[i];
		b->pub.data = augc_bat_out(b);
		b->state = B_DONE;
	}
	for (int j = 0; copies && j < n; j++)
		free(copies[j]);
	free(copies);
	free(seeds);
	free(in);
	free(idx);
}

static augc_bat *deliverable(fv_augc *c)
{
	for (augc_bat *b = c->bhead; b; b = b->next) {
		if (b->state == B_DONE)
			return b;
		if (c->o.in_order)
			return NULL;
	}
	return NULL;
}

int fv_augc_next(fv_augc *c, fv_augc_batch **out, int timeout_ms)
{
	int64_t t0 = fv_now_ms(), end = t0 + timeout_ms;
	int rc = 0;
	augc_bat *b;

	*out = NULL;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		for (augc_bat *x = c->bhead; x; x = x->next)
			if (x->state == B_REPLACE)
				replace_failed(c, x);
		if ((b = deliverable(c)))
			break;
		if (c->broken || c->stop) {
			rc = fv_err_set(FV_E_INTERNAL, "augment client: broker thread stopped");
			goto out;
		}
		if (!c->nbats || timeout_ms == 0) {
			rc = EAGAIN;
			goto out;
		}
		if (timeout_ms < 0) {
			pthread_cond_wait(&c->cv, &c->mu);
			continue;
		}
		int64_t now = fv_now_ms();
		if (now >= end) {
			rc = EAGAIN;
			goto out;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ns = ts.tv_nsec + (end - now) * 1000000;
		ts.tv_sec += ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		pthread_cond_timedwait(&c->cv, &c->mu, &ts);
	}
	AUGC_UNLINK(c->bhead, c->btail, b);
	c->nbats--;
	c->st.delivered++;
	*out = &b->pub;
out:
	c->st.wait_ms += (double)(fv_now_ms() - t0);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

void fv_augc_release(fv_augc *c, fv_augc_batch **pb)
{
	if (!*pb)
		return;
	bat_free(c, (augc_bat *)*pb); /* pub is the first member */
	*pb = NULL;
}

int fv_augc_pending(fv_augc *c)
{
	pthread_mutex_lock(&c->mu);
	int n = c->nbats;
	pthread_mutex_unlock(&c->mu);
	return n;
}

int fv_augc_workers(fv_augc *c, int *capacity)
{
	int cap = 0;
	pthread_mutex_lock(&c->mu);
	int n = c->nworkers;
	for (augc_worker *w = c->whead; w; w = w->next)
		cap += w->capacity;
	pthread_mutex_unlock(&c->mu);
	if (capacity)
		*capacity = cap;
	return n;
}

int fv_augc_worker_list(fv_augc *c, fv_augc_worker_info *out, int max)
{
	int n = 0;
	int64_t now = fv_now_ms();
	pthread_mutex_lock(&c->mu);
	for (augc_worker *w = c->whead; w; w = w->next, n++) {
		if (n >= max)
			continue;
		fv_augc_worker_info *i = &out[n];
		snprintf(i->name, sizeof i->name, "%s", w->name);
		i->capacity = w->capacity;
		i->inflight = w->inflight;
		i->joined_ms = w->joined_ms;
		i->samples = w->samples;
		/* a window that ran long without a reply: what it holds so far */
		int64_t open_ms = now - w->win_ms;
		i->img_per_s = open_ms > 2000 ? (double)w->win_samples * 1000.0 / (double)open_ms
					       : w->rate;
	}
	pthread_mutex_unlock(&c->mu);
	return n;
}

void fv_augc_stats_get(fv_augc *c, fv_augc_stats *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->st;
	pthread_mutex_unlock(&c->mu);
	if (c->zap)
		fv_zap_counts(c->zap, &out->curve_admitted, &out->curve_refused, NULL);
}

const char *fv_augc_endpoint(fv_augc *c)
{
	return c->endpoint;
}

/* ------------------------------------------------------------ local workers */

static int find_worker_exe(const fv_augc *c, char *path, size_t size)
{
	char self[PATH_MAX];
	if (c->o.worker_exe) {
		snprintf(path, size, "%s", c->o.worker_exe);
		return access(path, X_OK) ? fv_err_set(ENOENT, "%s: not executable", path) : 0;
	}
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return fv_err_set(ENOENT, "/proc/self/exe: %s", strerror(errno));
	self[n] = 0;
	char *slash = strrchr(self, '/');
	*slash = 0;
	snprintf(path, size, "%s/fovea-augment", self);
	if (!access(path, X_OK))
		return 0;
	snprintf(path, size, "%s/../bin/fovea-augment", self);
	if (!access(path, X_OK))
		return 0;
	return fv_err_set(ENOENT, "fovea-augment not found beside %s", self);
}

int fv_augc_spawn_local(fv_augc *c, int n, int threads_each)
{
	char exe[PATH_MAX + 32], threads[16];
	int rc;
	if ((rc = find_worker_exe(c, exe, sizeof exe)))
		return rc;
	snprintf(threads, sizeof threads, "%d", threads_each < 1 ? 1 : threads_each);
	char *argv[] = { exe, "--connect", c->endpoint, "--threads", threads, NULL, NULL, NULL,
			 NULL, NULL };
	if (c->curve_sec) {
		/* the server's own pair: the ZAP handler admits it, and a process that
		 * can read our secret key file is as trusted as we are */
		if (!c->curve_pub)
			return fv_err_set(FV_E_CONFIG, "augment client: local workers need the "
					  "server's public key file beside %s", c->curve_sec);
		argv[5] = "--curve-key";
		argv[6] = c->curve_sec;
		argv[7] = "--server-key";
		argv[8] = c->curve_pub;
	}
	pid_t *p = realloc(c->pids, (c->npids + n) * sizeof *p);
	if (!p)
		return ENOMEM;
	c->pids = p;
	pid_t parent = getpid();
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			return fv_err_set(errno, "fork: %s", strerror(errno));
		if (pid == 0) {
			/* only async-signal-safe calls until exec */
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			if (getppid() != parent)
				_exit(1);
			execv(exe, argv);
			_exit(127);
		}
		c->pids[c->npids++] = pid;
	}
	fv_info("augc: started %d local workers (%s threads each)", n, threads);
	return 0;
}

int fv_augc_local_pids(fv_augc *c, pid_t *pids, int max)
{
	int k = 0;
	for (int i = 0; i < c->npids; i++) {
		if (c->pids[i] > 0 && waitpid(c->pids[i], NULL, WNOHANG) != 0)
			c->pids[i] = 0;
		if (c->pids[i] > 0 && k < max)
			pids[k++] = c->pids[i];
	}
	return k;
}
