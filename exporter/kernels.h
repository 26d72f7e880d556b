/* exporter/kernels.h — the INT8 GEMM at the heart of the runtime, its weight
 * packing and requantization, plus a plain C reference the tests hold it to.
 *
 * C[m][n] = sum_k A[m][k] * W[n][k], A uint8 (activations), W int8 (weights),
 * accumulated exactly in int32. Weights are restricted to [-63, 63] (7 bits):
 * with that, AVX2's _mm256_maddubs_epi16 (u8 x s8 pairs summed into int16,
 * saturating) can never saturate (255 * 63 * 2 = 32130 < 32767), so the AVX2
 * path, the AVX-512 VNNI path (vpdpbusd, no int16 step) and the reference give
 * bit-identical int32 sums on every machine.
 *
 * Packed weight layout (what .fovea files store, used in place from the mmap):
 * K is padded to K4 = round_up(K, 4) and N to N16 = round_up(N, 16);
 * element (n, k) lives at Bp[(k / 4) * N16 * 4 + n * 4 + k % 4]; padding is 0.
 * A rows must hold K4 readable bytes (the padding values do not matter since
 * the padded weights are 0). */
#ifndef FV_KERNELS_H
#define FV_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define FV_QW_MAX 63 /* |int8 weight| bound, see above */

static inline int fv_round_up(int x, int m) { return (x + m - 1) / m * m; }

/* What happens to each int32 sum (after adding bias[n]). */
enum fv_qepi_kind {
	FV_QEPI_I32, /* store acc + bias as int32 (tests) */
	FV_QEPI_U8,  /* requantize: clamp(round((acc + bias) * mult[n]) + zp, lo, hi) -> uint8 */
	FV_QEPI_F32, /* dequantize: (acc + bias) * mult[n] -> float (the logits) */
};

typedef struct fv_qepi {
	enum fv_qepi_kind kind;
	const int32_t *bias;  /* N entries (N16 readable), may be NULL = 0 */
	const float *mult;    /* N entries (N16 readable) for U8 / F32 */
	int32_t zp, lo, hi;   /* U8: output zero point and clamp range (fused ReLU/ReLU6) */
} fv_qepi;

/* Bytes of packed weights for N x K. */
size_t fv_qgemm_packed_size(int N, int K);
/* Pack W (N rows of K int8, row-major) into Bp (fv_qgemm_packed_size bytes). */
void fv_qgemm_pack(int N, int K, const int8_t *W, int8_t *Bp);

/* out[m * ldo + n] for m < M, n < N, element type per epi->kind. A has rows
 * of lda bytes of which the first K4 are read. Uses the fastest kernel the
 * build has unless fv_qgemm_force_generic(1). */
void fv_qgemm(int M, int N, int K, const uint8_t *A, int lda, const int8_t *Bp,
	      const fv_qepi *epi, void *out, int ldo);

/* The plain C reference: same contract, W unpacked (N x K row-major). */
void fv_qgemm_ref(int M, int N, int K, const uint8_t *A, int lda, const int8_t *W,
		  const fv_qepi *epi, void *out, int ldo);

/* The requantization of one sum, as every path does it: round half to even
 * of (acc * mult) in float, plus zp, clamped to [lo, hi]. */
int32_t fv_requant(int32_t acc, float mult, int32_t zp, int32_t lo, int32_t hi);

/* Residual add of two uint8 tensors into a third (n elements):
 * clamp(round(((a - za) * sa + (b - zb) * sb) / so) + zo, lo, hi), vectorized,
 * the result identical to the scalar formula. */
void fv_qadd(size_t n, const uint8_t *a, float sa, int32_t za, const uint8_t *b, float sb, int32_t zb,
	     float so, int32_t zo, int32_t lo, int32_t hi, uint8_t *out);

/* Name of the kernel fv_qgemm uses ("avx512-vnni", "avx2-maddubs", "generic"). */
const char *fv_qgemm_kernel(void);
/* 1: use the AVX2 path even where VNNI exists (benchmarks); 2: the generic C
 * path; 0: the default. Process-wide; also set by FV_INT8_KERNEL=avx2|generic. */
void fv_qgemm_force(int mode);

#endif
