/* nn/cuda/conv.cu — convolution forward, backward data and backward filter
 * with cuDNN.
 *
 *   x: n x c x h x w (fmt_x)  ->  y: n x k x oh x ow (fmt_y); w: K x C/g x R x R fp32
 *
 * The op computes in y's layout: an input in another layout (the plain fp32
 * net input feeding a bf16 channels-last net) is converted into a plan-owned
 * buffer first. Algorithms: cuDNN's v7 heuristics rank the candidates, then
 * one timed cudnnFind*Ex search per distinct shape picks the fastest whose
 * workspace fits FV_CUDA_WS_MB (default 512); the choice is cached in the
 * context, so a resnet's repeated blocks search once. FV_CUDA_FIND=0 skips
 * the timed search (heuristics only). fp32 mode uses FMA math (no TF32) so
 * it matches the CPU; bf16 mode uses tensor cores. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "fv_error.h"
}
#include "nn/cuda/cuda.h"
#include "nn/cuda/ops.h"

static const float one = 1.0f, zero = 0.0f;

static void key_of(const fv_plan *p, char *k, size_t cap)
{
	const fv_op_desc *d = &p->d;
	snprintf(k, cap, "%d %d %d %d %d %d %d %d %d %d %d %d %d", d->n, d->c, d->h, d->w, d->k,
		 d->r, d->stride, d->pad, d->dil, d->groups, p->cfmt, d->train, p->ctx->bf16);
}

/* Scratch buffers for the timed search (freed right after). */
typedef struct { void *x, *y, *w, *ws; size_t wsb; } scratch;

static void scratch_free(scratch *s)
{
	cudaFree(s->x), cudaFree(s->y), cudaFree(s->w), cudaFree(s->ws);
	memset(s, 0, sizeof *s);
}

static int scratch_new(fv_plan *p, scratch *s)
{
	const fv_op_desc *d = &p->d;
	size_t e = fv_cu_esize(p->cfmt);
	memset(s, 0, sizeof *s);
	int rc = fv_cu_alloc(&s->x, (size_t)d->n * d->c * d->h * d->w * e);
	if (!rc)
		rc = fv_cu_alloc(&s->y, (size_t)d->n * d->k * d->oh * d->ow * e);
	if (!rc)
		rc = fv_cu_alloc(&s->w, (size_t)d->k * (d->c / d->groups) * d->r * d->r * e);
	/* as much workspace as the bound allows and the card has */
	for (s->wsb = p->ctx->ws_limit; !rc && s->wsb >= (1u << 20); s->wsb /= 2)
		if (cudaMalloc(&s->ws, s->wsb) == cudaSuccess)
			break;
	cudaGetLastError();
	if (!s->ws)
		s->wsb = 0;
	return rc;
}

/* The fastest successful result that fits the bound, else the heuristics' first fit. */
#define PICK(perf, n, limit, out) do { \
	for (int i_ = 0; i_ < (n); i_++) \
		if ((perf)[i_].status == CUDNN_STATUS_SUCCESS && (perf)[i_].memory <= (limit)) { \
			*(out) = (int)(perf)[i_].algo; break; } } while (0)

static int search(fv_plan *p, cu_algo *a)
{
	fv_backend_ctx *ctx = p->ctx;
	const char *env = getenv("FV_CUDA_FIND");
	int find = !(env && !strcmp(env, "0"));
	size_t lim = ctx->ws_limit;
	int n = 0, rc = 0;
	cudnnConvolutionFwdAlgoPerf_t pf[16];
	cudnnConvolutionBwdDataAlgoPerf_t pd[16];
	cudnnConvolutionBwdFilterAlgoPerf_t pw[16];
	a->fwd = a->bwd_data = a->bwd_filter = -1;
	rc = fv_cu_dnn(cudnnGetConvolutionForwardAlgorithm_v7(ctx->dnn, p->xd, p->wd, p->cd, p->yd,
							       16, &n, pf), "forward heuristics");
	if (!rc)
		PICK(pf, n, lim, &a->fwd);
	if (!rc && p->d.train) {
		rc = fv_cu_dnn(cudnnGetConvolutionBackwardDataAlgorithm_v7(ctx->dnn, p->wd, p->yd,
			p->cd, p->xd, 16, &n, pd), "backward data heuristics");
		if (!rc)
			PICK(pd, n, lim, &a->bwd_data);
		if (!rc)
			rc = fv_cu_dnn(cudnnGetConvolutionBackwardFilterAlgorithm_v7(ctx->dnn, p->xd,
				p->yd, p->cd, p->wd, 16, &n, pw), "backward filter heuristics");
		if (!rc)
			PICK(pw, n, lim, &a->bwd_filter);
	}
	if (rc || !find)
		return rc;
	scratch s;
	if (scratch_new(p, &s)) { /* no memory to search: keep the heuristics' choice */
		scratch_free(&s);
		cudaGetLastError();
		return 0;
	}
	if (cudnnFindConvolutionForwardAlgorithmEx(ctx->dnn, p->xd, s.x, p->wd, s.w, p->cd, p->yd,
						   s.y, 16, &n, pf, s.ws, s.wsb) ==
	    CUDNN_STATUS_SUCCESS)
		PICK(pf, n, s.wsb, &a->fwd);
	if (p->d.train) {
		if (cudnnFindConvolutionBackwardDataAlgorithmEx(ctx->dnn, p->wd, s.w, p->yd, s.y,
				p->cd, p->xd, s.x, 16, &n, pd, s.ws, s.wsb) == CUDNN_STATUS_SUCCESS)
			PICK(pd, n, s.wsb, &a->bwd_data);
		if (cudnnFindConvolutionBackwardFilterAlgorithmEx(ctx->dnn, p->xd, s.x, p->yd, s.y,
				p->cd, p->wd, s.w, 16, &n, pw, s.ws, s.wsb) == CUDNN_STATUS_SUCCESS)
			PICK(pw, n, s.wsb, &a->bwd_filter);
	}
	cudaDeviceSynchronize();
	scratch_free(&s);
	return 0;
}

static int algos(fv_plan *p)
{
	fv_backend_ctx *ctx = p->ctx;
	char key[sizeof ctx->algos[0].key];
	key_of(p, key, sizeof key);
	cu_algo *a = NULL;
	for (int i = 0; i < ctx->nalgo && !a; i++)
		if (!strcmp(ctx->algos[i].key, key))
			a = &ctx->algos[i];
	if (!a) {
		if (ctx->nalgo == ctx->calgo) {
			int cap = ctx->calgo ? 2 * ctx->calgo : 32;
			cu_algo *n = (cu_algo *)realloc(ctx->algos, cap * sizeof *n);
			if (!n)
				return ENOMEM;
			ctx->algos = n, ctx->calgo = cap;
		}
		a = &ctx->algos[ctx->nalgo];
		memset(a, 0, sizeof *a);
		snprintf(a->key, sizeof a->key, "%s", key);
		int rc = search(p, a);
		if (rc)
			return rc;
		const char *show = getenv("FV_CUDA_ALGOS");
		if (show && *show == '1')
			fprintf(stderr, "cudnn conv [%s]: fwd %d, bwd data %d, bwd filter %d\n", key,
				a->fwd, a->bwd_data, a->bwd_filter);
		if (a->fwd < 0 || (p->d.train && (a->bwd_data < 0 || a->bwd_filter < 0)))
			return fv_err_set(FV_E_UNSUPPORTED, "cudnn: no convolution algorithm for %s "
					  "within %zu MB of workspace", key, ctx->ws_limit >> 20);
		ctx->nalgo++;
	}
	p->algo_f = a->fwd, p->algo_bd = a->bwd_data, p->algo_bf = a->bwd_filter;
	size_t need = 0, b = 0;
	int rc = fv_cu_dnn(cudnnGetConvolutionForwardWorkspaceSize(ctx->dnn, p->xd, p->wd, p->cd,
		p->yd, (cudnnConvolutionFwdAlgo_t)p->algo_f, &need), "forward workspace");
	if (!rc && p->d.train) {
		rc = fv_cu_dnn(cudnnGetConvolutionBackwardDataWorkspaceSize(ctx->dnn, p->wd, p->yd,
			p->cd, p->xd, (cudnnConvolutionBwdDataAlgo_t)p->algo_bd, &b), "bwd data ws");
		need = b > need ? b : need;
		if (!rc)
			rc = fv_cu_dnn(cudnnGetConvolutionBackwardFilterWorkspaceSize(ctx->dnn, p->xd,
				p->yd, p->cd, p->wd, (cudnnConvolutionBwdFilterAlgo_t)p->algo_bf, &b),
				"bwd filter ws");
		need = b > need ? b : need;
	}
	return rc ? rc : fv_cu_ws(ctx, need);
}

extern "C" int fv_cu_conv_plan(fv_plan *p)
{
	const fv_op_desc *d = &p->d;
	int bf = p->cfmt == CU_FMT_NHWC_BF16, cg = d->c / d->groups;
	size_t e = fv_cu_esize(p->cfmt), xb = (size_t)d->n * d->c * d->h * d->w * e;
	size_t wb = (size_t)d->k * cg * d->r * d->r * e;
	int rc = fv_cu_tensor_desc(&p->xd, d->n, d->c, d->h, d->w, p->cfmt);
	if (!rc)
		rc = fv_cu_tensor_desc(&p->yd, d->n, d->k, d->oh, d->ow, p->cfmt);
	if (!rc)
		rc = fv_cu_dnn(cudnnCreateFilterDescriptor(&p->wd), "filter descriptor");
	if (!rc)
		rc = fv_cu_dnn(cudnnSetFilter4dDescriptor(p->wd, bf ? CUDNN_DATA_BFLOAT16
			: CUDNN_DATA_FLOAT, bf ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW, d->k, cg,
			d->r, d->r), "filter descriptor");
	if (!rc)
		rc = fv_cu_dnn(cudnnCreateConvolutionDescriptor(&p->cd), "conv descriptor");
	if (!rc)
		rc = fv_cu_dnn(cudnnSetConvolution2dDescriptor(p->cd, d->pad, d->pad, d->stride,
			d->stride, d->dil, d->dil, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
			"conv descriptor");
	if (!rc)
		rc = fv_cu_dnn(cudnnSetConvolutionGroupCount(p->cd, d->groups), "group count");
	if (!rc)
		rc = fv_cu_dnn(cudnnSetConvolutionMathType(p->cd, bf ? CUDNN_TENSOR_OP_MATH
							   : CUDNN_FMA_MATH), "math type");
	int on, oc, oh, ow;
	if (!rc)
		rc = fv_cu_dnn(cudnnGetConvolution2dForwardOutputDim(p->cd, p->xd, p->wd, &on, &oc,
								     &oh, &ow), "output dims");
	if (!rc && (on != d->n || oc != d->k || oh != d->oh || ow != d->ow))
		rc = fv_err_set(FV_E_INTERNAL, "cudnn conv: output %dx%dx%dx%d, expected %dx%dx%dx%d",
				on, oc, oh, ow, d->n, d->k, d->oh, d->ow);
	if (!rc && d->fmt_x != p->cfmt) {
		rc = fv_cu_alloc(&p->xc, xb);
		if (!rc && d->train)
			rc = fv_cu_alloc(&p->dxc, xb);
	}
	if (!rc && bf) {
		rc = fv_cu_alloc(&p->wc, wb);
		if (!rc && d->train)
			rc = fv_cu_alloc(&p->dwc, wb);
	}
	return rc ? rc : algos(p);
}

/* x in the compute layout, converting it when it is not. */
static const void *xin(fv_plan *p, const fv_tensor *x, int *rc)
{
	if (!p->xc)
		return x->data;
	*rc = fv_cu_reorder(p->ctx, p->xc, p->cfmt, x->data, x->fmt, p->d.n, p->d.c, p->d.h, p->d.w);
	return p->xc;
}

static const void *win(fv_plan *p, const void *w, int *rc)
{
	if (!p->wc)
		return w;
	*rc = fv_cu_w_to_bf16(p->ctx, p->wc, (const float *)w, p->d.k, p->d.c / p->d.groups, p->d.r);
	return p->wc;
}

extern "C" int fv_cuda_conv_forward(fv_tensor *y, const fv_tensor *x, const void *w, const void *b,
				    fv_plan *p)
{
	fv_backend_ctx *ctx = p->ctx;
	int rc = 0;
	const void *xi = xin(p, x, &rc), *wi = rc ? NULL : win(p, w, &rc);
	if (!rc)
		rc = fv_cu_dnn(cudnnConvolutionForward(ctx->dnn, &one, p->xd, xi, p->wd, wi, p->cd,
			(cudnnConvolutionFwdAlgo_t)p->algo_f, ctx->ws, ctx->ws_bytes, &zero, p->yd,
			y->data), "conv forward");
	if (!rc && b)
		rc = fv_cu_bias(ctx, y->data, (const float *)b, p->d.n, p->d.k, p->d.oh * p->d.ow,
				p->cfmt);
	return rc;
}

extern "C" int fv_cuda_conv_backward_data(fv_tensor *dx, const fv_tensor *dy, const void *w,
					  fv_plan *p)
{
	fv_backend_ctx *ctx = p->ctx;
	int rc = 0;
	const void *wi = win(p, w, &rc);
	void *out = p->dxc ? p->dxc : dx->data;
	if (!rc)
		rc = fv_cu_dnn(cudnnConvolutionBackwardData(ctx->dnn, &one, p->wd, wi, p->yd, dy->data,
			p->cd, (cudnnConvolutionBwdDataAlgo_t)p->algo_bd, ctx->ws, ctx->ws_bytes, &zero,
			p->xd, out), "conv backward data");
	if (!rc && p->dxc)
		rc = fv_cu_reorder(ctx, dx->data, dx->fmt, p->dxc, p->cfmt, p->d.n, p->d.c, p->d.h,
				   p->d.w);
	return rc;
}

extern "C" int fv_cuda_conv_backward_filter(void *dw, void *db, const fv_tensor *dy,
					    const fv_tensor *x, fv_plan *p)
{
	fv_backend_ctx *ctx = p->ctx;
	int rc = 0;
	if (dw) {
		const void *xi = xin(p, x, &rc);
		void *out = p->dwc ? p->dwc : dw;
		if (!rc)
			rc = fv_cu_dnn(cudnnConvolutionBackwardFilter(ctx->dnn, &one, p->xd, xi, p->yd,
				dy->data, p->cd, (cudnnConvolutionBwdFilterAlgo_t)p->algo_bf, ctx->ws,
				ctx->ws_bytes, &zero, p->wd, out), "conv backward filter");
		if (!rc && p->dwc)
			rc = fv_cu_w_from_bf16(ctx, (float *)dw, p->dwc, p->d.k, p->d.c / p->d.groups,
					       p->d.r);
	}
	if (!rc && db)
		rc = fv_cu_bias_grad(ctx, (float *)db, dy->data, p->d.n, p->d.k, p->d.oh * p->d.ow,
				     p->cfmt);
	return rc;
}
