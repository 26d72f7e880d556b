/* fovea-serve — answers classification requests over ZMQ (REP, protobuf
 * ClassifyRequest -> ClassifyReply) and HTTP (POST /v1/classify, GET
 * /healthz, GET /metrics) with the newest exported model, swapped in without
 * dropping a request when the exporter publishes one (ModelExported), on
 * SIGHUP, or when MODELDIR/current changes. `fovea-serve classify` is the
 * command-line client (`fovea classify`). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "fv_config.h"
#include "fv_daemon.h"
#include "fv_error.h"
#include "fv_log.h"
#include "serve/serve.h"

#define O(f) offsetof(fv_serve_opts, f)
const fv_cfg_opt fv_serve_opts_table[] = {
	{ "model-dir", FV_CFG_STR, O(model_dir), "", 1, 0, NULL, "model directory written by fovea-exporter (MODELDIR/current -> vN)" },
	{ "model", FV_CFG_STR, O(model), "", 1, 0, NULL, "serve this .fovea file instead (reloaded on SIGHUP)" },
	{ "precision", FV_CFG_ENUM, O(fp32), "int8", 0, 0, "int8|fp32", "which export to serve from a model directory" },
	{ "zmq", FV_CFG_STR, O(zmq), "", 1, 0, NULL, "REP endpoint for ClassifyRequest (e.g. ipc://STATE/serve.sock; empty = off)" },
	{ "sub", FV_CFG_STR, O(sub), "", 1, 0, NULL, "exporter PUB endpoint for ModelExported (default ipc://MODELDIR/export.sock)" },
	{ "http-addr", FV_CFG_STR, O(http_addr), "127.0.0.1", 1, 0, NULL, "IPv4 address HTTP listens on" },
	{ "http-port", FV_CFG_INT, O(http_port), "8080", 0, 65535, NULL, "HTTP port (0 = no HTTP)" },
	{ "http-threads", FV_CFG_INT, O(http_threads), "2", 1, 256, NULL, "HTTP worker threads" },
	{ "max-body-kb", FV_CFG_INT, O(max_body_kb), "16384", 1, 1 << 20, NULL, "largest request body accepted (413 above)" },
	{ "max-mpixels", FV_CFG_INT, O(max_mpixels), "40", 1, 10000, NULL, "largest image accepted, in megapixels (413 above)" },
	{ "threads", FV_CFG_INT, O(threads), "1", 0, 1024, NULL, "runtime threads per model (0 = all cores)" },
	{ "top-k", FV_CFG_INT, O(top_k), "5", 1, FV_SERVE_TOPK_MAX, NULL, "predictions per HTTP answer" },
	{ "watch-ms", FV_CFG_INT, O(watch_ms), "2000", 0, 3600000, NULL, "look for a new MODELDIR/current this often (0 = only on events and SIGHUP)" },
	{ "stats", FV_CFG_STR, O(stats), "", 1, 0, NULL, "write request counts and rate here every second (JSON, for fovea status)" },
	{ "status-endpoint", FV_CFG_STR, O(status_ep), "", 1, 0, NULL, "answer fovea status here (tcp://*:5570, ipc://PATH; empty = off)" },
	{ "log-level", FV_CFG_ENUM, O(log_level), "info", 0, 0, "error|warn|info|debug", "log verbosity" },
	FV_CFG_END,
};

int main(int argc, char **argv)
{
	static const int levels[] = { FV_LOG_ERR, FV_LOG_WARN, FV_LOG_INFO, FV_LOG_DEBUG };
	fv_serve_opts o = { 0 };
	fv_serve s = { 0 };
	void *ctx = NULL;
	int npos = 0, help = 0, rc = 1, e;
	if (argc > 1 && !strcmp(argv[1], "classify"))
		return fv_serve_classify_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "--help-markdown")) {
		fv_cfg_help(fv_serve_opts_table, stdout, 1);
		return 0;
	}
	fv_cfg_defaults(fv_serve_opts_table, &o);
	if (fv_cfg_parse_args(fv_serve_opts_table, &o, argc, argv, &npos, &help) || help || npos) {
		if (!help)
			fprintf(stderr, "fovea-serve: %s\n", npos ? "unexpected argument" : fv_err_msg(FV_E_CONFIG));
		fprintf(help ? stdout : stderr, "usage: fovea-serve [-c FILE] [options]\n"
			"       fovea-serve classify [--model FILE | --model-dir DIR | --endpoint E] IMAGE...\n\n");
		fv_cfg_help(fv_serve_opts_table, help ? stdout : stderr, 0);
		fv_cfg_free(fv_serve_opts_table, &o);
		return help ? 0 : 2;
	}
	fv_log_init("fovea-serve", levels[o.log_level]);
	fv_signals_install();
	s.o = &o;
	fv_srv_metrics_init(&s.metrics);
	if (!*o.model && !*o.model_dir) {
		fv_err("give --model-dir DIR (an exporter's output) or --model FILE");
		goto out;
	}
	if ((e = fv_srv_models_new(&s.models, o.model_dir, o.model, o.fp32, (int)o.threads))) {
		fv_err("%s", fv_err_msg(e));
		goto out;
	}
	/* A missing model is not fatal: the server waits for the first export. */
	e = fv_srv_models_reload(s.models, 1, NULL);
	if (e == FV_E_NOTFOUND)
		fv_warn("%s; answering 503 until one is exported", fv_err_msg(e));
	else if (e) {
		fv_err("%s", fv_err_msg(e));
		goto out;
	}
	if (o.http_port && (e = fv_serve_http_start(&s))) {
		fv_err("%s", fv_err_msg(e));
		goto out;
	}
	if (!(ctx = zmq_ctx_new()))
		goto out;
	if ((e = fv_serve_zmq_loop(&s, ctx))) {
		fv_err("%s", fv_err_msg(e));
		goto out;
	}
	fv_info("stopping: %llu requests answered", (unsigned long long)fv_srv_metrics_total(&s.metrics));
	rc = 0;
out:
	s.draining = 1;
	fv_serve_http_stop(&s); /* requests in flight finish first */
	if (ctx)
		zmq_ctx_term(ctx);
	fv_srv_models_destroy(&s.models);
	fv_srv_metrics_fini(&s.metrics);
	fv_cfg_free(fv_serve_opts_table, &o);
	return rc;
}
