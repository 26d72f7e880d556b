/* augment/bench_workers.c — the pipeline half of `fovea bench augment`:
 * images/s through real fovea-augment processes (1 thread each) over ipc://,
 * as the trainer would see it: the client copies each batch's JPEGs into a
 * request, workers return 32 x 3x224x224 float32 tensors, the client hands
 * them over without copying. The caller compares 1 and 2 workers. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fv_augc.h"
#include "fv_daemon.h"
#include "fv_error.h"
#include "fv_log.h"

int fv_aug_bench_workers(const char *images_dir, int nworkers, double *img_per_s);

#define MAX_IMAGES 256
#define BATCH 32
#define WARM_MS 1500
#define MEASURE_MS 4000

static int load(const char *dir, fv_aug_input *in, uint8_t **bufs)
{
	char path[4096];
	int n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	for (struct dirent *e; n < MAX_IMAGES && (e = readdir(d));) {
		size_t len = strlen(e->d_name);
		if (len < 5 || strcmp(e->d_name + len - 4, ".jpg"))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		FILE *f = fopen(path, "rb");
		if (!f)
			continue;
		fseek(f, 0, SEEK_END);
		long size = ftell(f);
		fseek(f, 0, SEEK_SET);
		bufs[n] = size > 0 ? malloc(size) : NULL;
		if (bufs[n] && fread(bufs[n], 1, size, f) == (size_t)size) {
			in[n] = (fv_aug_input){ FV_ENC_JPEG, bufs[n], (size_t)size, 0, 0, 0 };
			n++;
		} else {
			free(bufs[n]);
		}
		fclose(f);
	}
	closedir(d);
	return n;
}

/* CPU seconds used so far by the local workers, and by this process. */
static void cpu_used(fv_augc *c, double *workers, double *self)
{
	pid_t pids[64];
	int k = fv_augc_local_pids(c, pids, 64);
	double tick = (double)sysconf(_SC_CLK_TCK);
	*workers = 0;
	for (int i = 0; i < k; i++) {
		char path[64], buf[1024];
		snprintf(path, sizeof path, "/proc/%d/stat", (int)pids[i]);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t len = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[len] = 0;
		char *q = strrchr(buf, ')'); /* fields after the command name */
		unsigned long ut = 0, st = 0;
		if (q && sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
				&ut, &st) == 2)
			*workers += (ut + st) / tick;
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	*self = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
		ru.ru_stime.tv_usec / 1e6;
}

/* Keep the window full; count images in batches delivered after warm-up.
 * Besides images/s (wall clock, which a loaded machine skews), log the CPU
 * the workers and the client spent per image: the client's share is what
 * limits scaling with more workers. */
static int stream(fv_augc *c, const fv_aug_params *p, const fv_aug_input *all, int n,
		  double *img_per_s)
{
	double w0 = 0, s0 = 0, w1, s1;
	fv_aug_input in[BATCH];
	uint64_t seeds[BATCH];
	uint64_t next = 0;
	int64_t t0 = fv_now_ms(), start = 0;
	long counted = 0;
	for (;;) {
		int rc;
		do {
			for (int i = 0; i < BATCH; i++) {
				in[i] = all[(next * BATCH + i) % n];
				seeds[i] = next * BATCH + i;
			}
			rc = fv_augc_submit(c, 0, next, p, in, seeds, BATCH, NULL);
			if (!rc)
				next++;
		} while (!rc);
		if (rc != EAGAIN)
			return rc;
		fv_augc_batch *b;
		if ((rc = fv_augc_next(c, &b, 30000)))
			return rc == EAGAIN ? fv_err_set(FV_E_TIMEOUT, "no batch in 30 s") : rc;
		int ok = !b->rc;
		fv_augc_release(c, &b);
		if (!ok)
			return fv_err_set(FV_E_DECODE, "a benchmark batch failed");
		int64_t now = fv_now_ms();
		if (!start && now - t0 >= WARM_MS) {
			start = now;
			cpu_used(c, &w0, &s0);
		}
		else if (start)
			counted += BATCH;
		if (start && now - start >= MEASURE_MS) {
			*img_per_s = counted * 1000.0 / (double)(now - start);
			cpu_used(c, &w1, &s1);
			fv_info("bench workers: %d worker(s): %.1f img/s wall; CPU per image: "
				"workers %.2f ms, client %.2f ms (%.1f%% of the workers')",
				fv_augc_workers(c, NULL), *img_per_s, (w1 - w0) * 1e3 / counted,
				(s1 - s0) * 1e3 / counted, 100.0 * (s1 - s0) / (w1 - w0 + 1e-9));
			return 0;
		}
	}
}

int fv_aug_bench_workers(const char *images_dir, int nworkers, double *img_per_s)
{
	fv_aug_input *in = calloc(MAX_IMAGES, sizeof *in);
	uint8_t **bufs = calloc(MAX_IMAGES, sizeof *bufs);
	char dir[] = "/tmp/fvbench.XXXXXX", ep[64];
	fv_augc *c = NULL;
	fv_augc_opts o;
	fv_aug_params p;
	int n = 0, rc = 0, made = 0;

	*img_per_s = 0;
	if (!in || !bufs) {
		rc = ENOMEM;
		goto out;
	}
	if ((n = load(images_dir, in, bufs)) < 1) {
		rc = fv_err_set(FV_E_NOTFOUND, "%s: no .jpg files", images_dir);
		goto out;
	}
	if (!mkdtemp(dir)) {
		rc = fv_err_set(errno, "mkdtemp: %s", strerror(errno));
		goto out;
	}
	made = 1;
	snprintf(ep, sizeof ep, "ipc://%s/aug.sock", dir);
	fv_augc_opts_default(&o);
	o.endpoint = ep;
	o.window = 2 * nworkers + 2; /* every worker busy, one more queued each */
	if ((rc = fv_augc_new(&c, &o)) || (rc = fv_augc_spawn_local(c, nworkers, 1)))
		goto out;
	for (int64_t end = fv_now_ms() + 10000; fv_augc_workers(c, NULL) < nworkers;) {
		if (fv_now_ms() > end) {
			rc = fv_err_set(FV_E_TIMEOUT, "%d workers did not connect in 10 s", nworkers);
			goto out;
		}
		usleep(10000);
	}
	fv_aug_defaults(&p, FV_AUG_TRAIN, 3, 224, 224);
	rc = stream(c, &p, in, n, img_per_s);
out:
	if (rc)
		fv_err("bench workers: %s", fv_err_msg(rc));
	fv_augc_destroy(&c);
	if (made) {
		char sock[96];
		snprintf(sock, sizeof sock, "%s/aug.sock", dir);
		unlink(sock);
		rmdir(dir);
	}
	for (int i = 0; bufs && i < n; i++)
		free(bufs[i]);
	free(bufs);
	free(in);
	return rc;
}
