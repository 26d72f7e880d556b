/* exporter/fold.c — a trained fv_net into the exporter's FP32 graph:
 * batch norm folded into the convolution or linear layer before it
 * (w' = w * g / sqrt(v + eps), b' = (b - m) * g / sqrt(v + eps) + beta),
 * ReLU/ReLU6 fused into the op before them when nothing else reads that
 * op's output, dropout and flatten dropped. A batch norm with no conv
 * before it becomes a per-channel 1x1 depthwise convolution. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exporter/xmodel.h"
#include "fv_error.h"
#include "nn/walk.h"

typedef struct fold {
	const fv_net *net;
	const float *const *pdata;
	fv_xmodel *m;
	int *val;        /* node -> value id */
	int *owner;      /* value -> the last node mapped onto it (for consumer counts) */
} fold;

static fv_xop *new_op(fold *f, enum fv_rt_opkind kind, int in0, int in1, const fv_walk_node *n)
{
	fv_xmodel *m = f->m;
	if (m->nops == m->cap) {
		int cap = m->cap ? 2 * m->cap : 32;
		fv_xop *o = realloc(m->ops, sizeof *o * (size_t)cap);
		if (!o)
			return NULL;
		m->ops = o, m->cap = cap;
	}
	fv_xop *o = &m->ops[m->nops++];
	memset(o, 0, sizeof *o);
	o->kind = kind, o->in0 = in0, o->in1 = in1;
	o->c = n->c, o->h = n->h, o->w = n->w;
	fv_xmodel_vshape(m, in0, &o->ic, &o->ih, &o->iw);
	o->k = n->k, o->stride = n->stride, o->pad = n->pad, o->dil = n->dil ? n->dil : 1;
	o->groups = n->groups ? n->groups : 1;
	return o;
}

static int gemm_op(fold *f, const fv_walk_node *n, int id)
{
	int in = f->val[n->in[0]];
	fv_xop *o = new_op(f, n->op == FV_WALK_CONV ? FV_RT_CONV : FV_RT_LINEAR, in, -1, n);
	if (!o)
		return ENOMEM;
	if (o->kind == FV_RT_LINEAR)
		o->k = o->stride = o->dil = o->groups = 1, o->pad = 0;
	size_t wn = fv_xop_wcount(o);
	o->wt = malloc(wn * sizeof *o->wt);
	o->bias = calloc((size_t)o->c, sizeof *o->bias);
	if (!o->wt || !o->bias)
		return ENOMEM;
	fv_param *p = fv_net_params((fv_net *)f->net) + n->param0;
	if (p[0].numel != wn)
		return fv_err_set(FV_E_MISMATCH, "%s: %zu weights, expected %zu", p[0].name, p[0].numel, wn);
	memcpy(o->wt, f->pdata[n->param0], wn * sizeof *o->wt);
	if (n->bias && n->nparam > 1)
		memcpy(o->bias, f->pdata[n->param0 + 1], (size_t)o->c * sizeof *o->bias);
	f->val[id] = f->m->nops, f->owner[f->m->nops] = id;
	return 0;
}

static int bn(fold *f, const fv_walk_node *n, int id)
{
	const float *g = f->pdata[n->param0], *beta = f->pdata[n->param0 + 1];
	const float *mean = f->pdata[n->param0 + 2], *var = f->pdata[n->param0 + 3];
	float eps = fv_walk_bn_eps(f->net);
	int v = f->val[n->in[0]];
	fv_walk_node prev;
	fv_walk_get(f->net, f->owner[v], &prev);
	fv_xop *o = v > 0 ? &f->m->ops[v - 1] : NULL;
	int fold_in = o && (o->kind == FV_RT_CONV || o->kind == FV_RT_LINEAR) && o->act == FV_RT_NONE &&
		      prev.consumers == 1 && f->owner[v] == n->in[0];
	if (!fold_in) {
		/* y = x * s + t as a depthwise 1x1 convolution. */
		fv_walk_node dw = *n;
		dw.k = 1, dw.stride = 1, dw.pad = 0, dw.dil = 1, dw.groups = n->c;
		o = new_op(f, FV_RT_CONV, v, -1, &dw);
		if (!o)
			return ENOMEM;
		o->wt = malloc((size_t)o->c * sizeof *o->wt);
		o->bias = calloc((size_t)o->c, sizeof *o->bias);
		if (!o->wt || !o->bias)
			return ENOMEM;
		for (int c = 0; c < o->c; c++)
			o->wt[c] = 1.0f;
		v = f->m->nops;
	}
	size_t per = fv_xop_wcount(o) / (size_t)o->c;
	for (int c = 0; c < o->c; c++) {
		double s = g[c] / sqrt((double)var[c] + eps);
		for (size_t k = 0; k < per; k++)
			o->wt[(size_t)c * per + k] = (float)(o->wt[(size_t)c * per + k] * s);
		o->bias[c] = (float)((o->bias[c] - mean[c]) * s + beta[c]);
	}
	f->val[id] = v, f->owner[v] = id;
	return 0;
}

static int act(fold *f, const fv_walk_node *n, int id)
{
	int v = f->val[n->in[0]];
	enum fv_rt_act a = n->act == FV_ACT_RELU ? FV_RT_RELU : n->act == FV_ACT_RELU6 ? FV_RT_RELU6 :
			   n->act == FV_ACT_SIGMOID ? FV_RT_SIGMOID : FV_RT_SILU;
	fv_walk_node prev;
	fv_walk_get(f->net, f->owner[v], &prev);
	fv_xop *o = v > 0 ? &f->m->ops[v - 1] : NULL;
	if (o && (a == FV_RT_RELU || a == FV_RT_RELU6) && o->act == FV_RT_NONE && prev.consumers == 1 &&
	    f->owner[v] == n->in[0] && (o->kind == FV_RT_CONV || o->kind == FV_RT_LINEAR || o->kind == FV_RT_ADD)) {
		o->act = a;
		f->val[id] = v, f->owner[v] = id;
		return 0;
	}
	o = new_op(f, FV_RT_ACT, v, -1, n);
	if (!o)
		return ENOMEM;
	o->act = a;
	f->val[id] = f->m->nops, f->owner[f->m->nops] = id;
	return 0;
}

static int node(fold *f, int id)
{
	fv_walk_node n;
	fv_walk_get(f->net, id, &n);
	fv_xop *o = NULL;
	switch (n.op) {
	case FV_WALK_INPUT:
		f->val[id] = 0, f->owner[0] = id;
		return 0;
	case FV_WALK_CONV:
	case FV_WALK_LINEAR:
		return gemm_op(f, &n, id);
	case FV_WALK_BN:
		return bn(f, &n, id);
	case FV_WALK_ACT:
		return act(f, &n, id);
	case FV_WALK_DROPOUT:
		f->val[id] = f->val[n.in[0]];
		return 0;
	case FV_WALK_FLATTEN: {
		/* Only a linear layer may read a flattened value: it reads it as is. */
		int v = f->val[n.in[0]], c, h, w;
		fv_xmodel_vshape(f->m, v, &c, &h, &w);
		if (h * w != 1) {
			for (int j = id + 1; j < fv_walk_count(f->net); j++) {
				fv_walk_node u;
				fv_walk_get(f->net, j, &u);
				if ((u.in[0] == id || u.in[1] == id) && u.op != FV_WALK_LINEAR &&
				    u.op != FV_WALK_DROPOUT)
					return fv_err_set(FV_E_UNSUPPORTED, "node %d: a flattened %dx%dx%d value "
							  "feeds something other than a linear layer", id, c, h, w);
			}
			if (fv_walk_output(f->net) == id)
				return fv_err_set(FV_E_UNSUPPORTED, "node %d: the output is a flattened map", id);
		}
		f->val[id] = v;
		return 0;
	}
	case FV_WALK_MAXPOOL:
		o = new_op(f, FV_RT_MAXPOOL, f->val[n.in[0]], -1, &n);
		break;
	case FV_WALK_AVGPOOL:
		o = new_op(f, FV_RT_AVGPOOL, f->val[n.in[0]], -1, &n);
		break;
	case FV_WALK_GAP:
		o = new_op(f, FV_RT_GAP, f->val[n.in[0]], -1, &n);
		break;
	case FV_WALK_ADD:
		o = new_op(f, FV_RT_ADD, f->val[n.in[0]], f->val[n.in[1]], &n);
		break;
	case FV_WALK_SCALE:
		o = new_op(f, FV_RT_SCALE, f->val[n.in[0]], f->val[n.in[1]], &n);
		break;
	default:
		return fv_err_set(FV_E_UNSUPPORTED, "node %d: an op the exporter does not know", id);
	}
	if (!o)
		return ENOMEM;
	f->val[id] = f->m->nops, f->owner[f->m->nops] = id;
	return 0;
}

int fv_fold(const fv_net *net, const float *const *pdata, fv_xmodel **out)
{
	*out = NULL;
	int nn = fv_walk_count(net), rc = 0;
	fold f = { .net = net, .pdata = pdata };
	f.m = calloc(1, sizeof *f.m);
	f.val = malloc(sizeof *f.val * (size_t)nn);
	f.owner = malloc(sizeof *f.owner * (size_t)(nn + 1));
	if (!f.m || !f.val || !f.owner) {
		rc = ENOMEM;
		goto out;
	}
	fv_walk_node in;
	fv_walk_get(net, 0, &in);
	f.m->in_c = in.c, f.m->in_h = in.h, f.m->in_w = in.w;
	f.m->classes = fv_net_classes(net);
	for (int c = 0; c < 3; c++)
		f.m->mean[c] = 0, f.m->std[c] = 1;
	int outn = fv_walk_output(net);
	if (outn < 0) {
		rc = fv_err_set(FV_E_CONFIG, "the net has no output");
		goto out;
	}
	for (int id = 0; id < nn && !rc; id++)
		rc = node(&f, id);
	if (rc)
		goto out;
	if (f.m->nops < 1 || f.val[outn] != f.m->nops) {
		rc = fv_err_set(FV_E_UNSUPPORTED, "the output node %d is not the last op", outn);
		goto out;
	}
	*out = f.m;
	f.m = NULL;
out:
	if (f.m)
		fv_xmodel_destroy(&f.m);
	free(f.val);
	free(f.owner);
	return rc;
}
