/* nn/cpu/elt.c — linear (dnnl_sgemm), residual add, squeeze-excitation
 * scale, dropout and layout reorders (flatten).
 *
 * linear    x: n x c (plain), w: k x c, b: k  ->  y: n x k
 * add       a, b, y: n x c x h x w (same layout)
 * scale     x, y: n x c x h x w; s: n x c x 1 x 1 (any layout)
 * dropout   x, y: same shape; mask in the plan
 * reorder   x in fmt_x -> y in fmt_y, same logical n x c x h x w
 */
#include <stdint.h>
#include <string.h>

#include "fv_error.h"
#include "nn/cpu/cpu.h"

/* ---- linear ---------------------------------------------------------------- */

int fv_cpu_linear_forward(fv_tensor *y, const fv_tensor *x, const void *w, const void *b,
			  fv_plan *p)
{
	int n = p->d.n, c = p->d.c, k = p->d.k;
	float *yd = y->data;
	const float *bd = b;
	int rc = fv_cpu_check(dnnl_sgemm('N', 'T', n, k, c, 1.0f, x->data, c, w, c, 0.0f, yd, k),
			      "sgemm");
	if (rc || !b)
		return rc;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < k; j++)
			yd[(size_t)i * k + j] += bd[j];
	return 0;
}

int fv_cpu_linear_backward(fv_tensor *dx, void *dw, void *db, const fv_tensor *dy,
			   const fv_tensor *x, const void *w, fv_plan *p)
{
	int n = p->d.n, c = p->d.c, k = p->d.k, rc = 0;
	const float *g = dy->data;
	if (dx)
		rc = fv_cpu_check(dnnl_sgemm('N', 'N', n, c, k, 1.0f, g, k, w, c, 0.0f, dx->data, c),
				  "sgemm");
	if (!rc && dw)
		rc = fv_cpu_check(dnnl_sgemm('T', 'N', k, c, n, 1.0f, g, k, x->data, c, 0.0f, dw, c),
				  "sgemm");
	if (!rc && db) {
		float *bd = db;
		for (int j = 0; j < k; j++) {
			float s = 0;
			for (int i = 0; i < n; i++)
				s += g[(size_t)i * k + j];
			bd[j] = s;
		}
	}
	return rc;
}

/* ---- add ------------------------------------------------------------------- */

int fv_cpu_add_forward(fv_tensor *y, const fv_tensor *a, const fv_tensor *b, fv_plan *p)
{
	float *yd = y->data;
	const float *ad = a->data, *bd = b->data;
	long n = (long)p->count;
	if (p->d.fuse_relu) {
#pragma omp parallel for simd schedule(static)
		for (long i = 0; i < n; i++) {
			float v = ad[i] + bd[i];
			yd[i] = v > 0 ? v : 0;
		}
		return 0;
	}
#pragma omp parallel for simd schedule(static)
	for (long i = 0; i < n; i++)
		yd[i] = ad[i] + bd[i];
	return 0;
}

int fv_cpu_add_relu_backward(fv_tensor *dy, const fv_tensor *y, fv_plan *p)
{
	float *g = dy->data;
	const float *yd = y->data;
	long n = (long)p->count;
#pragma omp parallel for simd schedule(static)
	for (long i = 0; i < n; i++)
		g[i] = yd[i] > 0 ? g[i] : 0;
	return 0;
}

/* ---- squeeze-excitation scale ---------------------------------------------- */

/* The (n, c) walk shared by forward and backward: x is n x cpad x hw with
 * channel blocks of B, s has a row stride of cs floats. */
typedef struct {
	int n, c, cpad, hw, B, cs;
} sgeom;

static sgeom geom(const fv_tensor *x, const fv_tensor *s)
{
	sgeom g = { x->n, x->c, fv_cpu_cpad(x->c, x->fmt), x->h * x->w, fv_cpu_block(x->fmt),
		    fv_cpu_cpad(s->c, s->fmt) };
	return g;
}

int fv_cpu_scale_forward(fv_tensor *y, const fv_tensor *x, const fv_tensor *s, fv_plan *p)
{
	sgeom g = geom(x, s);
	g.n = p->d.n;
	const float *xd = x->data, *sd = s->data;
	float *yd = y->data;
	int nb = g.cpad / g.B;
#pragma omp parallel for schedule(static)
	for (long i = 0; i < (long)g.n * nb; i++) {
		long n = i / nb, cb = i % nb;
		size_t base = (size_t)i * g.hw * g.B;
		float sv[16];
		for (int l = 0; l < g.B; l++) {
			int c = (int)cb * g.B + l;
			sv[l] = c < g.c ? sd[n * g.cs + c] : 0;
		}
		for (int j = 0; j < g.hw; j++)
			for (int l = 0; l < g.B; l++)
				yd[base + (size_t)j * g.B + l] = xd[base + (size_t)j * g.B + l] * sv[l];
	}
	return 0;
}

int fv_cpu_scale_backward(fv_tensor *dx, fv_tensor *ds, const fv_tensor *dy,
			  const fv_tensor *x, const fv_tensor *s, fv_plan *p)
{
	sgeom g = geom(x, s);
	g.n = p->d.n;
	const float *xd = x->data, *sd = s->data, *gd = dy->data;
	float *dxd = dx ? dx->data : NULL, *dsd = ds ? ds->data : NULL;
	int nb = g.cpad / g.B;
	if (dsd)
		memset(dsd, 0, (size_t)g.n * g.cs * sizeof(float));
#pragma omp parallel for schedule(static)
	for (long i = 0; i < (long)g.n * nb; i++) {
		long n = i / nb, cb = i % nb;
		size_t base = (size_t)i * g.hw * g.B;
		float sv[16], acc[16] = { 0 };
		for (int l = 0; l < g.B; l++) {
			int c = (int)cb * g.B + l;
			sv[l] = c < g.c ? sd[n * g.cs + c] : 0;
		}
		for (int j = 0; j < g.hw; j++)
			for (int l = 0; l < g.B; l++) {
				size_t o = base + (size_t)j * g.B + l;
				if (dxd)
					dxd[o] = gd[o] * sv[l];
				acc[l] += gd[o] * xd[o];
			}
		if (dsd)
			for (int l = 0; l < g.B; l++) {
				int c = (int)cb * g.B + l;
				if (c < g.c)
					dsd[n * g.cs + c] = acc[l];
			}
	}
	return 0;
}

/* ---- dropout --------------------------------------------------------------- */

/* A counter-based hash, so the mask depends on (seed, element) only and not
 * on the thread count. */
static inline uint32_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (uint32_t)((z ^ (z >> 31)) >> 32);
}

int fv_cpu_dropout_forward(fv_tensor *y, const fv_tensor *x, uint64_t seed, int train,
			   fv_plan *p)
{
	const float *xd = x->data;
	float *yd = y->data;
	uint8_t *m = p->ws;
	long n = (long)p->count;
	float keep = 1.0f - p->d.p, inv = 1.0f / keep;
	uint32_t thr = (uint32_t)((double)p->d.p * 4294967296.0);
	if (!train || p->d.p == 0.0f) {
		memcpy(yd, xd, (size_t)n * sizeof(float));
		memset(m, 1, (size_t)n);
		return 0;
	}
	uint64_t s = seed * 0x100000001b3ull;
#pragma omp parallel for schedule(static)
	for (long i = 0; i < n; i++) {
		m[i] = mix(s + (uint64_t)i) >= thr;
		yd[i] = m[i] ? xd[i] * inv : 0.0f;
	}
	return 0;
}

int fv_cpu_dropout_backward(fv_tensor *dx, const fv_tensor *dy, fv_plan *p)
{
	const float *g = dy->data;
	float *d = dx->data;
	const uint8_t *m = p->ws;
	float inv = 1.0f / (1.0f - p->d.p);
	long n = (long)p->count;
#pragma omp parallel for simd schedule(static)
	for (long i = 0; i < n; i++)
		d[i] = m[i] ? g[i] * inv : 0.0f;
	return 0;
}

/* ---- reorder (flatten) ----------------------------------------------------- */

int fv_cpu_reorder_plan(fv_plan *p)
{
	const fv_op_desc *d = &p->d;
	dnnl_memory_desc_t x = fv_cpu_md(d->n, d->c, d->h, d->w, d->fmt_x);
	dnnl_memory_desc_t y = fv_cpu_md(d->n, d->c, d->h, d->w, d->fmt_y);
	int rc = fv_cpu_mem(p, M_X, &x);
	if (!rc)
		rc = fv_cpu_mem(p, M_Y, &y);
	if (!rc)
		rc = fv_cpu_reorder(&p->fwd, p->ctx, &x, &y);
	if (!rc && d->train)
		rc = fv_cpu_reorder(&p->bwd, p->ctx, &y, &x);
	return rc;
}

int fv_cpu_reorder_forward(fv_tensor *y, const fv_tensor *x, fv_plan *p)
{
	if (p->d.fmt_x == p->d.fmt_y) {
		memcpy(y->data, x->data, p->count * sizeof(float));
		return 0;
	}
	fv_cpu_arg a[] = { { DNNL_ARG_FROM, M_X, x->data }, { DNNL_ARG_TO, M_Y, y->data } };
	return fv_cpu_exec(p, p->fwd, 2, a);
}

int fv_cpu_reorder_backward(fv_tensor *dx, const fv_tensor *dy, fv_plan *p)
{
	if (p->d.fmt_x == p->d.fmt_y) {
		memcpy(dx->data, dy->data, p->count * sizeof(float));
		return 0;
	}
	fv_cpu_arg a[] = { { DNNL_ARG_FROM, M_Y, dy->data }, { DNNL_ARG_TO, M_X, dx->data } };
	return fv_cpu_exec(p, p->bwd, 2, a);
}
