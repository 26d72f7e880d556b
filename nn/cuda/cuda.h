/* nn/cuda/cuda.h — shared internals of the CUDA backend: the context, the
 * plan, layout tags, error helpers and the launchers of our own kernels
 * (nn/cuda/kern.cu). Included by the .cu files only; not a public header.
 *
 * Layouts and precision. fp32 mode ("cuda"): every tensor is FV_FMT_PLAIN,
 * NCHW float, and cuDNN runs with FMA math (no TF32), so results match the
 * CPU backend to ~1e-5. bf16 mode ("cuda:bf16"): convolution outputs and
 * everything downstream of them are CU_FMT_NHWC_BF16 (channels-last
 * bfloat16, what cuDNN's tensor-core kernels want); the net input and the
 * flatten/linear features stay plain fp32; parameters, gradients and the
 * optimizer state are fp32 master copies and each convolution converts its
 * weights to bf16 KRSC per call (a small pass next to the convolution). */
#ifndef FV_CUDA_INT_H
#define FV_CUDA_INT_H

#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cudnn.h>
#include <stddef.h>
#include <stdint.h>

#include "nn/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Layout tags besides FV_FMT_PLAIN (NCHW fp32). */
enum { CU_FMT_NHWC_BF16 = 1 };

/* Convolution algorithms found once per shape (cudnnFind*), kept per context. */
typedef struct cu_algo {
	char key[160];
	int fwd, bwd_data, bwd_filter;
	size_t ws;
} cu_algo;

struct fv_backend_ctx {
	int dev;
	int bf16;
	cudaStream_t strm;
	cudnnHandle_t dnn;
	cublasHandle_t blas;
	void *ws;               /* shared cuDNN workspace (ops run one at a time) */
	size_t ws_bytes, ws_limit;
	void *stage;            /* fp32 staging for import/export of non-plain tensors */
	size_t stage_bytes;
	double *part;           /* reduction partials (host-pinned copy in hpart) */
	double *hpart;
	size_t part_n;
	cu_algo *algos;
	int nalgo, calgo;
};

struct fv_plan {
	fv_op_desc d;
	fv_backend_ctx *ctx;
	int cfmt;                               /* the layout the op computes in */
	cudnnTensorDescriptor_t xd, yd, vd;     /* x, y (in cfmt), per-channel vector */
	cudnnFilterDescriptor_t wd;
	cudnnConvolutionDescriptor_t cd;
	cudnnPoolingDescriptor_t pd;
	int algo_f, algo_bd, algo_bf;
	void *xc, *dxc;                         /* x converted to cfmt, its gradient */
	void *wc, *dwc;                         /* bf16 KRSC weights / weight gradient */
	float *mean, *invvar;                   /* batch norm: saved batch statistics */
	int bn_ex;                              /* batch norm: the *Ex persistent path */
	cudnnActivationDescriptor_t ad;         /* its fused ReLU (NULL: none) */
	void *reserve;                          /* its reserve space */
	size_t reserve_bytes;
	uint8_t *mask;                          /* dropout keep mask */
	const void *last_x, *last_y;            /* pooling: the last forward's tensors */
	/* fused SGD */
	void *chunks;                           /* device chunk table */
	size_t nchunk;
};

/* Elements and bytes of a tensor in its layout. */
size_t fv_cu_count(const fv_tensor *t);
size_t fv_cu_esize(int fmt);

/* Error helpers: 0 or an FV_E* code with detail naming what failed. */
int fv_cu_check(cudaError_t e, const char *what);
int fv_cu_dnn(cudnnStatus_t s, const char *what);
int fv_cu_blas(cublasStatus_t s, const char *what);
int fv_cu_alloc(void **p, size_t bytes);
/* Grow the shared workspace / staging buffer (at plan time only). */
int fv_cu_ws(fv_backend_ctx *ctx, size_t bytes);
int fv_cu_stage(fv_backend_ctx *ctx, size_t bytes);
/* A cuDNN 4-d descriptor of n x c x h x w in fmt's layout and type. */
int fv_cu_tensor_desc(cudnnTensorDescriptor_t *d, int n, int c, int h, int w, int fmt);

/* ---- our kernels (kern.cu); all asynchronous on ctx->strm ---- */
/* x (n,c,h,w in fx) -> y (same logical shape in fy); converts dtype. */
int fv_cu_reorder(fv_backend_ctx *ctx, void *y, int fy, const void *x, int fx, int n, int c,
		  int h, int w);
/* fp32 KCRS (c = C/groups) -> bf16 KRSC and back (the back direction writes fp32). */
int fv_cu_w_to_bf16(fv_backend_ctx *ctx, void *dst, const float *src, int k, int c, int r);
int fv_cu_w_from_bf16(fv_backend_ctx *ctx, float *dst, const void *src, int k, int c, int r);
/* y = a + b (relu when relu), y += x, dy = y > 0 ? dy : 0; count elements of fmt */
int fv_cu_add(fv_backend_ctx *ctx, void *y, const void *a, const void *b, size_t count,
	      int fmt, int relu);
int fv_cu_relu_mask(fv_backend_ctx *ctx, void *dy, const void *y, size_t count, int fmt);
/* Activations (enum fv_act) forward and backward. */
int fv_cu_act(fv_backend_ctx *ctx, void *y, const void *x, size_t count, int fmt, int act);
int fv_cu_act_bwd(fv_backend_ctx *ctx, void *dx, const void *dy, const void *x,
		  const void *y, size_t count, int fmt, int act);
/* Batch norm with the ReLU folded in: mask dy where relu(bn(x)) is 0. */
int fv_cu_bn_relu_mask(fv_backend_ctx *ctx, void *dy, const void *x, const float *gamma,
		       const float *beta, const float *mean, const float *invstd, int n, int c,
		       int hw, int fmt);
/* SE scale: y = x * s[n, c]; backward dx = dy * s, ds[n, c] = sum dy * x. */
int fv_cu_scale(fv_backend_ctx *ctx, void *y, const void *x, int fx, const void *s, int fs,
		int n, int c, int hw);
int fv_cu_scale_bwd(fv_backend_ctx *ctx, void *dx, void *ds, const void *dy, const void *x,
		    int fx, const void *s, int fs, int n, int c, int hw);
/* Dropout with the CPU backend's counter hash (same mask for the same
 * element index and seed). */
int fv_cu_dropout(fv_backend_ctx *ctx, void *y, uint8_t *mask, const void *x, size_t count,
		  int fmt, float p, uint64_t seed, int train);
int fv_cu_dropout_bwd(fv_backend_ctx *ctx, void *dx, const void *dy, const uint8_t *mask,
		      size_t count, int fmt, float p);
/* Per-channel bias add and gradient (conv and linear; linear is n x k plain). */
int fv_cu_bias(fv_backend_ctx *ctx, void *y, const float *b, int n, int c, int hw, int fmt);
int fv_cu_bias_grad(fv_backend_ctx *ctx, float *db, const void *dy, int n, int c, int hw,
		    int fmt);
int fv_cu_fill(fv_backend_ctx *ctx, float *p, float v, size_t count);

#ifdef __cplusplus
}
#endif

#endif
