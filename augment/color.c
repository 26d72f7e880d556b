/* augment/color.c — the photometric half of the train transform and the one
 * write of the output. All passes run on planar floats at the output size
 * (0..255 pixel units), so each is a short loop gcc vectorizes; sums run in
 * a fixed order, so results never depend on threads.
 *
 * ColorJitter follows torchvision: the four ops in a random order (randperm),
 * factors uniform in [max(0, 1-x), 1+x] (hue in [-h, h]), clamped to the
 * pixel range after each op; gray is 0.2989 R + 0.587 G + 0.114 B. Lighting
 * is AlexNet's PCA noise with the ImageNet eigenvalues/vectors (not clamped,
 * as in fb.resnet.torch). On one channel, saturation, hue and lighting do
 * nothing. */
#include <math.h>
#include <string.h>
#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "augment/aug_internal.h"

/* fminf/fmaxf are library calls without -ffinite-math-only; these compile
 * to vminps/vmaxps and vectorize. */
static inline float lo0(float x)
{
	return x > 0.f ? x : 0.f;
}

static inline float hi255(float x)
{
	return x < 255.f ? x : 255.f;
}

static void brightness(float *restrict x, size_t n, float f)
{
	for (size_t i = 0; i < n; i++)
		x[i] = hi255(x[i] * f);
}

static void blend(float *restrict x, size_t n, float f, float other)
{
	float b = (1.f - f) * other;
	for (size_t i = 0; i < n; i++)
		x[i] = hi255(lo0(x[i] * f + b));
}

static void contrast(float *planes, int c, size_t n, float f)
{
	/* 16 fixed lanes in double: vectorizes, and the order of the sum is
	 * fixed by the code, not by the compiler or the thread */
	double lane[16] = { 0 }, sum = 0;
	size_t i = 0;
	const float *r = planes, *g = planes + n, *b = planes + 2 * n;
	if (c == 3) {
		for (; i + 16 <= n; i += 16)
			for (int k = 0; k < 16; k++)
				lane[k] += 0.2989f * r[i + k] + 0.587f * g[i + k] + 0.114f * b[i + k];
		for (; i < n; i++)
			sum += 0.2989f * r[i] + 0.587f * g[i] + 0.114f * b[i];
	} else {
		for (; i + 16 <= n; i += 16)
			for (int k = 0; k < 16; k++)
				lane[k] += r[i + k];
		for (; i < n; i++)
			sum += r[i];
	}
	for (int k = 0; k < 16; k++)
		sum += lane[k];
	float mean = (float)(sum / (double)n);
	blend(planes, n * c, f, mean);
}

static void saturation(float *planes, size_t n, float f)
{
	float *restrict r = planes, *restrict g = planes + n, *restrict b = planes + 2 * n;
	for (size_t i = 0; i < n; i++) {
		float gray = (1.f - f) * (0.2989f * r[i] + 0.587f * g[i] + 0.114f * b[i]);
		r[i] = hi255(lo0(r[i] * f + gray));
		g[i] = hi255(lo0(g[i] * f + gray));
		b[i] = hi255(lo0(b[i] * f + gray));
	}
}

static inline float clampv(float x, float v)
{
	return x < 0.f ? 0.f : x > v ? v : x;
}

/* torchvision's _rgb2hsv / _hsv2rgb, per pixel */
static void hue(float *planes, size_t n, float shift)
{
	float *r = planes, *g = planes + n, *b = planes + 2 * n;
	for (size_t i = 0; i < n; i++) {
		float R = r[i], G = g[i], B = b[i];
		float maxc = R > G ? R : G, minc = R < G ? R : G;
		maxc = maxc > B ? maxc : B;
		minc = minc < B ? minc : B;
		float cr = maxc - minc;
		int eq = maxc == minc;
		float s = cr / (eq ? 1.f : maxc);
		float d = eq ? 1.f : cr;
		float rc = (maxc - R) / d, gc = (maxc - G) / d, bc = (maxc - B) / d;
		float h;
		if (maxc == R)
			h = bc - gc;
		else if (maxc == G)
			h = 2.f + rc - bc;
		else
			h = 4.f + gc - rc;
		h = fmodf(h / 6.f + 1.f, 1.f);
		h = fmodf(h + shift + 1.f, 1.f);
		float v = maxc;
		float h6 = h * 6.f;
		int k = (int)floorf(h6);
		float f = h6 - (float)k;
		k %= 6;
		float p = clampv(v * (1.f - s), 255.f);
		float q = clampv(v * (1.f - s * f), 255.f);
		float t = clampv(v * (1.f - s * (1.f - f)), 255.f);
		switch (k) {
		case 0: R = v; G = t; B = p; break;
		case 1: R = q; G = v; B = p; break;
		case 2: R = p; G = v; B = t; break;
		case 3: R = p; G = q; B = v; break;
		case 4: R = t; G = p; B = v; break;
		default: R = v; G = p; B = q; break;
		}
		r[i] = R;
		g[i] = G;
		b[i] = B;
	}
}

void fv_color_jitter(float *planes, int c, size_t n, const fv_aug_params *p, uint64_t seed)
{
	fv_rng r;
	fv_rng_seed(&r, seed, FV_STREAM_JITTER);
	int order[4] = { 0, 1, 2, 3 };
	for (int i = 3; i > 0; i--) {
		int j = fv_rng_int(&r, i + 1);
		int t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	/* every factor is drawn, used or not, so the stream never shifts */
	float fb = (float)fv_rng_uniform(&r, fmax(0, 1 - p->brightness), 1 + p->brightness);
	float fc = (float)fv_rng_uniform(&r, fmax(0, 1 - p->contrast), 1 + p->contrast);
	float fs = (float)fv_rng_uniform(&r, fmax(0, 1 - p->saturation), 1 + p->saturation);
	float fh = (float)fv_rng_uniform(&r, -p->hue, p->hue);
	for (int i = 0; i < 4; i++) {
		switch (order[i]) {
		case 0:
			if (p->brightness > 0)
				brightness(planes, n * c, fb);
			break;
		case 1:
			if (p->contrast > 0)
				contrast(planes, c, n, fc);
			break;
		case 2:
			if (p->saturation > 0 && c == 3)
				saturation(planes, n, fs);
			break;
		default:
			if (p->hue > 0 && c == 3)
				hue(planes, n, fh);
			break;
		}
	}
}

void fv_color_lighting(float *planes, int c, size_t n, float std, uint64_t seed)
{
	static const float eigval[3] = { 0.2175f, 0.0188f, 0.0045f };
	static const float eigvec[3][3] = {
		{ -0.5675f, 0.7192f, 0.4009f },
		{ -0.5808f, -0.0045f, -0.8140f },
		{ -0.5836f, -0.6948f, 0.4203f },
	};
	if (c != 3 || std <= 0)
		return;
	fv_rng r;
	fv_rng_seed(&r, seed, FV_STREAM_LIGHT);
	float alpha[3];
	for (int i = 0; i < 3; i++)
		alpha[i] = (float)fv_rng_normal(&r) * std;
	for (int ch = 0; ch < 3; ch++) {
		float add = 0;
		for (int i = 0; i < 3; i++)
			add += eigvec[ch][i] * alpha[i] * eigval[i];
		add *= 255.f;
		float *restrict x = planes + ch * n;
		for (size_t i = 0; i < n; i++)
			x[i] += add;
	}
}

void fv_color_to_gray(float *planes, size_t n)
{
	float *restrict y = planes;
	const float *restrict g = planes + n, *restrict b = planes + 2 * n;
	for (size_t i = 0; i < n; i++)
		y[i] = 0.299f * y[i] + 0.587f * g[i] + 0.114f * b[i];
}

void fv_color_replicate(float *planes, size_t n)
{
	memcpy(planes + n, planes, n * sizeof(float));
	memcpy(planes + 2 * n, planes, n * sizeof(float));
}

int fv_erase_box(const fv_aug_params *p, uint64_t seed, int *ey, int *ex, int *eh, int *ew)
{
	fv_rng r;
	fv_rng_seed(&r, seed, FV_STREAM_ERASE);
	if (p->erase_p <= 0 || fv_rng_uniform(&r, 0, 1) >= p->erase_p)
		return 0;
	int H = p->out_h, W = p->out_w;
	double area = (double)H * W;
	double lr0 = log(p->erase_ratio_min), lr1 = log(p->erase_ratio_max);
	for (int t = 0; t < 10; t++) {
		double ea = area * fv_rng_uniform(&r, p->erase_scale_min, p->erase_scale_max);
		double ar = exp(fv_rng_uniform(&r, lr0, lr1));
		int h = (int)lround(sqrt(ea * ar));
		int w = (int)lround(sqrt(ea / ar));
		if (!(h < H && w < W))
			continue;
		*ey = fv_rng_int(&r, H - h + 1);
		*ex = fv_rng_int(&r, W - w + 1);
		*eh = h;
		*ew = w;
		return h > 0 && w > 0;
	}
	return 0;
}

/* float -> IEEE half, round to nearest even (used without F16C) */
static uint16_t to_half(float f)
{
	uint32_t x;
	memcpy(&x, &f, 4);
	uint32_t sign = (x >> 16) & 0x8000u;
	uint32_t ax = x & 0x7FFFFFFFu;
	if (ax >= 0x7F800000u)
		return (uint16_t)(sign | 0x7C00u | (ax > 0x7F800000u ? 0x200u : 0));
	if (ax >= 0x477FF000u) /* rounds past 65504 */
		return (uint16_t)(sign | 0x7C00u);
	if (ax < 0x38800000u) { /* subnormal half or zero */
		float a;
		memcpy(&a, &ax, 4);
		return (uint16_t)(sign | (uint32_t)lrintf(a * 16777216.0f));
	}
	uint32_t m = ax + 0xC8000FFFu + ((ax >> 13) & 1u);
	return (uint16_t)(sign | (m >> 13));
}

static void write_half(uint16_t *restrict o, const float *restrict x, size_t n, float sub, float mul)
{
	size_t i = 0;
#if defined(__F16C__) && defined(__AVX__)
	__m256 vs = _mm256_set1_ps(sub), vm = _mm256_set1_ps(mul);
	for (; i + 8 <= n; i += 8) {
		__m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs), vm);
		_mm_storeu_si128((__m128i *)(o + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
	}
#endif
	for (; i < n; i++)
		o[i] = to_half((x[i] - sub) * mul);
}

static void write_f32(float *restrict o, const float *restrict x, size_t n, float sub, float mul)
{
	for (size_t i = 0; i < n; i++)
		o[i] = (x[i] - sub) * mul;
}

void fv_aug_write(void *out, const float *planes, const fv_aug_params *p, int erase, int ey,
		  int ex, int eh, int ew)
{
	int c = p->out_c, W = p->out_w, H = p->out_h;
	size_t n = (size_t)W * H;
	if (p->layout == FV_OUT_U8_NHWC) {
		uint8_t *restrict o = out;
		for (int ch = 0; ch < c; ch++) {
			const float *restrict x = planes + ch * n;
			for (size_t i = 0; i < n; i++) {
				float v = x[i] < 0.f ? 0.f : x[i] > 255.f ? 255.f : x[i];
				o[i * c + ch] = (uint8_t)(v + 0.5f);
			}
		}
		if (erase)
			for (int y = ey; y < ey + eh; y++)
				for (int x = ex; x < ex + ew; x++)
					for (int ch = 0; ch < c; ch++) {
						float m = hi255(lo0(p->mean[ch]));
						o[((size_t)y * W + x) * c + ch] = (uint8_t)(m + 0.5f);
					}
		return;
	}
	for (int ch = 0; ch < c; ch++) {
		float mul = 1.f / p->std[ch], sub = p->mean[ch];
		if (p->layout == FV_OUT_F32_NCHW) {
			float *o = (float *)out + ch * n;
			write_f32(o, planes + ch * n, n, sub, mul);
			if (erase)
				for (int y = ey; y < ey + eh; y++)
					memset(o + (size_t)y * W + ex, 0, sizeof(float) * ew);
		} else {
			uint16_t *o = (uint16_t *)out + ch * n;
			write_half(o, planes + ch * n, n, sub, mul);
			if (erase)
				for (int y = ey; y < ey + eh; y++)
					memset(o + (size_t)y * W + ex, 0, sizeof(uint16_t) * ew);
		}
	}
}
