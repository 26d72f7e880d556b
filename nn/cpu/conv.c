/* nn/cpu/conv.c — convolution forward, backward data, backward filter with
 * oneDNN. Parameters stay plain (K x C/g x R x R) in the net's parameter
 * block, which the optimizer and checkpoints see; each call reorders them to
 * the layout the chosen kernel wants (a small pass next to the convolution)
 * and reorders the filter gradient back.
 *
 *   x: n x c x h x w (fmt_x)  ->  y: n x k x oh x ow (fmt_y)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fv_error.h"
#include "nn/cpu/cpu.h"

static dnnl_memory_desc_t wplain(const fv_op_desc *d)
{
	dnnl_memory_desc_t md;
	if (d->groups > 1) {
		dnnl_dims_t w = { d->groups, d->k / d->groups, d->c / d->groups, d->r, d->r };
		dnnl_memory_desc_init_by_tag(&md, 5, w, dnnl_f32, dnnl_goihw);
	} else {
		dnnl_dims_t w = { d->k, d->c, d->r, d->r };
		dnnl_memory_desc_init_by_tag(&md, 4, w, dnnl_f32, dnnl_oihw);
	}
	return md;
}

static dnnl_memory_desc_t wany(const fv_op_desc *d)
{
	dnnl_memory_desc_t md = wplain(d);
	dnnl_memory_desc_t any;
	dnnl_memory_desc_init_by_tag(&any, md.ndims, md.dims, dnnl_f32, dnnl_format_tag_any);
	return any;
}

/* A reorder from the plain weights to what pd wants, with its buffer, unless
 * they already agree (then *buf stays NULL and the plain weights are used). */
static int wreorder(fv_plan *p, const dnnl_memory_desc_t *want, int plain_to_want,
		    dnnl_primitive_t *prim, void **buf)
{
	dnnl_memory_desc_t pl = wplain(&p->d);
	if (dnnl_memory_desc_equal(&pl, want))
		return 0;
	*buf = fv_cpu_alloc(dnnl_memory_desc_get_size(want));
	if (!*buf)
		return ENOMEM;
	return plain_to_want ? fv_cpu_reorder(prim, p->ctx, &pl, want)
			     : fv_cpu_reorder(prim, p->ctx, want, &pl);
}

static int conv_plan(fv_plan *p)
{
	const fv_op_desc *d = &p->d;
	dnnl_memory_desc_t x = fv_cpu_md(d->n, d->c, d->h, d->w, d->fmt_x);
	dnnl_memory_desc_t y = fv_cpu_md(d->n, d->k, d->oh, d->ow, d->fmt_y);
	dnnl_memory_desc_t w = wany(d), b, pl = wplain(d);
	dnnl_dims_t bd = { d->k };
	dnnl_memory_desc_init_by_tag(&b, 1, bd, dnnl_f32, dnnl_x);
	dnnl_dims_t st = { d->stride, d->stride }, dl = { d->dil - 1, d->dil - 1 };
	/* symmetric padding: oneDNN's output size formula then matches ours */
	dnnl_dims_t pad_l = { d->pad, d->pad }, pad_r = { d->pad, d->pad };
	dnnl_convolution_desc_t cd;
	dnnl_primitive_desc_t fpd = NULL, pd = NULL;
	int rc = fv_cpu_check(dnnl_dilated_convolution_forward_desc_init(&cd,
		d->train ? dnnl_forward_training : dnnl_forward_inference, p->alg,
		&x, &w, d->bias ? &b : NULL, &y, st, dl, pad_l, pad_r), "conv desc");
	if (!rc)
		rc = fv_cpu_pd(&fpd, &cd, p->ctx, NULL, "conv forward");
	if (rc)
		goto out;
	const dnnl_memory_desc_t *wf = dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 0);
	if ((rc = wreorder(p, wf, 1, &p->wre_f, &p->wf)) ||
	    (rc = fv_cpu_mem(p, M_X, &x)) || (rc = fv_cpu_mem(p, M_Y, &y)) ||
	    (rc = fv_cpu_mem(p, M_W, wf)) || (rc = fv_cpu_mem(p, M_B, &b)) ||
	    (rc = fv_cpu_mem(p, M_WPLAIN, &pl)))
		goto out;
	rc = fv_cpu_check(dnnl_primitive_create(&p->fwd, fpd), "conv forward");
	if (rc || !d->train)
		goto out;

	/* backward data */
	rc = fv_cpu_check(dnnl_dilated_convolution_backward_data_desc_init(&cd,
		p->alg, &x, &w, &y, st, dl, pad_l, pad_r), "conv bwd desc");
	if (!rc)
		rc = fv_cpu_pd(&pd, &cd, p->ctx, fpd, "conv backward data");
	if (rc)
		goto out;
	const dnnl_memory_desc_t *wb = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
	if ((rc = wreorder(p, wb, 1, &p->wre_b, &p->wb)) || (rc = fv_cpu_mem(p, M_WB, wb)) ||
	    (rc = fv_cpu_mem(p, M_DX, &x)) || (rc = fv_cpu_mem(p, M_DY, &y)))
		goto out;
	rc = fv_cpu_prim(&p->bwd, pd, "conv backward data");
	pd = NULL;
	if (rc)
		goto out;

	/* backward weights */
	rc = fv_cpu_check(dnnl_dilated_convolution_backward_weights_desc_init(&cd,
		dnnl_convolution_direct, &x, &w, d->bias ? &b : NULL, &y, st, dl, pad_l, pad_r),
		"conv bwd weights desc");
	if (!rc)
		rc = fv_cpu_pd(&pd, &cd, p->ctx, fpd, "conv backward weights");
	if (rc)
		goto out;
	const dnnl_memory_desc_t *dw = dnnl_primitive_desc_query_md(pd, dnnl_query_diff_weights_md, 0);
	if ((rc = wreorder(p, dw, 0, &p->dwre, &p->dwb)) || (rc = fv_cpu_mem(p, M_DW, dw)) ||
	    (rc = fv_cpu_mem(p, M_DB, &b)) || (rc = fv_cpu_mem(p, M_AUX, &pl)))
		goto out;
	/* a frozen bias still needs somewhere to go: dss is that scratch */
	if (d->bias && (!(p->dss = fv_cpu_alloc((size_t)d->k * sizeof(float))) ||
			!(p->ws = fv_cpu_alloc(dnnl_memory_desc_get_size(dw))))) {
		rc = ENOMEM;
		goto out;
	}
	rc = fv_cpu_prim(&p->bwdw, pd, "conv backward weights");
	pd = NULL;
out:
	if (pd)
		dnnl_primitive_desc_destroy(pd);
	if (fpd)
		dnnl_primitive_desc_destroy(fpd);
	return rc;
}

/* Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions with >= 64 channels
 * in and out, where oneDNN has it (AVX-512): fewer multiplies than direct.
 * Below 64 channels the direct kernels are faster (16 ch at 28x28: direct
 * 2.3 ms vs Winograd 7.3 ms forward; 64 ch at 14x14: 15.0 vs 12.6 ms;
 * 256 ch at 7x7: 67 vs 30 ms; batch 128, one thread, best of 12; see
 * nn/cpu/README). FV_CPU_WINO=0 turns it off, =1 forces it on. */
int fv_cpu_conv_plan(fv_plan *p)
{
	const fv_op_desc *d = &p->d;
	const char *env = getenv("FV_CPU_WINO");
	int wino = d->r == 3 && d->stride == 1 && d->dil == 1 && d->groups == 1 &&
		   ((d->c >= 64 && d->k >= 64) || (env && !strcmp(env, "1"))) &&
		   !(env && !strcmp(env, "0"));
	if (wino) {
		p->alg = dnnl_convolution_winograd;
		if (!conv_plan(p))
			return 0;
		fv_plan_reset(p);
	}
	p->alg = dnnl_convolution_direct;
	return conv_plan(p);
}

int fv_cpu_conv_forward(fv_tensor *y, const fv_tensor *x, const void *w, const void *b,
			fv_plan *p)
{
	const void *wk = w;
	if (p->wre_f) {
		fv_cpu_arg r[] = { { DNNL_ARG_FROM, M_WPLAIN, w }, { DNNL_ARG_TO, M_W, p->wf } };
		int rc = fv_cpu_exec(p, p->wre_f, 2, r);
		if (rc)
			return rc;
		wk = p->wf;
	}
	fv_cpu_arg a[] = { { DNNL_ARG_SRC, M_X, x->data }, { DNNL_ARG_WEIGHTS, M_W, wk },
			   { DNNL_ARG_DST, M_Y, y->data }, { DNNL_ARG_BIAS, M_B, b } };
	return fv_cpu_exec(p, p->fwd, p->d.bias ? 4 : 3, a);
}

int fv_cpu_conv_backward_data(fv_tensor *dx, const fv_tensor *dy, const void *w, fv_plan *p)
{
	const void *wk = w;
	if (p->wre_b) {
		fv_cpu_arg r[] = { { DNNL_ARG_FROM, M_WPLAIN, w }, { DNNL_ARG_TO, M_WB, p->wb } };
		int rc = fv_cpu_exec(p, p->wre_b, 2, r);
		if (rc)
			return rc;
		wk = p->wb;
	}
	fv_cpu_arg a[] = { { DNNL_ARG_DIFF_DST, M_DY, dy->data }, { DNNL_ARG_WEIGHTS, M_WB, wk },
			   { DNNL_ARG_DIFF_SRC, M_DX, dx->data } };
	return fv_cpu_exec(p, p->bwd, 3, a);
}

int fv_cpu_conv_backward_filter(void *dw, void *db, const fv_tensor *dy, const fv_tensor *x,
				fv_plan *p)
{
	if (!dw && !db)
		return 0;
	/* frozen weights with a trainable bias: the weight gradient goes to
	 * the reorder buffer or the plan's scratch and is not copied out */
	void *dwk = p->dwb ? p->dwb : dw ? dw : p->ws;
	fv_cpu_arg a[] = { { DNNL_ARG_SRC, M_X, x->data }, { DNNL_ARG_DIFF_DST, M_DY, dy->data },
			   { DNNL_ARG_DIFF_WEIGHTS, M_DW, dwk },
			   { DNNL_ARG_DIFF_BIAS, M_DB, db ? db : p->dss } };
	int rc = fv_cpu_exec(p, p->bwdw, p->d.bias ? 4 : 3, a);
	if (!rc && p->dwre && dw) {
		fv_cpu_arg r[] = { { DNNL_ARG_FROM, M_DW, p->dwb }, { DNNL_ARG_TO, M_AUX, dw } };
		rc = fv_cpu_exec(p, p->dwre, 2, r);
	}
	return rc;
}
