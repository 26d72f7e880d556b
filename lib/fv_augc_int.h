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

enum { B_RUNNING, B_REPLACE, B_DONE };

typedef struct augc_worker augc_worker;
typedef struct augc_bat augc_bat;
typedef struct augc_req augc_req;

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
	augc_bat *prev, *next;  /* undelivered, in submission order */
};

struct augc_worker {
	uint8_t id[FV_MSG_MAX_IDENTITY];
	size_t idlen;
	char name[64];
	int capacity, inflight;
	int64_t expiry;
	augc_worker *prev, *next; /* expiry order, soonest first */
};

typedef struct augc_list { void *head, *tail; } augc_list;

struct fv_augc {
	fv_augc_opts o;
	char endpoint[512];
	void *ctx, *sock;
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
};

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

/* fv_augc_broker.c */
void *fv_augc_broker_main(void *arg);
void fv_augc_wake(fv_augc *c);
/* Free a request (not linked anywhere). */
void fv_augc_req_free(augc_req *r);

#endif
