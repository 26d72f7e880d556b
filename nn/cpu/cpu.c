/* nn/cpu/cpu.c — the CPU backend: oneDNN primitives behind nn/backend.h.
 *
 * What runs where, and why:
 *  - convolution (all strides, padding, dilation, groups), batch norm,
 *    pooling (max, average, global average) and activations are oneDNN
 *    primitives: its JIT kernels are what a hand-written loop cannot match.
 *  - activations between layers stay in oneDNN's blocked layout (nChw16c on
 *    AVX-512, nChw8c on AVX2; "B16"/"B8" below): convolutions on plain NCHW
 *    run several times slower, and reordering at every layer would cost a
 *    memory pass each. Only the net input (NCHW) and flatten/linear (plain
 *    features) are plain; flatten is a oneDNN reorder.
 *  - linear is dnnl_sgemm (row-major GEMM) plus a bias loop.
 *  - residual add, gradient accumulation, SE scale, dropout are hand-written
 *    OpenMP loops over the (padded) buffers: they are one memory pass each
 *    and layout-agnostic except for the scale's per-channel index.
 *  - softmax cross-entropy runs on host logits (nn/loss.c): N x K is tiny.
 * Threads: Debian's libdnnl uses OpenMP, so omp_set_num_threads() at context
 * creation sets the count for oneDNN and our loops alike.
 * Measured figures and the reasons behind these choices: nn/cpu/README. */
#include <errno.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "fv_error.h"
#include "nn/cpu/cpu.h"

/* ---- helpers shared by the op files -------------------------------------- */

int fv_cpu_check(dnnl_status_t st, const char *what)
{
	if (st == dnnl_success)
		return 0;
	if (st == dnnl_out_of_memory)
		return ENOMEM;
	return fv_err_set(st == dnnl_unimplemented ? FV_E_UNSUPPORTED : FV_E_INTERNAL,
			  "oneDNN %s: status %d", what, (int)st);
}

int fv_cpu_block(int fmt)
{
	return fmt == CPU_FMT_B16 ? 16 : fmt == CPU_FMT_B8 ? 8 : 1;
}

int fv_cpu_cpad(int c, int fmt)
{
	int b = fv_cpu_block(fmt);
	return (c + b - 1) / b * b;
}

dnnl_format_tag_t fv_cpu_tag(int fmt, int ndims)
{
	if (ndims == 2)
		return dnnl_nc;
	return fmt == CPU_FMT_B16 ? dnnl_nChw16c : fmt == CPU_FMT_B8 ? dnnl_nChw8c : dnnl_nchw;
}

dnnl_memory_desc_t fv_cpu_md(int n, int c, int h, int w, int fmt)
{
	dnnl_memory_desc_t md;
	dnnl_dims_t d = { n, c, h, w };
	dnnl_memory_desc_init_by_tag(&md, 4, d, dnnl_f32, fv_cpu_tag(fmt, 4));
	return md;
}

int fv_cpu_mem(fv_plan *p, int role, const dnnl_memory_desc_t *md)
{
	if (p->m[role])
		dnnl_memory_destroy(p->m[role]);
	p->m[role] = NULL;
	return fv_cpu_check(dnnl_memory_create(&p->m[role], md, p->ctx->eng, DNNL_MEMORY_NONE),
			    "memory");
}

int fv_cpu_pd(dnnl_primitive_desc_t *pd, const void *op_desc, fv_backend_ctx *ctx,
	      const_dnnl_primitive_desc_t hint, const char *what)
{
	*pd = NULL;
	return fv_cpu_check(dnnl_primitive_desc_create(pd, op_desc, NULL, ctx->eng, hint), what);
}

int fv_cpu_prim(dnnl_primitive_t *prim, dnnl_primitive_desc_t pd, const char *what)
{
	int rc = fv_cpu_check(dnnl_primitive_create(prim, pd), what);
	dnnl_primitive_desc_destroy(pd);
	return rc;
}

int fv_cpu_reorder(dnnl_primitive_t *prim, fv_backend_ctx *ctx, const dnnl_memory_desc_t *src,
		   const dnnl_memory_desc_t *dst)
{
	dnnl_primitive_desc_t pd;
	int rc = fv_cpu_check(dnnl_reorder_primitive_desc_create(&pd, src, ctx->eng, dst,
								  ctx->eng, NULL), "reorder");
	return rc ? rc : fv_cpu_prim(prim, pd, "reorder");
}

void *fv_cpu_alloc(size_t bytes)
{
	void *p = NULL;
	if (posix_memalign(&p, 64, bytes ? bytes : 64))
		return NULL;
	memset(p, 0, bytes);
	return p;
}

int fv_cpu_exec(fv_plan *p, dnnl_primitive_t prim, int n, const fv_cpu_arg *a)
{
	dnnl_exec_arg_t args[MAXMEM];
	for (int i = 0; i < n; i++) {
		dnnl_memory_set_data_handle(p->m[a[i].role], (void *)a[i].ptr);
		args[i].arg = a[i].arg;
		args[i].memory = p->m[a[i].role];
	}
	return fv_cpu_check(dnnl_primitive_execute(prim, p->ctx->strm, n, args), "execute");
}

/* ---- context and memory --------------------------------------------------- */

static int ctx_new(fv_backend_ctx **out, int threads)
{
	fv_backend_ctx *c = calloc(1, sizeof *c);
	if (!c)
		return ENOMEM;
	c->threads = threads > 0 ? threads : omp_get_num_procs();
	omp_set_num_threads(c->threads);
	int rc = fv_cpu_check(dnnl_engine_create(&c->eng, dnnl_cpu, 0), "engine");
	if (!rc)
		rc = fv_cpu_check(dnnl_stream_create(&c->strm, c->eng, dnnl_stream_default_flags),
				  "stream");
	if (rc) {
		if (c->eng)
			dnnl_engine_destroy(c->eng);
		free(c);
		return rc;
	}
	dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
	c->block_fmt = (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core
		? CPU_FMT_B16 : CPU_FMT_B8;
	const char *env = getenv("FV_CPU_BLOCK"); /* for measuring layouts: 0, 8, 16 */
	if (env)
		c->block_fmt = atoi(env) == 16 ? CPU_FMT_B16 : atoi(env) == 8 ? CPU_FMT_B8
			: FV_FMT_PLAIN;
	*out = c;
	return 0;
}

static void ctx_destroy(fv_backend_ctx **p)
{
	if (!p || !*p)
		return;
	dnnl_stream_destroy((*p)->strm);
	dnnl_engine_destroy((*p)->eng);
	free(*p);
	*p = NULL;
}

static void enter(fv_backend_ctx *ctx)
{
	omp_set_num_threads(ctx->threads);
}

static int cpu_alloc(fv_backend_ctx *ctx, size_t bytes, void **out)
{
	(void)ctx;
	*out = fv_cpu_alloc(bytes);
	return *out ? 0 : ENOMEM;
}

static void cpu_free(fv_backend_ctx *ctx, void *p)
{
	(void)ctx;
	free(p);
}

static int cpu_copy_bytes(fv_backend_ctx *ctx, void *dst, const void *src, size_t bytes)
{
	(void)ctx;
	if (dst != src)
		memcpy(dst, src, bytes);
	return 0;
}

static int tensor_fmt(fv_backend_ctx *ctx, int c, int h, int w, int plain_needed)
{
	(void)h, (void)w;
	/* a handful of channels (RGB input) gains nothing from blocking */
	if (plain_needed || c < 4)
		return FV_FMT_PLAIN;
	return ctx->block_fmt;
}

static size_t tensor_bytes(fv_backend_ctx *ctx, int n, int c, int h, int w, int fmt)
{
	(void)ctx;
	return (size_t)n * fv_cpu_cpad(c, fmt) * h * w * sizeof(float);
}

static size_t tcount(const fv_tensor *t)
{
	return (size_t)t->n * fv_cpu_cpad(t->c, t->fmt) * t->h * t->w;
}

static int tensor_import(fv_backend_ctx *ctx, fv_tensor *t, const float *host, int n)
{
	(void)ctx;
	if (t->fmt != FV_FMT_PLAIN)
		return fv_err_set(FV_E_UNSUPPORTED, "cpu: import into a blocked tensor");
	memcpy(t->data, host, (size_t)n * t->c * t->h * t->w * sizeof(float));
	return 0;
}

static int tensor_export(fv_backend_ctx *ctx, float *host, const fv_tensor *t, int n)
{
	(void)ctx;
	if (t->fmt != FV_FMT_PLAIN)
		return fv_err_set(FV_E_UNSUPPORTED, "cpu: export from a blocked tensor");
	memcpy(host, t->data, (size_t)n * t->c * t->h * t->w * sizeof(float));
	return 0;
}

static int add_into(fv_backend_ctx *ctx, fv_tensor *dst, const fv_tensor *src)
{
	(void)ctx;
	float *d = dst->data;
	const float *s = src->data;
	long n = (long)tcount(dst);
#pragma omp parallel for simd schedule(static)
	for (long i = 0; i < n; i++)
		d[i] += s[i];
	return 0;
}

static int copy(fv_backend_ctx *ctx, fv_tensor *dst, const fv_tensor *src)
{
	(void)ctx;
	memcpy(dst->data, src->data, tcount(dst) * sizeof(float));
	return 0;
}

/* ---- plans ---------------------------------------------------------------- */

void fv_plan_reset(fv_plan *p)
{
	dnnl_primitive_t prims[] = { p->fwd, p->fwdt, p->bwd, p->bwdw, p->wre_f, p->wre_b, p->dwre };
	for (size_t i = 0; i < sizeof prims / sizeof prims[0]; i++)
		if (prims[i])
			dnnl_primitive_destroy(prims[i]);
	for (int i = 0; i < MAXMEM; i++)
		if (p->m[i])
			dnnl_memory_destroy(p->m[i]);
	free(p->wf), free(p->wb), free(p->dwb), free(p->ws);
	free(p->mean), free(p->var), free(p->dss);
	fv_op_desc d = p->d;
	fv_backend_ctx *ctx = p->ctx;
	size_t count = p->count;
	memset(p, 0, sizeof *p);
	p->d = d, p->ctx = ctx, p->count = count;
}

static void plan_destroy(fv_plan **pp)
{
	if (!pp || !*pp)
		return;
	fv_plan_reset(*pp);
	free(*pp);
	*pp = NULL;
}

static int plan_new(fv_backend_ctx *ctx, const fv_op_desc *d, fv_plan **out)
{
	*out = NULL;
	fv_plan *p = calloc(1, sizeof *p);
	if (!p)
		return ENOMEM;
	p->d = *d;
	p->ctx = ctx;
	p->count = (size_t)d->n * fv_cpu_cpad(d->k, d->fmt_y) * d->oh * d->ow;
	int rc = 0;
	switch (d->kind) {
	case FV_K_CONV: rc = fv_cpu_conv_plan(p); break;
	case FV_K_BN: rc = fv_cpu_bn_plan(p); break;
	case FV_K_ACT: rc = fv_cpu_act_plan(p); break;
	case FV_K_POOL: rc = fv_cpu_pool_plan(p); break;
	case FV_K_REORDER: rc = fv_cpu_reorder_plan(p); break;
	case FV_K_DROPOUT:
		p->ws = fv_cpu_alloc(p->count);
		rc = p->ws ? 0 : ENOMEM;
		break;
	case FV_K_LINEAR: case FV_K_ADD: case FV_K_SCALE:
		break;
	}
	if (rc)
		plan_destroy(&p);
	*out = p;
	return rc;
}

/* op entry points live in conv.c, norm.c, elt.c */
int fv_cpu_conv_forward(fv_tensor *, const fv_tensor *, const void *, const void *, fv_plan *);
int fv_cpu_conv_backward_data(fv_tensor *, const fv_tensor *, const void *, fv_plan *);
int fv_cpu_conv_backward_filter(void *, void *, const fv_tensor *, const fv_tensor *, fv_plan *);
int fv_cpu_bn_forward_train(fv_tensor *, const fv_tensor *, const void *, const void *, void *,
			    void *, float, fv_plan *);
int fv_cpu_bn_forward_infer(fv_tensor *, const fv_tensor *, const void *, const void *,
			    const void *, const void *, fv_plan *);
int fv_cpu_bn_backward(fv_tensor *, void *, void *, const fv_tensor *, const fv_tensor *,
		       const void *, const void *, fv_plan *);
int fv_cpu_act_forward(fv_tensor *, const fv_tensor *, fv_plan *);
int fv_cpu_act_backward(fv_tensor *, const fv_tensor *, const fv_tensor *, const fv_tensor *,
			fv_plan *);
int fv_cpu_pool_forward(fv_tensor *, const fv_tensor *, fv_plan *, int);
int fv_cpu_pool_backward(fv_tensor *, const fv_tensor *, fv_plan *);
int fv_cpu_linear_forward(fv_tensor *, const fv_tensor *, const void *, const void *, fv_plan *);
int fv_cpu_linear_backward(fv_tensor *, void *, void *, const fv_tensor *, const fv_tensor *,
			   const void *, fv_plan *);
int fv_cpu_add_forward(fv_tensor *, const fv_tensor *, const fv_tensor *, fv_plan *);
int fv_cpu_add_relu_backward(fv_tensor *, const fv_tensor *, fv_plan *);
int fv_cpu_bn_add_forward_train(fv_tensor *, const fv_tensor *, const fv_tensor *, const void *,
				const void *, void *, void *, float, fv_plan *);
int fv_cpu_bn_add_forward_infer(fv_tensor *, const fv_tensor *, const fv_tensor *, const void *,
				const void *, const void *, const void *, fv_plan *);
int fv_cpu_bn_add_backward(fv_tensor *, fv_tensor *, void *, void *, const fv_tensor *,
			   const fv_tensor *, const void *, const void *, fv_plan *);
int fv_cpu_scale_forward(fv_tensor *, const fv_tensor *, const fv_tensor *, fv_plan *);
int fv_cpu_scale_backward(fv_tensor *, fv_tensor *, const fv_tensor *, const fv_tensor *,
			  const fv_tensor *, fv_plan *);
int fv_cpu_dropout_forward(fv_tensor *, const fv_tensor *, uint64_t, int, fv_plan *);
int fv_cpu_dropout_backward(fv_tensor *, const fv_tensor *, fv_plan *);
int fv_cpu_reorder_forward(fv_tensor *, const fv_tensor *, fv_plan *);
int fv_cpu_reorder_backward(fv_tensor *, const fv_tensor *, fv_plan *);

const fv_backend fv_backend_cpu = {
	.name = "cpu",
	.ctx_new = ctx_new,
	.ctx_destroy = ctx_destroy,
	.enter = enter,
	.alloc = cpu_alloc,
	.free = cpu_free,
	.to_device = cpu_copy_bytes,
	.to_host = cpu_copy_bytes,
	.host_visible = 1,
	.tensor_fmt = tensor_fmt,
	.tensor_bytes = tensor_bytes,
	.tensor_import = tensor_import,
	.tensor_export = tensor_export,
	.add_into = add_into,
	.copy = copy,
	.plan_new = plan_new,
	.plan_destroy = plan_destroy,
	.conv_forward = fv_cpu_conv_forward,
	.conv_backward_data = fv_cpu_conv_backward_data,
	.conv_backward_filter = fv_cpu_conv_backward_filter,
	.bn_forward_train = fv_cpu_bn_forward_train,
	.bn_forward_infer = fv_cpu_bn_forward_infer,
	.bn_backward = fv_cpu_bn_backward,
	.act_forward = fv_cpu_act_forward,
	.act_backward = fv_cpu_act_backward,
	.pool_forward = fv_cpu_pool_forward,
	.pool_backward = fv_cpu_pool_backward,
	.linear_forward = fv_cpu_linear_forward,
	.linear_backward = fv_cpu_linear_backward,
	.add_forward = fv_cpu_add_forward,
	.add_relu_backward = fv_cpu_add_relu_backward,
	.bn_add_forward_train = fv_cpu_bn_add_forward_train,
	.bn_add_forward_infer = fv_cpu_bn_add_forward_infer,
	.bn_add_backward = fv_cpu_bn_add_backward,
	.scale_forward = fv_cpu_scale_forward,
	.scale_backward = fv_cpu_scale_backward,
	.dropout_forward = fv_cpu_dropout_forward,
	.dropout_backward = fv_cpu_dropout_backward,
	.reorder_forward = fv_cpu_reorder_forward,
	.reorder_backward = fv_cpu_reorder_backward,
};
