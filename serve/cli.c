/* serve/cli.c — `fovea classify [--model FILE | --model-dir DIR |
 * --endpoint E] IMAGE...`: the top-5 of each image, run here on a model
 * file or asked of a running fovea-serve over ZMQ. Human lines by default,
 * one JSON object per image with --json (the HTTP answer's shape). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "fv_config.h"
#include "fv_error.h"
#include "fv_json.h"
#include "fv_log.h"
#include "fv_msg.h"
#include "serve/serve.h"

typedef struct copts {
	char *model, *model_dir, *endpoint;
	int fp32, json;
	long top_k, timeout_ms, max_mpixels, threads;
} copts;

#define O(f) offsetof(copts, f)
static const fv_cfg_opt opts[] = {
	{ "model", FV_CFG_STR, O(model), "", 1, 0, NULL, "a .fovea model file" },
	{ "model-dir", FV_CFG_STR, O(model_dir), "", 1, 0, NULL, "a model directory (its current export)" },
	{ "precision", FV_CFG_ENUM, O(fp32), "int8", 0, 0, "int8|fp32", "which export of a model directory" },
	{ "endpoint", FV_CFG_STR, O(endpoint), "", 1, 0, NULL, "ask a fovea-serve at this ZMQ endpoint instead" },
	{ "top-k", FV_CFG_INT, O(top_k), "5", 1, FV_SERVE_TOPK_MAX, NULL, "predictions per image" },
	{ "timeout-ms", FV_CFG_INT, O(timeout_ms), "10000", 1, 3600000, NULL, "endpoint: give up after this long" },
	{ "max-mpixels", FV_CFG_INT, O(max_mpixels), "100", 1, 10000, NULL, "largest image, in megapixels" },
	{ "threads", FV_CFG_INT, O(threads), "1", 0, 1024, NULL, "runtime threads (0 = all cores)" },
	{ "json", FV_CFG_BOOL, O(json), "false", 0, 0, NULL, "one JSON object per image" },
	FV_CFG_END,
};

static int read_file(const char *path, char **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	*buf = NULL, *len = 0;
	if (!f)
		return fv_err_set(errno, "%s: %s", path, strerror(errno));
	size_t cap = 0;
	for (;;) {
		if (*len == cap) {
			char *nb = realloc(*buf, cap = cap ? cap * 2 : 1 << 16);
			if (!nb) {
				fclose(f);
				return fv_err_set(ENOMEM, "%s: out of memory", path);
			}
			*buf = nb;
		}
		size_t n = fread(*buf + *len, 1, cap - *len, f);
		*len += n;
		if (n == 0)
			break;
	}
	int rc = ferror(f) ? fv_err_set(EIO, "%s: read error", path) : 0;
	fclose(f);
	return rc;
}

/* Ask the server over a fresh REQ socket (a lost reply cannot wedge it). */
static int ask(void *ctx, const copts *o, const char *img, size_t len, fv_serve_result *r)
{
	void *req = zmq_socket(ctx, ZMQ_REQ);
	int rc, to = (int)o->timeout_ms;
	fv_msg m = { 0 };
	Fovea__ClassifyRequest q = FOVEA__CLASSIFY_REQUEST__INIT;
	Fovea__ClassifyReply *a = NULL;
	fv_sock_limit(req, 1 << 20);
	zmq_setsockopt(req, ZMQ_RCVTIMEO, &to, sizeof to);
	if (zmq_connect(req, o->endpoint)) {
		rc = fv_err_set(FV_E_ZMQ, "%s: %s", o->endpoint, zmq_strerror(errno));
		goto out;
	}
	q.image.data = (uint8_t *)img, q.image.len = len;
	q.top_k = (uint32_t)o->top_k;
	if ((rc = fv_msg_send(req, NULL, 0, FOVEA__MSG_TYPE__MSG_CLASSIFY_REQUEST, 1, 1,
			      (ProtobufCMessage *)&q, 0)))
		goto out;
	if ((rc = fv_msg_recv(req, &m, 0))) {
		rc = fv_err_set(FV_E_TIMEOUT, "%s: no answer within %ld ms", o->endpoint, o->timeout_ms);
		goto out;
	}
	if (m.type != FOVEA__MSG_TYPE__MSG_CLASSIFY_REPLY ||
	    (rc = fv_msg_unpack(&m, &fovea__classify_reply__descriptor, 0, (ProtobufCMessage **)&a))) {
		rc = fv_err_set(FV_E_PROTO, "%s: not a ClassifyReply", o->endpoint);
		goto out;
	}
	r->rc = a->code;
	snprintf(r->error, sizeof r->error, "%s", a->error ? a->error : "");
	snprintf(r->model, sizeof r->model, "%s", a->model ? a->model : "");
	r->version = a->model_version;
	r->n = a->n_top > FV_SERVE_TOPK_MAX ? FV_SERVE_TOPK_MAX : (int)a->n_top;
	for (int i = 0; i < r->n; i++) {
		r->top[i].label = (int)a->top[i]->label;
		r->top[i].score = a->top[i]->score;
		snprintf(r->names[i], sizeof r->names[i], "%s", a->top[i]->name ? a->top[i]->name : "");
		r->top[i].name = r->names[i];
	}
	rc = 0;
out:
	if (a)
		protobuf_c_message_free_unpacked((ProtobufCMessage *)a, NULL);
	fv_msg_clear(&m);
	zmq_close(req);
	return rc;
}

static void print(const copts *o, const char *image, const fv_serve_result *r)
{
	if (o->json) {
		char esc[4200], body[8192];
		fv_json_escape(esc, sizeof esc, image);
		fv_srv_json(body, sizeof body, r->model, r->version, r->top, r->n);
		printf("{\"image\":\"%s\",%s\n", esc, body + 1);
		return;
	}
	printf("%s  (%s)\n", image, r->model);
	for (int i = 0; i < r->n; i++)
		printf("  %d. %-4d %-24s %.4f\n", i + 1, r->top[i].label, r->top[i].name, r->top[i].score);
}

int fv_serve_classify_main(int argc, char **argv)
{
	copts o = { 0 };
	int npos = 0, help = 0, rc = 1, failed = 0;
	void *ctx = NULL;
	fv_srv_models *models = NULL;
	fv_srv_model *mdl = NULL;
	fv_serve_result *r = calloc(1, sizeof *r);
	fv_log_init("fovea classify", FV_LOG_WARN);
	fv_cfg_defaults(opts, &o);
	if (!r || fv_cfg_parse_args(opts, &o, argc, argv, &npos, &help) || help || !npos ||
	    (!*o.model && !*o.model_dir && !*o.endpoint)) {
		if (!help && r)
			fprintf(stderr, "fovea classify: %s\n",
				!npos ? "give one or more images" : "give --model, --model-dir or --endpoint");
		fprintf(help ? stdout : stderr,
			"usage: fovea classify [--model FILE | --model-dir DIR | --endpoint E] IMAGE...\n\n");
		fv_cfg_help(opts, help ? stdout : stderr, 0);
		rc = help ? 0 : 2;
		goto out;
	}
	int e;
	if (*o.endpoint) {
		ctx = zmq_ctx_new();
	} else if ((e = fv_srv_models_new(&models, o.model_dir, o.model, o.fp32, (int)o.threads)) ||
		   (e = fv_srv_models_reload(models, 1, NULL))) {
		fprintf(stderr, "fovea classify: %s\n", fv_err_msg(e));
		goto out;
	} else {
		mdl = fv_srv_models_acquire(models);
	}
	for (int i = 1; i <= npos; i++) {
		char *buf = NULL;
		size_t len = 0;
		memset(r, 0, sizeof *r);
		if (!(e = read_file(argv[i], &buf, &len))) {
			if (ctx) {
				e = ask(ctx, &o, buf, len, r);
			} else {
				e = r->rc = fv_srv_classify(mdl, buf, len, (uint64_t)o.max_mpixels * 1000000u,
							    (int)o.top_k, r->top, &r->n);
				const char *p = mdl->path + strlen(mdl->path);
				int sl = 0;
				while (p > mdl->path && sl < 2)
					sl += *--p == '/';
				snprintf(r->model, sizeof r->model, "%s", sl == 2 ? p + 1 : p);
				r->version = mdl->version;
			}
			if (!e && r->rc)
				fv_err_set(r->rc, "%s", r->error);
			e = e ? e : r->rc;
		}
		free(buf);
		if (e) {
			fprintf(stderr, "fovea classify: %s: %s\n", argv[i], ctx ? r->error[0] ? r->error : fv_err_msg(e)
									     : fv_err_msg(e));
			failed++;
			continue;
		}
		print(&o, argv[i], r);
	}
	rc = failed ? 1 : 0;
out:
	fv_srv_models_release(models, mdl);
	fv_srv_models_destroy(&models);
	if (ctx)
		zmq_ctx_term(ctx);
	free(r);
	fv_cfg_free(opts, &o);
	return rc;
}
