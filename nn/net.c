/* nn/net.c — building a network: nodes with shape inference, the parameter
 * table (names, kinds, dims) and the model's size figures. Compiling and
 * running live in nn/run.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "fv_error.h"
#include "nn/graph.h"

int fv_net_new(fv_net **out, int channels, int height, int width)
{
	*out = NULL;
	if (channels < 1 || height < 1 || width < 1)
		return fv_err_set(FV_E_MISMATCH, "net input %dx%dx%d: every size must be >= 1",
				  channels, height, width);
	fv_net *net = calloc(1, sizeof *net);
	if (!net)
		return ENOMEM;
	net->cap = 32;
	net->nodes = calloc(net->cap, sizeof *net->nodes);
	if (!net->nodes) {
		free(net);
		return ENOMEM;
	}
	fv_node *in = &net->nodes[0];
	in->op = FV_OP_INPUT;
	in->in[0] = in->in[1] = -1;
	in->c = channels, in->h = height, in->w = width;
	net->nnodes = 1;
	net->output = -1;
	*out = net;
	return 0;
}

void fv_net_release(fv_net *net); /* nn/run.c: frees compiled state */

void fv_net_destroy(fv_net **p)
{
	if (!p || !*p)
		return;
	fv_net *net = *p;
	fv_net_release(net);
	for (size_t i = 0; i < net->nparams; i++)
		free((char *)net->params[i].name);
	free(net->params);
	free(net->nodes);
	free(net);
	*p = NULL;
}

/* ---- helpers -------------------------------------------------------------- */

static int check_in(const fv_net *net, int in, const char *what)
{
	if (in < 0)
		return in; /* propagate an earlier builder error */
	if (in >= net->nnodes)
		return fv_err_set(FV_E_NOTFOUND, "%s: no node %d", what, in);
	if (net->compiled)
		return fv_err_set(FV_E_UNSUPPORTED, "%s: net is already compiled", what);
	return 0;
}

static int add_node(fv_net *net, enum fv_node_op op, int a, int b, int c, int h, int w)
{
	if (net->nnodes == net->cap) {
		fv_node *n = realloc(net->nodes, 2 * net->cap * sizeof *n);
		if (!n)
			return -ENOMEM;
		net->nodes = n;
		net->cap *= 2;
	}
	fv_node *n = &net->nodes[net->nnodes];
	memset(n, 0, sizeof *n);
	n->op = op;
	n->in[0] = a, n->in[1] = b;
	n->c = c, n->h = h, n->w = w;
	n->param0 = (int)net->nparams;
	n->stride = n->dil = n->groups = 1;
	return net->nnodes++;
}

static int add_param(fv_net *net, const char *layer, const char *suffix,
		     enum fv_param_kind kind, int ndim, int d0, int d1, int d2, int d3)
{
	if (net->nparams == net->pcap) {
		size_t cap = net->pcap ? 2 * net->pcap : 32;
		fv_param *p = realloc(net->params, cap * sizeof *p);
		if (!p)
			return ENOMEM;
		net->params = p;
		net->pcap = cap;
	}
	for (size_t i = 0; i < net->nparams; i++) {
		const char *nm = net->params[i].name;
		size_t l = strlen(layer);
		if (!strncmp(nm, layer, l) && nm[l] == '.' && !strcmp(nm + l + 1, suffix))
			return fv_err_set(FV_E_DUPLICATE, "parameter %s.%s: name used twice",
					  layer, suffix);
	}
	char *name = malloc(strlen(layer) + strlen(suffix) + 2);
	if (!name)
		return ENOMEM;
	sprintf(name, "%s.%s", layer, suffix);
	fv_param *p = &net->params[net->nparams++];
	memset(p, 0, sizeof *p);
	p->name = name;
	p->kind = kind;
	p->ndim = ndim;
	int d[4] = { d0, d1, d2, d3 };
	p->numel = 1;
	for (int i = 0; i < 4; i++) {
		p->dims[i] = i < ndim ? d[i] : 0;
		if (i < ndim)
			p->numel *= (size_t)d[i];
	}
	return 0;
}

/* Turn a positive error into the negative id convention of the builders. */
static int neg(int rc)
{
	return rc > 0 ? -rc : rc;
}

/* ---- builders ------------------------------------------------------------- */

int fv_net_conv(fv_net *net, int in, const char *name, int out_ch, int k, int stride,
		int pad, int dil, int groups, int bias)
{
	int rc = check_in(net, in, name ? name : "conv");
	if (rc)
		return neg(rc);
	if (!name || !*name)
		return neg(fv_err_set(FV_E_CONFIG, "conv: needs a name"));
	const fv_node *x = &net->nodes[in];
	if (out_ch < 1 || k < 1 || stride < 1 || pad < 0 || dil < 1 || groups < 1)
		return neg(fv_err_set(FV_E_CONFIG, "%s: bad conv settings (out %d k %d stride %d "
				      "pad %d dilation %d groups %d)", name, out_ch, k, stride,
				      pad, dil, groups));
	if (x->c % groups || out_ch % groups)
		return neg(fv_err_set(FV_E_MISMATCH, "%s: groups %d must divide in %d and out %d "
				      "channels", name, groups, x->c, out_ch));
	int oh = (x->h + 2 * pad - dil * (k - 1) - 1) / stride + 1;
	int ow = (x->w + 2 * pad - dil * (k - 1) - 1) / stride + 1;
	if (x->h + 2 * pad - dil * (k - 1) - 1 < 0 || x->w + 2 * pad - dil * (k - 1) - 1 < 0)
		return neg(fv_err_set(FV_E_MISMATCH, "%s: %dx%d kernel (dilation %d) larger than "
				      "padded %dx%d input", name, k, k, dil, x->h, x->w));
	int in_c = x->c; /* add_node may move the node array */
	int id = add_node(net, FV_OP_CONV, in, -1, out_ch, oh, ow);
	if (id < 0)
		return id;
	fv_node *n = &net->nodes[id];
	n->k = k, n->stride = stride, n->pad = pad, n->dil = dil, n->groups = groups;
	n->bias = !!bias;
	rc = add_param(net, name, "weight", FV_PARAM_WEIGHT, 4, out_ch, in_c / groups, k, k);
	if (!rc && bias)
		rc = add_param(net, name, "bias", FV_PARAM_BIAS, 1, out_ch, 0, 0, 0);
	if (rc) {
		net->nnodes--;
		return neg(rc);
	}
	n->nparam = (int)net->nparams - n->param0;
	return id;
}

int fv_net_bn(fv_net *net, int in, const char *name)
{
	int rc = check_in(net, in, name ? name : "bn");
	if (rc)
		return neg(rc);
	if (!name || !*name)
		return neg(fv_err_set(FV_E_CONFIG, "bn: needs a name"));
	const fv_node *x = &net->nodes[in];
	int c = x->c;
	int id = add_node(net, FV_OP_BN, in, -1, c, x->h, x->w);
	if (id < 0)
		return id;
	fv_node *n = &net->nodes[id];
	size_t p0 = net->nparams;
	rc = add_param(net, name, "weight", FV_PARAM_BN_SCALE, 1, c, 0, 0, 0);
	if (!rc)
		rc = add_param(net, name, "bias", FV_PARAM_BN_SHIFT, 1, c, 0, 0, 0);
	if (!rc)
		rc = add_param(net, name, "running_mean", FV_PARAM_BUFFER, 1, c, 0, 0, 0);
	if (!rc)
		rc = add_param(net, name, "running_var", FV_PARAM_BUFFER, 1, c, 0, 0, 0);
	if (rc) {
		while (net->nparams > p0)
			free((char *)net->params[--net->nparams].name);
		net->nnodes--;
		return neg(rc);
	}
	n->nparam = (int)net->nparams - n->param0;
	return id;
}

int fv_net_act(fv_net *net, int in, enum fv_act act)
{
	int rc = check_in(net, in, "act");
	if (rc)
		return neg(rc);
	if ((int)act < FV_ACT_RELU || act > FV_ACT_SIGMOID)
		return neg(fv_err_set(FV_E_CONFIG, "act: unknown activation %d", (int)act));
	const fv_node *x = &net->nodes[in];
	int id = add_node(net, FV_OP_ACT, in, -1, x->c, x->h, x->w);
	if (id >= 0)
		net->nodes[id].act = act;
	return id;
}

static int pool(fv_net *net, int in, int k, int stride, int pad, enum fv_node_op op)
{
	const char *what = op == FV_OP_MAXPOOL ? "maxpool" : "avgpool";
	int rc = check_in(net, in, what);
	if (rc)
		return neg(rc);
	const fv_node *x = &net->nodes[in];
	if (k < 1 || stride < 1 || pad < 0 || 2 * pad > k)
		return neg(fv_err_set(FV_E_CONFIG, "%s: bad settings (k %d stride %d pad %d)",
				      what, k, stride, pad));
	if (x->h + 2 * pad < k || x->w + 2 * pad < k)
		return neg(fv_err_set(FV_E_MISMATCH, "%s: %dx%d window larger than %dx%d input",
				      what, k, k, x->h, x->w));
	int oh = (x->h + 2 * pad - k) / stride + 1, ow = (x->w + 2 * pad - k) / stride + 1;
	int id = add_node(net, op, in, -1, x->c, oh, ow);
	if (id >= 0) {
		fv_node *n = &net->nodes[id];
		n->k = k, n->stride = stride, n->pad = pad;
	}
	return id;
}

int fv_net_maxpool(fv_net *net, int in, int k, int stride, int pad)
{
	return pool(net, in, k, stride, pad, FV_OP_MAXPOOL);
}

int fv_net_avgpool(fv_net *net, int in, int k, int stride, int pad)
{
	return pool(net, in, k, stride, pad, FV_OP_AVGPOOL);
}

int fv_net_gap(fv_net *net, int in)
{
	int rc = check_in(net, in, "gap");
	if (rc)
		return neg(rc);
	const fv_node *x = &net->nodes[in];
	return add_node(net, FV_OP_GAP, in, -1, x->c, 1, 1);
}

int fv_net_flatten(fv_net *net, int in)
{
	int rc = check_in(net, in, "flatten");
	if (rc)
		return neg(rc);
	const fv_node *x = &net->nodes[in];
	return add_node(net, FV_OP_FLATTEN, in, -1, x->c * x->h * x->w, 1, 1);
}

int fv_net_linear(fv_net *net, int in, const char *name, int out_features)
{
	int rc = check_in(net, in, name ? name : "linear");
	if (rc)
		return neg(rc);
	if (!name || !*name)
		return neg(fv_err_set(FV_E_CONFIG, "linear: needs a name"));
	if (out_features < 1)
		return neg(fv_err_set(FV_E_CONFIG, "%s: %d outputs", name, out_features));
	/* linear reads plain feature vectors: flatten anything that may be in a
	 * backend's blocked layout, even C x 1 x 1 (a blocked GAP output pads C) */
	const fv_node *src = &net->nodes[in];
	if (src->h != 1 || src->w != 1 ||
	    (in != FV_NET_INPUT && src->op != FV_OP_FLATTEN && src->op != FV_OP_LINEAR))
		in = fv_net_flatten(net, in);
	if (in < 0)
		return in;
	int c = net->nodes[in].c;
	int id = add_node(net, FV_OP_LINEAR, in, -1, out_features, 1, 1);
	if (id < 0)
		return id;
	rc = add_param(net, name, "weight", FV_PARAM_WEIGHT, 2, out_features, c, 0, 0);
	if (!rc)
		rc = add_param(net, name, "bias", FV_PARAM_BIAS, 1, out_features, 0, 0, 0);
	if (rc) {
		net->nnodes--;
		return neg(rc);
	}
	net->nodes[id].bias = 1;
	net->nodes[id].nparam = (int)net->nparams - net->nodes[id].param0;
	return id;
}

int fv_net_add(fv_net *net, int a, int b)
{
	int rc = check_in(net, a, "add");
	if (!rc)
		rc = check_in(net, b, "add");
	if (rc)
		return neg(rc);
	const fv_node *x = &net->nodes[a], *y = &net->nodes[b];
	if (x->c != y->c || x->h != y->h || x->w != y->w)
		return neg(fv_err_set(FV_E_MISMATCH, "add: shapes %dx%dx%d and %dx%dx%d differ",
				      x->c, x->h, x->w, y->c, y->h, y->w));
	return add_node(net, FV_OP_ADD, a, b, x->c, x->h, x->w);
}

int fv_net_scale(fv_net *net, int xi, int si)
{
	int rc = check_in(net, xi, "scale");
	if (!rc)
		rc = check_in(net, si, "scale");
	if (rc)
		return neg(rc);
	const fv_node *x = &net->nodes[xi], *s = &net->nodes[si];
	if (s->c != x->c || s->h != 1 || s->w != 1)
		return neg(fv_err_set(FV_E_MISMATCH, "scale: scale %dx%dx%d must be %dx1x1",
				      s->c, s->h, s->w, x->c));
	return add_node(net, FV_OP_SCALE, xi, si, x->c, x->h, x->w);
}

int fv_net_dropout(fv_net *net, int in, float p)
{
	int rc = check_in(net, in, "dropout");
	if (rc)
		return neg(rc);
	if (!(p >= 0.0f && p < 1.0f))
		return neg(fv_err_set(FV_E_CONFIG, "dropout: p %g not in [0, 1)", p));
	const fv_node *x = &net->nodes[in];
	int id = add_node(net, FV_OP_DROPOUT, in, -1, x->c, x->h, x->w);
	if (id >= 0)
		net->nodes[id].p = p;
	return id;
}

int fv_net_set_output(fv_net *net, int node)
{
	int rc = check_in(net, node, "output");
	if (rc)
		return rc;
	if (node == FV_NET_INPUT)
		return fv_err_set(FV_E_MISMATCH, "output: the input node cannot be the output");
	const fv_node *n = &net->nodes[node];
	if (n->h != 1 || n->w != 1)
		return fv_err_set(FV_E_MISMATCH, "output: node %d is %dx%dx%d, logits must be "
				  "Cx1x1", node, n->c, n->h, n->w);
	net->output = node;
	return 0;
}

/* ---- queries -------------------------------------------------------------- */

int fv_net_shape(const fv_net *net, int node, int *c, int *h, int *w)
{
	if (node < 0 || node >= net->nnodes)
		return fv_err_set(FV_E_NOTFOUND, "shape: no node %d", node);
	const fv_node *n = &net->nodes[node];
	if (c) *c = n->c;
	if (h) *h = n->h;
	if (w) *w = n->w;
	return 0;
}

int fv_net_classes(const fv_net *net)
{
	return net->output < 0 ? 0 : net->nodes[net->output].c;
}

size_t fv_net_nparams(const fv_net *net)
{
	return net->nparams;
}

fv_param *fv_net_params(fv_net *net)
{
	return net->params;
}

size_t fv_net_param_count(const fv_net *net)
{
	size_t n = 0;
	for (size_t i = 0; i < net->nparams; i++)
		if (net->params[i].kind != FV_PARAM_BUFFER)
			n += net->params[i].numel;
	return n;
}

double fv_net_macs(const fv_net *net)
{
	double macs = 0;
	for (int i = 1; i < net->nnodes; i++) {
		const fv_node *n = &net->nodes[i], *x = &net->nodes[n->in[0]];
		if (n->op == FV_OP_CONV)
			macs += (double)n->c * n->h * n->w * (x->c / n->groups) * n->k * n->k;
		else if (n->op == FV_OP_LINEAR)
			macs += (double)n->c * x->c;
	}
	return macs;
}
