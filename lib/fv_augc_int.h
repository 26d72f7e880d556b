/* fv_augc_int.h — the augment client's insides, shared by fv_augc.c (the
 * caller's side: submit, next, replace, spawn) and fv_augc_broker.c (the
 * broker thread: workers, dispatch, heartbeats, replies). One mutex guards
 * everything below; the broker holds it while it handles a message. */
#ifndef FV_AUGC_INT_H
#define FV_AUGC_INT_H

#include <pthread.h>
#include <zmq.h>
#include "fv_augc.h"
#include "fv_augwire.h"
#include "fv_curve.h"

enum { B_RUNNING, B_REPLACE, B_DONE };

typedef struct augc_seg augc_seg;
typedef struct augc_worker augc_worker;
typedef struct augc_bat augc_bat;
typedef struct augc_req augc_req;

/* A shared-memory output buffer (a memfd) that local workers write a whole
 * batch into, so the tensor never crosses a socket. A segment goes back to
 * the worker that wrote it last when it can: pages mapped by fewer
 * processes fault less (markedly so under shadow-paging hypervisors). Reused only after the
 * worker it was offered to has answered (a writer is known to be done); a
 * segment offered to a worker that never answered is dropped, not reused,
 * so a late writer can only scribble on memory nobody reads. */
struct augc_seg {
	int fd;
	uint8_t *addr;
	size_t size;
	uint64_t id;
	char path[64];
	uint8_t writer[FV_MSG_MAX_IDENTITY]; /* the worker it was last offered to */
	size_t writer_len;
	augc_seg *next;         /* in the free list */
};

/* One request to a worker: some samples of one batch (all of them, or the
 * substitutes of failed ones). */
struct augc_req {
	uint64_t id;            /* new on every (re)send queueing */
	augc_bat *b;
	int attempt;
	int count;
	Fovea__AugSample *pb;   /* count headers; offsets into blob */
	Fovea__AugSample **pbp;
	zmq_msg_t blob;         /* the samples' bytes, shared by resends */
	augc_worker *w;         /* NULL while queued */
	augc_seg *seg;          /* shm offered with this send, or NULL */
	int64_t sent_ms;
	augc_req *prev, *next;  /* in c->queue or c->flight */
};

struct augc_bat {
	fv_augc_batch pub;
	Fovea__Transform tf;
	float mean[3], std[3];
	int state;
	int npending;           /* samples without an answer yet */
	uint8_t *failed;
	char **reasons;
	uint8_t *replaces;      /* substitutes tried per sample */
	uint8_t *final;         /* 1 = failed for good (no more substitutes) */
	int has_msg;            /* output is out_msg (one whole-batch reply) */
	zmq_msg_t out_msg;
	uint8_t *out_buf;       /* or assembled here */
	augc_seg *seg;          /* or written by a worker into shared memory */
	augc_bat *prev, *next;  /* undelivered, in submission order */
};

struct augc_worker {
	uint8_t id[FV_MSG_MAX_IDENTITY];
	size_t idlen;
	char name[64];
	int capacity, inflight;
	int64_t expiry;
	int64_t joined_ms;
	uint64_t samples;         /* samples it answered */
	int64_t win_ms;           /* throughput window: start, samples in it */
	uint64_t win_samples;
	double rate;              /* samples/s over the last full window */
	augc_worker *prev, *next; /* expiry order, soonest first */
};

typedef struct augc_list { void *head, *tail; } augc_list;

struct fv_augc {
	fv_augc_opts o;
	char endpoint[512];
	void *ctx, *sock;
	fv_zap *zap;               /* CURVE only */
	fv_curve_mon *mon;         /* logs failed handshakes; may be NULL */
	char *curve_sec, *curve_pub; /* key file paths, for local workers */
	int wakefd;
	pthread_t thr;
	int thr_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop, broken;
	augc_bat *bhead, *btail;
	int nbats;
	augc_req *qhead, *qtail;   /* waiting for a worker */
	augc_req *fhead, *ftail;   /* sent, unanswered */
	augc_worker *whead, *wtail;
	int nworkers;
	uint64_t next_id, seq;
	int64_t next_hb;
	fv_augc_stats st;
	pid_t *pids;
	int npids;
	augc_seg *free_segs;
	int nfree_segs;
	uint64_t next_seg_id;
};

/* Where a batch's output lives now. */
static inline uint8_t *augc_bat_out(augc_bat *b)
{
	return b->seg ? b->seg->addr : b->has_msg ? (uint8_t *)zmq_msg_data(&b->out_msg) : b->out_buf;
}

/* Doubly linked list helpers over any struct with prev/next. */
#define AUGC_UNLINK(h, t, x) do { \
	if ((x)->prev) (x)->prev->next = (x)->next; else (h) = (x)->next; \
	if ((x)->next) (x)->next->prev = (x)->prev; else (t) = (x)->prev; \
	(x)->prev = (x)->next = NULL; } while (0)
#define AUGC_APPEND(h, t, x) do { \
	(x)->next = NULL; (x)->prev = (t); \
	if (t) (t)->next = (x); else (h) = (x); (t) = (x); } while (0)
#define AUGC_PREPEND(h, t, x) do { \
	(x)->prev = NULL; (x)->next = (h); \
	if (h) (h)->prev = (x); else (t) = (x); (h) = (x); } while (0)

/* fv_augc_shm.c; call with c->mu held. */
int fv_augc_seg_get(fv_augc *c, size_t size, const augc_worker *w, augc_seg **out);
void fv_augc_seg_put(fv_augc *c, augc_seg *s);
void fv_augc_seg_destroy(augc_seg *s);

/* fv_augc_broker.c */
void *fv_augc_broker_main(void *arg);
void fv_augc_wake(fv_augc *c);
/* Free a request (not linked anywhere). */
void fv_augc_req_free(augc_req *r);

#endif
