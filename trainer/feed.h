/* trainer/feed.h — the data path of one split: epoch plan -> records read
 * from LMDB in short read transactions -> batches submitted to the augment
 * workers -> transformed batches back, in order, as host tensors in the
 * transform's layout (float NCHW, or uint8 NHWC for a GPU that normalises).
 *
 * Training feeds drop the last partial batch; evaluation feeds deliver every
 * record once, in key order, the last batch partial. A record that fails to
 * decode is replaced by another of its class (or skipped, or stops the run:
 * the policy) and counted. */
#ifndef FV_TRAINER_FEED_H
#define FV_TRAINER_FEED_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "fv_store.h"
#include "fv_augc.h"
#include "augment/transform.h"

typedef struct fv_feed fv_feed;

enum fv_feed_order { FV_FEED_SHUFFLE, FV_FEED_BALANCED, FV_FEED_SEQUENTIAL };

typedef struct fv_feed_opts {
	uint32_t split;
	int batch;
	uint64_t seed;
	enum fv_feed_order order;
	int drop_last;
	int classes;
	fv_aug_params params;   /* transform and output layout */
	int window;             /* batches in flight */
	uint64_t tag;           /* 0 for training, FV_FEED_TAG_EVAL for evaluation */
} fv_feed_opts;

/* store and augc are borrowed and must outlive the feed. */
int fv_feed_new(fv_feed **out, fv_store *store, fv_augc *augc, const fv_feed_opts *o);
void fv_feed_destroy(fv_feed **p);

/* Start (or restart) an epoch at batch `start`. key_bound limits the plan to
 * records with key < key_bound (the dataset as the epoch first saw it; 0 =
 * everything now, and *key_bound_out receives the bound used). Returns 0,
 * FV_E_NOTFOUND if the split is empty (detail names the split). */
int fv_feed_epoch(fv_feed *f, uint64_t epoch, size_t start, uint64_t key_bound,
		  uint64_t *key_bound_out);
/* Subset mode (continual rounds): from the next fv_feed_epoch on, the plan
 * permutes only the records whose keys are in keys[0..n) (ascending; keys
 * not in the split are ignored) and key_bound is not applied. The keys are
 * copied. n == 0 (or keys NULL) returns to the whole split. */
int fv_feed_set_subset(fv_feed *f, const uint64_t *keys, size_t n);

/* Batches in the current epoch, and records behind them. */
size_t fv_feed_batches(const fv_feed *f);
size_t fv_feed_records(const fv_feed *f);

/* The next batch: *x = n samples in the transform's layout (n x C x H x W
 * floats by default), *labels = n ints; valid until the next call. Returns
 * 0, FV_E_NOTFOUND at the end of the epoch, or an error (FAIL policy,
 * workers timing out) with detail. *waited_ms = time blocked. */
int fv_feed_next(fv_feed *f, const void **x, const int **labels, int *n, double *waited_ms);
/* Changes with every fv_feed_epoch and fv_feed_set_subset: a batch taken
 * under another generation belongs to an earlier plan. */
uint64_t fv_feed_generation(const fv_feed *f);
/* Where the samples of the following fv_feed_next calls go (batch x sample
 * bytes; a GPU's pinned staging slot, say) instead of the feed's own buffer;
 * NULL returns to that. */
void fv_feed_set_dest(fv_feed *f, void *dest);

/* Epoch ids a feed sends to the augment client carry its tag in the high
 * bits, so a training feed and an evaluation feed can share one client. */
#define FV_FEED_TAG_EVAL (1ull << 62)

/* The augment client's replace callback: a router over the feeds sharing
 * one client (pass the router as replace_ctx at fv_augc_new, then set its
 * feeds). Picks another record of the same class, deterministically from
 * (seed, epoch, batch, index, attempt). */
typedef struct fv_feed_router { fv_feed *train, *eval; } fv_feed_router;
int fv_feed_route_replace(void *router, uint64_t epoch, uint64_t batch, int index,
			  fv_aug_input *in, uint64_t *seed);

/* Append "epoch batch key key ..." for every delivered batch to f (NULL
 * stops): lets tests count that each sample is seen exactly once. */
void fv_feed_trace(fv_feed *f, FILE *trace);
/* Deferred tracing (the trainer, which fetches a batch ahead): each batch's
 * line waits for fv_feed_trace_commit, called when the batch is used; a
 * batch never used (a stop, a new epoch) leaves no line. */
void fv_feed_trace_defer(fv_feed *f, int on);
void fv_feed_trace_commit(fv_feed *f);

/* Samples that failed to decode so far, and how many were replaced. */
uint64_t fv_feed_bad_samples(const fv_feed *f);

#endif
