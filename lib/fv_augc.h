/* fv_augc.h — the augment client: what the trainer and evaluator use to have
 * batches transformed by fovea-augment workers.
 *
 * The client binds one ROUTER socket; any number of workers (this host over
 * ipc://, others over tcp://) connect, announce their capacity and heartbeat
 * both ways. The caller submits batches (the samples' bytes, a transform, a
 * seed per sample) and takes completed batches back with fv_augc_next.
 * Requests whose worker dies or that time out are re-sent; late duplicate
 * replies are dropped; each (epoch, batch) is delivered exactly once, in
 * submission order if opts.in_order. A background broker thread keeps
 * heartbeats flowing while the caller computes; every API function is meant
 * for one caller thread (the replace callback also runs on it, inside
 * fv_augc_next).
 *
 * Output bytes depend only on (sample bytes, transform, seed): never on
 * which worker, how many, or their thread counts. */
#ifndef FV_AUGC_H
#define FV_AUGC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "augment/transform.h"

typedef struct fv_augc fv_augc;

/* What to do with a sample that fails to decode or transform. */
enum fv_augc_policy {
	FV_AUGC_FAIL,    /* deliver the batch with rc = FV_E_DECODE and the mask */
	FV_AUGC_SKIP,    /* deliver with rc = 0 and the per-sample failed mask */
	FV_AUGC_REPLACE, /* ask opts.replace for a substitute, re-request it */
};

/* Substitute for sample `index` of (epoch, batch): fill *in (its bytes need
 * only stay valid until the callback returns: they are copied) and *seed.
 * Return 0, or non-zero to give up (the sample then stays failed, as SKIP;
 * so does one still failing after opts.replace_max substitutes).
 * Called on the caller's thread, from inside fv_augc_next. */
typedef int (*fv_augc_replace_fn)(void *ctx, uint64_t epoch, uint64_t batch, int index,
				  fv_aug_input *in, uint64_t *seed);

typedef struct fv_augc_opts {
	const char *endpoint;   /* to bind: an ipc:// path or a tcp:// host:port */
	int window;             /* batches submitted and not yet returned by next (8) */
	int heartbeat_ms;       /* both ways (1000) */
	int liveness;           /* missed heartbeats before a worker is dead (3) */
	int timeout_ms;         /* a request unanswered this long is re-sent (30000) */
	int max_attempts;       /* sends of one request before its samples fail (5) */
	int in_order;           /* deliver in submission order (1 = yes) */
	enum fv_augc_policy policy;
	fv_augc_replace_fn replace;
	void *replace_ctx;
	int replace_max;        /* substitutes tried per sample (3) */
	size_t max_message;     /* largest frame either way (FV_AUG_MAX_DEFAULT) */
	const char *worker_exe; /* for spawn_local; NULL = fovea-augment beside us */
	int shm;                /* offer local workers shared memory for outputs (1) */
	/* CURVE (see fv_curve.h): with curve_secret_key set, the endpoint is a
	 * CURVE server and only workers whose public key is in curve_allow (a
	 * directory of .pub files or a file of keys) are admitted, tcp:// or
	 * ipc:// alike. Paths are copied. Without it a tcp:// endpoint is plain
	 * text (a warning says so). Local workers get the server's own pair. */
	const char *curve_secret_key; /* the server's NAME.key */
	const char *curve_public_key; /* its NAME.pub (NULL: beside the secret) */
	const char *curve_allow;      /* the allow-list */
} fv_augc_opts;

/* Defaults in parentheses above; endpoint NULL. */
void fv_augc_opts_default(fv_augc_opts *o);

/* Bind and start the broker thread. Returns 0, FV_E_CONFIG (bad option),
 * FV_E_ZMQ (bind failed: the detail names the endpoint), ENOMEM, or a key
 * or allow-list load error (fv_curve.h; the detail names the file). */
int fv_augc_new(fv_augc **out, const fv_augc_opts *opts);
/* Tell the workers goodbye, stop local workers (SIGTERM, then SIGKILL after
 * 2 s), free everything still in flight. Batches already returned by
 * fv_augc_next stay valid until released (release may follow destroy; pass
 * c = NULL then). *c = NULL. */
void fv_augc_destroy(fv_augc **c);

/* Submit one batch: n samples (their bytes are copied before this returns),
 * one seed each, transformed with p into one tensor. tag is handed back
 * untouched with the batch (labels, say). Returns 0, EAGAIN (window full:
 * call fv_augc_next first), EINVAL / FV_E_TOOBIG (bad params, n, or an
 * output over max_message), FV_E_DUPLICATE ((epoch, batch) already in
 * flight). */
int fv_augc_submit(fv_augc *c, uint64_t epoch, uint64_t batch, const fv_aug_params *p,
		   const fv_aug_input *in, const uint64_t *seeds, int n, void *tag);

/* A completed batch. Everything is owned by the client, valid until
 * fv_augc_release. */
typedef struct fv_augc_batch {
	uint64_t epoch, index;
	void *tag;
	int n;
	size_t sample_bytes;      /* fv_aug_out_bytes(params) */
	const void *data;         /* n * sample_bytes, in the params' layout */
	int rc;                   /* 0; FV_E_DECODE (FAIL policy, some failed);
				     FV_E_TIMEOUT (max_attempts sends unanswered);
				     or the code of a worker's refusal */
	int nfailed;
	const uint8_t *failed;    /* n flags: 1 = failed, its output zeroed */
	const char *const *reasons; /* n strings, NULL where not failed */
} fv_augc_batch;

/* The next completed batch (the oldest submitted one if in_order), waiting
 * up to timeout_ms (-1 = forever, 0 = poll). Returns 0, EAGAIN (none ready
 * in time, or none submitted), FV_E_INTERNAL if the broker thread died. */
int fv_augc_next(fv_augc *c, fv_augc_batch **out, int timeout_ms);
void fv_augc_release(fv_augc *c, fv_augc_batch **b);

/* Batches submitted and not yet returned by fv_augc_next. */
int fv_augc_pending(fv_augc *c);

/* Workers alive now and their total capacity (requests at once). Returns
 * the worker count. */
int fv_augc_workers(fv_augc *c, int *capacity);

/* One connected worker as the broker sees it. */
typedef struct fv_augc_worker_info {
	char name[64];            /* what it announced (host:pid) */
	int capacity, inflight;
	int64_t joined_ms;        /* fv_now_ms() clock */
	uint64_t samples;         /* samples it answered since it joined */
	double img_per_s;         /* over the last second or so (0 when idle) */
} fv_augc_worker_info;
/* Up to max workers alive now into out; returns how many there are. */
int fv_augc_worker_list(fv_augc *c, fv_augc_worker_info *out, int max);

typedef struct fv_augc_stats {
	uint64_t submitted, delivered;
	uint64_t sent;            /* requests sent to workers, resends included */
	uint64_t resent;          /* of which re-sends (dead worker, timeout, bad reply) */
	uint64_t duplicates;      /* late or unknown replies dropped */
	uint64_t malformed;       /* replies/messages dropped as malformed */
	uint64_t failed_samples;  /* samples a worker reported failed */
	uint64_t replaced;        /* substitutes requested */
	uint64_t workers_lost;    /* workers declared dead or gone */
	uint64_t shm_replies;     /* replies written into shared memory (no socket copy) */
	uint64_t curve_admitted;  /* CURVE handshakes the allow-list admitted */
	uint64_t curve_refused;   /* and refused (unknown keys) */
	double wait_ms;           /* time the caller spent blocked in fv_augc_next */
} fv_augc_stats;
void fv_augc_stats_get(fv_augc *c, fv_augc_stats *out);

/* Start n local workers `fovea-augment --connect <endpoint> --threads t`
 * (with CURVE: also --curve-key/--server-key, the server's own pair)
 * (opts.worker_exe, or fovea-augment in the running program's directory or
 * ../bin). They get SIGTERM if we die, and are stopped by destroy.
 * Returns 0, ENOENT (no executable), or an errno from fork. */
int fv_augc_spawn_local(fv_augc *c, int n, int threads_each);
/* The pids of the local workers still running (up to max); returns count. */
int fv_augc_local_pids(fv_augc *c, pid_t *pids, int max);

/* The endpoint workers connect to (the bound one: a tcp "*" becomes the
 * address zmq reports). Valid until destroy. */
const char *fv_augc_endpoint(fv_augc *c);

#endif
