/* nn/bench.c — `fovea bench train` and `fovea bench infer`: full training
 * steps (forward, loss, backward, SGD update) or inference passes of a model,
 * and, in the same run and thread count, this machine's single-precision
 * GEMM peak (dnnl_sgemm 2048^3) as the reference the model's achieved
 * GFLOP/s are a share of. FLOPs come from the model itself: forward =
 * 2 x fv_net_macs per image, training = 3 x forward. Each figure is the best
 * of --repeat timed runs (the machine may be shared), with the sgemm runs
 * between them so both see the same load. A second figure divides by
 * process CPU time instead of wall time: on a loaded machine it leaves out
 * the time other jobs held the cores (OpenMP spin-waits still count). */
#include <dnnl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fv_daemon.h"
#include "fv_error.h"
#include "nn/models.h"
#include "nn/net.h"
#include "nn/optim.h"

typedef struct {
	const char *model;
	int c, h, w, batch, threads, steps, warmup, repeat, json, classes;
} bopts;

/* CPU seconds of the whole process: on a loaded machine this leaves out
 * the time other jobs held the cores (but counts OpenMP spin-waiting). */
static double cpu_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static int parse(int argc, char **argv, bopts *o)
{
	*o = (bopts){ "resnet20", 1, 28, 28, 128, 2, 5, 2, 5, 0, 10 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--json")) {
			o->json = 1;
			continue;
		}
		if (!v) {
			fprintf(stderr, "%s: needs a value\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "--model")) o->model = v;
		else if (!strcmp(a, "--input")) {
			if (sscanf(v, "%dx%dx%d", &o->c, &o->h, &o->w) != 3) {
				fprintf(stderr, "--input %s: expected CxHxW\n", v);
				return 2;
			}
		} else if (!strcmp(a, "--batch")) o->batch = atoi(v);
		else if (!strcmp(a, "--threads")) o->threads = atoi(v);
		else if (!strcmp(a, "--steps")) o->steps = atoi(v);
		else if (!strcmp(a, "--warmup")) o->warmup = atoi(v);
		else if (!strcmp(a, "--repeat")) o->repeat = atoi(v);
		else if (!strcmp(a, "--classes")) o->classes = atoi(v);
		else {
			fprintf(stderr, "unknown option %s (--model --input CxHxW --batch --threads "
				"--steps --warmup --repeat --classes --json)\n", a);
			return 2;
		}
	}
	if (o->batch < 1 || o->steps < 1 || o->repeat < 1 || o->threads < 0) {
		fprintf(stderr, "bad --batch/--steps/--repeat/--threads\n");
		return 2;
	}
	return 0;
}

/* GFLOP/s of `reps` 2048^3 sgemms on the current thread count (best one);
 * the buffers are the caller's (3 x 2048^2 floats). */
enum { GN = 2048 };

static double sgemm_peak(float *a, int reps, double *best_cpu)
{
	float *b = a + (size_t)GN * GN, *c = b + (size_t)GN * GN;
	double best = 0;
	for (int r = 0; r < reps; r++) {
		double t = fv_now_s(), tc = cpu_s();
		dnnl_sgemm('N', 'N', GN, GN, GN, 1.0f, a, GN, b, GN, 0.0f, c, GN);
		double g = 2.0 * GN * GN * GN / (fv_now_s() - t) / 1e9;
		double gc = 2.0 * GN * GN * GN / (cpu_s() - tc) / 1e9;
		best = g > best ? g : best;
		*best_cpu = gc > *best_cpu ? gc : *best_cpu;
	}
	return best;
}

typedef struct {
	double best, best_cpu;  /* seconds per step: wall, process CPU */
	double peak, peak_cpu;  /* sgemm GFLOP/s: wall, process CPU */
} timing;

/* Times o->repeat runs of o->steps steps, with sgemm peak runs between
 * them so both see the same machine load; keeps the best of each. */
static int measure(fv_net *net, fv_sgd *sgd, const float *x, const int *lab, bopts *o,
		   int train, timing *tm)
{
	float *g = malloc(sizeof(float) * 3 * GN * GN);
	if (!g)
		return ENOMEM;
	for (size_t i = 0; i < (size_t)3 * GN * GN; i++)
		g[i] = (float)(i % 7) * 0.1f;
	int rc = 0;
	tm->best = tm->best_cpu = 1e30;
	tm->peak_cpu = 0;
	tm->peak = sgemm_peak(g, 1, &tm->peak_cpu);
	for (int r = 0; r < o->repeat && !rc; r++) {
		double p = sgemm_peak(g, 2, &tm->peak_cpu);
		tm->peak = p > tm->peak ? p : tm->peak;
		double t0 = 0, c0 = 0;
		for (int s = 0; s < o->warmup + o->steps && !rc; s++) {
			if (s == o->warmup)
				t0 = fv_now_s(), c0 = cpu_s();
			float loss;
			rc = fv_net_forward(net, x, o->batch, train);
			if (!rc && train)
				rc = fv_net_loss(net, lab, NULL, &loss);
			if (!rc && train)
				rc = fv_net_backward(net);
			if (!rc && train)
				rc = fv_sgd_step(sgd, 0.01f);
		}
		double dt = (fv_now_s() - t0) / o->steps, dc = (cpu_s() - c0) / o->steps;
		tm->best = dt < tm->best ? dt : tm->best;
		tm->best_cpu = dc < tm->best_cpu ? dc : tm->best_cpu;
		o->warmup = 1;
	}
	free(g);
	return rc;
}

static int run(int argc, char **argv, int train)
{
	timing tm;
	bopts o;
	int rc = parse(argc, argv, &o);
	if (rc)
		return rc;
	fv_net *net = NULL;
	fv_sgd *sgd = NULL;
	float *x = NULL;
	int *lab = NULL;
	rc = fv_model_build(o.model, o.c, o.h, o.w, o.classes, &net);
	if (!rc)
		rc = fv_net_compile(net, &(fv_net_opts){ .batch = o.batch, .threads = o.threads,
						       .seed = 1, .inference_only = !train });
	if (!rc && train)
		rc = fv_sgd_new(&sgd, fv_net_params(net), fv_net_nparams(net),
				&(fv_sgd_opts){ .momentum = 0.9f, .weight_decay = 5e-4f });
	size_t nx = (size_t)o.batch * o.c * o.h * o.w;
	x = malloc(nx * sizeof *x);
	lab = malloc(o.batch * sizeof *lab);
	if (!rc && (!x || !lab))
		rc = ENOMEM;
	if (rc) {
		fprintf(stderr, "bench %s: %s\n", o.model, fv_err_msg(rc));
		goto out;
	}
	for (size_t i = 0; i < nx; i++)
		x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
	for (int i = 0; i < o.batch; i++)
		lab[i] = i % o.classes;
	rc = measure(net, sgd, x, lab, &o, train, &tm);
	if (rc) {
		fprintf(stderr, "bench %s: step: %s\n", o.model, fv_err_msg(rc));
		goto out;
	}
	double best = tm.best, best_cpu = tm.best_cpu, peak = tm.peak, peak_cpu = tm.peak_cpu;
	double flops = (train ? 3.0 : 1.0) * 2.0 * fv_net_macs(net) * o.batch;
	double gf = flops / best / 1e9, ips = o.batch / best, gfc = flops / best_cpu / 1e9;
	if (o.json)
		printf("{\"bench\":\"%s\",\"model\":\"%s\",\"input\":\"%dx%dx%d\",\"batch\":%d,"
		       "\"threads\":%d,\"step_ms\":%.3f,\"img_per_s\":%.1f,\"gflops\":%.2f,"
		       "\"peak_gflops\":%.2f,\"pct_of_peak\":%.1f,\"cpu_gflops\":%.2f,"
		       "\"cpu_peak_gflops\":%.2f,\"cpu_pct_of_peak\":%.1f}\n", train ? "train" : "infer",
		       o.model, o.c, o.h, o.w, o.batch, o.threads, best * 1e3, ips, gf, peak,
		       100 * gf / peak, gfc, peak_cpu, 100 * gfc / peak_cpu);
	else
		printf("%s %s %dx%dx%d batch %d threads %d: %.2f ms/step, %.1f img/s, %.2f GFLOP/s "
		       "= %.1f%% of sgemm peak %.2f GFLOP/s (best of %d x %d steps; peak best of "
		       "%d sgemms in between)\n",
		       train ? "train" : "infer", o.model, o.c, o.h, o.w, o.batch, o.threads,
		       best * 1e3, ips, gf, 100 * gf / peak, peak, o.repeat, o.steps, 2 * o.repeat + 1);
	if (!o.json)
		printf("  by process CPU time (leaves out time other jobs held the cores): "
		       "%.2f of %.2f GFLOP/s = %.1f%%\n", gfc, peak_cpu, 100 * gfc / peak_cpu);
out:
	fv_sgd_destroy(&sgd);
	fv_net_destroy(&net);
	free(x), free(lab);
	return rc ? 1 : 0;
}

int fv_bench_train(int argc, char **argv)
{
	return run(argc, argv, 1);
}

int fv_bench_infer(int argc, char **argv)
{
	return run(argc, argv, 0);
}
