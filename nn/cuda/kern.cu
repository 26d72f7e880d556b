/* nn/cuda/kern.cu — our own kernels: layout/precision conversion, residual
 * add, ReLU masks, activations, SE scale, dropout, bias. Each is one memory
 * pass, where a library call would add launch overhead and nothing else.
 * Elements are fp32 in FV_FMT_PLAIN (NCHW) tensors and bf16 in
 * CU_FMT_NHWC_BF16 ones; arithmetic is fp32 throughout. */
#include <cuda_bf16.h>

#include "nn/cuda/cuda.h"
extern "C" {
#include "nn/graph.h"
}

typedef __nv_bfloat16 bf16;

static __device__ __forceinline__ float ld(const float *p, size_t i) { return p[i]; }
static __device__ __forceinline__ float ld(const bf16 *p, size_t i) { return __bfloat162float(p[i]); }
static __device__ __forceinline__ void st(float *p, size_t i, float v) { p[i] = v; }
static __device__ __forceinline__ void st(bf16 *p, size_t i, float v) { p[i] = __float2bfloat16_rn(v); }

static unsigned blocks(size_t n)
{
	size_t b = (n + 255) / 256;
	return (unsigned)(b < 1 ? 1 : b > 8192 ? 8192 : b);
}

#define GRID_LOOP(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); \
			     i += (size_t)gridDim.x * blockDim.x)

static int launched(const char *what)
{
	return fv_cu_check(cudaGetLastError(), what);
}

/* Channel of element i of an n x c x hw tensor in the given layout. */
static __device__ __forceinline__ int chan(size_t i, int c, int hw, int nhwc)
{
	return nhwc ? (int)(i % c) : (int)((i / hw) % c);
}

/* ---- reorder / convert ----------------------------------------------------- */

template <typename TI, typename TO>
__global__ void k_reorder(TO *y, int ny, const TI *x, int nx, int n, int c, int h, int w)
{
	size_t total = (size_t)n * c * h * w;
	GRID_LOOP(o, total) {
		int in, ic, ih, iw;
		if (ny) {
			ic = (int)(o % c); size_t r = o / c;
			iw = (int)(r % w); r /= w; ih = (int)(r % h); in = (int)(r / h);
		} else {
			iw = (int)(o % w); size_t r = o / w;
			ih = (int)(r % h); r /= h; ic = (int)(r % c); in = (int)(r / c);
		}
		size_t s = nx ? (((size_t)in * h + ih) * w + iw) * c + ic
			      : (((size_t)in * c + ic) * h + ih) * w + iw;
		st(y, o, ld(x, s));
	}
}

extern "C" int fv_cu_reorder(fv_backend_ctx *ctx, void *y, int fy, const void *x, int fx, int n,
			     int c, int h, int w)
{
	size_t total = (size_t)n * c * h * w;
	unsigned g = blocks(total);
	int ny = fy == CU_FMT_NHWC_BF16, nx = fx == CU_FMT_NHWC_BF16;
	if (fx == fy)
		return fv_cu_check(cudaMemcpyAsync(y, x, total * fv_cu_esize(fx),
						   cudaMemcpyDeviceToDevice, ctx->strm), "copy");
	if (nx && !ny)
		k_reorder<bf16, float><<<g, 256, 0, ctx->strm>>>((float *)y, 0, (const bf16 *)x, 1,
								   n, c, h, w);
	else
		k_reorder<float, bf16><<<g, 256, 0, ctx->strm>>>((bf16 *)y, 1, (const float *)x, 0,
								   n, c, h, w);
	return launched("reorder");
}

__global__ void k_w_to_bf16(bf16 *dst, const float *src, int k, int c, int rs)
{
	size_t total = (size_t)k * c * rs;
	GRID_LOOP(i, total) { /* i indexes src (K C RS) */
		size_t s = i % rs, r = i / rs;
		size_t ci = r % c, ki = r / c;
		dst[(ki * rs + s) * c + ci] = __float2bfloat16_rn(src[i]);
	}
}

__global__ void k_w_from_bf16(float *dst, const bf16 *src, int k, int c, int rs)
{
	size_t total = (size_t)k * c * rs;
	GRID_LOOP(i, total) {
		size_t s = i % rs, r = i / rs;
		size_t ci = r % c, ki = r / c;
		dst[i] = __bfloat162float(src[(ki * rs + s) * c + ci]);
	}
}

extern "C" int fv_cu_w_to_bf16(fv_backend_ctx *ctx, void *dst, const float *src, int k, int c,
			       int r)
{
	k_w_to_bf16<<<blocks((size_t)k * c * r * r), 256, 0, ctx->strm>>>((bf16 *)dst, src, k, c,
									    r * r);
	return launched("weights to bf16");
}

extern "C" int fv_cu_w_from_bf16(fv_backend_ctx *ctx, float *dst, const void *src, int k, int c,
				 int r)
{
	k_w_from_bf16<<<blocks((size_t)k * c * r * r), 256, 0, ctx->strm>>>(dst, (const bf16 *)src,
									      k, c, r * r);
	return launched("weights from bf16");
}

/* ---- add, masks, activations ----------------------------------------------- */

template <typename T>
__global__ void k_add(T *y, const T *a, const T *b, size_t n, int relu)
{
	GRID_LOOP(i, n) {
		float v = ld(a, i) + ld(b, i);
		st(y, i, relu && v < 0 ? 0.0f : v);
	}
}

extern "C" int fv_cu_add(fv_backend_ctx *ctx, void *y, const void *a, const void *b, size_t count,
			 int fmt, int relu)
{
	if (fmt == CU_FMT_NHWC_BF16)
		k_add<bf16><<<blocks(count), 256, 0, ctx->strm>>>((bf16 *)y, (const bf16 *)a,
								   (const bf16 *)b, count, relu);
	else
		k_add<float><<<blocks(count), 256, 0, ctx->strm>>>((float *)y, (const float *)a,
								    (const float *)b, count, relu);
	return launched("add");
}

template <typename T>
__global__ void k_relu_mask(T *dy, const T *y, size_t n)
{
	GRID_LOOP(i, n)
		if (!(ld(y, i) > 0))
			st(dy, i, 0.0f);
}

extern "C" int fv_cu_relu_mask(fv_backend_ctx *ctx, void *dy, const void *y, size_t count, int fmt)
{
	if (fmt == CU_FMT_NHWC_BF16)
		k_relu_mask<bf16><<<blocks(count), 256, 0, ctx->strm>>>((bf16 *)dy, (const bf16 *)y,
									 count);
	else
		k_relu_mask<float><<<blocks(count), 256, 0, ctx->strm>>>((float *)dy,
									  (const float *)y, count);
	return launched("relu mask");
}

static __device__ __forceinline__ float sigm(float x) { return 1.0f / (1.0f + __expf(-x)); }

template <typename T>
__global__ void k_act(T *y, const T *x, size_t n, int act)
{
	GRID_LOOP(i, n) {
		float v = ld(x, i), r;
		switch (act) {
		case FV_ACT_RELU6: r = fminf(fmaxf(v, 0.0f), 6.0f); break;
		case FV_ACT_SILU: r = v * sigm(v); break;
		case FV_ACT_SIGMOID: r = sigm(v); break;
		default: r = fmaxf(v, 0.0f); break;
		}
		st(y, i, r);
	}
}

template <typename T>
__global__ void k_act_bwd(T *dx, const T *dy, const T *x, size_t n, int act)
{
	GRID_LOOP(i, n) {
		float v = ld(x, i), g = ld(dy, i), d, s;
		switch (act) {
		case FV_ACT_RELU6: d = v > 0 && v < 6 ? 1.0f : 0.0f; break;
		case FV_ACT_SILU: s = sigm(v); d = s * (1 + v * (1 - s)); break;
		case FV_ACT_SIGMOID: s = sigm(v); d = s * (1 - s); break;
		default: d = v > 0 ? 1.0f : 0.0f; break;
		}
		st(dx, i, g * d);
	}
}

extern "C" int fv_cu_act(fv_backend_ctx *ctx, void *y, const void *x, size_t count, int fmt,
			 int act)
{
	if (fmt == CU_FMT_NHWC_BF16)
		k_act<bf16><<<blocks(count), 256, 0, ctx->strm>>>((bf16 *)y, (const bf16 *)x, count,
								   act);
	else
		k_act<float><<<blocks(count), 256, 0, ctx->strm>>>((float *)y, (const float *)x,
								    count, act);
	return launched("activation");
}

extern "C" int fv_cu_act_bwd(fv_backend_ctx *ctx, void *dx, const void *dy, const void *x,
			     const void *y, size_t count, int fmt, int act)
{
	(void)y; /* every derivative is computed from x, as the CPU backend does */
	if (fmt == CU_FMT_NHWC_BF16)
		k_act_bwd<bf16><<<blocks(count), 256, 0, ctx->strm>>>((bf16 *)dx, (const bf16 *)dy,
								       (const bf16 *)x, count, act);
	else
		k_act_bwd<float><<<blocks(count), 256, 0, ctx->strm>>>((float *)dx,
			(const float *)dy, (const float *)x, count, act);
	return launched("activation backward");
}

template <typename T>
__global__ void k_bn_relu_mask(T *dy, const T *x, const float *gamma, const float *beta,
			       const float *mean, const float *invstd, size_t n, int c, int hw,
			       int nhwc)
{
	GRID_LOOP(i, n) {
		int ch = chan(i, c, hw, nhwc);
		float v = (ld(x, i) - mean[ch]) * invstd[ch] * gamma[ch] + beta[ch];
		if (!(v > 0))
			st(dy, i, 0.0f);
	}
}

extern "C" int fv_cu_bn_relu_mask(fv_backend_ctx *ctx, void *dy, const void *x, const float *gamma,
				  const float *beta, const float *mean, const float *invstd, int n,
				  int c, int hw, int fmt)
{
	size_t count = (size_t)n * c * hw;
	int nhwc = fmt == CU_FMT_NHWC_BF16;
	if (nhwc)
		k_bn_relu_mask<bf16><<<blocks(count), 256, 0, ctx->strm>>>((bf16 *)dy,
			(const bf16 *)x, gamma, beta, mean, invstd, count, c, hw, 1);
	else
		k_bn_relu_mask<float><<<blocks(count), 256, 0, ctx->strm>>>((float *)dy,
			(const float *)x, gamma, beta, mean, invstd, count, c, hw, 0);
	return launched("bn relu mask");
}

/* ---- SE scale ------------------------------------------------------------------ */

template <typename TX, typename TS>
__global__ void k_scale(TX *y, const TX *x, const TS *s, size_t n, int c, int hw, int nhwc)
{
	GRID_LOOP(i, n) {
		size_t img = i / ((size_t)c * hw);
		int ch = chan(i, c, hw, nhwc);
		st(y, i, ld(x, i) * ld(s, img * c + ch));
	}
}

/* One block per (image, channel): dx = dy * s and ds = sum(dy * x). */
template <typename TX, typename TS>
__global__ void k_scale_bwd(TX *dx, TS *ds, const TX *dy, const TX *x, const TS *s, int c, int hw,
			    int nhwc)
{
	__shared__ float red[256];
	int img = blockIdx.x / c, ch = blockIdx.x % c;
	float sv = ld(s, (size_t)img * c + ch), acc = 0;
	for (int j = threadIdx.x; j < hw; j += blockDim.x) {
		size_t i = nhwc ? ((size_t)img * hw + j) * c + ch : ((size_t)img * c + ch) * hw + j;
		float g = ld(dy, i);
		if (dx)
			st(dx, i, g * sv);
		acc += g * ld(x, i);
	}
	red[threadIdx.x] = acc;
	__syncthreads();
	for (int k = blockDim.x / 2; k > 0; k >>= 1) {
		if (threadIdx.x < k)
			red[threadIdx.x] += red[threadIdx.x + k];
		__syncthreads();
	}
	if (threadIdx.x == 0 && ds)
		st(ds, (size_t)img * c + ch, red[0]);
}

extern "C" int fv_cu_scale(fv_backend_ctx *ctx, void *y, const void *x, int fx, const void *s,
			   int fs, int n, int c, int hw)
{
	size_t count = (size_t)n * c * hw;
	unsigned g = blocks(count);
	int nhwc = fx == CU_FMT_NHWC_BF16, sb = fs == CU_FMT_NHWC_BF16;
	if (nhwc && sb)
		k_scale<bf16, bf16><<<g, 256, 0, ctx->strm>>>((bf16 *)y, (const bf16 *)x,
							       (const bf16 *)s, count, c, hw, 1);
	else if (nhwc)
		k_scale<bf16, float><<<g, 256, 0, ctx->strm>>>((bf16 *)y, (const bf16 *)x,
								(const float *)s, count, c, hw, 1);
	else if (sb)
		k_scale<float, bf16><<<g, 256, 0, ctx->strm>>>((float *)y, (const float *)x,
								(const bf16 *)s, count, c, hw, 0);
	else
		k_scale<float, float><<<g, 256, 0, ctx->strm>>>((float *)y, (const float *)x,
								 (const float *)s, count, c, hw, 0);
	return launched("scale");
}

extern "C" int fv_cu_scale_bwd(fv_backend_ctx *ctx, void *dx, void *ds, const void *dy,
			       const void *x, int fx, const void *s, int fs, int n, int c, int hw)
{
	unsigned g = (unsigned)n * c;
	int nhwc = fx == CU_FMT_NHWC_BF16, sb = fs == CU_FMT_NHWC_BF16;
	if (nhwc && sb)
		k_scale_bwd<bf16, bf16><<<g, 256, 0, ctx->strm>>>((bf16 *)dx, (bf16 *)ds,
			(const bf16 *)dy, (const bf16 *)x, (const bf16 *)s, c, hw, 1);
	else if (nhwc)
		k_scale_bwd<bf16, float><<<g, 256, 0, ctx->strm>>>((bf16 *)dx, (float *)ds,
			(const bf16 *)dy, (const bf16 *)x, (const float *)s, c, hw, 1);
	else if (sb)
		k_scale_bwd<float, bf16><<<g, 256, 0, ctx->strm>>>((float *)dx, (bf16 *)ds,
			(const float *)dy, (const float *)x, (const bf16 *)s, c, hw, 0);
	else
		k_scale_bwd<float, float><<<g, 256, 0, ctx->strm>>>((float *)dx, (float *)ds,
			(const float *)dy, (const float *)x, (const float *)s, c, hw, 0);
	return launched("scale backward");
}

/* ---- dropout ---------------------------------------------------------------- */

/* nn/cpu/elt.c's counter hash: the mask depends on (seed, element) only. */
static __device__ __forceinline__ uint32_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (uint32_t)((z ^ (z >> 31)) >> 32);
}

template <typename T>
__global__ void k_dropout(T *y, uint8_t *m, const T *x, size_t n, uint64_t s, uint32_t thr,
			  float inv, int train)
{
	GRID_LOOP(i, n) {
		uint8_t keep = !train || mix(s + (uint64_t)i) >= thr;
		m[i] = keep;
		st(y, i, keep ? ld(x, i) * (train ? inv : 1.0f) : 0.0f);
	}
}

template <typename T>
__global__ void k_dropout_bwd(T *dx, const T *dy, const uint8_t *m, size_t n, float inv)
{
	GRID_LOOP(i, n)
		st(dx, i, m[i] ? ld(dy, i) * inv : 0.0f);
}

extern "C" int fv_cu_dropout(fv_backend_ctx *ctx, void *y, uint8_t *mask, const void *x,
			     size_t count, int fmt, float p, uint64_t seed, int train)
{
	train = train && p > 0;
	uint32_t thr = (uint32_t)((double)p * 4294967296.0);
	uint64_t s = seed * 0x100000001b3ull;
	float inv = 1.0f / (1.0f - p);
	if (fmt == CU_FMT_NHWC_BF16)
		k_dropout<bf16><<<blocks(count), 256, 0, ctx->strm>>>((bf16 *)y, mask,
			(const bf16 *)x, count, s, thr, inv, train);
	else
		k_dropout<float><<<blocks(count), 256, 0, ctx->strm>>>((float *)y, mask,
			(const float *)x, count, s, thr, inv, train);
	return launched("dropout");
}

extern "C" int fv_cu_dropout_bwd(fv_backend_ctx *ctx, void *dx, const void *dy,
				 const uint8_t *mask, size_t count, int fmt, float p)
{
	float inv = 1.0f / (1.0f - p);
	if (fmt == CU_FMT_NHWC_BF16)
		k_dropout_bwd<bf16><<<blocks(count), 256, 0, ctx->strm>>>((bf16 *)dx,
			(const bf16 *)dy, mask, count, inv);
	else
		k_dropout_bwd<float><<<blocks(count), 256, 0, ctx->strm>>>((float *)dx,
			(const float *)dy, mask, count, inv);
	return launched("dropout backward");
}

/* ---- bias ------------------------------------------------------------------- */

template <typename T>
__global__ void k_bias(T *y, const float *b, size_t n, int c, int hw, int nhwc)
{
	GRID_LOOP(i, n)
		st(y, i, ld(y, i) + b[chan(i, c, hw, nhwc)]);
}

/* One block per channel: db[c] = sum over images and positions of dy. */
template <typename T>
__global__ void k_bias_grad(float *db, const T *dy, int n, int c, int hw, int nhwc)
{
	__shared__ float red[256];
	int ch = blockIdx.x;
	size_t m = (size_t)n * hw;
	float acc = 0;
	for (size_t j = threadIdx.x; j < m; j += blockDim.x) {
		size_t img = j / hw, pos = j % hw;
		size_t i = nhwc ? j * c + ch : (img * c + ch) * hw + pos;
		acc += ld(dy, i);
	}
	red[threadIdx.x] = acc;
	__syncthreads();
	for (int k = blockDim.x / 2; k > 0; k >>= 1) {
		if (threadIdx.x < k)
			red[threadIdx.x] += red[threadIdx.x + k];
		__syncthreads();
	}
	if (threadIdx.x == 0)
		db[ch] = red[0];
}

extern "C" int fv_cu_bias(fv_backend_ctx *ctx, void *y, const float *b, int n, int c, int hw,
			  int fmt)
{
	size_t count = (size_t)n * c * hw;
	if (fmt == CU_FMT_NHWC_BF16)
		k_bias<bf16><<<blocks(count), 256, 0, ctx->strm>>>((bf16 *)y, b, count, c, hw, 1);
	else
		k_bias<float><<<blocks(count), 256, 0, ctx->strm>>>((float *)y, b, count, c, hw, 0);
	return launched("bias");
}

extern "C" int fv_cu_bias_grad(fv_backend_ctx *ctx, float *db, const void *dy, int n, int c,
			       int hw, int fmt)
{
	if (fmt == CU_FMT_NHWC_BF16)
		k_bias_grad<bf16><<<c, 256, 0, ctx->strm>>>(db, (const bf16 *)dy, n, c, hw, 1);
	else
		k_bias_grad<float><<<c, 256, 0, ctx->strm>>>(db, (const float *)dy, n, c, hw, 0);
	return launched("bias gradient");
}

__global__ void k_fill(float *p, float v, size_t n)
{
	GRID_LOOP(i, n)
		p[i] = v;
}

extern "C" int fv_cu_fill(fv_backend_ctx *ctx, float *p, float v, size_t count)
{
	k_fill<<<blocks(count), 256, 0, ctx->strm>>>(p, v, count);
	return launched("fill");
}
