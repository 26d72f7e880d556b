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
 * nothing. Everything after the resampling runs in blocks of BLK pixels
 * (L1-sized): at most one pass to reach contrast's mean, then one pass that
 * applies the rest and writes the output. */
#include <math.h>
#include <string.h>
#if defined(__F16C__) || defined(__AVX2__)
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

/* Gray sum of L pixels into 16 fixed lanes (double): vectorizes, and the
 * order of the sum is fixed by the code, not by the compiler or thread. */
static void gray_sum(const float *restrict r, const float *restrict g, const float *restrict b,
		     int c, size_t L, double *restrict lane, double *tail)
{
	size_t i = 0;
	if (c == 3) {
		for (; i + 16 <= L; i += 16)
			for (int k = 0; k < 16; k++)
				lane[k] += 0.2989f * r[i + k] + 0.587f * g[i + k] + 0.114f * b[i + k];
		for (; i < L; i++)
			*tail += 0.2989f * r[i] + 0.587f * g[i] + 0.114f * b[i];
	} else {
		for (; i + 16 <= L; i += 16)
			for (int k = 0; k < 16; k++)
				lane[k] += r[i + k];
		for (; i < L; i++)
			*tail += r[i];
	}
}

static void saturation(float *restrict r, float *restrict g, float *restrict b, size_t n, float f)
{
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
static void hue(float *r, float *g, float *b, size_t n, float shift)
{
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

/* The jitter ops this sample applies, in order, with their factors. */
typedef struct jitter {
	int op[4], nop;
	float f[4];   /* brightness, contrast, saturation factors; hue shift */
	int contrast; /* index of contrast in op[], or -1 */
} jitter;

static void jitter_draw(jitter *j, const fv_aug_params *p, int c, uint64_t seed)
{
	fv_rng r;
	fv_rng_seed(&r, seed, FV_STREAM_JITTER);
	int order[4] = { 0, 1, 2, 3 };
	for (int i = 3; i > 0; i--) {
		int k = fv_rng_int(&r, i + 1);
		int t = order[i];
		order[i] = order[k];
		order[k] = t;
	}
	/* every factor is drawn, used or not, so the stream never shifts */
	j->f[0] = (float)fv_rng_uniform(&r, fmax(0, 1 - p->brightness), 1 + p->brightness);
	j->f[1] = (float)fv_rng_uniform(&r, fmax(0, 1 - p->contrast), 1 + p->contrast);
	j->f[2] = (float)fv_rng_uniform(&r, fmax(0, 1 - p->saturation), 1 + p->saturation);
	j->f[3] = (float)fv_rng_uniform(&r, -p->hue, p->hue);
	const int on[4] = { p->brightness > 0, p->contrast > 0, p->saturation > 0 && c == 3,
			    p->hue > 0 && c == 3 };
	j->nop = 0;
	j->contrast = -1;
	for (int i = 0; i < 4; i++)
		if (on[order[i]]) {
			if (order[i] == 1)
				j->contrast = j->nop;
			j->op[j->nop++] = order[i];
		}
}

static void lighting_draw(float add[3], float std, uint64_t seed)
{
	static const float eigval[3] = { 0.2175f, 0.0188f, 0.0045f };
	static const float eigvec[3][3] = {
		{ -0.5675f, 0.7192f, 0.4009f },
		{ -0.5808f, -0.0045f, -0.8140f },
		{ -0.5836f, -0.6948f, 0.4203f },
	};
	fv_rng r;
	fv_rng_seed(&r, seed, FV_STREAM_LIGHT);
	float alpha[3];
	for (int i = 0; i < 3; i++)
		alpha[i] = (float)fv_rng_normal(&r) * std;
	for (int ch = 0; ch < 3; ch++) {
		add[ch] = 0;
		for (int i = 0; i < 3; i++)
			add[ch] += eigvec[ch][i] * alpha[i] * eigval[i];
		add[ch] *= 255.f;
	}
}

/* Apply ops [from, to) of j to one block of L pixels. */
static void jitter_block(const jitter *j, int from, int to, float *r, float *g, float *b, int c,
			 size_t L, float mean)
{
	float *ch[3] = { r, g, b };
	for (int i = from; i < to; i++) {
		switch (j->op[i]) {
		case 0:
			for (int k = 0; k < c; k++)
				brightness(ch[k], L, j->f[0]);
			break;
		case 1:
			for (int k = 0; k < c; k++)
				blend(ch[k], L, j->f[1], mean);
			break;
		case 2:
			saturation(r, g, b, L, j->f[2]);
			break;
		default:
			hue(r, g, b, L, j->f[3]);
			break;
		}
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
		int h = (int)nearbyint(sqrt(ea * ar));
		int w = (int)nearbyint(sqrt(ea / ar));
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

/* Write pixels [off, off + L) of the planes into out in p's layout. */
static void write_block(void *out, const float *planes, size_t n, size_t off, size_t L,
			const fv_aug_params *p)
{
	int c = p->out_c;
	if (p->layout == FV_OUT_U8_NHWC) {
		uint8_t *restrict o = (uint8_t *)out + off * c;
		for (int ch = 0; ch < c; ch++) {
			const float *restrict x = planes + ch * n + off;
			for (size_t i = 0; i < L; i++)
				o[i * c + ch] = (uint8_t)(hi255(lo0(x[i])) + 0.5f);
		}
		return;
	}
	for (int ch = 0; ch < c; ch++) {
		float mul = 1.f / p->std[ch], sub = p->mean[ch];
		if (p->layout == FV_OUT_F32_NCHW)
			write_f32((float *)out + ch * n + off, planes + ch * n + off, L, sub, mul);
		else
			write_half((uint16_t *)out + ch * n + off, planes + ch * n + off, L, sub, mul);
	}
}

/* The erased rectangle reads 0 after normalization: 0 in the float layouts,
 * the mean pixel in u8 (what the client's normalization maps to 0). */
static void erase_rect(void *out, const fv_aug_params *p, int ey, int ex, int eh, int ew)
{
	int c = p->out_c, W = p->out_w;
	size_t n = (size_t)W * p->out_h;
	for (int y = ey; y < ey + eh; y++)
		for (int ch = 0; ch < c; ch++) {
			size_t at = (size_t)y * W + ex;
			if (p->layout == FV_OUT_F32_NCHW)
				memset((float *)out + ch * n + at, 0, sizeof(float) * ew);
			else if (p->layout == FV_OUT_F16_NCHW)
				memset((uint16_t *)out + ch * n + at, 0, sizeof(uint16_t) * ew);
			else
				for (int x = 0; x < ew; x++)
					((uint8_t *)out)[(at + x) * c + ch] =
						(uint8_t)(hi255(lo0(p->mean[ch])) + 0.5f);
		}
}

void fv_half_store(uint16_t *o, float f)
{
	*o = to_half(f);
}

int fv_aug_emit_direct(const fv_aug_params *p, uint64_t seed, int c, void *out, fv_emit *em)
{
	if ((p->layout != FV_OUT_F32_NCHW && p->layout != FV_OUT_F16_NCHW) || c != p->out_c)
		return 0;
	if (p->mode == FV_AUG_TRAIN &&
	    (p->brightness > 0 || p->contrast > 0 || p->saturation > 0 || p->hue > 0))
		return 0;
	float add[3] = { 0, 0, 0 };
	if (p->mode == FV_AUG_TRAIN && c == 3 && p->pca_lighting > 0)
		lighting_draw(add, p->pca_lighting, seed);
	size_t n = (size_t)p->out_w * p->out_h, es = p->layout == FV_OUT_F16_NCHW ? 2 : 4;
	em->half = p->layout == FV_OUT_F16_NCHW;
	for (int k = 0; k < 3; k++) {
		em->out[k] = (uint8_t *)out + (k < c ? k : 0) * n * es;
		em->add[k] = add[k];
		em->sub[k] = p->mean[k];
		em->mul[k] = 1.f / p->std[k];
	}
	return 1;
}

void fv_aug_erase(void *out, const fv_aug_params *p, uint64_t seed)
{
	int ey, ex, eh, ew;
	if (p->mode == FV_AUG_TRAIN && fv_erase_box(p, seed, &ey, &ex, &eh, &ew))
		erase_rect(out, p, ey, ex, eh, ew);
}

/* Blocks small enough that every op on one stays in L1. */
#define BLK 1024

#if defined(__AVX2__) && defined(__F16C__)
/* The same ops as jitter_block, lighting and write_block, fused: 8 pixels
 * go through every op in registers and are written once. Each step is the
 * scalar code's own arithmetic (mul, then add, no FMA; min/max for the
 * clamps), so the bits match the block path. */
typedef struct fz {
	__m256 f[4], bb, lo, hi, w0, w1, w2;
} fz;

static inline __attribute__((always_inline)) void fz_ops(const jitter *j, const fz *z, int from,
							 int to, int c, __m256 *r, __m256 *g,
							 __m256 *b)
{
	for (int i = from; i < to; i++) {
		switch (j->op[i]) {
		case 0:
			*r = _mm256_min_ps(_mm256_mul_ps(*r, z->f[0]), z->hi);
			if (c == 3) {
				*g = _mm256_min_ps(_mm256_mul_ps(*g, z->f[0]), z->hi);
				*b = _mm256_min_ps(_mm256_mul_ps(*b, z->f[0]), z->hi);
			}
			break;
		case 1:
#define FZ_BLEND(x, add) _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(_mm256_mul_ps(x, z->f[1]), add), z->lo), z->hi)
			*r = FZ_BLEND(*r, z->bb);
			if (c == 3) {
				*g = FZ_BLEND(*g, z->bb);
				*b = FZ_BLEND(*b, z->bb);
			}
			break;
		default: { /* saturation (hue never comes here) */
			__m256 gray = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(z->w0, *r), _mm256_mul_ps(z->w1, *g)),
						    _mm256_mul_ps(z->w2, *b));
			gray = _mm256_mul_ps(z->f[3], gray); /* f[3] holds 1 - saturation here */
			__m256 fs = z->f[2];
#define FZ_SAT(x) _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(_mm256_mul_ps(x, fs), gray), z->lo), z->hi)
			*r = FZ_SAT(*r);
			*g = FZ_SAT(*g);
			*b = FZ_SAT(*b);
			break;
		}
		}
	}
#undef FZ_BLEND
#undef FZ_SAT
}

/* fv_aug_finish for float layouts without hue; 0 when it did the work. */
static int finish_fused(void *out, const float *planes, const fv_aug_params *p, const jitter *j,
			const float add[3], int light)
{
	int c = p->out_c;
	size_t n = (size_t)p->out_w * p->out_h;
	if ((p->layout != FV_OUT_F32_NCHW && p->layout != FV_OUT_F16_NCHW) || (c != 1 && c != 3))
		return 1;
	for (int i = 0; i < j->nop; i++)
		if (j->op[i] == 3)
			return 1;
	fz z;
	for (int k = 0; k < 3; k++)
		z.f[k] = _mm256_set1_ps(j->f[k]);
	z.f[3] = _mm256_set1_ps(1.f - j->f[2]);
	z.lo = z.bb = _mm256_setzero_ps();
	z.hi = _mm256_set1_ps(255.f);
	z.w0 = _mm256_set1_ps(0.2989f);
	z.w1 = _mm256_set1_ps(0.587f);
	z.w2 = _mm256_set1_ps(0.114f);
	const float *R = planes, *G = planes + n, *B = planes + 2 * n;
	float mean = 0;
	if (j->contrast >= 0) {
		/* the ops before contrast, then the gray sum in gray_sum's lanes
		 * and order (blocks of BLK, 16 double lanes, tails apart) */
		__m256d lane[4] = { _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(),
				    _mm256_setzero_pd() };
		double sum = 0;
		for (size_t off = 0; off < n; off += BLK) {
			size_t L = n - off < BLK ? n - off : BLK, i = 0;
			for (; i + 16 <= L; i += 16)
				for (int h = 0; h < 2; h++) {
					size_t at = off + i + 8 * h;
					__m256 r = _mm256_loadu_ps(R + at), g = r, b = r;
					if (c == 3) {
						g = _mm256_loadu_ps(G + at);
						b = _mm256_loadu_ps(B + at);
					}
					fz_ops(j, &z, 0, j->contrast, c, &r, &g, &b);
					__m256 gy = r;
					if (c == 3)
						gy = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(z.w0, r),
										 _mm256_mul_ps(z.w1, g)),
								   _mm256_mul_ps(z.w2, b));
					/* pixel i + k goes to lane k, as in gray_sum */
					lane[2 * h] = _mm256_add_pd(lane[2 * h],
								    _mm256_cvtps_pd(_mm256_castps256_ps128(gy)));
					lane[2 * h + 1] = _mm256_add_pd(
						lane[2 * h + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(gy, 1)));
				}
			if (i < L) { /* the tail: the block path's own code */
				float tr[16], tg[16], tb[16];
				size_t t = L - i;
				memcpy(tr, R + off + i, t * sizeof(float));
				memcpy(tg, c == 3 ? G + off + i : tr, t * sizeof(float));
				memcpy(tb, c == 3 ? B + off + i : tr, t * sizeof(float));
				jitter_block(j, 0, j->contrast, tr, tg, tb, c, t, 0);
				double dummy[16] = { 0 };
				gray_sum(tr, tg, tb, c, t, dummy, &sum);
			}
		}
		double lv[16];
		for (int q = 0; q < 4; q++)
			_mm256_storeu_pd(lv + 4 * q, lane[q]);
		for (int k = 0; k < 16; k++)
			sum += lv[k];
		mean = (float)(sum / (double)n);
	}
	/* the planes are untouched: the second pass applies every op */
	z.bb = _mm256_set1_ps((1.f - j->f[1]) * mean);
	__m256 la[3], sub[3], mul[3];
	for (int k = 0; k < 3; k++) {
		la[k] = _mm256_set1_ps(add[k]);
		sub[k] = _mm256_set1_ps(p->mean[k]);
		mul[k] = _mm256_set1_ps(1.f / p->std[k]);
	}
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 v[3];
		v[0] = _mm256_loadu_ps(R + i);
		v[1] = v[2] = v[0];
		if (c == 3) {
			v[1] = _mm256_loadu_ps(G + i);
			v[2] = _mm256_loadu_ps(B + i);
		}
		fz_ops(j, &z, 0, j->nop, c, &v[0], &v[1], &v[2]);
		for (int k = 0; k < c; k++) {
			if (light)
				v[k] = _mm256_add_ps(v[k], la[k]);
			__m256 o = _mm256_mul_ps(_mm256_sub_ps(v[k], sub[k]), mul[k]);
			if (p->layout == FV_OUT_F32_NCHW)
				_mm256_storeu_ps((float *)out + k * n + i, o);
			else
				_mm_storeu_si128((__m128i *)((uint16_t *)out + k * n + i),
						 _mm256_cvtps_ph(o, _MM_FROUND_TO_NEAREST_INT));
		}
	}
	if (i < n) { /* the last few pixels through the block path */
		float t[3][8];
		size_t L = n - i;
		for (int k = 0; k < 3; k++)
			memcpy(t[k], planes + (c == 3 ? k : 0) * n + i, L * sizeof(float));
		jitter_block(j, 0, j->nop, t[0], t[1], t[2], c, L, mean);
		for (int k = 0; k < c; k++) {
			for (size_t q = 0; q < L; q++)
				t[k][q] += light ? add[k] : 0.f;
			if (p->layout == FV_OUT_F32_NCHW)
				write_f32((float *)out + k * n + i, t[k], L, p->mean[k], 1.f / p->std[k]);
			else
				write_half((uint16_t *)out + k * n + i, t[k], L, p->mean[k], 1.f / p->std[k]);
		}
	}
	return 0;
}
#endif

void fv_aug_finish(void *out, float *planes, const fv_aug_params *p, uint64_t seed)
{
	int c = p->out_c;
	size_t n = (size_t)p->out_w * p->out_h;
	jitter j = { .nop = 0, .contrast = -1 };
	float add[3] = { 0, 0, 0 };
	int light = 0, erase = 0, ey = 0, ex = 0, eh = 0, ew = 0;
	if (p->mode == FV_AUG_TRAIN) {
		if (p->brightness > 0 || p->contrast > 0 || p->saturation > 0 || p->hue > 0)
			jitter_draw(&j, p, c, seed);
		if ((light = c == 3 && p->pca_lighting > 0))
			lighting_draw(add, p->pca_lighting, seed);
		erase = fv_erase_box(p, seed, &ey, &ex, &eh, &ew);
	}
#if defined(__AVX2__) && defined(__F16C__)
	if (!finish_fused(out, planes, p, &j, add, light)) {
		if (erase)
			erase_rect(out, p, ey, ex, eh, ew);
		return;
	}
#endif
	float *r = planes, *g = planes + n, *b = planes + 2 * n;
	float mean = 0;
	int from = 0;
	if (j.contrast >= 0) {
		/* contrast blends with the mean gray of the image as the ops
		 * before it left it: one pass to get there and sum */
		double lane[16] = { 0 }, sum = 0;
		for (size_t off = 0; off < n; off += BLK) {
			size_t L = n - off < BLK ? n - off : BLK;
			jitter_block(&j, 0, j.contrast, r + off, g + off, b + off, c, L, 0);
			gray_sum(r + off, g + off, b + off, c, L, lane, &sum);
		}
		for (int k = 0; k < 16; k++)
			sum += lane[k];
		mean = (float)(sum / (double)n);
		from = j.contrast;
	}
	for (size_t off = 0; off < n; off += BLK) {
		size_t L = n - off < BLK ? n - off : BLK;
		jitter_block(&j, from, j.nop, r + off, g + off, b + off, c, L, mean);
		if (light)
			for (int k = 0; k < 3; k++) {
				float *restrict x = planes + k * n + off, a = add[k];
				for (size_t i = 0; i < L; i++)
					x[i] += a;
			}
		write_block(out, planes, n, off, L, p);
	}
	if (erase)
		erase_rect(out, p, ey, ex, eh, ew);
}
