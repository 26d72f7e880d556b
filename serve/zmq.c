/* serve/zmq.c — the answer path both front ends share, the ZMQ REP front
 * end (ClassifyRequest -> ClassifyReply), and the reload triggers: a
 * ModelExported on the SUB socket, SIGHUP, and a periodic look at
 * MODELDIR/current (events are hints; a missed one is caught up). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "fv_daemon.h"
#include "fv_error.h"
#include "fv_log.h"
#include "fv_msg.h"
#include "fv_status.h"
#include "serve/serve.h"

int fv_serve_status_of(int rc)
{
	switch (rc) {
	case 0: return 200;
	case FV_E_FORMAT: return 415;
	case FV_E_DECODE: return 400;
	case FV_E_TOOBIG: return 413;
	case FV_E_NOTFOUND: return 503;
	default: return 500;
	}
}

static void short_name(char *dst, size_t cap, const char *path)
{
	const char *p = path + strlen(path);
	int slashes = 0;
	while (p > path && slashes < 2)
		if (*--p == '/')
			slashes++;
	snprintf(dst, cap, "%s", slashes == 2 ? p + 1 : p);
}

void fv_serve_answer(fv_serve *s, int transport, const void *buf, size_t len, int k,
		     fv_serve_result *r)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(r, 0, sizeof *r);
	if (k <= 0 || k > FV_SERVE_TOPK_MAX)
		k = k <= 0 ? 5 : FV_SERVE_TOPK_MAX;
	fv_srv_model *m = fv_srv_models_acquire(s->models);
	if (!m) {
		r->rc = FV_E_NOTFOUND;
		snprintf(r->error, sizeof r->error, "no model loaded yet");
	} else {
		r->rc = fv_srv_classify(m, buf, len, (uint64_t)s->o->max_mpixels * 1000000u, k, r->top, &r->n);
		if (r->rc)
			snprintf(r->error, sizeof r->error, "%s", fv_err_msg(r->rc));
		short_name(r->model, sizeof r->model, m->path);
		r->version = m->version;
		for (int i = 0; i < r->n; i++) { /* names outlive the reference */
			snprintf(r->names[i], sizeof r->names[i], "%s", r->top[i].name ? r->top[i].name : "");
			r->top[i].name = r->names[i];
		}
	}
	fv_srv_models_release(s->models, m);
	r->status = len ? fv_serve_status_of(r->rc) : 400; /* empty: a bad request, not a bad type */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
	fv_srv_metrics_add(&s->metrics, transport, r->status, r->seconds);
}

static void rep_answer(fv_serve *s, void *rep, const fv_msg *msg, int rc_recv, uint64_t *seq)
{
	Fovea__ClassifyReply out = FOVEA__CLASSIFY_REPLY__INIT;
	Fovea__Prediction preds[FV_SERVE_TOPK_MAX], *pp[FV_SERVE_TOPK_MAX];
	Fovea__ClassifyRequest *in = NULL;
	fv_serve_result *r = calloc(1, sizeof *r);
	if (!r)
		return;
	if (rc_recv || msg->type != FOVEA__MSG_TYPE__MSG_CLASSIFY_REQUEST ||
	    fv_msg_unpack(msg, &fovea__classify_request__descriptor, 0, (ProtobufCMessage **)&in)) {
		r->rc = FV_E_PROTO;
		r->status = 400;
		snprintf(r->error, sizeof r->error, "expected one ClassifyRequest envelope");
		fv_srv_metrics_add(&s->metrics, FV_SRV_ZMQ, 400, 0);
	} else {
		fv_serve_answer(s, FV_SRV_ZMQ, in->image.data, in->image.len, (int)in->top_k, r);
	}
	out.code = r->rc;
	out.error = r->error;
	out.model = r->model;
	out.model_version = r->version;
	out.ms = (float)(r->seconds * 1000);
	for (int i = 0; i < r->n; i++) {
		fovea__prediction__init(&preds[i]);
		preds[i].label = (uint32_t)r->top[i].label;
		preds[i].name = r->names[i];
		preds[i].score = r->top[i].score;
		pp[i] = &preds[i];
	}
	out.n_top = (size_t)r->n;
	out.top = pp;
	if (fv_msg_send(rep, NULL, 0, FOVEA__MSG_TYPE__MSG_CLASSIFY_REPLY, 1, ++*seq,
			(ProtobufCMessage *)&out, 0))
		fv_warn("zmq reply not sent: %s", fv_err_msg(FV_E_ZMQ));
	if (in)
		protobuf_c_message_free_unpacked((ProtobufCMessage *)in, NULL);
	free(r);
}

static void reload(fv_serve *s, int force, const char *why)
{
	int changed = 0, rc = fv_srv_models_reload(s->models, force, &changed);
	if (rc && rc != FV_E_NOTFOUND)
		fv_warn("reload (%s) failed, the old model keeps answering: %s", why, fv_err_msg(rc));
	else if (changed)
		fv_info("reloaded (%s)", why);
}

static void write_stats(fv_serve *s, uint64_t *last_n, int64_t *last_ms)
{
	if (!*s->o->stats)
		return;
	char tmp[4200], buf[512];
	unsigned reloads, v;
	int64_t now = fv_now_ms();
	uint64_t n = fv_srv_metrics_total(&s->metrics);
	double rate = now > *last_ms ? (double)(n - *last_n) * 1000.0 / (double)(now - *last_ms) : 0;
	fv_srv_models_stats(s->models, &reloads, &v);
	int len = snprintf(buf, sizeof buf,
			   "{\"requests\":%llu,\"rate\":%.2f,\"model_version\":%u,\"reloads\":%u,"
			   "\"http_port\":%ld}\n",
			   (unsigned long long)n, rate, v, reloads, s->o->http_port);
	snprintf(tmp, sizeof tmp, "%s.tmp", s->o->stats);
	FILE *f = fopen(tmp, "w");
	if (f && fwrite(buf, 1, (size_t)len, f) == (size_t)len && !fclose(f))
		rename(tmp, s->o->stats);
	else if (f)
		fclose(f);
	*last_n = n, *last_ms = now;
}

/* The status endpoint's figures: requests, their rate over the last
 * second or so, and the model answering. */
typedef struct live {
	fv_serve *s;
	uint64_t base_n;
	int64_t base_ms;
	double rate;
} live;

static void status_fill(void *ctx, fv_status_figs *f)
{
	live *l = ctx;
	unsigned reloads, v;
	int64_t now = fv_now_ms();
	uint64_t n = fv_srv_metrics_total(&l->s->metrics);
	if (now - l->base_ms >= 1000) {
		l->rate = l->base_ms ? (double)(n - l->base_n) * 1000.0 / (double)(now - l->base_ms) : 0;
		l->base_n = n;
		l->base_ms = now;
	}
	fv_srv_models_stats(l->s->models, &reloads, &v);
	fv_status_num(f, "serve.requests", (double)n);
	fv_status_num(f, "serve.rate", l->rate);
	fv_status_num(f, "serve.model_version", v);
	fv_status_num(f, "serve.reloads", reloads);
	fv_status_num(f, "serve.http_port", (double)l->s->o->http_port);
}

/* The REP socket (if --zmq) and the SUB socket for ModelExported. */
static int open_sockets(fv_serve *s, void *ctx, void **rep, void **sub)
{
	char ep[2200];
	if (*s->o->zmq) {
		*rep = zmq_socket(ctx, ZMQ_REP);
		fv_sock_limit(*rep, (size_t)s->o->max_body_kb * 1024 + 4096);
		if (zmq_bind(*rep, s->o->zmq))
			return fv_err_set(FV_E_ZMQ, "cannot bind %s: %s", s->o->zmq, zmq_strerror(errno));
	}
	if (*s->o->sub)
		snprintf(ep, sizeof ep, "%s", s->o->sub);
	else if (*s->o->model_dir && !*s->o->model)
		snprintf(ep, sizeof ep, "ipc://%s/export.sock", s->o->model_dir);
	else
		return 0;
	*sub = zmq_socket(ctx, ZMQ_SUB);
	fv_sock_limit(*sub, 1 << 20);
	zmq_setsockopt(*sub, ZMQ_SUBSCRIBE, "", 0);
	if (zmq_connect(*sub, ep))
		fv_warn("cannot subscribe to %s: %s (reloads on SIGHUP and by polling only)", ep,
			zmq_strerror(errno));
	return 0;
}

int fv_serve_zmq_loop(fv_serve *s, void *ctx)
{
	void *rep = NULL, *sub = NULL;
	int rc = 0;
	uint64_t seq = 0, last_n = 0;
	int64_t last_stats = fv_now_ms(), last_look = fv_now_ms();
	live l = { .s = s };
	fv_status *status = NULL;
	fv_status_opts so = { .endpoint = s->o->status_ep, .name = "serve", .fill = status_fill, .fill_ctx = &l };
	if ((rc = open_sockets(s, ctx, &rep, &sub)) || (rc = fv_status_new(&status, ctx, &so)))
		goto out;
	fv_status_update(status, 1);
	fv_sd_ready();
	fv_sd_status("serving");
	fv_info("ready: zmq %s, http %s:%ld, models from %s", *s->o->zmq ? s->o->zmq : "off",
		s->o->http_port ? s->o->http_addr : "off", s->o->http_port,
		*s->o->model ? s->o->model : s->o->model_dir);
	while (!fv_stop_requested) {
		zmq_pollitem_t it[2] = { { rep, 0, ZMQ_POLLIN, 0 }, { sub, 0, ZMQ_POLLIN, 0 } };
		zmq_pollitem_t *items = rep ? it : it + 1; /* it[1] alone without REP */
		int n = zmq_poll(items, (rep ? 1 : 0) + (sub ? 1 : 0), 200);
		if (n < 0 && errno != EINTR) {
			rc = fv_err_set(FV_E_ZMQ, "poll: %s", zmq_strerror(errno));
			break;
		}
		if (rep && (it[0].revents & ZMQ_POLLIN)) {
			fv_msg m = { 0 };
			int r = fv_msg_recv(rep, &m, ZMQ_DONTWAIT);
			if (r != EAGAIN && r != EINTR)
				rep_answer(s, rep, &m, r, &seq);
			fv_msg_clear(&m);
		}
		if (sub && (it[1].revents & ZMQ_POLLIN)) {
			fv_msg m = { 0 };
			if (!fv_msg_recv(sub, &m, ZMQ_DONTWAIT) && m.type == FOVEA__MSG_TYPE__MSG_MODEL_EXPORTED)
				reload(s, 0, "ModelExported");
			fv_msg_clear(&m);
		}
		if (fv_reload_requested) {
			fv_reload_requested = 0;
			reload(s, 1, "SIGHUP");
		}
		int64_t now = fv_now_ms();
		if (s->o->watch_ms && now - last_look >= s->o->watch_ms) {
			reload(s, 0, "new export");
			last_look = now;
		}
		if (now - last_stats >= 1000)
			write_stats(s, &last_n, &last_stats);
		fv_status_update(status, 0);
		fv_sd_watchdog_tick();
	}
	s->draining = 1;
	fv_sd_stopping();
out:
	fv_status_destroy(&status);
	if (rep)
		zmq_close(rep);
	if (sub)
		zmq_close(sub);
	return rc;
}
