/* nn/ckpt.h — checkpoint files: model weights and trainer state, written
 * atomically, refused loudly when damaged. Also parameter freezing by name
 * pattern and the checkpoint-directory helpers the trainer uses.
 *
 * File format (version 1, little-endian; "str" is u32 length, bytes, NUL):
 *   "FVCKPT\0\0"  u32 version  u32 flags (0)  u64 file size
 *   u32 header length, header:
 *       str model, u32 in_c, in_h, in_w, classes, u64 step, f64 epoch,
 *       u64 dataset version, u32 class-name count (0 or classes) + str each,
 *       str metadata ("key=value" lines)
 *   u32 tensor count, per tensor:
 *       str name, u32 dtype (0 = float32), u32 ndim (1..8), u32 dims[ndim],
 *       u64 bytes, zero padding to a 64-byte file offset, data
 *   u32 blob count, per blob:
 *       str name, u64 bytes, zero padding to a 64-byte offset, data
 *   u32 CRC-32 (zlib) of every byte before it
 *
 * Writes go to ".<name>.tmp-<pid>" in the target's directory, are fsynced,
 * renamed over the target, and the directory is fsynced: a crash at any
 * moment leaves either the old or the new file, never a torn one. Opening
 * maps the file read-only and verifies it whole before anything is parsed.
 *
 * Saving and resuming a run exactly (model, optimizer state, EMA):
 *   fv_param *st = fv_sgd_state_params(sgd, &ns);   // "<p>.momentum", "ema.<p>"
 *   all = net params followed by st;  steps = fv_sgd_steps(sgd);
 *   fv_ckpt_path(path, sizeof path, dir, step);
 *   fv_ckpt_write(path, &info, all, np + ns, (fv_ckpt_blob[]){
 *           { "optim.steps", &steps, 8 }, { "rng", ... }, { "plan", ... } }, 3);
 *   ... later: fv_ckpt_latest(dir, path, sizeof path, &step); fv_ckpt_open(&c, path);
 *   fv_ckpt_load_params(c, net params, np, NULL, NULL);      // strict
 *   fv_ckpt_load_params(c, fv_sgd_state_params(sgd2, &ns), ns, NULL, NULL);
 *   fv_ckpt_blob_get(c, "optim.steps", ...); fv_sgd_set_steps(sgd2, steps);
 * The evaluator loads the EMA weights with .prefix = "ema.".
 *
 * Name patterns (freezing, skipping on load): a comma-separated list of
 * fnmatch(3) globs over parameter names ('*' also matches '.', so "layer1.*"
 * is every parameter of layer1). Patterns apply left to right: a name
 * matching a plain pattern is selected, one matching "!glob" is deselected.
 * A list that starts with "!" starts from "everything selected", so "!fc.*"
 * is every parameter except the head, and "layer*,!layer4.*" is layers 1-3. */
#ifndef FV_CKPT_H
#define FV_CKPT_H

#include <stddef.h>
#include <stdint.h>
#include "nn/param.h"

#define FV_CKPT_VERSION 1

typedef struct fv_ckpt fv_ckpt;

typedef struct fv_ckpt_info {
	const char *model;              /* model spec string; NULL = "" */
	int in_c, in_h, in_w;           /* input shape */
	int classes;
	const char *const *class_names; /* NULL or classes entries */
	uint64_t step;
	double epoch;                   /* fractional: step / steps per epoch */
	uint64_t dataset_version;
	const char *meta;               /* free-form "key=value\n" lines; NULL = none */
} fv_ckpt_info;

typedef struct fv_ckpt_blob {
	const char *name;               /* e.g. "rng", "plan", "optim" */
	const void *data;
	size_t len;
} fv_ckpt_blob;

/* Write info, params[0..n) (name, dims, data; float32) and blobs[0..nblobs)
 * to path atomically (see above). Names must be unique within params and
 * within blobs. Returns 0, an errno (detail names the file), or
 * FV_E_DUPLICATE / EINVAL for bad input. On failure the target is untouched
 * and no temp file is left behind. */
int fv_ckpt_write(const char *path, const fv_ckpt_info *info, const fv_param *params,
		  size_t n, const fv_ckpt_blob *blobs, size_t nblobs);

/* Read path into memory and verify it. Returns 0, an errno, or FV_E_FORMAT
 * (not a checkpoint: wrong magic), FV_E_UNSUPPORTED (written by a newer
 * version), FV_E_CORRUPT (truncated, checksum mismatch, malformed), each with
 * one line of detail naming the file and what is wrong. */
int fv_ckpt_open(fv_ckpt **out, const char *path);
void fv_ckpt_close(fv_ckpt **p);

/* The header; all pointers valid until fv_ckpt_close. */
const fv_ckpt_info *fv_ckpt_info_get(const fv_ckpt *c);
/* Value of key in the metadata area (NUL-terminated, valid until close), or
 * NULL when absent. */
const char *fv_ckpt_meta(const fv_ckpt *c, const char *key);

/* Tensors by index, for tools that read a checkpoint without a network. */
typedef struct fv_ckpt_tensor {
	const char *name;
	int ndim;
	int dims[8];
	size_t numel;
	const float *data;              /* valid until close */
} fv_ckpt_tensor;
size_t fv_ckpt_tensor_count(const fv_ckpt *c);
int fv_ckpt_tensor_at(const fv_ckpt *c, size_t i, fv_ckpt_tensor *t);
/* Look a tensor up by name: 0 or FV_E_NOTFOUND. */
int fv_ckpt_tensor_find(const fv_ckpt *c, const char *name, fv_ckpt_tensor *t);

/* Per-param outcome of a load. */
enum {
	FV_CKPT_LOADED,   /* copied from the file */
	FV_CKPT_MISSING,  /* no tensor of that name in the file */
	FV_CKPT_SHAPE,    /* a tensor of that name, another shape */
	FV_CKPT_SKIPPED,  /* matched the skip patterns; left as it was */
};

typedef struct fv_ckpt_load_opts {
	int partial;          /* 0 = strict: every param not skipped must be present
			       * with the same shape, or nothing is loaded */
	const char *skip;     /* name patterns left as they are (e.g. "fc.*"); NULL = none */
	const char *prefix;   /* file tensor name = prefix + param name ("ema."); NULL = "" */
	unsigned char *status;/* optional out: n FV_CKPT_* entries */
} fv_ckpt_load_opts;

/* Copy the tensors named like params[0..n) into their data. Strict mode
 * checks everything first and changes nothing on failure (FV_E_NOTFOUND or
 * FV_E_MISMATCH naming the file and the first bad param); extra tensors in
 * the file (optimizer state, EMA) are ignored. Partial mode loads what
 * matches and logs one warning line per param it could not load (transfer
 * learning: a new classifier head). o may be NULL (strict). *loaded (may be
 * NULL) gets the number of params copied. */
int fv_ckpt_load_params(const fv_ckpt *c, fv_param *params, size_t n,
			const fv_ckpt_load_opts *o, size_t *loaded);

/* A named blob's bytes (valid until close; 8-byte aligned), or FV_E_NOTFOUND. */
int fv_ckpt_blob_get(const fv_ckpt *c, const char *name, const void **data, size_t *len);

/* ---- name patterns and freezing --------------------------------------------- */

/* 1 if name is selected by the pattern list (syntax above), else 0. */
int fv_params_match(const char *patterns, const char *name);
/* Set frozen = frozen on every param the pattern list selects. *matched (may
 * be NULL) gets how many. Returns 0, or FV_E_NOTFOUND when the list selects
 * no param at all (a typo should not silently train everything), or
 * FV_E_CONFIG for an empty pattern. */
int fv_params_freeze(fv_param *params, size_t n, const char *patterns, int frozen,
		     size_t *matched);

/* ---- checkpoint directories ---------------------------------------------- */

/* "<dir>/ckpt-<step, 9+ digits>.fvc" into path. Returns 0 or ENAMETOOLONG. */
int fv_ckpt_path(char *path, size_t cap, const char *dir, uint64_t step);
/* The checkpoint of the highest step in dir (files named as fv_ckpt_path
 * makes; temp files and other names ignored). Every such file is complete,
 * since writes are atomic. Returns 0, FV_E_NOTFOUND when there is none, an
 * errno, or ENAMETOOLONG. *step (may be NULL) gets its step. */
int fv_ckpt_latest(const char *dir, char *path, size_t cap, uint64_t *step);
/* Steps of every checkpoint in dir, ascending, in a malloc'd array the
 * caller frees (NULL-safe; *n may be 0). For falling back to an older
 * checkpoint when the newest fails to open. Returns 0, an errno, ENOMEM. */
int fv_ckpt_list(const char *dir, uint64_t **steps, size_t *n);
/* Delete all but the keep_last newest checkpoints in dir, and temp files
 * left by writers that no longer run (or untouched for an hour). Other files
 * are left alone. Returns
 * 0, EINVAL (keep_last < 1) or an errno. */
int fv_ckpt_prune(const char *dir, int keep_last);

#endif
