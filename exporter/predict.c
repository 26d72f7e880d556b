/* exporter/predict.c — `fovea-exporter predict`: run a .fovea model on a
 * split of the dataset, print its top-1, and optionally write the inputs
 * (float32 NCHW raw pixels, the ONNX models' input) and the predicted labels
 * (one per line) — what the ONNX agreement test compares against. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exporter/runtime.h"
#include "exporter/xdata.h"
#include "fv_config.h"
#include "fv_error.h"
#include "fv_score.h"

typedef struct popts {
	char *model, *db, *inputs_out, *labels_out;
	int split;
	long images, threads;
} popts;

#define O(f) offsetof(popts, f)
static const fv_cfg_opt opts[] = {
	{ "model", FV_CFG_STR, O(model), "", 1, 0, NULL, "the .fovea model" },
	{ "db", FV_CFG_STR, O(db), "", 1, 0, NULL, "dataset directory" },
	{ "split", FV_CFG_ENUM, O(split), "val", 0, 0, "train|val|test", "split to run on" },
	{ "images", FV_CFG_INT, O(images), "0", 0, 1e9, NULL, "evenly spaced images of the split (0 = all)" },
	{ "threads", FV_CFG_INT, O(threads), "0", 0, 1024, NULL, "runtime threads (0 = all cores)" },
	{ "inputs-out", FV_CFG_STR, O(inputs_out), "", 1, 0, NULL, "write the inputs here (float32 NCHW, 0..255)" },
	{ "labels-out", FV_CFG_STR, O(labels_out), "", 1, 0, NULL, "write the predicted labels here, one per line" },
	FV_CFG_END,
};

static int write_inputs(const char *path, const fv_xdata *d)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return 1;
	size_t hw = (size_t)d->h * d->w, per = hw * d->c;
	float *x = malloc(sizeof *x * per);
	for (size_t i = 0; x && i < d->n; i++) {
		for (size_t p = 0; p < hw; p++)
			for (int c = 0; c < d->c; c++)
				x[c * hw + p] = d->px[i * per + p * d->c + c];
		fwrite(x, sizeof *x, per, f);
	}
	free(x);
	return fclose(f) != 0 || !x;
}

int fv_exporter_predict(int argc, char **argv)
{
	popts o;
	int npos = 0, help = 0, rc = 1;
	fv_rt *rt = NULL;
	fv_xdata d = { 0 };
	fv_score s = { 0 };
	float *logits = NULL;
	int *pred = NULL;
	fv_cfg_defaults(opts, &o);
	if (fv_cfg_parse_args(opts, &o, argc, argv, &npos, &help) || help || !*o.model || !*o.db) {
		if (!help)
			fprintf(stderr, "fovea-exporter predict: %s\n", *o.model && *o.db ? fv_err_msg(FV_E_CONFIG)
							: "--model and --db are required");
		fv_cfg_help(opts, help ? stdout : stderr, 0);
		fv_cfg_free(opts, &o);
		return help ? 0 : 2;
	}
	int e;
	if ((e = fv_rt_open(&rt, o.model))) {
		fprintf(stderr, "fovea-exporter predict: %s\n", fv_err_msg(e));
		goto out;
	}
	const fv_rt_info *in = fv_rt_info_get(rt);
	fv_rt_set_threads(rt, (int)o.threads);
	if ((e = fv_xdata_load(o.db, (uint32_t)o.split, o.images, 0, in->in_c, in->in_h, in->in_w,
			       in->resize_shorter, &d))) {
		fprintf(stderr, "fovea-exporter predict: %s\n", fv_err_msg(e));
		goto out;
	}
	logits = malloc(sizeof *logits * d.n * (size_t)in->classes);
	pred = malloc(sizeof *pred * d.n);
	if (!logits || !pred || fv_score_init(&s, in->classes) ||
	    fv_rt_run_u8(rt, d.px, (int)d.n, logits)) {
		fprintf(stderr, "fovea-exporter predict: out of memory for %zu images\n", d.n);
		goto out;
	}
	fv_score_add(&s, logits, d.labels, (int)d.n, pred);
	printf("top-1 %.4f on %zu images (%s, %s)\n", fv_score_top1(&s), d.n, o.model,
	       in->dtype == FV_RT_INT8 ? "int8" : "fp32");
	if (*o.inputs_out && write_inputs(o.inputs_out, &d)) {
		fprintf(stderr, "fovea-exporter predict: cannot write %s\n", o.inputs_out);
		goto out;
	}
	if (*o.labels_out) {
		FILE *f = fopen(o.labels_out, "w");
		for (size_t i = 0; f && i < d.n; i++)
			fprintf(f, "%d\n", pred[i]);
		if (!f || fclose(f)) {
			fprintf(stderr, "fovea-exporter predict: cannot write %s\n", o.labels_out);
			goto out;
		}
	}
	rc = 0;
out:
	if (s.confusion)
		fv_score_free(&s);
	free(logits), free(pred);
	fv_xdata_free(&d);
	fv_rt_close(&rt);
	fv_cfg_free(opts, &o);
	return rc;
}
