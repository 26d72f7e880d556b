/* exporter/calib.c — activation ranges for quantization. Every value of the
 * FP32 model is observed over the calibration images twice: the first pass
 * finds min/max, the second fills a 2048-bin histogram of |x| over
 * [0, max|x|]. From those: min-max, a percentile clip (99.99 by default),
 * or TensorRT's entropy calibration (the clip threshold whose quantized
 * distribution is closest to the observed one in KL divergence). Tensors
 * that are never negative (after ReLU) spend all 256 levels on [0, T];
 * others are clipped symmetrically to [-T, T]. The input's range is not
 * calibrated: it is the exact normalized pixel range. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exporter/xmodel.h"
#include "fv_error.h"

#define NBINS 2048

struct fv_calib {
	int nv, pass;
	double *mn, *mx;
	double (*hist)[NBINS];
	float in_lo, in_hi;
	int classes;
};

int fv_calib_new(fv_calib **out, const fv_xmodel *m)
{
	fv_calib *c = calloc(1, sizeof *c);
	if (!c)
		return ENOMEM;
	c->nv = m->nops + 1;
	c->classes = m->classes;
	c->mn = malloc(sizeof *c->mn * (size_t)c->nv);
	c->mx = malloc(sizeof *c->mx * (size_t)c->nv);
	c->hist = calloc((size_t)c->nv, sizeof *c->hist);
	if (!c->mn || !c->mx || !c->hist) {
		fv_calib_destroy(&c);
		return ENOMEM;
	}
	for (int v = 0; v < c->nv; v++)
		c->mn[v] = DBL_MAX, c->mx[v] = -DBL_MAX;
	c->in_lo = FLT_MAX, c->in_hi = -FLT_MAX;
	for (int ch = 0; ch < m->in_c; ch++) {
		float a = (0 - m->mean[ch]) / m->std[ch], b = (255 - m->mean[ch]) / m->std[ch];
		c->in_lo = fminf(c->in_lo, fminf(a, b));
		c->in_hi = fmaxf(c->in_hi, fmaxf(a, b));
	}
	*out = c;
	return 0;
}

void fv_calib_destroy(fv_calib **p)
{
	fv_calib *c = *p;
	if (!c)
		return;
	free(c->mn);
	free(c->mx);
	free(c->hist);
	free(c);
	*p = NULL;
}

static void observe(void *ctx, int v, const float *x, size_t n, int ch)
{
	(void)ch;
	fv_calib *c = ctx;
	if (v < 0 || v >= c->nv)
		return;
	if (c->pass == 0) {
		double mn = c->mn[v], mx = c->mx[v];
		for (size_t i = 0; i < n; i++) {
			mn = x[i] < mn ? x[i] : mn;
			mx = x[i] > mx ? x[i] : mx;
		}
		c->mn[v] = mn, c->mx[v] = mx;
		return;
	}
	double amax = fmax(fabs(c->mn[v]), fabs(c->mx[v]));
	if (!(amax > 0))
		return;
	double k = NBINS / amax;
	for (size_t i = 0; i < n; i++) {
		int b = (int)(fabs(x[i]) * k);
		c->hist[v][b < NBINS ? b : NBINS - 1] += 1;
	}
}

int fv_calib_pass(fv_calib *c, fv_rt *rt32, const float *x, int n)
{
	float *logits = malloc(sizeof *logits * (size_t)n * (size_t)c->classes);
	if (!logits)
		return ENOMEM;
	int rc = fv_rt_run_observe(rt32, x, n, logits, observe, c);
	free(logits);
	return rc;
}

void fv_calib_next(fv_calib *c) { c->pass = 1; }

double fv_calib_percentile(const double *hist, int nbins, double amax, double pct)
{
	double total = 0, run = 0;
	for (int i = 0; i < nbins; i++)
		total += hist[i];
	if (total <= 0)
		return amax;
	double want = total * pct / 100.0;
	for (int i = 0; i < nbins; i++) {
		run += hist[i];
		if (run >= want)
			return (i + 1) * amax / nbins;
	}
	return amax;
}

double fv_calib_kl_threshold(const double *hist, int nbins, double amax, int levels)
{
	if (nbins <= levels)
		return amax;
	double *p = malloc(sizeof *p * (size_t)nbins), *q = malloc(sizeof *q * (size_t)nbins);
	if (!p || !q) {
		free(p);
		free(q);
		return amax;
	}
	/* The zero bin of a post-ReLU tensor holds a spike of exact zeros that
	 * any threshold represents exactly; left in, it drags the search toward
	 * tiny thresholds. As NVIDIA's pytorch-quantization does, flatten it. */
	double *h = malloc(sizeof *h * (size_t)nbins);
	if (!h) {
		free(p);
		free(q);
		return amax;
	}
	memcpy(h, hist, sizeof *h * (size_t)nbins);
	h[0] = h[1];
	hist = h;
	double tail = 0, best = DBL_MAX;
	int best_i = nbins;
	for (int i = 0; i < nbins; i++)
		tail += hist[i];
	for (int i = 0; i < levels; i++)
		tail -= hist[i];
	/* Candidates every STRIDE bins (as pytorch-quantization's `stride`): the
	 * threshold moves by 1/256 of the range at most, the search is 8x faster. */
	enum { STRIDE = 8 };
	for (int i = levels; i <= nbins; i++) {
		double here = tail;
		if (i < nbins)
			tail -= hist[i];
		if ((i - levels) % STRIDE && i != nbins)
			continue;
		/* P: the first i bins, everything beyond folded into the last. */
		double psum = 0;
		for (int j = 0; j < i; j++)
			p[j] = hist[j];
		p[i - 1] += here;
		/* Q: the first i bins merged into `levels` groups, spread back over the
		 * non-empty bins of each group. */
		for (int g = 0; g < levels; g++) {
			int a = (int)((long)g * i / levels), b = (int)((long)(g + 1) * i / levels);
			double sum = 0;
			int nz = 0;
			for (int j = a; j < b; j++)
				sum += hist[j], nz += hist[j] != 0;
			for (int j = a; j < b; j++)
				q[j] = hist[j] != 0 ? sum / nz : 0;
		}
		double qsum = 0;
		for (int j = 0; j < i; j++)
			psum += p[j], qsum += q[j];
		if (psum <= 0 || qsum <= 0)
			continue;
		double kl = 0;
		for (int j = 0; j < i; j++) {
			if (p[j] <= 0)
				continue;
			double pj = p[j] / psum, qj = q[j] > 0 ? q[j] / qsum : 1e-10;
			kl += pj * log(pj / qj);
		}
		if (kl < best)
			best = kl, best_i = i;
	}
	free(p);
	free(q);
	free(h);
	return (best_i + 0.5) * amax / nbins < amax ? (best_i + 0.5) * amax / nbins : amax;
}

int fv_calib_ranges(const fv_calib *c, enum fv_calib_method method, double pct, float *lo, float *hi)
{
	for (int v = 0; v < c->nv; v++) {
		double mn = c->mn[v], mx = c->mx[v];
		if (mn > mx) /* never observed */
			mn = mx = 0;
		mn = fmin(mn, 0), mx = fmax(mx, 0);
		double amax = fmax(-mn, mx), t = amax;
		int nonneg = mn >= 0;
		if (method == FV_CALIB_PERCENTILE)
			t = fv_calib_percentile(c->hist[v], NBINS, amax, pct);
		else if (method == FV_CALIB_KL)
			t = fv_calib_kl_threshold(c->hist[v], NBINS, amax, nonneg ? 255 : 128);
		lo[v] = (float)fmax(mn, -t);
		hi[v] = (float)fmin(mx, t);
	}
	lo[0] = c->in_lo, hi[0] = c->in_hi;
	return 0;
}
