/* fovea-bench — `fovea bench <what>`: benchmarks whose figures are ratios
 * against a reference measured in the same run. Each module links its own
 * bench entry point into this program (BENCH_SRCS in its module.mk); the
 * weak declarations let the tree build before every module has one. */
#include <stdio.h>
#include <string.h>

#include "fv_log.h"

int fv_bench_ingest(int argc, char **argv) __attribute__((weak));
int fv_bench_train(int argc, char **argv) __attribute__((weak));
int fv_bench_augment(int argc, char **argv) __attribute__((weak));
int fv_bench_infer(int argc, char **argv) __attribute__((weak));
int fv_bench_pipeline(int argc, char **argv) __attribute__((weak));
int fv_bench_int8(int argc, char **argv) __attribute__((weak));

static const struct {
	const char *name;
	const char *help;
} benches[] = {
	{ "ingest", "ingest throughput vs TurboJPEG decode-only" },
	{ "train", "training step throughput vs this machine's sgemm peak" },
	{ "augment", "augment throughput vs decode-only; pipeline with 1 and 2 workers" },
	{ "infer", "inference throughput" },
	{ "pipeline", "end-to-end training through workers vs the engine alone" },
	{ "int8", "INT8 vs FP32 runtime throughput" },
};

static int (*lookup(const char *name))(int, char **)
{
	if (!strcmp(name, "ingest")) return fv_bench_ingest;
	if (!strcmp(name, "train")) return fv_bench_train;
	if (!strcmp(name, "augment")) return fv_bench_augment;
	if (!strcmp(name, "infer")) return fv_bench_infer;
	if (!strcmp(name, "pipeline")) return fv_bench_pipeline;
	if (!strcmp(name, "int8")) return fv_bench_int8;
	return NULL;
}

int main(int argc, char **argv)
{
	fv_log_init(argv[0], 0);
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fprintf(argc < 2 ? stderr : stdout, "usage: fovea bench <what> [options]\n");
		for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
			fprintf(argc < 2 ? stderr : stdout, "  %-9s %s%s\n", benches[i].name, benches[i].help,
				lookup(benches[i].name) ? "" : " (not built)");
		return argc < 2 ? 2 : 0;
	}
	int (*fn)(int, char **) = lookup(argv[1]);
	if (!fn) {
		fprintf(stderr, "fovea bench: no benchmark '%s' in this build; see 'fovea bench --help'\n", argv[1]);
		return 2;
	}
	return fn(argc - 1, argv + 1);
}
