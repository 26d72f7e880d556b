/* trainer/inspect.c — `fovea-trainer inspect CKPT [--tensors]`: what a
 * checkpoint holds, as one JSON object; a truncated or corrupt file gets the
 * checkpoint reader's one-line error and exit status 1. Tests and users use it
 * to look inside checkpoints without loading a model. */
#include "trainer/trainer.h"
#include "nn/ckpt.h"
#include "fv_error.h"
#include "fv_json.h"

#include <stdio.h>
#include <string.h>

/* FNV-1a over the float bits: a cheap fingerprint to compare tensors. */
static unsigned long long fingerprint(const float *d, size_t n)
{
	unsigned long long h = 1469598103934665603ull;
	const unsigned char *b = (const unsigned char *)d;
	for (size_t i = 0; i < n * sizeof *d; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

int fv_trainer_inspect(int argc, char **argv)
{
	fv_ckpt *c;
	int tensors = argc > 2 && !strcmp(argv[2], "--tensors");
	if (argc < 2) {
		fprintf(stderr, "usage: fovea-trainer inspect CKPT [--tensors]\n");
		return 2;
	}
	int rc = fv_ckpt_open(&c, argv[1]);
	if (rc) {
		fprintf(stderr, "fovea-trainer: %s\n", fv_err_msg(rc));
		return 1;
	}
	const fv_ckpt_info *i = fv_ckpt_info_get(c);
	printf("{\"path\": ");
	fv_json_fputs(stdout, argv[1]);
	printf(", \"model\": ");
	fv_json_fputs(stdout, i->model);
	printf(", \"input\": [%d, %d, %d], \"classes\": %d, \"step\": %llu, \"epoch\": %.6f, "
	       "\"dataset_version\": %llu, \"tensors\": %zu",
	       i->in_c, i->in_h, i->in_w, i->classes, (unsigned long long)i->step, i->epoch,
	       (unsigned long long)i->dataset_version, fv_ckpt_tensor_count(c));
	const char *top1 = fv_ckpt_meta(c, "val_top1");
	if (top1)
		printf(", \"val_top1\": %s", top1);
	if (tensors) {
		printf(", \"fingerprints\": {");
		for (size_t k = 0; k < fv_ckpt_tensor_count(c); k++) {
			fv_ckpt_tensor t;
			if (fv_ckpt_tensor_at(c, k, &t))
				continue;
			printf("%s", k ? ", " : "");
			fv_json_fputs(stdout, t.name);
			printf(": \"%016llx\"", fingerprint(t.data, t.numel));
		}
		printf("}");
	}
	printf("}\n");
	fv_ckpt_close(&c);
	return 0;
}
