/* nn/cpu/norm.c — batch norm, activations and pooling with oneDNN.
 *
 * batch norm   x, y: n x c x h x w; gamma, beta, running mean/var: c
 * activation   x, y: n x c x h x w (relu, relu6 = clip[0,6], silu = swish, sigmoid)
 * pooling      x: n x c x h x w -> y: n x c x oh x ow (r == 0: global average)
 */
#include <errno.h>
#include <stdlib.h>

#include "fv_error.h"
#include "nn/graph.h"
#include "nn/cpu/cpu.h"

/* ---- batch norm ------------------------------------------------------------ */

static dnnl_memory_desc_t vec(int c)
{
	dnnl_memory_desc_t md;
	dnnl_dims_t d = { c };
	dnnl_memory_desc_init_by_tag(&md, 1, d, dnnl_f32, dnnl_x);
	return md;
}

int fv_cpu_bn_plan(fv_plan *p)
{
	const fv_op_desc *d = &p->d;
	dnnl_memory_desc_t x = fv_cpu_md(d->n, d->c, d->h, d->w, d->fmt_x), v = vec(d->c);
	/* fuse_add: the ReLU comes after the residual (fv_cpu_bn_add_*) */
	unsigned fl = dnnl_use_scale | dnnl_use_shift |
		      (d->fuse_relu && !d->fuse_add ? dnnl_fuse_norm_relu : 0);
	dnnl_batch_normalization_desc_t bd;
	dnnl_primitive_desc_t pd = NULL, tpd = NULL;
	int rc = 0;
	int roles[] = { M_W, M_B, M_AUX, M_AUX2, M_DW, M_DB };
	for (size_t i = 0; i < sizeof roles / sizeof roles[0] && !rc; i++)
		rc = fv_cpu_mem(p, roles[i], &v);
	if (!rc)
		rc = fv_cpu_mem(p, M_X, &x);
	if (!rc)
		rc = fv_cpu_mem(p, M_Y, &x);
	if (!rc)
		rc = fv_cpu_check(dnnl_batch_normalization_forward_desc_init(&bd,
			dnnl_forward_inference, &x, d->eps, fl | dnnl_use_global_stats), "bn desc");
	if (!rc)
		rc = fv_cpu_pd(&pd, &bd, p->ctx, NULL, "bn inference");
	if (!rc)
		rc = fv_cpu_prim(&p->fwd, pd, "bn inference");
	if (rc || !d->train)
		return rc;
	p->mean = fv_cpu_alloc((size_t)d->c * sizeof(float));
	p->var = fv_cpu_alloc((size_t)d->c * sizeof(float));
	p->dss = fv_cpu_alloc((size_t)2 * d->c * sizeof(float));
	if (!p->mean || !p->var || !p->dss)
		return ENOMEM;
	rc = fv_cpu_check(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_training,
		&x, d->eps, fl), "bn desc");
	if (!rc)
		rc = fv_cpu_pd(&tpd, &bd, p->ctx, NULL, "bn training");
	if (!rc)
		rc = fv_cpu_check(dnnl_primitive_create(&p->fwdt, tpd), "bn training");
	const dnnl_memory_desc_t *ws = rc ? NULL
		: dnnl_primitive_desc_query_md(tpd, dnnl_query_workspace_md, 0);
	if (ws && ws->ndims > 0) { /* the fused ReLU's mask */
		rc = fv_cpu_mem(p, M_WB, ws);
		if (!rc && !(p->ws = fv_cpu_alloc(dnnl_memory_desc_get_size(ws))))
			rc = ENOMEM;
	}
	if (!rc)
		rc = fv_cpu_check(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward,
			&x, &x, d->eps, fl), "bn backward desc");
	if (!rc)
		rc = fv_cpu_pd(&pd, &bd, p->ctx, tpd, "bn backward");
	if (!rc)
		rc = fv_cpu_prim(&p->bwd, pd, "bn backward");
	if (!rc)
		rc = fv_cpu_mem(p, M_DX, &x);
	if (!rc)
		rc = fv_cpu_mem(p, M_DY, &x);
	if (tpd)
		dnnl_primitive_desc_destroy(tpd);
	return rc;
}

int fv_cpu_bn_forward_train(fv_tensor *y, const fv_tensor *x, const void *gamma,
			    const void *beta, void *run_mean, void *run_var, float momentum,
			    fv_plan *p)
{
	fv_cpu_arg a[] = { { DNNL_ARG_SRC, M_X, x->data }, { DNNL_ARG_DST, M_Y, y->data },
			   { DNNL_ARG_SCALE, M_W, gamma }, { DNNL_ARG_SHIFT, M_B, beta },
			   { DNNL_ARG_MEAN, M_AUX, p->mean }, { DNNL_ARG_VARIANCE, M_AUX2, p->var },
			   { DNNL_ARG_WORKSPACE, M_WB, p->ws } };
	int rc = fv_cpu_exec(p, p->fwdt, p->ws ? 7 : 6, a);
	if (rc)
		return rc;
	/* running statistics: PyTorch's convention, unbiased variance */
	double m = (double)p->d.n * p->d.h * p->d.w;
	float unb = m > 1 ? (float)(m / (m - 1)) : 1.0f;
	float *rm = run_mean, *rv = run_var;
	for (int c = 0; c < p->d.c; c++) {
		rm[c] = (1 - momentum) * rm[c] + momentum * p->mean[c];
		rv[c] = (1 - momentum) * rv[c] + momentum * p->var[c] * unb;
	}
	return 0;
}

int fv_cpu_bn_forward_infer(fv_tensor *y, const fv_tensor *x, const void *gamma,
			    const void *beta, const void *run_mean, const void *run_var,
			    fv_plan *p)
{
	fv_cpu_arg a[] = { { DNNL_ARG_SRC, M_X, x->data }, { DNNL_ARG_DST, M_Y, y->data },
			   { DNNL_ARG_SCALE, M_W, gamma }, { DNNL_ARG_SHIFT, M_B, beta },
			   { DNNL_ARG_MEAN, M_AUX, run_mean }, { DNNL_ARG_VARIANCE, M_AUX2, run_var } };
	return fv_cpu_exec(p, p->fwd, 6, a);
}

int fv_cpu_bn_backward(fv_tensor *dx, void *dgamma, void *dbeta, const fv_tensor *dy,
		       const fv_tensor *x, const void *gamma, const void *beta, fv_plan *p)
{
	/* uses the batch statistics of the last training forward */
	fv_cpu_arg a[] = { { DNNL_ARG_SRC, M_X, x->data }, { DNNL_ARG_DIFF_DST, M_DY, dy->data },
			   { DNNL_ARG_SCALE, M_W, gamma }, { DNNL_ARG_SHIFT, M_B, beta },
			   { DNNL_ARG_MEAN, M_AUX, p->mean }, { DNNL_ARG_VARIANCE, M_AUX2, p->var },
			   { DNNL_ARG_DIFF_SRC, M_DX, dx->data },
			   { DNNL_ARG_DIFF_SCALE, M_DW, dgamma ? dgamma : p->dss },
			   { DNNL_ARG_DIFF_SHIFT, M_DB, dbeta ? dbeta : p->dss + p->d.c },
			   { DNNL_ARG_WORKSPACE, M_WB, p->ws } };
	return fv_cpu_exec(p, p->bwd, p->ws ? 10 : 9, a);
}

/* Batch norm, then the residual and the ReLU in one pass over y: the same
 * arithmetic as a separate add node, and the graph's fused form on the CPU
 * too (nn/run.c fuse()). */
static void add_relu(float *y, const float *z, size_t n)
{
	long m = (long)n;
#pragma omp parallel for simd schedule(static)
	for (long i = 0; i < m; i++) {
		float v = y[i] + z[i];
		y[i] = v > 0 ? v : 0;
	}
}

int fv_cpu_bn_add_forward_train(fv_tensor *y, const fv_tensor *x, const fv_tensor *z,
				const void *gamma, const void *beta, void *run_mean,
				void *run_var, float momentum, fv_plan *p)
{
	int rc = fv_cpu_bn_forward_train(y, x, gamma, beta, run_mean, run_var, momentum, p);
	if (!rc)
		add_relu(y->data, z->data, p->count);
	p->last_y = y->data;
	return rc;
}

int fv_cpu_bn_add_forward_infer(fv_tensor *y, const fv_tensor *x, const fv_tensor *z,
				const void *gamma, const void *beta, const void *run_mean,
				const void *run_var, fv_plan *p)
{
	int rc = fv_cpu_bn_forward_infer(y, x, gamma, beta, run_mean, run_var, p);
	if (!rc)
		add_relu(y->data, z->data, p->count);
	return rc;
}

int fv_cpu_bn_add_backward(fv_tensor *dx, fv_tensor *dz, void *dgamma, void *dbeta,
			   const fv_tensor *dy, const fv_tensor *x, const void *gamma,
			   const void *beta, fv_plan *p)
{
	/* dy (relu's output gradient, dead after this op) masked by y is the
	 * sum's gradient: z's share, and the BN's */
	float *g = dy->data, *gz = dz->data;
	const float *yd = p->last_y;
	long m = (long)p->count;
	if (!yd)
		return fv_err_set(FV_E_CONFIG, "bn add backward: no training forward yet");
#pragma omp parallel for simd schedule(static)
	for (long i = 0; i < m; i++)
		gz[i] = g[i] = yd[i] > 0 ? g[i] : 0;
	return fv_cpu_bn_backward(dx, dgamma, dbeta, dy, x, gamma, beta, p);
}

/* ---- activations ----------------------------------------------------------- */

static void act_alg(int act, dnnl_alg_kind_t *alg, float *alpha, float *beta)
{
	*alpha = 0, *beta = 0;
	switch (act) {
	case FV_ACT_RELU6: *alg = dnnl_eltwise_clip_v2; *beta = 6; break;
	case FV_ACT_SILU: *alg = dnnl_eltwise_swish; *alpha = 1; break;
	case FV_ACT_SIGMOID: *alg = dnnl_eltwise_logistic; break;
	default: *alg = dnnl_eltwise_relu; break;
	}
}

int fv_cpu_act_plan(fv_plan *p)
{
	const fv_op_desc *d = &p->d;
	dnnl_memory_desc_t x = fv_cpu_md(d->n, d->c, d->h, d->w, d->fmt_x);
	dnnl_alg_kind_t alg;
	float al, be;
	act_alg(d->act, &alg, &al, &be);
	dnnl_eltwise_desc_t ed;
	dnnl_primitive_desc_t fpd = NULL, pd = NULL;
	int rc = fv_cpu_check(dnnl_eltwise_forward_desc_init(&ed, d->train ? dnnl_forward_training
		: dnnl_forward_inference, alg, &x, al, be), "eltwise desc");
	if (!rc)
		rc = fv_cpu_pd(&fpd, &ed, p->ctx, NULL, "eltwise");
	if (!rc)
		rc = fv_cpu_check(dnnl_primitive_create(&p->fwd, fpd), "eltwise");
	int roles[] = { M_X, M_Y, M_DX, M_DY };
	for (size_t i = 0; i < 4 && !rc; i++)
		rc = fv_cpu_mem(p, roles[i], &x);
	if (!rc && d->train)
		rc = fv_cpu_check(dnnl_eltwise_backward_desc_init(&ed, alg, &x, &x, al, be),
				  "eltwise backward desc");
	if (!rc && d->train)
		rc = fv_cpu_pd(&pd, &ed, p->ctx, fpd, "eltwise backward");
	if (!rc && d->train)
		rc = fv_cpu_prim(&p->bwd, pd, "eltwise backward");
	if (fpd)
		dnnl_primitive_desc_destroy(fpd);
	return rc;
}

int fv_cpu_act_forward(fv_tensor *y, const fv_tensor *x, fv_plan *p)
{
	fv_cpu_arg a[] = { { DNNL_ARG_SRC, M_X, x->data }, { DNNL_ARG_DST, M_Y, y->data } };
	return fv_cpu_exec(p, p->fwd, 2, a);
}

int fv_cpu_act_backward(fv_tensor *dx, const fv_tensor *dy, const fv_tensor *x,
			const fv_tensor *y, fv_plan *p)
{
	(void)y;
	fv_cpu_arg a[] = { { DNNL_ARG_SRC, M_X, x->data }, { DNNL_ARG_DIFF_DST, M_DY, dy->data },
			   { DNNL_ARG_DIFF_SRC, M_DX, dx->data } };
	return fv_cpu_exec(p, p->bwd, 3, a);
}

/* ---- pooling --------------------------------------------------------------- */

int fv_cpu_pool_plan(fv_plan *p)
{
	const fv_op_desc *d = &p->d;
	dnnl_memory_desc_t x = fv_cpu_md(d->n, d->c, d->h, d->w, d->fmt_x);
	dnnl_memory_desc_t y = fv_cpu_md(d->n, d->k, d->oh, d->ow, d->fmt_y);
	int glob = d->r == 0;
	dnnl_dims_t st = { glob ? 1 : d->stride, glob ? 1 : d->stride };
	dnnl_dims_t ker = { glob ? d->h : d->r, glob ? d->w : d->r }, dil = { 0, 0 };
	dnnl_dims_t pad = { glob ? 0 : d->pad, glob ? 0 : d->pad };
	/* PyTorch's defaults: average pooling counts the zero padding */
	dnnl_alg_kind_t alg = d->pool_max ? dnnl_pooling_max : dnnl_pooling_avg_include_padding;
	dnnl_pooling_v2_desc_t pdsc;
	dnnl_primitive_desc_t fpd = NULL, pd = NULL;
	int rc = fv_cpu_check(dnnl_pooling_v2_forward_desc_init(&pdsc, d->train
		? dnnl_forward_training : dnnl_forward_inference, alg, &x, &y, st, ker, dil, pad,
		pad), "pool desc");
	if (!rc)
		rc = fv_cpu_pd(&fpd, &pdsc, p->ctx, NULL, "pool");
	if (!rc)
		rc = fv_cpu_check(dnnl_primitive_create(&p->fwd, fpd), "pool");
	if (!rc)
		rc = fv_cpu_mem(p, M_X, &x);
	if (!rc)
		rc = fv_cpu_mem(p, M_Y, &y);
	if (!rc)
		rc = fv_cpu_mem(p, M_DX, &x);
	if (!rc)
		rc = fv_cpu_mem(p, M_DY, &y);
	const dnnl_memory_desc_t *ws = rc ? NULL
		: dnnl_primitive_desc_query_md(fpd, dnnl_query_workspace_md, 0);
	if (ws && ws->ndims > 0) {
		rc = fv_cpu_mem(p, M_AUX, ws);
		if (!rc && !(p->ws = fv_cpu_alloc(dnnl_memory_desc_get_size(ws))))
			rc = ENOMEM;
	}
	if (!rc && d->train)
		rc = fv_cpu_check(dnnl_pooling_v2_backward_desc_init(&pdsc, alg, &x, &y, st, ker,
			dil, pad, pad), "pool backward desc");
	if (!rc && d->train)
		rc = fv_cpu_pd(&pd, &pdsc, p->ctx, fpd, "pool backward");
	if (!rc && d->train)
		rc = fv_cpu_prim(&p->bwd, pd, "pool backward");
	if (fpd)
		dnnl_primitive_desc_destroy(fpd);
	return rc;
}

int fv_cpu_pool_forward(fv_tensor *y, const fv_tensor *x, fv_plan *p, int train)
{
	(void)train;
	fv_cpu_arg a[] = { { DNNL_ARG_SRC, M_X, x->data }, { DNNL_ARG_DST, M_Y, y->data },
			   { DNNL_ARG_WORKSPACE, M_AUX, p->ws } };
	return fv_cpu_exec(p, p->fwd, p->ws ? 3 : 2, a);
}

int fv_cpu_pool_backward(fv_tensor *dx, const fv_tensor *dy, fv_plan *p)
{
	fv_cpu_arg a[] = { { DNNL_ARG_DIFF_DST, M_DY, dy->data },
			   { DNNL_ARG_DIFF_SRC, M_DX, dx->data },
			   { DNNL_ARG_WORKSPACE, M_AUX, p->ws } };
	return fv_cpu_exec(p, p->bwd, p->ws ? 3 : 2, a);
}
