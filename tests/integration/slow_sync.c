/* slow_sync.c — LD_PRELOAD shim for tests: a disk whose fsync is slow.
 * fsync and fdatasync wait SLOW_SYNC_MS (default 50) milliseconds, then do
 * the real call; at exit the number of calls goes to the file named by
 * SLOW_SYNC_COUNT. Real LMDB, real files: only the latency is made up.
 * With SLOW_SYNC_SIGNAL_AT=N the process sends itself SLOW_SYNC_SIGNAL
 * (a number, default 9) on entering its Nth sync, before it is done: a
 * crash or a stop at a chosen point of a run, whatever the machine's
 * speed. With SLOW_SYNC_FAIL_AT=N, syncs N .. N + SLOW_SYNC_FAILS - 1
 * (default 1) fail with ENOSPC instead: a disk that fills up, then has
 * room again. With SLOW_SYNC_NOMOVE=TEXT, renaming a path that contains
 * TEXT fails with EACCES while the file SLOW_SYNC_NOMOVE_WHILE names
 * exists: a folder the process may not write, until someone fixes it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_long calls;

/* Wait, signal if asked; 0, or -1 with errno set for a sync that fails. */
static int slow(void)
{
	const char *e = getenv("SLOW_SYNC_MS"), *at = getenv("SLOW_SYNC_SIGNAL_AT");
	const char *sig = getenv("SLOW_SYNC_SIGNAL"), *fail = getenv("SLOW_SYNC_FAIL_AT");
	const char *fails = getenv("SLOW_SYNC_FAILS");
	long ms = e ? atol(e) : 50;
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	long n = atomic_fetch_add(&calls, 1) + 1;
	if (at && n == atol(at))
		kill(getpid(), sig ? atoi(sig) : SIGKILL);
	nanosleep(&t, NULL);
	if (fail && n >= atol(fail) && n < atol(fail) + (fails ? atol(fails) : 1)) {
		errno = ENOSPC;
		return -1;
	}
	return 0;
}

int fsync(int fd)
{
	static int (*real)(int);
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	return slow() ? -1 : real(fd);
}

int fdatasync(int fd)
{
	static int (*real)(int);
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	return slow() ? -1 : real(fd);
}

static int nomove(const char *path)
{
	const char *t = getenv("SLOW_SYNC_NOMOVE"), *w = getenv("SLOW_SYNC_NOMOVE_WHILE");
	if (t && *t && strstr(path, t) && w && !access(w, F_OK)) {
		errno = EACCES;
		return 1;
	}
	return 0;
}

int rename(const char *from, const char *to)
{
	static int (*real)(const char *, const char *);
	if (!real)
		real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
	return nomove(from) ? -1 : real(from, to);
}

int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned flags)
{
	static int (*real)(int, const char *, int, const char *, unsigned);
	if (!real)
		real = (int (*)(int, const char *, int, const char *, unsigned))dlsym(RTLD_NEXT,
										       "renameat2");
	return nomove(from) ? -1 : real(fromfd, from, tofd, to, flags);
}

__attribute__((destructor)) static void report(void)
{
	const char *p = getenv("SLOW_SYNC_COUNT");
	FILE *f = p ? fopen(p, "w") : NULL;
	if (f) {
		fprintf(f, "%ld\n", atomic_load(&calls));
		fclose(f);
	}
}
