/* nn/cuda/ops.h — the CUDA backend's entry points, as nn/cuda/backend.c puts
 * them into the fv_backend table (see nn/backend.h for each one's contract)
 * and the plan builders the op files share. Not a public header. */
#ifndef FV_CUDA_OPS_H
#define FV_CUDA_OPS_H

#include "nn/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

int fv_cuda_probe(const char *device);
int fv_cuda_ctx_open(fv_backend_ctx **out, int threads, const char *device);
int fv_cuda_ctx_new(fv_backend_ctx **out, int threads);
void fv_cuda_ctx_destroy(fv_backend_ctx **p);
void fv_cuda_enter(fv_backend_ctx *ctx);
int fv_cuda_alloc(fv_backend_ctx *ctx, size_t bytes, void **out);
void fv_cuda_free(fv_backend_ctx *ctx, void *p);
int fv_cuda_to_device(fv_backend_ctx *ctx, void *dst, const void *src, size_t bytes);
int fv_cuda_to_host(fv_backend_ctx *ctx, void *dst, const void *src, size_t bytes);
int fv_cuda_tensor_fmt(fv_backend_ctx *ctx, int c, int h, int w, int plain_needed);
size_t fv_cuda_tensor_bytes(fv_backend_ctx *ctx, int n, int c, int h, int w, int fmt);
int fv_cuda_tensor_import(fv_backend_ctx *ctx, fv_tensor *t, const float *host, int n);
int fv_cuda_tensor_export(fv_backend_ctx *ctx, float *host, const fv_tensor *t, int n);
int fv_cuda_add_into(fv_backend_ctx *ctx, fv_tensor *dst, const fv_tensor *src);
int fv_cuda_copy(fv_backend_ctx *ctx, fv_tensor *dst, const fv_tensor *src);
int fv_cuda_plan_new(fv_backend_ctx *ctx, const fv_op_desc *d, fv_plan **out);
void fv_cuda_plan_destroy(fv_plan **p);

int fv_cu_conv_plan(fv_plan *p);
int fv_cu_bn_plan(fv_plan *p);
int fv_cu_pool_plan(fv_plan *p);

int fv_cuda_conv_forward(fv_tensor *y, const fv_tensor *x, const void *w, const void *b,
			 fv_plan *p);
int fv_cuda_conv_backward_data(fv_tensor *dx, const fv_tensor *dy, const void *w, fv_plan *p);
int fv_cuda_conv_backward_filter(void *dw, void *db, const fv_tensor *dy, const fv_tensor *x,
				 fv_plan *p);
int fv_cuda_bn_forward_train(fv_tensor *y, const fv_tensor *x, const void *gamma,
			     const void *beta, void *run_mean, void *run_var, float momentum,
			     fv_plan *p);
int fv_cuda_bn_forward_infer(fv_tensor *y, const fv_tensor *x, const void *gamma,
			     const void *beta, const void *run_mean, const void *run_var,
			     fv_plan *p);
int fv_cuda_bn_backward(fv_tensor *dx, void *dgamma, void *dbeta, const fv_tensor *dy,
			const fv_tensor *x, const void *gamma, const void *beta, fv_plan *p);
int fv_cuda_bn_add_forward_train(fv_tensor *y, const fv_tensor *x, const fv_tensor *z,
				 const void *gamma, const void *beta, void *run_mean,
				 void *run_var, float momentum, fv_plan *p);
int fv_cuda_bn_add_forward_infer(fv_tensor *y, const fv_tensor *x, const fv_tensor *z,
				 const void *gamma, const void *beta, const void *run_mean,
				 const void *run_var, fv_plan *p);
int fv_cuda_bn_add_backward(fv_tensor *dx, fv_tensor *dz, void *dgamma, void *dbeta,
			    const fv_tensor *dy, const fv_tensor *x, const void *gamma,
			    const void *beta, fv_plan *p);
int fv_cuda_act_forward(fv_tensor *y, const fv_tensor *x, fv_plan *p);
int fv_cuda_act_backward(fv_tensor *dx, const fv_tensor *dy, const fv_tensor *x,
			 const fv_tensor *y, fv_plan *p);
int fv_cuda_pool_forward(fv_tensor *y, const fv_tensor *x, fv_plan *p, int train);
int fv_cuda_pool_backward(fv_tensor *dx, const fv_tensor *dy, fv_plan *p);
int fv_cuda_linear_forward(fv_tensor *y, const fv_tensor *x, const void *w, const void *b,
			   fv_plan *p);
int fv_cuda_linear_backward(fv_tensor *dx, void *dw, void *db, const fv_tensor *dy,
			    const fv_tensor *x, const void *w, fv_plan *p);
int fv_cuda_add_forward(fv_tensor *y, const fv_tensor *a, const fv_tensor *b, fv_plan *p);
int fv_cuda_add_relu_backward(fv_tensor *dy, const fv_tensor *y, fv_plan *p);
int fv_cuda_scale_forward(fv_tensor *y, const fv_tensor *x, const fv_tensor *s, fv_plan *p);
int fv_cuda_scale_backward(fv_tensor *dx, fv_tensor *ds, const fv_tensor *dy,
			   const fv_tensor *x, const fv_tensor *s, fv_plan *p);
int fv_cuda_dropout_forward(fv_tensor *y, const fv_tensor *x, uint64_t seed, int train,
			    fv_plan *p);
int fv_cuda_dropout_backward(fv_tensor *dx, const fv_tensor *dy, fv_plan *p);
int fv_cuda_reorder_forward(fv_tensor *y, const fv_tensor *x, fv_plan *p);
int fv_cuda_reorder_backward(fv_tensor *dx, const fv_tensor *dy, fv_plan *p);
int fv_cuda_sgd_new(fv_backend_ctx *ctx, const fv_sgd_seg *segs, size_t nseg, fv_plan **out);
int fv_cuda_sgd_step(fv_plan *p, void *params, const void *grads, void *state,
		     const fv_sgd_hyper *h, double *sumsq);

#ifdef __cplusplus
}
#endif

#endif
