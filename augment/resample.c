/* augment/resample.c — one separable resampling pass from decoded pixels
 * straight to the output size: an antialiased triangle filter whose support
 * grows with the shrink factor (PIL's BILINEAR), vertical pass first over
 * contiguous rows (vectorizes), then horizontal into planar floats with the
 * flip folded into where each output column lands. Here: the plans, and
 * the float pass for filters wider than the fixed-point pass
 * (resample_fx.c) takes, which handles every other crop. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include "augment/aug_internal.h"

#if defined(__SSE2__)
#include <immintrin.h>
#endif

int fv_aug_buf_reserve(fv_aug_buf *b, size_t bytes)
{
	if (bytes <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < bytes)
		cap *= 2;
	void *p = NULL;
	if (posix_memalign(&p, 64, cap))
		return ENOMEM;
	free(b->p);
	b->p = p;
	b->cap = cap;
	return 0;
}

static inline double tri(double x)
{
	x = fabs(x);
	return x < 1.0 ? 1.0 - x : 0.0;
}

/* Derive the fixed-count taps from the trimmed ones (see fv_axis). */
static int fixed_taps(fv_axis *a)
{
	int kf = a->kf, n = a->n, rc;
	size_t pairs = (size_t)(n + 1) / 2;
	if ((rc = fv_aug_buf_reserve(&a->bfstart, sizeof(int) * (size_t)(n + 1))) ||
	    (rc = fv_aug_buf_reserve(&a->bw8, sizeof(float) * pairs * kf * 8)))
		return rc;
	a->fstart = a->bfstart.p;
	a->w8 = a->bw8.p;
	memset(a->w8, 0, sizeof(float) * pairs * kf * 8);
	for (int i = 0; i < n; i++) {
		/* kf <= hi - lo, so the window fits and covers the taps */
		int st = a->start[i] < a->hi - kf ? a->start[i] : a->hi - kf;
		a->fstart[i] = st;
		float *w8 = a->w8 + (size_t)(i / 2) * kf * 8 + (i & 1) * 4;
		for (int j = 0; j < a->cnt[i]; j++) {
			float w = a->w[(size_t)i * a->k + j];
			int t = a->start[i] + j - st;
			for (int l = 0; l < 4; l++)
				w8[(size_t)t * 8 + l] = w;
		}
	}
	a->fstart[n] = a->fstart[n - 1]; /* an odd last output pairs with itself */
	return 0;
}

int fv_axis_plan(fv_axis *a, double x0, double len, int out_n, int in_n, int prefiltered)
{
	double scale = len / out_n;
	double fscale = scale > 1.0 ? scale : 1.0;
	/* A DCT-scaled source already averaged each sample over about one
	 * (scaled) pixel: narrow the triangle so the two together blur as much
	 * as the triangle alone would on the full image (matching variances:
	 * f^2/6 + 1/12 = scale^2/6). */
	if (prefiltered && scale * scale - 0.5 > 1.0)
		fscale = sqrt(scale * scale - 0.5);
	double support = fscale; /* triangle radius 1, stretched when shrinking */
	double inv = 1.0 / fscale;
	int k = (int)ceil(support) * 2 + 1;
	int rc;
	if ((rc = fv_aug_buf_reserve(&a->bstart, sizeof(int) * (size_t)out_n)) ||
	    (rc = fv_aug_buf_reserve(&a->bcnt, sizeof(int) * (size_t)out_n)) ||
	    (rc = fv_aug_buf_reserve(&a->bw, sizeof(float) * (size_t)out_n * (size_t)k)))
		return rc;
	a->start = a->bstart.p;
	a->cnt = a->bcnt.p;
	a->w = a->bw.p;
	a->n = out_n;
	a->k = k;
	a->lo = in_n;
	a->hi = 0;
	double ww[k];
	int kf = 1;
	for (int i = 0; i < out_n; i++) {
		double center = x0 + (i + 0.5) * scale;
		double fl = center - support + 0.5, fh = center + support + 0.5;
		/* floor, then clamped to the source (a negative end clamps the same) */
		int lo = fl < 0 ? 0 : (int)fl;
		int hi = fh < 0 ? 0 : (int)fh;
		if (hi > in_n)
			hi = in_n;
		if (hi - lo > k)
			hi = lo + k;
		double sum = 0;
		int n = hi > lo ? hi - lo : 0;
		for (int j = 0; j < n; j++) {
			ww[j] = tri((lo + j - center + 0.5) * inv);
			sum += ww[j];
		}
		/* trim zero-weight taps at both ends so regions stay tight */
		int s = 0;
		while (n > 0 && ww[s] == 0.0) {
			s++;
			n--;
		}
		while (n > 0 && ww[s + n - 1] == 0.0)
			n--;
		if (n == 0) { /* the span lies outside the source: nearest edge */
			int x = (int)floor(center);
			x = x < 0 ? 0 : x >= in_n ? in_n - 1 : x;
			lo = x;
			s = 0;
			n = 1;
			ww[0] = sum = 1.0;
		}
		a->start[i] = lo + s;
		a->cnt[i] = n;
		kf = n > kf ? n : kf;
		double rs = 1.0 / sum;
		float *w = a->w + (size_t)i * k;
		for (int j = 0; j < n; j++)
			w[j] = (float)(ww[s + j] * rs);
		if (lo + s < a->lo)
			a->lo = lo + s;
		if (lo + s + n > a->hi)
			a->hi = lo + s + n;
	}
	a->kf = kf; /* the widest output; the paths' own tables are made when they run */
	return 0;
}

/* tmp[0..m) = sum_j w[j] * row_j[0..m), summed in tap order. Specialized by
 * tap count so the taps stay in registers across the row (one store per
 * value, not one per tap). */
static inline __attribute__((always_inline)) void vpass_n(float *restrict tmp,
							 const uint8_t *restrict src, size_t stride,
							 const float *w, const int cnt, size_t m)
{
	for (size_t x = 0; x < m; x++) {
		float acc = w[0] * src[x];
		for (int j = 1; j < cnt; j++)
			acc = acc + w[j] * src[(size_t)j * stride + x];
		tmp[x] = acc;
	}
}

static void vpass(float *restrict tmp, const uint8_t *restrict src, size_t stride, const float *w,
		  int cnt, size_t m)
{
	switch (cnt) {
	case 1: vpass_n(tmp, src, stride, w, 1, m); return;
	case 2: vpass_n(tmp, src, stride, w, 2, m); return;
	case 3: vpass_n(tmp, src, stride, w, 3, m); return;
	case 4: vpass_n(tmp, src, stride, w, 4, m); return;
	case 5: vpass_n(tmp, src, stride, w, 5, m); return;
	case 6: vpass_n(tmp, src, stride, w, 6, m); return;
	case 7: vpass_n(tmp, src, stride, w, 7, m); return;
	}
	for (size_t x = 0; x < m; x++)
		tmp[x] = w[0] * src[x];
	for (int j = 1; j < cnt; j++) {
		const uint8_t *restrict r = src + (size_t)j * stride;
		float wj = w[j];
		for (size_t x = 0; x < m; x++)
			tmp[x] = tmp[x] + wj * r[x];
	}
}

static void hpass1(float *restrict out, const float *restrict tmp, const fv_axis *ax, int lo,
		   int flip)
{
	int n = ax->n;
	for (int i = 0; i < n; i++) {
		const float *w = ax->w + (size_t)i * ax->k;
		const float *s = tmp + (ax->start[i] - lo);
		float acc = w[0] * s[0];
		for (int j = 1; j < ax->cnt[i]; j++)
			acc = acc + w[j] * s[j];
		out[flip ? n - 1 - i : i] = acc;
	}
}

/* Three interleaved channels: a pixel is one 4-lane vector (R, G, B and the
 * next pixel's R, ignored), the way Pillow-SIMD does it; two pixels share a
 * 256-bit register and two pairs are in flight to hide the add latency. The
 * row comes out as RGBx floats, then a deinterleave loop gcc vectorizes.
 * Plain mul + add, never FMA, so every x86-64 host gets the same bits. */
#if defined(__AVX__)
static inline __m256 px2(const float *a, const float *b)
{
	return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(a)), _mm_loadu_ps(b), 1);
}

static void hrow3(float *restrict row, const float *restrict tmp, const fv_axis *ax, int lo)
{
	int n = ax->n, kf = ax->kf, i = 0;
	for (; i + 3 < n; i += 4) {
		const float *w = ax->w8 + (size_t)(i / 2) * kf * 8;
		const float *s0 = tmp + 3 * (size_t)(ax->fstart[i] - lo);
		const float *s1 = tmp + 3 * (size_t)(ax->fstart[i + 1] - lo);
		const float *s2 = tmp + 3 * (size_t)(ax->fstart[i + 2] - lo);
		const float *s3 = tmp + 3 * (size_t)(ax->fstart[i + 3] - lo);
		__m256 a = _mm256_mul_ps(_mm256_load_ps(w), px2(s0, s1));
		__m256 b = _mm256_mul_ps(_mm256_load_ps(w + kf * 8), px2(s2, s3));
		for (int j = 1; j < kf; j++) {
			a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_load_ps(w + 8 * j),
							   px2(s0 + 3 * j, s1 + 3 * j)));
			b = _mm256_add_ps(b, _mm256_mul_ps(_mm256_load_ps(w + kf * 8 + 8 * j),
							   px2(s2 + 3 * j, s3 + 3 * j)));
		}
		_mm256_storeu_ps(row + 4 * i, a);
		_mm256_storeu_ps(row + 4 * i + 8, b);
	}
	for (; i < n; i += 2) { /* pairs; an odd last pixel pairs with itself */
		const float *w = ax->w8 + (size_t)(i / 2) * kf * 8;
		const float *s0 = tmp + 3 * (size_t)(ax->fstart[i] - lo);
		const float *s1 = tmp + 3 * (size_t)(ax->fstart[i + 1] - lo);
		__m256 a = _mm256_mul_ps(_mm256_load_ps(w), px2(s0, s1));
		for (int j = 1; j < kf; j++)
			a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_load_ps(w + 8 * j),
							   px2(s0 + 3 * j, s1 + 3 * j)));
		_mm256_storeu_ps(row + 4 * i, a);
	}
}
#else
static void hrow3(float *restrict row, const float *restrict tmp, const fv_axis *ax, int lo)
{
	int n = ax->n, kf = ax->kf;
	for (int i = 0; i < n; i++) {
		const float *w = ax->w8 + (size_t)(i / 2) * kf * 8 + (i & 1) * 4;
		const float *s = tmp + 3 * (size_t)(ax->fstart[i] - lo);
		float a0 = w[0] * s[0], a1 = w[0] * s[1], a2 = w[0] * s[2];
		for (int j = 1; j < kf; j++) {
			a0 = a0 + w[8 * j] * s[3 * j];
			a1 = a1 + w[8 * j] * s[3 * j + 1];
			a2 = a2 + w[8 * j] * s[3 * j + 2];
		}
		row[4 * i] = a0;
		row[4 * i + 1] = a1;
		row[4 * i + 2] = a2;
	}
}
#endif

static void hpass3(float *restrict o0, float *restrict o1, float *restrict o2,
		   float *restrict row, const float *restrict tmp, const fv_axis *ax, int lo, int flip)
{
	int n = ax->n;
	hrow3(row, tmp, ax, lo);
	if (flip) {
		for (int i = 0; i < n; i++) {
			o0[n - 1 - i] = row[4 * i];
			o1[n - 1 - i] = row[4 * i + 1];
			o2[n - 1 - i] = row[4 * i + 2];
		}
	} else {
		for (int i = 0; i < n; i++) {
			o0[i] = row[4 * i];
			o1[i] = row[4 * i + 1];
			o2[i] = row[4 * i + 2];
		}
	}
}

int fv_resample(float *planes, const fv_aug_view *v, fv_axis *ax, fv_axis *ay, int flip,
		fv_aug_buf *tmpb)
{
	size_t plane = (size_t)ax->n * ay->n;
	if (fv_axis_fx_ok(ax, ay, v->c)) {
		fv_emit em = fv_emit_planes(planes, plane);
		return fv_resample_fx(&em, v, ax, ay, flip, tmpb);
	}
	int c = v->c, ow = ax->n, oh = ay->n;
	int lo = ax->lo;
	size_t m = (size_t)(ax->hi - ax->lo) * c;
	/* tmp: one filtered row (+ 4: a pixel vector reads one float past the
	 * last pixel), then an RGBx output row, 64-byte aligned */
	size_t mtmp = (m + 4 + 15) & ~(size_t)15;
	int rc = fv_aug_buf_reserve(tmpb, (mtmp + 4 * ((size_t)ow + 1)) * sizeof(float));
	if (rc)
		return rc;
	float *tmp = tmpb->p, *row = tmp + mtmp;
	if ((rc = fixed_taps(ax)))
		return rc;
	for (int y = 0; y < oh; y++) {
		const uint8_t *src = v->px + (size_t)(ay->start[y] - v->y0) * v->stride +
				     (size_t)(lo - v->x0) * c;
		vpass(tmp, src, v->stride, ay->w + (size_t)y * ay->k, ay->cnt[y], m);
		if (c == 1)
			hpass1(planes + (size_t)y * ow, tmp, ax, lo, flip);
		else
			hpass3(planes + (size_t)y * ow, planes + plane + (size_t)y * ow,
			       planes + 2 * plane + (size_t)y * ow, row, tmp, ax, lo, flip);
	}
	return 0;
}
