/* serve/serve.h — fovea-serve's parts as one server: options, the model
 * registry, the counters, and the two front ends (HTTP in http.c, ZMQ and
 * the reload subscription in zmq.c) that share one answer path. */
#ifndef FV_SERVE_H
#define FV_SERVE_H

#include <stddef.h>

#include "fv_config.h"
#include "serve/metrics.h"
#include "serve/model.h"

typedef struct fv_serve_opts {
	char *model_dir, *model, *zmq, *sub, *http_addr, *stats, *status_ep;
	int fp32, log_level;
	long http_port, http_threads, max_body_kb, max_mpixels, threads, top_k, watch_ms;
} fv_serve_opts;

extern const fv_cfg_opt fv_serve_opts_table[];

typedef struct fv_serve {
	const fv_serve_opts *o;
	fv_srv_models *models;
	fv_srv_metrics metrics;
	void *httpd;             /* struct MHD_Daemon */
	volatile int draining;
} fv_serve;

#define FV_SERVE_TOPK_MAX 16

/* One request's answer, independent of the transport. */
typedef struct fv_serve_result {
	int status;              /* HTTP-style: 200, 400, 413, 415, 503 ... */
	int rc;                  /* 0 or the error code */
	char error[256];
	char model[256];         /* the last two path components of the model file */
	unsigned version;
	int n;
	fv_srv_pred top[FV_SERVE_TOPK_MAX]; /* names point into names[] */
	char names[FV_SERVE_TOPK_MAX][128];
	double seconds;
} fv_serve_result;

/* Classify bytes with the model answering now; counts it in metrics. */
void fv_serve_answer(fv_serve *s, int transport, const void *buf, size_t len, int k,
		     fv_serve_result *r);
/* The HTTP status for an fv_srv_classify error code. */
int fv_serve_status_of(int rc);

int fv_serve_http_start(fv_serve *s);
void fv_serve_http_stop(fv_serve *s);

/* The ZMQ side: REP socket + SUB for ModelExported; runs until
 * fv_stop_requested, reloading on events, SIGHUP and a periodic look at
 * MODELDIR/current. ctx is a zmq context. */
int fv_serve_zmq_loop(fv_serve *s, void *ctx);

/* `fovea classify`: top-5 per image, from a model file or an endpoint. */
int fv_serve_classify_main(int argc, char **argv);

#endif
