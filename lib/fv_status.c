/* fv_status.c — see fv_status.h. */
#include "fv_status.h"
#include "fv_curve.h"
#include "fv_daemon.h"
#include "fv_error.h"
#include "fv_log.h"
#include "fv_msg.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

typedef struct fig {
	char *key, *text;
	int numeric;
	double number;
} fig;

struct fv_status_figs {
	fig *v;
	size_t n, cap;
};

struct fv_status {
	void *sock;
	fv_zap *zap;              /* with opts.curve_allow */
	pthread_t thread;
	int started;
	atomic_int stop;
	pthread_mutex_t lock;     /* guards snap, filled_ms and fills */
	pthread_cond_t filled;    /* signalled after each fill */
	fv_status_figs snap;
	int64_t filled_ms;
	uint64_t fills;
	atomic_int wanted;        /* a request waits for a fresh fill */
	char name[64], host[256];
	int64_t started_at;
	fv_status_fill_fn fill;
	void *fill_ctx;
	int min_update_ms;
	int64_t last_fill;        /* daemon thread only */
	atomic_uint_fast64_t answered, garbage;
	uint64_t seq;             /* answering thread only */
};

/* ------------------------------------------------------------ figures */

static void figs_free(fv_status_figs *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].key);
		free(f->v[i].text);
	}
	free(f->v);
	memset(f, 0, sizeof *f);
}

static fig *figs_add(fv_status_figs *f, const char *key)
{
	if (f->n >= FV_STATUS_MAX_FIGURES)
		return NULL;
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 16;
		fig *v = realloc(f->v, cap * sizeof *v);
		if (!v)
			return NULL;
		f->v = v;
		f->cap = cap;
	}
	fig *g = &f->v[f->n];
	memset(g, 0, sizeof *g);
	if (!(g->key = strdup(key)))
		return NULL;
	f->n++;
	return g;
}

void fv_status_num(fv_status_figs *f, const char *key, double v)
{
	fig *g = figs_add(f, key);
	if (g) {
		g->numeric = 1;
		g->number = v;
	}
}

void fv_status_str(fv_status_figs *f, const char *key, const char *fmt, ...)
{
	fig *g = figs_add(f, key);
	va_list ap;
	if (!g)
		return;
	va_start(ap, fmt);
	if (vasprintf(&g->text, fmt, ap) < 0)
		g->text = NULL;
	va_end(ap);
}

/* ------------------------------------------------------------ answering */

static void reply(fv_status *s, const fv_msg *m, int code, const char *error)
{
	Fovea__DaemonStatus st = FOVEA__DAEMON_STATUS__INIT;
	Fovea__StatusFigure *figs = NULL, **ptrs = NULL;
	st.code = code;
	st.error = (char *)(error ? error : "");
	st.name = s->name;
	st.pid = (int32_t)getpid();
	st.host = s->host;
	st.started_at = s->started_at;
	st.now = (int64_t)time(NULL);
	pthread_mutex_lock(&s->lock);
	if (!code && s->snap.n) {
		figs = calloc(s->snap.n, sizeof *figs);
		ptrs = calloc(s->snap.n, sizeof *ptrs);
	}
	for (size_t i = 0; figs && ptrs && i < s->snap.n; i++) {
		const fig *g = &s->snap.v[i];
		fovea__status_figure__init(&figs[i]);
		figs[i].key = g->key;
		figs[i].numeric = g->numeric;
		figs[i].number = g->number;
		figs[i].text = g->text ? g->text : (char *)"";
		ptrs[i] = &figs[i];
		st.n_figures = i + 1;
	}
	st.figures = ptrs;
	int64_t age = fv_now_ms() - s->filled_ms;
	st.age_ms = (uint32_t)(age < 0 ? 0 : age > (int64_t)UINT32_MAX ? UINT32_MAX : age);
	/* packed under the lock: the snapshot's strings are borrowed */
	int rc = fv_msg_send(s->sock, m->identity, m->identity_len, FOVEA__MSG_TYPE__MSG_STATUS_REPLY, 1,
			     ++s->seq, &st.base, ZMQ_DONTWAIT);
	pthread_mutex_unlock(&s->lock);
	free(figs);
	free(ptrs);
	if (rc && rc != EAGAIN)
		fv_debug("status: reply: %s", fv_err_msg(rc));
}

/* Give the daemon's loop a moment to refill the snapshot (it does at its
 * next fv_status_update), so an answer is as fresh as its loop allows; a
 * daemon busy in a long computation is answered from what it has. */
static void await_fill(fv_status *s)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += (long)FV_STATUS_FRESH_MS * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&s->lock);
	uint64_t before = s->fills;
	atomic_store(&s->wanted, 1);
	while (s->fills == before && !atomic_load(&s->stop))
		if (pthread_cond_timedwait(&s->filled, &s->lock, &until))
			break;
	pthread_mutex_unlock(&s->lock);
}

static void on_request(fv_status *s)
{
	int fresh = 0;
	for (int k = 0; k < 64; k++) { /* a burst, bounded per wake-up */
		fv_msg m;
		int rc = fv_msg_recv(s->sock, &m, ZMQ_DONTWAIT);
		if (rc == EAGAIN || rc == EINTR || rc == FV_E_ZMQ) {
			fv_msg_clear(&m);
			return;
		}
		ProtobufCMessage *req = NULL;
		if (!rc && m.type == FOVEA__MSG_TYPE__MSG_STATUS_REQUEST && m.version == 1 &&
		    !fv_msg_unpack(&m, &fovea__status_request__descriptor, FV_STATUS_MAX_REQUEST, &req)) {
			protobuf_c_message_free_unpacked(req, NULL);
			if (!fresh++) /* once per burst */
				await_fill(s);
			reply(s, &m, 0, NULL);
			atomic_fetch_add(&s->answered, 1);
		} else {
			atomic_fetch_add(&s->garbage, 1);
			if (m.identity_len) /* an envelope we cannot use: say so */
				reply(s, &m, FV_E_PROTO, rc ? "not a fovea envelope"
						      : "expected a StatusRequest (type 110, version 1)");
		}
		fv_msg_clear(&m);
	}
}

static void *serve(void *arg)
{
	fv_status *s = arg;
	while (!atomic_load(&s->stop)) {
		zmq_pollitem_t it = { s->sock, 0, ZMQ_POLLIN, 0 };
		int n = zmq_poll(&it, 1, 100);
		if (n < 0 && zmq_errno() == ETERM)
			break;
		if (n > 0)
			on_request(s);
	}
	return NULL;
}

/* ------------------------------------------------------------ life */

static int curve_server(fv_status *s, void *zmq_ctx, const fv_status_opts *o)
{
	fv_curve_keypair kp;
	const char *pub = o->curve_public_key && *o->curve_public_key ? o->curve_public_key : NULL;
	int rc = fv_curve_keypair_load(o->curve_secret_key, pub, &kp);
	if (!rc && o->curve_allow && *o->curve_allow)
		rc = fv_zap_new(&s->zap, zmq_ctx, o->curve_allow, kp.pub);
	if (!rc)
		rc = fv_curve_server_setup(s->sock, &kp);
	memset(&kp, 0, sizeof kp);
	return rc;
}

int fv_status_new(fv_status **out, void *zmq_ctx, const fv_status_opts *o)
{
	fv_status *s = NULL;
	int rc = 0;
	*out = NULL;
	if (!o->endpoint || !*o->endpoint)
		return 0;
	if (!(s = calloc(1, sizeof *s)))
		return ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->filled, NULL);
	snprintf(s->name, sizeof s->name, "%s", o->name ? o->name : "");
	if (gethostname(s->host, sizeof s->host - 1))
		snprintf(s->host, sizeof s->host, "?");
	s->started_at = (int64_t)time(NULL);
	s->filled_ms = fv_now_ms();
	s->fill = o->fill;
	s->fill_ctx = o->fill_ctx;
	s->min_update_ms = o->min_update_ms > 0 ? o->min_update_ms : 250;
	s->last_fill = INT64_MIN / 2;
	if (!(s->sock = zmq_socket(zmq_ctx, ZMQ_ROUTER))) {
		rc = fv_err_set(FV_E_ZMQ, "status socket: %s", zmq_strerror(zmq_errno()));
		goto fail;
	}
	if ((rc = fv_sock_limit(s->sock, FV_STATUS_MAX_REQUEST)))
		goto fail;
	if (o->curve_secret_key && *o->curve_secret_key && (rc = curve_server(s, zmq_ctx, o)))
		goto fail;
	if (zmq_bind(s->sock, o->endpoint)) {
		rc = fv_err_set(FV_E_ZMQ, "status-endpoint %s: cannot bind: %s", o->endpoint,
				zmq_strerror(zmq_errno()));
		goto fail;
	}
	if ((rc = pthread_create(&s->thread, NULL, serve, s))) {
		rc = fv_err_set(rc, "status thread: %s", strerror(rc));
		goto fail;
	}
	s->started = 1;
	*out = s;
	return 0;
fail:
	fv_status_destroy(&s);
	return rc;
}

void fv_status_update(fv_status *s, int force)
{
	if (!s)
		return;
	int64_t now = fv_now_ms();
	if (!force && now - s->last_fill < s->min_update_ms && !atomic_load(&s->wanted))
		return;
	atomic_store(&s->wanted, 0);
	s->last_fill = now;
	fv_status_figs f = { 0 }, old;
	if (s->fill)
		s->fill(s->fill_ctx, &f);
	pthread_mutex_lock(&s->lock);
	old = s->snap;
	s->snap = f;
	s->filled_ms = now;
	s->fills++;
	pthread_cond_broadcast(&s->filled);
	pthread_mutex_unlock(&s->lock);
	figs_free(&old);
}

void fv_status_counts(fv_status *s, uint64_t *answered, uint64_t *garbage)
{
	*answered = s ? atomic_load(&s->answered) : 0;
	*garbage = s ? atomic_load(&s->garbage) : 0;
}

void fv_status_destroy(fv_status **p)
{
	fv_status *s = *p;
	if (!s)
		return;
	atomic_store(&s->stop, 1);
	pthread_mutex_lock(&s->lock); /* wake a request waiting for a fill */
	pthread_cond_broadcast(&s->filled);
	pthread_mutex_unlock(&s->lock);
	if (s->started)
		pthread_join(s->thread, NULL);
	if (s->sock) {
		int linger = 0;
		zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof linger);
		zmq_close(s->sock);
	}
	fv_zap_destroy(&s->zap);
	figs_free(&s->snap);
	pthread_cond_destroy(&s->filled);
	pthread_mutex_destroy(&s->lock);
	free(s);
	*p = NULL;
}

/* ------------------------------------------------------------ client */

static int curve_client(void *sock, const char *secret, const char *server_pub)
{
	fv_curve_keypair kp;
	char spub[FV_CURVE_Z85 + 1];
	int rc = fv_curve_keypair_load(secret, NULL, &kp);
	if (!rc && !(rc = fv_curve_key_read(server_pub, 0, spub)))
		rc = fv_curve_client_setup(sock, &kp, spub);
	memset(&kp, 0, sizeof kp);
	return rc;
}

/* One endpoint's request in flight. */
typedef struct ask {
	void *sock;
	int done;
} ask;

static int ask_open(void *zmq_ctx, const char *endpoint, const char *secret, const char *server_pub,
		    void **out)
{
	Fovea__StatusRequest req = FOVEA__STATUS_REQUEST__INIT;
	int rc, linger = 0;
	void *sock = zmq_socket(zmq_ctx, ZMQ_DEALER);
	*out = NULL;
	if (!sock)
		return fv_err_set(FV_E_ZMQ, "status client: %s", zmq_strerror(zmq_errno()));
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
	if ((rc = fv_sock_limit(sock, FV_STATUS_MAX_REPLY)))
		goto fail;
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
	if (secret && *secret && server_pub && *server_pub && (rc = curve_client(sock, secret, server_pub)))
		goto fail;
	if (zmq_connect(sock, endpoint)) {
		rc = fv_err_set(FV_E_ZMQ, "%s: %s", endpoint, zmq_strerror(zmq_errno()));
		goto fail;
	}
	/* EAGAIN (not connected yet) is fine: the request is queued until it
	 * is, and a daemon that never answers times out like one that is down */
	rc = fv_msg_send(sock, NULL, 0, FOVEA__MSG_TYPE__MSG_STATUS_REQUEST, 1, 1, &req.base, ZMQ_DONTWAIT);
	if (rc && rc != EAGAIN)
		goto fail;
	*out = sock;
	return 0;
fail:
	zmq_close(sock);
	return rc;
}

static int ask_read(void *sock, const char *endpoint, Fovea__DaemonStatus **out)
{
	fv_msg m = { 0 };
	ProtobufCMessage *st = NULL;
	int rc = fv_msg_recv(sock, &m, ZMQ_DONTWAIT);
	if (rc)
		goto out;
	if (m.type != FOVEA__MSG_TYPE__MSG_STATUS_REPLY || m.version != 1) {
		rc = fv_err_set(FV_E_PROTO, "%s: answered with message type %d, not a DaemonStatus", endpoint,
				m.type);
		goto out;
	}
	if ((rc = fv_msg_unpack(&m, &fovea__daemon_status__descriptor, FV_STATUS_MAX_REPLY, &st)))
		goto out;
	*out = (Fovea__DaemonStatus *)st;
	if ((*out)->code)
		rc = fv_err_set(FV_E_PROTO, "%s: refused: %s", endpoint, (*out)->error);
out:
	fv_msg_clear(&m);
	return rc;
}

int fv_status_query_many(void *zmq_ctx, size_t n, const char *const *endpoints, int timeout_ms,
			 const char *curve_secret_key, const char *server_pub, Fovea__DaemonStatus **out,
			 int *rcs)
{
	ask *a = calloc(n ? n : 1, sizeof *a);
	zmq_pollitem_t *it = calloc(n ? n : 1, sizeof *it);
	size_t left = 0;
	if (!a || !it) {
		free(a);
		free(it);
		return ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		out[i] = NULL;
		rcs[i] = ask_open(zmq_ctx, endpoints[i], curve_secret_key, server_pub, &a[i].sock);
		a[i].done = rcs[i] != 0;
		left += !a[i].done;
	}
	int64_t deadline = fv_now_ms() + timeout_ms;
	while (left) {
		int64_t wait = deadline - fv_now_ms();
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (!a[i].done)
				it[k++] = (zmq_pollitem_t){ a[i].sock, 0, ZMQ_POLLIN, 0 };
		if (wait <= 0 || zmq_poll(it, (int)k, (long)wait) == 0)
			break;
		for (size_t i = 0, j = 0; i < n; i++) {
			if (a[i].done)
				continue;
			if (it[j++].revents & ZMQ_POLLIN) {
				int rc = ask_read(a[i].sock, endpoints[i], &out[i]);
				if (rc == EAGAIN || rc == EINTR)
					continue;
				rcs[i] = rc;
				a[i].done = 1;
				left--;
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (!a[i].done)
			rcs[i] = fv_err_set(FV_E_TIMEOUT, "%s: no answer in %d ms", endpoints[i], timeout_ms);
		if (a[i].sock)
			zmq_close(a[i].sock);
	}
	free(a);
	free(it);
	return 0;
}

int fv_status_query(void *zmq_ctx, const char *endpoint, int timeout_ms, const char *curve_secret_key,
		    const char *server_pub, Fovea__DaemonStatus **out)
{
	int rc, qrc = fv_status_query_many(zmq_ctx, 1, &endpoint, timeout_ms, curve_secret_key, server_pub,
					   out, &rc);
	if (qrc)
		return qrc;
	if (rc && *out && (*out)->code == 0) { /* a read error after unpacking: not kept */
		fovea__daemon_status__free_unpacked(*out, NULL);
		*out = NULL;
	}
	return rc;
}

const Fovea__StatusFigure *fv_status_find(const Fovea__DaemonStatus *st, const char *key)
{
	for (size_t i = 0; st && i < st->n_figures; i++)
		if (!strcmp(st->figures[i]->key, key))
			return st->figures[i];
	return NULL;
}
