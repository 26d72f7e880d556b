/* augment/bench.c — `fovea bench augment`: single-threaded images/s of
 * (a) a full TurboJPEG decode to RGB, the floor every loader pays, (b) the
 * ImageNet train transform to 3x224x224 float32 as the trainer runs it by
 * default (RandomResizedCrop, flip, normalize: torchvision's reference
 * recipe), (c) the eval transform (256 -> 224), (b') (b) with ColorJitter
 * 0.4/0.4/0.4, (b'') the decode of (b)'s crop alone, measured in the same run, interleaved in 16-image chunks
 * (best of the passes per chunk, so a busy machine skews the ratio less), then (d) the pipeline through
 * real worker processes with 1 and 2 workers when aug-proto linked
 * fv_aug_bench_workers in. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <turbojpeg.h>

#include "fv_daemon.h"
#include "augment/aug_internal.h"
#include "augment/transform.h"
#include "fv_error.h"

int fv_bench_augment(int argc, char **argv);
/* End-to-end through nworkers real worker processes (aug-proto). */
int fv_aug_bench_workers(const char *images_dir, int nworkers, double *img_per_s)
	__attribute__((weak));

typedef struct file {
	unsigned char *data;
	size_t len;
} file;

static int cmpname(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load(const char *dir, int max, file **out, int *n)
{
	DIR *d = opendir(dir);
	if (!d)
		return fv_err_set(FV_E_NOTFOUND, "%s: cannot open the image folder", dir);
	char **names = NULL;
	int nn = 0, cap = 0, rc = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 5 || (strcasecmp(e->d_name + l - 4, ".jpg") && strcasecmp(e->d_name + l - 5, ".jpeg")))
			continue;
		if (nn == cap) {
			cap = cap ? cap * 2 : 256;
			names = realloc(names, sizeof *names * cap);
		}
		names[nn++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, nn, sizeof *names, cmpname);
	if (max > 0 && nn > max)
		nn = max;
	file *f = calloc(nn ? nn : 1, sizeof *f);
	int got = 0;
	for (int i = 0; i < nn; i++) {
		char path[8192];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		FILE *fp = fopen(path, "rb");
		if (!fp)
			continue;
		fseek(fp, 0, SEEK_END);
		long sz = ftell(fp);
		fseek(fp, 0, SEEK_SET);
		if (sz > 0 && (f[got].data = malloc(sz)) && fread(f[got].data, 1, sz, fp) == (size_t)sz)
			f[got++].len = (size_t)sz;
		fclose(fp);
	}
	for (int i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	if (!got) {
		free(f);
		return fv_err_set(FV_E_NOTFOUND, "%s: no JPEG files", dir);
	}
	*out = f;
	*n = got;
	return rc;
}

/* Seconds to full-decode files [a, b); < 0 on failure. */
static double run_decode(tjhandle tj, const file *f, int a, int b, unsigned char *buf, size_t cap)
{
	double t0 = fv_now_s();
	for (int i = a; i < b; i++) {
		int w, h, ss, cs;
		if (tjDecompressHeader3(tj, f[i].data, f[i].len, &w, &h, &ss, &cs) ||
		    (size_t)w * h * 3 > cap ||
		    tjDecompress2(tj, f[i].data, f[i].len, buf, w, 0, h, TJPF_RGB, 0))
			return -1;
	}
	return fv_now_s() - t0;
}

/* Seconds to transform files [a, b) (seed = file index, the same every
 * pass, so passes repeat the same work); < 0 on failure. */
static double run_aug(const fv_aug_params *p, const file *f, int a, int b, void *out,
		      fv_aug_scratch *s)
{
	double t0 = fv_now_s();
	for (int i = a; i < b; i++) {
		fv_aug_input in = { FV_ENC_JPEG, f[i].data, f[i].len, 0, 0, 0 };
		if (fv_aug_sample(p, &in, (uint64_t)i, out, s))
			return -1;
	}
	return fv_now_s() - t0;
}

/* Seconds to decode only the train transform's crop of files [a, b) (its
 * rows and columns, the train-time IDCT and upsampling choice
 * (fv_aug_jpeg_fast), no resampling): the floor under the train figure;
 * < 0 on failure. At full scale: DCT scaling needs a crop 3x the output,
 * which ImageNet-sized photos never give a 224 output. */
static double run_region(const fv_aug_params *p, const file *f, int a, int b, fv_jpeg *j,
			 fv_aug_buf *buf)
{
	double t0 = fv_now_s();
	for (int i = a; i < b; i++) {
		int W, H, C;
		double box[4];
		fv_aug_view v;
		if (fv_jpeg_header(j, f[i].data, f[i].len, 0, &W, &H, &C) ||
		    fv_aug_crop_box(p, W, H, (uint64_t)i, box))
			return -1;
		int x0 = (int)box[0], y0 = (int)box[1];
		int x1 = (int)ceil(box[0] + box[2]), y1 = (int)ceil(box[1] + box[3]);
		int fast = fv_aug_jpeg_fast(p, box[2], box[3], 1);
		if (fv_jpeg_region(j, 1, fast, x0, y0, x1 < W ? x1 : W, y1 < H ? y1 : H, buf, &v))
			return -1;
	}
	return fv_now_s() - t0;
}

enum { NM = 5 }; /* decode, train, eval, train + ColorJitter, train's region decode */

/* Best images/s of decode, train, eval and train with ColorJitter into
 * best[NM]. Interleaves them at a fine grain (chunks of 16 images) and keeps each chunk's best
 * time over the passes: other processes on a shared machine then inflate all
 * three alike or get filtered out. */
static int measure(tjhandle tj, const file *f, int n, int passes, unsigned char *buf, size_t cap,
		   const fv_aug_params *tr, const fv_aug_params *ev, const fv_aug_params *tj4,
		   void *out, fv_aug_scratch *s, fv_jpeg *jr, fv_aug_buf *rbuf, double best[NM])
{
	enum { CHUNK = 16 };
	int nchunks = (n + CHUNK - 1) / CHUNK;
	double *bestc = malloc(sizeof(double) * NM * nchunks);
	for (int i = 0; i < NM * nchunks; i++)
		bestc[i] = 1e30;
	for (int p = 0; p < passes; p++) {
		for (int c = 0; c < nchunks; c++) {
			int a = c * CHUNK, b = a + CHUNK < n ? a + CHUNK : n;
			double t[NM];
			t[0] = run_decode(tj, f, a, b, buf, cap);
			t[1] = run_aug(tr, f, a, b, out, s);
			t[2] = run_aug(ev, f, a, b, out, s);
			t[3] = run_aug(tj4, f, a, b, out, s);
			t[4] = run_region(tr, f, a, b, jr, rbuf);
			for (int k = 0; k < NM; k++) {
				if (t[k] < 0) {
					fprintf(stderr, "fovea bench augment: %s failed on an image in %d..%d: %s\n",
						k ? "transform" : "decode", a, b - 1,
						k ? fv_err_msg(FV_E_DECODE) : tjGetErrorStr2(tj));
					free(bestc);
					return 1;
				}
				if (t[k] < bestc[NM * c + k])
					bestc[NM * c + k] = t[k];
			}
		}
	}
	for (int k = 0; k < NM; k++) {
		double sum = 0;
		for (int c = 0; c < nchunks; c++)
			sum += bestc[NM * c + k];
		best[k] = n / sum;
	}
	free(bestc);
	return 0;
}

static void report(int json, const char *dir, int n, int passes, const double best[NM],
		   const double pw[2])
{
	if (json) {
		printf("{\"images\": %d, \"passes\": %d, \"decode_img_per_s\": %.1f, "
		       "\"train_img_per_s\": %.1f, \"eval_img_per_s\": %.1f, "
		       "\"train_vs_decode\": %.3f, \"eval_vs_decode\": %.3f, "
		       "\"train_jitter_img_per_s\": %.1f, \"train_jitter_vs_decode\": %.3f, "
		       "\"train_region_decode_vs_decode\": %.3f",
		       n, passes, best[0], best[1], best[2], best[1] / best[0], best[2] / best[0],
		       best[3], best[3] / best[0], best[4] / best[0]);
		for (int k = 0; k < 2; k++) {
			if (pw[k] >= 0)
				printf(", \"pipeline_img_per_s_%dw\": %.1f", k + 1, pw[k]);
			else
				printf(", \"pipeline_img_per_s_%dw\": null", k + 1);
		}
		printf("}\n");
	} else {
		printf("augment bench: %d JPEGs from %s, best of %d passes per 16-image chunk, interleaved, 1 thread\n", n,
		       dir, passes);
		printf("  decode only (TurboJPEG full RGB)   %8.1f img/s  (reference)\n", best[0]);
		printf("  train RRC+flip -> 3x224x224 float  %8.1f img/s  %.2fx decode\n", best[1],
		       best[1] / best[0]);
		printf("  train + ColorJitter 0.4/0.4/0.4    %8.1f img/s  %.2fx decode\n", best[3],
		       best[3] / best[0]);
		printf("  train crop decode only (its floor) %8.1f img/s  %.2fx decode\n", best[4],
		       best[4] / best[0]);
		printf("  eval 256->224 center crop          %8.1f img/s  %.2fx decode\n", best[2],
		       best[2] / best[0]);
		if (!fv_aug_bench_workers)
			printf("  pipeline through workers: not built (fv_aug_bench_workers absent)\n");
		else
			for (int k = 0; k < 2; k++)
				if (pw[k] < 0)
					printf("  pipeline, %d worker%s               failed\n", k + 1, k ? "s" : " ");
				else
					printf("  pipeline, %d worker%s               %8.1f img/s  %.2fx decode\n",
					       k + 1, k ? "s" : " ", pw[k], pw[k] / best[0]);
	}
}

static void usage(FILE *o)
{
	fprintf(o, "usage: fovea bench augment [--images DIR] [--passes N] [--max N] [--json]\n"
		   "  DIR defaults to ../shared/data/jpeg-bench (or $FV_SHARED_DATA/jpeg-bench)\n");
}

int fv_bench_augment(int argc, char **argv)
{
	char defdir[4096];
	const char *env = getenv("FV_SHARED_DATA");
	snprintf(defdir, sizeof defdir, "%s/jpeg-bench", env ? env : "../shared/data");
	const char *dir = defdir;
	int json = 0, passes = 5, max = 0, rc = 0, n = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--images") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--passes") && i + 1 < argc)
			passes = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--max") && i + 1 < argc)
			max = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else {
			usage(strcmp(argv[i], "--help") ? stderr : stdout);
			return strcmp(argv[i], "--help") ? 2 : 0;
		}
	}
	if (passes < 1)
		passes = 1;
	file *f = NULL;
	if ((rc = load(dir, max, &f, &n))) {
		fprintf(stderr, "fovea bench augment: %s\n", fv_err_msg(rc));
		return 1;
	}
	size_t cap = 0;
	tjhandle tj = tjInitDecompress();
	for (int i = 0; i < n; i++) {
		int w, h, ss, cs;
		if (!tjDecompressHeader3(tj, f[i].data, f[i].len, &w, &h, &ss, &cs) &&
		    (size_t)w * h * 3 > cap)
			cap = (size_t)w * h * 3;
	}
	unsigned char *buf = malloc(cap ? cap : 1);
	fv_aug_params tr, ev, trj;
	fv_aug_defaults(&tr, FV_AUG_TRAIN, 3, 224, 224); /* what the trainer runs by default */
	fv_aug_defaults(&ev, FV_AUG_EVAL, 3, 224, 224);
	trj = tr;
	trj.brightness = trj.contrast = trj.saturation = 0.4f;
	void *out = malloc(fv_aug_out_bytes(&tr));
	fv_aug_scratch *s = NULL;
	double best[NM] = { 0 };
	fv_jpeg *jr = NULL;
	fv_aug_buf rbuf = { 0 };
	if ((rc = fv_aug_scratch_new(&s)) || (rc = fv_jpeg_new(&jr)))
		goto out;
	if ((rc = measure(tj, f, n, passes, buf, cap, &tr, &ev, &trj, out, s, jr, &rbuf, best)))
		goto out;
	double pw[2] = { -1, -1 };
	if (fv_aug_bench_workers)
		for (int k = 0; k < 2; k++)
			if (fv_aug_bench_workers(dir, k + 1, &pw[k]))
				pw[k] = -1;
	report(json, dir, n, passes, best, pw);
out:
	fv_jpeg_destroy(&jr);
	free(rbuf.p);
	fv_aug_scratch_destroy(&s);
	tjDestroy(tj);
	free(out);
	free(buf);
	for (int i = 0; i < n; i++)
		free(f[i].data);
	free(f);
	return rc ? 1 : 0;
}
