/* tests/gpu/check_net.c — the CUDA checks above single ops: the fused
 * device SGD (fv_sgd_bind) against nn/optim's host step, device
 * cross-entropy against nn/loss.c, the uint8 input path against a host
 * normalisation, and one whole resnet20 training step against the CPU. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fv_error.h"
#include "nn/cuda/fv_cuda.h"
#include "nn/loss.h"
#include "nn/models.h"
#include "nn/net.h"
#include "nn/optim.h"
#include "tests/gpu/check.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(void) /* uniform [-1, 1) */
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (float)((rng >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

static void fail(const char *what, int rc)
{
	printf("%-5s %-34s %-8s %s  FAIL\n", mode, what, "", fv_err_msg(rc));
	cmp(what, "error", (const float[]){ 1 }, (const float[]){ NAN }, 1, 0);
}

/* ---- SGD ------------------------------------------------------------------------- */

enum { NW = 1000, NB = 37 };

static void tables(fv_param *p, float *data, float *grad)
{
	p[0] = (fv_param){ .name = "w", .kind = FV_PARAM_WEIGHT, .data = data, .grad = grad,
			   .numel = NW, .ndim = 1, .dims = { NW } };
	p[1] = (fv_param){ .name = "b", .kind = FV_PARAM_BIAS, .data = data + NW,
			   .grad = grad + NW, .numel = NB, .ndim = 1, .dims = { NB } };
	p[2] = (fv_param){ .name = "rm", .kind = FV_PARAM_BUFFER, .data = data + NW + NB,
			   .numel = NB, .ndim = 1, .dims = { NB } };
}

static void check_sgd(side *g)
{
	const size_t n = NW + 2 * NB;
	float a[NW + 2 * NB], b[NW + 2 * NB], ga[NW + 2 * NB], gb[NW + 2 * NB];
	for (size_t i = 0; i < n; i++)
		a[i] = b[i] = frand();
	fv_param pa[3], pb[3];
	tables(pa, a, ga), tables(pb, b, gb);
	fv_sgd_opts o = { .momentum = 0.9f, .nesterov = 1, .weight_decay = 5e-4f, .clip_norm = 5,
			  .ema_decay = 0.99f, .ema_warmup = 1 };
	fv_sgd *sa = NULL, *sb = NULL;
	void *dp = NULL, *dg = NULL;
	int rc = fv_sgd_new(&sa, pa, 3, &o);
	if (!rc)
		rc = fv_sgd_new(&sb, pb, 3, &o);
	if (!rc)
		rc = g->be->alloc(g->ctx, n * sizeof(float), &dp);
	if (!rc)
		rc = g->be->alloc(g->ctx, n * sizeof(float), &dg);
	if (!rc)
		rc = g->be->to_device(g->ctx, dp, b, n * sizeof(float));
	fv_net_dev dev = { g->be, g->ctx, b, dp, dg, n };
	if (!rc)
		rc = fv_sgd_bind(sb, &dev);
	for (int step = 0; step < 5 && !rc; step++) {
		if (step == 4) /* freezing after the bind re-plans the device step */
			pa[1].frozen = pb[1].frozen = 1;
		for (size_t i = 0; i < n; i++)
			ga[i] = frand() * (step + 1);
		rc = g->be->to_device(g->ctx, dg, ga, n * sizeof(float));
		if (!rc)
			rc = fv_sgd_step(sa, 0.1f);
		if (!rc)
			rc = fv_sgd_step(sb, 0.1f);
	}
	if (!rc)
		rc = g->be->to_host(g->ctx, b, dp, n * sizeof(float));
	if (!rc)
		rc = fv_sgd_sync(sb, 1);
	if (rc) {
		fail("sgd (device)", rc);
		goto out;
	}
	size_t na, nb;
	float *sta = fv_sgd_state(sa, &na), *stb = fv_sgd_state(sb, &nb);
	cmp("sgd nesterov+wd+clip+ema+freeze", "params", a, b, n, 1e-5);
	cmp("sgd nesterov+wd+clip+ema+freeze", "state", sta, stb, na, 1e-5);
	float na_ = (float)fv_sgd_grad_norm(sa), nb_ = (float)fv_sgd_grad_norm(sb);
	cmp("sgd nesterov+wd+clip+ema+freeze", "gnorm", &na_, &nb_, 1, 1e-6);
	/* a non-finite gradient: FV_E_CORRUPT and nothing changes */
	ga[5] = NAN;
	rc = g->be->to_device(g->ctx, dg, ga, n * sizeof(float));
	int bad = rc || fv_sgd_step(sb, 0.1f) != FV_E_CORRUPT;
	float after[NW + 2 * NB];
	bad = bad || g->be->to_host(g->ctx, after, dp, n * sizeof(float)) ||
	      memcmp(after, b, sizeof after);
	cmp("sgd non-finite gradient", "skipped", (const float[]){ 0 },
	    (const float[]){ (float)bad }, 1, 0);
out:
	g->be->free(g->ctx, dp);
	g->be->free(g->ctx, dg);
	fv_sgd_destroy(&sa);
	fv_sgd_destroy(&sb);
}

/* ---- cross-entropy and input ------------------------------------------------------- */

static fv_net *tiny(const char *device, int batch)
{
	fv_net *net = NULL;
	if (fv_model_build("conv 8 3; bn; relu; gap; linear", 3, 8, 8, 10, &net) ||
	    fv_net_compile(net, &(fv_net_opts){ .batch = batch, .device = device, .seed = 3 }))
		fv_net_destroy(&net);
	return net;
}

static void check_xent(fv_net *net)
{
	enum { N = 16, K = 10 };
	float z[N * K], gref[N * K], gdev[N * K], cw[K], lref, ldev;
	int lab[N];
	for (int i = 0; i < N * K; i++)
		z[i] = frand() * 4;
	for (int i = 0; i < N; i++)
		lab[i] = (int)((frand() + 1) * 5) % K;
	for (int k = 0; k < K; k++)
		cw[k] = 0.5f + (frand() + 1) / 2;
	fv_net_dev d;
	void *dz = NULL, *dgr = NULL;
	int rc = fv_net_device(net, &d, 0);
	if (!rc)
		rc = d.be->alloc(d.ctx, sizeof z, &dz);
	if (!rc)
		rc = d.be->alloc(d.ctx, sizeof z, &dgr);
	if (!rc)
		rc = d.be->to_device(d.ctx, dz, z, sizeof z);
	fv_loss_opts lo = { .smoothing = 0.1f, .class_weights = cw };
	if (!rc)
		rc = fv_softmax_xent_forward(&lref, gref, z, lab, &lo, N, K);
	if (!rc)
		rc = fv_cuda_xent(net, &ldev, dgr, dz, lab, cw, 0.1f, N, K);
	if (!rc)
		rc = d.be->to_host(d.ctx, gdev, dgr, sizeof gdev);
	if (rc) {
		fail("xent (device)", rc);
	} else {
		cmp("xent smoothing+weights", "loss", &lref, &ldev, 1, 1e-5);
		cmp("xent smoothing+weights", "dlogits", gref, gdev, N * K, 1e-5);
	}
	d.be->free(d.ctx, dz);
	d.be->free(d.ctx, dgr);
}

static void check_input(fv_net *net)
{
	enum { N = 16, C = 3, HW = 64 };
	/* ImageNet's, in pixel units (as fv_aug_params keeps them) */
	const float mean[C] = { 123.675f, 116.28f, 103.53f }, std[C] = { 58.395f, 57.12f, 57.375f };
	fv_cuda_input *in = NULL;
	fv_net_dev d;
	float ref[N * C * HW], got[N * C * HW];
	int rc = fv_net_device(net, &d, 0);
	if (!rc)
		rc = fv_cuda_input_new(&in, net, 2, mean, std);
	for (int slot = 0; slot < 2 && !rc; slot++) {
		uint8_t *u = fv_cuda_input_buffer(in, slot);
		for (int i = 0; i < N * HW * C; i++)
			u[i] = (uint8_t)((frand() + 1) * 127.9);
		for (int n = 0; n < N; n++)
			for (int c = 0; c < C; c++)
				for (int p = 0; p < HW; p++)
					ref[(n * C + c) * HW + p] =
						(u[(n * HW + p) * C + c] - mean[c]) / std[c];
		rc = fv_cuda_input_submit(in, slot, N);
		if (!rc)
			rc = fv_cuda_input_load(in, slot);
		if (!rc)
			rc = d.be->tensor_export(d.ctx, got, fv_net_input(net), N);
		if (!rc)
			cmp("uint8 NHWC input", slot ? "slot 1" : "slot 0", ref, got, N * C * HW, 1e-5);
	}
	if (!rc) /* and the net runs from it */
		rc = fv_net_forward(net, NULL, N, 0);
	if (rc)
		fail("uint8 input (device)", rc);
	fv_cuda_input_destroy(&in);
}

/* ---- a whole training step ----------------------------------------------------------- */

enum { RN = 32, RK = 10 };

static float to_bf16(float f) /* round to nearest even, as the GPU stores it */
{
	uint32_t u;
	memcpy(&u, &f, 4);
	u = (u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000u;
	memcpy(&f, &u, 4);
	return f;
}

/* resnet20 (seed 11) on device: one forward, loss, backward from x; with
 * round != 0 its input and parameters are first rounded to bf16. */
static int resnet_step(fv_net **net, const char *device, const float *x, int round, float *loss)
{
	static int lab[RN];
	for (int i = 0; i < RN; i++)
		lab[i] = i % RK;
	int rc = fv_model_build("resnet20", 1, 28, 28, RK, net);
	if (!rc)
		rc = fv_net_compile(*net, &(fv_net_opts){ .batch = RN, .seed = 11, .device = device });
	float *xr = malloc(RN * 28 * 28 * sizeof *xr);
	if (!rc && !xr)
		rc = ENOMEM;
	for (int i = 0; !rc && i < RN * 28 * 28; i++)
		xr[i] = round ? to_bf16(x[i]) : x[i];
	fv_param *p = rc ? NULL : fv_net_params(*net);
	for (size_t i = 0; round && p && i < fv_net_nparams(*net); i++)
		for (size_t j = 0; p[i].grad && j < p[i].numel; j++)
			p[i].data[j] = to_bf16(p[i].data[j]);
	if (!rc)
		rc = fv_net_forward(*net, xr, RN, 1);
	if (!rc)
		rc = fv_net_loss(*net, lab, NULL, loss);
	if (!rc)
		rc = fv_net_backward(*net);
	if (!rc)
		rc = fv_net_sync_to_host(*net);
	free(xr);
	return rc;
}

/* Relative L2 error of b's gradients against a's, all together (the running
 * statistics apart); per tensor into rel (running statistics by value). */
static double grad_err(fv_net *a, fv_net *b, double *rel, int *nan)
{
	fv_param *pa = fv_net_params(a), *pb = fv_net_params(b);
	double sd = 0, sr = 0;
	for (size_t i = 0; i < fv_net_nparams(a); i++) {
		const float *ra = pa[i].grad ? pa[i].grad : pa[i].data;
		const float *rb = pb[i].grad ? pb[i].grad : pb[i].data;
		double d2 = 0, r2 = 0;
		for (size_t j = 0; j < pa[i].numel; j++) {
			double e = (double)ra[j] - rb[j];
			*nan |= isnan(rb[j]);
			d2 += e * e, r2 += (double)ra[j] * ra[j];
		}
		if (rel)
			rel[i] = sqrt(d2) / fmax(sqrt(r2), 1e-30);
		if (pa[i].grad)
			sd += d2, sr += r2;
	}
	return *nan ? NAN : sqrt(sd) / fmax(sqrt(sr), 1e-30);
}

/* One resnet20 training step on device against the CPU. Gradients are
 * compared by relative L2 error, all together and per tensor (the three
 * worst printed). fp32: all within tol, each within 5 tol. bf16: a random
 * BN net's gradient at init is ill-conditioned (on the CPU alone, rounding
 * the input and weights to bf16 moves it by ~15%), so the yardstick is that
 * movement, measured here: the device's error must stay within 3 times it. */
static void check_resnet(const char *device, double tol, int bf16)
{
	fv_net *a = NULL, *b = NULL, *c = NULL;
	float *x = malloc(RN * 28 * 28 * sizeof *x), la = 0, lb = 0, lc = 0;
	for (int i = 0; i < RN * 28 * 28; i++)
		x[i] = frand();
	int rc = resnet_step(&a, NULL, x, 0, &la);
	if (!rc)
		rc = resnet_step(&b, device, x, 0, &lb);
	if (!rc && bf16)
		rc = resnet_step(&c, NULL, x, 1, &lc);
	if (rc) {
		fail("resnet20 step", rc);
		goto out;
	}
	cmp("resnet20 step", "logits", fv_net_logits(a), fv_net_logits(b), RN * RK, tol);
	cmp("resnet20 step", "loss", &la, &lb, 1, tol);
	size_t np = fv_net_nparams(a);
	double *rel = malloc(np * sizeof *rel);
	int nan = 0;
	if (!rel) {
		fail("resnet20 step", ENOMEM);
		goto out;
	}
	double all = grad_err(a, b, rel, &nan);
	for (int t = 0; t < 3; t++) {
		size_t w = 0;
		for (size_t i = 1; i < np; i++)
			if (rel[i] > rel[w])
				w = i;
		printf("%-5s   worst %d: %-26s rel L2 err %.2e\n", mode, t + 1,
		       fv_net_params(a)[w].name, rel[w]);
		if (t == 0 && !bf16)
			verdict("resnet20 worst tensor", "grad", nan ? NAN : rel[w], 5 * tol);
		rel[w] = -1;
	}
	if (bf16) {
		int n2 = 0;
		double yard = grad_err(a, c, NULL, &n2);
		printf("%-5s   yardstick: the CPU's own gradients with bf16 input and weights "
		       "move by %.2e\n", mode, yard);
		verdict("resnet20 all gradients / yardstick", "grad", all / yard, 3);
	} else {
		verdict("resnet20 all gradients", "grad", all, tol);
	}
	free(rel);
out:
	free(x);
	fv_net_destroy(&a);
	fv_net_destroy(&b);
	fv_net_destroy(&c);
}

void check_net_all(side *g, const char *device, double tol)
{
	check_sgd(g);
	fv_net *net = tiny(device, 16);
	if (!net) {
		fail("tiny net on device", FV_E_INTERNAL);
	} else {
		check_xent(net);
		check_input(net);
	}
	fv_net_destroy(&net);
	/* a whole net sums many ops' rounding: in fp32 ten times the op
	 * tolerance; bf16 is judged against a yardstick (check_resnet) */
	int bf16 = tol >= 1e-3;
	check_resnet(device, bf16 ? 5e-2 : tol * 10, bf16);
}
