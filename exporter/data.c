/* exporter/data.c — the images an export needs, read from the dataset and
 * put through the eval transform (the same geometry the evaluator uses),
 * as raw uint8 NHWC pixels: a seeded random subset of the train split for
 * calibration, and the val split (or an evenly spaced subset of it) for
 * verification. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "augment/transform.h"
#include "exporter/xdata.h"
#include "fv_error.h"
#include "fv_store.h"

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

void fv_xdata_free(fv_xdata *d)
{
	free(d->px);
	free(d->labels);
	memset(d, 0, sizeof *d);
}

/* Up to `want` keys of split (0 = all): a seeded random pick (seed != 0) or
 * evenly spaced ones (seed == 0), kept in key order. */
static int pick(fv_store *s, uint32_t split, long want, uint64_t seed, uint64_t **keys, size_t *n)
{
	uint32_t *labels = NULL;
	int rc = fv_store_split_index(s, split, keys, &labels, n, NULL);
	free(labels);
	if (rc || want <= 0 || (size_t)want >= *n)
		return rc;
	uint64_t *k = *keys;
	if (seed) {
		uint64_t st = seed * 0x9E3779B97F4A7C15ull | 1;
		for (size_t i = 0; i < (size_t)want; i++) { /* partial Fisher-Yates */
			size_t j = i + (size_t)(xorshift(&st) % (*n - i));
			uint64_t t = k[i];
			k[i] = k[j], k[j] = t;
		}
	} else {
		for (size_t i = 0; i < (size_t)want; i++)
			k[i] = k[(size_t)((double)i * (double)*n / (double)want)];
	}
	*n = (size_t)want;
	return 0;
}

int fv_xdata_load(const char *db, uint32_t split, long want, uint64_t seed, int c, int h, int w,
		  int resize_shorter, fv_xdata *d)
{
	memset(d, 0, sizeof *d);
	fv_store *s = NULL;
	fv_store_rtxn *t = NULL;
	fv_aug_scratch *scr = NULL;
	uint64_t *keys = NULL;
	size_t n = 0;
	int rc = fv_store_open(db, FV_STORE_RDONLY, 0, &s);
	if (rc)
		goto out;
	if ((rc = pick(s, split, want, seed, &keys, &n)))
		goto out;
	fv_aug_params p;
	fv_aug_defaults(&p, FV_AUG_EVAL, c, h, w);
	p.resize_shorter = resize_shorter;
	p.layout = FV_OUT_U8_NHWC;
	size_t per = (size_t)c * h * w;
	d->px = malloc(per * (n ? n : 1));
	d->labels = malloc(sizeof *d->labels * (n ? n : 1));
	if (!d->px || !d->labels) {
		rc = ENOMEM;
		goto out;
	}
	if ((rc = fv_aug_scratch_new(&scr)))
		goto out;
	/* Short read transactions: a batch of records each (see fv_store.h). */
	for (size_t i = 0; i < n && !rc; i += 256) {
		if ((rc = fv_store_read_begin(s, &t)))
			break;
		for (size_t j = i; j < n && j < i + 256; j++) {
			fv_record r;
			if ((rc = fv_store_get(t, keys[j], &r)))
				break;
			fv_aug_input in = { .encoding = (enum fv_aug_encoding)r.encoding, .data = r.data,
					    .len = r.data_len, .width = (int)r.width, .height = (int)r.height,
					    .channels = (int)r.channels };
			if (fv_aug_sample(&p, &in, 0, d->px + per * d->n, scr))
				continue; /* a bad record is not a reason to refuse the export */
			d->labels[d->n++] = (int)r.label;
		}
		fv_store_read_end(&t);
	}
	if (!rc && !d->n)
		rc = fv_err_set(FV_E_NOTFOUND, "%s: no usable images in the %s split", db,
				split == 0 ? "train" : split == 1 ? "val" : "test");
out:
	fv_aug_scratch_destroy(&scr);
	free(keys);
	if (s)
		fv_store_close(&s);
	if (rc)
		fv_xdata_free(d);
	else
		d->c = c, d->h = h, d->w = w;
	return rc;
}
