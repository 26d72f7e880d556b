/* tests/gpu/check_net.c — the CUDA checks above single ops: the fused
 * device SGD (fv_sgd_bind) against nn/optim's host step, device
 * cross-entropy against nn/loss.c, the uint8 input path against a host
 * normalisation, and one whole resnet20 training step against the CPU. */
#include <math.h>
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
	const float mean[C] = { 0.485f, 0.456f, 0.406f }, std[C] = { 0.229f, 0.224f, 0.225f };
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
						(u[(n * HW + p) * C + c] / 255.0f - mean[c]) / std[c];
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

static void check_resnet(const char *device, double tol)
{
	enum { N = 32, K = 10 };
	fv_net *a = NULL, *b = NULL;
	fv_net_opts o = { .batch = N, .seed = 11 };
	int rc = fv_model_build("resnet20", 1, 28, 28, K, &a);
	if (!rc)
		rc = fv_model_build("resnet20", 1, 28, 28, K, &b);
	if (!rc)
		rc = fv_net_compile(a, &o);
	o.device = device;
	if (!rc)
		rc = fv_net_compile(b, &o);
	float *x = malloc(N * 28 * 28 * sizeof *x), la = 0, lb = 0;
	int lab[N];
	for (int i = 0; i < N * 28 * 28; i++)
		x[i] = frand();
	for (int i = 0; i < N; i++)
		lab[i] = i % K;
	if (!rc)
		rc = fv_net_forward(a, x, N, 1);
	if (!rc)
		rc = fv_net_forward(b, x, N, 1);
	if (!rc)
		cmp("resnet20 step", "logits", fv_net_logits(a), fv_net_logits(b), N * K, tol);
	if (!rc)
		rc = fv_net_loss(a, lab, NULL, &la);
	if (!rc)
		rc = fv_net_loss(b, lab, NULL, &lb);
	if (!rc)
		cmp("resnet20 step", "loss", &la, &lb, 1, tol);
	if (!rc)
		rc = fv_net_backward(a);
	if (!rc)
		rc = fv_net_backward(b);
	if (!rc)
		rc = fv_net_sync_to_host(b);
	if (rc) {
		fail("resnet20 step", rc);
		goto out;
	}
	/* every gradient tensor on its own scale; running statistics too */
	fv_param *pa = fv_net_params(a), *pb = fv_net_params(b);
	double worst = 0;
	const char *wname = "";
	for (size_t i = 0; i < fv_net_nparams(a); i++) {
		const float *ra = pa[i].grad ? pa[i].grad : pa[i].data;
		const float *rb = pb[i].grad ? pb[i].grad : pb[i].data;
		double mx = 1e-12, err = 0;
		for (size_t j = 0; j < pa[i].numel; j++) {
			mx = fmax(mx, fabs(ra[j]));
			err = fmax(err, isnan(rb[j]) ? INFINITY : fabs(ra[j] - rb[j]));
		}
		if (err / mx > worst || isnan(err))
			worst = err / mx, wname = pa[i].name;
	}
	float w0 = 0, w1 = (float)worst;
	char what[96];
	snprintf(what, sizeof what, "resnet20 grads+stats (worst %.20s)", wname);
	cmp(what, "grad", &w0, &w1, 1, tol);
out:
	free(x);
	fv_net_destroy(&a);
	fv_net_destroy(&b);
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
	/* a whole net sums many ops' rounding: ten times the op tolerance,
	 * five times in bf16 (where BN of rounded activations dominates) */
	check_resnet(device, tol < 1e-3 ? tol * 10 : tol * 5);
}
