/* augment/worker.h — a fovea-augment worker: connects a DEALER to a client's
 * broker, announces its capacity, heartbeats, and answers each request with
 * one output tensor. Stateless between requests.
 *
 * Threads: `threads` compute threads share one queue of requests; each takes
 * the next unclaimed sample of the oldest request, so one request's samples
 * run in parallel and several requests pipeline. The worker announces
 * capacity = threads (requests at once). Output never depends on the thread
 * count: each sample is a pure function of (bytes, transform, seed) written
 * to its own slot. */
#ifndef FV_AUG_WORKER_H
#define FV_AUG_WORKER_H

#include <signal.h>
#include <stddef.h>

typedef struct fv_augw fv_augw;

typedef struct fv_augw_opts {
	const char *connect;     /* the client's endpoint */
	int threads;             /* compute threads (>= 1) */
	int heartbeat_ms;        /* until the client's welcome says otherwise (1000) */
	int liveness;            /* (3) */
	int backoff_max_ms;      /* reconnect backoff cap (32000) */
	size_t max_message;      /* largest frame accepted or sent */
	const char *curve_key;   /* CURVE: our NAME.key (public key: NAME.pub beside) */
	const char *server_key;  /* CURVE: the client's public key file; both or neither */
} fv_augw_opts;

void fv_augw_opts_default(fv_augw_opts *o);

/* Start the threads and connect. Returns 0, FV_E_CONFIG, FV_E_ZMQ, ENOMEM,
 * or a key file error (fv_curve.h: the detail names the file). */
int fv_augw_new(fv_augw **out, const fv_augw_opts *o);
/* Serve until *stop becomes non-zero; then say BYE. Pings the systemd
 * watchdog every tick. Returns 0 or FV_E_ZMQ. */
int fv_augw_run(fv_augw *w, volatile sig_atomic_t *stop);
void fv_augw_destroy(fv_augw **w);

#endif
