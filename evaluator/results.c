/* evaluator/results.c — one evaluation as JSON, and RUNDIR/eval.jsonl: the
 * durable record of what has been evaluated. The file is append-only; each
 * line goes out in one write(2) and is fsynced before the daemon publishes
 * or moves on, so a checkpoint is either recorded completely or (after a
 * crash mid-write) not at all: open() cuts the torn tail and the checkpoint
 * is evaluated again. */
#include "evaluator/evaluator.h"
#include "fv_error.h"
#include "fv_log.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fv_evlog {
	char *run;
	char path[4200];
	int fd;
	fv_eval_entry *e;
	size_t n, cap;
};

/* ---------------------------------------------------------------- JSON */

void fv_eval_result_free(fv_eval_result *r)
{
	if (r->class_names)
		for (int i = 0; i < r->classes; i++)
			free(r->class_names[i]);
	free(r->class_names);
	free(r->per_class);
	free(r->confusion);
	r->class_names = NULL;
	r->per_class = NULL;
	r->confusion = NULL;
}

static const char *base(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

int fv_eval_result_json(const fv_eval_result *r, fv_jsonw *w)
{
	int k = r->classes;
	fv_jsonw_obj(w);
	fv_jsonw_key(w, "ckpt"), fv_jsonw_str(w, base(r->path));
	fv_jsonw_key(w, "path"), fv_jsonw_str(w, r->path);
	fv_jsonw_key(w, "status"), fv_jsonw_str(w, r->failed ? "failed" : "ok");
	if (r->failed)
		fv_jsonw_key(w, "error"), fv_jsonw_str(w, r->error);
	fv_jsonw_key(w, "model"), fv_jsonw_str(w, r->model);
	fv_jsonw_key(w, "step"), fv_jsonw_u64(w, r->step);
	fv_jsonw_key(w, "epoch"), fv_jsonw_num(w, r->epoch);
	fv_jsonw_key(w, "dataset_version"), fv_jsonw_u64(w, r->dataset_version);
	fv_jsonw_key(w, "time"), fv_jsonw_u64(w, (uint64_t)r->time);
	if (r->failed) {
		fv_jsonw_obj_end(w);
		return fv_jsonw_status(w);
	}
	fv_jsonw_key(w, "val_version"), fv_jsonw_u64(w, r->val_version);
	fv_jsonw_key(w, "n"), fv_jsonw_u64(w, r->n);
	/* %.9g keeps every digit a float score carries; the champion is chosen
	 * from these parsed values, live and after a restart alike */
	fv_jsonw_key(w, "top1"), fv_jsonw_num(w, r->top1);
	fv_jsonw_key(w, "top5"), fv_jsonw_num(w, r->top5);
	fv_jsonw_key(w, "loss"), fv_jsonw_num(w, r->loss);
	fv_jsonw_key(w, "ece"), fv_jsonw_num(w, r->ece);
	fv_jsonw_key(w, "eval_s"), fv_jsonw_num(w, r->eval_s);
	if (r->split_key) { /* a continual round: drift and forgetting, separately */
		fv_jsonw_key(w, "round"), fv_jsonw_u64(w, r->round);
		fv_jsonw_key(w, "split_key"), fv_jsonw_u64(w, r->split_key);
		fv_jsonw_key(w, "n_old"), fv_jsonw_u64(w, r->n_old);
		fv_jsonw_key(w, "n_new"), fv_jsonw_u64(w, r->n_new);
		fv_jsonw_key(w, "top1_old"), fv_jsonw_num(w, r->top1_old);
		fv_jsonw_key(w, "top1_new"), fv_jsonw_num(w, r->top1_new);
	}
	fv_jsonw_key(w, "classes"), fv_jsonw_u64(w, (uint64_t)k);
	if (r->class_names) {
		fv_jsonw_key(w, "class_names");
		fv_jsonw_arr(w);
		for (int i = 0; i < k; i++)
			fv_jsonw_str(w, r->class_names[i]);
		fv_jsonw_arr_end(w);
	}
	fv_jsonw_key(w, "per_class");
	fv_jsonw_arr(w);
	for (int i = 0; r->per_class && i < k; i++)
		fv_jsonw_num(w, r->per_class[i]);
	fv_jsonw_arr_end(w);
	if (r->confusion && k <= 256) {
		fv_jsonw_key(w, "confusion");
		fv_jsonw_arr(w);
		for (int t = 0; t < k; t++) {
			fv_jsonw_arr(w);
			for (int p = 0; p < k; p++)
				fv_jsonw_u64(w, r->confusion[(size_t)t * k + p]);
			fv_jsonw_arr_end(w);
		}
		fv_jsonw_arr_end(w);
	} else if (r->confusion) {
		fv_jsonw_key(w, "confusion_sparse");
		fv_jsonw_arr(w);
		for (size_t i = 0; i < (size_t)k * k; i++) {
			if (!r->confusion[i])
				continue;
			fv_jsonw_arr(w);
			fv_jsonw_u64(w, i / k);
			fv_jsonw_u64(w, i % k);
			fv_jsonw_u64(w, r->confusion[i]);
			fv_jsonw_arr_end(w);
		}
		fv_jsonw_arr_end(w);
	}
	fv_jsonw_obj_end(w);
	return fv_jsonw_status(w);
}

int fv_eval_entry_parse(const char *line, size_t len, fv_eval_entry *e)
{
	char status[16];
	memset(e, 0, sizeof *e);
	if (fv_jsonr_check(line, len))
		return FV_E_FORMAT;
	if (fv_jsonr_str(line, len, "ckpt", e->ckpt, sizeof e->ckpt) || !e->ckpt[0] ||
	    fv_jsonr_str(line, len, "path", e->path, sizeof e->path) ||
	    fv_jsonr_str(line, len, "status", status, sizeof status))
		return FV_E_FORMAT;
	fv_jsonr_str(line, len, "model", e->model, sizeof e->model);
	fv_jsonr_u64(line, len, "step", &e->step);
	fv_jsonr_u64(line, len, "dataset_version", &e->dataset_version);
	fv_jsonr_num(line, len, "epoch", &e->epoch);
	e->failed = strcmp(status, "ok") != 0;
	e->top1 = e->top5 = e->loss = e->ece = NAN;
	if (e->failed)
		return 0;
	if (fv_jsonr_u64(line, len, "n", &e->n) || fv_jsonr_num(line, len, "top1", &e->top1) ||
	    fv_jsonr_num(line, len, "loss", &e->loss))
		return FV_E_FORMAT;
	fv_jsonr_num(line, len, "top5", &e->top5);
	fv_jsonr_num(line, len, "ece", &e->ece);
	return 0;
}

/* ---------------------------------------------------------------- eval.jsonl */

static int push(fv_evlog *l, const fv_eval_entry *e)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		fv_eval_entry *n = realloc(l->e, cap * sizeof *n);
		if (!n)
			return ENOMEM;
		l->e = n;
		l->cap = cap;
	}
	l->e[l->n++] = *e;
	return 0;
}

/* Read the whole file, keep its complete lines, cut a torn tail. */
static int load(fv_evlog *l, size_t *torn)
{
	struct stat st;
	char *buf = NULL;
	int rc = 0;
	if (fstat(l->fd, &st))
		return fv_err_set(errno, "%s: %s", l->path, strerror(errno));
	size_t size = (size_t)st.st_size, got = 0;
	if (!size)
		return 0;
	if (!(buf = malloc(size)))
		return ENOMEM;
	while (got < size) {
		ssize_t k = pread(l->fd, buf + got, size - got, (off_t)got);
		if (k <= 0) {
			rc = fv_err_set(k ? errno : FV_E_CORRUPT, "%s: read failed", l->path);
			goto out;
		}
		got += (size_t)k;
	}
	size_t start = 0, lineno = 0;
	for (size_t i = 0; i < size; i++) {
		if (buf[i] != '\n')
			continue;
		lineno++;
		fv_eval_entry e;
		if (i > start && fv_eval_entry_parse(buf + start, i - start, &e) == 0) {
			if ((rc = push(l, &e)))
				goto out;
		} else if (i > start) {
			fv_warn("%s:%zu: not an evaluation record; skipped", l->path, lineno);
		}
		start = i + 1;
	}
	if (start < size) {
		fv_warn("%s: cutting %zu bytes of a line torn by a crash", l->path, size - start);
		if (ftruncate(l->fd, (off_t)start) || fsync(l->fd)) {
			rc = fv_err_set(errno, "%s: cannot cut the torn last line: %s", l->path,
					strerror(errno));
			goto out;
		}
	}
	if (torn)
		*torn = size - start;
out:
	free(buf);
	return rc;
}

int fv_evlog_open(fv_evlog **out, const char *rundir, size_t *torn)
{
	int rc;
	fv_evlog *l = calloc(1, sizeof *l);
	*out = NULL;
	if (torn)
		*torn = 0;
	if (!l || !(l->run = strdup(rundir))) {
		free(l);
		return ENOMEM;
	}
	snprintf(l->path, sizeof l->path, "%s/eval.jsonl", rundir);
	l->fd = open(l->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (l->fd < 0) {
		rc = fv_err_set(errno, "%s: %s", l->path, strerror(errno));
		goto fail;
	}
	if ((rc = load(l, torn)))
		goto fail;
	*out = l;
	return 0;
fail:
	fv_evlog_close(&l);
	return rc;
}

void fv_evlog_close(fv_evlog **p)
{
	fv_evlog *l = *p;
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	free(l->e);
	free(l->run);
	free(l);
	*p = NULL;
}

size_t fv_evlog_count(const fv_evlog *l) { return l->n; }
const fv_eval_entry *fv_evlog_at(const fv_evlog *l, size_t i) { return i < l->n ? &l->e[i] : NULL; }
const char *fv_evlog_run(const fv_evlog *l) { return l->run; }

long fv_evlog_find(const fv_evlog *l, const char *ckpt)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->e[i].ckpt, ckpt))
			return (long)i;
	return -1;
}

int fv_evlog_append(fv_evlog *l, const fv_eval_result *r)
{
	fv_jsonw w;
	fv_eval_entry e;
	int rc;
	fv_jsonw_init(&w);
	if ((rc = fv_eval_result_json(r, &w)))
		goto out;
	if ((rc = fv_eval_entry_parse(w.buf, w.len, &e))) {
		rc = fv_err_set(FV_E_INTERNAL, "eval.jsonl: a line we wrote does not parse back");
		goto out;
	}
	/* the newline is part of the one write: a line without it is torn */
	w.buf[w.len] = '\n';
	off_t before = lseek(l->fd, 0, SEEK_END);
	size_t done = 0, len = w.len + 1;
	while (done < len) {
		ssize_t k = write(l->fd, w.buf + done, len - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			rc = fv_err_set(errno ? errno : EIO, "%s: %s", l->path, strerror(errno));
			break;
		}
		done += (size_t)k;
	}
	if (!rc && fsync(l->fd))
		rc = fv_err_set(errno, "%s: fsync: %s", l->path, strerror(errno));
	if (rc) {
		if (before >= 0 && ftruncate(l->fd, before) == 0)
			fsync(l->fd);
		goto out;
	}
	rc = push(l, &e);
out:
	fv_jsonw_free(&w);
	return rc;
}

long fv_evlog_best(const fv_evlog *l)
{
	long best = -1;
	for (size_t i = 0; i < l->n; i++)
		if (fv_champion_better(&l->e[i], best < 0 ? NULL : &l->e[best]))
			best = (long)i;
	return best;
}
