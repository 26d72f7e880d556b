/* Unit tests for the photometric half of augment/transform: each ColorJitter
 * op alone against the property that defines it, and PCA lighting as a
 * per-channel offset of the right size. Outputs are compared with the same
 * sample without the op (mean 0, std 1: pixel units). */
#include "fv_test.h"
#include "fv_error.h"
#include "augment/transform.h"

#include <stdlib.h>
#include <string.h>

enum { W = 40, H = 30, N = W * H };

static uint8_t *synth(void)
{
	uint8_t *p = malloc(N * 3);
	for (int i = 0; i < N * 3; i++)
		p[i] = (uint8_t)(30 + fv_test_rand() % 180); /* away from 0 and 255 */
	return p;
}

static void plain(fv_aug_params *p)
{
	fv_aug_defaults(p, FV_AUG_TRAIN, 3, H, W);
	p->rrc = 0; /* resize the whole image: the identity here */
	p->flip_p = 0;
	p->brightness = p->contrast = p->saturation = p->hue = 0;
	for (int i = 0; i < 3; i++) {
		p->mean[i] = 0;
		p->std[i] = 1;
	}
}

static void run(const fv_aug_params *p, const uint8_t *px, uint64_t seed, float *out)
{
	fv_aug_scratch *s;
	FV_CHECK_OK(fv_aug_scratch_new(&s));
	fv_aug_input in = { FV_ENC_RAW, px, N * 3, W, H, 3 };
	FV_CHECK_OK(fv_aug_sample(p, &in, seed, out, s));
	fv_aug_scratch_destroy(&s);
}

static double gray(const float *o, int i)
{
	return 0.2989 * o[i] + 0.587 * o[N + i] + 0.114 * o[2 * N + i];
}

FV_TEST(identity_without_ops)
{
	uint8_t *px = synth();
	fv_aug_params p;
	plain(&p);
	float o[3 * N];
	run(&p, px, 1, o);
	for (int i = 0; i < N; i++)
		for (int c = 0; c < 3; c++)
			FV_CHECK(o[c * N + i] == px[i * 3 + c]);
	free(px);
}

FV_TEST(brightness_scales_all_pixels)
{
	uint8_t *px = synth();
	fv_aug_params p;
	plain(&p);
	p.brightness = 0.4f;
	float o[3 * N];
	double lo = 9, hi = 0;
	for (uint64_t seed = 0; seed < 30; seed++) {
		run(&p, px, seed, o);
		double f = o[0] / px[0];
		FV_CHECK(f >= 0.6 - 1e-6 && f <= 1.4 + 1e-6);
		lo = fmin(lo, f);
		hi = fmax(hi, f);
		int bad = 0;
		for (int i = 0; i < N; i++)
			for (int c = 0; c < 3; c++)
				bad += fabs(o[c * N + i] - fmin(px[i * 3 + c] * f, 255)) > 1e-3 * 255;
		FV_CHECK_EQ(bad, 0);
	}
	FV_CHECK(lo < 0.8 && hi > 1.2);
	free(px);
}

FV_TEST(contrast_blends_with_mean_gray)
{
	uint8_t *px = synth();
	fv_aug_params p;
	plain(&p);
	p.contrast = 0.4f;
	float o[3 * N];
	double m = 0;
	for (int i = 0; i < N; i++)
		m += 0.2989 * px[i * 3] + 0.587 * px[i * 3 + 1] + 0.114 * px[i * 3 + 2];
	m /= N;
	for (uint64_t seed = 0; seed < 20; seed++) {
		run(&p, px, seed, o);
		/* o = f x + (1 - f) m: solve f from two pixels, check the rest */
		int a = 0, b = 1;
		while (px[b * 3] == px[a * 3])
			b++;
		double f = (o[b] - o[a]) / (px[b * 3] - px[a * 3]);
		FV_CHECK(f >= 0.6 - 1e-4 && f <= 1.4 + 1e-4);
		int bad = 0;
		for (int i = 0; i < N; i++)
			for (int c = 0; c < 3; c++) {
				double want = fmin(fmax(f * px[i * 3 + c] + (1 - f) * m, 0), 255);
				bad += fabs(o[c * N + i] - want) > 0.01;
			}
		FV_CHECK_EQ(bad, 0);
	}
	free(px);
}

/* Brightness and contrast together, in the order the seed drew: the
 * output is one of the two compositions of the single ops, with the factors
 * each op alone draws for that seed (every factor is drawn, used or not). */
FV_TEST(brightness_and_contrast_compose_in_drawn_order)
{
	uint8_t *px = synth();
	fv_aug_params p;
	plain(&p);
	static float ob[3 * N], oc[3 * N], o[3 * N];
	static double y[3 * N], bc[3 * N], cb[3 * N];
	double m = 0;
	for (int i = 0; i < N; i++)
		m += 0.2989 * px[i * 3] + 0.587 * px[i * 3 + 1] + 0.114 * px[i * 3 + 2];
	m /= N;
	int a = 0, b = 1, seen[2] = { 0, 0 };
	while (px[a * 3] > 150)
		a++;
	while (px[b * 3] > 150 || px[b * 3] == px[a * 3])
		b++;
	for (uint64_t seed = 0; seed < 24; seed++) {
		p.brightness = 0.4f;
		p.contrast = 0;
		run(&p, px, seed, ob);
		double fb = ob[a] / px[a * 3];
		p.brightness = 0;
		p.contrast = 0.4f;
		run(&p, px, seed, oc);
		double fc = (oc[b] - oc[a]) / (px[b * 3] - px[a * 3]);
		p.brightness = 0.4f;
		run(&p, px, seed, o);
		/* brightness then contrast */
		double m2 = 0;
		for (int i = 0; i < 3 * N; i++)
			y[i] = fmin(fb * px[i], 255);
		for (int i = 0; i < N; i++)
			m2 += 0.2989 * y[i * 3] + 0.587 * y[i * 3 + 1] + 0.114 * y[i * 3 + 2];
		m2 /= N;
		for (int i = 0; i < 3 * N; i++) {
			bc[i] = fmin(fmax(fc * y[i] + (1 - fc) * m2, 0), 255);
			cb[i] = fmin(fb * fmin(fmax(fc * px[i] + (1 - fc) * m, 0), 255), 255);
		}
		double dbc = 0, dcb = 0;
		for (int i = 0; i < N; i++)
			for (int c = 0; c < 3; c++) {
				dbc = fmax(dbc, fabs(o[c * N + i] - bc[i * 3 + c]));
				dcb = fmax(dcb, fabs(o[c * N + i] - cb[i * 3 + c]));
			}
		FV_CHECK_MSG(fmin(dbc, dcb) < 0.02, "seed %d: off both orders by %g / %g", (int)seed,
			     dbc, dcb);
		seen[dbc < dcb]++;
	}
	FV_CHECK(seen[0] > 0 && seen[1] > 0); /* both orders drawn */
	free(px);
}

FV_TEST(saturation_keeps_gray)
{
	uint8_t *px = synth();
	fv_aug_params p;
	plain(&p);
	p.saturation = 0.4f;
	float o[3 * N];
	int changed = 0;
	for (uint64_t seed = 0; seed < 20; seed++) {
		run(&p, px, seed, o);
		for (int i = 0; i < N; i++) {
			double g0 = 0.2989 * px[i * 3] + 0.587 * px[i * 3 + 1] + 0.114 * px[i * 3 + 2];
			int clamped = 0;
			for (int c = 0; c < 3; c++)
				clamped |= o[c * N + i] <= 0 || o[c * N + i] >= 255;
			if (!clamped)
				FV_CHECK_NEAR(gray(o, i), g0, 0.01);
			changed += fabs(o[i] - px[i * 3]) > 1;
		}
	}
	FV_CHECK(changed > N);
	free(px);
}

FV_TEST(hue_keeps_value_and_chroma)
{
	uint8_t *px = synth();
	fv_aug_params p;
	plain(&p);
	p.hue = 0.5f;
	float o[3 * N];
	int changed = 0;
	for (uint64_t seed = 0; seed < 10; seed++) {
		run(&p, px, seed, o);
		for (int i = 0; i < N; i++) {
			double mx0 = 0, mn0 = 255, mx = 0, mn = 255;
			for (int c = 0; c < 3; c++) {
				mx0 = fmax(mx0, px[i * 3 + c]);
				mn0 = fmin(mn0, px[i * 3 + c]);
				mx = fmax(mx, o[c * N + i]);
				mn = fmin(mn, o[c * N + i]);
			}
			FV_CHECK_NEAR(mx, mx0, 0.01);
			FV_CHECK_NEAR(mn, mn0, 0.01);
			changed += fabs(o[i] - px[i * 3]) > 1;
		}
	}
	FV_CHECK(changed > N);
	free(px);
}

FV_TEST(pca_lighting_offsets)
{
	uint8_t *px = synth();
	fv_aug_params p;
	plain(&p);
	p.pca_lighting = 0.1f;
	float o[3 * N];
	/* project the offset on the first eigenvector: std 255 * 0.1 * 0.2175 */
	const double v0[3] = { -0.5675, -0.5808, -0.5836 };
	double s1 = 0, s2 = 0;
	int n = 200;
	for (int seed = 0; seed < n; seed++) {
		run(&p, px, seed, o);
		double off[3];
		for (int c = 0; c < 3; c++) {
			off[c] = o[c * N] - px[c];
			for (int i = 1; i < N; i += 97)
				FV_CHECK_NEAR(o[c * N + i] - px[i * 3 + c], off[c], 1e-3);
		}
		double proj = off[0] * v0[0] + off[1] * v0[1] + off[2] * v0[2];
		s1 += proj;
		s2 += proj * proj;
	}
	double mean = s1 / n, sd = sqrt(s2 / n - mean * mean), want = 255 * 0.1 * 0.2175;
	FV_CHECK_MSG(fabs(mean) < 0.25 * want && sd > 0.8 * want && sd < 1.2 * want,
		     "projection mean %g sd %g (want sd %g)", mean, sd, want);
	free(px);
}

FV_TEST(gray_output_skips_color_ops)
{
	uint8_t *px = synth();
	fv_aug_params p;
	plain(&p);
	p.out_c = 1;
	p.saturation = 0.4f;
	p.hue = 0.3f;
	p.pca_lighting = 0.1f;
	float o[N];
	run(&p, px, 3, o);
	for (int i = 0; i < N; i++)
		FV_CHECK_NEAR(o[i], 0.299 * px[i * 3] + 0.587 * px[i * 3 + 1] + 0.114 * px[i * 3 + 2],
			      1e-3);
	free(px);
}
