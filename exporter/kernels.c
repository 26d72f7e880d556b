/* exporter/kernels.c — INT8 GEMM (uint8 activations x int8 weights, int32
 * accumulation) with requantization fused into the store. Three paths with
 * identical results (see kernels.h for why): AVX-512 VNNI (vpdpbusd), AVX2
 * (_mm256_maddubs_epi16 + _mm256_madd_epi16) and generic C. The micro-kernel
 * broadcasts 4 bytes of an activation row and multiplies them against 16
 * output channels x 4 k of packed weights, so no horizontal sums are needed
 * and K only pads to a multiple of 4. */
#include "exporter/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define FV_VNNI 1 /* compiled for its target below, chosen at run time */
#define VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#endif

static int force_mode = -1; /* -1: not read from the environment yet */

/* The build targets x86-64-v3 (AVX2) by default; the VNNI kernel is
 * compiled for AVX-512 VNNI on its own and used where the CPU has it. */
static int have_vnni(void)
{
#if defined(FV_VNNI)
	static int have = -1;
	if (have < 0) {
		__builtin_cpu_init();
		have = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
		       __builtin_cpu_supports("avx512vl");
	}
	return have;
#else
	return 0;
#endif
}

void fv_qgemm_force(int mode) { force_mode = mode; }

static int mode_get(void)
{
	if (force_mode < 0) {
		const char *e = getenv("FV_INT8_KERNEL");
		force_mode = !e ? 0 : !strcmp(e, "avx2") ? 1 : !strcmp(e, "generic") ? 2 : 0;
	}
	return force_mode;
}

const char *fv_qgemm_kernel(void)
{
	int m = mode_get();
	if (m == 2)
		return "generic";
	if (m == 0 && have_vnni())
		return "avx512-vnni";
#if defined(__AVX2__)
	return "avx2-maddubs";
#endif
	return "generic";
}

size_t fv_qgemm_packed_size(int N, int K)
{
	return (size_t)fv_round_up(K, 4) * (size_t)fv_round_up(N, 16);
}

void fv_qgemm_pack(int N, int K, const int8_t *W, int8_t *Bp)
{
	int K4 = fv_round_up(K, 4), N16 = fv_round_up(N, 16);
	memset(Bp, 0, (size_t)K4 * N16);
	for (int n = 0; n < N; n++)
		for (int k = 0; k < K; k++)
			Bp[(size_t)(k / 4) * N16 * 4 + n * 4 + k % 4] = W[(size_t)n * K + k];
}

int32_t fv_requant(int32_t acc, float mult, int32_t zp, int32_t lo, int32_t hi)
{
	float f = nearbyintf((float)acc * mult);
	/* Clamp in float first: a huge product must not overflow the int conversion. */
	if (f > 1e9f)
		f = 1e9f;
	if (f < -1e9f)
		f = -1e9f;
	int32_t v = (int32_t)f + zp;
	return v < lo ? lo : v > hi ? hi : v;
}

/* Store one row's sums acc[0..nv) (channels n0..) through the epilogue. */
static void store_row(const int32_t *acc, int n0, int nv, const fv_qepi *e, void *out,
		      size_t off)
{
	switch (e->kind) {
	case FV_QEPI_I32: {
		int32_t *o = (int32_t *)out + off;
		for (int j = 0; j < nv; j++)
			o[j] = acc[j] + (e->bias ? e->bias[n0 + j] : 0);
		break;
	}
	case FV_QEPI_U8: {
		uint8_t *o = (uint8_t *)out + off;
		for (int j = 0; j < nv; j++)
			o[j] = (uint8_t)fv_requant(acc[j] + (e->bias ? e->bias[n0 + j] : 0),
						   e->mult[n0 + j], e->zp, e->lo, e->hi);
		break;
	}
	case FV_QEPI_F32: {
		float *o = (float *)out + off;
		for (int j = 0; j < nv; j++)
			o[j] = (float)(acc[j] + (e->bias ? e->bias[n0 + j] : 0)) * e->mult[n0 + j];
		break;
	}
	}
}

void fv_qgemm_ref(int M, int N, int K, const uint8_t *A, int lda, const int8_t *W,
		  const fv_qepi *epi, void *out, int ldo)
{
	int32_t *row = malloc(sizeof *row * (size_t)(N > 0 ? N : 1));
	if (!row)
		abort(); /* test-only reference */
	for (int m = 0; m < M; m++) {
		for (int n = 0; n < N; n++) {
			int32_t s = 0;
			for (int k = 0; k < K; k++)
				s += (int32_t)A[(size_t)m * lda + k] * W[(size_t)n * K + k];
			row[n] = s;
		}
		store_row(row, 0, N, epi, out, (size_t)m * ldo);
	}
	free(row);
}

/* ---------------------------------------------------------------- generic */

static void gemm_generic(int M, int N, int K, const uint8_t *A, int lda, const int8_t *Bp,
			 const fv_qepi *e, void *out, int ldo)
{
	int K4 = fv_round_up(K, 4), N16 = fv_round_up(N, 16);
	int32_t acc[16];
	for (int m = 0; m < M; m++) {
		const uint8_t *a = A + (size_t)m * lda;
		for (int n0 = 0; n0 < N; n0 += 16) {
			memset(acc, 0, sizeof acc);
			for (int kb = 0; kb < K4 / 4; kb++) {
				const int8_t *b = Bp + (size_t)kb * N16 * 4 + n0 * 4;
				for (int j = 0; j < 16; j++)
					for (int q = 0; q < 4; q++)
						acc[j] += (int32_t)a[kb * 4 + q] * b[j * 4 + q];
			}
			store_row(acc, n0, N - n0 < 16 ? N - n0 : 16, e, out, (size_t)m * ldo + n0);
		}
	}
}

/* ---------------------------------------------------------------- AVX2 */
#if defined(__AVX2__)

#define AVX2_MR 4

static inline __attribute__((always_inline)) void
tile_avx2(int mr, int K4, const uint8_t *A, int lda, const int8_t *B, int N16, int n0, int nv,
	  const fv_qepi *e, void *out, size_t off, int ldo)
{
	const __m256i ones = _mm256_set1_epi16(1);
	__m256i acc[AVX2_MR][2];
	_Pragma("GCC unroll 8")
	for (int r = 0; r < mr; r++)
		acc[r][0] = acc[r][1] = _mm256_setzero_si256();
	for (int kb = 0; kb < K4 / 4; kb++) {
		const int8_t *bp = B + (size_t)kb * N16 * 4 + n0 * 4;
		__m256i b0 = _mm256_loadu_si256((const __m256i *)bp);
		__m256i b1 = _mm256_loadu_si256((const __m256i *)(bp + 32));
		_Pragma("GCC unroll 8")
		for (int r = 0; r < mr; r++) {
			int32_t a4;
			memcpy(&a4, A + (size_t)r * lda + kb * 4, 4);
			__m256i av = _mm256_set1_epi32(a4);
			acc[r][0] = _mm256_add_epi32(acc[r][0],
						     _mm256_madd_epi16(_mm256_maddubs_epi16(av, b0), ones));
			acc[r][1] = _mm256_add_epi32(acc[r][1],
						     _mm256_madd_epi16(_mm256_maddubs_epi16(av, b1), ones));
		}
	}
	if (e->kind == FV_QEPI_U8 && nv == 16) {
		/* Vectorized requantization, the same arithmetic as fv_requant. */
		const __m256 big = _mm256_set1_ps(1e9f), nbig = _mm256_set1_ps(-1e9f);
		const __m256i zp = _mm256_set1_epi32(e->zp), lo = _mm256_set1_epi32(e->lo);
		const __m256i hi = _mm256_set1_epi32(e->hi);
		__m256i b0 = _mm256_setzero_si256(), b1 = b0;
		if (e->bias) {
			b0 = _mm256_loadu_si256((const __m256i *)(e->bias + n0));
			b1 = _mm256_loadu_si256((const __m256i *)(e->bias + n0 + 8));
		}
		__m256 m0 = _mm256_loadu_ps(e->mult + n0), m1 = _mm256_loadu_ps(e->mult + n0 + 8);
		for (int r = 0; r < mr; r++) {
			__m256 f0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(acc[r][0], b0)), m0);
			__m256 f1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(acc[r][1], b1)), m1);
			f0 = _mm256_min_ps(_mm256_max_ps(f0, nbig), big);
			f1 = _mm256_min_ps(_mm256_max_ps(f1, nbig), big);
			__m256i v0 = _mm256_add_epi32(_mm256_cvtps_epi32(f0), zp);
			__m256i v1 = _mm256_add_epi32(_mm256_cvtps_epi32(f1), zp);
			v0 = _mm256_min_epi32(_mm256_max_epi32(v0, lo), hi);
			v1 = _mm256_min_epi32(_mm256_max_epi32(v1, lo), hi);
			/* 16 int32 in 0..255 -> 16 bytes (packs work within 128-bit lanes). */
			__m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(v0, v1), 0xD8);
			__m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
			_mm_storeu_si128((__m128i *)((uint8_t *)out + off + (size_t)r * ldo), bytes);
		}
		return;
	}
	int32_t tmp[16];
	for (int r = 0; r < mr; r++) {
		_mm256_storeu_si256((__m256i *)tmp, acc[r][0]);
		_mm256_storeu_si256((__m256i *)(tmp + 8), acc[r][1]);
		store_row(tmp, n0, nv, e, out, off + (size_t)r * ldo);
	}
}

static void gemm_avx2(int M, int N, int K, const uint8_t *A, int lda, const int8_t *Bp,
		      const fv_qepi *e, void *out, int ldo)
{
	int K4 = fv_round_up(K, 4), N16 = fv_round_up(N, 16);
	for (int m = 0; m < M; m += AVX2_MR) {
		int mr = M - m < AVX2_MR ? M - m : AVX2_MR;
		for (int n0 = 0; n0 < N; n0 += 16) {
			int nv = N - n0 < 16 ? N - n0 : 16;
			const uint8_t *a = A + (size_t)m * lda;
			size_t off = (size_t)m * ldo + n0;
			switch (mr) {
			case 4: tile_avx2(4, K4, a, lda, Bp, N16, n0, nv, e, out, off, ldo); break;
			case 3: tile_avx2(3, K4, a, lda, Bp, N16, n0, nv, e, out, off, ldo); break;
			case 2: tile_avx2(2, K4, a, lda, Bp, N16, n0, nv, e, out, off, ldo); break;
			default: tile_avx2(1, K4, a, lda, Bp, N16, n0, nv, e, out, off, ldo); break;
			}
		}
	}
}
#endif

/* ---------------------------------------------------------------- AVX-512 VNNI */
#if defined(FV_VNNI)

#define VNNI_MR 8

static inline __attribute__((always_inline)) VNNI_TARGET void
tile_vnni(int mr, int K4, const uint8_t *A, int lda, const int8_t *B, int N16, int n0, int nv,
	  const fv_qepi *e, void *out, size_t off, int ldo)
{
	__m512i acc[VNNI_MR];
	_Pragma("GCC unroll 8")
	for (int r = 0; r < mr; r++)
		acc[r] = _mm512_setzero_si512();
	for (int kb = 0; kb < K4 / 4; kb++) {
		__m512i b = _mm512_loadu_si512((const void *)(B + (size_t)kb * N16 * 4 + n0 * 4));
		_Pragma("GCC unroll 8")
		for (int r = 0; r < mr; r++) {
			int32_t a4;
			memcpy(&a4, A + (size_t)r * lda + kb * 4, 4);
			acc[r] = _mm512_dpbusd_epi32(acc[r], _mm512_set1_epi32(a4), b);
		}
	}
	if (e->kind == FV_QEPI_U8 && nv == 16) {
		/* The common case, fully vectorized: bias, scale, round, clamp, narrow. */
		__m512i bias = e->bias ? _mm512_loadu_si512((const void *)(e->bias + n0))
				       : _mm512_setzero_si512();
		__m512 mult = _mm512_loadu_ps(e->mult + n0);
		__m512i zp = _mm512_set1_epi32(e->zp), lo = _mm512_set1_epi32(e->lo);
		__m512i hi = _mm512_set1_epi32(e->hi);
		for (int r = 0; r < mr; r++) {
			__m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc[r], bias)), mult);
			f = _mm512_min_ps(_mm512_max_ps(f, _mm512_set1_ps(-1e9f)), _mm512_set1_ps(1e9f));
			__m512i v = _mm512_add_epi32(_mm512_cvtps_epi32(f), zp);
			v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
			_mm_storeu_si128((__m128i *)((uint8_t *)out + off + (size_t)r * ldo),
					 _mm512_cvtepi32_epi8(v));
		}
		return;
	}
	int32_t tmp[16];
	for (int r = 0; r < mr; r++) {
		_mm512_storeu_si512((void *)tmp, acc[r]);
		store_row(tmp, n0, nv, e, out, off + (size_t)r * ldo);
	}
}

static VNNI_TARGET void gemm_vnni(int M, int N, int K, const uint8_t *A, int lda, const int8_t *Bp,
		      const fv_qepi *e, void *out, int ldo)
{
	int K4 = fv_round_up(K, 4), N16 = fv_round_up(N, 16);
	for (int m = 0; m < M; m += VNNI_MR) {
		int mr = M - m < VNNI_MR ? M - m : VNNI_MR;
		for (int n0 = 0; n0 < N; n0 += 16) {
			int nv = N - n0 < 16 ? N - n0 : 16;
			const uint8_t *a = A + (size_t)m * lda;
			size_t off = (size_t)m * ldo + n0;
			switch (mr) {
			case 8: tile_vnni(8, K4, a, lda, Bp, N16, n0, nv, e, out, off, ldo); break;
			case 7: tile_vnni(7, K4, a, lda, Bp, N16, n0, nv, e, out, off, ldo); break;
			case 6: tile_vnni(6, K4, a, lda, Bp, N16, n0, nv, e, out, off, ldo); break;
			case 5: tile_vnni(5, K4, a, lda, Bp, N16, n0, nv, e, out, off, ldo); break;
			case 4: tile_vnni(4, K4, a, lda, Bp, N16, n0, nv, e, out, off, ldo); break;
			case 3: tile_vnni(3, K4, a, lda, Bp, N16, n0, nv, e, out, off, ldo); break;
			case 2: tile_vnni(2, K4, a, lda, Bp, N16, n0, nv, e, out, off, ldo); break;
			default: tile_vnni(1, K4, a, lda, Bp, N16, n0, nv, e, out, off, ldo); break;
			}
		}
	}
}
#endif

void fv_qgemm(int M, int N, int K, const uint8_t *A, int lda, const int8_t *Bp,
	      const fv_qepi *epi, void *out, int ldo)
{
	int m = mode_get();
	if (m == 2) {
		gemm_generic(M, N, K, A, lda, Bp, epi, out, ldo);
		return;
	}
#if defined(FV_VNNI)
	if (m == 0 && have_vnni()) {
		gemm_vnni(M, N, K, A, lda, Bp, epi, out, ldo);
		return;
	}
#endif
#if defined(__AVX2__)
	gemm_avx2(M, N, K, A, lda, Bp, epi, out, ldo);
#else
	gemm_generic(M, N, K, A, lda, Bp, epi, out, ldo);
#endif
}

/* ---------------------------------------------------------------- elementwise */

void fv_qadd(size_t n, const uint8_t *a, float sa, int32_t za, const uint8_t *b, float sb, int32_t zb,
	     float so, int32_t zo, int32_t lo, int32_t hi, uint8_t *out)
{
	size_t t = 0;
#if defined(__AVX2__)
	const __m256 vsa = _mm256_set1_ps(sa), vsb = _mm256_set1_ps(sb), vso = _mm256_set1_ps(so);
	const __m256i vza = _mm256_set1_epi32(za), vzb = _mm256_set1_epi32(zb), vzo = _mm256_set1_epi32(zo);
	const __m256i vlo = _mm256_set1_epi32(lo), vhi = _mm256_set1_epi32(hi);
	for (; t + 8 <= n; t += 8) {
		__m256i ia = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(a + t)));
		__m256i ib = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + t)));
		/* Separate multiply and add (no FMA): the scalar tail must agree. */
		__m256 fa = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(ia, vza)), vsa);
		__m256 fb = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(ib, vzb)), vsb);
		__m256i v = _mm256_cvtps_epi32(_mm256_div_ps(_mm256_add_ps(fa, fb), vso));
		v = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(v, vzo), vlo), vhi);
		__m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
		_mm_storel_epi64((__m128i *)(out + t), _mm_packus_epi16(w, w));
	}
#endif
	for (; t < n; t++) {
		float fa = (float)(a[t] - za) * sa, fb = (float)(b[t] - zb) * sb;
		float f = nearbyintf((fa + fb) / so) + (float)zo;
		out[t] = (uint8_t)(f < lo ? lo : f > hi ? hi : f);
	}
}
