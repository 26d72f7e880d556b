/* nn/run.c — compiling a built network for a batch size and a backend, and
 * running forward / loss / backward steps. Everything is allocated and
 * planned in fv_net_compile; the step functions allocate nothing (a batch
 * smaller than the last one re-plans once, outside the steady state).
 *
 * Gradient flow: nodes are visited in reverse order; the first consumer to
 * reach a node writes its dy, later ones (fan-out: residual connections, SE)
 * write into a scratch tensor and add it in. Nodes that need no gradient
 * (the input, frozen prefixes of the graph) are skipped entirely. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fv_daemon.h"
#include "fv_error.h"
#include "nn/graph.h"
#include "nn/loss.h"

/* ---- parameters -------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double normal(uint64_t *s)
{
	double u1 = ((splitmix(s) >> 11) + 1.0) / 9007199254740993.0;
	double u2 = (splitmix(s) >> 11) / 9007199254740992.0;
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* He normal (fan in, gain sqrt 2) for conv and linear weights, zero biases,
 * BN gamma 1 beta 0, running mean 0 var 1. Each param gets its own stream
 * derived from the seed and its index, so adding a layer at the end does not
 * change the others. */
static void init_params(fv_net *net)
{
	for (size_t i = 0; i < net->nparams; i++) {
		fv_param *p = &net->params[i];
		const char *suf = strrchr(p->name, '.');
		float v = 0;
		if (p->kind == FV_PARAM_BN_SCALE || (p->kind == FV_PARAM_BUFFER && suf &&
						     !strcmp(suf, ".running_var")))
			v = 1;
		if (p->kind != FV_PARAM_WEIGHT) {
			for (size_t j = 0; j < p->numel; j++)
				p->data[j] = v;
			continue;
		}
		size_t fan_in = p->numel / (size_t)p->dims[0];
		double sd = sqrt(2.0 / (double)fan_in);
		uint64_t s = net->opts.seed * 0x9e3779b97f4a7c15ull + i * 0x632be59bd9b4e019ull + 1;
		for (size_t j = 0; j < p->numel; j++)
			p->data[j] = (float)(sd * normal(&s));
	}
}

static int alloc_params(fv_net *net)
{
	net->poff = calloc(net->nparams + 1, sizeof *net->poff);
	if (!net->poff)
		return ENOMEM;
	size_t off = 0;
	for (size_t i = 0; i < net->nparams; i++) {
		net->poff[i] = off;
		off += (net->params[i].numel + 15) / 16 * 16; /* 64-byte aligned slices */
	}
	net->ptotal = off;
	size_t bytes = (off ? off : 1) * sizeof(float);
	net->pdata = aligned_alloc(64, (bytes + 63) / 64 * 64);
	if (!net->pdata)
		return ENOMEM;
	memset(net->pdata, 0, bytes);
	if (!net->opts.inference_only) {
		net->gdata = aligned_alloc(64, (bytes + 63) / 64 * 64);
		if (!net->gdata)
			return ENOMEM;
		memset(net->gdata, 0, bytes);
	}
	for (size_t i = 0; i < net->nparams; i++) {
		fv_param *p = &net->params[i];
		p->data = net->pdata + net->poff[i];
		p->grad = net->gdata && p->kind != FV_PARAM_BUFFER ? net->gdata + net->poff[i] : NULL;
	}
	init_params(net);
	const fv_backend *be = net->be;
	if (be->host_visible) {
		net->dparams = net->pdata;
		net->dgrads = net->gdata;
		return 0;
	}
	int rc = be->alloc(net->ctx, bytes, &net->dparams);
	if (!rc && net->gdata)
		rc = be->alloc(net->ctx, bytes, &net->dgrads);
	return rc ? rc : be->to_device(net->ctx, net->dparams, net->pdata, bytes);
}

/* Device pointers of a node's k-th parameter and its gradient (NULL: frozen
 * or no gradients). */
static void *P(fv_net *net, const fv_node *n, int k)
{
	return (float *)net->dparams + net->poff[n->param0 + k];
}

static void *G(fv_net *net, const fv_node *n, int k)
{
	if (k >= n->nparam || !net->dgrads || net->params[n->param0 + k].frozen)
		return NULL;
	return (float *)net->dgrads + net->poff[n->param0 + k];
}

/* ---- compile ------------------------------------------------------------------ */

/* Layouts: the input and the feature vectors of flatten/linear are plain;
 * a convolution's output takes the backend's preferred layout; every other
 * op keeps its input's layout (they are elementwise or per-channel). */
static int node_fmt(fv_net *net, const fv_node *n, int id)
{
	if (id == FV_NET_INPUT || n->op == FV_OP_FLATTEN || n->op == FV_OP_LINEAR)
		return FV_FMT_PLAIN;
	if (n->op == FV_OP_CONV)
		return net->be->tensor_fmt(net->ctx, n->c, n->h, n->w, 0);
	return net->nodes[n->in[0]].y.fmt;
}

static int alloc_tensors(fv_net *net)
{
	const fv_backend *be = net->be;
	size_t maxb = 0;
	int rc = 0;
	for (int i = 0; i < net->nnodes && !rc; i++) {
		fv_node *n = &net->nodes[i];
		n->y = (fv_tensor){ NULL, net->batch, n->c, n->h, n->w, node_fmt(net, n, i) };
		size_t b = be->tensor_bytes(net->ctx, net->batch, n->c, n->h, n->w, n->y.fmt);
		maxb = b > maxb ? b : maxb;
		n->dy = n->y;
		n->dy.data = NULL;
		if (n->op == FV_OP_ADD && net->nodes[n->in[0]].y.fmt != net->nodes[n->in[1]].y.fmt)
			return fv_err_set(FV_E_UNSUPPORTED, "add: inputs %d and %d in different "
					  "layouts", n->in[0], n->in[1]);
		if (n->fused)
			n->y.data = net->nodes[n->alias].y.data; /* the BN writes relu(bn(x)) */
		else
			rc = be->alloc(net->ctx, b, &n->y.data);
		if (!rc && net->train_ok && i != FV_NET_INPUT)
			rc = be->alloc(net->ctx, b, &n->dy.data);
	}
	for (int s = 0; s < 2 && !rc && net->train_ok; s++)
		rc = be->alloc(net->ctx, maxb, &net->scr[s].data);
	return rc;
}

static fv_op_desc describe(fv_net *net, const fv_node *n, int batch)
{
	const fv_node *x = &net->nodes[n->in[0]];
	fv_op_desc d = {
		.n = batch, .c = x->c, .h = x->h, .w = x->w, .k = n->c, .oh = n->h, .ow = n->w,
		.fmt_x = x->y.fmt, .fmt_y = n->y.fmt, .r = n->k, .stride = n->stride, .pad = n->pad,
		.dil = n->dil, .groups = n->groups, .bias = n->bias, .act = n->act,
		.eps = net->opts.bn_eps, .p = n->p, .train = net->train_ok,
		.fuse_relu = n->fuse_relu, .fuse_add = n->op == FV_OP_BN && n->addz >= 0,
	};
	switch (n->op) {
	case FV_OP_CONV: d.kind = FV_K_CONV; break;
	case FV_OP_BN: d.kind = FV_K_BN; break;
	case FV_OP_ACT: d.kind = FV_K_ACT; break;
	case FV_OP_MAXPOOL: d.kind = FV_K_POOL; d.pool_max = 1; break;
	case FV_OP_AVGPOOL: d.kind = FV_K_POOL; break;
	case FV_OP_GAP: d.kind = FV_K_POOL; d.r = 0; break;
	case FV_OP_FLATTEN: d.kind = FV_K_REORDER; break;
	case FV_OP_LINEAR: d.kind = FV_K_LINEAR; break;
	case FV_OP_ADD: d.kind = FV_K_ADD; break;
	case FV_OP_SCALE: d.kind = FV_K_SCALE; break;
	case FV_OP_DROPOUT: d.kind = FV_K_DROPOUT; break;
	case FV_OP_INPUT: break;
	}
	return d;
}

static void drop_plans(fv_net *net)
{
	for (int i = 0; i < net->nnodes; i++)
		if (net->nodes[i].plan)
			net->be->plan_destroy((fv_plan **)&net->nodes[i].plan);
	net->plan_n = 0;
}

static int make_plans(fv_net *net, int batch)
{
	drop_plans(net);
	for (int i = 1; i < net->nnodes; i++) {
		fv_op_desc d = describe(net, &net->nodes[i], batch);
		int rc = net->be->plan_new(net->ctx, &d, (fv_plan **)&net->nodes[i].plan);
		if (rc)
			return fv_err_set(rc, "node %d (op %d, %dx%dx%d): %s", i, (int)net->nodes[i].op,
					  net->nodes[i].c, net->nodes[i].h, net->nodes[i].w,
					  fv_err_msg(rc));
	}
	net->plan_n = batch;
	return 0;
}

/* BN -> ReLU and add -> ReLU where the ReLU is the only reader: the BN
 * (dnnl_fuse_norm_relu) or the add applies the ReLU itself, saving the
 * activation's memory passes. Then, on backends that offer bn_add_*, the
 * end of a ResNet block, BN -> add -> ReLU with the BN read only by the add,
 * becomes one BN that adds the other input (z) before its ReLU. The BN must
 * come after z in node order (its backward produces z's gradient, so it
 * runs first): of two BN inputs the later one takes the add.
 * FV_NET_NOFUSE=1 turns all of it off (for measuring), =2 only the add. */
static void fuse(fv_net *net)
{
	const char *env = getenv("FV_NET_NOFUSE");
	int off = env && !strcmp(env, "1"), off_add = off || (env && !strcmp(env, "2"));
	for (int i = 0; i < net->nnodes; i++)
		net->nodes[i].fused = net->nodes[i].fuse_relu = 0, net->nodes[i].addz = -1;
	for (int i = 1; i < net->nnodes && !off; i++) {
		fv_node *n = &net->nodes[i], *x = &net->nodes[n->in[0]];
		if (n->op == FV_OP_ACT && n->act == FV_ACT_RELU &&
		    (x->op == FV_OP_BN || x->op == FV_OP_ADD) && x->consumers == 1 &&
		    i != net->output)
			n->fused = x->fuse_relu = 1, n->alias = n->in[0];
	}
	for (int i = 1; i < net->nnodes && !off_add && net->be->bn_add_backward; i++) {
		fv_node *n = &net->nodes[i];
		if (n->op != FV_OP_ADD || !n->fuse_relu || n->in[0] == n->in[1])
			continue;
		int bn = -1;
		for (int k = 0; k < 2; k++) {
			const fv_node *c = &net->nodes[n->in[k]];
			if (c->op == FV_OP_BN && c->consumers == 1 && !c->fuse_relu &&
			    n->in[k] > n->in[1 - k] && n->in[k] > bn)
				bn = n->in[k];
		}
		if (bn < 0)
			continue;
		fv_node *b = &net->nodes[bn];
		b->fuse_relu = 1;
		b->addz = n->in[0] == bn ? n->in[1] : n->in[0];
		n->fused = 1, n->alias = bn;
	}
}

int fv_net_folded_adds(const fv_net *net)
{
	int k = 0;
	for (int i = 0; i < net->nnodes; i++)
		k += net->nodes[i].op == FV_OP_BN && net->nodes[i].addz >= 0;
	return k;
}

void fv_net_release(fv_net *net)
{
	if (!net->be)
		return;
	const fv_backend *be = net->be;
	drop_plans(net);
	for (int i = 0; i < net->nnodes; i++) {
		if (!net->nodes[i].fused)
			be->free(net->ctx, net->nodes[i].y.data);
		be->free(net->ctx, net->nodes[i].dy.data);
		net->nodes[i].y.data = net->nodes[i].dy.data = NULL;
	}
	for (int s = 0; s < 2; s++)
		be->free(net->ctx, net->scr[s].data);
	if (!be->host_visible) {
		be->free(net->ctx, net->dparams);
		be->free(net->ctx, net->dgrads);
	}
	be->ctx_destroy(&net->ctx);
	free(net->pdata), free(net->gdata), free(net->poff), free(net->logits), free(net->dlogits);
	net->pdata = net->gdata = net->logits = net->dlogits = NULL;
	net->poff = NULL;
	for (size_t i = 0; i < net->nparams; i++)
		net->params[i].data = net->params[i].grad = NULL;
	net->be = NULL;
	net->compiled = 0;
	free(net->prof);
	net->prof = NULL;
	net->prof_steps = net->prof_checked = 0;
}

int fv_net_compile(fv_net *net, const fv_net_opts *opts)
{
	if (net->compiled)
		return fv_err_set(FV_E_UNSUPPORTED, "compile: net is already compiled");
	if (net->output < 0)
		return fv_err_set(FV_E_CONFIG, "compile: no output set (fv_net_set_output)");
	if (opts->batch < 1)
		return fv_err_set(FV_E_CONFIG, "compile: batch %d must be >= 1", opts->batch);
	const fv_backend *be = fv_backend_find(opts->device);
	if (!be)
		return fv_err_set(FV_E_UNSUPPORTED, "compile: device '%s' is not built in",
				  opts->device);
	/* logits must come out plain: end with a flatten unless a linear does */
	int op = net->nodes[net->output].op;
	if (op != FV_OP_LINEAR && op != FV_OP_FLATTEN) {
		int f = fv_net_flatten(net, net->output);
		if (f < 0)
			return f;
		net->output = f;
	}
	net->opts = *opts;
	if (net->opts.bn_momentum == 0)
		net->opts.bn_momentum = 0.1f;
	if (net->opts.bn_eps == 0)
		net->opts.bn_eps = 1e-5f;
	net->batch = opts->batch;
	net->train_ok = !opts->inference_only;
	net->be = be;
	int k = fv_net_classes(net);
	int rc = be->ctx_open ? be->ctx_open(&net->ctx, opts->threads, opts->device)
			      : be->ctx_new(&net->ctx, opts->threads);
	if (rc) {
		net->be = NULL;
		return rc;
	}
	for (int i = 0; i < net->nnodes; i++)
		net->nodes[i].consumers = 0;
	for (int i = 1; i < net->nnodes; i++)
		for (int j = 0; j < 2; j++)
			if (net->nodes[i].in[j] >= 0)
				net->nodes[net->nodes[i].in[j]].consumers++;
	fuse(net);
	net->logits = calloc((size_t)net->batch * k, sizeof(float));
	net->dlogits = calloc((size_t)net->batch * k, sizeof(float));
	if (!net->logits || !net->dlogits)
		rc = ENOMEM;
	if (!rc)
		rc = alloc_params(net);
	if (!rc)
		rc = alloc_tensors(net);
	if (!rc)
		rc = make_plans(net, net->batch);
	if (rc) {
		fv_net_release(net);
		return rc;
	}
	net->compiled = 1;
	return 0;
}

/* ---- forward ------------------------------------------------------------------ */

static int forward_node(fv_net *net, fv_node *n, int train)
{
	const fv_backend *be = net->be;
	fv_plan *p = n->plan;
	fv_tensor *x = &net->nodes[n->in[0]].y;
	switch (n->op) {
	case FV_OP_CONV:
		return be->conv_forward(&n->y, x, P(net, n, 0), n->bias ? P(net, n, 1) : NULL, p);
	case FV_OP_BN:
		if (n->addz >= 0 && train)
			return be->bn_add_forward_train(&n->y, x, &net->nodes[n->addz].y, P(net, n, 0),
							P(net, n, 1), P(net, n, 2), P(net, n, 3),
							net->opts.bn_momentum, p);
		if (n->addz >= 0)
			return be->bn_add_forward_infer(&n->y, x, &net->nodes[n->addz].y, P(net, n, 0),
							P(net, n, 1), P(net, n, 2), P(net, n, 3), p);
		if (train)
			return be->bn_forward_train(&n->y, x, P(net, n, 0), P(net, n, 1), P(net, n, 2),
						    P(net, n, 3), net->opts.bn_momentum, p);
		return be->bn_forward_infer(&n->y, x, P(net, n, 0), P(net, n, 1), P(net, n, 2),
					    P(net, n, 3), p);
	case FV_OP_ACT:
		return n->fused ? 0 : be->act_forward(&n->y, x, p);
	case FV_OP_MAXPOOL: case FV_OP_AVGPOOL: case FV_OP_GAP:
		return be->pool_forward(&n->y, x, p, train);
	case FV_OP_FLATTEN:
		return be->reorder_forward(&n->y, x, p);
	case FV_OP_LINEAR:
		return be->linear_forward(&n->y, x, P(net, n, 0), P(net, n, 1), p);
	case FV_OP_ADD: /* fused: the BN it was folded into wrote relu(bn + z) */
		return n->fused ? 0 : be->add_forward(&n->y, x, &net->nodes[n->in[1]].y, p);
	case FV_OP_SCALE:
		return be->scale_forward(&n->y, x, &net->nodes[n->in[1]].y, p);
	case FV_OP_DROPOUT:
		return be->dropout_forward(&n->y, x, net->opts.seed ^ (net->step * 0x2545f4914f6cdd1dull),
					   train, p);
	case FV_OP_INPUT:
		break;
	}
	return 0;
}

/* ---- FV_PROFILE ------------------------------------------------------------ */

/* The start of a timed op: the device idle first (a 4-byte read-back
 * waits for everything queued before it). */
static double prof_mark(fv_net *net, const fv_node *n)
{
	float f;
	if (!net->be->host_visible && n->y.data)
		net->be->to_host(net->ctx, &f, n->y.data, sizeof f);
	return fv_now_s();
}

static void prof_add(fv_net *net, int slot, const fv_node *n, double t0)
{
	net->prof[slot] += prof_mark(net, n) - t0;
}

static int prof_on(fv_net *net)
{
	if (!net->prof_checked) {
		const char *e = getenv("FV_PROFILE");
		net->prof_checked = 1;
		if (e && *e && strcmp(e, "0"))
			net->prof = calloc(2 * (size_t)net->nnodes, sizeof *net->prof);
	}
	return net->prof != NULL;
}

int fv_net_profile_start(fv_net *net)
{
	net->prof_checked = 1;
	if (!net->prof && !(net->prof = calloc(2 * (size_t)net->nnodes, sizeof *net->prof)))
		return ENOMEM;
	memset(net->prof, 0, 2 * (size_t)net->nnodes * sizeof *net->prof);
	net->prof_steps = 0;
	return 0;
}

static const char *op_name(enum fv_node_op op)
{
	static const char *names[] = { "input", "conv", "bn", "act", "maxpool", "avgpool",
				       "gap", "flatten", "linear", "add", "scale", "dropout" };
	return (unsigned)op < sizeof names / sizeof *names ? names[op] : "?";
}

void fv_net_profile_report(fv_net *net, FILE *f)
{
	if (!net->prof || !net->prof_steps)
		return;
	enum { NK = FV_OP_DROPOUT + 1, TOP = 12 };
	double kf[NK] = { 0 }, kb[NK] = { 0 }, tot = 0, per = 1e3 / net->prof_steps;
	int cnt[NK] = { 0 };
	for (int i = 1; i < net->nnodes; i++) {
		int k = net->nodes[i].op;
		kf[k] += net->prof[i], kb[k] += net->prof[net->nnodes + i], cnt[k]++;
		tot += net->prof[i] + net->prof[net->nnodes + i];
	}
	fprintf(f, "profile: %d step(s), %.2f ms/step in ops (each synchronised)\n",
		net->prof_steps, tot * per);
	fprintf(f, "profile: %-8s %5s %10s %10s %6s\n", "op", "nodes", "fwd ms", "bwd ms", "share");
	for (int k = 1; k < NK; k++)
		if (cnt[k])
			fprintf(f, "profile: %-8s %5d %10.3f %10.3f %5.1f%%\n", op_name(k), cnt[k],
				kf[k] * per, kb[k] * per, 100 * (kf[k] + kb[k]) / (tot > 0 ? tot : 1));
	char *done = calloc(net->nnodes, 1);
	for (int t = 0; t < TOP && done; t++) {
		int best = 0;
		double bv = -1;
		for (int i = 1; i < net->nnodes; i++) {
			double v = net->prof[i] + net->prof[net->nnodes + i];
			if (!done[i] && v > bv)
				best = i, bv = v;
		}
		if (!best)
			break;
		done[best] = 1;
		const fv_node *n = &net->nodes[best];
		fprintf(f, "profile: node %3d %-7s -> %4dx%3dx%3d k%d s%d  fwd %.3f bwd %.3f ms\n",
			best, op_name(n->op), n->c, n->h, n->w, n->k, n->stride,
			net->prof[best] * per, net->prof[net->nnodes + best] * per);
	}
	free(done);
}

int fv_net_forward(fv_net *net, const float *x, int n, int train)
{
	if (!net->compiled)
		return fv_err_set(FV_E_CONFIG, "forward: net not compiled");
	if (n < 1 || n > net->batch)
		return fv_err_set(FV_E_MISMATCH, "forward: %d images, compiled for 1..%d", n,
				  net->batch);
	if (train && !net->train_ok)
		return fv_err_set(FV_E_CONFIG, "forward: net compiled for inference only");
	int rc = 0;
	if (net->be->enter)
		net->be->enter(net->ctx);
	if (n != net->plan_n && (rc = make_plans(net, n)))
		return rc;
	net->last_n = n;
	net->have_loss = 0;
	if (train)
		net->step++;
	if (x) /* NULL: the caller filled the input tensor (fv_net_input) */
		rc = net->be->tensor_import(net->ctx, &net->nodes[0].y, x, n);
	if (train && prof_on(net)) {
		net->prof_steps++;
		for (int i = 1; i < net->nnodes && !rc; i++) {
			double t0 = prof_mark(net, &net->nodes[i]);
			rc = forward_node(net, &net->nodes[i], train);
			prof_add(net, i, &net->nodes[i], t0);
		}
	} else {
		for (int i = 1; i < net->nnodes && !rc; i++)
			rc = forward_node(net, &net->nodes[i], train);
	}
	if (!rc)
		rc = net->be->tensor_export(net->ctx, net->logits, &net->nodes[net->output].y, n);
	return rc;
}

const float *fv_net_logits(fv_net *net)
{
	return net->logits;
}

int fv_net_loss(fv_net *net, const int *labels, const fv_loss_opts *o, float *loss)
{
	if (!net->last_n)
		return fv_err_set(FV_E_CONFIG, "loss: no forward pass yet");
	int n = net->last_n, k = fv_net_classes(net);
	int rc = fv_softmax_xent_forward(loss, net->dlogits, net->logits, labels, o, n, k);
	if (!rc && net->train_ok)
		rc = net->be->tensor_import(net->ctx, &net->nodes[net->output].dy, net->dlogits, n);
	net->have_loss = !rc && net->train_ok;
	return rc;
}

/* ---- backward ----------------------------------------------------------------- */

/* (declared in graph.h: nn/inspect.c routes Grad-CAM gradients the same way) */
fv_tensor *fv_graph_grad_dst(fv_net *net, int j, int s)
{
	fv_node *x = &net->nodes[j];
	if (!x->gready)
		return &x->dy;
	net->scr[s].n = x->dy.n, net->scr[s].c = x->dy.c, net->scr[s].h = x->dy.h;
	net->scr[s].w = x->dy.w, net->scr[s].fmt = x->dy.fmt;
	return &net->scr[s];
}

int fv_graph_grad_done(fv_net *net, int j, fv_tensor *t)
{
	fv_node *x = &net->nodes[j];
	if (t == &x->dy) {
		x->gready = 1;
		return 0;
	}
	return net->be->add_into(net->ctx, &x->dy, t);
}

/* need[i]: some unfrozen parameter at or before node i feeds it. */
static void mark_need(fv_net *net)
{
	for (int i = 0; i < net->nnodes; i++) {
		fv_node *n = &net->nodes[i];
		n->need = 0;
		n->gready = 0;
		for (int k = 0; k < n->nparam; k++)
			if (G(net, n, k))
				n->need = 1;
		for (int j = 0; j < 2; j++)
			if (i > 0 && n->in[j] >= 0 && net->nodes[n->in[j]].need)
				n->need = 1;
	}
}

/* Exchange two same-sized gradient buffers (a node's dy is dead once its
 * backward ran, so passing it on beats copying it). */
static void swap(fv_tensor *a, fv_tensor *b)
{
	void *t = a->data;
	a->data = b->data;
	b->data = t;
}

static int backward_node(fv_net *net, fv_node *n)
{
	const fv_backend *be = net->be;
	fv_plan *p = n->plan;
	int a = n->in[0], b = n->in[1], rc = 0;
	fv_node *xa = &net->nodes[a];
	fv_tensor *x = &xa->y, *dy = &n->dy;
	if (n->op == FV_OP_ADD && n->fused) {
		/* folded into BN alias: hand it relu's dy (it is the add's only
		 * fresh input); its backward gives the other input its share */
		fv_tensor *db = fv_graph_grad_dst(net, n->alias, 0);
		swap(db, dy);
		return fv_graph_grad_done(net, n->alias, db);
	}
	fv_tensor *da = xa->need ? fv_graph_grad_dst(net, a, 0) : NULL;
	switch (n->op) {
	case FV_OP_CONV:
		if (da)
			rc = be->conv_backward_data(da, dy, P(net, n, 0), p);
		if (!rc)
			rc = be->conv_backward_filter(G(net, n, 0), n->bias ? G(net, n, 1) : NULL, dy,
						      x, p);
		break;
	case FV_OP_BN:
		if (n->addz >= 0) { /* z's share: scratch slot 1 (or z's own dy), dx: slot 0 */
			fv_node *zn = &net->nodes[n->addz];
			fv_tensor *dz = zn->need ? fv_graph_grad_dst(net, n->addz, 1) : &net->scr[1];
			if (!zn->need)
				net->scr[1].n = zn->dy.n, net->scr[1].c = zn->dy.c, net->scr[1].h = zn->dy.h,
				net->scr[1].w = zn->dy.w, net->scr[1].fmt = zn->dy.fmt;
			rc = be->bn_add_backward(da ? da : &net->scr[0], dz, G(net, n, 0), G(net, n, 1),
						 dy, x, P(net, n, 0), P(net, n, 1), p);
			if (!rc && zn->need)
				rc = fv_graph_grad_done(net, n->addz, dz);
			break;
		}
		/* the data gradient costs nothing extra in oneDNN: scratch when unused */
		rc = be->bn_backward(da ? da : &net->scr[1], G(net, n, 0), G(net, n, 1), dy, x,
				     P(net, n, 0), P(net, n, 1), p);
		break;
	case FV_OP_ACT:
		if (da && n->fused) /* the BN takes relu's dy: hand the buffer over */
			swap(da, dy);
		else if (da)
			rc = be->act_backward(da, dy, x, &n->y, p);
		break;
	case FV_OP_MAXPOOL: case FV_OP_AVGPOOL: case FV_OP_GAP:
		rc = da ? be->pool_backward(da, dy, p) : 0;
		break;
	case FV_OP_FLATTEN:
		rc = da ? be->reorder_backward(da, dy, p) : 0;
		break;
	case FV_OP_LINEAR:
		rc = be->linear_backward(da, G(net, n, 0), G(net, n, 1), dy, x, P(net, n, 0), p);
		break;
	case FV_OP_ADD:
		/* both inputs get dy. b first: a fresh b copies dy when a will
		 * still read it, else takes dy's buffer; then a takes the buffer
		 * when fresh, or adds dy in (fan-out, or x + x) */
		if (n->fuse_relu)
			rc = be->add_relu_backward(dy, &n->y, p);
		if (!rc && net->nodes[b].need) {
			fv_tensor *db = fv_graph_grad_dst(net, b, 1);
			int own = db == &net->nodes[b].dy;
			if (own && xa->need)
				rc = be->copy(net->ctx, db, dy);
			else if (own)
				swap(db, dy);
			if (!rc)
				rc = fv_graph_grad_done(net, b, own ? db : dy);
		}
		if (da && da == &xa->dy && a != b)
			swap(da, dy);
		else if (da)
			da = dy;
		break;
	case FV_OP_SCALE: {
		fv_tensor *ds = net->nodes[b].need ? fv_graph_grad_dst(net, b, 1) : NULL;
		rc = be->scale_backward(da, ds, dy, x, &net->nodes[b].y, p);
		if (!rc && ds)
			rc = fv_graph_grad_done(net, b, ds);
		break;
	}
	case FV_OP_DROPOUT:
		rc = da ? be->dropout_backward(da, dy, p) : 0;
		break;
	case FV_OP_INPUT:
		break;
	}
	if (!rc && da)
		rc = fv_graph_grad_done(net, a, da);
	return rc;
}

int fv_net_backward(fv_net *net)
{
	if (!net->have_loss)
		return fv_err_set(FV_E_CONFIG, "backward: no loss since the last forward");
	if (net->be->enter)
		net->be->enter(net->ctx);
	mark_need(net);
	net->nodes[net->output].gready = 1;
	int rc = 0;
	for (int i = net->nnodes - 1; i > 0 && !rc; i--) {
		fv_node *n = &net->nodes[i];
		if (!n->need)
			continue;
		if (!n->gready) {
			/* not upstream of the output: its params get a zero gradient */
			for (int k = 0; k < n->nparam; k++)
				if (G(net, n, k))
					memset(net->params[n->param0 + k].grad, 0,
					       net->params[n->param0 + k].numel * sizeof(float));
			continue;
		}
		if (net->prof) {
			double t0 = prof_mark(net, n);
			rc = backward_node(net, n);
			prof_add(net, net->nnodes + i, n, t0);
		} else {
			rc = backward_node(net, n);
		}
	}
	net->have_loss = 0;
	if (!rc && !net->be->host_visible && !net->dev_grads)
		rc = net->be->to_host(net->ctx, net->gdata, net->dgrads, net->ptotal * sizeof(float));
	return rc;
}

int fv_net_device(fv_net *net, fv_net_dev *out, int keep_grads)
{
	if (!net->compiled)
		return fv_err_set(FV_E_CONFIG, "device: net not compiled");
	*out = (fv_net_dev){ net->be, net->ctx, net->pdata, net->dparams, net->dgrads,
			     net->ptotal };
	if (keep_grads)
		net->dev_grads = !net->be->host_visible;
	return 0;
}

const fv_tensor *fv_net_input(fv_net *net)
{
	return net->compiled ? &net->nodes[0].y : NULL;
}

int fv_net_sync_to_host(fv_net *net)
{
	if (!net->compiled || net->be->host_visible)
		return 0;
	return net->be->to_host(net->ctx, net->pdata, net->dparams, net->ptotal * sizeof(float));
}

int fv_net_sync_to_device(fv_net *net)
{
	if (!net->compiled || net->be->host_visible)
		return 0;
	return net->be->to_device(net->ctx, net->dparams, net->pdata, net->ptotal * sizeof(float));
}
