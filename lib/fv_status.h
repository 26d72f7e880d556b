/* fv_status.h — a daemon's status endpoint: a ROUTER socket that answers
 * StatusRequest with DaemonStatus (proto/fovea.proto, "status" section):
 * name, pid, host, start time and key/value figures the daemon fills.
 *
 * Why a thread: the trainer, evaluator and exporter spend seconds at a time
 * in one computation (a step, an evaluation, an export) and a status client
 * waits about a second. So the socket is served by a small thread of its own
 * that answers from a snapshot, and the snapshot is filled on the daemon's
 * own thread, through its callback, whenever its loop calls
 * fv_status_update (rate-limited there, so calling it every step or tick is
 * cheap). A request waits up to FV_STATUS_FRESH_MS for the loop's next
 * update to refill it (an idle loop ticks faster than that), else is
 * answered from the snapshot it has. Replies carry the snapshot's age. The daemon's data is therefore
 * never touched by another thread, and the daemon's loop never blocks on
 * the socket.
 *
 * Every receive survives garbage: frames are bounded (ZMQ_MAXMSGSIZE), an
 * envelope that does not unpack or is not a StatusRequest gets a reply with
 * code != 0, nothing else. Clients are DEALER sockets (fv_status_query). */
#ifndef FV_STATUS_H
#define FV_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "fovea.pb-c.h"

#define FV_STATUS_MAX_REQUEST 4096   /* bytes: a StatusRequest is a few */
#define FV_STATUS_MAX_REPLY (1u << 20)
#define FV_STATUS_MAX_FIGURES 256
#define FV_STATUS_FRESH_MS 300       /* a request waits this long for a fresh fill */

typedef struct fv_status fv_status;
typedef struct fv_status_figs fv_status_figs;

/* Called on the daemon's thread (from fv_status_update) to add its figures
 * with fv_status_num / fv_status_str. */
typedef void (*fv_status_fill_fn)(void *ctx, fv_status_figs *f);

/* Add a figure. key is "group.name" (e.g. "dataset.version"); both strings
 * are copied. Figures past FV_STATUS_MAX_FIGURES are dropped. */
void fv_status_num(fv_status_figs *f, const char *key, double v);
void fv_status_str(fv_status_figs *f, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

typedef struct fv_status_opts {
	const char *endpoint;       /* tcp://HOST:PORT or ipc://PATH; NULL or "" = none */
	const char *name;           /* the daemon: "ingest", "trainer", ... */
	fv_status_fill_fn fill;     /* may be NULL: no figures */
	void *fill_ctx;
	int min_update_ms;          /* fill at most this often (0 = 250) */
	/* CURVE (fv_curve.h): with curve_secret_key the socket is a CURVE
	 * server with that pair (public: curve_public_key or the .pub beside
	 * the secret). With curve_allow too (the augment broker's allow-list)
	 * only those client keys may ask: a ZAP handler is started in
	 * zmq_ctx, which must not have one already. Without it any client
	 * that knows the server's public key may. */
	const char *curve_secret_key;
	const char *curve_public_key;
	const char *curve_allow;
} fv_status_opts;

/* Bind o->endpoint in zmq_ctx (borrowed; destroy this first) and start the
 * answering thread. With no endpoint *out = NULL and 0 is returned: every
 * other function accepts NULL and does nothing. Returns 0, FV_E_ZMQ (the
 * detail names the endpoint), ENOMEM, or a key load error. */
int fv_status_new(fv_status **out, void *zmq_ctx, const fv_status_opts *o);
/* On the daemon's thread: refill the snapshot through the callback if
 * min_update_ms passed since the last fill, or a request is waiting for a
 * fresh one. force != 0 refills now (e.g. just before a long computation,
 * with a figure saying what it is doing). */
void fv_status_update(fv_status *s, int force);
/* Requests answered and garbage received so far. */
void fv_status_counts(fv_status *s, uint64_t *answered, uint64_t *garbage);
/* Stop the thread, close the socket. *s = NULL. */
void fv_status_destroy(fv_status **s);

/* ------------------------------------------------------------ client */

/* Ask endpoint for its status, waiting up to timeout_ms. With
 * curve_secret_key (own NAME.key) and server_pub (the server's .pub file)
 * the request goes over CURVE. *out is freed with
 * fovea__daemon_status__free_unpacked(*out, NULL). Returns 0, FV_E_TIMEOUT
 * (no answer: the daemon is down or busy), FV_E_PROTO (an answer that is
 * not a DaemonStatus, or code != 0), FV_E_ZMQ, or a key load error. */
int fv_status_query(void *zmq_ctx, const char *endpoint, int timeout_ms, const char *curve_secret_key,
		    const char *server_pub, Fovea__DaemonStatus **out);

/* Ask n endpoints at once, all within timeout_ms. out[i] and rcs[i] are
 * what fv_status_query would give for endpoints[i] (out[i] may be set with
 * rcs[i] = FV_E_PROTO: a refusal, its error in out[i]->error). Returns 0
 * or ENOMEM. */
int fv_status_query_many(void *zmq_ctx, size_t n, const char *const *endpoints, int timeout_ms,
			 const char *curve_secret_key, const char *server_pub, Fovea__DaemonStatus **out,
			 int *rcs);

/* The figure named key in st, or NULL. */
const Fovea__StatusFigure *fv_status_find(const Fovea__DaemonStatus *st, const char *key);

#endif
