/* exporter/bench.c — `fovea bench int8`: INT8 vs FP32 throughput of the
 * .fovea runtime on the same network in the same run, at batch 1 and 64.
 * The network is resnet20 for Fashion-MNIST-sized inputs (1x28x28, 10
 * classes) with random weights and BN statistics, calibrated on random
 * pixels: speed does not depend on what the weights are. Rounds alternate
 * between the configurations and the best round of each counts, which
 * keeps a loaded machine from favouring whichever ran in a quiet moment.
 *
 *   fovea bench int8 [--model SPEC] [--input CxHxW] [--seconds S] [--threads N] */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exporter/kernels.h"
#include "exporter/runtime.h"
#include "exporter/xmodel.h"
#include "fv_error.h"
#include "nn/models.h"

static double clock_s(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}
#define now_s() clock_s(CLOCK_MONOTONIC)

static uint64_t rng = 88172645463325252ull;
static double uni(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

/* FP32 and INT8 .fovea images of spec with random weights. */
static int build(const char *spec, int c, int h, int w, void **b32, size_t *l32, void **b8, size_t *l8)
{
	fv_net *net = NULL;
	fv_xmodel *m = NULL;
	fv_calib *cal = NULL;
	fv_rt *rt = NULL;
	float *x = NULL, *lo = NULL, *hi = NULL;
	int rc = fv_model_build(spec, c, h, w, 10, &net);
	if (rc)
		goto out;
	fv_net_opts o = { .batch = 1, .threads = 1, .inference_only = 1, .seed = 1 };
	if ((rc = fv_net_compile(net, &o)))
		goto out;
	size_t np = fv_net_nparams(net);
	fv_param *p = fv_net_params(net);
	const float **pd = malloc(sizeof *pd * np);
	for (size_t i = 0; pd && i < np; i++) {
		pd[i] = p[i].data;
		if (p[i].kind == FV_PARAM_BUFFER && strstr(p[i].name, "running_var"))
			for (size_t j = 0; j < p[i].numel; j++)
				p[i].data[j] = (float)(0.5 + uni());
	}
	rc = pd ? fv_fold(net, pd, &m) : ENOMEM;
	free(pd);
	if (rc)
		goto out;
	m->mean[0] = m->mean[1] = m->mean[2] = 128;
	m->std[0] = m->std[1] = m->std[2] = 64;
	enum { N = 16 };
	size_t per = (size_t)c * h * w;
	x = malloc(sizeof *x * per * N);
	lo = malloc(sizeof *lo * (size_t)(m->nops + 1)), hi = malloc(sizeof *hi * (size_t)(m->nops + 1));
	if (!x || !lo || !hi) {
		rc = ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < per * N; i++)
		x[i] = (float)(uni() * 255);
	if ((rc = fv_xmodel_serialize(m, 0, b32, l32)) || (rc = fv_rt_open_mem(&rt, *b32, *l32)) ||
	    (rc = fv_calib_new(&cal, m)))
		goto out;
	for (int pass = 0; pass < 2 && !rc; pass++, fv_calib_next(cal))
		rc = fv_calib_pass(cal, rt, x, N);
	if (rc || (rc = fv_calib_ranges(cal, FV_CALIB_MINMAX, 100, lo, hi)) || (rc = fv_quant_weights(m)) ||
	    (rc = fv_quant_apply(m, lo, hi)))
		goto out;
	rc = fv_xmodel_serialize(m, 1, b8, l8);
out:
	fv_rt_close(&rt);
	fv_calib_destroy(&cal);
	fv_xmodel_destroy(&m);
	fv_net_destroy(&net);
	free(x), free(lo), free(hi);
	return rc;
}

/* Images per second of one timed round of about `secs`, by the wall clock
 * and per CPU-second of the whole process (all its threads): on a shared,
 * loaded machine the second is the steadier measure of the work done. */
static double round_ips(fv_rt *rt, const float *x, int batch, float *logits, double secs, double *cpu_ips)
{
	fv_rt_run(rt, x, batch, logits); /* warm */
	double t0 = now_s(), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), t;
	long n = 0;
	do {
		fv_rt_run(rt, x, batch, logits);
		n += batch;
	} while ((t = now_s() - t0) < secs);
	*cpu_ips = n / (clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0);
	return n / t;
}

int fv_bench_int8(int argc, char **argv)
{
	const char *spec = "resnet20";
	int c = 1, h = 28, w = 28, threads = 0;
	double secs = 0.4;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--model"))
			spec = argv[i + 1];
		else if (!strcmp(argv[i], "--input") && sscanf(argv[i + 1], "%dx%dx%d", &c, &h, &w) == 3)
			;
		else if (!strcmp(argv[i], "--seconds"))
			secs = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--threads"))
			threads = atoi(argv[i + 1]);
		else {
			fprintf(stderr, "fovea bench int8: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	void *b32 = NULL, *b8 = NULL;
	size_t l32, l8;
	int rc = build(spec, c, h, w, &b32, &l32, &b8, &l8);
	if (rc) {
		fprintf(stderr, "fovea bench int8: %s\n", fv_err_msg(rc));
		return 1;
	}
	fv_rt *r32 = NULL, *r8 = NULL;
	fv_rt_open_mem(&r32, b32, l32);
	fv_rt_open_mem(&r8, b8, l8);
	fv_rt_set_threads(r32, threads);
	fv_rt_set_threads(r8, threads);
	enum { MAXB = 64 };
	size_t per = (size_t)c * h * w;
	float *x = malloc(sizeof *x * per * MAXB), *logits = malloc(sizeof *logits * 10 * MAXB);
	for (size_t i = 0; x && i < per * MAXB; i++)
		x[i] = (float)(uni() * 255);
	/* Configurations: FP32 (dnnl_sgemm), INT8 with the build's best kernel,
	 * INT8 forced onto the AVX2 maddubs kernel. */
	static const int batches[] = { 1, MAXB };
	double best[2][3] = { { 0 } }, cpu[2][3] = { { 0 } };
	const char *kern = fv_qgemm_kernel(), *only = getenv("FV_BENCH_ONLY");
	for (int round = 0; round < 5; round++)
		for (int b = 0; b < 2; b++)
			for (int k = 0; k < 3; k++) {
				if (only && strchr(only, '0' + k) == NULL)
					continue; /* FV_BENCH_ONLY=1: just the INT8 default (profiling) */
				fv_qgemm_force(k == 2 ? 1 : 0);
				double c, ips = round_ips(k ? r8 : r32, x, batches[b], logits, secs, &c);
				best[b][k] = fmax(best[b][k], ips);
				cpu[b][k] = fmax(cpu[b][k], c);
			}
	fv_qgemm_force(0);
	printf("int8 runtime: %s %dx%dx%d, model.fovea %zu bytes vs fp32 %zu (%.2fx smaller), threads %s\n",
	       spec, c, h, w, l8, l32, (double)l32 / l8, threads ? "1+" : "all");
	for (int b = 0; b < 2; b++) {
		printf("  batch %2d wall: fp32 %7.0f img/s  int8 (%s) %7.0f img/s = %.2fx  int8 (avx2-maddubs) %7.0f img/s = %.2fx\n",
		       batches[b], best[b][0], kern, best[b][1], best[b][1] / best[b][0], best[b][2],
		       best[b][2] / best[b][0]);
		printf("  batch %2d cpu:  fp32 %7.0f img/cpu-s int8 (%s) %7.0f img/cpu-s = %.2fx  int8 (avx2-maddubs) %7.0f img/cpu-s = %.2fx\n",
		       batches[b], cpu[b][0], kern, cpu[b][1], cpu[b][1] / cpu[b][0], cpu[b][2],
		       cpu[b][2] / cpu[b][0]);
	}
	fv_rt_close(&r32);
	fv_rt_close(&r8);
	free(b32), free(b8), free(x), free(logits);
	return 0;
}
