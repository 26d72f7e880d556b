/* trainer/trainer.h — the pieces of a training run main.c puts together:
 * the run's state, its setup from options, checkpoints and evaluation. */
#ifndef FV_TRAINER_H
#define FV_TRAINER_H

#include <stdint.h>
#include <stdio.h>
#include "trainer/options.h"
#include "trainer/feed.h"
#include "trainer/report.h"
#include "nn/net.h"
#include "nn/optim.h"
#include "nn/sched.h"
#include "fv_store.h"
#include "fv_augc.h"

/* What a checkpoint's "trainer" blob holds besides weights and optimizer. */
typedef struct fv_train_pos {
	uint32_t epoch;        /* epoch in progress */
	uint64_t batch;        /* next batch of that epoch */
	uint64_t step;         /* global step count */
	uint64_t key_bound;    /* the epoch's dataset: records with key < this */
	uint64_t dataset_version;
} fv_train_pos;

typedef struct fv_run {
	fv_train_opts o;
	char ckpt_dir[4096];
	fv_store *store;
	uint32_t nclasses;
	char **class_names;
	int in_c, in_h, in_w;
	float mean[3], std[3];
	fv_net *net, *teacher;
	struct fv_cuda_input *gin; /* GPU: uint8 batches staged in pinned slots */
	int gslot;
	/* the next batch of r->train, fetched while the last step's backward
	 * ran (fv_run_step), for fv_run_next to hand out */
	struct {
		int have, rc, n, slot;
		uint64_t generation;
		const void *x;
		int *y;
		double waited_ms;
	} ahead;
	fv_sgd *sgd;
	fv_sched sched;
	void *zmq;
	fv_augc *augc;
	fv_feed_router router;
	fv_feed *train, *eval;
	fv_report *report;
	fv_train_pos pos;
	float *class_weights;
	float *soft;           /* distillation targets, batch x classes */
	char *frozen_stages[64];
	int nfrozen_stages;
	double last_top1, last_top5, last_loss;
	FILE *trace;
	char extra_meta[256];  /* appended to checkpoint meta ("key=value\n" lines) */
	struct fv_status *status; /* --status-endpoint (trainer/live.c), or NULL */
	char phase[96];        /* what the status endpoint says it is doing */
	int64_t live_ms;       /* live.c's worker throughput window */
	uint64_t live_delivered;
	double live_rate;
} fv_run;

/* Open the dataset, work out input shape and normalization, build and
 * compile the model (and teacher), apply --init/--freeze, make the
 * optimizer, schedule, augment client and feeds. Errors carry detail. */
int fv_run_setup(fv_run *r);
void fv_run_teardown(fv_run *r);

/* Load the newest checkpoint of the run directory into r (weights,
 * optimizer, position). FV_E_NOTFOUND if there is none. */
int fv_run_resume(fv_run *r);
/* Write a checkpoint at the current position; publishes CheckpointReady. */
int fv_run_checkpoint(fv_run *r, double val_top1);

/* Score the val split: top-1/top-5/loss into r->last_*. FV_E_NOTFOUND if
 * the split is empty (not an error for training). */
int fv_run_evaluate(fv_run *r);

/* The next batch of feed f (r->train or r->eval) for r's net, as
 * fv_feed_next gives it. On a GPU (r->gin) the workers' uint8 NHWC samples
 * land in a pinned slot, are copied over and normalised into the net's
 * input there, and *x is NULL: the net input is already filled. A training
 * batch fv_run_step already fetched (while its backward ran) is handed out
 * first, unless the feed has started another epoch since. */
int fv_run_next(fv_run *r, fv_feed *f, const float **x, const int **y, int *n, double *waited_ms);

/* One SGD step on a batch (with distillation when a teacher is set); x NULL:
 * the batch fv_run_next staged on the GPU. Once the backward is under way it
 * fetches the next batch of the feed the step's batch came from, so on a GPU
 * the host's share of the data path overlaps the device's work; x and y are
 * not read after that point. */
int fv_run_step(fv_run *r, const float *x, const int *y, int n, float lr, float *loss);

/* --continual: wait for new train images and fine-tune rounds until
 * stopped (trainer/rounds.c). Returns 0 when stopped, or an error. */
int fv_rounds_run(fv_run *r);
/* `fovea-trainer rounds RUNDIR [--json]` (trainer/rounds_show.c). */
int fv_trainer_rounds(int argc, char **argv);

/* `fovea-trainer inspect CKPT [--tensors]` (trainer/inspect.c). */
int fv_trainer_inspect(int argc, char **argv);

/* The status endpoint (trainer/live.c): open it (no-op without
 * --status-endpoint); set the phase it reports and refresh its figures. */
int fv_run_status_open(fv_run *r);
void fv_run_phase(fv_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Unfreeze schedule: release the next frozen stage, top down. */
void fv_run_unfreeze_next(fv_run *r);

#endif
