/* fovea — the front door. `fovea <stage> ARGS...` runs `fovea-<stage>` from
 * the directory this binary lives in (then $PATH), the way git runs its
 * subcommands. Stages that are subcommands of a daemon are mapped here
 * (`fovea stats` is `fovea-ingest stats`). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
	const char *name, *program, *subcommand, *help;
} stages[] = {
	{ "ingest",   "fovea-ingest",    NULL,     "add images to an LMDB dataset (folders, lists, IDX, --watch INBOX)" },
	{ "stats",    "fovea-ingest",    "stats",  "counts per split and class, version, rejects (--json)" },
	{ "augment",  "fovea-augment",   NULL,     "run a decode+augment worker (--connect ENDPOINT)" },
	{ "train",    "fovea-trainer",   NULL,     "train a model from a dataset" },
	{ "eval",     "fovea-evaluator", "eval",   "score a checkpoint on the val split" },
	{ "evaluator","fovea-evaluator", NULL,     "the evaluator daemon" },
	{ "explain",  "fovea-evaluator", "explain","Grad-CAM heat map for an image" },
	{ "export",   "fovea-exporter",  "export", "quantize a checkpoint to INT8 .fovea and ONNX" },
	{ "exporter", "fovea-exporter",  NULL,     "the exporter daemon" },
	{ "serve",    "fovea-serve",     NULL,     "answer classification requests over ZMQ and HTTP" },
	{ "classify", "fovea-serve",     "classify", "print top-5 for images" },
	{ "bench",    "fovea-bench",     NULL,     "benchmarks: fovea bench train|augment|ingest" },
	{ "up",       "fovea-up",        NULL,     "run the whole pipeline on this machine" },
	{ "status",   "fovea-up",        "status", "show what a running pipeline is doing" },
	{ "keygen",   "fovea-up",        "keygen", "make a CURVE key pair for tcp:// workers" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: fovea <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++)
		fprintf(f, "  %-10s %s\n", stages[i].name, stages[i].help);
	fprintf(f, "\n`fovea <command> --help` describes each one's options.\n");
}

int main(int argc, char **argv)
{
	char self[PATH_MAX], path[PATH_MAX + 64];
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	size_t i, n = sizeof stages / sizeof stages[0];
	for (i = 0; i < n; i++)
		if (!strcmp(argv[1], stages[i].name))
			break;
	if (i == n) {
		fprintf(stderr, "fovea: '%s' is not a fovea command; see 'fovea --help'\n", argv[1]);
		return 2;
	}
	char **args = calloc(argc + 2, sizeof *args);
	int k = 0;
	if (!args)
		return 1;
	args[k++] = (char *)stages[i].program;
	if (stages[i].subcommand)
		args[k++] = (char *)stages[i].subcommand;
	for (int j = 2; j < argc; j++)
		args[k++] = argv[j];
	args[k] = NULL;

	ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
	if (len > 0) {
		self[len] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			snprintf(path, sizeof path, "%s/%s", self, stages[i].program);
			if (!access(path, X_OK))
				execv(path, args);
		}
	}
	execvp(stages[i].program, args);
	fprintf(stderr, "fovea: cannot run %s: %s\n", stages[i].program, strerror(errno));
	return 127;
}
