/* augment/resample_fx.c — the resampling pass in fixed point, the way
 * Pillow-SIMD does it: weights in 14-bit fixed point (each output's sum
 * exactly 1 << 14), the horizontal pass first, straight from the decoded
 * 8-bit pixels into 16-bit rows with 7 fraction bits (R, G, B, 0 per pixel),
 * then the vertical pass over those rows into 32-bit sums, converted once to
 * float planes. Integer sums do not depend on their order, so the AVX2
 * kernels and the plain C ones give the same bits on every host. Against
 * the float filter an output moves by at most ~0.02 levels per tap.
 *
 * Horizontal rows are made on demand into a ring as the vertical pass walks
 * down, so each source row is read once and the ring stays in L1/L2. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "augment/aug_internal.h"
#include "fv_error.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#define FX_BITS 14   /* weight fraction bits */
#define FX_MID 7     /* fraction bits kept between the passes */
#define FX_MAXK 32   /* widest filter the fixed-point path takes */

/* Quantize output i's weights of a (float plan) into q[0..cnt): rounded,
 * then the largest absorbs the rounding so they sum to exactly 1 << 14. */
static void quantize(const fv_axis *a, int i, int16_t *q)
{
	const float *w = a->w + (size_t)i * a->k;
	int sum = 0, big = 0;
	for (int j = 0; j < a->cnt[i]; j++) {
		q[j] = (int16_t)(w[j] * (1 << FX_BITS) + 0.5f);
		sum += q[j];
		if (q[j] > q[big])
			big = j;
	}
	q[big] = (int16_t)(q[big] + ((1 << FX_BITS) - sum));
}

int fv_axis_fx_ok(const fv_axis *ax, const fv_axis *ay, int c)
{
	int kx = (ax->kf + 3) & ~3;
	return (c == 1 || c == 3) && kx <= FX_MAXK && ay->kf <= FX_MAXK &&
	       ax->hi - ax->lo >= kx;
}

/* The horizontal plan: n8 outputs (n rounded up to 8; the extra ones weigh
 * nothing), each kq taps (a multiple of 4) from source column lo +
 * qstart[x] / c (qstart is in bytes from column lo), moved left at
 * the right edge so no tap passes hi; output x is source output n-1-x when
 * flipping. qw[x*kq + t]: per output; qp: the same as the AVX2 kernel
 * reads them, per pair of outputs and group of 4 taps two vectors of 16
 * int16: w[x][t], w[x][t+1] thrice and a zero pair, then the same for x+1;
 * then taps t+2, t+3 likewise. */
static int plan_h(fv_axis *a, int flip, int c)
{
	int n = a->n, n8 = (n + 7) & ~7, kq = (a->kf + 3) & ~3, rc;
	if ((rc = fv_aug_buf_reserve(&a->bqstart, sizeof(int) * n8)) ||
	    (rc = fv_aug_buf_reserve(&a->bqw, sizeof(int16_t) * n8 * kq)) ||
	    (rc = fv_aug_buf_reserve(&a->bqp, sizeof(int16_t) * 4 * (size_t)n8 * kq)))
		return rc;
	a->kq = kq;
	a->n8 = n8;
	a->qstart = a->bqstart.p;
	a->qw = a->bqw.p;
	a->qp = a->bqp.p;
	memset(a->qw, 0, sizeof(int16_t) * n8 * kq);
	for (int x = 0; x < n8; x++) {
		int i = x < n ? (flip ? n - 1 - x : x) : (flip ? 0 : n - 1);
		int st = a->start[i] < a->hi - kq ? a->start[i] : a->hi - kq;
		a->qstart[x] = (st - a->lo) * c; /* bytes from column lo */
		if (x >= n)
			continue;
		int16_t q[FX_MAXK];
		quantize(a, i, q);
		for (int j = 0; j < a->cnt[i]; j++)
			a->qw[(size_t)x * kq + a->start[i] - st + j] = q[j];
	}
	for (int x = 0; x < n8; x += 2)
		for (int t = 0; t < kq; t += 4)
			for (int half = 0; half < 2; half++) {
				int16_t *v = a->qp + (((size_t)(x / 2) * (kq / 4) + t / 4) * 2 + half) * 16;
				for (int l = 0; l < 2; l++) {
					const int16_t *w = a->qw + (size_t)(x + l) * kq + t + 2 * half;
					for (int ch = 0; ch < 4; ch++) {
						v[l * 8 + 2 * ch] = ch < 3 ? w[0] : 0;
						v[l * 8 + 2 * ch + 1] = ch < 3 ? w[1] : 0;
					}
				}
			}
	return 0;
}

/* The vertical plan: per output row its cnt weights, quantized. */
static int plan_v(fv_axis *a)
{
	int n = a->n, k = a->kf, rc;
	if ((rc = fv_aug_buf_reserve(&a->bqw, sizeof(int16_t) * n * k)))
		return rc;
	a->kq = k;
	a->qw = a->bqw.p;
	for (int y = 0; y < n; y++)
		quantize(a, y, a->qw + (size_t)y * k);
	return 0;
}

/* ------------------------------------------------------------ horizontal */

#if defined(__AVX2__)
/* Two outputs' 4-tap groups: lane 0 holds 16 source bytes from output x's
 * first tap, lane 1 from x+1's (4 taps and a bit each); one shuffle makes
 * taps 0, 1 into [R0 R1 G0 G1 B0 B1 0 0] per lane, another taps 2, 3, and
 * madd sums each pair: [x | x+1] in R, G, B, 0 with no lane to fold. */
static inline __attribute__((always_inline)) __m256i hpair3(const uint8_t *s0, const uint8_t *s1,
							    const __m256i *w, int ng, __m256i m01,
							    __m256i m23, __m256i acc)
{
	for (int g = 0; g < ng; g++) {
		__m256i px = _mm256_inserti128_si256(
			_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(s0 + 12 * g))),
			_mm_loadu_si128((const __m128i *)(s1 + 12 * g)), 1);
		acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_shuffle_epi8(px, m01),
							      _mm256_load_si256(w + 2 * g)));
		acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_shuffle_epi8(px, m23),
							      _mm256_load_si256(w + 2 * g + 1)));
	}
	return acc;
}

static inline __attribute__((always_inline)) void hrow3_avx2(int16_t *restrict out,
								const uint8_t *restrict src,
								const fv_axis *a, const int ng)
{
	const __m256i m01 = _mm256_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1,
					     0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1);
	const __m256i m23 = _mm256_setr_epi8(6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1,
					     6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1);
	const __m256i half = _mm256_set1_epi32(1 << (FX_BITS - FX_MID - 1));
	const __m256i *wq = (const __m256i *)a->qp;
	const int *qs = a->qstart;
	const uint8_t *base = src;
	for (int x = 0; x < a->n8; x += 4) {
		const __m256i *w = wq + (size_t)(x / 2) * 2 * ng;
		__m256i t01 = hpair3(base + qs[x], base + qs[x + 1], w, ng, m01, m23, half);
		__m256i t23 = hpair3(base + qs[x + 2], base + qs[x + 3], w + 2 * ng, ng, m01, m23, half);
		t01 = _mm256_srai_epi32(t01, FX_BITS - FX_MID);
		t23 = _mm256_srai_epi32(t23, FX_BITS - FX_MID);
		/* packs gives [x, x+2 | x+1, x+3]; put them in order */
		_mm256_storeu_si256((__m256i *)(out + 4 * x),
				    _mm256_permute4x64_epi64(_mm256_packs_epi32(t01, t23), 0xD8));
	}
}
#endif

/* One source row (c = 3, 8-bit RGB; src is source column lo; 4 bytes past
 * the last tap readable) into n8 pixels of R, G, B, 0 in 16 bits. */
static void hrow3(int16_t *restrict out, const uint8_t *restrict src, const fv_axis *a)
{
	int kq = a->kq, x = 0;
#if defined(__AVX2__)
	switch (kq) {
	case 4: hrow3_avx2(out, src, a, 1); return;
	case 8: hrow3_avx2(out, src, a, 2); return;
	default: hrow3_avx2(out, src, a, kq / 4); return;
	}
#endif
	for (; x < a->n8; x++) {
		const uint8_t *s = src + a->qstart[x];
		const int16_t *w = a->qw + (size_t)x * kq;
		int acc[3] = { 1 << (FX_BITS - FX_MID - 1), 1 << (FX_BITS - FX_MID - 1),
			       1 << (FX_BITS - FX_MID - 1) };
		for (int t = 0; t < kq; t++)
			for (int ch = 0; ch < 3; ch++)
				acc[ch] += w[t] * s[3 * t + ch];
		for (int ch = 0; ch < 3; ch++)
			out[4 * x + ch] = (int16_t)(acc[ch] >> (FX_BITS - FX_MID));
		out[4 * x + 3] = 0;
	}
}

static void hrow1(int16_t *restrict out, const uint8_t *restrict src, const fv_axis *a)
{
	int kq = a->kq;
	for (int x = 0; x < a->n8; x++) {
		const uint8_t *s = src + a->qstart[x];
		const int16_t *w = a->qw + (size_t)x * kq;
		int acc = 1 << (FX_BITS - FX_MID - 1);
		for (int t = 0; t < kq; t++)
			acc += w[t] * s[t];
		out[x] = (int16_t)(acc >> (FX_BITS - FX_MID));
	}
}

/* -------------------------------------------------------------- vertical */

#define FX_SCALE (1.0f / (float)(1 << (FX_BITS + FX_MID)))

/* Store 8 sums of channel k at out[k] + at in em's layout: the sum to
 * pixel units and em's affine map in one multiply and one add,
 * x * (FX_SCALE * mul) + (add - sub) * mul (for plain planes, exactly
 * x * FX_SCALE). */
#if defined(__AVX2__)
static inline __attribute__((always_inline)) void emit8(const fv_emit *em, const float *m,
							  const float *b, int k, size_t at, __m256i acc)
{
	__m256 x = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(m[k])),
				 _mm256_set1_ps(b[k]));
	if (em->half)
		_mm_storeu_si128((__m128i *)((uint16_t *)em->out[k] + at),
				 _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
	else
		_mm256_storeu_ps((float *)em->out[k] + at, x);
}
#endif

static inline void emit1(const fv_emit *em, const float *m, const float *b, int k, size_t at,
			 int acc)
{
	float x = (float)acc * m[k] + b[k];
	if (em->half)
		fv_half_store((uint16_t *)em->out[k] + at, x);
	else
		((float *)em->out[k])[at] = x;
}

/* Output row y: sum the cnt ring rows with their weights, in pairs (an odd
 * last row pairs with itself at weight 0), and emit them at row * ow. */
static void vrow(const fv_emit *em, size_t row, int c, int ow, const int16_t *const *rows,
		 const int16_t *w, int cnt)
{
	int e = 0;
	float m[3], bb[3];
	for (int k = 0; k < 3; k++) {
		m[k] = FX_SCALE * em->mul[k];
		bb[k] = (em->add[k] - em->sub[k]) * em->mul[k];
	}
#if defined(__AVX2__)
	int np = (cnt + 1) / 2;
	__m256i wv[FX_MAXK / 2];
	const int16_t *ra[FX_MAXK / 2], *rb[FX_MAXK / 2];
	for (int p = 0; p < np; p++) {
		int j = 2 * p, odd = j + 1 >= cnt;
		ra[p] = rows[j];
		rb[p] = odd ? rows[j] : rows[j + 1];
		uint32_t pair = (uint16_t)w[j] | (uint32_t)(uint16_t)(odd ? 0 : w[j + 1]) << 16;
		wv[p] = _mm256_set1_epi32((int)pair);
	}
	/* 16 values: lo = [e0..3 | e8..11], hi = [e4..7 | e12..15] */
#define FX_SUM(off, lo, hi)                                                                    \
	do {                                                                                   \
		lo = hi = _mm256_setzero_si256();                                             \
		for (int p = 0; p < np; p++) {                                                \
			__m256i A = _mm256_loadu_si256((const __m256i *)(ra[p] + (off)));     \
			__m256i B = _mm256_loadu_si256((const __m256i *)(rb[p] + (off)));     \
			lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(A, B), wv[p])); \
			hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(A, B), wv[p])); \
		}                                                                             \
	} while (0)
	if (c == 3) {
		for (; e + 8 <= ow; e += 8) {
			__m256i l1, h1, l2, h2;
			FX_SUM(4 * e, l1, h1);      /* [p0 | p2], [p1 | p3] */
			FX_SUM(4 * e + 16, l2, h2); /* [p4 | p6], [p5 | p7] */
			/* transpose as floats' bits (moves only) */
			__m256 f1 = _mm256_castsi256_ps(l1), g1 = _mm256_castsi256_ps(h1);
			__m256 f2 = _mm256_castsi256_ps(l2), g2 = _mm256_castsi256_ps(h2);
			__m256 u0 = _mm256_unpacklo_ps(f1, g1), u1 = _mm256_unpackhi_ps(f1, g1);
			__m256 u2 = _mm256_unpacklo_ps(f2, g2), u3 = _mm256_unpackhi_ps(f2, g2);
			__m256 r = _mm256_shuffle_ps(u0, u2, 0x44), g = _mm256_shuffle_ps(u0, u2, 0xEE);
			__m256 b = _mm256_shuffle_ps(u1, u3, 0x44);
			r = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(r), 0xD8));
			g = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(g), 0xD8));
			b = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(b), 0xD8));
			emit8(em, m, bb, 0, row + e, _mm256_castps_si256(r));
			emit8(em, m, bb, 1, row + e, _mm256_castps_si256(g));
			emit8(em, m, bb, 2, row + e, _mm256_castps_si256(b));
		}
	} else {
		for (; e + 16 <= ow; e += 16) {
			__m256i lo, hi;
			FX_SUM(e, lo, hi);
			__m256i a = _mm256_permute2x128_si256(lo, hi, 0x20);
			__m256i b = _mm256_permute2x128_si256(lo, hi, 0x31);
			emit8(em, m, bb, 0, row + e, a);
			emit8(em, m, bb, 0, row + e + 8, b);
		}
	}
#undef FX_SUM
#endif
	int per = c == 3 ? 4 : 1;
	for (; e < ow; e++)
		for (int ch = 0; ch < c; ch++) {
			int acc = 0;
			for (int j = 0; j < cnt; j++)
				acc += w[j] * rows[j][per * e + ch];
			emit1(em, m, bb, ch, row + e, acc);
		}
}

/* ------------------------------------------------------------------ pass */

/* Rows of a decoded view: the buffer's own, except its last row, copied
 * with room after it for the kernel's reads past the last tap. */
typedef struct view_rows {
	const fv_aug_view *v;
	const fv_axis *ax;
	uint8_t *last;
} view_rows;

static const uint8_t *view_row(void *ctx, int y)
{
	view_rows *r = ctx;
	const fv_aug_view *v = r->v;
	const uint8_t *src = v->px + (size_t)(y - v->y0) * v->stride + (size_t)(r->ax->lo - v->x0) * v->c;
	if (y - v->y0 == v->h - 1) {
		size_t n = (size_t)(r->ax->hi - r->ax->lo) * v->c;
		memcpy(r->last, src, n);
		memset(r->last + n, 0, 64);
		src = r->last;
	}
	return src;
}

int fv_resample_fx(const fv_emit *em, const fv_aug_view *v, fv_axis *ax, fv_axis *ay, int flip,
		   fv_aug_buf *tmpb)
{
	size_t last = ((size_t)(ax->hi - ax->lo) * v->c + 64 + 63) & ~(size_t)63;
	int rc = fv_aug_buf_reserve(&ax->blast, last);
	if (rc)
		return rc;
	view_rows r = { v, ax, ax->blast.p };
	return fv_resample_fx_rows(em, view_row, &r, v->c, ax, ay, flip, tmpb);
}

int fv_resample_fx_rows(const fv_emit *em, fv_row_fn row, void *ctx, int c, fv_axis *ax,
			fv_axis *ay, int flip, fv_aug_buf *tmpb)
{
	int rc;
	if ((rc = plan_h(ax, flip, c)) || (rc = plan_v(ay)))
		return rc;
	int ow = ax->n, oh = ay->n, R = ay->kq;
	size_t m = (size_t)ax->n8 * (c == 3 ? 4 : 1);           /* int16 per row */
	size_t rowb = (m * sizeof(int16_t) + 63) & ~(size_t)63;
	if ((rc = fv_aug_buf_reserve(tmpb, rowb * R)))
		return rc;
	uint8_t *ring = tmpb->p;
	int next = ay->start[0];
	for (int y = 0; y < oh; y++) {
		int s0 = ay->start[y], cn = ay->cnt[y];
		if (s0 < next - R) /* rows only move down: a plan never does this */
			return fv_err_set(FV_E_INTERNAL, "resample: row %d after row %d", s0, next);
		for (; next < s0 + cn; next++) {
			const uint8_t *src = row(ctx, next);
			if (!src)
				return FV_E_DECODE; /* the source said why */
			int16_t *dst = (int16_t *)(ring + rowb * (size_t)(next % R));
			if (c == 3)
				hrow3(dst, src, ax);
			else
				hrow1(dst, src, ax);
		}
		const int16_t *rows[FX_MAXK];
		for (int j = 0; j < cn; j++)
			rows[j] = (const int16_t *)(ring + rowb * (size_t)((s0 + j) % R));
		vrow(em, (size_t)y * ow, c, ow, rows, ay->qw + (size_t)y * ay->kq, cn);
	}
	return 0;
}
