/* evaluator/oneshot.c — `fovea eval --db DIR --ckpt FILE`: score one
 * checkpoint on the val split and print the result, as a table or (--json)
 * as the same object eval.jsonl holds; --predictions writes "key label
 * predicted" per scored image, so anyone can recount top-1. */
#include "evaluator/daemon.h"
#include "evaluator/evaluator.h"
#include "fv_config.h"
#include "fv_daemon.h"
#include "fv_error.h"
#include "fv_log.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct eopts {
	char *db, *ckpt, *predictions, *augment_bind, *log_level;
	int json;
	long workers, worker_threads, threads, batch, window;
} eopts;

#define O(f) offsetof(eopts, f)
static const fv_cfg_opt table[] = {
	{ "db", FV_CFG_STR, O(db), NULL, 1, 0, NULL, "dataset directory; its val split is scored (required)" },
	{ "ckpt", FV_CFG_STR, O(ckpt), NULL, 1, 0, NULL, "checkpoint file (required)" },
	{ "json", FV_CFG_BOOL, O(json), "false", 0, 0, NULL, "print one JSON object (top1, top5, loss, ece, n, per_class, confusion)" },
	{ "predictions", FV_CFG_STR, O(predictions), "", 1, 0, NULL, "write 'key label predicted' per val image to this file" },
	{ "augment-bind", FV_CFG_STR, O(augment_bind), "", 1, 0, NULL, "broker endpoint for external augment workers (default: a private ipc path)" },
	{ "workers", FV_CFG_INT, O(workers), "1", 0, 256, NULL, "local augment workers to start when none connects (0 = wait for external ones)" },
	{ "worker-threads", FV_CFG_INT, O(worker_threads), "1", 1, 256, NULL, "threads of each local worker" },
	{ "threads", FV_CFG_INT, O(threads), "0", 0, 1024, NULL, "compute threads (0 = all cores)" },
	{ "batch", FV_CFG_INT, O(batch), "256", 1, 65536, NULL, "images per forward pass" },
	{ "window", FV_CFG_INT, O(window), "4", 1, 1024, NULL, "batches in flight to the augment workers" },
	{ "log-level", FV_CFG_STR, O(log_level), "warn", 1, 0, NULL, "error | warn | info | debug" },
	FV_CFG_END
};

static void print_table(const fv_eval_result *r)
{
	printf("%s: %llu val images\n", r->path, (unsigned long long)r->n);
	printf("top-1 %.4f  top-5 %.4f  loss %.4f  ECE %.4f\n", r->top1, r->top5, r->loss, r->ece);
	for (int c = 0; c < r->classes; c++) {
		const char *name = r->class_names && r->class_names[c][0] ? r->class_names[c] : "";
		if (isnan(r->per_class[c]))
			printf("  %3d %-24s      -\n", c, name);
		else
			printf("  %3d %-24s %6.4f\n", c, name, r->per_class[c]);
	}
}

int fv_evaluator_eval(int argc, char **argv)
{
	eopts o = { 0 };
	fv_evaluator *ev = NULL;
	fv_eval_result r = { 0 };
	FILE *pred = NULL;
	int npos = 0, help = 0, rc;

	fv_signals_install();
	fv_cfg_defaults(table, &o);
	if ((rc = fv_cfg_parse_args(table, &o, argc, argv, &npos, &help)))
		goto out;
	if (help) {
		printf("usage: fovea eval --db DIR --ckpt FILE [--json] [--predictions FILE]\n\noptions:\n");
		fv_cfg_help(table, stdout, 0);
		goto out;
	}
	int lvl = fv_log_level_parse(o.log_level);
	fv_log_set_level(lvl > 0 ? lvl : FV_LOG_WARN);
	if (npos == 1 && (!o.ckpt || !*o.ckpt)) { /* `fovea eval --db DIR FILE` */
		free(o.ckpt);
		o.ckpt = strdup(argv[1]);
	} else if (npos) {
		rc = fv_err_set(FV_E_CONFIG, "unexpected argument '%s'", argv[1]);
		goto out;
	}
	if (!o.db || !*o.db || !o.ckpt || !*o.ckpt) {
		rc = fv_err_set(FV_E_CONFIG, "--db DIR and --ckpt FILE are required");
		goto out;
	}
	if (*o.predictions && !(pred = fopen(o.predictions, "w"))) {
		rc = fv_err_set(errno, "%s: %s", o.predictions, strerror(errno));
		goto out;
	}
	fv_eval_opts eo = { .db = o.db, .augment_bind = o.augment_bind, .workers = (int)o.workers,
			    .worker_threads = (int)o.worker_threads, .wait_ms = *o.augment_bind || !o.workers ? 3000 : 0,
			    .threads = (int)o.threads, .batch = (int)o.batch, .window = (int)o.window,
			    .predictions = pred, .stop = &fv_stop_requested };
	if ((rc = fv_evaluator_new(&ev, &eo)))
		goto out;
	if ((rc = fv_evaluator_run(ev, o.ckpt, &r)))
		goto out;
	if (pred && fclose(pred)) {
		pred = NULL;
		rc = fv_err_set(errno, "%s: %s", o.predictions, strerror(errno));
		goto out;
	}
	pred = NULL;
	if (o.json) {
		fv_jsonw w;
		fv_jsonw_init(&w);
		if (!(rc = fv_eval_result_json(&r, &w)))
			printf("%s\n", w.buf);
		fv_jsonw_free(&w);
	} else {
		print_table(&r);
	}
out:
	if (rc)
		fprintf(stderr, "fovea eval: %s\n", fv_err_msg(rc));
	if (pred)
		fclose(pred);
	fv_eval_result_free(&r);
	fv_evaluator_destroy(&ev);
	fv_cfg_free(table, &o);
	return rc ? 1 : 0;
}
