/* fv_score.h — classification scores accumulated batch by batch: top-1,
 * top-5, mean cross-entropy, per-class accuracy, confusion matrix and
 * expected calibration error. The trainer's end-of-epoch evaluation and the
 * evaluator daemon use the same code, so their numbers agree. */
#ifndef FV_SCORE_H
#define FV_SCORE_H

#include <stddef.h>
#include <stdint.h>

#define FV_SCORE_ECE_BINS 15

typedef struct fv_score {
	int classes;
	uint64_t n, top1, top5;
	double loss_sum;
	uint64_t *confusion;   /* classes x classes, [true][predicted] */
	double ece_conf[FV_SCORE_ECE_BINS], ece_acc[FV_SCORE_ECE_BINS];
	uint64_t ece_n[FV_SCORE_ECE_BINS];
} fv_score;

int fv_score_init(fv_score *s, int classes);
void fv_score_free(fv_score *s);
void fv_score_reset(fv_score *s);

/* Add n samples: logits n x classes (row-major), labels[i] < classes.
 * pred (optional, n entries) receives each sample's top-1 class. */
void fv_score_add(fv_score *s, const float *logits, const int *labels, int n, int *pred);

double fv_score_top1(const fv_score *s);
double fv_score_top5(const fv_score *s);
double fv_score_loss(const fv_score *s);
/* Accuracy of class c over its samples (NAN when the class has none). */
double fv_score_class_acc(const fv_score *s, int c);
double fv_score_ece(const fv_score *s);

#endif
