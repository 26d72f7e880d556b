/* tests/gpu/train.c — the GPU training checks tests/gpu/run.sh drives,
 * through the nn API directly (no daemons):
 *
 *   fv-gpu-train fmnist DIR [DEVICE [EPOCHS [MAXSTEPS]]]
 *       resnet20 on Fashion-MNIST (DIR holds the four IDX .gz files) on
 *       DEVICE (default "cuda"): uint8 batches through the pinned, overlapped
 *       input path, the fused device SGD (Nesterov 0.9, wd 5e-4, warmup +
 *       cosine), then top-1 on the 10k test images. The trained weights are
 *       synced to the host, copied into a CPU net, and the first 2000 test
 *       images are classified there too: the same predictions show the
 *       parameter block is interchangeable (checkpoints are written from it).
 *       Exits 1 when top-1 < 85% or the CPU agrees on < 99% of images.
 *   fv-gpu-train bench [MODEL [DEVICE [BATCH [STEPS [SIZE]]]]]
 *       training throughput (img/s) of MODEL (resnet50) at 3 x SIZE x SIZE
 *       (224), batch BATCH (256), on DEVICE (cuda:bf16), with synthetic
 *       data already in GPU memory: forward, loss, backward, SGD step.
 * Output lines are "key: value" for the table run.sh prints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fv_daemon.h"
#include "fv_error.h"
#include "fv_idx.h"
#include "nn/cuda/fv_cuda.h"
#include "nn/models.h"
#include "nn/net.h"
#include "nn/optim.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint32_t urand(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (uint32_t)(rng >> 32);
}

static int die(int rc, const char *what)
{
	fprintf(stderr, "fv-gpu-train: %s: %s\n", what, fv_err_msg(rc));
	return 1;
}

/* A net on device with a device optimizer (host steps where there is none). */
static int setup(const char *model, int c, int hw, int batch, const char *device, float wd,
		 fv_net **net, fv_sgd **sgd)
{
	int rc = fv_model_build(model, c, hw, hw, model[6] == '2' ? 10 : 1000, net);
	if (!rc)
		rc = fv_net_compile(*net, &(fv_net_opts){ .batch = batch, .device = device,
							 .seed = 1 });
	fv_sgd_opts o = { .momentum = 0.9f, .nesterov = 1, .weight_decay = wd };
	if (!rc)
		rc = fv_sgd_new(sgd, fv_net_params(*net), fv_net_nparams(*net), &o);
	fv_net_dev dev;
	if (!rc)
		rc = fv_net_device(*net, &dev, 0);
	if (!rc) {
		int b = fv_sgd_bind(*sgd, &dev);
		if (!b)
			rc = fv_net_device(*net, &dev, 1); /* gradients stay on the GPU */
		else if (b != FV_E_UNSUPPORTED)
			rc = b;
		printf("backend: %s, optimizer on the %s\n", dev.be->name, b ? "host" : "device");
	}
	return rc;
}

/* ---- Fashion-MNIST -------------------------------------------------------------- */

static int predict(fv_net *net, const uint8_t *img, int n, int *pred)
{
	enum { B = 100 };
	float x[B * 784];
	for (int s = 0; s < n; s += B) {
		int m = n - s < B ? n - s : B;
		for (int i = 0; i < m * 784; i++)
			x[i] = (img[(size_t)s * 784 + i] / 255.0f - 0.2860f) / 0.3530f;
		int rc = fv_net_forward(net, x, m, 0);
		if (rc)
			return rc;
		const float *z = fv_net_logits(net);
		for (int i = 0; i < m; i++) {
			int best = 0;
			for (int k = 1; k < 10; k++)
				best = z[i * 10 + k] > z[i * 10 + best] ? k : best;
			pred[s + i] = best;
		}
	}
	return 0;
}

/* Batches of a per-epoch shuffle, into a pinned slot (and its copy started)
 * or, without the CUDA input path, into host floats. */
typedef struct stager {
	const fv_idx *d;
	int *perm, n, b;
	fv_cuda_input *in;
	float *xh, mean, sd;
} stager;

static int stage(stager *st, int s, int slot, int *lab)
{
	int per = st->n / st->b, base = s % per * st->b;
	if (s % per == 0)
		for (int i = st->n - 1; i > 0; i--) {
			int j = (int)(urand() % (uint32_t)(i + 1)), t = st->perm[i];
			st->perm[i] = st->perm[j], st->perm[j] = t;
		}
	uint8_t *u = st->in ? fv_cuda_input_buffer(st->in, slot) : NULL;
	for (int i = 0; i < st->b; i++) {
		const uint8_t *src = st->d[0].data + (size_t)st->perm[base + i] * 784;
		lab[i] = st->d[1].data[st->perm[base + i]];
		if (u)
			memcpy(u + (size_t)i * 784, src, 784);
		else
			for (int j = 0; j < 784; j++)
				st->xh[i * 784 + j] = (src[j] - st->mean) / st->sd;
	}
	return u ? fv_cuda_input_submit(st->in, slot, st->b) : 0;
}

static int fmnist(const char *dir, const char *device, int epochs, int max_steps)
{
	enum { B = 128 };
	char p[4][512];
	const char *names[4] = { "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
				 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz" };
	fv_idx d[4] = { 0 };
	int rc = 0;
	for (int i = 0; i < 4 && !rc; i++) {
		snprintf(p[i], sizeof p[i], "%s/%s", dir, names[i]);
		rc = fv_idx_open(p[i], 0, &d[i]);
	}
	if (rc)
		return die(rc, "data");
	fv_net *net = NULL, *cpu = NULL;
	fv_sgd *sgd = NULL;
	fv_cuda_input *in = NULL;
	int ntr = (int)d[0].count, nte = (int)d[2].count, steps = ntr / B * epochs, *perm = NULL;
	if (max_steps > 0 && max_steps < steps) /* a smoke run: few steps, few test images */
		steps = max_steps, nte = nte < 500 ? nte : 500;
	int *pred = malloc(nte * sizeof *pred), *pcpu = malloc(nte * sizeof *pcpu), lab[2][B];
	float *xh = malloc(B * 784 * sizeof *xh);
	double t0 = fv_now_s(), loss_sum = 0;
	rc = setup("resnet20", 1, 28, B, device, 5e-4f, &net, &sgd);
	const float mean = 0.2860f * 255, sd = 0.3530f * 255; /* pixel units */
	if (!rc && fv_cuda_input_new(&in, net, 2, &mean, &sd))
		in = NULL; /* not a CUDA net: host floats */
	perm = malloc(ntr * sizeof *perm);
	for (int i = 0; i < ntr; i++)
		perm[i] = i;
	stager st = { d, perm, ntr, B, in, xh, mean, sd };
	if (!rc && in)
		rc = stage(&st, 0, 0, lab[0]);
	for (int s = 0; s < steps && !rc; s++) {
		int slot = s & 1;
		if (in) { /* batch s is on its way; batch s+1 is staged during this step */
			rc = fv_cuda_input_load(in, slot);
			if (!rc)
				rc = fv_net_forward(net, NULL, B, 1);
			if (!rc && s + 1 < steps)
				rc = stage(&st, s + 1, !slot, lab[!slot]);
		} else {
			rc = stage(&st, s, slot, lab[slot]);
			if (!rc)
				rc = fv_net_forward(net, xh, B, 1);
		}
		float loss = 0;
		if (!rc)
			rc = fv_net_loss(net, lab[slot], NULL, &loss);
		if (!rc)
			rc = fv_net_backward(net);
		double t = (double)s / steps, warm = 100;
		float lr = (float)(s < warm ? 0.1 * (s + 1) / warm : 0.05 * (1 + cos(M_PI * t)));
		if (!rc)
			rc = fv_sgd_step(sgd, lr);
		loss_sum += s >= steps - 50 ? loss : 0;
	}
	double dt = fv_now_s() - t0;
	if (rc) {
		die(rc, "training");
		goto out;
	}
	rc = predict(net, d[2].data, nte, pred);
	int right = 0;
	for (int i = 0; i < nte && !rc; i++)
		right += pred[i] == d[3].data[i];
	double top1 = 100.0 * right / nte;
	/* the weights through the host, into a CPU net */
	int ncpu = nte < 2000 ? nte : 2000, agree = 0;
	if (!rc)
		rc = fv_net_sync_to_host(net);
	if (!rc)
		rc = fv_model_build("resnet20", 1, 28, 28, 10, &cpu);
	if (!rc)
		rc = fv_net_compile(cpu, &(fv_net_opts){ .batch = 100, .inference_only = 1 });
	for (size_t i = 0; !rc && i < fv_net_nparams(net); i++)
		memcpy(fv_net_params(cpu)[i].data, fv_net_params(net)[i].data,
		       fv_net_params(net)[i].numel * sizeof(float));
	if (!rc)
		rc = predict(cpu, d[2].data, ncpu, pcpu);
	for (int i = 0; i < ncpu && !rc; i++)
		agree += pcpu[i] == pred[i];
	if (rc) {
		die(rc, "evaluation");
		goto out;
	}
	double ag = 100.0 * agree / ncpu;
	printf("fmnist_device: %s\nfmnist_epochs: %d\nfmnist_train_s: %.1f\n"
	       "fmnist_img_per_s: %.0f\nfmnist_final_loss: %.3f\nfmnist_top1: %.2f\n"
	       "fmnist_cpu_agreement: %.2f\n", device, epochs, dt, (double)steps * B / dt,
	       loss_sum / 50, top1, ag);
	rc = (top1 >= 85.0 || max_steps) && ag >= 99.0 ? 0 : 1;
	printf("fmnist_result: %s\n", rc ? "FAIL" : "ok");
out:
	fv_cuda_input_destroy(&in);
	fv_sgd_destroy(&sgd);
	fv_net_destroy(&net);
	fv_net_destroy(&cpu);
	for (int i = 0; i < 4; i++)
		fv_idx_free(&d[i]);
	free(perm), free(pred), free(pcpu), free(xh);
	return rc ? 1 : 0;
}

/* ---- throughput -------------------------------------------------------------------- */

static int bench(const char *model, const char *device, int batch, int steps, int size)
{
	fv_net *net = NULL;
	fv_sgd *sgd = NULL;
	fv_cuda_input *in = NULL;
	int *lab = malloc(batch * sizeof *lab);
	double t0 = fv_now_s();
	int rc = setup(model, 3, size, batch, device, 1e-4f, &net, &sgd);
	double tc = fv_now_s() - t0;
	float *xh = NULL; /* without a GPU (smoke runs): host floats */
	if (!rc && (rc = fv_cuda_input_new(&in, net, 1, NULL, NULL)) == FV_E_UNSUPPORTED) {
		size_t nx = (size_t)batch * 3 * size * size;
		xh = malloc(nx * sizeof *xh);
		for (size_t i = 0; i < nx; i++)
			xh[i] = (float)(urand() % 255) / 255.0f;
		rc = 0;
	}
	if (!rc && in) { /* synthetic data, copied once: it then stays in GPU memory */
		uint8_t *u = fv_cuda_input_buffer(in, 0);
		for (size_t i = 0; i < (size_t)batch * size * size * 3; i++)
			u[i] = (uint8_t)urand();
		rc = fv_cuda_input_submit(in, 0, batch);
		if (!rc)
			rc = fv_cuda_input_load(in, 0);
	}
	for (int i = 0; i < batch; i++)
		lab[i] = (int)(urand() % (uint32_t)fv_net_classes(net));
	double ts = 0;
	float loss = 0;
	/* 3 warm-up steps, the timed ones, then 3 more with each op
	 * synchronised: where the time goes */
	for (int s = 0; s < steps + 6 && !rc; s++) {
		if (s == 3)
			ts = fv_now_s();
		if (s == steps + 3 && !(rc = fv_net_profile_start(net)))
			ts = fv_now_s() - ts; /* from here ts holds the timed steps' seconds */
		if (!rc)
			rc = fv_net_forward(net, xh, batch, 1);
		if (!rc)
			rc = fv_net_loss(net, lab, NULL, &loss);
		if (!rc)
			rc = fv_net_backward(net);
		if (!rc)
			rc = fv_sgd_step(sgd, 0.01f); /* its norm read-back ends the step */
	}
	double dt = ts;
	if (!rc)
		fv_net_profile_report(net, stdout);
	if (rc) {
		die(rc, "bench");
	} else {
		printf("bench_model: %s %dx%dx%d batch %d %s\n", model, 3, size, size, batch, device);
		printf("bench_compile_s: %.1f\nbench_ms_per_step: %.1f\nbench_img_per_s: %.0f\n"
		       "bench_loss: %.3f\n", tc, 1000 * dt / steps, steps * batch / dt, loss);
	}
	fv_cuda_input_destroy(&in);
	fv_sgd_destroy(&sgd);
	fv_net_destroy(&net);
	free(lab), free(xh);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && !strcmp(argv[1], "fmnist"))
		return fmnist(argv[2], argc > 3 ? argv[3] : "cuda", argc > 4 ? atoi(argv[4]) : 1,
			      argc > 5 ? atoi(argv[5]) : 0);
	if (argc >= 2 && !strcmp(argv[1], "bench"))
		return bench(argc > 2 ? argv[2] : "resnet50", argc > 3 ? argv[3] : "cuda:bf16",
			     argc > 4 ? atoi(argv[4]) : 256, argc > 5 ? atoi(argv[5]) : 20,
			     argc > 6 ? atoi(argv[6]) : 224);
	fprintf(stderr, "usage: fv-gpu-train fmnist DIR [DEVICE [EPOCHS [MAXSTEPS]]]\n"
			"       fv-gpu-train bench [MODEL [DEVICE [BATCH [STEPS [SIZE]]]]]\n");
	return 2;
}
