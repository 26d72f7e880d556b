/* nn/cuda/ctx.cu — the CUDA backend's context, memory, tensors and plans:
 * device selection ("cuda[:N][:bf16|:fp32]"), the probe that lets a CUDA
 * build fall back to the CPU on a machine without a GPU, the cuDNN / cuBLAS
 * handles on one stream, and the helpers the op files share. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "fv_error.h"
}
#include "nn/cuda/cuda.h"
#include "nn/cuda/ops.h"

/* ---- errors ------------------------------------------------------------------ */

extern "C" int fv_cu_check(cudaError_t e, const char *what)
{
	if (e == cudaSuccess)
		return 0;
	if (e == cudaErrorMemoryAllocation)
		return fv_err_set(ENOMEM, "cuda %s: out of GPU memory", what);
	return fv_err_set(FV_E_INTERNAL, "cuda %s: %s", what, cudaGetErrorString(e));
}

extern "C" int fv_cu_dnn(cudnnStatus_t s, const char *what)
{
	if (s == CUDNN_STATUS_SUCCESS)
		return 0;
	return fv_err_set(s == CUDNN_STATUS_NOT_SUPPORTED ? FV_E_UNSUPPORTED : FV_E_INTERNAL,
			  "cudnn %s: %s", what, cudnnGetErrorString(s));
}

extern "C" int fv_cu_blas(cublasStatus_t s, const char *what)
{
	if (s == CUBLAS_STATUS_SUCCESS)
		return 0;
	return fv_err_set(FV_E_INTERNAL, "cublas %s: status %d", what, (int)s);
}

extern "C" int fv_cu_alloc(void **p, size_t bytes)
{
	*p = NULL;
	return fv_cu_check(cudaMalloc(p, bytes ? bytes : 256), "alloc");
}

extern "C" size_t fv_cu_esize(int fmt)
{
	return fmt == CU_FMT_NHWC_BF16 ? 2 : 4;
}

extern "C" size_t fv_cu_count(const fv_tensor *t)
{
	return (size_t)t->n * t->c * t->h * t->w;
}

extern "C" int fv_cu_ws(fv_backend_ctx *ctx, size_t bytes)
{
	if (bytes <= ctx->ws_bytes)
		return 0;
	cudaStreamSynchronize(ctx->strm);
	cudaFree(ctx->ws);
	ctx->ws_bytes = 0;
	int rc = fv_cu_alloc(&ctx->ws, bytes);
	if (!rc)
		ctx->ws_bytes = bytes;
	return rc;
}

extern "C" int fv_cu_stage(fv_backend_ctx *ctx, size_t bytes)
{
	if (bytes <= ctx->stage_bytes)
		return 0;
	cudaStreamSynchronize(ctx->strm);
	cudaFree(ctx->stage);
	ctx->stage_bytes = 0;
	int rc = fv_cu_alloc(&ctx->stage, bytes);
	if (!rc)
		ctx->stage_bytes = bytes;
	return rc;
}

extern "C" int fv_cu_tensor_desc(cudnnTensorDescriptor_t *d, int n, int c, int h, int w, int fmt)
{
	int rc = *d ? 0 : fv_cu_dnn(cudnnCreateTensorDescriptor(d), "tensor descriptor");
	if (rc)
		return rc;
	int nhwc = fmt == CU_FMT_NHWC_BF16;
	return fv_cu_dnn(cudnnSetTensor4dDescriptor(*d, nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
						    nhwc ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT,
						    n, c, h, w), "tensor descriptor");
}

/* ---- device names and the probe --------------------------------------------- */

/* "cuda", "cuda:1", "cuda:bf16", "cuda:1:bf16", "cuda:fp32". */
static int parse(const char *device, int *index, int *bf16)
{
	*index = 0, *bf16 = 0;
	const char *s = device + 4;
	while (*s == ':') {
		s++;
		char *end;
		if (*s >= '0' && *s <= '9') {
			long v = strtol(s, &end, 10);
			if (v > 64)
				break;
			*index = (int)v;
			s = end;
		} else if (!strncmp(s, "bf16", 4) && (s[4] == 0 || s[4] == ':')) {
			*bf16 = 1, s += 4;
		} else if (!strncmp(s, "fp32", 4) && (s[4] == 0 || s[4] == ':')) {
			*bf16 = 0, s += 4;
		} else {
			s--; /* an empty or unknown field */
			break;
		}
	}
	if (*s)
		return fv_err_set(FV_E_CONFIG, "device '%s': expected cuda[:N][:bf16|:fp32]", device);
	return 0;
}

extern "C" int fv_cuda_probe(const char *device)
{
	int index, bf16, count = 0;
	int rc = parse(device, &index, &bf16);
	if (rc)
		return rc;
	/* no driver or no device: cudaGetDeviceCount reports it, never aborts */
	cudaError_t e = cudaGetDeviceCount(&count);
	if (e != cudaSuccess) {
		cudaGetLastError();
		return fv_err_set(FV_E_UNSUPPORTED, "no usable GPU (%s)", cudaGetErrorString(e));
	}
	if (index >= count)
		return fv_err_set(FV_E_UNSUPPORTED, "no GPU %d (%d found)", index, count);
	return 0;
}

/* ---- context ------------------------------------------------------------------ */

extern "C" void fv_cuda_ctx_destroy(fv_backend_ctx **p)
{
	if (!p || !*p)
		return;
	fv_backend_ctx *c = *p;
	if (c->strm)
		cudaStreamSynchronize(c->strm);
	if (c->dnn)
		cudnnDestroy(c->dnn);
	if (c->blas)
		cublasDestroy(c->blas);
	cudaFree(c->ws);
	cudaFree(c->stage);
	cudaFree(c->part);
	cudaFreeHost(c->hpart);
	if (c->strm)
		cudaStreamDestroy(c->strm);
	free(c->algos);
	free(c);
	*p = NULL;
}

extern "C" int fv_cuda_ctx_open(fv_backend_ctx **out, int threads, const char *device)
{
	(void)threads;
	*out = NULL;
	int index = 0, bf16 = 0;
	int rc = device ? parse(device, &index, &bf16) : 0;
	if (rc)
		return rc;
	fv_backend_ctx *c = (fv_backend_ctx *)calloc(1, sizeof *c);
	if (!c)
		return ENOMEM;
	c->dev = index;
	c->bf16 = bf16;
	const char *env = getenv("FV_CUDA_WS_MB"); /* cuDNN workspace bound */
	c->ws_limit = (size_t)(env ? atol(env) : 512) << 20;
	c->part_n = 65536;
	if ((rc = fv_cu_check(cudaSetDevice(index), "set device")) ||
	    (rc = fv_cu_check(cudaStreamCreateWithFlags(&c->strm, cudaStreamNonBlocking),
			      "stream")) ||
	    (rc = fv_cu_dnn(cudnnCreate(&c->dnn), "create")) ||
	    (rc = fv_cu_dnn(cudnnSetStream(c->dnn, c->strm), "set stream")) ||
	    (rc = fv_cu_blas(cublasCreate(&c->blas), "create")) ||
	    (rc = fv_cu_blas(cublasSetStream(c->blas, c->strm), "set stream")) ||
	    (rc = fv_cu_alloc((void **)&c->part, c->part_n * sizeof(double))) ||
	    (rc = fv_cu_check(cudaMallocHost((void **)&c->hpart, c->part_n * sizeof(double)),
			      "pinned alloc")))
		goto out;
	/* fp32 mode must match the CPU: no TF32 in cuBLAS (cuDNN: per conv) */
	rc = fv_cu_blas(cublasSetMathMode(c->blas, bf16 ? CUBLAS_DEFAULT_MATH
						      : CUBLAS_PEDANTIC_MATH), "math mode");
out:
	if (rc)
		fv_cuda_ctx_destroy(&c);
	*out = c;
	return rc;
}

extern "C" int fv_cuda_ctx_new(fv_backend_ctx **out, int threads)
{
	return fv_cuda_ctx_open(out, threads, NULL);
}

extern "C" void fv_cuda_enter(fv_backend_ctx *ctx)
{
	cudaSetDevice(ctx->dev);
}

/* ---- memory and tensors --------------------------------------------------------- */

extern "C" int fv_cuda_alloc(fv_backend_ctx *ctx, size_t bytes, void **out)
{
	int rc = fv_cu_alloc(out, bytes);
	if (!rc) /* fresh tensors and gradients read as zero, like the CPU's */
		rc = fv_cu_check(cudaMemsetAsync(*out, 0, bytes ? bytes : 256, ctx->strm), "memset");
	return rc;
}

extern "C" void fv_cuda_free(fv_backend_ctx *ctx, void *p)
{
	if (!p)
		return;
	cudaStreamSynchronize(ctx->strm);
	cudaFree(p);
}

extern "C" int fv_cuda_to_device(fv_backend_ctx *ctx, void *dst, const void *src, size_t bytes)
{
	int rc = fv_cu_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx->strm),
			     "copy to device");
	return rc ? rc : fv_cu_check(cudaStreamSynchronize(ctx->strm), "copy to device");
}

extern "C" int fv_cuda_to_host(fv_backend_ctx *ctx, void *dst, const void *src, size_t bytes)
{
	int rc = fv_cu_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx->strm),
			     "copy to host");
	return rc ? rc : fv_cu_check(cudaStreamSynchronize(ctx->strm), "copy to host");
}

extern "C" int fv_cuda_tensor_fmt(fv_backend_ctx *ctx, int c, int h, int w, int plain_needed)
{
	(void)c, (void)h, (void)w;
	return ctx->bf16 && !plain_needed ? (int)CU_FMT_NHWC_BF16 : (int)FV_FMT_PLAIN;
}

extern "C" size_t fv_cuda_tensor_bytes(fv_backend_ctx *ctx, int n, int c, int h, int w, int fmt)
{
	(void)ctx;
	return (size_t)n * c * h * w * fv_cu_esize(fmt);
}

extern "C" int fv_cuda_tensor_import(fv_backend_ctx *ctx, fv_tensor *t, const float *host, int n)
{
	size_t b = (size_t)n * t->c * t->h * t->w * sizeof(float);
	if (t->fmt == FV_FMT_PLAIN)
		return fv_cuda_to_device(ctx, t->data, host, b);
	int rc = fv_cu_stage(ctx, b);
	if (!rc)
		rc = fv_cuda_to_device(ctx, ctx->stage, host, b);
	if (!rc)
		rc = fv_cu_reorder(ctx, t->data, t->fmt, ctx->stage, FV_FMT_PLAIN, n, t->c, t->h, t->w);
	return rc;
}

extern "C" int fv_cuda_tensor_export(fv_backend_ctx *ctx, float *host, const fv_tensor *t, int n)
{
	size_t b = (size_t)n * t->c * t->h * t->w * sizeof(float);
	if (t->fmt == FV_FMT_PLAIN)
		return fv_cuda_to_host(ctx, host, t->data, b);
	int rc = fv_cu_stage(ctx, b);
	if (!rc)
		rc = fv_cu_reorder(ctx, ctx->stage, FV_FMT_PLAIN, t->data, t->fmt, n, t->c, t->h, t->w);
	return rc ? rc : fv_cuda_to_host(ctx, host, ctx->stage, b);
}

extern "C" int fv_cuda_add_into(fv_backend_ctx *ctx, fv_tensor *dst, const fv_tensor *src)
{
	return fv_cu_add(ctx, dst->data, dst->data, src->data, fv_cu_count(dst), dst->fmt, 0);
}

extern "C" int fv_cuda_copy(fv_backend_ctx *ctx, fv_tensor *dst, const fv_tensor *src)
{
	return fv_cu_check(cudaMemcpyAsync(dst->data, src->data,
					   fv_cu_count(dst) * fv_cu_esize(dst->fmt),
					   cudaMemcpyDeviceToDevice, ctx->strm), "copy");
}

/* ---- plans ---------------------------------------------------------------------- */

extern "C" void fv_cuda_plan_destroy(fv_plan **pp)
{
	if (!pp || !*pp)
		return;
	fv_plan *p = *pp;
	cudaStreamSynchronize(p->ctx->strm);
	if (p->xd) cudnnDestroyTensorDescriptor(p->xd);
	if (p->yd) cudnnDestroyTensorDescriptor(p->yd);
	if (p->vd) cudnnDestroyTensorDescriptor(p->vd);
	if (p->wd) cudnnDestroyFilterDescriptor(p->wd);
	if (p->cd) cudnnDestroyConvolutionDescriptor(p->cd);
	if (p->pd) cudnnDestroyPoolingDescriptor(p->pd);
	if (p->ad) cudnnDestroyActivationDescriptor(p->ad);
	void *bufs[] = { p->xc, p->dxc, p->wc, p->dwc, p->mean, p->invvar, p->mask, p->chunks,
			 p->reserve };
	for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
		cudaFree(bufs[i]);
	free(p);
	*pp = NULL;
}

extern "C" int fv_cuda_plan_new(fv_backend_ctx *ctx, const fv_op_desc *d, fv_plan **out)
{
	*out = NULL;
	fv_plan *p = (fv_plan *)calloc(1, sizeof *p);
	if (!p)
		return ENOMEM;
	p->d = *d;
	p->ctx = ctx;
	p->cfmt = d->fmt_y;
	int rc = 0;
	switch (d->kind) {
	case FV_K_CONV: rc = fv_cu_conv_plan(p); break;
	case FV_K_BN: rc = fv_cu_bn_plan(p); break;
	case FV_K_POOL: rc = fv_cu_pool_plan(p); break;
	case FV_K_DROPOUT:
		rc = fv_cu_alloc((void **)&p->mask, (size_t)d->n * d->c * d->h * d->w);
		break;
	case FV_K_ACT: case FV_K_LINEAR: case FV_K_ADD: case FV_K_SCALE: case FV_K_REORDER:
		break;
	}
	if (rc)
		fv_cuda_plan_destroy(&p);
	*out = p;
	return rc;
}
