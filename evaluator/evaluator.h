/* evaluator/evaluator.h — the pieces of fovea-evaluator:
 *
 *   results.c   one checkpoint's scores as a JSON object, and RUNDIR/eval.jsonl:
 *               the append-only record of every evaluated checkpoint (fsynced
 *               per line; a line torn by a crash is cut off on open)
 *   champion.c  the best checkpoint so far (top-1, ties: lower loss, then the
 *               earlier step) written to RUNDIR/champion and RUNDIR/champion.fvc,
 *               both atomically
 *   eval.c      scoring a checkpoint on the val split through the augment
 *               workers (the trainer's feed), with fv_score
 *   daemon.c    the daemon: watch run directories and CheckpointReady events
 *   explain.c   `fovea explain`: Grad-CAM heat maps
 */
#ifndef FV_EVALUATOR_H
#define FV_EVALUATOR_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include "evaluator/json.h"

/* ---------------------------------------------------------------- results */

/* One evaluation as it goes to eval.jsonl, EvalResult and --json. */
typedef struct fv_eval_result {
	char path[4096];          /* the checkpoint as evaluated */
	char model[1024];
	uint64_t step, dataset_version, val_version, n;
	double epoch;
	double top1, top5, loss, ece;
	int classes;
	double *per_class;        /* classes entries (NAN: no val images); owned */
	uint64_t *confusion;      /* classes x classes [true][pred]; owned */
	char **class_names;       /* classes entries or NULL; owned */
	int failed;
	char error[512];
	double eval_s;
	int64_t time;             /* unix seconds when it finished */
	/* continual rounds: the checkpoint's meta round=N and new_from_key=B,
	 * and val top-1 on the old (key < B) and new (key >= B) images */
	uint32_t round;
	uint64_t split_key, n_old, n_new;
	double top1_old, top1_new;
} fv_eval_result;

void fv_eval_result_free(fv_eval_result *r);
/* The result as one JSON object (no newline). Confusion matrices of more
 * than 256 classes are written sparse: "confusion_sparse": [[t, p, count]...]. */
int fv_eval_result_json(const fv_eval_result *r, fv_jsonw *w);

/* What eval.jsonl remembers of a line: enough to skip a checkpoint already
 * evaluated and to choose the champion. */
typedef struct fv_eval_entry {
	char ckpt[256];           /* basename: the checkpoint's identity in its run */
	char path[4096];
	char model[1024];
	int failed;
	uint64_t step, dataset_version, n;
	double epoch, top1, top5, loss, ece;
} fv_eval_entry;

/* Parse one eval.jsonl line. Returns 0 or FV_E_FORMAT. */
int fv_eval_entry_parse(const char *line, size_t len, fv_eval_entry *e);

typedef struct fv_evlog fv_evlog;

/* Open (creating) RUNDIR/eval.jsonl and read what it holds. A last line with
 * no newline (torn by a crash mid-write) is cut off the file; other lines
 * that do not parse are skipped with a warning. *torn (may be NULL) gets the
 * bytes cut. */
int fv_evlog_open(fv_evlog **out, const char *rundir, size_t *torn);
void fv_evlog_close(fv_evlog **p);
size_t fv_evlog_count(const fv_evlog *l);
const fv_eval_entry *fv_evlog_at(const fv_evlog *l, size_t i);
/* Index of the entry for checkpoint basename ckpt, or -1. */
long fv_evlog_find(const fv_evlog *l, const char *ckpt);
/* Append r as one line, write(2) in one call, fsync. On failure the file is
 * cut back to where it was. The new entry is parsed back from the line, so
 * what the daemon holds equals what a restart reads. */
int fv_evlog_append(fv_evlog *l, const fv_eval_result *r);
/* Index of the champion among the entries that did not fail, or -1. */
long fv_evlog_best(const fv_evlog *l);
const char *fv_evlog_run(const fv_evlog *l);

/* ---------------------------------------------------------------- champion */

/* 1 if a beats b: higher top-1; equal top-1, lower loss; equal both, lower
 * step. A failed entry never wins; anything not failed beats b == NULL. */
int fv_champion_better(const fv_eval_entry *a, const fv_eval_entry *b);
/* Make e the champion of rundir: RUNDIR/champion.fvc becomes a hard link to
 * (or, across file systems, a copy of) e->path, then RUNDIR/champion is
 * rewritten; each by temp file + fsync + rename + directory fsync. */
int fv_champion_write(const char *rundir, const fv_eval_entry *e);
/* The checkpoint basename RUNDIR/champion names ("ckpt=" line) into out;
 * FV_E_NOTFOUND when there is no champion file. */
int fv_champion_read(const char *rundir, char *out, size_t cap);

/* ---------------------------------------------------------------- eval */

typedef struct fv_eval_opts {
	const char *db;           /* dataset directory */
	const char *augment_bind; /* ROUTER endpoint; NULL/"" = a private ipc path */
	const char *curve_key, *curve_pub, *curve_allow; /* CURVE for remote workers, or NULL */
	int workers;              /* local workers to start if none connects (0 = never) */
	int worker_threads;
	int wait_ms;              /* how long to wait for external workers first */
	int threads;              /* compute threads */
	int batch;
	int window;
	FILE *predictions;        /* "key label predicted" per image, or NULL */
	volatile sig_atomic_t *stop; /* checked between batches; non-zero abandons */
} fv_eval_opts;

typedef struct fv_evaluator fv_evaluator;

/* Open the dataset and the augment client (workers connect to it; local
 * ones are started on first use when none did). zmq_ctx borrowed. */
int fv_evaluator_new(fv_evaluator **out, const fv_eval_opts *o);
void fv_evaluator_destroy(fv_evaluator **p);
/* Score the checkpoint at path on the val split into *r (r->path set; free
 * with fv_eval_result_free). Returns 0, or an error with detail; then
 * r->failed says whether the checkpoint itself is at fault (unreadable,
 * damaged, unknown model, weights that do not fit: record it as failed) or
 * not (EINTR: *stop was raised and the evaluation abandoned; no workers, an
 * unreadable dataset, an empty val split: try again later). */
int fv_evaluator_run(fv_evaluator *ev, const char *path, fv_eval_result *r);
/* Split val top-1 at this key for the next runs (see fv_eval_result; 0 =
 * the checkpoint's own new_from_key, if any). */
void fv_evaluator_set_split(fv_evaluator *ev, uint64_t key);
/* The endpoint augment workers connect to. */
const char *fv_evaluator_endpoint(const fv_evaluator *ev);

#endif
