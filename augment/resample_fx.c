/* augment/resample_fx.c — the resampling pass in fixed point, the way
 * Pillow-SIMD does it: weights in 14-bit fixed point (each output's sum
 * exactly 1 << 14), the horizontal pass first, from the decoded 8-bit
 * pixels into 16-bit rows with 7 fraction bits, then the vertical pass over
 * those rows into 32-bit sums, converted once to float planes. Against the
 * float filter an output moves by at most ~0.02 levels per tap.
 *
 * The horizontal pass works on channel planes (each RGB row split first):
 * a window of plane bytes holds the taps of several outputs, and one byte
 * shuffle per pair of taps spreads them into 16-bit values for one madd.
 * AVX-512 (VBMI) takes 16 outputs per 64-byte window; AVX2 4 outputs per
 * 16-byte lane, or fewer when the shrink is wider; plain C the rest.
 * Integer sums do not depend on their order, so every kernel gives the
 * same bits on every host (test_transform checks the levels against each
 * other), and the choice is made per CPU at run time.
 *
 * Horizontal rows are made on demand into a ring as the vertical pass walks
 * down, so each source row is read once and the ring stays in L1/L2. Ring
 * rows are channel planes of 16-bit values, each 16 outputs in the order
 * the vertical pass's unpacks read back in order (rpos). */
#include <stddef.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

#include "augment/aug_internal.h"
#include "fv_error.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#define FX_BITS 14   /* weight fraction bits */
#define FX_MID 7     /* fraction bits kept between the passes */
#define FX_MAXK 32   /* widest filter the fixed-point path takes */

/* Call kernel f(args..., n) with n a constant for the usual counts (1-4
 * pairs of taps or rows), so its inner loops unroll, else n itself. */
#define FX_UNROLLED(n, f, ...)                                                                  \
	do {                                                                                   \
		switch (n) {                                                                   \
		case 1: f(__VA_ARGS__, 1); break;                                              \
		case 2: f(__VA_ARGS__, 2); break;                                              \
		case 3: f(__VA_ARGS__, 3); break;                                              \
		case 4: f(__VA_ARGS__, 4); break;                                              \
		default: f(__VA_ARGS__, n); break;                                             \
		}                                                                              \
	} while (0)

/* Quantize output i's weights of a (float plan) into q[0..cnt): rounded,
 * then the largest absorbs the rounding so they sum to exactly 1 << 14. */
static void quantize(const fv_axis *a, int i, int16_t *q)
{
	const float *w = a->w + (size_t)i * a->k;
	int sum = 0, big = 0, top = -1;
	for (int j = 0; j < a->cnt[i]; j++) {
		int v = (int)(w[j] * (1 << FX_BITS) + 0.5f);
		q[j] = (int16_t)v;
		sum += v;
		if (v > top) {
			top = v;
			big = j;
		}
	}
	q[big] = (int16_t)(top + ((1 << FX_BITS) - sum));
}

int fv_axis_fx_ok(const fv_axis *ax, const fv_axis *ay, int c)
{
	int kx = (ax->kf + 3) & ~3;
	return (c == 1 || c == 3) && kx <= FX_MAXK && ay->kf <= FX_MAXK &&
	       ax->hi - ax->lo >= kx;
}

/* Ring rows keep each 16 outputs in the order [0-3, 8-11, 4-7, 12-15]:
 * what packs makes of two 8-output sums, and what unpacklo/unpackhi of
 * two such rows turn back into outputs 0-7 and 8-15. */
static inline int rpos(int x)
{
	int b = x & 15;
	return (x & ~15) | (b & 3) | (b & 4) << 1 | (b & 8) >> 1;
}

/* Which kernels run: 2 the AVX-512 (VBMI) ones, 1 AVX2, 0 plain C; set
 * once from the CPU (FV_AUG_ISA=avx2 or =c caps it). */
static int isa_level, isa_top;
static pthread_once_t isa_once = PTHREAD_ONCE_INIT;
static void isa_init(void);

int fv_resample_fx_isa(int cap)
{
	pthread_once(&isa_once, isa_init);
	if (cap >= 0)
		__atomic_store_n(&isa_level, cap < isa_top ? cap : isa_top, __ATOMIC_RELAXED);
	return __atomic_load_n(&isa_level, __ATOMIC_RELAXED);
}

/* The kernels' tap windows (a->lanes): */
enum {
	WIN_NONE,  /* plain C, from qstart and qw */
	WIN_AVX2,  /* 16 bytes per 4 outputs, two such lanes to a register */
	WIN_512,   /* 64 bytes per 16 outputs, placed in ring order */
	WIN_AVX2_2, /* 16 bytes per 2 outputs (their taps split over two
		     * slots each, summed after), for shrinks too wide for 4 */
	WIN_AVX2_1, /* 16 bytes per output (over four slots): up to 16 taps */
	WIN_512_RGB /* AVX-512 straight from RGB rows: 128 bytes (42 pixels)
		     * per 16 outputs, offsets of the R bytes (G, B: + 1, + 2) */
};

/* Lay out the horizontal taps for the kernel of windows mode: window v
 * starts at plane column qstart[3 * n16 + v] (its outputs' first real
 * tap); per register (L windows) and group of taps g, qp holds R bytes of
 * byte-shuffle control (per slot, two taps as 16-bit values: low byte the
 * offset in the window, high byte 0x80, zero) then R bytes of their
 * weights in the same places (WIN_512_RGB: then the G and B bytes'
 * control). Taps that weigh nothing read nothing (0x80).
 * Returns whether every real tap fits its window. */
static int plan_windows(fv_axis *a, int mode)
{
	static const int ring16[16] = { 0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15 };
	int wide = mode == WIN_512 || mode == WIN_512_RGB, px = mode == WIN_512_RGB ? 3 : 1;
	int B = wide ? 16 : mode == WIN_AVX2 ? 4 : mode == WIN_AVX2_2 ? 2 : 1;
	int S = wide ? 1 : 4 / B; /* slots per output */
	int L = wide ? 1 : 2, R = wide ? 64 : 32, win = mode == WIN_512 ? 64 : wide ? 126 : 16;
	int n16 = a->n16, kq = a->kq, GG = (kq / 2 + S - 1) / S, fits = 1, w = a->hi - a->lo;
	const int *first = a->qstart + n16, *last = a->qstart + 2 * n16;
	int *base = a->qstart + 3 * n16;
	uint8_t *qp = (uint8_t *)a->qp;
	int step = mode == WIN_512_RGB ? 4 * R : 2 * R; /* bytes per register and group */
	for (int r = 0; r < n16 / (B * L) * GG; r++) {
		memset(qp + (size_t)r * step, 0x80, R);
		memset(qp + (size_t)r * step + R, 0, R);
	}
	for (int v = 0; v < n16 / B; v++) {
		/* window v's first output: in order, except for the split
		 * slots. WIN_AVX2_2's registers hold {0,1 | 4,5}, {2,3 | 6,7},
		 * {8,9 | 12,13} and {10,11 | 14,15} of each 16, so one hadd of
		 * two of them leaves 8 outputs in order; WIN_AVX2_1's
		 * {0 | 4}, {1 | 5}, {2 | 6}, {3 | 7}, then 8-15 likewise, for
		 * two rounds of hadd of four */
		int x0 = v * B, r = v / 2;
		if (mode == WIN_AVX2_2)
			x0 = 16 * (r / 4) + 8 * (r % 4 / 2) + 2 * (r % 2) + 4 * (v % 2);
		else if (mode == WIN_AVX2_1)
			x0 = 16 * (r / 8) + 8 * (r % 8 / 4) + r % 4 + 4 * (v % 2);
		int lo = w;
		for (int j = 0; j < B; j++)
			if (last[x0 + j] > first[x0 + j] && first[x0 + j] < lo)
				lo = first[x0 + j];
		base[v] = lo = lo < w ? lo : 0;
		uint8_t *blk = qp + (size_t)(v / L) * GG * step + (v % L) * (R / L);
		for (int j = 0; j < B; j++) {
			int x = x0 + j, slot = wide ? ring16[j] : S * j;
			for (int col = first[x]; col < last[x]; col++) {
				int t = col - a->qstart[x];
				uint8_t *c = blk + (size_t)(t / (2 * S)) * step + 4 * (slot + t / 2 % S) + 2 * (t & 1);
				if (px * (col - lo) >= win) {
					fits = 0;
					continue;
				}
				c[0] = (uint8_t)(px * (col - lo));
				memcpy(c + R, &a->qw[(size_t)x * kq + t], 2);
			}
		}
	}
	if (mode == WIN_512_RGB) /* the G and B bytes are one and two further */
		for (int r = 0; r < n16 / (B * L) * GG; r++)
			for (int k = 0; k < R; k++) {
				qp[(size_t)r * step + 2 * R + k] = (uint8_t)(qp[(size_t)r * step + k] + 1);
				qp[(size_t)r * step + 3 * R + k] = (uint8_t)(qp[(size_t)r * step + k] + 2);
			}
	return fits;
}

/* The horizontal plan over channel planes (source column lo at 0). Output
 * x < n16 (n rounded up to 16; the extra ones weigh nothing) reads kq taps
 * (kf rounded up to even) from plane column qstart[x], moved left at the
 * right edge so no tap passes hi, with weights qw[x * kq + t], its real
 * taps in columns [qstart[n16 + x], qstart[2 * n16 + x]); output x is
 * source output n-1-x when flipping. Then the windows of the widest
 * kernel the isa level has and the taps fit (a->lanes, a WIN_ mode):
 * AVX-512 from the RGB row or a plane, AVX2 4, 2 or 1 outputs per lane;
 * else plain C. c: channels. */
static int plan_h(fv_axis *a, int flip, int isa, int c)
{
	int n = a->n, n16 = (n + 15) & ~15, kq = (a->kf + 1) & ~1, rc;
	if ((rc = fv_aug_buf_reserve(&a->bqstart, sizeof(int) * (size_t)n16 * 4)) ||
	    (rc = fv_aug_buf_reserve(&a->bqw, sizeof(int16_t) * (size_t)n16 * kq)) ||
	    (rc = fv_aug_buf_reserve(&a->bqp, 16 * (size_t)n16 * (kq / 2 + 1))))
		return rc;
	a->kq = kq;
	a->n16 = n16;
	a->qstart = a->bqstart.p;
	a->qw = a->bqw.p;
	a->qp = a->bqp.p;
	int *first = a->qstart + n16, *last = a->qstart + 2 * n16;
	memset(a->qw, 0, sizeof(int16_t) * (size_t)n16 * kq);
	for (int x = 0; x < n16; x++) {
		int i = flip ? n - 1 - x : x;
		a->qstart[x] = first[x] = last[x] = 0;
		if (x >= n)
			continue;
		int st = a->start[i] < a->hi - kq ? a->start[i] : a->hi - kq;
		int16_t q[FX_MAXK];
		quantize(a, i, q);
		a->qstart[x] = st - a->lo;
		for (int t = 0; t < a->cnt[i]; t++)
			a->qw[(size_t)x * kq + a->start[i] - st + t] = q[t];
		first[x] = a->start[i] - a->lo;
		last[x] = first[x] + a->cnt[i];
	}
	a->lanes = WIN_NONE;
	if (isa >= 2 && c == 3 && plan_windows(a, WIN_512_RGB))
		a->lanes = WIN_512_RGB;
	else if (isa >= 2 && plan_windows(a, WIN_512))
		a->lanes = WIN_512;
	else if (isa >= 1 && plan_windows(a, WIN_AVX2))
		a->lanes = WIN_AVX2;
	else if (isa >= 1 && plan_windows(a, WIN_AVX2_2))
		a->lanes = WIN_AVX2_2;
	else if (isa >= 1 && kq <= 16 && plan_windows(a, WIN_AVX2_1))
		a->lanes = WIN_AVX2_1;
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
static void split3_512(const uint8_t *restrict s, int w, uint8_t *const *out);
#endif

/* Split w RGB pixels into three planes (wide: with the AVX-512 kernel). */
static void split3(const uint8_t *restrict s, int w, uint8_t *const *out, int wide)
{
	int x = 0;
	uint8_t *restrict r = out[0], *restrict g = out[1], *restrict b = out[2];
#if defined(__AVX2__)
	if (wide) {
		split3_512(s, w, out);
		return;
	}
	/* pixel k's channel ch is byte 3k + ch of the 48 per 16 pixels: per
	 * channel one shuffle of each 16-byte third, or-ed together */
	__m256i m[3][3];
	for (int ch = 0; ch < 3; ch++)
		for (int third = 0; third < 3; third++) {
			uint8_t v[16];
			for (int k = 0; k < 16; k++)
				v[k] = (3 * k + ch) / 16 == third ? (uint8_t)((3 * k + ch) % 16) : 0x80;
			m[ch][third] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)v));
		}
	for (; x + 32 <= w; x += 32) {
		const uint8_t *p = s + 3 * x;
		__m256i t[3];
		for (int third = 0; third < 3; third++)
			t[third] = _mm256_inserti128_si256(
				_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p + 16 * third))),
				_mm_loadu_si128((const __m128i *)(p + 48 + 16 * third)), 1);
		for (int ch = 0; ch < 3; ch++)
			_mm256_storeu_si256((__m256i *)(out[ch] + x),
					    _mm256_or_si256(_mm256_or_si256(_mm256_shuffle_epi8(t[0], m[ch][0]),
									     _mm256_shuffle_epi8(t[1], m[ch][1])),
							    _mm256_shuffle_epi8(t[2], m[ch][2])));
	}
#else
	(void)wide;
#endif
	for (; x < w; x++) {
		r[x] = s[3 * x];
		g[x] = s[3 * x + 1];
		b[x] = s[3 * x + 2];
	}
}

#if defined(__AVX2__)
/* Outputs x .. x+7: two lanes' 16 source bytes, one shuffle and one madd
 * per pair of taps; the sums at 7 fraction bits. */
static inline __attribute__((always_inline)) __m256i hlanes(const uint8_t *pl, const int *lb,
							     const uint8_t *qp, int G, __m256i acc)
{
	__m256i px = _mm256_inserti128_si256(
		_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(pl + lb[0]))),
		_mm_loadu_si128((const __m128i *)(pl + lb[1])), 1);
	for (int g = 0; g < G; g++) {
		const __m256i *q = (const __m256i *)(qp + 64 * g);
		acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_shuffle_epi8(px, _mm256_loadu_si256(q)),
							      _mm256_loadu_si256(q + 1)));
	}
	return acc;
}

/* WIN_AVX2: 16 outputs of each of nc planes (ring planes pstride apart)
 * as two registers of two 4-output lanes; each register's shuffles and
 * weights loaded once for all the planes. */
static inline __attribute__((always_inline)) void hplanes_avx2(int16_t *restrict out,
								  const uint8_t *const *pl, size_t pstride,
								  const fv_axis *a, const int nc, const int G)
{
	const __m256i half = _mm256_set1_epi32(1 << (FX_BITS - FX_MID - 1));
	const int *lb = a->qstart + 3 * a->n16;
	const uint8_t *qp = (const uint8_t *)a->qp;
	for (int x = 0; x < a->n16; x += 16) {
		__m256i t[2][3];
		for (int h = 0; h < 2; h++) {
			const int *b = lb + x / 4 + 2 * h;
			const uint8_t *q = qp + (size_t)(x / 8 + h) * G * 64;
			__m256i px[3];
			for (int ch = 0; ch < nc; ch++) {
				px[ch] = _mm256_inserti128_si256(
					_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(pl[ch] + b[0]))),
					_mm_loadu_si128((const __m128i *)(pl[ch] + b[1])), 1);
				t[h][ch] = half;
			}
			for (int g = 0; g < G; g++) {
				__m256i ctl = _mm256_loadu_si256((const __m256i *)(q + 64 * g));
				__m256i wt = _mm256_loadu_si256((const __m256i *)(q + 64 * g + 32));
				for (int ch = 0; ch < nc; ch++)
					t[h][ch] = _mm256_add_epi32(t[h][ch], _mm256_madd_epi16(_mm256_shuffle_epi8(px[ch], ctl), wt));
			}
		}
		for (int ch = 0; ch < nc; ch++)
			_mm256_storeu_si256((__m256i *)(out + ch * pstride + x),
					    _mm256_packs_epi32(_mm256_srai_epi32(t[0][ch], FX_BITS - FX_MID),
							       _mm256_srai_epi32(t[1][ch], FX_BITS - FX_MID)));
	}
}

static void hplanes(int16_t *restrict out, const uint8_t *const *pl, int nc, size_t pstride,
		    const fv_axis *a)
{
	if (nc == 3)
		FX_UNROLLED(a->kq / 2, hplanes_avx2, out, pl, pstride, a, 3);
	else
		FX_UNROLLED(a->kq / 2, hplanes_avx2, out, pl, pstride, a, 1);
}

/* WIN_AVX2_2 (S = 2) and WIN_AVX2_1 (S = 4): 16 outputs as 8 / S
 * registers of two lanes of 4 / S outputs, each output's taps in S slots;
 * horizontal adds sum them, leaving 8 outputs in order per 4 / S... */
static inline __attribute__((always_inline)) void hplane_split(int16_t *restrict out,
								  const uint8_t *restrict pl,
								  const fv_axis *a, const int S)
{
	const __m256i half = _mm256_set1_epi32(1 << (FX_BITS - FX_MID - 1)), z = _mm256_setzero_si256();
	const int *lb = a->qstart + 3 * a->n16, GG = (a->kq / 2 + S - 1) / S;
	const uint8_t *qp = (const uint8_t *)a->qp;
	for (int x = 0; x < a->n16; x += 16) {
		__m256i t[8];
		for (int r = 0; r < 2 * S; r++)
			t[r] = hlanes(pl, lb + x * S / 4 + 2 * r, qp + (size_t)(x * S / 8 + r) * GG * 64, GG, z);
		for (int n = 2 * S; n > 4; n /= 2) /* S = 4: a first round, 8 -> 4 */
			for (int r = 0; r < n / 2; r++)
				t[r] = _mm256_hadd_epi32(t[2 * r], t[2 * r + 1]);
		__m256i t0 = _mm256_add_epi32(_mm256_hadd_epi32(t[0], t[1]), half);
		__m256i t1 = _mm256_add_epi32(_mm256_hadd_epi32(t[2], t[3]), half);
		_mm256_storeu_si256((__m256i *)(out + x),
				    _mm256_packs_epi32(_mm256_srai_epi32(t0, FX_BITS - FX_MID),
						       _mm256_srai_epi32(t1, FX_BITS - FX_MID)));
	}
}
#endif

/* ---------------------------------------------------------------- AVX-512 */

#if defined(__AVX2__)

#define FV_AVX512 __attribute__((target("avx512f,avx512bw,avx512vbmi")))

/* split3_512's byte permutes: channel ch's byte k of 64 pixels is byte
 * 3k + ch of their 192: from the first 128 by a two-table permute, then
 * those past them (mask split_hi[ch]) from the last 64. */
static uint8_t split_idx[3][2][64];
static uint64_t split_hi[3];

static void isa_init(void)
{
	const char *cap = getenv("FV_AUG_ISA");
	isa_top = 1;
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vbmi"))
		isa_top = 2;
	if (cap && !strcmp(cap, "avx2"))
		isa_top = 1;
	else if (cap && !strcmp(cap, "c"))
		isa_top = 0;
	isa_level = isa_top;
	for (int ch = 0; ch < 3; ch++)
		for (int k = 0; k < 64; k++) {
			int b = 3 * k + ch;
			split_idx[ch][0][k] = (uint8_t)(b < 128 ? b : 0);
			split_idx[ch][1][k] = (uint8_t)(b < 128 ? 0 : b - 128);
			if (b >= 128)
				split_hi[ch] |= 1ull << k;
		}
}

static FV_AVX512 void split3_512(const uint8_t *restrict s, int w, uint8_t *const *out)
{
	__m512i lo[3], hi[3];
	for (int ch = 0; ch < 3; ch++) {
		lo[ch] = _mm512_loadu_si512(split_idx[ch][0]);
		hi[ch] = _mm512_loadu_si512(split_idx[ch][1]);
	}
	int x = 0;
	for (; x + 64 <= w; x += 64) {
		const uint8_t *p = s + 3 * (size_t)x;
		__m512i A = _mm512_loadu_si512(p), B = _mm512_loadu_si512(p + 64);
		__m512i C = _mm512_loadu_si512(p + 128);
		for (int ch = 0; ch < 3; ch++)
			_mm512_storeu_si512(out[ch] + x, _mm512_mask_permutexvar_epi8(
				_mm512_permutex2var_epi8(A, lo[ch], B), split_hi[ch], hi[ch], C));
	}
	if (x < w) { /* the last n pixels: masked loads and stores */
		const uint8_t *p = s + 3 * (size_t)x;
		int n = w - x, nb = 3 * n;
		__mmask64 m0 = nb >= 64 ? ~0ull : (1ull << nb) - 1;
		__mmask64 m1 = nb >= 128 ? ~0ull : nb > 64 ? (1ull << (nb - 64)) - 1 : 0;
		__mmask64 m2 = nb > 128 ? (1ull << (nb - 128)) - 1 : 0;
		__m512i A = _mm512_maskz_loadu_epi8(m0, p), B = _mm512_maskz_loadu_epi8(m1, p + 64);
		__m512i C = _mm512_maskz_loadu_epi8(m2, p + 128);
		for (int ch = 0; ch < 3; ch++)
			_mm512_mask_storeu_epi8(out[ch] + x, (1ull << n) - 1, _mm512_mask_permutexvar_epi8(
				_mm512_permutex2var_epi8(A, lo[ch], B), split_hi[ch], hi[ch], C));
	}
}

/* 16 outputs per 64-byte window of the plane (w bytes in it), one byte
 * permute and one madd per pair of taps, stored in ring order. */
static inline __attribute__((always_inline)) FV_AVX512 void
hplane_512(int16_t *restrict out, const uint8_t *restrict pl, int w, const fv_axis *a, const int G)
{
	const __m512i half = _mm512_set1_epi32(1 << (FX_BITS - FX_MID - 1));
	const int *base = a->qstart + 3 * a->n16;
	const uint8_t *qp = (const uint8_t *)a->qp;
	for (int v = 0; v < a->n16 / 16; v++) {
		int left = w - base[v];
		__m512i px = left >= 64 ? _mm512_loadu_si512(pl + base[v])
					: _mm512_maskz_loadu_epi8((1ull << left) - 1, pl + base[v]);
		__m512i acc = half;
		for (int g = 0; g < G; g++) {
			const uint8_t *q = qp + ((size_t)v * G + g) * 128;
			__m512i t = _mm512_maskz_permutexvar_epi8(0x5555555555555555ull,
								  _mm512_loadu_si512(q), px);
			acc = _mm512_add_epi32(acc, _mm512_madd_epi16(t, _mm512_loadu_si512(q + 64)));
		}
		_mm256_storeu_si256((__m256i *)(out + 16 * v),
				    _mm512_cvtsepi32_epi16(_mm512_srai_epi32(acc, FX_BITS - FX_MID)));
	}
}

static FV_AVX512 void hplane512(int16_t *restrict out, const uint8_t *restrict pl, int w,
				const fv_axis *a)
{
	FX_UNROLLED(a->kq / 2, hplane_512, out, pl, w, a);
}

/* WIN_512_RGB: 16 outputs of each channel per 128 bytes of the RGB row
 * (w pixels), one two-table byte permute and one madd per pair of taps
 * and channel, into the three ring planes (pstride apart). Its plan holds
 * 256 bytes per window and pair of taps: the R bytes' permute, the
 * weights, then the G and B bytes' permutes. */
static inline __attribute__((always_inline)) FV_AVX512 void
hrgb_512(int16_t *restrict out, const uint8_t *restrict row, int w, const fv_axis *a,
	 size_t pstride, const int G)
{
	const __m512i half = _mm512_set1_epi32(1 << (FX_BITS - FX_MID - 1));
	const int *base = a->qstart + 3 * a->n16;
	const uint8_t *qp = (const uint8_t *)a->qp;
	for (int v = 0; v < a->n16 / 16; v++) {
		const uint8_t *p = row + 3 * (size_t)base[v];
		int left = 3 * (w - base[v]);
		__m512i A, B;
		if (left >= 128) {
			A = _mm512_loadu_si512(p);
			B = _mm512_loadu_si512(p + 64);
		} else {
			A = _mm512_maskz_loadu_epi8(left >= 64 ? ~0ull : (1ull << left) - 1, p);
			B = _mm512_maskz_loadu_epi8(left > 64 ? (1ull << (left - 64)) - 1 : 0, p + 64);
		}
		const uint8_t *q = qp + (size_t)v * G * 256;
		__m512i acc[3] = { half, half, half };
		for (int g = 0; g < G; g++) {
			__m512i wt = _mm512_loadu_si512(q + 256 * g + 64);
			for (int ch = 0; ch < 3; ch++) {
				__m512i idx = _mm512_loadu_si512(q + 256 * g + (ch ? 64 + 64 * ch : 0));
				__m512i t = _mm512_maskz_permutex2var_epi8(0x5555555555555555ull, A, idx, B);
				acc[ch] = _mm512_add_epi32(acc[ch], _mm512_madd_epi16(t, wt));
			}
		}
		for (int ch = 0; ch < 3; ch++)
			_mm256_storeu_si256((__m256i *)(out + ch * pstride + 16 * v),
					    _mm512_cvtsepi32_epi16(_mm512_srai_epi32(acc[ch], FX_BITS - FX_MID)));
	}
}

static FV_AVX512 void hrgb512(int16_t *restrict out, const uint8_t *restrict row, int w,
			      const fv_axis *a, size_t pstride)
{
	FX_UNROLLED(a->kq / 2, hrgb_512, out, row, w, a, pstride);
}

/* The vertical pass's AVX-512 row (vplane's): 32 outputs a step, two 16s
 * in ring order, so the unpacks give outputs [0-7, 16-23] and
 * [8-15, 24-31]; one two-table permute each puts them in order. */
static inline __attribute__((always_inline)) FV_AVX512 void
vplane_512(void *out, int half, float m, float b, int n, const int16_t *const *ra,
	   const int16_t *const *rb, const uint32_t *pair, size_t off, const int np)
{
	const __m512 mv = _mm512_set1_ps(m), bv = _mm512_set1_ps(b);
	const __m512i first = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
	const __m512i second = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
	__m512i wv[FX_MAXK / 2];
	for (int p = 0; p < np; p++)
		wv[p] = _mm512_set1_epi32((int)pair[p]);
	for (int e = 0; e < n; e += 32) {
		__m512i l = _mm512_setzero_si512(), h = _mm512_setzero_si512();
		for (int p = 0; p < np; p++) {
			__m512i A = _mm512_loadu_si512(ra[p] + off + e);
			__m512i B = _mm512_loadu_si512(rb[p] + off + e);
			l = _mm512_add_epi32(l, _mm512_madd_epi16(_mm512_unpacklo_epi16(A, B), wv[p]));
			h = _mm512_add_epi32(h, _mm512_madd_epi16(_mm512_unpackhi_epi16(A, B), wv[p]));
		}
		__m512 x0 = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_permutex2var_epi32(l, first, h)), mv), bv);
		__m512 x1 = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_permutex2var_epi32(l, second, h)), mv), bv);
		int left = n - e;
		if (half) {
			__m512i hv = _mm512_inserti64x4(
				_mm512_castsi256_si512(_mm512_cvtps_ph(x0, _MM_FROUND_TO_NEAREST_INT)),
				_mm512_cvtps_ph(x1, _MM_FROUND_TO_NEAREST_INT), 1);
			_mm512_mask_storeu_epi16((uint16_t *)out + e,
						 left >= 32 ? ~0u : (__mmask32)((1u << left) - 1), hv);
		} else {
			__mmask16 k0 = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);
			__mmask16 k1 = left >= 32 ? 0xFFFF : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
			_mm512_mask_storeu_ps((float *)out + e, k0, x0);
			_mm512_mask_storeu_ps((float *)out + e + 16, k1, x1);
		}
	}
}

static FV_AVX512 void vplane512(void *out, int half, float m, float b, int n,
				const int16_t *const *ra, const int16_t *const *rb,
				const uint32_t *pair, int np, size_t off)
{
	FX_UNROLLED(np, vplane_512, out, half, m, b, n, ra, rb, pair, off);
}
#else
static void isa_init(void)
{
	isa_top = isa_level = 0;
}
#endif

/* One plane row (pl is column lo; w bytes, 16 more readable) into n16
 * 16-bit outputs in ring order, by the kernels that take a plane at a time
 * (hrow takes WIN_AVX2 and WIN_512_RGB itself). */
static void hplane(int16_t *restrict out, const uint8_t *restrict pl, int w, const fv_axis *a)
{
#if defined(__AVX2__)
	if (a->lanes == WIN_512) {
		hplane512(out, pl, w, a);
		return;
	}
	if (a->lanes == WIN_AVX2_2 || a->lanes == WIN_AVX2_1) {
		hplane_split(out, pl, a, a->lanes == WIN_AVX2_2 ? 2 : 4);
		return;
	}
#else
	(void)w;
#endif
	int kq = a->kq;
	for (int x = 0; x < a->n16; x++) {
		const uint8_t *s = pl + a->qstart[x];
		const int16_t *wq = a->qw + (size_t)x * kq;
		int acc = 1 << (FX_BITS - FX_MID - 1);
		for (int t = 0; t < kq; t++)
			acc += wq[t] * s[t];
		out[rpos(x)] = (int16_t)(acc >> (FX_BITS - FX_MID));
	}
}

/* One source row (column lo, 16 bytes readable past hi; c channels) into
 * ring row dst: c planes of n16 outputs, pstride apart. pl: the planes
 * c == 3 rows are split into (W bytes each, 16 more readable). */
static void hrow(int16_t *restrict dst, const uint8_t *src, int W, int c, uint8_t *const *pl,
		 size_t pstride, const fv_axis *a, int isa)
{
#if defined(__AVX2__)
	if (c == 3 && a->lanes == WIN_512_RGB) {
		hrgb512(dst, src, W, a, pstride);
		return;
	}
#endif
	const uint8_t *planes[3] = { src, NULL, NULL };
	if (c == 3) {
		split3(src, W, pl, isa >= 2);
		for (int ch = 0; ch < 3; ch++)
			planes[ch] = pl[ch];
	}
#if defined(__AVX2__)
	if (a->lanes == WIN_AVX2) {
		hplanes(dst, planes, c, pstride, a);
		return;
	}
#endif
	for (int ch = 0; ch < c; ch++)
		hplane(dst + pstride * ch, planes[ch], W, a);
}

/* -------------------------------------------------------------- vertical */

#define FX_SCALE (1.0f / (float)(1 << (FX_BITS + FX_MID)))

#if defined(__AVX2__)
/* Sum np pairs of ring rows (ra, rb) at 16 outputs from e: lo is outputs
 * e..e+7 and hi e+8..e+15 (the ring order makes them so). */
static inline __attribute__((always_inline)) void vsum16(const int16_t *const *ra,
							  const int16_t *const *rb, const __m256i *wv,
							  const int np, size_t at, __m256i *lo, __m256i *hi)
{
	__m256i l = _mm256_setzero_si256(), h = _mm256_setzero_si256();
	for (int p = 0; p < np; p++) {
		__m256i A = _mm256_loadu_si256((const __m256i *)(ra[p] + at));
		__m256i B = _mm256_loadu_si256((const __m256i *)(rb[p] + at));
		l = _mm256_add_epi32(l, _mm256_madd_epi16(_mm256_unpacklo_epi16(A, B), wv[p]));
		h = _mm256_add_epi32(h, _mm256_madd_epi16(_mm256_unpackhi_epi16(A, B), wv[p]));
	}
	*lo = l;
	*hi = h;
}

/* One channel's output row: n values at out, x * m + b of the sums. */
static inline __attribute__((always_inline)) void vplane(void *out, int half, float m, float b,
							  int n, const int16_t *const *ra,
							  const int16_t *const *rb, const __m256i *wv,
							  size_t off, const int np)
{
	const __m256 mv = _mm256_set1_ps(m), bv = _mm256_set1_ps(b);
	int e = 0;
	__m256i lo, hi;
	for (; e + 16 <= n; e += 16) {
		vsum16(ra, rb, wv, np, off + e, &lo, &hi);
		__m256 x0 = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(lo), mv), bv);
		__m256 x1 = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(hi), mv), bv);
		if (half) {
			_mm_storeu_si128((__m128i *)((uint16_t *)out + e), _mm256_cvtps_ph(x0, _MM_FROUND_TO_NEAREST_INT));
			_mm_storeu_si128((__m128i *)((uint16_t *)out + e + 8), _mm256_cvtps_ph(x1, _MM_FROUND_TO_NEAREST_INT));
		} else {
			_mm256_storeu_ps((float *)out + e, x0);
			_mm256_storeu_ps((float *)out + e + 8, x1);
		}
	}
	if (e < n) { /* the last few through a buffer: the row ends inside them */
		vsum16(ra, rb, wv, np, off + e, &lo, &hi);
		__m256 x0 = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(lo), mv), bv);
		__m256 x1 = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(hi), mv), bv);
		if (half) {
			uint16_t t[16];
			_mm_storeu_si128((__m128i *)t, _mm256_cvtps_ph(x0, _MM_FROUND_TO_NEAREST_INT));
			_mm_storeu_si128((__m128i *)(t + 8), _mm256_cvtps_ph(x1, _MM_FROUND_TO_NEAREST_INT));
			memcpy((uint16_t *)out + e, t, sizeof t[0] * (size_t)(n - e));
		} else {
			float t[16];
			_mm256_storeu_ps(t, x0);
			_mm256_storeu_ps(t + 8, x1);
			memcpy((float *)out + e, t, sizeof t[0] * (size_t)(n - e));
		}
	}
}
#endif

/* Output row y: per channel plane (pstride int16 apart in each ring row),
 * sum the cnt ring rows with their weights, in pairs (an odd last row
 * pairs with itself at weight 0), and emit them at row * ow: the sum to
 * pixel units and em's affine map in one multiply and one add,
 * x * (FX_SCALE * mul) + (add - sub) * mul (for plain planes, exactly
 * x * FX_SCALE). */
static void vrow(const fv_emit *em, size_t row, int c, int ow, const int16_t *const *rows,
		 size_t pstride, const int16_t *w, int cnt, int wide)
{
	float m[3], bb[3];
	for (int k = 0; k < 3; k++) {
		m[k] = FX_SCALE * em->mul[k];
		bb[k] = (em->add[k] - em->sub[k]) * em->mul[k];
	}
#if defined(__AVX2__)
	int np = (cnt + 1) / 2;
	uint32_t pair[FX_MAXK / 2];
	__m256i wv[FX_MAXK / 2];
	const int16_t *ra[FX_MAXK / 2], *rb[FX_MAXK / 2];
	for (int p = 0; p < np; p++) {
		int j = 2 * p, odd = j + 1 >= cnt;
		ra[p] = rows[j];
		rb[p] = odd ? rows[j] : rows[j + 1];
		pair[p] = (uint16_t)w[j] | (uint32_t)(uint16_t)(odd ? 0 : w[j + 1]) << 16;
		wv[p] = _mm256_set1_epi32((int)pair[p]);
	}
	for (int ch = 0; ch < c; ch++) {
		size_t es = em->half ? sizeof(uint16_t) : sizeof(float);
		void *out = (uint8_t *)em->out[ch] + row * es;
		size_t off = (size_t)ch * pstride;
		if (wide) {
			vplane512(out, em->half, m[ch], bb[ch], ow, ra, rb, pair, np, off);
			continue;
		}
		FX_UNROLLED(np, vplane, out, em->half, m[ch], bb[ch], ow, ra, rb, wv, off);
	}
#else
	(void)wide;
	for (int ch = 0; ch < c; ch++)
		for (int e = 0; e < ow; e++) {
			int acc = 0;
			for (int j = 0; j < cnt; j++)
				acc += w[j] * rows[j][(size_t)ch * pstride + rpos(e)];
			float x = (float)acc * m[ch] + bb[ch];
			if (em->half)
				fv_half_store((uint16_t *)em->out[ch] + row + e, x);
			else
				((float *)em->out[ch])[row + e] = x;
		}
#endif
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
	int isa = fv_resample_fx_isa(-1);
	if ((rc = plan_h(ax, flip, isa, c)) || (rc = plan_v(ay)))
		return rc;
	int ow = ax->n, oh = ay->n, R = ay->kq, W = ax->hi - ax->lo;
	size_t pstride = ((size_t)ax->n16 * sizeof(int16_t) + 63) / 64 * 32; /* int16 per plane */
	size_t rowb = pstride * sizeof(int16_t) * c;                         /* bytes per ring row */
	size_t planeb = ((size_t)W + 16 + 63) & ~(size_t)63;                 /* a split source plane */
	if ((rc = fv_aug_buf_reserve(tmpb, rowb * R + (c == 3 ? 3 * planeb : 0))))
		return rc;
	uint8_t *ring = tmpb->p, *pl[3] = { NULL, NULL, NULL };
	if (c == 3)
		for (int ch = 0; ch < 3; ch++) {
			pl[ch] = ring + rowb * R + planeb * ch;
			memset(pl[ch] + W, 0, planeb - W); /* read past the last tap, never used */
		}
	int next = ay->start[0];
	for (int y = 0; y < oh; y++) {
		int s0 = ay->start[y], cn = ay->cnt[y];
		if (s0 < next - R) /* rows only move down: a plan never does this */
			return fv_err_set(FV_E_INTERNAL, "resample: row %d after row %d", s0, next);
		for (; next < s0 + cn; next++) {
			const uint8_t *src = row(ctx, next);
			if (!src)
				return FV_E_DECODE; /* the source said why */
			hrow((int16_t *)(ring + rowb * (size_t)(next % R)), src, W, c, pl, pstride, ax, isa);
		}
		const int16_t *rows[FX_MAXK];
		for (int j = 0; j < cn; j++)
			rows[j] = (const int16_t *)(ring + rowb * (size_t)((s0 + j) % R));
		vrow(em, (size_t)y * ow, c, ow, rows, pstride, ay->qw + (size_t)y * ay->kq, cn, isa >= 2);
	}
	return 0;
}
