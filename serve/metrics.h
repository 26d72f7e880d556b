/* serve/metrics.h — what fovea-serve counts, for GET /metrics (Prometheus
 * text format) and the stats file `fovea status` reads: requests by
 * transport and status, a latency histogram, model version and reloads.
 * Thread-safe: HTTP threads and the ZMQ loop add concurrently. */
#ifndef FV_SERVE_METRICS_H
#define FV_SERVE_METRICS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

enum { FV_SRV_HTTP, FV_SRV_ZMQ, FV_SRV_TRANSPORTS };
#define FV_SRV_NSTATUS 10
#define FV_SRV_NBUCKETS 12

typedef struct fv_srv_metrics {
	pthread_mutex_t lock;
	uint64_t status[FV_SRV_TRANSPORTS][FV_SRV_NSTATUS];
	uint64_t bucket[FV_SRV_NBUCKETS + 1]; /* the last is +Inf */
	double sum_s;
	uint64_t count;
	int64_t started_ms;
} fv_srv_metrics;

void fv_srv_metrics_init(fv_srv_metrics *m);
void fv_srv_metrics_fini(fv_srv_metrics *m);
/* One request answered with HTTP-style status after seconds. */
void fv_srv_metrics_add(fv_srv_metrics *m, int transport, int status, double seconds);
/* Requests answered so far (all transports and statuses). */
uint64_t fv_srv_metrics_total(fv_srv_metrics *m);
/* The Prometheus exposition into buf (NUL-terminated). Returns its length. */
size_t fv_srv_metrics_text(fv_srv_metrics *m, unsigned version, unsigned reloads, char *buf,
			   size_t cap);

#endif
