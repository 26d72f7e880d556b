/* fovea-exporter — checkpoints to deployable INT8 models.
 *
 *   fovea export --ckpt FILE --db DIR --out MODELDIR [options]   one export
 *   fovea-exporter --watch RUNDIR --db DIR --out MODELDIR        the daemon (-c FILE too)
 *   fovea-exporter predict --model FILE.fovea --db DIR [--inputs-out F --labels-out F]
 *
 * The daemon subscribes to the evaluator's NewBest (default
 * ipc://RUNDIR/eval.sock) and also polls RUNDIR/champion.fvc, so a missed
 * event or a late start only delays an export: on start, and whenever the
 * champion changes, it exports the champion if its step differs from
 * MODELDIR/current's. Each publish is announced as ModelExported on --pub
 * (default ipc://MODELDIR/export.sock). See export.h for the steps. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "exporter/export.h"
#include "fovea.pb-c.h"
#include "fv_config.h"
#include "fv_daemon.h"
#include "fv_error.h"
#include "fv_log.h"
#include "fv_msg.h"
#include "fv_status.h"
#include "nn/ckpt.h"

typedef struct xopts {
	char *ckpt, *db, *out, *watch, *sub, *pub, *log_level, *status_ep;
	int calib, json;
	double max_drop, percentile;
	long calib_images, select_images, val_images, threads, seed, poll_ms;
} xopts;

#define O(f) offsetof(xopts, f)
static const fv_cfg_opt opts[] = {
	{ "ckpt", FV_CFG_STR, O(ckpt), "", 1, 0, NULL, "export: the checkpoint to export" },
	{ "db", FV_CFG_STR, O(db), "", 1, 0, NULL, "dataset directory (train: calibration, val: verification)" },
	{ "out", FV_CFG_STR, O(out), "", 1, 0, NULL, "model directory: vN/ per export, current -> the latest" },
	{ "watch", FV_CFG_STR, O(watch), "", 1, 0, NULL, "daemon: the run directory whose champion to export" },
	{ "sub", FV_CFG_STR, O(sub), "", 1, 0, NULL, "daemon: evaluator PUB endpoint (default ipc://RUNDIR/eval.sock)" },
	{ "pub", FV_CFG_STR, O(pub), "", 1, 0, NULL, "daemon: PUB endpoint for ModelExported (default ipc://OUT/export.sock)" },
	{ "max-drop", FV_CFG_DOUBLE, O(max_drop), "1.0", -100, 100, NULL, "refuse to publish when INT8 top-1 is more than this many points below FP32 (negative: demand a gain)" },
	{ "calib", FV_CFG_ENUM, O(calib), "auto", 0, 0, "auto|minmax|percentile|entropy", "activation calibration; auto: the one that loses least on val" },
	{ "percentile", FV_CFG_DOUBLE, O(percentile), "99.99", 50, 100, NULL, "percentile for --calib percentile" },
	{ "calib-images", FV_CFG_INT, O(calib_images), "1024", 1, 1000000, NULL, "train images for calibration" },
	{ "select-images", FV_CFG_INT, O(select_images), "2000", 0, 100000000, NULL, "val images used to choose the calibration (0 = all)" },
	{ "val-images", FV_CFG_INT, O(val_images), "0", 0, 100000000, NULL, "val images for the verification (0 = all)" },
	{ "threads", FV_CFG_INT, O(threads), "0", 0, 1024, NULL, "runtime threads (0 = all cores)" },
	{ "seed", FV_CFG_INT, O(seed), "1", 1, 1e18, NULL, "calibration subset seed" },
	{ "poll-ms", FV_CFG_INT, O(poll_ms), "2000", 50, 3600000, NULL, "daemon: how often to look at RUNDIR/champion.fvc" },
	{ "status-endpoint", FV_CFG_STR, O(status_ep), "", 1, 0, NULL, "daemon: answer fovea status here (tcp://*:5570, ipc://PATH; empty = off)" },
	{ "json", FV_CFG_BOOL, O(json), "0", 0, 0, NULL, "export: print the result as one JSON line" },
	{ "log-level", FV_CFG_STR, O(log_level), "info", 1, 0, NULL, "error|warn|info|debug" },
	FV_CFG_END,
};

static void to_export(const xopts *x, fv_export_opts *e)
{
	*e = (fv_export_opts){ .ckpt = x->ckpt, .db = x->db, .out = x->out, .max_drop = x->max_drop,
			       .calib = x->calib, .percentile = x->percentile,
			       .calib_images = x->calib_images, .select_images = x->select_images,
			       .val_images = x->val_images, .threads = x->threads, .seed = x->seed };
}

static void print_result(const fv_export_result *r, int json, FILE *f)
{
	if (json) {
		fprintf(f, "{\"published\":%s,\"dir\":\"%s\",\"version\":%u,\"step\":%llu,\"calibration\":\"%s\","
			"\"top1_fp32\":%.6f,\"top1_int8\":%.6f,\"agreement\":%.6f,\"val_images\":%llu,"
			"\"size_fovea\":%zu,\"size_fovea_fp32\":%zu,\"size_onnx\":%zu,\"size_onnx_fp32\":%zu,"
			"\"minmax\":%.6f,\"percentile\":%.6f,\"entropy\":%.6f,\"seconds\":%.2f}\n",
			r->published ? "true" : "false", r->dir, r->version, (unsigned long long)r->step, r->calib,
			r->top1_fp32, r->top1_int8, r->agree, (unsigned long long)r->val_n, r->size_fovea,
			r->size_fovea_fp32, r->size_onnx, r->size_onnx_fp32, r->method_top1[0],
			r->method_top1[1], r->method_top1[2], r->seconds);
		return;
	}
	fprintf(f, "%s %s (v%u, step %llu, calibration %s, %.1f s)\n", r->published ? "published" : "refused",
		r->dir, r->version, (unsigned long long)r->step, r->calib, r->seconds);
	fprintf(f, "top-1 on %llu val images: fp32 %.2f%%  int8 %.2f%%  (same label %.2f%%)\n",
		(unsigned long long)r->val_n, r->top1_fp32 * 100, r->top1_int8 * 100, r->agree * 100);
	fprintf(f, "sizes: model.fovea %zu  model-fp32.fovea %zu (%.2fx)  model.onnx %zu  model-fp32.onnx %zu\n",
		r->size_fovea, r->size_fovea_fp32, r->size_fovea ? (double)r->size_fovea_fp32 / r->size_fovea : 0,
		r->size_onnx, r->size_onnx_fp32);
}

static int oneshot(xopts *x)
{
	if (!*x->ckpt || !*x->db || !*x->out) {
		fprintf(stderr, "fovea export: --ckpt, --db and --out are required (see --help)\n");
		return 2;
	}
	fv_export_opts e;
	fv_export_result r;
	to_export(x, &e);
	int rc = fv_export_run(&e, &r);
	if (rc == 0 || rc == FV_E_MISMATCH)
		print_result(&r, x->json, stdout);
	if (rc) {
		fprintf(stderr, "fovea export: %s\n", fv_err_msg(rc));
		return 1;
	}
	return 0;
}

/* ---------------------------------------------------------------- daemon */

static void announce(void *pub, uint64_t *seq, const fv_export_opts *e, const fv_export_result *r)
{
	Fovea__ModelExported m = FOVEA__MODEL_EXPORTED__INIT;
	m.dir = (char *)r->dir, m.version = r->version, m.source = e->ckpt;
	m.step = r->step, m.dataset_version = r->dataset_version, m.model = (char *)r->model;
	m.top1_fp32 = (float)r->top1_fp32, m.top1_int8 = (float)r->top1_int8, m.val_images = r->val_n;
	m.calibration = (char *)r->calib;
	m.size_int8 = r->size_fovea, m.size_fp32 = r->size_fovea_fp32;
	m.size_onnx = r->size_onnx, m.size_onnx_fp32 = r->size_onnx_fp32;
	m.agreement = (float)r->agree;
	fv_msg_send(pub, NULL, 0, FOVEA__MSG_TYPE__MSG_MODEL_EXPORTED, 1, ++*seq, &m.base, ZMQ_DONTWAIT);
}

/* What the daemon tells its status endpoint (filled on its own thread). */
static struct {
	const xopts *x;
	fv_status *status;
	uint64_t exporting, last_refused;
	double top1_fp32, top1_int8;
	char last_error[200];
} live;

static void status_fill(void *ctx, fv_status_figs *f)
{
	(void)ctx;
	char source[4200];
	uint64_t step = fv_export_current_step(live.x->out, source, sizeof source);
	char link[4300], target[64];
	snprintf(link, sizeof link, "%s/current", live.x->out);
	ssize_t n = readlink(link, target, sizeof target - 1);
	target[n > 0 ? n : 0] = 0;
	fv_status_num(f, "model.version", target[0] == 'v' ? strtod(target + 1, NULL) : 0);
	fv_status_num(f, "model.step", (double)step);
	if (live.top1_int8 > 0) {
		fv_status_num(f, "model.top1_fp32", live.top1_fp32);
		fv_status_num(f, "model.top1_int8", live.top1_int8);
	}
	fv_status_str(f, "exporter.state", "%s", live.exporting ? "exporting" : "idle");
	if (live.exporting)
		fv_status_num(f, "exporter.exporting_step", (double)live.exporting);
	if (live.last_refused) {
		fv_status_num(f, "exporter.refused_step", (double)live.last_refused);
		fv_status_str(f, "exporter.refused", "%s", live.last_error);
	}
}

/* The champion's step, or 0 when there is none (yet). */
static uint64_t champion_step(const char *path)
{
	fv_ckpt *c = NULL;
	if (fv_ckpt_open(&c, path))
		return 0;
	uint64_t s = fv_ckpt_info_get(c)->step;
	fv_ckpt_close(&c);
	return s;
}

static void maybe_export(xopts *x, const char *champ, uint64_t *done, uint64_t *refused, void *pub,
			 uint64_t *seq)
{
	uint64_t step = champion_step(champ);
	if (!step || step == *done || step == *refused)
		return;
	fv_export_opts e;
	fv_export_result r;
	to_export(x, &e);
	e.ckpt = (char *)champ;
	fv_info("exporting %s (step %llu)", champ, (unsigned long long)step);
	live.exporting = step;
	fv_status_update(live.status, 1); /* answered from this while the export runs */
	int rc = fv_export_run(&e, &r);
	live.exporting = 0;
	if (rc) {
		live.last_refused = step;
		snprintf(live.last_error, sizeof live.last_error, "%s", fv_err_msg(rc));
		fv_status_update(live.status, 1);
		fv_err("export of step %llu failed: %s", (unsigned long long)step, fv_err_msg(rc));
		*refused = step; /* retried when the champion changes, not in a loop */
		return;
	}
	*done = step;
	live.top1_fp32 = r.top1_fp32;
	live.top1_int8 = r.top1_int8;
	fv_status_update(live.status, 1);
	fv_info("published %s: top-1 fp32 %.4f int8 %.4f (%s), %zu bytes", r.dir, r.top1_fp32, r.top1_int8,
		r.calib, r.size_fovea);
	fv_sd_status("v%u from step %llu", r.version, (unsigned long long)step);
	announce(pub, seq, &e, &r);
}

static int daemon_run(xopts *x)
{
	if (!*x->watch || !*x->db || !*x->out) {
		fprintf(stderr, "fovea-exporter: --watch RUNDIR, --db and --out are required (see --help)\n");
		return 2;
	}
	char champ[4200], sub_ep[4300], pub_ep[4300];
	snprintf(champ, sizeof champ, "%s/champion.fvc", x->watch);
	snprintf(sub_ep, sizeof sub_ep, "%s", *x->sub ? x->sub : "");
	if (!*x->sub)
		snprintf(sub_ep, sizeof sub_ep, "ipc://%s/eval.sock", x->watch);
	if (mkdir(x->out, 0755) && errno != EEXIST) {
		fv_err("%s: %s", x->out, strerror(errno));
		return 1;
	}
	snprintf(pub_ep, sizeof pub_ep, "%s", x->pub);
	if (!*x->pub)
		snprintf(pub_ep, sizeof pub_ep, "ipc://%s/export.sock", x->out);
	fv_signals_install();
	void *ctx = zmq_ctx_new(), *sub = zmq_socket(ctx, ZMQ_SUB), *pub = zmq_socket(ctx, ZMQ_PUB);
	int rc = 1;
	fv_sock_limit(sub, 0);
	fv_sock_limit(pub, 0);
	zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
	if (zmq_connect(sub, sub_ep) || zmq_bind(pub, pub_ep)) {
		fv_err("cannot connect %s / bind %s: %s", sub_ep, pub_ep, zmq_strerror(zmq_errno()));
		goto out;
	}
	live.x = x;
	fv_status_opts so = { .endpoint = x->status_ep, .name = "exporter", .fill = status_fill };
	if ((rc = fv_status_new(&live.status, ctx, &so))) {
		fv_err("%s", fv_err_msg(rc));
		rc = 1;
		goto out;
	}
	fv_status_update(live.status, 1);
	uint64_t done = fv_export_current_step(x->out, NULL, 0), refused = 0, seq = 0;
	fv_info("watching %s (events from %s), publishing to %s on %s; current export: step %llu", champ,
		sub_ep, x->out, pub_ep, (unsigned long long)done);
	fv_sd_ready();
	int64_t next = 0;
	while (!fv_stop_requested) {
		zmq_pollitem_t it = { .socket = sub, .events = ZMQ_POLLIN };
		int64_t wait = next - fv_now_ms();
		zmq_poll(&it, 1, wait > 0 ? (long)(wait > 250 ? 250 : wait) : 0);
		fv_sd_watchdog_tick();
		fv_status_update(live.status, 0);
		int hint = 0;
		while (it.revents & ZMQ_POLLIN) {
			fv_msg m;
			if (fv_msg_recv(sub, &m, ZMQ_DONTWAIT))
				break;
			hint |= m.env && m.env->type == FOVEA__MSG_TYPE__MSG_NEW_BEST;
			fv_msg_clear(&m);
		}
		/* Events are hints; the champion file is the truth (DESIGN.md "Events"). */
		if (hint || fv_now_ms() >= next) {
			maybe_export(x, champ, &done, &refused, pub, &seq);
			next = fv_now_ms() + x->poll_ms;
		}
	}
	rc = 0;
	fv_sd_stopping();
out:
	fv_status_destroy(&live.status);
	zmq_close(sub);
	zmq_close(pub);
	zmq_ctx_term(ctx);
	return rc;
}

int fv_exporter_predict(int argc, char **argv); /* predict.c */

int main(int argc, char **argv)
{
	fv_log_init("fovea-exporter", FV_LOG_INFO);
	if (argc > 1 && !strcmp(argv[1], "predict"))
		return fv_exporter_predict(argc - 1, argv + 1);
	int export = argc > 1 && !strcmp(argv[1], "export");
	if (export)
		argc--, argv++;
	xopts x;
	int npos = 0, help = 0;
	fv_cfg_defaults(opts, &x);
	int rc = fv_cfg_parse_args(opts, &x, argc, argv, &npos, &help);
	if (rc) {
		fprintf(stderr, "%s: %s\n", export ? "fovea export" : "fovea-exporter", fv_err_msg(rc));
		fv_cfg_free(opts, &x);
		return 2;
	}
	if (help) {
		printf("usage: fovea export --ckpt FILE --db DIR --out MODELDIR [options]\n"
		       "       fovea-exporter --watch RUNDIR --db DIR --out MODELDIR [options] (or -c FILE)\n\n");
		fv_cfg_help(opts, stdout, 0);
		fv_cfg_free(opts, &x);
		return 0;
	}
	if (npos) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", export ? "fovea export" : "fovea-exporter", argv[1]);
		fv_cfg_free(opts, &x);
		return 2;
	}
	int lvl = fv_log_level_parse(x.log_level);
	if (lvl >= 0)
		fv_log_set_level(lvl);
	rc = export ? oneshot(&x) : daemon_run(&x);
	fv_cfg_free(opts, &x);
	return rc;
}
