/* nn_gradcheck.h — finite-difference gradient checks shared by test_ops.c
 * and test_net.c (static helpers; include once per test program).
 *
 * Central differences on the float32 engine: with step h the truncation
 * error is O(h^2 f''') and the rounding error about 1e-7 |L| / h. The tests
 * use h = 1e-3: rounding ~1e-4 absolute on losses of order 1, while a larger
 * h (1e-2, measured) lets ReLU6/max-pool kinks fall inside the step for a
 * tenth of the samples of a 1x1 conv's weight. The tolerance is 2e-2
 * relative (|g - fd| / (|g| + |fd| + 1e-2)); a few outliers (kinks) are
 * allowed but no systematic error: a wrong sign, a factor of two or a
 * missing term fails nearly every sample. */
#ifndef NN_GRADCHECK_H
#define NN_GRADCHECK_H

#include <stdlib.h>
#include <string.h>
#include "fv_error.h"
#include "fv_test.h"
#include "nn/net.h"

static void gc_fill(float *x, size_t n, float scale)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)((fv_test_uniform() * 2 - 1) * scale);
}

static double gc_loss(fv_net *net, const float *x, int n, const int *lab, const fv_loss_opts *o)
{
	float l = -1;
	fv_net_sync_to_device(net);
	if (fv_net_forward(net, x, n, 1) || fv_net_loss(net, lab, o, &l))
		return NAN;
	return l;
}

/* Index of the largest |g| in g[0..n) not yet taken (taken[] marks). */
static size_t gc_top(const float *g, size_t n, unsigned char *taken)
{
	size_t best = 0;
	float bv = -1;
	for (size_t j = 0; j < n; j++)
		if (!taken[j] && fabsf(g[j]) > bv)
			bv = fabsf(g[j]), best = j;
	taken[best] = 1;
	return best;
}

/* Checks up to `per` components of every trainable parameter (all when it
 * has no more; else random ones, or with top != 0 those with the largest
 * gradients, whose signal stands well above the float32 rounding of a deep
 * net's loss); returns the number checked, fails the test on errors. */
static int gc_check_top(fv_net *net, const float *x, int n, const int *lab,
			const fv_loss_opts *o, int per, double h, double tol, int top)
{
	float l;
	FV_CHECK_OK(fv_net_forward(net, x, n, 1));
	FV_CHECK_OK(fv_net_loss(net, lab, o, &l));
	FV_CHECK_OK(fv_net_backward(net));
	fv_net_sync_to_host(net);
	fv_param *ps = fv_net_params(net);
	size_t np = fv_net_nparams(net);
	int checked = 0, bad = 0;
	double worst = 0;
	const char *worst_name = "";
	for (size_t i = 0; i < np; i++) {
		fv_param *p = &ps[i];
		if (p->kind == FV_PARAM_BUFFER || p->frozen)
			continue;
		float *g = malloc(p->numel * sizeof *g);
		unsigned char *taken = calloc(p->numel, 1);
		memcpy(g, p->grad, p->numel * sizeof *g);
		int m = (int)(p->numel < (size_t)per ? p->numel : (size_t)per);
		for (int s = 0; s < m; s++) {
			size_t j = p->numel <= (size_t)per ? (size_t)s : top ? gc_top(g, p->numel, taken)
				: fv_test_rand() % p->numel;
			float w = p->data[j];
			p->data[j] = (float)(w + h);
			double lp = gc_loss(net, x, n, lab, o);
			p->data[j] = (float)(w - h);
			double lm = gc_loss(net, x, n, lab, o);
			p->data[j] = w;
			double fd = (lp - lm) / (2 * h);
			double err = fabs(fd - g[j]) / (fabs(fd) + fabs(g[j]) + 1e-2);
			checked++;
			if (err > tol)
				bad++;
			if (err > worst)
				worst = err, worst_name = p->name;
			if (getenv("GC_VERBOSE"))
				fprintf(stderr, "%s[%zu] %g %g err %g\n", p->name, j, g[j], fd, err);
			if (err > 10 * tol && fabs(fd - g[j]) > 1e-3)
				fv_test_fail(__FILE__, __LINE__, "%s[%zu]: backward %g, finite "
					     "difference %g", p->name, j, g[j], fd);
		}
		free(g);
		free(taken);
	}
	fv_net_sync_to_device(net);
	FV_CHECK_MSG(bad * 10 <= checked, "%d of %d gradient components off (worst %g in %s)",
		     bad, checked, worst, worst_name);
	return checked;
}

static int gc_check(fv_net *net, const float *x, int n, const int *lab, const fv_loss_opts *o,
		    int per, double h, double tol)
{
	return gc_check_top(net, x, n, lab, o, per, h, tol, 0);
}

#endif
