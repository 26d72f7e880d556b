/* nn/optim/ckptdir.c — the trainer's checkpoint directory: names carry the
 * step ("ckpt-000001234.fvc"), so the newest checkpoint is found by listing
 * the directory, without logs or a pointer file that could disagree. Writes
 * are atomic (fv_ckpt_write), so every file with such a name is complete. */
#include "nn/ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fv_error.h"
#include "fv_file.h"

int fv_ckpt_path(char *path, size_t cap, const char *dir, uint64_t step)
{
	int len = snprintf(path, cap, "%s/ckpt-%09" PRIu64 ".fvc", dir, step);
	if (len < 0 || (size_t)len >= cap)
		return fv_err_set(ENAMETOOLONG, "%s: checkpoint path too long", dir);
	return 0;
}

/* Step of a name "ckpt-<digits>.fvc", or -1 for any other name. */
static int name_step(const char *name, uint64_t *step)
{
	size_t len = strlen(name);
	if (strncmp(name, "ckpt-", 5) || len < 10 || strcmp(name + len - 4, ".fvc"))
		return -1;
	size_t nd = len - 9;
	if (nd > 19 || strspn(name + 5, "0123456789") != nd)
		return -1;
	*step = strtoull(name + 5, NULL, 10);
	return 0;
}

/* A temp file ".<name>.tmp-<pid>" whose writer is gone, or untouched for
 * an hour (a restarted writer can reuse the pid, as pid 1 in a container
 * does; a live writer updates mtime with every write). */
static int stale_temp(int dfd, const char *name)
{
	const char *t = strstr(name, ".tmp-");
	struct stat st;
	if (name[0] != '.' || !t || strncmp(name + 1, "ckpt-", 5))
		return 0;
	char *end;
	long pid = strtol(t + 5, &end, 10);
	if (*end || pid <= 0)
		return 0;
	if (kill((pid_t)pid, 0) && errno == ESRCH)
		return 1;
	return !fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) && st.st_mtime < time(NULL) - 3600;
}

typedef struct entry { uint64_t step; char *name; } entry;

static int cmp_entry(const void *a, const void *b)
{
	uint64_t x = ((const entry *)a)->step, y = ((const entry *)b)->step;
	return x < y ? -1 : x > y;
}

/* Checkpoints in dir, sorted by step. With prune_temps, stale temp files are
 * deleted along the way. */
static int list(const char *dir, entry **out, size_t *n, int prune_temps)
{
	DIR *d = opendir(dir);
	entry *v = NULL;
	size_t cap = 0;
	int rc = 0;
	struct dirent *de;

	*n = 0;
	if (!d)
		return fv_err_set(errno, "%s: cannot list checkpoints: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		uint64_t step;
		if (prune_temps && stale_temp(dirfd(d), de->d_name))
			unlinkat(dirfd(d), de->d_name, 0);
		if (name_step(de->d_name, &step))
			continue;
		if (*n == cap) {
			entry *nv = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof *v);
			if (!nv) {
				rc = ENOMEM;
				break;
			}
			v = nv;
		}
		if (!(v[*n].name = strdup(de->d_name))) {
			rc = ENOMEM;
			break;
		}
		v[(*n)++].step = step;
	}
	closedir(d);
	if (*n)
		qsort(v, *n, sizeof *v, cmp_entry);
	*out = v;
	return rc;
}

static void free_list(entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

int fv_ckpt_latest(const char *dir, char *path, size_t cap, uint64_t *step)
{
	entry *v = NULL;
	size_t n = 0;
	int rc = list(dir, &v, &n, 0);

	if (!rc && !n)
		rc = fv_err_set(FV_E_NOTFOUND, "%s: no checkpoint (ckpt-<step>.fvc)", dir);
	if (!rc) {
		int len = snprintf(path, cap, "%s/%s", dir, v[n - 1].name);
		if (len < 0 || (size_t)len >= cap)
			rc = fv_err_set(ENAMETOOLONG, "%s: checkpoint path too long", dir);
		else if (step)
			*step = v[n - 1].step;
	}
	free_list(v, n);
	return rc;
}

int fv_ckpt_list(const char *dir, uint64_t **steps, size_t *n)
{
	entry *v = NULL;
	int rc = list(dir, &v, n, 0);

	*steps = NULL;
	if (!rc && !(*steps = malloc((*n ? *n : 1) * sizeof **steps)))
		rc = ENOMEM;
	for (size_t i = 0; !rc && i < *n; i++)
		(*steps)[i] = v[i].step;
	free_list(v, *n);
	if (rc)
		*n = 0;
	return rc;
}

int fv_ckpt_prune(const char *dir, int keep_last)
{
	entry *v = NULL;
	size_t n = 0;
	int rc;

	if (keep_last < 1)
		return fv_err_set(EINVAL, "%s: prune must keep at least one checkpoint", dir);
	if ((rc = list(dir, &v, &n, 1)))
		goto out;
	for (size_t i = 0; i + (size_t)keep_last < n; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, v[i].name);
		if (unlink(path) && errno != ENOENT) {
			rc = fv_err_set(errno, "%s: cannot delete: %s", path, strerror(errno));
			goto out;
		}
	}
	fv_fsync_dir(dir);
out:
	free_list(v, n);
	return rc;
}
