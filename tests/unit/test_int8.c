/* test_int8.c — the INT8 kernels against a plain C reference (exact int32
 * sums on every code path, worst-case saturation inputs included),
 * requantization rounding, per-channel weight quantization error bounds,
 * and the calibration thresholds. */
#include <stdlib.h>
#include <string.h>

#include "exporter/kernels.h"
#include "exporter/xmodel.h"
#include "fv_test.h"

static void fill_case(int M, int N, int K, int extreme, uint8_t *A, int lda, int8_t *W)
{
	for (int m = 0; m < M; m++)
		for (int k = 0; k < lda; k++)
			A[(size_t)m * lda + k] = extreme ? 255 : (uint8_t)(fv_test_rand() & 255);
	for (int i = 0; i < N * K; i++)
		W[i] = extreme ? (int8_t)(i & 1 ? FV_QW_MAX : -FV_QW_MAX)
			       : (int8_t)((int)(fv_test_rand() % (2 * FV_QW_MAX + 1)) - FV_QW_MAX);
	if (extreme == 2) /* all +63: every pair sums to the largest positive int16 step */
		for (int i = 0; i < N * K; i++)
			W[i] = FV_QW_MAX;
}

/* One GEMM through every kernel path against the reference; 0 if all equal. */
static int gemm_case(int M, int N, int K, int extreme, enum fv_qepi_kind kind)
{
	int K4 = fv_round_up(K, 4), lda = K4 + (int)(fv_test_rand() % 3) * 4;
	uint8_t *A = malloc((size_t)M * lda + 64);
	int8_t *W = malloc((size_t)N * K), *Bp = malloc(fv_qgemm_packed_size(N, K));
	int n16 = fv_round_up(N, 16);
	int32_t *bias = calloc((size_t)n16, sizeof *bias);
	float *mult = calloc((size_t)n16, sizeof *mult);
	size_t osz = (size_t)M * N * 4;
	void *ref = malloc(osz), *got = malloc(osz);
	fill_case(M, N, K, extreme, A, lda, W);
	for (int n = 0; n < N; n++) {
		bias[n] = (int32_t)(fv_test_rand() % 20001) - 10000;
		mult[n] = (float)(fv_test_uniform() * 0.01);
	}
	fv_qgemm_pack(N, K, W, Bp);
	fv_qepi e = { .kind = kind, .bias = bias, .mult = mult, .zp = 17, .lo = 17, .hi = 250 };
	int bad = 0;
	fv_qgemm_ref(M, N, K, A, lda, W, &e, ref, N);
	for (int mode = 0; mode < 3; mode++) {
		fv_qgemm_force(mode);
		memset(got, 0xAB, osz);
		fv_qgemm(M, N, K, A, lda, Bp, &e, got, N);
		size_t cmp = (size_t)M * N * (kind == FV_QEPI_U8 ? 1 : 4);
		if (memcmp(ref, got, cmp)) {
			fprintf(stderr, "  mismatch: mode %d M %d N %d K %d extreme %d kind %d\n", mode, M, N,
				K, extreme, kind);
			bad = 1;
		}
	}
	fv_qgemm_force(0);
	free(A), free(W), free(Bp), free(bias), free(mult), free(ref), free(got);
	return bad;
}

FV_TEST(qgemm_matches_reference_exactly)
{
	static const int shapes[][3] = {
		{ 1, 1, 1 }, { 1, 16, 4 }, { 4, 16, 9 }, { 5, 10, 144 }, { 13, 33, 288 },
		{ 8, 64, 576 }, { 9, 17, 3 }, { 784, 16, 9 }, { 3, 64, 1 }, { 17, 48, 37 },
	};
	int bad = 0;
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
		for (int kind = FV_QEPI_I32; kind <= FV_QEPI_F32; kind++)
			bad += gemm_case(shapes[s][0], shapes[s][1], shapes[s][2], 0, (enum fv_qepi_kind)kind);
	FV_CHECK_EQ(bad, 0);
}

FV_TEST(qgemm_worst_case_does_not_saturate)
{
	/* A = 255 everywhere and |w| = 63: maddubs pairs reach 32130, the most a
	 * 7-bit weight allows; the int32 sums must still match exactly. */
	int bad = gemm_case(8, 32, 576, 1, FV_QEPI_I32) + gemm_case(7, 20, 1152, 2, FV_QEPI_I32);
	FV_CHECK_EQ(bad, 0);
	/* And the reference itself is right: 255 * 63 * K. */
	uint8_t a[8];
	int8_t w[8];
	memset(a, 255, sizeof a);
	memset(w, FV_QW_MAX, sizeof w);
	int32_t out;
	fv_qepi e = { .kind = FV_QEPI_I32 };
	fv_qgemm_ref(1, 1, 8, a, 8, w, &e, &out, 1);
	FV_CHECK_EQ(out, 255 * 63 * 8);
}

FV_TEST(requant_rounds_half_to_even_and_clamps)
{
	FV_CHECK_EQ(fv_requant(5, 0.5f, 0, 0, 255), 2);    /* 2.5 -> 2 */
	FV_CHECK_EQ(fv_requant(7, 0.5f, 0, 0, 255), 4);    /* 3.5 -> 4 */
	FV_CHECK_EQ(fv_requant(-3, 0.5f, 10, 0, 255), 8);  /* -1.5 -> -2, +10 */
	FV_CHECK_EQ(fv_requant(-1, 0.5f, 10, 0, 255), 10); /* -0.5 -> 0 */
	FV_CHECK_EQ(fv_requant(1000, 1.0f, 0, 0, 255), 255);
	FV_CHECK_EQ(fv_requant(-1000, 1.0f, 3, 3, 255), 3); /* fused ReLU: clamp at zp */
	FV_CHECK_EQ(fv_requant(2000000000, 1000.0f, 0, 0, 255), 255); /* no int overflow */
	FV_CHECK_EQ(fv_requant(12, 0.25f, 128, 0, 255), 131);
	FV_CHECK_EQ(fv_requant(10, 0.25f, 128, 0, 255), 130); /* 2.5 -> 2 */
}

FV_TEST(weight_quantization_error_is_bounded_per_channel)
{
	fv_xmodel m = { .nops = 1 };
	fv_xop op = { .kind = FV_RT_CONV, .c = 4, .ic = 3, .ih = 5, .iw = 5, .k = 3, .groups = 1 };
	size_t per = 27, wn = 4 * per;
	op.wt = malloc(wn * sizeof *op.wt);
	for (size_t i = 0; i < wn; i++) /* channels with very different ranges */
		op.wt[i] = (float)((fv_test_uniform() * 2 - 1) * (i / per == 0 ? 0.01 : i / per == 1 ? 1 : 30));
	for (size_t k = 0; k < per; k++)
		op.wt[3 * per + k] = 0; /* an all-zero channel */
	m.ops = &op;
	FV_CHECK_OK(fv_quant_weights(&m));
	for (int c = 0; c < 4; c++) {
		float amax = 0;
		for (size_t k = 0; k < per; k++)
			amax = fmaxf(amax, fabsf(op.wt[c * per + k]));
		if (c < 3)
			FV_CHECK_NEAR(op.wscale[c], amax / FV_QW_MAX, 1e-7 * amax);
		for (size_t k = 0; k < per; k++) {
			int q = op.wq[c * per + k];
			FV_CHECK(q >= -FV_QW_MAX && q <= FV_QW_MAX);
			FV_CHECK(fabsf(q * op.wscale[c] - op.wt[c * per + k]) <= op.wscale[c] / 2 * 1.0001f);
		}
	}
	for (size_t k = 0; k < per; k++)
		FV_CHECK_EQ(op.wq[3 * per + k], 0);
	free(op.wt), free(op.wq), free(op.wscale);
}

FV_TEST(kl_threshold_clips_a_long_tail)
{
	/* |x| of a Laplace-like distribution, plus a handful of far outliers that
	 * set max: min-max would waste nearly all levels on the tail. */
	enum { NB = 2048 };
	static double hist[NB];
	memset(hist, 0, sizeof hist);
	double amax = 100.0;
	for (int i = 0; i < 200000; i++) {
		double x = -log(1 - fv_test_uniform()) * 2.0; /* mean 2 */
		int b = (int)(x / amax * NB);
		hist[b < NB ? b : NB - 1] += 1;
	}
	hist[NB - 1] += 3;
	double t = fv_calib_kl_threshold(hist, NB, amax, 255);
	double p = fv_calib_percentile(hist, NB, amax, 99.99);
	FV_CHECK_MSG(t < amax / 2 && t > 2.0, "KL threshold %g of max %g", t, amax);
	FV_CHECK_MSG(p < amax / 2 && p > 2.0, "99.99th percentile %g of max %g", p, amax);
	/* A uniform histogram has no tail worth clipping. */
	for (int i = 0; i < NB; i++)
		hist[i] = 100;
	t = fv_calib_kl_threshold(hist, NB, amax, 255);
	FV_CHECK_MSG(t > 0.9 * amax, "uniform: threshold %g of %g", t, amax);
}

FV_TEST(qadd_vector_equals_scalar_formula)
{
	enum { N = 1003 }; /* not a multiple of 8: the scalar tail runs too */
	uint8_t a[N], b[N], got[N];
	for (int i = 0; i < N; i++)
		a[i] = (uint8_t)(fv_test_rand() & 255), b[i] = (uint8_t)(fv_test_rand() & 255);
	float sa = 0.031f, sb = 0.017f, so = 0.043f;
	int32_t za = 7, zb = 130, zo = 11;
	fv_qadd(N, a, sa, za, b, sb, zb, so, zo, zo, 255, got); /* fused ReLU: lo = zo */
	int bad = 0;
	for (int i = 0; i < N; i++) {
		float f = nearbyintf(((float)(a[i] - za) * sa + (float)(b[i] - zb) * sb) / so) + (float)zo;
		int want = f < zo ? zo : f > 255 ? 255 : (int)f;
		bad += got[i] != want;
	}
	FV_CHECK_EQ(bad, 0);
}
