/* Unit tests for nn/optim: SGD updates against hand-computed values and an
 * independent double-precision reference, decay exclusions, frozen params
 * and buffers, clipping, EMA, and the state table. */
#include "fv_test.h"
#include "fv_error.h"
#include "nn/optim.h"

#include <errno.h>
#include <string.h>

/* One scalar weight "w" with its gradient. */
static float w1, g1;
static fv_param one[] = { { .name = "w", .kind = FV_PARAM_WEIGHT, .data = &w1, .grad = &g1,
			    .numel = 1, .ndim = 1, .dims = { 1 } } };

/* Runs steps of the optimizer on w=1 with constant g=0.5, lr=0.1; got[i]
 * is w after step i+1. */
static void run_scalar(const fv_sgd_opts *o, int steps, float *got)
{
	fv_sgd *s;
	w1 = 1.0f;
	g1 = 0.5f;
	FV_CHECK_OK(fv_sgd_new(&s, one, 1, o));
	for (int i = 0; i < steps; i++) {
		FV_CHECK_OK(fv_sgd_step(s, 0.1f));
		got[i] = w1;
	}
	fv_sgd_destroy(&s);
	FV_CHECK(s == NULL);
}

FV_TEST(sgd_hand_computed)
{
	float w[3];
	/* plain: w -= 0.1 * 0.5 each step */
	run_scalar(NULL, 3, w);
	FV_CHECK_NEAR(w[0], 0.95, 1e-6);
	FV_CHECK_NEAR(w[2], 0.85, 1e-6);
	/* momentum 0.9: buf = 0.5, 0.95, 1.355 */
	run_scalar(&(fv_sgd_opts){ .momentum = 0.9f }, 3, w);
	FV_CHECK_NEAR(w[0], 0.95, 1e-6);
	FV_CHECK_NEAR(w[1], 0.855, 1e-6);
	FV_CHECK_NEAR(w[2], 0.7195, 1e-6);
	/* Nesterov: d = g + mu*buf = 0.95, 1.355 */
	run_scalar(&(fv_sgd_opts){ .momentum = 0.9f, .nesterov = 1 }, 2, w);
	FV_CHECK_NEAR(w[0], 0.905, 1e-6);
	FV_CHECK_NEAR(w[1], 0.7695, 1e-6);
	/* L2 decay 0.1 with momentum: g' = 0.6, then 0.594; buf 0.6, 1.134 */
	run_scalar(&(fv_sgd_opts){ .momentum = 0.9f, .weight_decay = 0.1f }, 2, w);
	FV_CHECK_NEAR(w[0], 0.94, 1e-6);
	FV_CHECK_NEAR(w[1], 0.8266, 1e-6);
	/* decoupled: w = w*(1 - 0.01) - 0.1*buf; buf 0.5, 0.95 */
	run_scalar(&(fv_sgd_opts){ .momentum = 0.9f, .weight_decay = 0.1f, .decoupled = 1 }, 2, w);
	FV_CHECK_NEAR(w[0], 0.94, 1e-6);
	FV_CHECK_NEAR(w[1], 0.8356, 1e-6);
}

/* PyTorch's SGD written out plainly in double, buf initialised to g on the
 * first step as torch does. */
static void reference(double *w, double *buf, const double *g, size_t n, int step, double lr,
		      const fv_sgd_opts *o, int decay)
{
	double wd = decay ? o->weight_decay : 0;
	for (size_t j = 0; j < n; j++) {
		double d = g[j];
		if (o->decoupled)
			w[j] *= 1 - lr * wd;
		else
			d += wd * w[j];
		if (o->momentum > 0) {
			buf[j] = step == 0 ? d : o->momentum * buf[j] + d;
			d = o->nesterov ? d + o->momentum * buf[j] : buf[j];
		}
		w[j] -= lr * d;
	}
}

FV_TEST(sgd_matches_reference)
{
	enum { N = 37, STEPS = 6 };
	const fv_sgd_opts cases[] = {
		{ 0 },
		{ .momentum = 0.9f },
		{ .momentum = 0.9f, .nesterov = 1, .weight_decay = 5e-4f },
		{ .momentum = 0.8f, .weight_decay = 0.01f, .decoupled = 1 },
		{ .momentum = 0.9f, .nesterov = 1, .weight_decay = 0.02f, .decoupled = 1 },
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		float w[2][N], g[2][N];
		double rw[2][N], rb[2][N], rg[N];
		fv_param p[2] = {
			{ .name = "a.weight", .kind = FV_PARAM_WEIGHT, .data = w[0], .grad = g[0], .numel = N, .ndim = 1, .dims = { N } },
			{ .name = "a.bias", .kind = FV_PARAM_BIAS, .data = w[1], .grad = g[1], .numel = N, .ndim = 1, .dims = { N } },
		};
		for (int k = 0; k < 2; k++)
			for (int j = 0; j < N; j++)
				rw[k][j] = w[k][j] = (float)(fv_test_uniform() * 2 - 1);
		fv_sgd *s;
		FV_CHECK_OK(fv_sgd_new(&s, p, 2, &cases[c]));
		for (int t = 0; t < STEPS; t++) {
			double lr = 0.05 + 0.01 * t;
			for (int k = 0; k < 2; k++) {
				for (int j = 0; j < N; j++)
					rg[j] = g[k][j] = (float)(fv_test_uniform() - 0.5);
				reference(rw[k], rb[k], rg, N, t, lr, &cases[c], k == 0);
			}
			FV_CHECK_OK(fv_sgd_step(s, (float)lr));
		}
		double err = 0;
		for (int k = 0; k < 2; k++)
			for (int j = 0; j < N; j++)
				err = fmax(err, fabs(w[k][j] - rw[k][j]));
		FV_CHECK_MSG(err < 1e-5, "case %zu: max error %g", c, err);
		FV_CHECK_EQ(fv_sgd_steps(s), STEPS);
		fv_sgd_destroy(&s);
	}
}

static fv_param kinds[5];
static float kd[5][4], kg[5][4];

static void make_kinds(void)
{
	static const char *names[] = { "c.weight", "c.bias", "bn.weight", "bn.bias", "bn.running_mean" };
	for (int k = 0; k < 5; k++) {
		kinds[k] = (fv_param){ .name = names[k], .kind = (enum fv_param_kind)k, .data = kd[k],
				       .grad = k == FV_PARAM_BUFFER ? NULL : kg[k], .numel = 4,
				       .ndim = 1, .dims = { 4 } };
		for (int j = 0; j < 4; j++)
			kd[k][j] = 1.0f, kg[k][j] = 0.0f;
	}
}

FV_TEST(sgd_decay_skips_bn_and_bias)
{
	for (int all = 0; all < 2; all++) {
		for (int dec = 0; dec < 2; dec++) {
			fv_sgd *s;
			make_kinds();
			FV_CHECK_OK(fv_sgd_new(&s, kinds, 5, &(fv_sgd_opts){ .momentum = 0.9f,
				.weight_decay = 0.1f, .decoupled = dec, .decay_bn_and_bias = all }));
			FV_CHECK_OK(fv_sgd_step(s, 1.0f));
			FV_CHECK_NEAR(kd[0][0], 0.9, 1e-6); /* weights always decay */
			for (int k = 1; k < 4; k++)
				FV_CHECK_NEAR(kd[k][3], all ? 0.9 : 1.0, 1e-6);
			FV_CHECK_EQ(kd[4][0], 1.0f);     /* buffers never change */
			fv_sgd_destroy(&s);
		}
	}
}

FV_TEST(sgd_frozen_and_buffers_untouched)
{
	fv_sgd *s;
	make_kinds();
	for (int k = 0; k < 4; k++)
		for (int j = 0; j < 4; j++)
			kg[k][j] = 0.5f;
	kinds[1].frozen = 1;
	FV_CHECK_OK(fv_sgd_new(&s, kinds, 5, &(fv_sgd_opts){ .momentum = 0.9f, .weight_decay = 0.1f,
							  .ema_decay = 0.5f }));
	for (int t = 0; t < 3; t++)
		FV_CHECK_OK(fv_sgd_step(s, 0.1f));
	for (int j = 0; j < 4; j++) {
		FV_CHECK_EQ(kd[1][j], 1.0f);
		FV_CHECK_EQ(kd[4][j], 1.0f);
		FV_CHECK_EQ(fv_sgd_ema(s, 1)[j], 1.0f);
		FV_CHECK(kd[0][j] < 1.0f && kd[2][j] < 1.0f);
	}
	/* Unfreezing later trains it (it kept its momentum slot). */
	kinds[1].frozen = 0;
	FV_CHECK_OK(fv_sgd_step(s, 0.1f));
	FV_CHECK_NEAR(kd[1][0], 0.95, 1e-6);
	fv_sgd_destroy(&s);
}

FV_TEST(sgd_clip_global_norm)
{
	float w[2] = { 0, 0 }, g[2] = { 3, 4 }, v[1] = { 0 }, h[1] = { 0 };
	fv_param p[2] = {
		{ .name = "a", .data = w, .grad = g, .numel = 2, .ndim = 1, .dims = { 2 } },
		{ .name = "b", .data = v, .grad = h, .numel = 1, .ndim = 1, .dims = { 1 } },
	};
	fv_sgd *s;
	FV_CHECK_OK(fv_sgd_new(&s, p, 2, &(fv_sgd_opts){ .clip_norm = 1.0f }));
	FV_CHECK_OK(fv_sgd_step(s, 1.0f));
	FV_CHECK_NEAR(fv_sgd_grad_norm(s), 5.0, 1e-9);
	FV_CHECK_NEAR(w[0], -0.6, 1e-5);  /* the update has norm 1 */
	FV_CHECK_NEAR(w[1], -0.8, 1e-5);
	FV_CHECK_NEAR(g[0], 3.0, 0);      /* grads themselves are left alone */
	/* below the threshold nothing is scaled */
	g[0] = 0.3f, g[1] = 0.4f, w[0] = w[1] = 0;
	FV_CHECK_OK(fv_sgd_step(s, 1.0f));
	FV_CHECK_NEAR(w[0], -0.3, 1e-6);
	FV_CHECK_NEAR(fv_sgd_grad_norm(s), 0.5, 1e-6);
	/* a non-finite gradient skips the update */
	h[0] = NAN;
	FV_CHECK_EQ(fv_sgd_step(s, 1.0f), FV_E_CORRUPT);
	FV_CHECK_NEAR(w[0], -0.3, 1e-6);
	fv_sgd_destroy(&s);
}

FV_TEST(sgd_ema_values_and_swap)
{
	fv_sgd *s;
	w1 = 1.0f;
	g1 = 1.0f;
	FV_CHECK_OK(fv_sgd_new(&s, one, 1, &(fv_sgd_opts){ .ema_decay = 0.9f }));
	FV_CHECK_OK(fv_sgd_step(s, 0.1f));  /* w 0.9, ema 0.9*1 + 0.1*0.9 */
	FV_CHECK_NEAR(*fv_sgd_ema(s, 0), 0.99, 1e-6);
	FV_CHECK_OK(fv_sgd_step(s, 0.1f));  /* w 0.8, ema 0.9*0.99 + 0.08 */
	FV_CHECK_NEAR(*fv_sgd_ema(s, 0), 0.971, 1e-6);
	FV_CHECK_OK(fv_sgd_ema_swap(s));
	FV_CHECK(fv_sgd_ema_swapped(s));
	FV_CHECK_NEAR(w1, 0.971, 1e-6);
	FV_CHECK_EQ(fv_sgd_step(s, 0.1f), EINVAL); /* no training on swapped weights */
	FV_CHECK_OK(fv_sgd_ema_swap(s));
	FV_CHECK_NEAR(w1, 0.8, 1e-6);
	fv_sgd_destroy(&s);

	/* warmup: the first step uses decay min(0.9, 1/10) */
	w1 = 1.0f;
	FV_CHECK_OK(fv_sgd_new(&s, one, 1, &(fv_sgd_opts){ .ema_decay = 0.9f, .ema_warmup = 1 }));
	FV_CHECK_OK(fv_sgd_step(s, 0.1f));
	FV_CHECK_NEAR(*fv_sgd_ema(s, 0), 0.1 * 1 + 0.9 * 0.9, 1e-6);
	fv_sgd_destroy(&s);

	FV_CHECK_OK(fv_sgd_new(&s, one, 1, NULL));
	FV_CHECK_EQ(fv_sgd_ema_swap(s), FV_E_NOTFOUND);
	FV_CHECK(fv_sgd_ema(s, 0) == NULL);
	fv_sgd_destroy(&s);
}

FV_TEST(sgd_state_table)
{
	fv_sgd *s;
	size_t n, nf;
	make_kinds();
	kinds[1].frozen = 1;
	FV_CHECK_OK(fv_sgd_new(&s, kinds, 5, &(fv_sgd_opts){ .momentum = 0.9f, .ema_decay = 0.99f }));
	fv_param *t = fv_sgd_state_params(s, &n);
	float *st = fv_sgd_state(s, &nf);
	FV_CHECK_EQ(n, 4 + 5);              /* momentum for all but the buffer; EMA for all */
	FV_CHECK_EQ(nf, 9 * 4);
	FV_CHECK(!strcmp(t[0].name, "c.weight.momentum"));
	FV_CHECK(!strcmp(t[1].name, "c.bias.momentum"));
	FV_CHECK(!strcmp(t[4].name, "ema.c.weight"));
	FV_CHECK(!strcmp(t[8].name, "ema.bn.running_mean"));
	FV_CHECK(t[0].data == st && t[4].data == st + 16);
	FV_CHECK(t[8].data == fv_sgd_ema(s, 4));
	for (size_t i = 0; i < n; i++) {
		FV_CHECK(t[i].grad == NULL && t[i].kind == FV_PARAM_BUFFER);
		FV_CHECK_EQ(t[i].numel, 4);
		FV_CHECK_EQ(t[i].dims[0], 4);
	}
	fv_sgd_destroy(&s);
}

FV_TEST(sgd_bad_options)
{
	fv_sgd *s = (fv_sgd *)1;
	FV_CHECK_EQ(fv_sgd_new(&s, one, 1, &(fv_sgd_opts){ .nesterov = 1 }), EINVAL);
	FV_CHECK(s == NULL);
	FV_CHECK_EQ(fv_sgd_new(&s, one, 1, &(fv_sgd_opts){ .momentum = 1.5f }), EINVAL);
	FV_CHECK_EQ(fv_sgd_new(&s, one, 1, &(fv_sgd_opts){ .ema_decay = 1.0f }), EINVAL);
	FV_CHECK_OK(fv_sgd_new(&s, one, 1, NULL));
	FV_CHECK_EQ(fv_sgd_step(s, NAN), EINVAL);
	fv_sgd_destroy(&s);
}
