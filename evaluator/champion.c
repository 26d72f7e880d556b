/* evaluator/champion.c — the run's best checkpoint. RUNDIR/champion.fvc is
 * a hard link to the champion's checkpoint file (a copy when the run
 * directory and the checkpoint live on different file systems), so the
 * trainer's pruning of old checkpoints cannot take it away; RUNDIR/champion
 * is a small "key=value" file naming it with its scores. Both are replaced
 * by temp file + fsync + rename + directory fsync, the .fvc first: the
 * champion file is the commit point, and a crash between the two leaves a
 * newer .fvc that the next start re-derives the champion file for. */
#include "evaluator/evaluator.h"
#include "fv_error.h"
#include "fv_file.h"
#include "fv_log.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fv_champion_better(const fv_eval_entry *a, const fv_eval_entry *b)
{
	if (!a || a->failed || isnan(a->top1))
		return 0;
	if (!b || b->failed || isnan(b->top1))
		return 1;
	if (a->top1 != b->top1)
		return a->top1 > b->top1;
	double la = isnan(a->loss) ? INFINITY : a->loss, lb = isnan(b->loss) ? INFINITY : b->loss;
	if (la != lb)
		return la < lb;
	return a->step < b->step;
}

/* Copy src to the open fd dst, then fsync it. */
static int copy_into(int dst, const char *src)
{
	char buf[1 << 16];
	int rc = 0, in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return fv_err_set(errno, "%s: %s", src, strerror(errno));
	for (;;) {
		ssize_t k = read(in, buf, sizeof buf);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = fv_err_set(errno, "%s: %s", src, strerror(errno));
			break;
		}
		if (k == 0)
			break;
		for (ssize_t d = 0; d < k;) {
			ssize_t m = write(dst, buf + d, (size_t)(k - d));
			if (m < 0 && errno == EINTR)
				continue;
			if (m <= 0) {
				rc = fv_err_set(errno ? errno : EIO, "champion.fvc: %s", strerror(errno));
				goto out;
			}
			d += m;
		}
	}
	if (!rc && fsync(dst))
		rc = fv_err_set(errno, "champion.fvc: fsync: %s", strerror(errno));
out:
	close(in);
	return rc;
}

/* RUNDIR/champion.fvc <- src, atomically. */
static int place_fvc(const char *rundir, const char *src)
{
	char tmp[4200], dst[4200];
	int rc = 0;
	snprintf(tmp, sizeof tmp, "%s/.champion.fvc.tmp-%d", rundir, (int)getpid());
	snprintf(dst, sizeof dst, "%s/champion.fvc", rundir);
	unlink(tmp);
	if (link(src, tmp)) {
		if (errno != EXDEV && errno != EPERM && errno != EMLINK)
			return fv_err_set(errno, "cannot link %s as the champion: %s", src,
					  strerror(errno));
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return fv_err_set(errno, "%s: %s", tmp, strerror(errno));
		rc = copy_into(fd, src);
		close(fd);
		if (rc)
			goto fail;
	}
	if (rename(tmp, dst)) {
		rc = fv_err_set(errno, "%s: %s", dst, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	unlink(tmp);
	return rc;
}

int fv_champion_write(const char *rundir, const fv_eval_entry *e)
{
	char tmp[4200], dst[4200];
	int rc;
	if ((rc = place_fvc(rundir, e->path)))
		return rc;
	snprintf(tmp, sizeof tmp, "%s/.champion.tmp-%d", rundir, (int)getpid());
	snprintf(dst, sizeof dst, "%s/champion", rundir);
	FILE *f = fopen(tmp, "we");
	if (!f)
		return fv_err_set(errno, "%s: %s", tmp, strerror(errno));
	fprintf(f, "ckpt=%s\nsource=%s\npath=%s/champion.fvc\nmodel=%s\nstep=%llu\nepoch=%.6f\n"
		"dataset_version=%llu\nn=%llu\ntop1=%.9g\ntop5=%.9g\nloss=%.9g\nece=%.9g\n",
		e->ckpt, e->path, rundir, e->model, (unsigned long long)e->step, e->epoch,
		(unsigned long long)e->dataset_version, (unsigned long long)e->n, e->top1, e->top5,
		e->loss, e->ece);
	if (fflush(f) || fsync(fileno(f))) {
		rc = fv_err_set(errno, "%s: %s", tmp, strerror(errno));
		fclose(f);
		goto fail;
	}
	if (fclose(f)) {
		rc = fv_err_set(errno, "%s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (rename(tmp, dst)) {
		rc = fv_err_set(errno, "%s: %s", dst, strerror(errno));
		goto fail;
	}
	if ((rc = fv_fsync_dir(rundir)))
		return fv_err_set(rc, "%s: fsync: %s", rundir, strerror(rc));
	return 0;
fail:
	unlink(tmp);
	return rc;
}

int fv_champion_read(const char *rundir, char *out, size_t cap)
{
	char path[4200], line[4400];
	int rc = FV_E_NOTFOUND;
	snprintf(path, sizeof path, "%s/champion", rundir);
	FILE *f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? FV_E_NOTFOUND : fv_err_set(errno, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "ckpt=", 5))
			continue;
		line[strcspn(line, "\n")] = 0;
		if (strlen(line + 5) >= cap) {
			rc = ENAMETOOLONG;
			break;
		}
		strcpy(out, line + 5);
		rc = 0;
		break;
	}
	fclose(f);
	return rc;
}
