/* nn/cuda/sgd.cu — the optimizer step on the GPU: SGD with momentum /
 * Nesterov, L2 or decoupled weight decay, global-norm clipping and the
 * weight EMA of nn/optim.h, fused over the whole parameter block in two
 * launches. The parameter table is cut into chunks of at most CHUNK floats
 * once (sgd_new); one block per chunk writes its gradients' sum of squares
 * (fp64) to a partial, the host adds the partials in a fixed order (the
 * norm is bit-identical run to run) and checks it is finite, then one block
 * per chunk updates weights, momentum and EMA. The arithmetic is
 * nn/optim/sgd.c's, element for element. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

extern "C" {
#include "fv_error.h"
}
#include "nn/cuda/cuda.h"
#include "nn/cuda/ops.h"

#define CHUNK ((size_t)16384)

typedef struct chunk {
	size_t off, n;       /* slice of the param/grad blocks */
	size_t mom, ema;     /* slices of the state block, or SIZE_MAX */
	float wd;
	int train;
} chunk;

__global__ void k_sumsq(double *part, const chunk *ch, const float *g)
{
	__shared__ double red[256];
	const chunk c = ch[blockIdx.x];
	double acc = 0;
	if (c.train)
		for (size_t j = threadIdx.x; j < c.n; j += blockDim.x) {
			double v = g[c.off + j];
			acc += v * v;
		}
	red[threadIdx.x] = acc;
	__syncthreads();
	for (int k = blockDim.x / 2; k > 0; k >>= 1) {
		if (threadIdx.x < k)
			red[threadIdx.x] += red[threadIdx.x + k];
		__syncthreads();
	}
	if (threadIdx.x == 0)
		part[blockIdx.x] = red[0];
}

__global__ void k_update(const chunk *ch, float *w, const float *g, float *st, fv_sgd_hyper h,
			 float clip)
{
	const chunk c = ch[blockIdx.x];
	float wd = c.wd, l2 = h.decoupled ? 0.0f : wd;
	float dec = h.decoupled ? 1.0f - h.lr * wd : 1.0f, mu = h.momentum;
	float *b = c.mom != SIZE_MAX ? st + c.mom : NULL;
	float *e = c.ema != SIZE_MAX ? st + c.ema : NULL;
	for (size_t j = threadIdx.x; j < c.n; j += blockDim.x) {
		float wj = w[c.off + j];
		if (c.train) {
			float gj = clip * g[c.off + j] + l2 * wj;
			if (!b) {
				wj = wj * dec - h.lr * gj;
			} else {
				float bj = mu * b[j] + gj;
				b[j] = bj;
				wj = wj * dec - h.lr * (h.nesterov ? gj + mu * bj : bj);
			}
			w[c.off + j] = wj;
		}
		if (e && h.ema_decay > 0)
			e[j] = h.ema_decay * e[j] + (1.0f - h.ema_decay) * wj;
	}
}

extern "C" int fv_cuda_sgd_new(fv_backend_ctx *ctx, const fv_sgd_seg *segs, size_t nseg,
			       fv_plan **out)
{
	*out = NULL;
	size_t n = 0;
	for (size_t i = 0; i < nseg; i++)
		n += (segs[i].n + CHUNK - 1) / CHUNK;
	if (n > ctx->part_n)
		return fv_err_set(FV_E_TOOBIG, "cuda sgd: %zu chunks, at most %zu", n, ctx->part_n);
	chunk *h = (chunk *)calloc(n ? n : 1, sizeof *h);
	fv_plan *p = (fv_plan *)calloc(1, sizeof *p);
	int rc = h && p ? 0 : ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < nseg && !rc; i++)
		for (size_t s = 0; s < segs[i].n; s += CHUNK) {
			const fv_sgd_seg *g = &segs[i];
			h[k++] = (chunk){ g->off + s, g->n - s < CHUNK ? g->n - s : CHUNK,
					  g->mom == SIZE_MAX ? SIZE_MAX : g->mom + s,
					  g->ema == SIZE_MAX ? SIZE_MAX : g->ema + s, g->wd, g->train };
		}
	if (!rc) {
		p->ctx = ctx;
		p->nchunk = n;
		rc = fv_cu_alloc(&p->chunks, (n ? n : 1) * sizeof *h);
	}
	if (!rc)
		rc = fv_cuda_to_device(ctx, p->chunks, h, n * sizeof *h);
	free(h);
	if (rc && p && p->ctx)
		fv_cuda_plan_destroy(&p);
	else if (rc)
		free(p), p = NULL;
	*out = p;
	return rc;
}

extern "C" int fv_cuda_sgd_step(fv_plan *p, void *params, const void *grads, void *state,
				const fv_sgd_hyper *h, double *sumsq)
{
	fv_backend_ctx *ctx = p->ctx;
	const chunk *ch = (const chunk *)p->chunks;
	*sumsq = 0;
	if (!p->nchunk)
		return 0;
	unsigned nb = (unsigned)p->nchunk;
	k_sumsq<<<nb, 256, 0, ctx->strm>>>(ctx->part, ch, (const float *)grads);
	int rc = fv_cu_check(cudaGetLastError(), "sgd norm");
	if (!rc)
		rc = fv_cuda_to_host(ctx, ctx->hpart, ctx->part, p->nchunk * sizeof(double));
	if (rc)
		return rc;
	double ss = 0;
	for (size_t i = 0; i < p->nchunk; i++)
		ss += ctx->hpart[i];
	*sumsq = ss;
	double norm = sqrt(ss);
	if (!isfinite(norm))
		return FV_E_CORRUPT;
	float clip = 1.0f;
	if (h->clip_norm > 0 && norm > h->clip_norm)
		clip = (float)(h->clip_norm / (norm + 1e-6)); /* torch clip_grad_norm_ */
	k_update<<<nb, 256, 0, ctx->strm>>>(ch, (float *)params, (const float *)grads,
					    (float *)state, *h, clip);
	return fv_cu_check(cudaGetLastError(), "sgd update");
}
