/* trainer/report.h — what the trainer tells the world: a live progress line
 * on a terminal (plain log lines otherwise), RUNDIR/metrics.jsonl (one JSON
 * object per logging interval and per evaluation), and TrainProgress /
 * CheckpointReady events on a PUB socket. */
#ifndef FV_TRAINER_REPORT_H
#define FV_TRAINER_REPORT_H

#include <stdint.h>
#include <stdio.h>

typedef struct fv_report fv_report;

typedef struct fv_progress {
	uint32_t epoch, epochs;
	uint64_t step;            /* global step */
	uint64_t epoch_step, steps_per_epoch;
	double loss, lr, img_per_s, starved, eta_s;
	double val_top1, val_top5, val_loss; /* < 0 when not evaluated */
	uint32_t workers;
	uint64_t bad_samples;
	uint32_t round;           /* continual round (trainer/rounds.c); 0 = the initial training */
} fv_progress;

/* Open RUNDIR/metrics.jsonl for appending and bind the PUB endpoint (may be
 * NULL/empty for none). zmq_ctx is borrowed. */
int fv_report_new(fv_report **out, const char *rundir, void *zmq_ctx, const char *pub);
void fv_report_destroy(fv_report **p);

/* A progress line: live on a terminal, a log line otherwise; appended to
 * metrics.jsonl (fsynced at evaluations) and published. */
int fv_report_progress(fv_report *r, const fv_progress *p, int is_eval);
/* The last progress line reported (not an evaluation's), for the status
 * endpoint. Returns 0, or FV_E_NOTFOUND before the first. */
int fv_report_last(const fv_report *r, fv_progress *out);
/* Publish CheckpointReady for a checkpoint just written. */
int fv_report_checkpoint(fv_report *r, const char *path, uint32_t epoch, uint64_t step,
			 uint64_t dataset_version, const char *model, double val_top1);

#endif
