/* augment/worker.c — see worker.h. The main thread owns the socket (recv,
 * heartbeats, reconnects, replies); compute threads take samples from the
 * queue and hand finished requests back through an eventfd. A malformed
 * request is answered with MSG_AUG_ERROR and logged; a sample that fails is
 * reported in the reply; nothing a peer sends can stop the worker. */
#include "augment/worker.h"
#include "augment/transform.h"
#include "augment/transform_pb.h"
#include "fv_augwire.h"
#include "fv_curve.h"
#include "fv_daemon.h"
#include "fv_error.h"
#include "fv_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Shared-memory outputs offered by a client on this host, mapped once and
 * kept (keyed on the client's segment id) while in use or recently used. */
#define SHM_MAPS 32
typedef struct shm_map {
	uint64_t id;
	char path[64];
	uint8_t *addr;
	size_t size;
	int refs;                /* jobs writing into it now */
	int64_t used;
} shm_map;

typedef struct job {
	Fovea__AugRequest *req;
	shm_map *shm;            /* out points into this mapping, if set */
	zmq_msg_t data;          /* the samples' bytes */
	fv_aug_params p;
	size_t sb;
	int n, next, done;
	uint8_t *out;            /* n * sb; handed to zmq with the reply */
	int *codes;
	char **reasons;
	int64_t t0;
	struct job *link;
} job;

/* Output buffers are recycled: a fresh 20 MB buffer per request costs more
 * in page faults than the transform's own writes. zmq hands a sent buffer
 * back from its I/O thread, hence the lock. Each buffer has a 64-byte
 * header holding its capacity, so the data stays 64-byte aligned. */
#define POOL_MAX 8
typedef struct outpool {
	pthread_mutex_t mu;
	void *bufs[POOL_MAX];
	int n;
} outpool;

struct fv_augw {
	fv_augw_opts o;
	outpool pool;
	shm_map maps[SHM_MAPS];
	int shm_off;             /* opening a client's memory failed once: stop trying */
	void *ctx, *sock;
	int donefd;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	job *todo, *todo_tail;   /* with unclaimed samples */
	job *done, *done_tail;   /* finished, reply not yet sent */
	int busy;                /* jobs accepted and not yet answered */
	pthread_t *thr;
	int nthr, quit;
	uint64_t seq;
	int hb_ms, liveness, lives, backoff_ms;
	int64_t next_hb, reconnect_at;
	char name[96];
	int curve;
	fv_curve_mon *mon;       /* says why a handshake failed */
	fv_curve_keypair kp;     /* with curve */
	char server_pub[FV_CURVE_Z85 + 1];
};

void fv_augw_opts_default(fv_augw_opts *o)
{
	memset(o, 0, sizeof *o);
	o->threads = 1;
	o->heartbeat_ms = 1000;
	o->liveness = 3;
	o->backoff_max_ms = 32000;
	o->max_message = FV_AUG_MAX_DEFAULT;
}

static uint8_t *pool_get(outpool *p, size_t size)
{
	pthread_mutex_lock(&p->mu);
	for (int i = 0; i < p->n; i++) {
		size_t cap = *(size_t *)p->bufs[i];
		if (cap >= size && cap / 2 <= size) {
			uint8_t *b = p->bufs[i];
			p->bufs[i] = p->bufs[--p->n];
			pthread_mutex_unlock(&p->mu);
			return b + 64;
		}
	}
	pthread_mutex_unlock(&p->mu);
	uint8_t *b = aligned_alloc(64, 64 + (size + 63) / 64 * 64);
	if (!b)
		return NULL;
	*(size_t *)b = size;
	return b + 64;
}

static void pool_put(outpool *p, uint8_t *data)
{
	if (!data)
		return;
	uint8_t *b = data - 64;
	pthread_mutex_lock(&p->mu);
	if (p->n < POOL_MAX) {
		p->bufs[p->n++] = b;
		b = NULL;
	} else if (p->n) { /* keep the larger ones */
		uint8_t *small = p->bufs[0];
		int k = 0;
		for (int i = 1; i < p->n; i++)
			if (*(size_t *)p->bufs[i] < *(size_t *)small)
				small = p->bufs[i], k = i;
		if (*(size_t *)small < *(size_t *)b) {
			p->bufs[k] = b;
			b = small;
		}
	}
	pthread_mutex_unlock(&p->mu);
	free(b);
}

static void job_free(fv_augw *w, job *j)
{
	if (!j)
		return;
	if (j->req)
		fovea__aug_request__free_unpacked(j->req, NULL);
	zmq_msg_close(&j->data);
	if (j->shm)
		j->shm->refs--;
	else
		pool_put(&w->pool, j->out);
	if (j->reasons)
		for (int i = 0; i < j->n; i++)
			free(j->reasons[i]);
	free(j->reasons);
	free(j->codes);
	free(j);
}

/* ------------------------------------------------------------ compute */

static void run_sample(job *j, int k, fv_aug_scratch *scratch)
{
	const Fovea__AugSample *s = j->req->samples[k];
	const uint8_t *base = zmq_msg_data(&j->data);
	fv_aug_input in = {
		.encoding = (enum fv_aug_encoding)s->encoding,
		.data = base + s->offset,
		.len = s->length,
		.width = s->width,
		.height = s->height,
		.channels = s->channels,
	};
	void *out = j->out + (size_t)k * j->sb;
	int rc;
	if (s->encoding == FOVEA__ENCODING__ENC_RAW &&
	    ((s->channels != 1 && s->channels != 3) || !s->width || !s->height ||
	     (uint64_t)s->width * s->height * s->channels != s->length)) {
		memset(out, 0, j->sb);
		rc = fv_err_set(FV_E_FORMAT, "raw sample %ux%ux%u does not match its %llu bytes",
				s->width, s->height, s->channels, (unsigned long long)s->length);
	} else {
		rc = fv_aug_sample(&j->p, &in, s->seed, out, scratch);
	}
	if (rc) {
		j->codes[k] = rc;
		j->reasons[k] = strdup(fv_err_msg(rc));
	}
}

static void *compute_main(void *arg)
{
	fv_augw *w = arg;
	fv_aug_scratch *scratch = NULL;
	if (fv_aug_scratch_new(&scratch))
		fv_err("augment: no memory for scratch buffers");
	pthread_mutex_lock(&w->mu);
	while (!w->quit) {
		job *j = w->todo;
		if (!j) {
			pthread_cond_wait(&w->cv, &w->mu);
			continue;
		}
		int k = j->next++;
		if (j->next == j->n) { /* every sample claimed: off the queue */
			w->todo = j->link;
			if (!w->todo)
				w->todo_tail = NULL;
			j->link = NULL;
		}
		pthread_mutex_unlock(&w->mu);
		run_sample(j, k, scratch);
		pthread_mutex_lock(&w->mu);
		if (++j->done == j->n) {
			if (w->done_tail)
				w->done_tail->link = j;
			else
				w->done = j;
			w->done_tail = j;
			uint64_t one = 1;
			if (write(w->donefd, &one, sizeof one) < 0)
				fv_warn("augment: eventfd: %s", strerror(errno));
		}
	}
	pthread_mutex_unlock(&w->mu);
	fv_aug_scratch_destroy(&scratch);
	return NULL;
}

/* ------------------------------------------------------------ the socket */

static void send_msg(fv_augw *w, int type, const ProtobufCMessage *msg, zmq_msg_t *data)
{
	if (!w->sock) {
		if (data)
			zmq_msg_close(data), zmq_msg_init(data);
		return;
	}
	int rc = fv_augwire_send(w->sock, NULL, 0, type, ++w->seq, msg, data, ZMQ_DONTWAIT);
	if (rc && rc != EAGAIN)
		fv_warn("augment: send: %s", fv_err_msg(rc));
}

static void send_error(fv_augw *w, uint64_t id, int code, const char *msg)
{
	Fovea__AugError e = FOVEA__AUG_ERROR__INIT;
	e.id = id;
	e.code = code;
	e.message = (char *)msg;
	fv_warn("augment: refused request %llu: %s", (unsigned long long)id, msg);
	send_msg(w, FOVEA__MSG_TYPE__MSG_AUG_ERROR, &e.base, NULL);
}

static int sock_open(fv_augw *w)
{
	if (!(w->sock = zmq_socket(w->ctx, ZMQ_DEALER)))
		return fv_err_set(FV_E_ZMQ, "zmq_socket: %s", zmq_strerror(zmq_errno()));
	int rc = fv_sock_limit(w->sock, w->o.max_message), sockbuf = FV_AUG_SOCKBUF;
	if (rc)
		return rc;
	zmq_setsockopt(w->sock, ZMQ_SNDBUF, &sockbuf, sizeof sockbuf);
	zmq_setsockopt(w->sock, ZMQ_RCVBUF, &sockbuf, sizeof sockbuf);
	if (w->curve && (rc = fv_curve_client_setup(w->sock, &w->kp, w->server_pub)))
		return rc;
	if (w->mon && fv_curve_mon_attach(w->mon, w->ctx, w->sock))
		fv_warn("%s (handshake failures will not be explained)", fv_err_msg(FV_E_ZMQ));
	if (zmq_connect(w->sock, w->o.connect))
		return fv_err_set(FV_E_ZMQ, "connect %s: %s", w->o.connect, zmq_strerror(zmq_errno()));
	Fovea__AugHello h = FOVEA__AUG_HELLO__INIT;
	h.capacity = w->o.threads;
	h.threads = w->o.threads;
	h.name = w->name;
	send_msg(w, FOVEA__MSG_TYPE__MSG_AUG_HELLO, &h.base, NULL);
	w->lives = w->liveness;
	w->next_hb = fv_now_ms() + w->hb_ms;
	return 0;
}

/* Only the client's memfd for this very segment is written to: a path of
 * the form /proc/PID/fd/N that opens as "memfd:fovea-augc-<id>". Anything
 * else is refused: a file a confused or hostile client names, or a newer
 * segment that took over the fd number of the one a late request names. */
static int shm_open_checked(const char *path, uint64_t id)
{
	unsigned pid, fdn;
	char end, link[128], self[64], want[64];
	if (sscanf(path, "/proc/%u/fd/%u%c", &pid, &fdn, &end) != 2)
		return -1;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(self, link, sizeof link - 1);
	link[n > 0 ? n : 0] = 0;
	int len = snprintf(want, sizeof want, "/memfd:fovea-augc-%llu", (unsigned long long)id);
	if (strncmp(link, want, len) || (link[len] && link[len] != ' ')) {
		close(fd);
		errno = ESTALE;
		return -1;
	}
	return fd;
}

/* The mapping for a request's shm offer, or NULL to send a frame instead. */
static shm_map *shm_get(fv_augw *w, const Fovea__AugRequest *q, size_t need)
{
	shm_map *m, *victim = NULL;
	if (w->shm_off || !q->shm_path || !*q->shm_path || q->shm_size < need ||
	    strlen(q->shm_path) >= sizeof m->path)
		return NULL;
	for (int i = 0; i < SHM_MAPS; i++) {
		m = &w->maps[i];
		if (m->addr && m->id == q->shm_id && !strcmp(m->path, q->shm_path) &&
		    m->size == q->shm_size)
			goto hit;
		if (!m->refs && (!victim || !m->addr || (victim->addr && m->used < victim->used)))
			victim = m;
	}
	if (!victim)
		return NULL;
	if (victim->addr)
		munmap(victim->addr, victim->size);
	memset(victim, 0, sizeof *victim);
	int fd = shm_open_checked(q->shm_path, q->shm_id);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) || (uint64_t)st.st_size < q->shm_size) {
		int err = fd < 0 ? errno : EINVAL;
		if (fd >= 0)
			close(fd);
		/* remote or foreign: stop trying; stale (a late request): just this once */
		w->shm_off = err != ESTALE;
		if (w->shm_off)
			fv_info("augment: client memory %s not usable (%s); sending outputs "
				"over the socket", q->shm_path, strerror(err));
		return NULL;
	}
	void *addr = mmap(NULL, q->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (addr == MAP_FAILED)
		return NULL;
	m = victim;
	m->addr = addr;
	m->size = q->shm_size;
	m->id = q->shm_id;
	snprintf(m->path, sizeof m->path, "%s", q->shm_path);
hit:
	m->refs++;
	m->used = fv_now_ms();
	return m;
}

static void shm_drop_all(fv_augw *w)
{
	for (int i = 0; i < SHM_MAPS; i++)
		if (w->maps[i].addr && !w->maps[i].refs) {
			munmap(w->maps[i].addr, w->maps[i].size);
			memset(&w->maps[i], 0, sizeof w->maps[i]);
		}
}

/* Forget the session: close the socket and reconnect after `delay_ms`.
 * Work already accepted still finishes and its replies go out on the new
 * socket: the client drops them as late duplicates (request ids are unique
 * per client session), which costs at most `capacity` requests of work and
 * keeps the worker free of session bookkeeping. */
static void sock_reset(fv_augw *w, int delay_ms)
{
	if (w->mon)
		fv_curve_mon_detach(w->mon);
	if (w->sock)
		zmq_close(w->sock);
	w->sock = NULL;
	shm_drop_all(w); /* the next client has other memory */
	w->shm_off = 0;
	w->reconnect_at = fv_now_ms() + delay_ms;
}

/* ------------------------------------------------------------ requests */

/* Check a request before any work; NULL if fine, else why not. */
static const char *request_bad(const fv_augw *w, const Fovea__AugRequest *q, size_t dlen,
			       fv_aug_params *p, size_t *sb, char *why, size_t whylen)
{
	if (!q->transform)
		return "no transform";
	if (q->n_samples < 1 || q->n_samples > FV_AUG_MAX_SAMPLES)
		return "sample count out of range";
	int rc = fv_aug_params_from_pb(p, q->transform);
	if (!rc)
		rc = fv_aug_params_check(p);
	if (rc) {
		snprintf(why, whylen, "bad transform: %s", fv_err_msg(rc));
		return why;
	}
	*sb = fv_aug_out_bytes(p);
	if (!*sb || *sb > w->o.max_message / q->n_samples)
		return "output would be over the message limit";
	for (size_t k = 0; k < q->n_samples; k++) {
		const Fovea__AugSample *s = q->samples[k];
		if (s->offset > dlen || s->length > dlen - s->offset)
			return "sample bytes outside the data frame";
		if (s->encoding != FOVEA__ENCODING__ENC_RAW && s->encoding != FOVEA__ENCODING__ENC_JPEG &&
		    s->encoding != FOVEA__ENCODING__ENC_PNG)
			return "unknown sample encoding";
		if (s->index >= FV_AUG_MAX_SAMPLES)
			return "sample index out of range";
	}
	return NULL;
}

static void on_request(fv_augw *w, const fv_msg *m, zmq_msg_t *data)
{
	Fovea__AugRequest *q = NULL;
	job *j = NULL;
	char why[256];
	int rc = fv_msg_unpack(m, &fovea__aug_request__descriptor, FV_AUG_HEADER_MAX,
			       (ProtobufCMessage **)&q);
	if (rc) {
		send_error(w, 0, rc, fv_err_msg(rc));
		return;
	}
	if (!(j = calloc(1, sizeof *j))) {
		send_error(w, q->id, ENOMEM, "out of memory");
		fovea__aug_request__free_unpacked(q, NULL);
		return;
	}
	j->req = q;
	zmq_msg_init(&j->data);
	zmq_msg_move(&j->data, data);
	const char *bad = request_bad(w, q, zmq_msg_size(&j->data), &j->p, &j->sb, why, sizeof why);
	if (bad) {
		send_error(w, q->id, FV_E_PROTO, bad);
		job_free(w, j);
		return;
	}
	j->n = q->n_samples;
	j->codes = calloc(j->n, sizeof *j->codes);
	j->reasons = calloc(j->n, sizeof *j->reasons);
	if ((j->shm = shm_get(w, q, (size_t)j->n * j->sb)))
		j->out = j->shm->addr;
	else
		j->out = pool_get(&w->pool, (size_t)j->n * j->sb);
	if (!j->codes || !j->reasons || !j->out) {
		send_error(w, q->id, ENOMEM, "out of memory");
		job_free(w, j);
		return;
	}
	j->t0 = fv_now_ms();
	pthread_mutex_lock(&w->mu);
	if (w->todo_tail)
		w->todo_tail->link = j;
	else
		w->todo = j;
	w->todo_tail = j;
	w->busy++;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void free_out(void *data, void *hint)
{
	pool_put(hint, data);
}

static void send_reply(fv_augw *w, job *j)
{
	Fovea__AugReply r = FOVEA__AUG_REPLY__INIT;
	Fovea__AugFailure *fails = calloc(j->n, sizeof *fails);
	Fovea__AugFailure **failp = calloc(j->n, sizeof *failp);
	zmq_msg_t out;
	if (!fails || !failp) {
		send_error(w, j->req->id, ENOMEM, "out of memory");
		goto out;
	}
	r.id = j->req->id;
	r.epoch = j->req->epoch;
	r.batch = j->req->batch;
	r.attempt = j->req->attempt;
	r.count = j->n;
	r.sample_bytes = j->sb;
	r.compute_ms = (uint32_t)(fv_now_ms() - j->t0);
	for (int k = 0; k < j->n; k++) {
		if (!j->codes[k])
			continue;
		fovea__aug_failure__init(&fails[r.n_failed]);
		fails[r.n_failed].index = j->req->samples[k]->index;
		fails[r.n_failed].code = j->codes[k];
		fails[r.n_failed].reason = j->reasons[k];
		failp[r.n_failed] = &fails[r.n_failed];
		r.n_failed++;
	}
	r.failed = failp;
	if (j->shm) {
		r.in_shm = 1;
		send_msg(w, FOVEA__MSG_TYPE__MSG_AUG_REPLY, &r.base, NULL);
		goto out;
	}
	/* zero-copy: zmq frees the output buffer once it is on the wire */
	if (zmq_msg_init_data(&out, j->out, (size_t)j->n * j->sb, free_out, &w->pool)) {
		send_error(w, j->req->id, ENOMEM, "out of memory");
		goto out;
	}
	j->out = NULL;
	send_msg(w, FOVEA__MSG_TYPE__MSG_AUG_REPLY, &r.base, &out);
	zmq_msg_close(&out);
out:
	free(fails);
	free(failp);
}

static void flush_done(fv_augw *w)
{
	uint64_t v;
	if (read(w->donefd, &v, sizeof v) < 0 && errno != EAGAIN)
		fv_warn("augment: eventfd: %s", strerror(errno));
	pthread_mutex_lock(&w->mu);
	job *list = w->done;
	w->done = w->done_tail = NULL;
	pthread_mutex_unlock(&w->mu);
	while (list) {
		job *j = list;
		list = j->link;
		send_reply(w, j);
		pthread_mutex_lock(&w->mu);
		w->busy--;
		pthread_mutex_unlock(&w->mu);
		job_free(w, j);
	}
}

static void on_welcome(fv_augw *w, const fv_msg *m)
{
	Fovea__AugHello *h = NULL;
	if (fv_msg_unpack(m, &fovea__aug_hello__descriptor, 4096, (ProtobufCMessage **)&h)) {
		fv_warn("augment: malformed welcome ignored");
		return;
	}
	if (h->heartbeat_ms >= 10 && h->heartbeat_ms <= 600000)
		w->hb_ms = h->heartbeat_ms;
	if (h->liveness >= 1 && h->liveness <= 100)
		w->liveness = h->liveness;
	w->lives = w->liveness;
	w->backoff_ms = w->hb_ms < 1000 ? w->hb_ms : 1000;
	if (w->next_hb > fv_now_ms() + w->hb_ms) /* the client's interval is shorter */
		w->next_hb = fv_now_ms() + w->hb_ms;
	fv_info("augment: joined %s (heartbeat %d ms x %d)", w->o.connect, w->hb_ms, w->liveness);
	fv_sd_status("serving %s", w->o.connect);
	protobuf_c_message_free_unpacked(&h->base, NULL);
}

static void on_message(fv_augw *w, fv_msg *m, zmq_msg_t *data)
{
	w->lives = w->liveness;
	if (m->version != FV_AUG_VERSION) {
		char why[96];
		snprintf(why, sizeof why, "message type %d version %u: this worker speaks %d",
			 m->type, m->version, FV_AUG_VERSION);
		send_error(w, 0, FV_E_PROTO, why);
		return;
	}
	switch (m->type) {
	case FOVEA__MSG_TYPE__MSG_AUG_REQUEST:
		on_request(w, m, data);
		break;
	case FOVEA__MSG_TYPE__MSG_AUG_HELLO:
		on_welcome(w, m);
		break;
	case FOVEA__MSG_TYPE__MSG_AUG_HEARTBEAT:
		break;
	case FOVEA__MSG_TYPE__MSG_AUG_BYE:
		fv_info("augment: client said bye; reconnecting");
		sock_reset(w, 0);
		break;
	case FOVEA__MSG_TYPE__MSG_AUG_ERROR:
		fv_warn("augment: client reported an error");
		break;
	default:
		send_error(w, 0, FV_E_PROTO, "unexpected message type");
	}
}

/* ------------------------------------------------------------ lifecycle */

static int curve_load(fv_augw *w)
{
	const char *key = w->o.curve_key, *server = w->o.server_key;
	int rc;
	if ((!key || !*key) && (!server || !*server))
		return 0;
	if (!key || !*key || !server || !*server)
		return fv_err_set(FV_E_CONFIG, "augment worker: CURVE needs both --curve-key "
				  "(our secret) and --server-key (the client's public key)");
	if ((rc = fv_curve_keypair_load(key, NULL, &w->kp)) ||
	    (rc = fv_curve_key_read(server, 0, w->server_pub)))
		return rc;
	w->curve = 1;
	fv_info("augment: CURVE, our key %.8s…, server key %.8s…", w->kp.pub, w->server_pub);
	return 0;
}

int fv_augw_new(fv_augw **out, const fv_augw_opts *o)
{
	fv_augw *w;
	int rc = 0;
	char host[64] = "?";
	*out = NULL;
	if (!o->connect || !*o->connect || o->threads < 1 || o->threads > 1024 ||
	    o->heartbeat_ms < 10 || o->liveness < 1)
		return fv_err_set(FV_E_CONFIG, "augment worker: need --connect, threads 1..1024, "
				  "heartbeat_ms >= 10, liveness >= 1");
	if (!(w = calloc(1, sizeof *w)))
		return ENOMEM;
	w->o = *o;
	w->donefd = -1;
	w->hb_ms = o->heartbeat_ms;
	w->liveness = o->liveness;
	w->backoff_ms = o->heartbeat_ms < 1000 ? o->heartbeat_ms : 1000;
	gethostname(host, sizeof host - 1);
	snprintf(w->name, sizeof w->name, "%s:%d", host, (int)getpid());
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	pthread_mutex_init(&w->pool.mu, NULL);
	if ((w->donefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		rc = fv_err_set(errno, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if (!(w->ctx = zmq_ctx_new()) || !(w->thr = calloc(o->threads, sizeof *w->thr))) {
		rc = ENOMEM;
		goto fail;
	}
	for (; w->nthr < o->threads; w->nthr++)
		if ((rc = pthread_create(&w->thr[w->nthr], NULL, compute_main, w))) {
			rc = fv_err_set(rc, "augment worker: thread: %s", strerror(rc));
			goto fail;
		}
	if ((rc = curve_load(w)) ||
	    (rc = fv_curve_mon_new(&w->mon, "augment", 0, w->curve ? w->kp.pub : NULL)) ||
	    (rc = sock_open(w)))
		goto fail;
	*out = w;
	return 0;
fail:
	fv_augw_destroy(&w);
	return rc;
}

int fv_augw_run(fv_augw *w, volatile sig_atomic_t *stop)
{
	while (!*stop) {
		int64_t now = fv_now_ms();
		if (!w->sock && now >= w->reconnect_at) {
			int rc = sock_open(w);
			if (rc)
				return rc;
			fv_info("augment: reconnecting to %s", w->o.connect);
		}
		zmq_pollitem_t items[3] = {
			{ .fd = w->donefd, .events = ZMQ_POLLIN },
			{ .socket = w->sock, .events = ZMQ_POLLIN },
			{ .socket = fv_curve_mon_socket(w->mon), .events = ZMQ_POLLIN },
		};
		int64_t due = w->sock ? w->next_hb : w->reconnect_at;
		long wait = due > now ? (long)(due - now) : 0;
		int nitems = !w->sock ? 1 : items[2].socket ? 3 : 2;
		if (zmq_poll(items, nitems, wait) < 0 && zmq_errno() != EINTR)
			return fv_err_set(FV_E_ZMQ, "zmq_poll: %s", zmq_strerror(zmq_errno()));
		if (items[0].revents & ZMQ_POLLIN)
			flush_done(w);
		if (nitems == 3 && (items[2].revents & ZMQ_POLLIN))
			fv_curve_mon_read(w->mon);
		for (int k = 0; w->sock && k < 64; k++) {
			fv_msg m;
			zmq_msg_t data;
			int rc = fv_augwire_recv(w->sock, 0, &m, &data, ZMQ_DONTWAIT);
			if (rc == EAGAIN || rc == EINTR)
				break;
			if (rc == FV_E_PROTO) {
				send_error(w, 0, rc, fv_err_msg(rc));
				continue;
			}
			if (rc)
				return rc;
			on_message(w, &m, &data);
			fv_msg_clear(&m);
			zmq_msg_close(&data);
		}
		now = fv_now_ms();
		if (w->sock && now >= w->next_hb) {
			Fovea__AugHeartbeat hb = FOVEA__AUG_HEARTBEAT__INIT;
			hb.busy = w->busy;
			send_msg(w, FOVEA__MSG_TYPE__MSG_AUG_HEARTBEAT, &hb.base, NULL);
			w->next_hb = now + w->hb_ms;
			if (--w->lives <= 0) {
				fv_warn("augment: client silent for %d ms; reconnecting in %d ms",
					w->hb_ms * w->liveness, w->backoff_ms);
				sock_reset(w, w->backoff_ms);
				w->backoff_ms = w->backoff_ms * 2 < w->o.backoff_max_ms
					? w->backoff_ms * 2 : w->o.backoff_max_ms;
			}
		}
		fv_sd_watchdog_tick();
	}
	Fovea__AugBye bye = FOVEA__AUG_BYE__INIT;
	bye.reason = "worker stopping";
	send_msg(w, FOVEA__MSG_TYPE__MSG_AUG_BYE, &bye.base, NULL);
	return 0;
}

void fv_augw_destroy(fv_augw **pw)
{
	fv_augw *w = *pw;
	if (!w)
		return;
	*pw = NULL;
	pthread_mutex_lock(&w->mu);
	w->quit = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (int i = 0; i < w->nthr; i++)
		pthread_join(w->thr[i], NULL);
	free(w->thr);
	explicit_bzero(&w->kp, sizeof w->kp);
	for (job *j = w->todo, *nx; j; j = nx)
		nx = j->link, job_free(w, j);
	for (job *j = w->done, *nx; j; j = nx)
		nx = j->link, job_free(w, j);
	fv_curve_mon_destroy(&w->mon);
	if (w->sock)
		zmq_close(w->sock);
	if (w->ctx)
		zmq_ctx_term(w->ctx);
	if (w->donefd >= 0)
		close(w->donefd);
	for (int i = 0; i < SHM_MAPS; i++)
		if (w->maps[i].addr)
			munmap(w->maps[i].addr, w->maps[i].size);
	for (int i = 0; i < w->pool.n; i++) /* zmq is gone: nothing is in flight */
		free(w->pool.bufs[i]);
	pthread_mutex_destroy(&w->pool.mu);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
