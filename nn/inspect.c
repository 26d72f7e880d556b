/* nn/inspect.c — see inspect.h. Reads the graph (nn/graph.h) and drives the
 * backend directly; nn/run.c's backward is for training and computes
 * parameter gradients, which an explanation must not touch. */
#include "nn/inspect.h"
#include "nn/graph.h"
#include "nn/cpu/cpu.h"
#include "fv_error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int fv_net_cam_node(const fv_net *net)
{
	for (int i = net->nnodes - 1; i > 0; i--) {
		const fv_node *n = &net->nodes[i];
		if ((n->op == FV_OP_CONV || n->op == FV_OP_BN || n->op == FV_OP_ACT) && n->h * n->w > 1)
			return i;
	}
	return fv_err_set(FV_E_NOTFOUND, "no convolution, batch-norm or activation node with "
			  "spatial extent to explain");
}

static void *param(fv_net *net, const fv_node *n, int k)
{
	return (float *)net->dparams + net->poff[n->param0 + k];
}

/* dy flows unchanged into input j (add, eval-mode dropout). */
static int pass(fv_net *net, int j, fv_tensor *dy)
{
	fv_node *x = &net->nodes[j];
	if (!x->gready) {
		x->gready = 1;
		return net->be->copy(net->ctx, &x->dy, dy);
	}
	return net->be->add_into(net->ctx, &x->dy, dy);
}

static int back(fv_net *net, fv_node *n, const unsigned char *reach)
{
	const fv_backend *be = net->be;
	int a = n->in[0], b = n->in[1], rc = 0;
	fv_tensor *dy = &n->dy, *x = &net->nodes[a].y;
	fv_tensor *da = reach[a] ? fv_graph_grad_dst(net, a, 0) : NULL;
	switch (n->op) {
	case FV_OP_CONV:
		rc = da ? be->conv_backward_data(da, dy, param(net, n, 0), n->plan) : 0;
		break;
	case FV_OP_ACT:
		rc = da ? be->act_backward(da, dy, x, &n->y, n->plan) : 0;
		break;
	case FV_OP_AVGPOOL: case FV_OP_GAP:
		rc = da ? be->pool_backward(da, dy, n->plan) : 0;
		break;
	case FV_OP_FLATTEN:
		rc = da ? be->reorder_backward(da, dy, n->plan) : 0;
		break;
	case FV_OP_LINEAR:
		rc = da ? be->linear_backward(da, NULL, NULL, dy, x, param(net, n, 0), n->plan) : 0;
		break;
	case FV_OP_ADD:
		if (reach[a])
			rc = pass(net, a, dy);
		if (!rc && reach[b])
			rc = pass(net, b, dy);
		return rc;
	case FV_OP_DROPOUT: /* the identity outside training */
		return reach[a] ? pass(net, a, dy) : 0;
	case FV_OP_SCALE: {
		fv_tensor *ds = reach[b] ? fv_graph_grad_dst(net, b, 1) : NULL;
		if (!da && !ds)
			return 0;
		rc = be->scale_backward(da, ds, dy, x, &net->nodes[b].y, n->plan);
		if (!rc && ds)
			rc = fv_graph_grad_done(net, b, ds);
		if (!rc && da)
			rc = fv_graph_grad_done(net, a, da);
		return rc;
	}
	default:
		return fv_err_set(FV_E_UNSUPPORTED, "explain: cannot take gradients through node %d "
				  "(batch norm or max pooling after the explained node)",
				  (int)(n - net->nodes));
	}
	if (!rc && da)
		rc = fv_graph_grad_done(net, a, da);
	return rc;
}

/* A node's tensor to host NCHW. The CPU backend keeps inner activations in
 * oneDNN's blocked layout (nChw8c / nChw16c) and exports only plain ones,
 * which the training loop never needs more of; undo the blocking here. */
static int export(fv_net *net, float *host, const fv_tensor *t, int n)
{
	if (t->fmt == FV_FMT_PLAIN || net->be != &fv_backend_cpu)
		return net->be->tensor_export(net->ctx, host, t, n);
	int B = fv_cpu_block(t->fmt), cb = fv_cpu_cpad(t->c, t->fmt) / B;
	size_t hw = (size_t)t->h * t->w;
	const float *src = t->data;
	for (int i = 0; i < n; i++)
		for (int c = 0; c < t->c; c++)
			for (size_t j = 0; j < hw; j++)
				host[((size_t)i * t->c + c) * hw + j] =
					src[(((size_t)i * cb + c / B) * hw + j) * B + c % B];
	return 0;
}

int fv_net_node_grad(fv_net *net, int node, const int *classes, float *act, float *grad)
{
	int n = net->last_n, k = fv_net_classes(net), rc = 0;
	unsigned char *reach = NULL;
	if (!net->compiled || !net->last_n)
		return fv_err_set(FV_E_CONFIG, "explain: no forward pass yet");
	if (node <= 0 || node >= net->nnodes)
		return fv_err_set(FV_E_NOTFOUND, "explain: no node %d", node);
	if (act && (rc = export(net, act, &net->nodes[node].y, n)))
		return rc;
	if (!grad)
		return 0;
	if (!net->train_ok)
		return fv_err_set(FV_E_CONFIG, "explain: the net was compiled for inference only");
	if (!(reach = calloc((size_t)net->nnodes, 1)))
		return ENOMEM;
	/* reach[i]: node i lies on a path from `node` to the output */
	for (int i = node; i < net->nnodes; i++) {
		fv_node *x = &net->nodes[i];
		reach[i] = i == node || (x->in[0] >= node && reach[x->in[0]]) ||
			   (x->in[1] >= node && reach[x->in[1]]);
		x->gready = 0;
	}
	if (!reach[net->output]) {
		rc = fv_err_set(FV_E_NOTFOUND, "explain: the output does not depend on node %d", node);
		goto out;
	}
	memset(net->dlogits, 0, (size_t)n * k * sizeof *net->dlogits);
	for (int i = 0; i < n; i++) {
		if (classes[i] < 0 || classes[i] >= k) {
			rc = fv_err_set(FV_E_NOTFOUND, "explain: no class %d (the net has %d)", classes[i], k);
			goto out;
		}
		net->dlogits[(size_t)i * k + classes[i]] = 1;
	}
	fv_node *o = &net->nodes[net->output];
	if ((rc = net->be->tensor_import(net->ctx, &o->dy, net->dlogits, n)))
		goto out;
	o->gready = 1;
	for (int i = net->output; i > node && !rc; i--)
		if (reach[i] && net->nodes[i].gready)
			rc = back(net, &net->nodes[i], reach);
	if (!rc && !net->nodes[node].gready)
		rc = fv_err_set(FV_E_INTERNAL, "explain: no gradient reached node %d", node);
	if (!rc)
		rc = export(net, grad, &net->nodes[node].dy, n);
out:
	/* the next training backward starts from a clean slate */
	for (int i = 0; i < net->nnodes; i++)
		net->nodes[i].gready = 0;
	free(reach);
	return rc;
}
