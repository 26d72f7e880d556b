/* fv_test.c — main() for every unit-test program; see fv_test.h. Each case
 * runs in a forked child so a crash fails that case and the rest still run. */
#include "fv_test.h"
#include "fv_error.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_TESTS 512

static struct { const char *name; fv_test_fn fn; } tests[MAX_TESTS];
static int ntests;
static int failed_here;
static uint64_t rng_state;
static char tmpdir[512];

void fv_test_register(const char *name, fv_test_fn fn)
{
	if (ntests < MAX_TESTS) {
		tests[ntests].name = name;
		tests[ntests++].fn = fn;
	}
}

void fv_test_fail(const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "  %s:%d: check failed: %s\n", file, line, msg);
	failed_here++;
}

uint64_t fv_test_rand(void)
{
	uint64_t x = rng_state;
	x ^= x << 13; x ^= x >> 7; x ^= x << 17;
	return rng_state = x;
}

double fv_test_uniform(void)
{
	return (fv_test_rand() >> 11) * (1.0 / 9007199254740992.0);
}

const char *fv_test_tmpdir(void)
{
	if (!tmpdir[0]) {
		const char *base = getenv("TMPDIR");
		snprintf(tmpdir, sizeof tmpdir, "%s/fvtest.XXXXXX", base ? base : "/tmp");
		if (!mkdtemp(tmpdir)) {
			perror("mkdtemp");
			exit(2);
		}
	}
	return tmpdir;
}

uint8_t *fv_test_slurp(const char *path, size_t *n)
{
	struct stat st;
	FILE *f = fopen(path, "rb");
	uint8_t *b = NULL;
	*n = 0;
	if (f && !fstat(fileno(f), &st) && (b = malloc((size_t)st.st_size + 1)) &&
	    fread(b, 1, (size_t)st.st_size, f) == (size_t)st.st_size)
		*n = (size_t)st.st_size;
	else {
		free(b);
		b = NULL;
	}
	if (f)
		fclose(f);
	return b;
}

const char *fv_test_shared_data(void)
{
	static char path[512];
	const char *env = getenv("FV_SHARED_DATA");
	struct stat st;
	if (env && !stat(env, &st))
		return env;
	/* tests run from the repository root: shared/ sits beside the checkout */
	snprintf(path, sizeof path, "../shared/data");
	if (!stat(path, &st))
		return path;
	return NULL;
}

static int run_one(int i)
{
	pid_t pid = fork();
	if (pid == 0) {
		rng_state = 0x9E3779B97F4A7C15ull ^ (uint64_t)(i + 1) * 0xBF58476D1CE4E5B9ull;
		fv_err_clear();
		tests[i].fn();
		if (!failed_here && tmpdir[0]) {
			char cmd[600];
			snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
			if (system(cmd)) { /* leftovers are harmless */ }
		}
		fflush(stdout);
		_exit(failed_here ? 1 : 0);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "  killed by signal %d\n", WTERMSIG(status));
		return 1;
	}
	return WEXITSTATUS(status) != 0;
}

int main(int argc, char **argv)
{
	int pass = 0, fail = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 0; i < ntests; i++) {
		if (argc > 1 && !strstr(tests[i].name, argv[1]))
			continue;
		if (run_one(i)) {
			printf("FAIL %s\n", tests[i].name);
			fail++;
		} else {
			printf("ok %s\n", tests[i].name);
			pass++;
		}
	}
	printf("-- %s: %d ok, %d failed\n", argv[0], pass, fail);
	return fail ? 1 : 0;
}
