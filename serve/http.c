/* serve/http.c — the HTTP front end (libmicrohttpd, its own thread pool):
 * POST /v1/classify, GET /healthz, GET /metrics. Bodies are bounded: a
 * Content-Length over the limit is refused before any byte is read, a
 * chunked body that grows past it is drained and refused. Every error is a
 * 4xx/5xx with a one-line JSON message; nothing a client sends stops the
 * server. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fv_error.h"
#include "fv_json.h"
#include "fv_log.h"
#include "serve/serve.h"

typedef struct req {
	char *buf;
	size_t len, cap;
	int status;              /* nonzero: answer with this error when the body ends */
	char error[160];
} req;

static enum MHD_Result reply(struct MHD_Connection *c, int status, const char *type, const char *body)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_error(fv_serve *s, struct MHD_Connection *c, int status, const char *msg,
				   int count)
{
	char body[600], esc[400];
	fv_json_escape(esc, sizeof esc, msg);
	snprintf(body, sizeof body, "{\"error\":\"%s\",\"status\":%d}\n", esc, status);
	if (count)
		fv_srv_metrics_add(&s->metrics, FV_SRV_HTTP, status, 0);
	return reply(c, status, "application/json", body);
}

static int type_ok(const char *t)
{
	if (!t)
		return 1; /* curl --data-binary without -H sends a form type; see below */
	size_t n = strcspn(t, ";");
	while (n && t[n - 1] == ' ')
		n--;
	static const char *const ok[] = { "image/jpeg", "image/png", "application/octet-stream",
					  "image/jpg" };
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (strlen(ok[i]) == n && !strncasecmp(t, ok[i], n))
			return 1;
	return 0;
}

static enum MHD_Result classify(fv_serve *s, struct MHD_Connection *c, req *q)
{
	fv_serve_result *r = malloc(sizeof *r);
	char *body = malloc(8192);
	enum MHD_Result ret = MHD_NO;
	if (!r || !body) {
		ret = reply_error(s, c, 500, "out of memory", 1);
		goto out;
	}
	fv_serve_answer(s, FV_SRV_HTTP, q->buf, q->len, (int)s->o->top_k, r);
	if (r->status != 200) {
		ret = reply_error(s, c, r->status, r->error, 0);
		goto out;
	}
	size_t n = fv_srv_json(body, 8190, r->model, r->version, r->top, r->n);
	body[n] = '\n', body[n + 1] = 0;
	ret = reply(c, 200, "application/json", body);
out:
	free(r);
	free(body);
	return ret;
}

/* Keep a piece of the body, or only count it once over the limit (the
 * rest is drained so the client reads the 413). */
static void append(req *q, const char *data, size_t size, size_t limit)
{
	if (!q->status && q->len + size > limit) {
		q->status = 413;
		snprintf(q->error, sizeof q->error, "body is over the limit of %zu bytes", limit);
	}
	if (q->status)
		return;
	if (q->len + size > q->cap) {
		size_t cap = q->cap ? q->cap : 65536;
		while (cap < q->len + size)
			cap *= 2;
		char *nb = realloc(q->buf, cap);
		if (!nb) {
			q->status = 500;
			snprintf(q->error, sizeof q->error, "out of memory");
			return;
		}
		q->buf = nb, q->cap = cap;
	}
	memcpy(q->buf + q->len, data, size);
	q->len += size;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *data,
			       size_t *size, void **con_cls)
{
	fv_serve *s = cls;
	req *q = *con_cls;
	size_t limit = (size_t)s->o->max_body_kb * 1024;
	(void)version;
	int is_classify = !strcmp(url, "/v1/classify");
	if (!q) { /* headers are in; no body byte read yet */
		if (!(q = calloc(1, sizeof *q)))
			return MHD_NO;
		*con_cls = q;
		if (is_classify && !strcmp(method, "POST")) {
			const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
			const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
			if (cl && strtoull(cl, NULL, 10) > limit) {
				snprintf(q->error, sizeof q->error, "body of %s bytes is over the limit of %zu", cl, limit);
				return reply_error(s, c, 413, q->error, 1);
			}
			/* curl's default for --data-binary is a form type: accept
			 * it as bytes, refuse only what is surely not an image. */
			if (ct && !type_ok(ct) && strncasecmp(ct, "application/x-www-form-urlencoded", 33)) {
				snprintf(q->error, sizeof q->error, "content type '%.80s' is not image/jpeg or image/png", ct);
				return reply_error(s, c, 415, q->error, 1);
			}
		}
		return MHD_YES;
	}
	if (*size) { /* a piece of the body */
		append(q, data, *size, limit);
		*size = 0;
		return MHD_YES;
	}
	if (is_classify) {
		if (strcmp(method, "POST"))
			return reply_error(s, c, 405, "use POST with a JPEG or PNG body", 1);
		if (q->status)
			return reply_error(s, c, q->status, q->error, 1);
		return classify(s, c, q);
	}
	if (!strcmp(url, "/healthz")) {
		fv_srv_model *m = fv_srv_models_acquire(s->models);
		char body[300];
		int st = m && !s->draining ? 200 : 503;
		snprintf(body, sizeof body, "{\"status\":\"%s\",\"version\":%u}\n",
			 s->draining ? "draining" : m ? "ok" : "no model", m ? m->version : 0);
		fv_srv_models_release(s->models, m);
		return reply(c, st, "application/json", body);
	}
	if (!strcmp(url, "/metrics")) {
		unsigned reloads, v;
		char *body = malloc(16384);
		if (!body)
			return MHD_NO;
		fv_srv_models_stats(s->models, &reloads, &v);
		fv_srv_metrics_text(&s->metrics, v, reloads, body, 16384);
		enum MHD_Result ret = reply(c, 200, "text/plain; version=0.0.4", body);
		free(body);
		return ret;
	}
	return reply_error(s, c, 404, "no such path: try POST /v1/classify, GET /healthz, GET /metrics", 1);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	(void)cls, (void)c, (void)toe;
	req *q = *con_cls;
	if (q) {
		free(q->buf);
		free(q);
		*con_cls = NULL;
	}
}

int fv_serve_http_start(fv_serve *s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)s->o->http_port) };
	if (inet_pton(AF_INET, s->o->http_addr, &sa.sin_addr) != 1)
		return fv_err_set(FV_E_CONFIG, "--http-addr %s: not an IPv4 address", s->o->http_addr);
	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, handler, s,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
		(unsigned)s->o->http_threads, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
		MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_END);
	if (!d)
		return fv_err_set(FV_E_CONFIG, "cannot listen on http://%s:%ld (in use?)", s->o->http_addr,
				  s->o->http_port);
	s->httpd = d;
	return 0;
}

void fv_serve_http_stop(fv_serve *s)
{
	if (s->httpd) {
		MHD_stop_daemon(s->httpd); /* joins the pool: requests in flight finish */
		s->httpd = NULL;
	}
}
