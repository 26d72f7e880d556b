/* fv_augc_broker.c — the augment client's broker thread: the ROUTER socket,
 * the expiry-ordered worker list (Paranoid Pirate), dispatch of queued
 * requests to workers with free capacity, re-sends on timeout or worker
 * death, and assembly of replies into batches. Everything here runs with
 * c->mu held, except the poll. */
#include "fv_augc_int.h"
#include "fv_error.h"
#include "fv_log.h"
#include "fv_daemon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_CAPACITY 4096

void fv_augc_wake(fv_augc *c)
{
	uint64_t one = 1;
	if (write(c->wakefd, &one, sizeof one) < 0 && errno != EAGAIN)
		fv_warn("augc: wake: %s", strerror(errno));
}

void fv_augc_req_free(augc_req *r)
{
	if (!r)
		return;
	fv_augc_seg_destroy(r->seg);
	zmq_msg_close(&r->blob);
	free(r->pb);
	free(r->pbp);
	free(r);
}

/* ------------------------------------------------------------ batches */

/* Make the batch's output a private buffer we can patch samples into. */
static int ensure_buf(augc_bat *b)
{
	if (b->out_buf || b->seg)
		return 0;
	size_t total = (size_t)b->pub.n * b->pub.sample_bytes;
	if (!(b->out_buf = calloc(1, total ? total : 1)))
		return ENOMEM;
	if (b->has_msg) {
		memcpy(b->out_buf, zmq_msg_data(&b->out_msg), total);
		zmq_msg_close(&b->out_msg);
		b->has_msg = 0;
	}
	return 0;
}

static void set_reason(augc_bat *b, int i, const char *why)
{
	free(b->reasons[i]);
	b->reasons[i] = why ? strdup(why) : NULL;
}

/* All samples answered: deliver, or hand to the caller for substitutes. */
static void finish_batch(fv_augc *c, augc_bat *b)
{
	int nfailed = 0, want_replace = 0;
	for (int i = 0; i < b->pub.n; i++) {
		if (!b->failed[i])
			continue;
		nfailed++;
		if (c->o.policy == FV_AUGC_REPLACE && !b->final[i]) {
			if (b->replaces[i] < c->o.replace_max && c->o.replace)
				want_replace = 1;
			else
				b->final[i] = 1;
		}
	}
	if (want_replace) {
		b->state = B_REPLACE;
	} else {
		b->pub.nfailed = nfailed;
		if (!b->pub.rc && nfailed && c->o.policy == FV_AUGC_FAIL)
			b->pub.rc = FV_E_DECODE;
		b->pub.data = augc_bat_out(b);
		b->state = B_DONE;
	}
	pthread_cond_broadcast(&c->cv);
}

/* The request's samples fail for good (no reply, or a worker refused it). */
static void fail_req(fv_augc *c, augc_req *r, int code, const char *why)
{
	augc_bat *b = r->b;
	if (ensure_buf(b)) {
		fv_err("augc: out of memory failing batch %llu", (unsigned long long)b->pub.index);
		return;
	}
	for (int k = 0; k < r->count; k++) {
		int i = r->pb[k].index;
		memset(augc_bat_out(b) + (size_t)i * b->pub.sample_bytes, 0, b->pub.sample_bytes);
		b->failed[i] = 1;
		b->final[i] = 1;
		set_reason(b, i, why);
	}
	b->pub.rc = code;
	b->npending -= r->count;
	fv_augc_req_free(r);
	if (!b->npending)
		finish_batch(c, b);
}

/* Put a sent request back at the front of the queue with a fresh id (so a
 * late answer to the old one is recognised as a duplicate). */
static void requeue(fv_augc *c, augc_req *r, const char *why)
{
	AUGC_UNLINK(c->fhead, c->ftail, r);
	if (r->w)
		r->w->inflight--;
	r->w = NULL;
	fv_augc_seg_destroy(r->seg); /* its writer may still wake up: never reuse */
	r->seg = NULL;
	r->attempt++;
	if (r->attempt >= c->o.max_attempts) {
		char msg[160];
		snprintf(msg, sizeof msg, "no reply after %d sends (%s)", r->attempt, why);
		fv_warn("augc: epoch %llu batch %llu: %s", (unsigned long long)r->b->pub.epoch,
			(unsigned long long)r->b->pub.index, msg);
		fail_req(c, r, FV_E_TIMEOUT, msg);
		return;
	}
	fv_info("augc: re-sending epoch %llu batch %llu (attempt %d): %s",
		(unsigned long long)r->b->pub.epoch, (unsigned long long)r->b->pub.index,
		r->attempt, why);
	r->id = ++c->next_id;
	c->st.resent++;
	AUGC_PREPEND(c->qhead, c->qtail, r);
}

/* ------------------------------------------------------------ workers */

static augc_worker *worker_find(fv_augc *c, const uint8_t *id, size_t len)
{
	for (augc_worker *w = c->whead; w; w = w->next)
		if (w->idlen == len && !memcmp(w->id, id, len))
			return w;
	return NULL;
}

static void worker_refresh(fv_augc *c, augc_worker *w)
{
	w->expiry = fv_now_ms() + (int64_t)c->o.heartbeat_ms * c->o.liveness;
	AUGC_UNLINK(c->whead, c->wtail, w);
	AUGC_APPEND(c->whead, c->wtail, w);
}

static void worker_drop(fv_augc *c, augc_worker *w, const char *why)
{
	fv_info("augc: worker %s gone (%s)", w->name, why);
	for (augc_req *r = c->fhead, *nx; r; r = nx) {
		nx = r->next;
		if (r->w == w)
			requeue(c, r, why);
	}
	AUGC_UNLINK(c->whead, c->wtail, w);
	c->nworkers--;
	c->st.workers_lost++;
	free(w);
}

static void send_simple(fv_augc *c, const uint8_t *id, size_t len, int type,
			const ProtobufCMessage *msg)
{
	int rc = fv_augwire_send(c->sock, id, len, type, ++c->seq, msg, NULL, ZMQ_DONTWAIT);
	if (rc && rc != EAGAIN && rc != EHOSTUNREACH)
		fv_debug("augc: send type %d: %s", type, fv_err_msg(rc));
}

static void on_hello(fv_augc *c, augc_worker *w, const fv_msg *m)
{
	Fovea__AugHello *h = NULL;
	if (fv_msg_unpack(m, &fovea__aug_hello__descriptor, 4096, (ProtobufCMessage **)&h)) {
		c->st.malformed++;
		fv_warn("augc: malformed hello dropped: %s", fv_err_msg(FV_E_PROTO));
		return;
	}
	if (w) /* the same socket said hello again: its old session is over */
		worker_drop(c, w, "said hello again");
	if (!(w = calloc(1, sizeof *w)))
		goto out;
	memcpy(w->id, m->identity, m->identity_len);
	w->idlen = m->identity_len;
	snprintf(w->name, sizeof w->name, "%s", h->name && *h->name ? h->name : "?");
	w->capacity = h->capacity < 1 ? 1 : h->capacity > MAX_CAPACITY ? MAX_CAPACITY
		: (int)h->capacity;
	w->joined_ms = w->win_ms = fv_now_ms();
	AUGC_APPEND(c->whead, c->wtail, w);
	c->nworkers++;
	worker_refresh(c, w);
	fv_info("augc: worker %s joined, capacity %d (%d workers)", w->name, w->capacity,
		c->nworkers);
	Fovea__AugHello wel = FOVEA__AUG_HELLO__INIT;
	wel.heartbeat_ms = c->o.heartbeat_ms;
	wel.liveness = c->o.liveness;
	wel.max_message = c->o.max_message;
	send_simple(c, w->id, w->idlen, FOVEA__MSG_TYPE__MSG_AUG_HELLO, &wel.base);
out:
	protobuf_c_message_free_unpacked(&h->base, NULL);
}

/* ------------------------------------------------------------ replies */

static augc_req *flight_find(fv_augc *c, uint64_t id)
{
	for (augc_req *r = c->fhead; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

/* Check a reply against its request; NULL if it fits, else why not. */
static const char *reply_bad(const augc_req *r, const Fovea__AugReply *rep, size_t dlen)
{
	const augc_bat *b = r->b;
	if (rep->count != (uint32_t)r->count || rep->sample_bytes != b->pub.sample_bytes)
		return "count or sample size differs from the request";
	if (rep->in_shm && (!r->seg || dlen))
		return "claims shared memory that was not offered, or sends a frame too";
	if (!rep->in_shm && dlen != (size_t)r->count * b->pub.sample_bytes)
		return "output frame size differs from count * sample_bytes";
	if (rep->n_failed > (size_t)r->count)
		return "more failures than samples";
	for (size_t f = 0; f < rep->n_failed; f++) {
		int found = 0;
		for (int k = 0; k < r->count && !found; k++)
			found = r->pb[k].index == rep->failed[f]->index;
		if (!found)
			return "failure names a sample not in the request";
	}
	return NULL;
}

static void place(fv_augc *c, augc_req *r, const Fovea__AugReply *rep, zmq_msg_t *data)
{
	augc_bat *b = r->b;
	size_t sb = b->pub.sample_bytes;
	if (rep->in_shm) {
		/* the whole batch, written in place by a local worker */
		b->seg = r->seg;
		r->seg = NULL;
		c->st.shm_replies++;
	} else if (r->count == b->pub.n && !b->has_msg && !b->out_buf && !b->seg) {
		/* the common case: the whole batch in one frame, kept as is */
		zmq_msg_init(&b->out_msg);
		zmq_msg_move(&b->out_msg, data);
		b->has_msg = 1;
	} else if (!ensure_buf(b)) {
		const uint8_t *src = zmq_msg_data(data);
		for (int k = 0; k < r->count; k++)
			memcpy(augc_bat_out(b) + (size_t)r->pb[k].index * sb, src + (size_t)k * sb, sb);
	} else {
		fv_err("augc: out of memory placing batch %llu", (unsigned long long)b->pub.index);
	}
	for (int k = 0; k < r->count; k++) {
		int i = r->pb[k].index;
		b->failed[i] = 0;
		set_reason(b, i, NULL);
	}
	for (size_t f = 0; f < rep->n_failed; f++) {
		int i = rep->failed[f]->index;
		b->failed[i] = 1;
		set_reason(b, i, rep->failed[f]->reason && *rep->failed[f]->reason
			   ? rep->failed[f]->reason : "failed");
		c->st.failed_samples++;
	}
	b->npending -= r->count;
}

static void on_reply(fv_augc *c, const fv_msg *m, zmq_msg_t *data)
{
	Fovea__AugReply *rep = NULL;
	if (fv_msg_unpack(m, &fovea__aug_reply__descriptor, FV_AUG_HEADER_MAX,
			  (ProtobufCMessage **)&rep)) {
		c->st.malformed++;
		fv_warn("augc: malformed reply dropped: %s", fv_err_msg(FV_E_PROTO));
		return;
	}
	augc_req *r = flight_find(c, rep->id);
	if (!r) {
		c->st.duplicates++;
		fv_debug("augc: late or duplicate reply %llu dropped", (unsigned long long)rep->id);
		goto out;
	}
	const char *bad = reply_bad(r, rep, zmq_msg_size(data));
	if (bad) {
		c->st.malformed++;
		fv_warn("augc: malformed reply to epoch %llu batch %llu dropped: %s",
			(unsigned long long)r->b->pub.epoch, (unsigned long long)r->b->pub.index, bad);
		requeue(c, r, "malformed reply");
		goto out;
	}
	AUGC_UNLINK(c->fhead, c->ftail, r);
	if (r->w) {
		augc_worker *w = r->w;
		int64_t now = fv_now_ms();
		w->inflight--;
		w->samples += (uint64_t)r->count;
		w->win_samples += (uint64_t)r->count;
		if (now - w->win_ms >= 1000) { /* a new window each second */
			w->rate = (double)w->win_samples * 1000.0 / (double)(now - w->win_ms);
			w->win_ms = now;
			w->win_samples = 0;
		}
	}
	place(c, r, rep, data);
	fv_augc_seg_put(c, r->seg); /* offered, not used: its writer is done */
	r->seg = NULL;
	augc_bat *b = r->b;
	fv_augc_req_free(r);
	if (!b->npending)
		finish_batch(c, b);
out:
	protobuf_c_message_free_unpacked(&rep->base, NULL);
}

static void on_error(fv_augc *c, const fv_msg *m)
{
	Fovea__AugError *e = NULL;
	if (fv_msg_unpack(m, &fovea__aug_error__descriptor, 65536, (ProtobufCMessage **)&e)) {
		c->st.malformed++;
		return;
	}
	augc_req *r = e->id ? flight_find(c, e->id) : NULL;
	fv_warn("augc: worker refused request %llu: %s", (unsigned long long)e->id,
		e->message ? e->message : "");
	if (r) {
		AUGC_UNLINK(c->fhead, c->ftail, r);
		if (r->w)
			r->w->inflight--;
		fv_augc_seg_put(c, r->seg); /* it answered: it will not write */
		r->seg = NULL;
		fail_req(c, r, e->code ? e->code : FV_E_PROTO, e->message);
	}
	protobuf_c_message_free_unpacked(&e->base, NULL);
}

static void on_message(fv_augc *c, fv_msg *m, zmq_msg_t *data)
{
	augc_worker *w = worker_find(c, m->identity, m->identity_len);
	if (m->version != FV_AUG_VERSION) {
		c->st.malformed++;
		fv_warn("augc: message type %d version %u dropped (we speak %d)", m->type,
			m->version, FV_AUG_VERSION);
		return;
	}
	if (w && m->type != FOVEA__MSG_TYPE__MSG_AUG_HELLO)
		worker_refresh(c, w);
	switch (m->type) {
	case FOVEA__MSG_TYPE__MSG_AUG_HELLO:
		on_hello(c, w, m);
		return;
	case FOVEA__MSG_TYPE__MSG_AUG_HEARTBEAT:
		break;
	case FOVEA__MSG_TYPE__MSG_AUG_REPLY:
		on_reply(c, m, data);
		break;
	case FOVEA__MSG_TYPE__MSG_AUG_ERROR:
		on_error(c, m);
		break;
	case FOVEA__MSG_TYPE__MSG_AUG_BYE:
		if (w)
			worker_drop(c, w, "said bye");
		return;
	default:
		c->st.malformed++;
		fv_warn("augc: unexpected message type %d dropped", m->type);
		return;
	}
	if (!w) {
		/* a worker we declared dead (or never met): make it start over */
		Fovea__AugBye bye = FOVEA__AUG_BYE__INIT;
		bye.reason = "unknown worker: reconnect and say hello";
		send_simple(c, m->identity, m->identity_len, FOVEA__MSG_TYPE__MSG_AUG_BYE, &bye.base);
	}
}

/* ------------------------------------------------------------ the loop */

static augc_worker *pick_worker(fv_augc *c)
{
	augc_worker *best = NULL;
	for (augc_worker *w = c->whead; w; w = w->next)
		if (w->inflight < w->capacity &&
		    (!best || (int64_t)w->inflight * best->capacity <
		     (int64_t)best->inflight * w->capacity))
			best = w;
	return best;
}

static void dispatch(fv_augc *c)
{
	augc_worker *w;
	while (c->qhead && (w = pick_worker(c))) {
		augc_req *r = c->qhead;
		Fovea__AugRequest q = FOVEA__AUG_REQUEST__INIT;
		zmq_msg_t data;
		q.id = r->id;
		q.epoch = r->b->pub.epoch;
		q.batch = r->b->pub.index;
		q.attempt = r->attempt;
		q.transform = &r->b->tf;
		q.n_samples = r->count;
		q.samples = r->pbp;
		size_t out_bytes = (size_t)r->count * r->b->pub.sample_bytes;
		if (c->o.shm && r->count == r->b->pub.n && !r->seg &&
		    fv_augc_seg_get(c, out_bytes, w, &r->seg))
			c->o.shm = 0; /* no shared memory here: say so once, use frames */
		if (r->seg) {
			q.shm_path = r->seg->path;
			q.shm_size = r->seg->size;
			q.shm_id = r->seg->id;
		}
		zmq_msg_init(&data);
		zmq_msg_copy(&data, &r->blob); /* shares the buffer */
		int rc = fv_augwire_send(c->sock, w->id, w->idlen, FOVEA__MSG_TYPE__MSG_AUG_REQUEST,
					 ++c->seq, &q.base, &data, ZMQ_DONTWAIT);
		if (rc == EHOSTUNREACH) {
			worker_drop(c, w, "unreachable");
			continue;
		}
		if (rc) {
			fv_debug("augc: send to %s: %s", w->name, fv_err_msg(rc));
			break; /* full or failing: try again on the next tick */
		}
		AUGC_UNLINK(c->qhead, c->qtail, r);
		r->w = w;
		r->sent_ms = fv_now_ms();
		w->inflight++;
		c->st.sent++;
		AUGC_APPEND(c->fhead, c->ftail, r);
	}
}

static void tick(fv_augc *c, int64_t now)
{
	while (c->whead && c->whead->expiry <= now)
		worker_drop(c, c->whead, "heartbeat lost");
	for (augc_req *r = c->fhead, *nx; r; r = nx) {
		nx = r->next;
		if (now - r->sent_ms >= c->o.timeout_ms)
			requeue(c, r, "timed out");
	}
	if (now >= c->next_hb) {
		for (augc_worker *w = c->whead; w; w = w->next)
			send_simple(c, w->id, w->idlen, FOVEA__MSG_TYPE__MSG_AUG_HEARTBEAT, NULL);
		c->next_hb = now + c->o.heartbeat_ms;
	}
	dispatch(c);
}

/* Milliseconds until something is due. */
static long next_due(fv_augc *c, int64_t now)
{
	int64_t due = c->next_hb;
	if (c->whead && c->whead->expiry < due)
		due = c->whead->expiry;
	for (augc_req *r = c->fhead; r; r = r->next)
		if (r->sent_ms + c->o.timeout_ms < due)
			due = r->sent_ms + c->o.timeout_ms;
	return due <= now ? 0 : (long)(due - now);
}

void *fv_augc_broker_main(void *arg)
{
	fv_augc *c = arg;
	zmq_pollitem_t items[3] = {
		{ .socket = c->sock, .events = ZMQ_POLLIN },
		{ .fd = c->wakefd, .events = ZMQ_POLLIN },
		{ .socket = c->mon ? fv_curve_mon_socket(c->mon) : NULL, .events = ZMQ_POLLIN },
	};
	pthread_mutex_lock(&c->mu);
	c->next_hb = fv_now_ms() + c->o.heartbeat_ms;
	while (!c->stop) {
		long wait = next_due(c, fv_now_ms());
		pthread_mutex_unlock(&c->mu);
		int n = zmq_poll(items, c->mon ? 3 : 2, wait);
		if (c->mon && (items[2].revents & ZMQ_POLLIN))
			fv_curve_mon_read(c->mon);
		if (items[1].revents & ZMQ_POLLIN) {
			uint64_t v;
			if (read(c->wakefd, &v, sizeof v) < 0 && errno != EAGAIN)
				fv_warn("augc: wake read: %s", strerror(errno));
		}
		pthread_mutex_lock(&c->mu);
		if (n < 0 && zmq_errno() != EINTR) {
			fv_err("augc: poll: %s", zmq_strerror(zmq_errno()));
			c->broken = 1;
			break;
		}
		for (int k = 0; k < 256 && !c->stop; k++) {
			fv_msg m;
			zmq_msg_t data;
			int rc = fv_augwire_recv(c->sock, 1, &m, &data, ZMQ_DONTWAIT);
			if (rc == EAGAIN || rc == EINTR)
				break;
			if (rc == FV_E_PROTO) {
				c->st.malformed++;
				fv_warn("augc: garbage dropped: %s", fv_err_msg(rc));
				continue;
			}
			if (rc) {
				fv_err("augc: receive: %s", fv_err_msg(rc));
				break;
			}
			on_message(c, &m, &data);
			fv_msg_clear(&m);
			zmq_msg_close(&data);
		}
		tick(c, fv_now_ms());
	}
	/* leaving: tell the workers, so they reconnect at once to whoever binds next */
	Fovea__AugBye bye = FOVEA__AUG_BYE__INIT;
	bye.reason = "client closing";
	for (augc_worker *w = c->whead; w; w = w->next)
		send_simple(c, w->id, w->idlen, FOVEA__MSG_TYPE__MSG_AUG_BYE, &bye.base);
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return NULL;
}
