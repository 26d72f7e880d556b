/* serve/model.h — the model fovea-serve answers with, and how it changes
 * under load: the newest export in a model directory (MODELDIR/current ->
 * vN, written by fovea-exporter) or one .fovea file. A reload opens the new
 * file beside the old one and swaps a pointer under a lock; requests hold a
 * reference, so the old model is closed only when its last request ends.
 * Nothing a reload does can fail a request: a model that does not open is
 * logged and the old one keeps answering.
 *
 * Classification is the evaluation path: decode under a pixel limit, the
 * eval geometry of fv_aug_sample (resize shorter side, center crop) into raw
 * 0..255 pixels — the exported graph normalizes inside — then the runtime
 * and a softmax. */
#ifndef FV_SERVE_MODEL_H
#define FV_SERVE_MODEL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "exporter/runtime.h"

typedef struct fv_srv_model {
	fv_rt *rt;
	const fv_rt_info *info;  /* valid while the model is held */
	unsigned version;        /* N of MODELDIR/vN; 0 for a plain file */
	char path[4096];         /* the file that was opened */
	/* private: one run at a time per runtime handle; references held */
	pthread_mutex_t run_lock;
	int refs;
} fv_srv_model;

typedef struct fv_srv_models fv_srv_models;

/* Where models come from: file (a .fovea) wins over dir (a model directory,
 * or one vN directory). fp32 picks model-fp32.fovea in directories. threads:
 * runtime threads (0 = all cores). Nothing is loaded yet. */
int fv_srv_models_new(fv_srv_models **out, const char *dir, const char *file, int fp32,
		      int threads);
void fv_srv_models_destroy(fv_srv_models **p);

/* Load the newest model if it differs from the one held (force: reload even
 * the same version). *changed (optional) says whether a new model now
 * answers. Returns 0, FV_E_NOTFOUND (no model exported yet) or the
 * runtime's error; the held model stays on failure. */
int fv_srv_models_reload(fv_srv_models *m, int force, int *changed);

/* A reference to the model answering now, or NULL when none is loaded.
 * Every acquire is paired with one release. */
fv_srv_model *fv_srv_models_acquire(fv_srv_models *m);
void fv_srv_models_release(fv_srv_models *m, fv_srv_model *mdl);
/* Reloads that swapped in a model, and the version held now. */
void fv_srv_models_stats(fv_srv_models *m, unsigned *reloads, unsigned *version);

typedef struct fv_srv_pred {
	int label;
	float score;             /* softmax probability */
	const char *name;        /* the model's class name, valid while held */
} fv_srv_pred;

/* Classify one JPEG/PNG file's bytes with the held model mdl: the k best
 * classes (k <= classes) into out, best first; *n is how many. max_pixels
 * bounds width x height before any pixel is decoded. Returns 0, FV_E_FORMAT
 * (not a JPEG/PNG), FV_E_DECODE (damaged/truncated), FV_E_TOOBIG, ENOMEM. */
int fv_srv_classify(fv_srv_model *mdl, const void *buf, size_t len, uint64_t max_pixels, int k,
		    fv_srv_pred *out, int *n);

/* The answer as JSON: {"model": "...", "version": N, "top5": [{"label":
 * i, "name": "...", "score": p}, ...]} into buf (NUL-terminated, truncated
 * to cap). Returns the length written. */
size_t fv_srv_json(char *buf, size_t cap, const char *model, unsigned version,
		   const fv_srv_pred *p, int n);

#endif
