/* tests/gpu/check_ops.c — every CUDA backend op against the CPU backend on
 * random inputs, forward and backward, in fp32 ("cuda", tolerance 1e-4)
 * and bf16 ("cuda:bf16", tolerance 2e-2), plus the fused device SGD against
 * nn/optim's host step, device cross-entropy against nn/loss.c, the uint8
 * input path, and a whole resnet20 step. The error of a tensor is
 * max|gpu - cpu| / max|cpu| (relative to the tensor's scale, so elements
 * near zero do not dominate). Prints one line per check and a summary;
 * exits 0 when all pass, 1 when any fails, 2 when no GPU answers.
 *
 *   fv-gpu-check [fp32|bf16|all]     (needs a GPU; see tests/gpu/run.sh) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fv_error.h"
#include "nn/backend.h"

extern const fv_backend fv_backend_cuda;

#include "tests/gpu/check.h"

static side cpu, gpu;
const char *mode;
static double tol;
static int nchecks, nfailed;
static uint64_t rng = 88172645463325252ull;

static size_t fv_cu_count_host(const fv_tensor *t)
{
	return (size_t)t->n * t->c * t->h * t->w;
}

static float frand(void) /* uniform [-1, 1) */
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (float)((rng >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

static float *rnd(size_t n, float scale)
{
	float *p = malloc((n ? n : 1) * sizeof *p);
	for (size_t i = 0; i < n; i++)
		p[i] = frand() * scale;
	return p;
}

static void die(int rc, const char *what)
{
	fprintf(stderr, "check_ops: %s: %s\n", what, fv_err_msg(rc));
	exit(1);
}

#define OK(expr) do { int rc_ = (expr); if (rc_) die(rc_, #expr); } while (0)

void cmp(const char *op, const char *what, const float *ref, const float *got, size_t n,
		double t)
{
	double mx = 0, err = 0;
	for (size_t i = 0; i < n; i++) {
		mx = fmax(mx, fabs(ref[i]));
		double e = fabs((double)ref[i] - got[i]);
		err = isnan(got[i]) || isnan(e) ? INFINITY : fmax(err, e);
	}
	double rel = err / (mx > 1e-12 ? mx : 1e-12);
	int bad = !(rel <= t);
	nchecks++, nfailed += bad;
	printf("%-5s %-34s %-8s rel err %.2e  tol %.0e  %s\n", mode, op, what, rel, t,
	       bad ? "FAIL" : "ok");
}

void verdict(const char *op, const char *what, double got, double lim)
{
	int bad = !(got <= lim);
	nchecks++, nfailed += bad;
	printf("%-5s %-34s %-8s %.2e <= %.0e  %s\n", mode, op, what, got, lim, bad ? "FAIL" : "ok");
}

/* ---- tensors and parameters on either side ----------------------------------- */

static fv_tensor mk(side *s, int n, int c, int h, int w, int fmt)
{
	fv_tensor t = { NULL, n, c, h, w, fmt };
	OK(s->be->alloc(s->ctx, s->be->tensor_bytes(s->ctx, n, c, h, w, fmt), &t.data));
	return t;
}

static void put(side *s, fv_tensor *t, const float *host)
{
	OK(s->be->tensor_import(s->ctx, t, host, t->n));
}

static float *get(side *s, const fv_tensor *t)
{
	float *h = malloc(fv_cu_count_host(t) * sizeof *h);
	OK(s->be->tensor_export(s->ctx, h, t, t->n));
	return h;
}

static void *vec(side *s, const float *host, size_t n)
{
	void *d;
	OK(s->be->alloc(s->ctx, n * sizeof(float), &d));
	if (host)
		OK(s->be->to_device(s->ctx, d, host, n * sizeof(float)));
	return d;
}

static float *vget(side *s, const void *d, size_t n)
{
	float *h = malloc(n * sizeof *h);
	OK(s->be->to_host(s->ctx, h, d, n * sizeof(float)));
	return h;
}

/* Compare tensor a (cpu) with b (gpu). */
static void cmpt(const char *op, const char *what, const fv_tensor *a, const fv_tensor *b)
{
	float *x = get(&cpu, a), *y = get(&gpu, b);
	cmp(op, what, x, y, fv_cu_count_host(a), tol);
	free(x), free(y);
}

static void cmpv(const char *op, const char *what, const void *a, const void *b, size_t n)
{
	float *x = vget(&cpu, a, n), *y = vget(&gpu, b, n);
	cmp(op, what, x, y, n, tol);
	free(x), free(y);
}

/* The two plans of one op: plain layouts on the CPU (its import/export
 * want them), the GPU's own layout there (plain_x: keep x plain). */
typedef struct pair {
	fv_op_desc dc, dg;
	fv_plan *pc, *pg;
} pair;

static void plans(pair *p, const fv_op_desc *d, int plain_x)
{
	int g = gpu.be->tensor_fmt(gpu.ctx, d->c, d->h, d->w, 0);
	p->dc = *d, p->dg = *d;
	p->dc.fmt_x = p->dc.fmt_y = FV_FMT_PLAIN;
	p->dg.fmt_x = plain_x ? FV_FMT_PLAIN : g;
	p->dg.fmt_y = d->kind == FV_K_LINEAR || d->kind == FV_K_REORDER ? FV_FMT_PLAIN : g;
	OK(cpu.be->plan_new(cpu.ctx, &p->dc, &p->pc));
	OK(gpu.be->plan_new(gpu.ctx, &p->dg, &p->pg));
}

static void drop(pair *p)
{
	cpu.be->plan_destroy(&p->pc);
	gpu.be->plan_destroy(&p->pg);
}

/* A tensor pair filled with the same host data (NULL: left zero). The CPU
 * gets the values the GPU tensor holds (bf16-rounded in bf16 mode), so a
 * mask or an argmax (ReLU, max pooling) decides alike on both sides and
 * the comparison measures the op, not the input's rounding. */
typedef struct tp { fv_tensor c, g; } tp;

static tp tpair(int n, int ch, int h, int w, int gfmt, const float *host)
{
	tp t = { mk(&cpu, n, ch, h, w, FV_FMT_PLAIN), mk(&gpu, n, ch, h, w, gfmt) };
	if (host) {
		put(&gpu, &t.g, host);
		float *held = get(&gpu, &t.g);
		put(&cpu, &t.c, held);
		free(held);
	}
	return t;
}

static void tfree(tp *t)
{
	cpu.be->free(cpu.ctx, t->c.data);
	gpu.be->free(gpu.ctx, t->g.data);
}

typedef struct vp { void *c, *g; } vp;

static vp vpair(const float *host, size_t n)
{
	vp v = { vec(&cpu, host, n), vec(&gpu, host, n) };
	return v;
}

static void vfree(vp *v)
{
	cpu.be->free(cpu.ctx, v->c);
	gpu.be->free(gpu.ctx, v->g);
}

/* ---- ops -------------------------------------------------------------------------- */

static void conv(int n, int c, int h, int w, int k, int r, int s, int pad, int dil, int g,
		 int bias, int plain_x)
{
	char name[96];
	snprintf(name, sizeof name, "conv %dx%dx%d k%d r%d s%d p%d d%d g%d%s%s", c, h, w, k, r, s,
		 pad, dil, g, bias ? " bias" : "", plain_x ? " plain-x" : "");
	fv_op_desc d = { .kind = FV_K_CONV, .n = n, .c = c, .h = h, .w = w, .k = k, .r = r,
			 .stride = s, .pad = pad, .dil = dil, .groups = g, .bias = bias,
			 .train = 1 };
	d.oh = (h + 2 * pad - dil * (r - 1) - 1) / s + 1;
	d.ow = (w + 2 * pad - dil * (r - 1) - 1) / s + 1;
	pair p;
	plans(&p, &d, plain_x);
	size_t nw = (size_t)k * (c / g) * r * r, nx = (size_t)n * c * h * w;
	size_t ny = (size_t)n * k * d.oh * d.ow;
	float *hx = rnd(nx, 1), *hw = rnd(nw, 1.0f / sqrtf((float)nw / k)), *hb = rnd(k, 1);
	float *hdy = rnd(ny, 1);
	tp x = tpair(n, c, h, w, p.dg.fmt_x, hx), y = tpair(n, k, d.oh, d.ow, p.dg.fmt_y, NULL);
	tp dx = tpair(n, c, h, w, p.dg.fmt_x, NULL), dy = tpair(n, k, d.oh, d.ow, p.dg.fmt_y, hdy);
	vp wt = vpair(hw, nw), b = vpair(hb, k), dw = vpair(NULL, nw), db = vpair(NULL, k);
	OK(cpu.be->conv_forward(&y.c, &x.c, wt.c, bias ? b.c : NULL, p.pc));
	OK(gpu.be->conv_forward(&y.g, &x.g, wt.g, bias ? b.g : NULL, p.pg));
	cmpt(name, "y", &y.c, &y.g);
	OK(cpu.be->conv_backward_data(&dx.c, &dy.c, wt.c, p.pc));
	OK(gpu.be->conv_backward_data(&dx.g, &dy.g, wt.g, p.pg));
	cmpt(name, "dx", &dx.c, &dx.g);
	OK(cpu.be->conv_backward_filter(dw.c, bias ? db.c : NULL, &dy.c, &x.c, p.pc));
	OK(gpu.be->conv_backward_filter(dw.g, bias ? db.g : NULL, &dy.g, &x.g, p.pg));
	cmpv(name, "dw", dw.c, dw.g, nw);
	if (bias)
		cmpv(name, "db", db.c, db.g, k);
	tfree(&x), tfree(&y), tfree(&dx), tfree(&dy);
	vfree(&wt), vfree(&b), vfree(&dw), vfree(&db);
	free(hx), free(hw), free(hb), free(hdy);
	drop(&p);
}

static void bn(int n, int c, int h, int w, int fuse)
{
	char name[64];
	snprintf(name, sizeof name, "bn %dx%dx%dx%d%s", n, c, h, w, fuse ? " +relu" : "");
	fv_op_desc d = { .kind = FV_K_BN, .n = n, .c = c, .h = h, .w = w, .k = c, .oh = h, .ow = w,
			 .eps = 1e-5f, .fuse_relu = fuse, .train = 1 };
	pair p;
	plans(&p, &d, 0);
	size_t nx = (size_t)n * c * h * w;
	float *hx = rnd(nx, 2), *hg = rnd(c, 1), *hb = rnd(c, 1), *hdy = rnd(nx, 1);
	float *hm = rnd(c, 0.1f), *hv = rnd(c, 0.2f);
	for (int i = 0; i < c; i++)
		hx[i] += 0.5f, hv[i] += 1.0f; /* an offset mean, positive variances */
	tp x = tpair(n, c, h, w, p.dg.fmt_x, hx), y = tpair(n, c, h, w, p.dg.fmt_y, NULL);
	tp dx = tpair(n, c, h, w, p.dg.fmt_x, NULL), dy = tpair(n, c, h, w, p.dg.fmt_y, hdy);
	vp g = vpair(hg, c), b = vpair(hb, c), rm = vpair(hm, c), rv = vpair(hv, c);
	vp dg = vpair(NULL, c), dbt = vpair(NULL, c);
	OK(cpu.be->bn_forward_train(&y.c, &x.c, g.c, b.c, rm.c, rv.c, 0.1f, p.pc));
	OK(gpu.be->bn_forward_train(&y.g, &x.g, g.g, b.g, rm.g, rv.g, 0.1f, p.pg));
	cmpt(name, "y", &y.c, &y.g);
	cmpv(name, "run_mean", rm.c, rm.g, c);
	cmpv(name, "run_var", rv.c, rv.g, c);
	OK(cpu.be->bn_backward(&dx.c, dg.c, dbt.c, &dy.c, &x.c, g.c, b.c, p.pc));
	OK(gpu.be->bn_backward(&dx.g, dg.g, dbt.g, &dy.g, &x.g, g.g, b.g, p.pg));
	cmpt(name, "dx", &dx.c, &dx.g);
	cmpv(name, "dgamma", dg.c, dg.g, c);
	cmpv(name, "dbeta", dbt.c, dbt.g, c);
	OK(cpu.be->bn_forward_infer(&y.c, &x.c, g.c, b.c, rm.c, rv.c, p.pc));
	OK(gpu.be->bn_forward_infer(&y.g, &x.g, g.g, b.g, rm.g, rv.g, p.pg));
	cmpt(name, "y infer", &y.c, &y.g);
	tfree(&x), tfree(&y), tfree(&dx), tfree(&dy);
	vfree(&g), vfree(&b), vfree(&rm), vfree(&rv), vfree(&dg), vfree(&dbt);
	free(hx), free(hg), free(hb), free(hdy), free(hm), free(hv);
	drop(&p);
}

/* Batch norm with a residual added before its ReLU (the end of a ResNet
 * block, fuse_add) against the CPU's batch norm, then add + ReLU; the
 * residual's gradient is the ReLU-masked output gradient. */
static void bn_add(int n, int c, int h, int w)
{
	char name[64];
	snprintf(name, sizeof name, "bn +add+relu %dx%dx%dx%d", n, c, h, w);
	fv_op_desc d = { .kind = FV_K_BN, .n = n, .c = c, .h = h, .w = w, .k = c, .oh = h, .ow = w,
			 .eps = 1e-5f, .fuse_relu = 1, .fuse_add = 1, .train = 1 };
	int g = gpu.be->tensor_fmt(gpu.ctx, c, h, w, 0);
	fv_op_desc dg = d, dcb = d, dca = d;
	dg.fmt_x = dg.fmt_y = g;
	dcb.fmt_x = dcb.fmt_y = FV_FMT_PLAIN, dcb.fuse_relu = dcb.fuse_add = 0;
	dca.kind = FV_K_ADD, dca.fmt_x = dca.fmt_y = FV_FMT_PLAIN, dca.fuse_add = 0;
	fv_plan *pg, *pcb, *pca;
	OK(gpu.be->plan_new(gpu.ctx, &dg, &pg));
	OK(cpu.be->plan_new(cpu.ctx, &dcb, &pcb));
	OK(cpu.be->plan_new(cpu.ctx, &dca, &pca));
	size_t nx = (size_t)n * c * h * w;
	float *hx = rnd(nx, 2), *hz = rnd(nx, 1), *hg = rnd(c, 1), *hb = rnd(c, 1);
	float *hdy = rnd(nx, 1), *hm = rnd(c, 0.1f), *hv = rnd(c, 0.2f);
	for (int i = 0; i < c; i++)
		hv[i] += 1.0f;
	tp x = tpair(n, c, h, w, g, hx), z = tpair(n, c, h, w, g, hz), y = tpair(n, c, h, w, g, NULL);
	tp t = tpair(n, c, h, w, g, NULL), dx = tpair(n, c, h, w, g, NULL);
	tp dz = tpair(n, c, h, w, g, NULL), dy = tpair(n, c, h, w, g, hdy);
	vp gm = vpair(hg, c), bt = vpair(hb, c), rm = vpair(hm, c), rv = vpair(hv, c);
	vp dgm = vpair(NULL, c), dbt = vpair(NULL, c);
	OK(cpu.be->bn_forward_train(&t.c, &x.c, gm.c, bt.c, rm.c, rv.c, 0.1f, pcb));
	OK(cpu.be->add_forward(&y.c, &t.c, &z.c, pca));
	OK(gpu.be->bn_add_forward_train(&y.g, &x.g, &z.g, gm.g, bt.g, rm.g, rv.g, 0.1f, pg));
	cmpt(name, "y", &y.c, &y.g);
	cmpv(name, "run_mean", rm.c, rm.g, c);
	cmpv(name, "run_var", rv.c, rv.g, c);
	OK(cpu.be->add_relu_backward(&dy.c, &y.c, pca)); /* dy masked: z's gradient */
	OK(cpu.be->bn_backward(&dx.c, dgm.c, dbt.c, &dy.c, &x.c, gm.c, bt.c, pcb));
	OK(gpu.be->bn_add_backward(&dx.g, &dz.g, dgm.g, dbt.g, &dy.g, &x.g, gm.g, bt.g, pg));
	cmpt(name, "dx", &dx.c, &dx.g);
	cmpt(name, "dz", &dy.c, &dz.g);
	cmpv(name, "dgamma", dgm.c, dgm.g, c);
	cmpv(name, "dbeta", dbt.c, dbt.g, c);
	OK(cpu.be->bn_forward_infer(&t.c, &x.c, gm.c, bt.c, rm.c, rv.c, pcb));
	OK(cpu.be->add_forward(&y.c, &t.c, &z.c, pca));
	OK(gpu.be->bn_add_forward_infer(&y.g, &x.g, &z.g, gm.g, bt.g, rm.g, rv.g, pg));
	cmpt(name, "y infer", &y.c, &y.g);
	tfree(&x), tfree(&z), tfree(&y), tfree(&t), tfree(&dx), tfree(&dz), tfree(&dy);
	vfree(&gm), vfree(&bt), vfree(&rm), vfree(&rv), vfree(&dgm), vfree(&dbt);
	free(hx), free(hz), free(hg), free(hb), free(hdy), free(hm), free(hv);
	cpu.be->plan_destroy(&pcb);
	cpu.be->plan_destroy(&pca);
	gpu.be->plan_destroy(&pg);
}

static void act(int a)
{
	static const char *names[] = { "relu", "relu6", "silu", "sigmoid" };
	char name[64];
	int n = 8, c = 16, h = 9, w = 9;
	snprintf(name, sizeof name, "act %s", names[a]);
	fv_op_desc d = { .kind = FV_K_ACT, .n = n, .c = c, .h = h, .w = w, .k = c, .oh = h, .ow = w,
			 .act = a, .train = 1 };
	pair p;
	plans(&p, &d, 0);
	size_t nx = (size_t)n * c * h * w;
	float *hx = rnd(nx, 8), *hdy = rnd(nx, 1);
	tp x = tpair(n, c, h, w, p.dg.fmt_x, hx), y = tpair(n, c, h, w, p.dg.fmt_y, NULL);
	tp dx = tpair(n, c, h, w, p.dg.fmt_x, NULL), dy = tpair(n, c, h, w, p.dg.fmt_y, hdy);
	OK(cpu.be->act_forward(&y.c, &x.c, p.pc));
	OK(gpu.be->act_forward(&y.g, &x.g, p.pg));
	cmpt(name, "y", &y.c, &y.g);
	OK(cpu.be->act_backward(&dx.c, &dy.c, &x.c, &y.c, p.pc));
	OK(gpu.be->act_backward(&dx.g, &dy.g, &x.g, &y.g, p.pg));
	cmpt(name, "dx", &dx.c, &dx.g);
	tfree(&x), tfree(&y), tfree(&dx), tfree(&dy);
	free(hx), free(hdy);
	drop(&p);
}

static void pool(int max, int r, int s, int pad)
{
	char name[64];
	int n = 8, c = 16, h = 14, w = 14;
	snprintf(name, sizeof name, "%s r%d s%d p%d", r ? max ? "maxpool" : "avgpool" : "gap", r, s,
		 pad);
	fv_op_desc d = { .kind = FV_K_POOL, .n = n, .c = c, .h = h, .w = w, .k = c, .r = r,
			 .stride = s, .pad = pad, .pool_max = max, .train = 1 };
	d.oh = r ? (h + 2 * pad - r) / s + 1 : 1;
	d.ow = r ? (w + 2 * pad - r) / s + 1 : 1;
	pair p;
	plans(&p, &d, 0);
	size_t nx = (size_t)n * c * h * w, ny = (size_t)n * c * d.oh * d.ow;
	float *hx = rnd(nx, 1), *hdy = rnd(ny, 1);
	/* distinct values in each plane, exact in bf16 (multiples of 1/128 up to
	 * 98/128): no ties, so the max is the same element on both sides */
	for (size_t pl = 0; pl < (size_t)n * c; pl++) {
		float *q = hx + pl * h * w;
		for (int i = 0; i < h * w; i++)
			q[i] = (float)(i - h * w / 2) / 128;
		for (int i = h * w - 1; i > 0; i--) {
			int j = (int)((frand() + 1) / 2 * (i + 1)) % (i + 1);
			float t = q[i];
			q[i] = q[j], q[j] = t;
		}
	}
	tp x = tpair(n, c, h, w, p.dg.fmt_x, hx), y = tpair(n, c, d.oh, d.ow, p.dg.fmt_y, NULL);
	tp dx = tpair(n, c, h, w, p.dg.fmt_x, NULL), dy = tpair(n, c, d.oh, d.ow, p.dg.fmt_y, hdy);
	OK(cpu.be->pool_forward(&y.c, &x.c, p.pc, 1));
	OK(gpu.be->pool_forward(&y.g, &x.g, p.pg, 1));
	cmpt(name, "y", &y.c, &y.g);
	OK(cpu.be->pool_backward(&dx.c, &dy.c, p.pc));
	OK(gpu.be->pool_backward(&dx.g, &dy.g, p.pg));
	cmpt(name, "dx", &dx.c, &dx.g);
	tfree(&x), tfree(&y), tfree(&dx), tfree(&dy);
	free(hx), free(hdy);
	drop(&p);
}

static void linear(int n, int c, int k)
{
	char name[64];
	snprintf(name, sizeof name, "linear %d->%d n%d", c, k, n);
	fv_op_desc d = { .kind = FV_K_LINEAR, .n = n, .c = c, .h = 1, .w = 1, .k = k, .oh = 1,
			 .ow = 1, .bias = 1, .train = 1 };
	pair p;
	plans(&p, &d, 1);
	float *hx = rnd((size_t)n * c, 1), *hw = rnd((size_t)k * c, 0.1f), *hb = rnd(k, 1);
	float *hdy = rnd((size_t)n * k, 1);
	tp x = tpair(n, c, 1, 1, 0, hx), y = tpair(n, k, 1, 1, 0, NULL);
	tp dx = tpair(n, c, 1, 1, 0, NULL), dy = tpair(n, k, 1, 1, 0, hdy);
	vp wt = vpair(hw, (size_t)k * c), b = vpair(hb, k), dw = vpair(NULL, (size_t)k * c);
	vp db = vpair(NULL, k);
	OK(cpu.be->linear_forward(&y.c, &x.c, wt.c, b.c, p.pc));
	OK(gpu.be->linear_forward(&y.g, &x.g, wt.g, b.g, p.pg));
	cmpt(name, "y", &y.c, &y.g);
	OK(cpu.be->linear_backward(&dx.c, dw.c, db.c, &dy.c, &x.c, wt.c, p.pc));
	OK(gpu.be->linear_backward(&dx.g, dw.g, db.g, &dy.g, &x.g, wt.g, p.pg));
	cmpt(name, "dx", &dx.c, &dx.g);
	cmpv(name, "dw", dw.c, dw.g, (size_t)k * c);
	cmpv(name, "db", db.c, db.g, k);
	tfree(&x), tfree(&y), tfree(&dx), tfree(&dy);
	vfree(&wt), vfree(&b), vfree(&dw), vfree(&db);
	free(hx), free(hw), free(hb), free(hdy);
	drop(&p);
}

static void add(int fuse)
{
	const char *name = fuse ? "add +relu" : "add";
	int n = 8, c = 16, h = 7, w = 7;
	fv_op_desc d = { .kind = FV_K_ADD, .n = n, .c = c, .h = h, .w = w, .k = c, .oh = h, .ow = w,
			 .fuse_relu = fuse, .train = 1 };
	pair p;
	plans(&p, &d, 0);
	size_t nx = (size_t)n * c * h * w;
	float *ha = rnd(nx, 1), *hb = rnd(nx, 1), *hdy = rnd(nx, 1);
	int f = p.dg.fmt_x;
	tp a = tpair(n, c, h, w, f, ha), b = tpair(n, c, h, w, f, hb), y = tpair(n, c, h, w, f, NULL);
	tp dy = tpair(n, c, h, w, f, hdy);
	OK(cpu.be->add_forward(&y.c, &a.c, &b.c, p.pc));
	OK(gpu.be->add_forward(&y.g, &a.g, &b.g, p.pg));
	cmpt(name, "y", &y.c, &y.g);
	if (fuse) {
		OK(cpu.be->add_relu_backward(&dy.c, &y.c, p.pc));
		OK(gpu.be->add_relu_backward(&dy.g, &y.g, p.pg));
		cmpt(name, "dy", &dy.c, &dy.g);
	}
	OK(cpu.be->add_into(cpu.ctx, &a.c, &b.c));
	OK(gpu.be->add_into(gpu.ctx, &a.g, &b.g));
	cmpt("add_into", "y", &a.c, &a.g);
	tfree(&a), tfree(&b), tfree(&y), tfree(&dy);
	free(ha), free(hb), free(hdy);
	drop(&p);
}

static void scale(void)
{
	int n = 8, c = 24, h = 7, w = 7;
	fv_op_desc d = { .kind = FV_K_SCALE, .n = n, .c = c, .h = h, .w = w, .k = c, .oh = h,
			 .ow = w, .train = 1 };
	pair p;
	plans(&p, &d, 0);
	size_t nx = (size_t)n * c * h * w;
	float *hx = rnd(nx, 1), *hs = rnd((size_t)n * c, 1), *hdy = rnd(nx, 1);
	int f = p.dg.fmt_x, fs = gpu.be->tensor_fmt(gpu.ctx, c, 1, 1, 0);
	tp x = tpair(n, c, h, w, f, hx), s = tpair(n, c, 1, 1, fs, hs), y = tpair(n, c, h, w, f, NULL);
	tp dx = tpair(n, c, h, w, f, NULL), ds = tpair(n, c, 1, 1, fs, NULL);
	tp dy = tpair(n, c, h, w, f, hdy);
	OK(cpu.be->scale_forward(&y.c, &x.c, &s.c, p.pc));
	OK(gpu.be->scale_forward(&y.g, &x.g, &s.g, p.pg));
	cmpt("scale", "y", &y.c, &y.g);
	OK(cpu.be->scale_backward(&dx.c, &ds.c, &dy.c, &x.c, &s.c, p.pc));
	OK(gpu.be->scale_backward(&dx.g, &ds.g, &dy.g, &x.g, &s.g, p.pg));
	cmpt("scale", "dx", &dx.c, &dx.g);
	cmpt("scale", "ds", &ds.c, &ds.g);
	tfree(&x), tfree(&s), tfree(&y), tfree(&dx), tfree(&ds), tfree(&dy);
	free(hx), free(hs), free(hdy);
	drop(&p);
}

/* Same hash and element order as the CPU in plain fp32: identical masks;
 * in bf16 (NHWC order) the dropped share and the scaling are checked. */
static void dropout(void)
{
	int n = 8, c = 16, h = 8, w = 8;
	float pr = 0.3f;
	fv_op_desc d = { .kind = FV_K_DROPOUT, .n = n, .c = c, .h = h, .w = w, .k = c, .oh = h,
			 .ow = w, .p = pr, .train = 1 };
	pair p;
	plans(&p, &d, 0);
	size_t nx = (size_t)n * c * h * w;
	float *hx = rnd(nx, 1), *hdy = rnd(nx, 1);
	for (size_t i = 0; i < nx; i++)
		hx[i] = 1.0f + fabsf(hx[i]); /* nonzero, so y == 0 means dropped */
	int f = p.dg.fmt_x;
	tp x = tpair(n, c, h, w, f, hx), y = tpair(n, c, h, w, f, NULL);
	tp dx = tpair(n, c, h, w, f, NULL), dy = tpair(n, c, h, w, f, hdy);
	OK(cpu.be->dropout_forward(&y.c, &x.c, 1234, 1, p.pc));
	OK(gpu.be->dropout_forward(&y.g, &x.g, 1234, 1, p.pg));
	OK(cpu.be->dropout_backward(&dx.c, &dy.c, p.pc));
	OK(gpu.be->dropout_backward(&dx.g, &dy.g, p.pg));
	if (f == FV_FMT_PLAIN) {
		cmpt("dropout", "y", &y.c, &y.g);
		cmpt("dropout", "dx", &dx.c, &dx.g);
	} else {
		float *yg = get(&gpu, &y.g), *xg = get(&gpu, &x.g);
		size_t dropped = 0, off = 0;
		for (size_t i = 0; i < nx; i++) {
			if (yg[i] == 0)
				dropped++;
			else if (fabsf(yg[i] * (1 - pr) - xg[i]) > 0.02f * xg[i])
				off++;
		}
		double share = (double)dropped / nx;
		int bad = fabs(share - pr) > 0.02 || off;
		nchecks++, nfailed += bad;
		printf("%-5s %-34s %-8s dropped %.3f (p %.2f), %zu misscaled  %s\n", mode, "dropout",
		       "y", share, pr, off, bad ? "FAIL" : "ok");
		free(yg), free(xg);
	}
	tfree(&x), tfree(&y), tfree(&dx), tfree(&dy);
	free(hx), free(hdy);
	drop(&p);
}

static void flatten(void)
{
	int n = 8, c = 32, h = 3, w = 3;
	fv_op_desc d = { .kind = FV_K_REORDER, .n = n, .c = c, .h = h, .w = w, .k = c * h * w,
			 .oh = 1, .ow = 1, .train = 1 };
	pair p;
	plans(&p, &d, 0);
	size_t nx = (size_t)n * c * h * w;
	float *hx = rnd(nx, 1), *hdy = rnd(nx, 1);
	tp x = tpair(n, c, h, w, p.dg.fmt_x, hx), y = tpair(n, c * h * w, 1, 1, 0, NULL);
	tp dx = tpair(n, c, h, w, p.dg.fmt_x, NULL), dy = tpair(n, c * h * w, 1, 1, 0, hdy);
	OK(cpu.be->reorder_forward(&y.c, &x.c, p.pc));
	OK(gpu.be->reorder_forward(&y.g, &x.g, p.pg));
	cmpt("flatten", "y", &y.c, &y.g);
	OK(cpu.be->reorder_backward(&dx.c, &dy.c, p.pc));
	OK(gpu.be->reorder_backward(&dx.g, &dy.g, p.pg));
	cmpt("flatten", "dx", &dx.c, &dx.g);
	tfree(&x), tfree(&y), tfree(&dx), tfree(&dy);
	free(hx), free(hdy);
	drop(&p);
}

static void run_mode(const char *device, const char *name, double t)
{
	mode = name, tol = t;
	OK(fv_backend_cuda.ctx_open(&gpu.ctx, 0, device));
	conv(8, 16, 12, 12, 32, 3, 1, 1, 1, 1, 0, 0);
	conv(8, 32, 12, 12, 32, 3, 2, 1, 1, 1, 1, 0);
	conv(8, 32, 8, 8, 64, 1, 1, 0, 1, 1, 0, 0);
	conv(8, 32, 8, 8, 32, 3, 1, 1, 1, 32, 0, 0);  /* depthwise */
	conv(8, 16, 10, 10, 16, 3, 1, 2, 2, 1, 0, 0); /* dilated */
	conv(8, 32, 8, 8, 64, 3, 1, 1, 1, 4, 1, 0);   /* grouped, bias */
	conv(4, 3, 32, 32, 16, 7, 2, 3, 1, 1, 0, 1);  /* the stem: plain fp32 input */
	conv(4, 1, 28, 28, 16, 3, 1, 1, 1, 1, 0, 1);
	bn(8, 16, 7, 7, 0);
	bn(8, 32, 5, 5, 1);
	bn(32, 8, 1, 1, 0);
	bn_add(8, 32, 5, 5);
	bn_add(16, 64, 7, 7);
	for (int a = 0; a < 4; a++)
		act(a);
	pool(1, 3, 2, 1);
	pool(1, 2, 2, 0);
	pool(0, 2, 2, 0);
	pool(0, 3, 1, 1);
	pool(0, 0, 1, 0);
	linear(16, 64, 10);
	linear(7, 300, 33);
	add(0);
	add(1);
	scale();
	dropout();
	flatten();
	check_net_all(&gpu, device, t);
	fv_backend_cuda.ctx_destroy(&gpu.ctx);
}

int main(int argc, char **argv)
{
	const char *which = argc > 1 ? argv[1] : "all";
	int rc = fv_backend_cuda.probe("cuda");
	if (rc) {
		fprintf(stderr, "check_ops: %s\n", fv_err_msg(rc));
		return 2;
	}
	cpu.be = &fv_backend_cpu;
	gpu.be = &fv_backend_cuda;
	OK(cpu.be->ctx_new(&cpu.ctx, 0));
	if (!strcmp(which, "all") || !strcmp(which, "fp32"))
		run_mode("cuda", "fp32", 1e-4);
	if (!strcmp(which, "all") || !strcmp(which, "bf16"))
		run_mode("cuda:bf16", "bf16", 2e-2);
	cpu.be->ctx_destroy(&cpu.ctx);
	printf("check_ops: %d checks, %d failed\n", nchecks, nfailed);
	return nfailed ? 1 : 0;
}
