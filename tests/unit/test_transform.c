/* Unit tests for augment/transform: geometry statistics, exact references
 * for resize/crop/flip/normalize/pad/layouts, determinism across threads,
 * region decode against a full TurboJPEG decode on the real benchmark
 * photos, and bad JPEGs that must fail cleanly. */
#include "fv_test.h"
#include "fv_error.h"
#include "fv_image.h"
#include "augment/transform.h"
#include "augment/aug_internal.h"
#include "augment/transform_pb.h"

#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <png.h>
#include <turbojpeg.h>

/* ---------------------------------------------------------------- helpers */

typedef struct photo {
	uint8_t *data;
	size_t len;
} photo;

static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Up to max photos from the shared benchmark folder, sorted by name. A
 * missing folder is a failure: CI has it. */
static int load_photos(photo *ph, int max)
{
	const char *base = fv_test_shared_data();
	FV_CHECK_MSG(base, "shared data folder missing (../shared/data or FV_SHARED_DATA)");
	if (!base)
		return 0;
	char dir[600];
	snprintf(dir, sizeof dir, "%s/jpeg-bench", base);
	DIR *d = opendir(dir);
	FV_CHECK_MSG(d, "%s: cannot open (benchmark JPEGs missing)", dir);
	if (!d)
		return 0;
	char *names[1024];
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < 1024) {
		size_t l = strlen(e->d_name);
		if (l > 4 && !strcmp(e->d_name + l - 4, ".jpg"))
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmpstr);
	int got = 0;
	for (int i = 0; i < n; i++) {
		if (got < max) {
			char path[1200];
			snprintf(path, sizeof path, "%s/%s", dir, names[i]);
			FILE *f = fopen(path, "rb");
			if (f) {
				fseek(f, 0, SEEK_END);
				long sz = ftell(f);
				fseek(f, 0, SEEK_SET);
				ph[got].data = malloc(sz);
				ph[got].len = fread(ph[got].data, 1, sz, f);
				fclose(f);
				got++;
			}
		}
		free(names[i]);
	}
	FV_CHECK_MSG(got >= max, "%s: only %d JPEGs (want %d)", dir, got, max);
	return got;
}

static void free_photos(photo *ph, int n)
{
	for (int i = 0; i < n; i++)
		free(ph[i].data);
}

/* A deterministic synthetic image: smooth gradients plus noise. */
static uint8_t *synth(int w, int h, int c)
{
	uint8_t *p = malloc((size_t)w * h * c);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int k = 0; k < c; k++)
				p[((size_t)y * w + x) * c + k] =
					(uint8_t)((x * 3 + y * 2 + k * 50 + (fv_test_rand() % 40)) & 255);
	return p;
}

static fv_aug_input raw(const uint8_t *px, int w, int h, int c)
{
	fv_aug_input in = { FV_ENC_RAW, px, (size_t)w * h * c, w, h, c };
	return in;
}

/* Plain params: no photometric ops, mean 0, std 1 (output in pixel units). */
static void plain(fv_aug_params *p, enum fv_aug_mode m, int c, int h, int w)
{
	fv_aug_defaults(p, m, c, h, w);
	p->flip_p = 0;
	p->brightness = p->contrast = p->saturation = p->hue = 0;
	for (int i = 0; i < 3; i++) {
		p->mean[i] = 0;
		p->std[i] = 1;
	}
}

/* How far the resampler may sit from the double-precision reference, in
 * levels: its fixed-point path quantizes weights to 1/16384 and keeps 7
 * fraction bits between the passes (resample_fx.c), ~0.02 at most here. */
#define RESAMPLE_TOL 0.04

/* Reference PIL-style bilinear (triangle, antialiased) weights for output i
 * of an axis mapping [x0, x0+len) of in_n samples onto out_n. */
static void ref_weights(double *w, int in_n, double x0, double len, int out_n, int i)
{
	double scale = len / out_n, fs = scale > 1 ? scale : 1;
	double center = x0 + (i + 0.5) * scale, sum = 0;
	for (int x = 0; x < in_n; x++) {
		double t = fabs((x - center + 0.5) / fs);
		w[x] = t < 1 ? 1 - t : 0;
		if (x < floor(center - fs + 0.5) || x >= floor(center + fs + 0.5))
			w[x] = 0;
		sum += w[x];
	}
	for (int x = 0; x < in_n; x++)
		w[x] /= sum;
}

/* Reference: resample box of a HWC image to ow x oh, channel ch, planar. */
static void ref_resample(double *out, const uint8_t *px, int w, int h, int c, int ch,
			 const double box[4], int ow, int oh)
{
	double *wx = malloc(sizeof(double) * w * ow), *wy = malloc(sizeof(double) * h * oh);
	for (int i = 0; i < ow; i++)
		ref_weights(wx + (size_t)i * w, w, box[0], box[2], ow, i);
	for (int i = 0; i < oh; i++)
		ref_weights(wy + (size_t)i * h, h, box[1], box[3], oh, i);
	int *x0 = malloc(sizeof(int) * ow), *x1 = malloc(sizeof(int) * ow);
	for (int ox = 0; ox < ow; ox++) { /* the nonzero span, to keep this quick */
		x0[ox] = w;
		x1[ox] = 0;
		for (int x = 0; x < w; x++)
			if (wx[(size_t)ox * w + x] != 0) {
				x0[ox] = x < x0[ox] ? x : x0[ox];
				x1[ox] = x + 1;
			}
	}
	for (int oy = 0; oy < oh; oy++)
		for (int ox = 0; ox < ow; ox++) {
			double acc = 0;
			for (int y = 0; y < h; y++) {
				double wyv = wy[(size_t)oy * h + y];
				if (wyv == 0)
					continue;
				for (int x = x0[ox]; x < x1[ox]; x++)
					acc += wyv * wx[(size_t)ox * w + x] * px[((size_t)y * w + x) * c + ch];
			}
			out[(size_t)oy * ow + ox] = acc;
		}
	free(x0);
	free(x1);
	free(wx);
	free(wy);
}

static float *run_f32(const fv_aug_params *p, const fv_aug_input *in, uint64_t seed, int *rc)
{
	fv_aug_scratch *s;
	FV_CHECK_OK(fv_aug_scratch_new(&s));
	float *out = malloc(fv_aug_out_bytes(p));
	*rc = fv_aug_sample(p, in, seed, out, s);
	fv_aug_scratch_destroy(&s);
	FV_CHECK(s == NULL);
	return out;
}

/* ---------------------------------------------------------------- geometry */

FV_TEST(rrc_box_statistics)
{
	fv_aug_params p;
	fv_aug_defaults(&p, FV_AUG_TRAIN, 3, 224, 224);
	int W = 500, H = 375, n = 4000;
	double sum_area = 0, minlr = 9, maxlr = -9;
	for (int i = 0; i < n; i++) {
		double b[4];
		FV_CHECK_OK(fv_aug_crop_box(&p, W, H, (uint64_t)i * 7919 + 1, b));
		FV_CHECK(b[0] >= 0 && b[1] >= 0 && b[0] + b[2] <= W && b[1] + b[3] <= H);
		FV_CHECK(b[0] == floor(b[0]) && b[2] == floor(b[2]));
		double frac = b[2] * b[3] / ((double)W * H);
		/* integer rounding of w and h moves the area by ~1/side */
		FV_CHECK_MSG(frac >= 0.08 * 0.9 && frac <= 1.0, "area fraction %g", frac);
		double lr = log(b[2] / b[3]);
		/* tolerance for rounding w, h to integers */
		double tol = 1.0 / b[2] + 1.0 / b[3] + 1e-9;
		FV_CHECK_MSG(lr >= log(3.0 / 4) - tol && lr <= log(4.0 / 3) + tol, "ratio %g", exp(lr));
		sum_area += frac;
		minlr = fmin(minlr, lr);
		maxlr = fmax(maxlr, lr);
	}
	/* accepted draws bias toward small areas: the mean sits below 0.54 */
	FV_CHECK_MSG(sum_area / n > 0.35 && sum_area / n < 0.54, "mean area %g", sum_area / n);
	FV_CHECK(minlr < log(3.0 / 4) + 0.05 && maxlr > log(4.0 / 3) - 0.05);
}

FV_TEST(rrc_fallback_center_crop)
{
	fv_aug_params p;
	fv_aug_defaults(&p, FV_AUG_TRAIN, 3, 8, 8);
	double b[4];
	for (uint64_t s = 0; s < 50; s++) {
		FV_CHECK_OK(fv_aug_crop_box(&p, 1000, 10, s, b));
		/* too wide: h = H, w = round(H * 4/3), centered */
		FV_CHECK_EQ(b[2], 13);
		FV_CHECK_EQ(b[3], 10);
		FV_CHECK_EQ(b[0], (1000 - 13) / 2);
		FV_CHECK_EQ(b[1], 0);
		FV_CHECK_OK(fv_aug_crop_box(&p, 10, 1000, s, b));
		FV_CHECK_EQ(b[2], 10);
		FV_CHECK_EQ(b[3], 13);
		FV_CHECK_EQ(b[1], (1000 - 13) / 2);
	}
}

FV_TEST(train_output_matches_reference_resample)
{
	int W = 90, H = 70;
	uint8_t *px = synth(W, H, 3);
	fv_aug_input in = raw(px, W, H, 3);
	fv_aug_params p;
	plain(&p, FV_AUG_TRAIN, 3, 32, 40);
	double *ref = malloc(sizeof(double) * 32 * 40);
	for (uint64_t seed = 1; seed <= 6; seed++) {
		double b[4];
		FV_CHECK_OK(fv_aug_crop_box(&p, W, H, seed, b));
		int rc;
		float *o = run_f32(&p, &in, seed, &rc);
		FV_CHECK_OK(rc);
		for (int ch = 0; ch < 3; ch++) {
			ref_resample(ref, px, W, H, 3, ch, b, 40, 32);
			double maxd = 0;
			for (int i = 0; i < 32 * 40; i++)
				maxd = fmax(maxd, fabs(ref[i] - o[ch * 32 * 40 + i]));
			FV_CHECK_MSG(maxd < RESAMPLE_TOL, "seed %d ch %d: max diff %g", (int)seed, ch, maxd);
		}
		free(o);
	}
	free(ref);
	free(px);
}

FV_TEST(resample_paths_match_reference)
{
	/* shrink factors that take each resampling path: 16-output permute
	 * blocks, 8-output blocks, and the generic path (taps too wide) */
	int W = 640, H = 480;
	uint8_t *px = synth(W, H, 3);
	fv_aug_input in = raw(px, W, H, 3);
	const int sizes[3][2] = { { 500, 400 }, { 300, 200 }, { 37, 29 } };
	double whole[4] = { 0, 0, W, H };
	for (int k = 0; k < 3; k++) {
		int ow = sizes[k][0], oh = sizes[k][1];
		fv_aug_params p;
		plain(&p, FV_AUG_EVAL, 3, oh, ow);
		p.resize_shorter = 0;
		int rc;
		float *o = run_f32(&p, &in, 1, &rc);
		FV_CHECK_OK(rc);
		double *ref = malloc(sizeof(double) * ow * oh), maxd = 0;
		for (int ch = 0; ch < 3; ch++) {
			ref_resample(ref, px, W, H, 3, ch, whole, ow, oh);
			for (int i = 0; i < ow * oh; i++)
				maxd = fmax(maxd, fabs(ref[i] - o[(size_t)ch * ow * oh + i]));
		}
		FV_CHECK_MSG(maxd < RESAMPLE_TOL, "%dx%d: max diff %g", ow, oh, maxd);
		free(ref);
		free(o);
	}
	free(px);
}

FV_TEST(eval_resize_center_crop_exact)
{
	/* resize shorter side 80 then center 64x64, against a two-step
	 * reference: resize the whole image, then crop */
	int W = 147, H = 100; /* 117 wide after resize: a half-pixel offset, rounded to even */
	uint8_t *px = synth(W, H, 3);
	fv_aug_input in = raw(px, W, H, 3);
	fv_aug_params p;
	plain(&p, FV_AUG_EVAL, 3, 64, 64);
	p.resize_shorter = 80;
	int nh = 80, nw = (int)(80.0 * W / H);
	double whole[4] = { 0, 0, W, H };
	double *big = malloc(sizeof(double) * nw * nh);
	int rc;
	float *o = run_f32(&p, &in, 99, &rc);
	FV_CHECK_OK(rc);
	int left = (int)nearbyint((nw - 64) / 2.0), top = (int)nearbyint((nh - 64) / 2.0);
	for (int ch = 0; ch < 3; ch++) {
		ref_resample(big, px, W, H, 3, ch, whole, nw, nh);
		double maxd = 0;
		for (int y = 0; y < 64; y++)
			for (int x = 0; x < 64; x++)
				maxd = fmax(maxd, fabs(big[(size_t)(y + top) * nw + x + left] -
						       o[ch * 4096 + y * 64 + x]));
		FV_CHECK_MSG(maxd < RESAMPLE_TOL, "ch %d: max diff %g", ch, maxd);
	}
	free(o);
	free(big);
	free(px);
}

FV_TEST(eval_identity_small_image)
{
	uint8_t *px = synth(28, 28, 1);
	fv_aug_input in = raw(px, 28, 28, 1);
	fv_aug_params p;
	plain(&p, FV_AUG_EVAL, 1, 28, 28);
	p.resize_shorter = 0;
	p.layout = FV_OUT_U8_NHWC;
	uint8_t out[28 * 28];
	fv_aug_scratch *s;
	FV_CHECK_OK(fv_aug_scratch_new(&s));
	FV_CHECK_OK(fv_aug_sample(&p, &in, 5, out, s));
	FV_CHECK(!memcmp(out, px, sizeof out));
	fv_aug_scratch_destroy(&s);
	free(px);
}

FV_TEST(flip_mirrors_output)
{
	int W = 120, H = 90;
	uint8_t *px = synth(W, H, 3);
	fv_aug_input in = raw(px, W, H, 3);
	fv_aug_params p;
	fv_aug_defaults(&p, FV_AUG_TRAIN, 3, 48, 56);
	p.pca_lighting = 0.1f;
	for (uint64_t seed = 10; seed < 14; seed++) {
		int rc1, rc2;
		p.flip_p = 0;
		float *a = run_f32(&p, &in, seed, &rc1);
		p.flip_p = 1;
		float *b = run_f32(&p, &in, seed, &rc2);
		FV_CHECK_OK(rc1);
		FV_CHECK_OK(rc2);
		int bad = 0;
		for (int c = 0; c < 3; c++)
			for (int y = 0; y < 48; y++)
				for (int x = 0; x < 56; x++)
					bad += a[(c * 48 + y) * 56 + x] != b[(c * 48 + y) * 56 + 55 - x];
		FV_CHECK_EQ(bad, 0);
		free(a);
		free(b);
	}
}

FV_TEST(normalize_constant_image)
{
	uint8_t px[40 * 30 * 3];
	for (int i = 0; i < 40 * 30; i++) {
		px[i * 3] = 100;
		px[i * 3 + 1] = 150;
		px[i * 3 + 2] = 200;
	}
	fv_aug_input in = raw(px, 40, 30, 3);
	fv_aug_params p;
	fv_aug_defaults(&p, FV_AUG_TRAIN, 3, 16, 16);
	p.brightness = p.contrast = p.saturation = 0;
	int rc;
	float *o = run_f32(&p, &in, 3, &rc);
	FV_CHECK_OK(rc);
	const float v[3] = { 100, 150, 200 };
	for (int c = 0; c < 3; c++)
		for (int i = 0; i < 256; i++)
			FV_CHECK_NEAR(o[c * 256 + i], (v[c] - p.mean[c]) / p.std[c], 1e-5);
	free(o);
	p.layout = FV_OUT_U8_NHWC;
	uint8_t u[16 * 16 * 3];
	fv_aug_scratch *s;
	FV_CHECK_OK(fv_aug_scratch_new(&s));
	FV_CHECK_OK(fv_aug_sample(&p, &in, 3, u, s));
	for (int i = 0; i < 256; i++)
		FV_CHECK(u[i * 3] == 100 && u[i * 3 + 1] == 150 && u[i * 3 + 2] == 200);
	fv_aug_scratch_destroy(&s);
}

FV_TEST(pad_and_random_crop_positions)
{
	int W = 32, H = 32;
	uint8_t *px = synth(W, H, 3);
	fv_aug_input in = raw(px, W, H, 3);
	fv_aug_params p;
	plain(&p, FV_AUG_TRAIN, 3, 32, 32);
	p.rrc = 0;
	p.pad = 4;
	int seen[9][9] = { { 0 } };
	for (uint64_t seed = 0; seed < 400; seed++) {
		double b[4];
		FV_CHECK_OK(fv_aug_crop_box(&p, W, H, seed, b));
		int dx = (int)b[0], dy = (int)b[1];
		FV_CHECK(dx >= -4 && dx <= 4 && dy >= -4 && dy <= 4);
		seen[dy + 4][dx + 4]++;
		if (seed % 40)
			continue;
		int rc;
		float *o = run_f32(&p, &in, seed, &rc);
		FV_CHECK_OK(rc);
		int bad = 0;
		for (int c = 0; c < 3; c++)
			for (int y = 0; y < 32; y++)
				for (int x = 0; x < 32; x++) {
					int sx = x + dx, sy = y + dy;
					float want = sx < 0 || sy < 0 || sx >= W || sy >= H
							     ? 0.f
							     : px[(sy * W + sx) * 3 + c];
					bad += o[(c * 32 + y) * 32 + x] != want;
				}
		FV_CHECK_EQ(bad, 0);
		free(o);
	}
	int corners = seen[0][0] + seen[8][8] + seen[0][8] + seen[8][0];
	FV_CHECK(corners > 0);
	for (int i = 0; i < 9; i++) { /* every offset on each axis, about uniformly */
		int row = 0, col = 0;
		for (int k = 0; k < 9; k++) {
			row += seen[i][k];
			col += seen[k][i];
		}
		FV_CHECK_MSG(row > 20 && row < 80 && col > 20 && col < 80, "offset %d: %d, %d",
			     i - 4, row, col);
	}
}

FV_TEST(random_erasing_statistics)
{
	uint8_t px[64 * 64 * 3];
	memset(px, 200, sizeof px);
	fv_aug_input in = raw(px, 64, 64, 3);
	fv_aug_params p;
	plain(&p, FV_AUG_TRAIN, 3, 64, 64);
	p.mean[0] = p.mean[1] = p.mean[2] = 100;
	p.erase_p = 0.5f;
	int erased = 0, n = 200;
	fv_aug_scratch *s;
	FV_CHECK_OK(fv_aug_scratch_new(&s));
	float *o = malloc(fv_aug_out_bytes(&p));
	for (int seed = 0; seed < n; seed++) {
		FV_CHECK_OK(fv_aug_sample(&p, &in, seed, o, s));
		int zeros = 0, minx = 64, maxx = -1, miny = 64, maxy = -1;
		for (int y = 0; y < 64; y++)
			for (int x = 0; x < 64; x++)
				if (o[y * 64 + x] == 0.f) {
					zeros++;
					minx = x < minx ? x : minx;
					maxx = x > maxx ? x : maxx;
					miny = y < miny ? y : miny;
					maxy = y > maxy ? y : maxy;
				}
		if (!zeros)
			continue;
		erased++;
		/* one solid rectangle, in every channel, of the right area */
		FV_CHECK_EQ(zeros, (maxx - minx + 1) * (maxy - miny + 1));
		for (int c = 1; c < 3; c++)
			FV_CHECK(o[c * 4096 + miny * 64 + minx] == 0.f);
		double frac = zeros / 4096.0;
		FV_CHECK_MSG(frac >= 0.02 * 0.8 && frac <= 0.33 * 1.2, "erased fraction %g", frac);
		double ar = (double)(maxy - miny + 1) / (maxx - minx + 1);
		FV_CHECK_MSG(ar > 0.3 * 0.7 && ar < 3.3 * 1.4, "aspect %g", ar);
	}
	FV_CHECK_MSG(erased > n * 0.38 && erased < n * 0.62, "erased %d of %d", erased, n);
	free(o);
	fv_aug_scratch_destroy(&s);
}

FV_TEST(grayscale_conversions)
{
	int W = 50, H = 40;
	uint8_t *g = synth(W, H, 1), *rgb = synth(W, H, 3);
	fv_aug_params p;
	plain(&p, FV_AUG_EVAL, 3, 20, 20);
	p.resize_shorter = 0;
	fv_aug_input in = raw(g, W, H, 1);
	int rc;
	float *o = run_f32(&p, &in, 1, &rc);
	FV_CHECK_OK(rc);
	int bad = 0;
	for (int i = 0; i < 400; i++)
		bad += o[i] != o[400 + i] || o[i] != o[800 + i];
	FV_CHECK_EQ(bad, 0);
	free(o);
	/* 3 -> 1: luma of the resampled channels */
	in = raw(rgb, W, H, 3);
	float *c3 = run_f32(&p, &in, 1, &rc);
	FV_CHECK_OK(rc);
	plain(&p, FV_AUG_EVAL, 1, 20, 20);
	p.resize_shorter = 0;
	float *c1 = run_f32(&p, &in, 1, &rc);
	FV_CHECK_OK(rc);
	for (int i = 0; i < 400; i++)
		FV_CHECK_NEAR(c1[i], 0.299 * c3[i] + 0.587 * c3[400 + i] + 0.114 * c3[800 + i], 1e-3);
	free(c1);
	free(c3);
	free(g);
	free(rgb);
}

FV_TEST(f16_matches_f32)
{
	int W = 80, H = 60;
	uint8_t *px = synth(W, H, 3);
	fv_aug_input in = raw(px, W, H, 3);
	fv_aug_params p;
	fv_aug_defaults(&p, FV_AUG_TRAIN, 3, 40, 40);
	int rc;
	float *a = run_f32(&p, &in, 77, &rc);
	FV_CHECK_OK(rc);
	p.layout = FV_OUT_F16_NCHW;
	FV_CHECK_EQ(fv_aug_out_bytes(&p), 3 * 40 * 40 * 2);
	uint16_t *h = (uint16_t *)run_f32(&p, &in, 77, &rc);
	FV_CHECK_OK(rc);
	int bad = 0;
	for (int i = 0; i < 3 * 1600; i++) {
		/* decode the half by hand: normal numbers only at these magnitudes */
		uint16_t v = h[i];
		int e = (v >> 10) & 31;
		double m = (v & 1023) / 1024.0;
		double f = e == 0 ? ldexp(m, -14) : ldexp(1 + m, e - 15);
		if (v & 0x8000)
			f = -f;
		bad += fabs(f - a[i]) > fabs(a[i]) / 1024 + 1e-6;
	}
	FV_CHECK_EQ(bad, 0);
	free(a);
	free(h);
	free(px);
}

FV_TEST(u8_nhwc_layout)
{
	int W = 30, H = 20;
	uint8_t *px = synth(W, H, 3);
	fv_aug_input in = raw(px, W, H, 3);
	fv_aug_params p;
	plain(&p, FV_AUG_EVAL, 3, 20, 30);
	p.resize_shorter = 0;
	p.layout = FV_OUT_U8_NHWC;
	FV_CHECK_EQ(fv_aug_out_bytes(&p), W * H * 3);
	uint8_t *o = malloc(W * H * 3);
	fv_aug_scratch *s;
	FV_CHECK_OK(fv_aug_scratch_new(&s));
	FV_CHECK_OK(fv_aug_sample(&p, &in, 1, o, s));
	FV_CHECK(!memcmp(o, px, W * H * 3)); /* identity: HWC bytes back */
	fv_aug_scratch_destroy(&s);
	free(o);
	free(px);
}

FV_TEST(params_check_and_proto_roundtrip)
{
	fv_aug_params p, q;
	fv_aug_defaults(&p, FV_AUG_TRAIN, 3, 224, 224);
	p.brightness = p.contrast = p.saturation = 0.4f;
	p.pca_lighting = 0.1f;
	p.erase_p = 0.25f;
	p.layout = FV_OUT_F16_NCHW;
	FV_CHECK_OK(fv_aug_params_check(&p));
	Fovea__Transform t;
	float mb[3], sb[3];
	fv_aug_params_to_pb(&p, &t, mb, sb);
	size_t len = fovea__transform__get_packed_size(&t);
	uint8_t *buf = malloc(len);
	fovea__transform__pack(&t, buf);
	Fovea__Transform *u = fovea__transform__unpack(NULL, len, buf);
	FV_CHECK(u != NULL);
	FV_CHECK_OK(fv_aug_params_from_pb(&q, u));
	FV_CHECK(!memcmp(&p, &q, sizeof p));
	u->n_std = 1;
	FV_CHECK_EQ(fv_aug_params_from_pb(&q, u), FV_E_PROTO);
	fovea__transform__free_unpacked(u, NULL);
	free(buf);
	q = p;
	q.flip_p = 1.5f;
	FV_CHECK_EQ(fv_aug_params_check(&q), FV_E_FORMAT);
	q = p;
	q.scale_min = 0.9f;
	q.scale_max = 0.5f;
	FV_CHECK_EQ(fv_aug_params_check(&q), FV_E_FORMAT);
	q = p;
	q.std[1] = 0;
	FV_CHECK_EQ(fv_aug_params_check(&q), FV_E_FORMAT);
	q = p;
	q.out_c = 2;
	FV_CHECK_EQ(fv_aug_params_check(&q), FV_E_FORMAT);
}

/* ---------------------------------------------------------------- JPEG */

/* Full TurboJPEG decode to RGB (or gray): the reference for region decode. */
static uint8_t *tj_full(const photo *ph, int gray, int *w, int *h)
{
	tjhandle tj = tjInitDecompress();
	int ss, cs;
	uint8_t *px = NULL;
	if (!tjDecompressHeader3(tj, ph->data, ph->len, w, h, &ss, &cs)) {
		px = malloc((size_t)*w * *h * 3);
		if (tjDecompress2(tj, ph->data, ph->len, px, *w, 0, *h, gray ? TJPF_GRAY : TJPF_RGB, 0)) {
			free(px);
			px = NULL;
		}
	}
	tjDestroy(tj);
	FV_CHECK(px != NULL);
	return px;
}

/* Mean absolute difference in levels between the JPEG path and the same
 * transform of a full decode given as RAW. */
static double region_vs_full(const fv_aug_params *p, const photo *ph, uint64_t seed,
			     fv_aug_scratch *s)
{
	int w = 0, h = 0, gray = p->out_c == 1;
	uint8_t *full = tj_full(ph, gray, &w, &h);
	if (!full)
		return 1e9;
	size_t nb = fv_aug_out_bytes(p);
	uint8_t *a = malloc(nb), *b = malloc(nb);
	fv_aug_input jin = { FV_ENC_JPEG, ph->data, ph->len, 0, 0, 0 };
	fv_aug_input rin = raw(full, w, h, gray ? 1 : 3);
	FV_CHECK_OK(fv_aug_sample(p, &jin, seed, a, s));
	FV_CHECK_OK(fv_aug_sample(p, &rin, seed, b, s));
	double sum = 0;
	for (size_t i = 0; i < nb; i++)
		sum += abs((int)a[i] - (int)b[i]);
	free(a);
	free(b);
	free(full);
	return sum / nb;
}

FV_TEST(region_decode_matches_full_decode)
{
	photo ph[16];
	int n = load_photos(ph, 16);
	fv_aug_scratch *s;
	FV_CHECK_OK(fv_aug_scratch_new(&s));
	fv_aug_params p;
	double worst = 0;
	for (int i = 0; i < n; i++) {
		/* 224: full-scale region decode; 64: DCT scaling 1/2..1/8 too */
		int sizes[2] = { 224, 64 };
		for (int k = 0; k < 2; k++) {
			plain(&p, FV_AUG_TRAIN, 3, sizes[k], sizes[k]);
			p.layout = FV_OUT_U8_NHWC;
			double d1 = region_vs_full(&p, &ph[i], 1000 + i, s);
			plain(&p, FV_AUG_EVAL, 3, sizes[k], sizes[k]);
			p.layout = FV_OUT_U8_NHWC;
			double d2 = region_vs_full(&p, &ph[i], 0, s);
			if (getenv("FV_TEST_VERBOSE"))
				fprintf(stderr, "photo %d size %d: train %.3f eval %.3f\n", i, sizes[k], d1, d2);
			worst = fmax(worst, fmax(d1, d2));
		}
		plain(&p, FV_AUG_TRAIN, 1, 112, 112); /* gray straight from the Y plane */
		p.layout = FV_OUT_U8_NHWC;
		worst = fmax(worst, region_vs_full(&p, &ph[i], 2000 + i, s));
	}
	FV_CHECK_MSG(worst < 2.0, "worst mean abs diff %.3f levels", worst);
	fv_aug_scratch_destroy(&s);
	free_photos(ph, n);
}

/* CMYK (YCCK) JPEGs, as print files come, decode to RGB row by row on the
 * region path: within 2 levels of the same transform of fv_image's full
 * decode (Pillow's conversion) given as RAW, for train and eval crops, DCT
 * scaling, and gray output. The CMYK is Adobe's inverted form with K full
 * (C = R, M = G, Y = B), so the photo's colors survive. */
FV_TEST(cmyk_jpeg_matches_full_decode)
{
	photo ph[4];
	int n = load_photos(ph, 4);
	fv_aug_scratch *s;
	FV_CHECK_OK(fv_aug_scratch_new(&s));
	tjhandle tc = tjInitCompress();
	double worst = 0;
	for (int i = 0; i < n; i++) {
		int w, h;
		uint8_t *rgb = tj_full(&ph[i], 0, &w, &h), *cmyk = malloc((size_t)w * h * 4);
		for (size_t k = 0; k < (size_t)w * h; k++) {
			memcpy(cmyk + 4 * k, rgb + 3 * k, 3);
			cmyk[4 * k + 3] = 255;
		}
		unsigned char *jpg = NULL;
		unsigned long len = 0;
		FV_CHECK_OK(tjCompress2(tc, cmyk, w, 0, h, TJPF_CMYK, &jpg, &len, TJSAMP_420, 92, 0));
		fv_image full = { 0 };
		FV_CHECK_OK(fv_image_decode(jpg, len, 0, &full));
		FV_CHECK(full.cmyk && full.channels == 3);
		size_t nb = 64 * 64 * 3;
		uint8_t *a = malloc(nb), *b = malloc(nb);
		fv_aug_input jin = { FV_ENC_JPEG, jpg, len, 0, 0, 0 };
		fv_aug_input rin = raw(full.pixels, w, h, 3);
		static const struct { enum fv_aug_mode m; int c, size; } cases[] = {
			{ FV_AUG_TRAIN, 3, 224 }, { FV_AUG_EVAL, 3, 224 }, { FV_AUG_TRAIN, 3, 64 },
			{ FV_AUG_EVAL, 3, 64 },   { FV_AUG_TRAIN, 1, 64 },
		};
		for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
			fv_aug_params p;
			plain(&p, cases[c].m, cases[c].c, cases[c].size, cases[c].size);
			p.layout = FV_OUT_U8_NHWC;
			size_t ob = fv_aug_out_bytes(&p);
			if (ob > nb) {
				a = realloc(a, ob);
				b = realloc(b, ob);
				nb = ob;
			}
			FV_CHECK_OK(fv_aug_sample(&p, &jin, 300 + i, a, s));
			FV_CHECK_OK(fv_aug_sample(&p, &rin, 300 + i, b, s));
			double sum = 0;
			for (size_t k = 0; k < ob; k++)
				sum += abs((int)a[k] - (int)b[k]);
			worst = fmax(worst, sum / ob);
		}
		/* and the colors are the photo's: the YCCK round trip at quality 92 */
		double d = 0;
		for (size_t k = 0; k < (size_t)w * h * 3; k++)
			d += abs((int)full.pixels[k] - (int)rgb[k]);
		FV_CHECK_MSG(d / ((double)w * h * 3) < 3.0, "photo %d: %.2f levels off", i,
			     d / ((double)w * h * 3));
		free(a);
		free(b);
		fv_image_free(&full);
		tjFree(jpg);
		free(cmyk);
		free(rgb);
	}
	FV_CHECK_MSG(worst < 2.0, "worst mean abs diff %.3f levels", worst);
	FV_CHECK(n > 0);
	tjDestroy(tc);
	fv_aug_scratch_destroy(&s);
	free_photos(ph, n);
}

typedef struct job {
	const photo *ph;
	int n, first, step;
	const fv_aug_params *p;
	uint8_t *out;
	int rc;
} job;

static void *work(void *arg)
{
	job *j = arg;
	fv_aug_scratch *s;
	j->rc = fv_aug_scratch_new(&s);
	size_t nb = fv_aug_out_bytes(j->p);
	for (int i = j->first; !j->rc && i < j->n; i += j->step) {
		fv_aug_input in = { FV_ENC_JPEG, j->ph[i].data, j->ph[i].len, 0, 0, 0 };
		j->rc = fv_aug_sample(j->p, &in, 0x5EED0000u + i, j->out + i * nb, s);
	}
	fv_aug_scratch_destroy(&s);
	return NULL;
}

FV_TEST(deterministic_across_runs_and_threads)
{
	photo ph[24];
	int n = load_photos(ph, 24);
	fv_aug_params p;
	fv_aug_defaults(&p, FV_AUG_TRAIN, 3, 96, 96);
	p.brightness = p.contrast = p.saturation = 0.4f;
	p.hue = 0.1f;
	p.pca_lighting = 0.1f;
	p.erase_p = 0.5f;
	size_t nb = fv_aug_out_bytes(&p);
	uint8_t *serial = malloc(nb * n), *again = malloc(nb * n), *par = malloc(nb * n);
	job j = { ph, n, 0, 1, &p, serial, 0 };
	work(&j);
	FV_CHECK_OK(j.rc);
	j.out = again;
	work(&j);
	FV_CHECK(!memcmp(serial, again, nb * n));
	pthread_t t[3];
	job jobs[3];
	for (int k = 0; k < 3; k++) {
		jobs[k] = (job){ ph, n, k, 3, &p, par, 0 };
		pthread_create(&t[k], NULL, work, &jobs[k]);
	}
	for (int k = 0; k < 3; k++) {
		pthread_join(t[k], NULL);
		FV_CHECK_OK(jobs[k].rc);
	}
	FV_CHECK(!memcmp(serial, par, nb * n));
	/* and the seed matters */
	fv_aug_scratch *s;
	FV_CHECK_OK(fv_aug_scratch_new(&s));
	fv_aug_input in = { FV_ENC_JPEG, ph[0].data, ph[0].len, 0, 0, 0 };
	FV_CHECK_OK(fv_aug_sample(&p, &in, 0x5EED0001u, again, s));
	FV_CHECK(memcmp(serial, again, nb) != 0);
	fv_aug_scratch_destroy(&s);
	free(serial);
	free(again);
	free(par);
	free_photos(ph, n);
}

/* fv_aug_sample's outputs for every photo (and three raw images whose
 * shrink factors leave the 64-byte and 16-byte tap windows) under each
 * parameter set, one buffer. */
static uint8_t *kernel_outputs(const photo *ph, int n, const fv_aug_params *ps, int np,
			       const uint8_t *const *raws, const int (*rawwh)[2], int nraw,
			       size_t *bytes)
{
	size_t total = 0;
	for (int k = 0; k < np; k++)
		total += fv_aug_out_bytes(&ps[k]) * (size_t)(n + nraw);
	uint8_t *out = malloc(total), *o = out;
	fv_aug_scratch *s;
	FV_CHECK_OK(fv_aug_scratch_new(&s));
	for (int k = 0; k < np; k++)
		for (int i = 0; i < n + nraw; i++) {
			fv_aug_input in = { FV_ENC_JPEG, ph[i < n ? i : 0].data, ph[i < n ? i : 0].len, 0, 0, 0 };
			if (i >= n)
				in = raw(raws[i - n], rawwh[i - n][0], rawwh[i - n][1], 3);
			FV_CHECK_OK(fv_aug_sample(&ps[k], &in, 0xC0DE + (uint64_t)i * 31 + k, o, s));
			o += fv_aug_out_bytes(&ps[k]);
		}
	fv_aug_scratch_destroy(&s);
	*bytes = total;
	return out;
}

FV_TEST(resample_kernels_agree_bit_for_bit)
{
	/* the AVX-512, AVX2 and plain C kernels of the fixed-point path must
	 * give the same bytes (outputs are a function of bytes, transform and
	 * seed on every host): train crops of the photos at three sizes, gray
	 * and color, float, half and normalized, flips both ways, and raw
	 * images whose shrink leaves each kernel's tap window */
	photo ph[12];
	int n = load_photos(ph, 12);
	fv_aug_params ps[5];
	fv_aug_defaults(&ps[0], FV_AUG_TRAIN, 3, 224, 224);
	fv_aug_defaults(&ps[1], FV_AUG_TRAIN, 3, 61, 37);
	ps[1].layout = FV_OUT_F16_NCHW;
	fv_aug_defaults(&ps[2], FV_AUG_TRAIN, 1, 96, 96);
	plain(&ps[3], FV_AUG_EVAL, 3, 100, 150);
	ps[3].resize_shorter = 0;
	fv_aug_defaults(&ps[4], FV_AUG_TRAIN, 3, 224, 224);
	ps[4].flip_p = 1;
	/* the eval set (ps[3]) takes each raw image whole onto 150 columns:
	 * shrinks of 6 (16 bytes per output), 4.3 (per 2 outputs), 3.3 (64
	 * bytes per 16 outputs fit, 16 per 4 do not), 1.5 (all fit) and 12 (no
	 * window fits: plain C on every level) */
	const int wh[5][2] = { { 900, 150 }, { 640, 200 }, { 500, 160 }, { 225, 150 }, { 1800, 110 } };
	uint8_t *raws[5];
	for (int i = 0; i < 5; i++)
		raws[i] = synth(wh[i][0], wh[i][1], 3);
	int top = fv_resample_fx_isa(9);
	size_t nb = 0, nb2;
	uint8_t *want = kernel_outputs(ph, n, ps, 5, (const uint8_t *const *)raws, wh, 5, &nb);
	for (int level = top - 1; level >= 0; level--) {
		FV_CHECK_EQ(fv_resample_fx_isa(level), level);
		uint8_t *got = kernel_outputs(ph, n, ps, 5, (const uint8_t *const *)raws, wh, 5, &nb2);
		FV_CHECK_EQ(nb2, nb);
		FV_CHECK_MSG(!memcmp(want, got, nb), "kernel level %d differs from level %d", level, top);
		free(got);
	}
	fv_resample_fx_isa(9);
	if (getenv("FV_TEST_VERBOSE"))
		fprintf(stderr, "kernel levels compared: %d down to 0\n", top);
	free(want);
	for (int i = 0; i < 5; i++)
		free(raws[i]);
	free_photos(ph, n);
}

FV_TEST(resample_kernels_agree_on_odd_sizes)
{
	/* the same across levels straight through the resampler, on random
	 * small and odd shapes: 1-60 (some up to 900) pixels wide, 1-70
	 * outputs, partial windows and blocks, gray and RGB, half and float,
	 * flipped or not; the source rows end 16 bytes past the image */
	fv_axis ax = { 0 }, ay = { 0 };
	fv_aug_buf tmp = { 0 };
	int top = fv_resample_fx_isa(9), checked = 0;
	for (int r = 0; r < 1500; r++) {
		int c = r % 3 == 0 ? 1 : 3, W = 1 + (int)(fv_test_rand() % (r % 4 == 0 ? 900 : 60));
		int H = 1 + (int)(fv_test_rand() % 60), ow = 1 + (int)(fv_test_rand() % 70);
		int oh = 1 + (int)(fv_test_rand() % 50);
		double cw = 1 + fv_test_rand() % W, ch = 1 + fv_test_rand() % H;
		double x0 = (W - cw) * (fv_test_rand() % 1000) / 1000.0;
		double y0 = (H - ch) * (fv_test_rand() % 1000) / 1000.0;
		FV_CHECK_OK(fv_axis_plan(&ax, x0, cw, ow, W, 0));
		FV_CHECK_OK(fv_axis_plan(&ay, y0, ch, oh, H, 0));
		if (!fv_axis_fx_ok(&ax, &ay, c))
			continue;
		size_t stride = (size_t)W * c, n = (size_t)ow * oh;
		uint8_t *src = malloc(stride * H + 16);
		for (size_t i = 0; i < stride * H + 16; i++)
			src[i] = (uint8_t)fv_test_rand();
		fv_aug_view v = { src + (size_t)ay.lo * stride + (size_t)ax.lo * c, ax.lo, ay.lo,
				  ax.hi - ax.lo, ay.hi - ay.lo, c, stride };
		uint8_t *want = malloc(n * 12), *got = malloc(n * 12);
		for (int level = top; level >= 0; level--) {
			uint8_t *out = level == top ? want : got;
			fv_resample_fx_isa(level);
			fv_emit em = fv_emit_planes((float *)out, n);
			if (r & 2) {
				em.half = 1;
				em.out[1] = (uint16_t *)out + n;
				em.out[2] = (uint16_t *)out + 2 * n;
			}
			memset(out, 0x5A, n * 12);
			FV_CHECK_OK(fv_resample_fx(&em, &v, &ax, &ay, r & 1, &tmp));
			if (level < top && memcmp(want, got, n * 12)) {
				FV_CHECK_MSG(0, "level %d differs from %d: c %d, %dx%d -> %dx%d", level, top,
					     c, W, H, ow, oh);
				level = -1;
			}
		}
		fv_resample_fx_isa(9);
		checked++;
		free(want);
		free(got);
		free(src);
	}
	FV_CHECK(checked > 1000);
	fv_aug_buf *bufs[] = { &tmp, &ax.bstart, &ax.bcnt, &ax.bw, &ax.bqstart, &ax.bqw, &ax.bqp, &ax.blast,
			       &ay.bstart, &ay.bcnt, &ay.bw, &ay.bqstart, &ay.bqw, &ay.bqp, &ay.blast };
	for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
		free(bufs[i]->p);
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static void expect_decode_error(const fv_aug_params *p, const uint8_t *d, size_t len,
				fv_aug_scratch *s, const char *what)
{
	size_t nb = fv_aug_out_bytes(p);
	uint8_t *o = malloc(nb);
	memset(o, 0xAB, nb);
	fv_aug_input in = { FV_ENC_JPEG, d, len, 0, 0, 0 };
	fv_err_clear();
	int rc = fv_aug_sample(p, &in, 1, o, s);
	FV_CHECK_MSG(rc == FV_E_DECODE, "%s: rc %d (%s)", what, rc, fv_err_msg(rc));
	FV_CHECK_MSG(strlen(fv_err_msg(rc)) > 5, "%s: no reason", what);
	FV_CHECK_MSG(all_zero(o, nb), "%s: output not zeroed", what);
	free(o);
}

FV_TEST(bad_jpegs_fail_cleanly)
{
	photo ph[1];
	if (!load_photos(ph, 1))
		return;
	fv_aug_scratch *s;
	FV_CHECK_OK(fv_aug_scratch_new(&s));
	fv_aug_params p;
	/* the whole image is needed, so every row is decoded */
	fv_aug_defaults(&p, FV_AUG_EVAL, 3, 64, 64);
	p.resize_shorter = 0;
	uint8_t junk[4096];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (uint8_t)fv_test_rand();
	expect_decode_error(&p, junk, 0, s, "zero bytes");
	expect_decode_error(&p, junk, sizeof junk, s, "garbage");
	junk[0] = 0xFF;
	junk[1] = 0xD8;
	expect_decode_error(&p, junk, sizeof junk, s, "garbage after SOI");
	expect_decode_error(&p, ph[0].data, 400, s, "header only");
	expect_decode_error(&p, ph[0].data, ph[0].len * 3 / 10, s, "truncated");
	uint8_t *bad = malloc(ph[0].len);
	memcpy(bad, ph[0].data, ph[0].len);
	for (size_t i = ph[0].len / 3; i < ph[0].len / 3 + 64; i++)
		bad[i] = 0xFF; /* bogus markers inside the entropy-coded data */
	bad[ph[0].len / 3 + 64] = 0x01;
	expect_decode_error(&p, bad, ph[0].len, s, "corrupt middle");
	/* the scratch still works after all that */
	fv_aug_input in = { FV_ENC_JPEG, ph[0].data, ph[0].len, 0, 0, 0 };
	float *o = malloc(fv_aug_out_bytes(&p));
	FV_CHECK_OK(fv_aug_sample(&p, &in, 1, o, s));
	/* random byte damage: any outcome but a crash, zeroed output on error */
	fv_aug_defaults(&p, FV_AUG_TRAIN, 3, 64, 64);
	size_t nb = fv_aug_out_bytes(&p);
	for (int t = 0; t < 150; t++) {
		memcpy(bad, ph[0].data, ph[0].len);
		for (int k = 0; k < 1 + t % 8; k++)
			bad[fv_test_rand() % ph[0].len] = (uint8_t)fv_test_rand();
		fv_aug_input bin = { FV_ENC_JPEG, bad, ph[0].len - (t % 3) * (fv_test_rand() % 5000), 0, 0, 0 };
		memset(o, 0xAB, nb);
		int rc = fv_aug_sample(&p, &bin, t, o, s);
		FV_CHECK_MSG(rc == 0 || rc == FV_E_DECODE || rc == FV_E_FORMAT || rc == FV_E_TOOBIG,
			     "mutation %d: rc %d", t, rc);
		if (rc)
			FV_CHECK(all_zero((uint8_t *)o, nb));
	}
	free(o);
	free(bad);
	fv_aug_scratch_destroy(&s);
	free_photos(ph, 1);
}

FV_TEST(png_equals_raw)
{
	int W = 70, H = 50;
	uint8_t *px = synth(W, H, 3);
	png_image img;
	memset(&img, 0, sizeof img);
	img.version = PNG_IMAGE_VERSION;
	img.width = W;
	img.height = H;
	img.format = PNG_FORMAT_RGB;
	png_alloc_size_t len = 0;
	FV_CHECK(png_image_write_to_memory(&img, NULL, &len, 0, px, 0, NULL));
	uint8_t *buf = malloc(len);
	FV_CHECK(png_image_write_to_memory(&img, buf, &len, 0, px, 0, NULL));
	fv_aug_params p;
	fv_aug_defaults(&p, FV_AUG_TRAIN, 3, 32, 32);
	fv_aug_input a = raw(px, W, H, 3), b = { FV_ENC_PNG, buf, len, 0, 0, 0 };
	int rc1, rc2;
	float *oa = run_f32(&p, &a, 8, &rc1), *ob = run_f32(&p, &b, 8, &rc2);
	FV_CHECK_OK(rc1);
	FV_CHECK_OK(rc2);
	FV_CHECK(!memcmp(oa, ob, fv_aug_out_bytes(&p)));
	b.len = len / 2;
	float *oc = run_f32(&p, &b, 8, &rc1);
	FV_CHECK_EQ(rc1, FV_E_DECODE);
	free(oa);
	free(ob);
	free(oc);
	free(buf);
	free(px);
}
