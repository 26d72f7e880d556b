/* trainer/plan.h — the epoch plan: which records, in which order, each epoch.
 *
 * Everything here is a pure function of (seed, epoch, the split's records),
 * so a resumed run rebuilds exactly the plan it was interrupted in and only
 * needs the position within it. Indices refer to the arrays the store's
 * split index returned (not to record keys). */
#ifndef FV_PLAN_H
#define FV_PLAN_H

#include <stddef.h>
#include <stdint.h>

/* splitmix64: the mixing step every seed derivation here uses. */
uint64_t fv_mix64(uint64_t x);

/* The augment seed of one sample: depends on (seed, epoch, record key) only,
 * never on batch composition, worker or thread. */
uint64_t fv_sample_seed(uint64_t seed, uint64_t epoch, uint64_t key);

/* order[0..n) = a uniform random permutation of 0..n-1 for this epoch. */
void fv_plan_shuffle(uint32_t *order, size_t n, uint64_t seed, uint64_t epoch);

/* Class-balanced oversampling: order[0..n) holds n indices such that each
 * class is drawn with equal probability, and within a class samples are
 * taken without replacement (a per-class permutation, cycled for small
 * classes). labels[i] < classes. scratch needs (n + classes + 1) uint32_t.
 * Returns 0, or EINVAL if a label is out of range or n == 0. */
int fv_plan_balanced(uint32_t *order, size_t n, const uint32_t *labels, int classes,
		     uint64_t seed, uint64_t epoch, uint32_t *scratch);

/* Class weights for a class-weighted loss: w[c] = n / (K' * n_c) over the
 * K' classes present, 0 for absent classes, so the weighted mean over the
 * data set equals 1. */
void fv_plan_class_weights(float *w, const uint32_t *labels, size_t n, int classes);

#endif
