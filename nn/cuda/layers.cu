/* nn/cuda/layers.cu — batch norm and pooling (cuDNN), linear (cuBLAS), and
 * the elementwise ops (activation, residual add, SE scale, dropout, flatten)
 * on our kernels.
 *
 * batch norm   x, y: n x c x h x w; gamma, beta, running mean/var: c fp32
 * activation   x, y: same shape (relu, relu6, silu, sigmoid)
 * pooling      x: n x c x h x w -> y: n x c x oh x ow (r == 0: global average)
 * linear       x: n x c plain fp32, w: k x c, b: k -> y: n x k
 * add / scale / dropout / reorder: as nn/backend.h says
 *
 * Batch norm in bf16 channels-last training runs cuDNN's *Ex persistent
 * kernels (CUDNN_BATCHNORM_SPATIAL_PERSISTENT, the NHWC path PyTorch takes)
 * with a folded ReLU fused in (CUDNN_BATCHNORM_OPS_BN_ACTIVATION), and a
 * ResNet block's residual add too (fuse_add: _BN_ADD_ACTIVATION, whose
 * backward also gives the residual's gradient); the backward reads the
 * op's y. Elsewhere a fuse_add plan adds the residual with our kernel. FV_CUDA_BN_LEGACY=1 turns that off. Otherwise
 * (fp32, inference) a folded ReLU runs in place after cuDNN's batch norm and
 * its backward masks dy from x and the saved batch statistics, then runs
 * cuDNN's backward. */
#include <stdlib.h>

extern "C" {
#include "fv_error.h"
}
#include "nn/cuda/cuda.h"
#include "nn/cuda/ops.h"
extern "C" {
#include "nn/graph.h"
}

static const float one = 1.0f, zero = 0.0f;

static size_t count_x(const fv_plan *p)
{
	return (size_t)p->d.n * p->d.c * p->d.h * p->d.w;
}

/* ---- batch norm -------------------------------------------------------------- */

static const cudnnBatchNormMode_t BN_PERSIST = CUDNN_BATCHNORM_SPATIAL_PERSISTENT;

static cudnnBatchNormOps_t bn_ops(const fv_plan *p)
{
	return p->d.fuse_add ? CUDNN_BATCHNORM_OPS_BN_ADD_ACTIVATION
	       : p->ad ? CUDNN_BATCHNORM_OPS_BN_ACTIVATION : CUDNN_BATCHNORM_OPS_BN;
}

/* The persistent path's ReLU, workspace and reserve space. */
static int bn_ex_plan(fv_plan *p)
{
	fv_backend_ctx *ctx = p->ctx;
	size_t wf = 0, wb = 0;
	int rc = 0;
	cudnnTensorDescriptor_t zd = p->d.fuse_add ? p->xd : NULL;
	if (p->d.fuse_relu || p->d.fuse_add) {
		rc = fv_cu_dnn(cudnnCreateActivationDescriptor(&p->ad), "activation descriptor");
		if (!rc)
			rc = fv_cu_dnn(cudnnSetActivationDescriptor(p->ad, CUDNN_ACTIVATION_RELU,
				CUDNN_NOT_PROPAGATE_NAN, 0.0), "activation descriptor");
	}
	if (!rc)
		rc = fv_cu_dnn(cudnnGetBatchNormalizationForwardTrainingExWorkspaceSize(ctx->dnn,
			BN_PERSIST, bn_ops(p), p->xd, zd, p->xd, p->vd, p->ad, &wf),
			"bn workspace");
	if (!rc)
		rc = fv_cu_dnn(cudnnGetBatchNormalizationBackwardExWorkspaceSize(ctx->dnn,
			BN_PERSIST, bn_ops(p), p->xd, p->xd, p->xd, zd, p->xd, p->vd, p->ad, &wb),
			"bn backward workspace");
	if (!rc)
		rc = fv_cu_dnn(cudnnGetBatchNormalizationTrainingExReserveSpaceSize(ctx->dnn,
			BN_PERSIST, bn_ops(p), p->ad, p->xd, &p->reserve_bytes), "bn reserve space");
	if (!rc && p->reserve_bytes)
		rc = fv_cu_alloc(&p->reserve, p->reserve_bytes);
	if (!rc)
		rc = fv_cu_ws(ctx, wf > wb ? wf : wb);
	p->bn_ex = !rc;
	return rc;
}

extern "C" int fv_cu_bn_plan(fv_plan *p)
{
	const fv_op_desc *d = &p->d;
	int rc = fv_cu_tensor_desc(&p->xd, d->n, d->c, d->h, d->w, d->fmt_x);
	if (!rc)
		rc = fv_cu_dnn(cudnnCreateTensorDescriptor(&p->vd), "bn descriptor");
	if (!rc)
		rc = fv_cu_dnn(cudnnDeriveBNTensorDescriptor(p->vd, p->xd, CUDNN_BATCHNORM_SPATIAL),
			       "bn descriptor");
	if (!rc && d->eps < CUDNN_BN_MIN_EPSILON)
		rc = fv_err_set(FV_E_UNSUPPORTED, "cudnn batch norm: eps %g below %g", d->eps,
				CUDNN_BN_MIN_EPSILON);
	if (!rc && d->train) {
		rc = fv_cu_alloc((void **)&p->mean, d->c * sizeof(float));
		if (!rc)
			rc = fv_cu_alloc((void **)&p->invvar, d->c * sizeof(float));
		if (!rc) /* gradients of frozen gamma / beta land here */
			rc = fv_cu_alloc(&p->dwc, 2 * d->c * sizeof(float));
	}
	const char *legacy = getenv("FV_CUDA_BN_LEGACY");
	if (!rc && d->train && d->fmt_x == CU_FMT_NHWC_BF16 && !(legacy && *legacy == '1'))
		rc = bn_ex_plan(p);
	return rc;
}

/* Training forward; z (fuse_add plans) is added before the ReLU. */
static int bn_train(fv_tensor *y, const fv_tensor *x, const fv_tensor *z, const void *gamma,
		    const void *beta, void *run_mean, void *run_var, float momentum, fv_plan *p)
{
	fv_backend_ctx *ctx = p->ctx;
	p->last_y = y->data; /* a fused ReLU's backward reads it */
	/* cuDNN updates the running variance with the unbiased batch variance,
	 * as the CPU backend (PyTorch's convention) does */
	if (p->bn_ex)
		return fv_cu_dnn(cudnnBatchNormalizationForwardTrainingEx(ctx->dnn, BN_PERSIST,
			bn_ops(p), &one, &zero, p->xd, x->data, z ? p->xd : NULL, z ? z->data : NULL,
			p->xd, y->data, p->vd, gamma, beta, momentum, run_mean, run_var, p->d.eps,
			p->mean, p->invvar, p->ad, ctx->ws, ctx->ws_bytes, p->reserve,
			p->reserve_bytes), "bn forward training");
	int rc = fv_cu_dnn(cudnnBatchNormalizationForwardTraining(ctx->dnn, CUDNN_BATCHNORM_SPATIAL,
		&one, &zero, p->xd, x->data, p->xd, y->data, p->vd, gamma, beta, momentum, run_mean,
		run_var, p->d.eps, p->mean, p->invvar), "bn forward training");
	if (!rc && z)
		rc = fv_cu_add(ctx, y->data, y->data, z->data, count_x(p), p->d.fmt_x, 1);
	else if (!rc && p->d.fuse_relu)
		rc = fv_cu_act(ctx, y->data, y->data, count_x(p), p->d.fmt_x, FV_ACT_RELU);
	return rc;
}

static int bn_infer(fv_tensor *y, const fv_tensor *x, const fv_tensor *z, const void *gamma,
		    const void *beta, const void *run_mean, const void *run_var, fv_plan *p)
{
	fv_backend_ctx *ctx = p->ctx;
	int rc = fv_cu_dnn(cudnnBatchNormalizationForwardInference(ctx->dnn,
		CUDNN_BATCHNORM_SPATIAL, &one, &zero, p->xd, x->data, p->xd, y->data, p->vd, gamma,
		beta, run_mean, run_var, p->d.eps), "bn forward inference");
	if (!rc && z)
		rc = fv_cu_add(ctx, y->data, y->data, z->data, count_x(p), p->d.fmt_x, 1);
	else if (!rc && p->d.fuse_relu)
		rc = fv_cu_act(ctx, y->data, y->data, count_x(p), p->d.fmt_x, FV_ACT_RELU);
	return rc;
}

/* Backward; dz (fuse_add plans) receives the sum's gradient, masked by the
 * ReLU (with the ReLU after the add, its mask comes from y). */
static int bn_back(fv_tensor *dx, fv_tensor *dz, void *dgamma, void *dbeta, const fv_tensor *dy,
		   const fv_tensor *x, const void *gamma, const void *beta, fv_plan *p)
{
	fv_backend_ctx *ctx = p->ctx;
	const fv_op_desc *d = &p->d;
	int rc = 0;
	float *scr = (float *)p->dwc;
	if (p->bn_ex)
		return fv_cu_dnn(cudnnBatchNormalizationBackwardEx(ctx->dnn, BN_PERSIST, bn_ops(p),
			&one, &zero, &one, &zero, p->xd, x->data, p->xd, p->last_y, p->xd, dy->data,
			dz ? p->xd : NULL, dz ? dz->data : NULL, p->xd, dx->data, p->vd, gamma, beta,
			dgamma ? dgamma : scr, dbeta ? dbeta : scr + d->c, d->eps, p->mean, p->invvar,
			p->ad, ctx->ws, ctx->ws_bytes, p->reserve, p->reserve_bytes), "bn backward");
	if (dz) { /* dy (the ReLU's output gradient) is dead after this op */
		rc = fv_cu_relu_mask(ctx, dy->data, p->last_y, count_x(p), d->fmt_x);
		if (!rc)
			rc = fv_cu_check(cudaMemcpyAsync(dz->data, dy->data,
				count_x(p) * fv_cu_esize(d->fmt_x), cudaMemcpyDeviceToDevice,
				ctx->strm), "bn add: residual gradient");
	} else if (d->fuse_relu) {
		rc = fv_cu_bn_relu_mask(ctx, dy->data, x->data, (const float *)gamma,
					(const float *)beta, p->mean, p->invvar, d->n, d->c,
					d->h * d->w, d->fmt_x);
	}
	if (!rc)
		rc = fv_cu_dnn(cudnnBatchNormalizationBackward(ctx->dnn, CUDNN_BATCHNORM_SPATIAL,
			&one, &zero, &one, &zero, p->xd, x->data, p->xd, dy->data, p->xd, dx->data,
			p->vd, gamma, dgamma ? dgamma : scr, dbeta ? dbeta : scr + d->c, d->eps,
			p->mean, p->invvar), "bn backward");
	return rc;
}

extern "C" int fv_cuda_bn_forward_train(fv_tensor *y, const fv_tensor *x, const void *gamma,
					const void *beta, void *run_mean, void *run_var,
					float momentum, fv_plan *p)
{
	return bn_train(y, x, NULL, gamma, beta, run_mean, run_var, momentum, p);
}

extern "C" int fv_cuda_bn_forward_infer(fv_tensor *y, const fv_tensor *x, const void *gamma,
					const void *beta, const void *run_mean,
					const void *run_var, fv_plan *p)
{
	return bn_infer(y, x, NULL, gamma, beta, run_mean, run_var, p);
}

extern "C" int fv_cuda_bn_backward(fv_tensor *dx, void *dgamma, void *dbeta, const fv_tensor *dy,
				   const fv_tensor *x, const void *gamma, const void *beta,
				   fv_plan *p)
{
	return bn_back(dx, NULL, dgamma, dbeta, dy, x, gamma, beta, p);
}

extern "C" int fv_cuda_bn_add_forward_train(fv_tensor *y, const fv_tensor *x, const fv_tensor *z,
					    const void *gamma, const void *beta, void *run_mean,
					    void *run_var, float momentum, fv_plan *p)
{
	return bn_train(y, x, z, gamma, beta, run_mean, run_var, momentum, p);
}

extern "C" int fv_cuda_bn_add_forward_infer(fv_tensor *y, const fv_tensor *x, const fv_tensor *z,
					    const void *gamma, const void *beta,
					    const void *run_mean, const void *run_var, fv_plan *p)
{
	return bn_infer(y, x, z, gamma, beta, run_mean, run_var, p);
}

extern "C" int fv_cuda_bn_add_backward(fv_tensor *dx, fv_tensor *dz, void *dgamma, void *dbeta,
				       const fv_tensor *dy, const fv_tensor *x, const void *gamma,
				       const void *beta, fv_plan *p)
{
	return bn_back(dx, dz, dgamma, dbeta, dy, x, gamma, beta, p);
}

/* ---- activation ----------------------------------------------------------------- */

extern "C" int fv_cuda_act_forward(fv_tensor *y, const fv_tensor *x, fv_plan *p)
{
	return fv_cu_act(p->ctx, y->data, x->data, count_x(p), p->d.fmt_x, p->d.act);
}

extern "C" int fv_cuda_act_backward(fv_tensor *dx, const fv_tensor *dy, const fv_tensor *x,
				    const fv_tensor *y, fv_plan *p)
{
	return fv_cu_act_bwd(p->ctx, dx->data, dy->data, x->data, y->data, count_x(p), p->d.fmt_x,
			     p->d.act);
}

/* ---- pooling ------------------------------------------------------------------- */

extern "C" int fv_cu_pool_plan(fv_plan *p)
{
	const fv_op_desc *d = &p->d;
	int glob = d->r == 0;
	/* PyTorch's defaults, as the CPU backend: average counts the padding */
	cudnnPoolingMode_t mode = d->pool_max ? CUDNN_POOLING_MAX_DETERMINISTIC
					      : CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING;
	int rc = fv_cu_tensor_desc(&p->xd, d->n, d->c, d->h, d->w, d->fmt_x);
	if (!rc)
		rc = fv_cu_tensor_desc(&p->yd, d->n, d->k, d->oh, d->ow, d->fmt_y);
	if (!rc)
		rc = fv_cu_dnn(cudnnCreatePoolingDescriptor(&p->pd), "pooling descriptor");
	if (!rc)
		rc = fv_cu_dnn(cudnnSetPooling2dDescriptor(p->pd, mode, CUDNN_NOT_PROPAGATE_NAN,
			glob ? d->h : d->r, glob ? d->w : d->r, glob ? 0 : d->pad, glob ? 0 : d->pad,
			glob ? 1 : d->stride, glob ? 1 : d->stride), "pooling descriptor");
	return rc;
}

extern "C" int fv_cuda_pool_forward(fv_tensor *y, const fv_tensor *x, fv_plan *p, int train)
{
	(void)train;
	p->last_x = x->data, p->last_y = y->data; /* cuDNN's backward reads both */
	return fv_cu_dnn(cudnnPoolingForward(p->ctx->dnn, p->pd, &one, p->xd, x->data, &zero, p->yd,
					     y->data), "pooling forward");
}

extern "C" int fv_cuda_pool_backward(fv_tensor *dx, const fv_tensor *dy, fv_plan *p)
{
	if (!p->last_x)
		return fv_err_set(FV_E_CONFIG, "pooling backward before a forward");
	return fv_cu_dnn(cudnnPoolingBackward(p->ctx->dnn, p->pd, &one, p->yd, p->last_y, p->yd,
					      dy->data, p->xd, p->last_x, &zero, p->xd, dx->data),
			 "pooling backward");
}

/* ---- linear ------------------------------------------------------------------------ */

/* Column-major C = op(A) op(B); bf16 mode lets cuBLAS use bf16 tensor cores
 * on the fp32 data (fp32 accumulation). */
static int gemm(fv_backend_ctx *ctx, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
		int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc)
{
	if (ctx->bf16)
		return fv_cu_blas(cublasGemmEx(ctx->blas, ta, tb, m, n, k, &one, a, CUDA_R_32F, lda, b,
					       CUDA_R_32F, ldb, &zero, c, CUDA_R_32F, ldc,
					       CUBLAS_COMPUTE_32F_FAST_16BF, CUBLAS_GEMM_DEFAULT),
				  "gemm");
	return fv_cu_blas(cublasSgemm(ctx->blas, ta, tb, m, n, k, &one, a, lda, b, ldb, &zero, c,
				      ldc), "sgemm");
}

/* Row-major y[n,k] = x[n,c] w[k,c]^T is column-major y^T = w^T x^T. */
extern "C" int fv_cuda_linear_forward(fv_tensor *y, const fv_tensor *x, const void *w,
				      const void *b, fv_plan *p)
{
	int n = p->d.n, c = p->d.c, k = p->d.k;
	int rc = gemm(p->ctx, CUBLAS_OP_T, CUBLAS_OP_N, k, n, c, (const float *)w, c,
		      (const float *)x->data, c, (float *)y->data, k);
	if (!rc && b)
		rc = fv_cu_bias(p->ctx, y->data, (const float *)b, n, k, 1, FV_FMT_PLAIN);
	return rc;
}

extern "C" int fv_cuda_linear_backward(fv_tensor *dx, void *dw, void *db, const fv_tensor *dy,
				       const fv_tensor *x, const void *w, fv_plan *p)
{
	int n = p->d.n, c = p->d.c, k = p->d.k, rc = 0;
	const float *g = (const float *)dy->data;
	if (dx) /* dx[n,c] = dy[n,k] w[k,c] */
		rc = gemm(p->ctx, CUBLAS_OP_N, CUBLAS_OP_N, c, n, k, (const float *)w, c, g, k,
			  (float *)dx->data, c);
	if (!rc && dw) /* dw[k,c] = dy^T x */
		rc = gemm(p->ctx, CUBLAS_OP_N, CUBLAS_OP_T, c, k, n, (const float *)x->data, c, g, k,
			  (float *)dw, c);
	if (!rc && db)
		rc = fv_cu_bias_grad(p->ctx, (float *)db, g, n, k, 1, FV_FMT_PLAIN);
	return rc;
}

/* ---- elementwise ------------------------------------------------------------------- */

extern "C" int fv_cuda_add_forward(fv_tensor *y, const fv_tensor *a, const fv_tensor *b,
				   fv_plan *p)
{
	return fv_cu_add(p->ctx, y->data, a->data, b->data, count_x(p), p->d.fmt_x, p->d.fuse_relu);
}

extern "C" int fv_cuda_add_relu_backward(fv_tensor *dy, const fv_tensor *y, fv_plan *p)
{
	return fv_cu_relu_mask(p->ctx, dy->data, y->data, count_x(p), p->d.fmt_x);
}

extern "C" int fv_cuda_scale_forward(fv_tensor *y, const fv_tensor *x, const fv_tensor *s,
				     fv_plan *p)
{
	return fv_cu_scale(p->ctx, y->data, x->data, x->fmt, s->data, s->fmt, p->d.n, p->d.c,
			   p->d.h * p->d.w);
}

extern "C" int fv_cuda_scale_backward(fv_tensor *dx, fv_tensor *ds, const fv_tensor *dy,
				      const fv_tensor *x, const fv_tensor *s, fv_plan *p)
{
	return fv_cu_scale_bwd(p->ctx, dx ? dx->data : NULL, ds ? ds->data : NULL, dy->data,
			       x->data, x->fmt, s->data, s->fmt, p->d.n, p->d.c, p->d.h * p->d.w);
}

extern "C" int fv_cuda_dropout_forward(fv_tensor *y, const fv_tensor *x, uint64_t seed, int train,
				       fv_plan *p)
{
	return fv_cu_dropout(p->ctx, y->data, p->mask, x->data, count_x(p), p->d.fmt_x, p->d.p,
			     seed, train);
}

extern "C" int fv_cuda_dropout_backward(fv_tensor *dx, const fv_tensor *dy, fv_plan *p)
{
	return fv_cu_dropout_bwd(p->ctx, dx->data, dy->data, p->mask, count_x(p), p->d.fmt_x,
				 p->d.p);
}

/* Flatten: y holds x's n x c x h x w in fmt_y (plain NCHW is n x chw). */
extern "C" int fv_cuda_reorder_forward(fv_tensor *y, const fv_tensor *x, fv_plan *p)
{
	const fv_op_desc *d = &p->d;
	return fv_cu_reorder(p->ctx, y->data, d->fmt_y, x->data, d->fmt_x, d->n, d->c, d->h, d->w);
}

extern "C" int fv_cuda_reorder_backward(fv_tensor *dx, const fv_tensor *dy, fv_plan *p)
{
	const fv_op_desc *d = &p->d;
	return fv_cu_reorder(p->ctx, dx->data, d->fmt_x, dy->data, d->fmt_y, d->n, d->c, d->h, d->w);
}
