/* serve/metrics.c — request counters and the latency histogram. */
#include <stdio.h>
#include <string.h>

#include "fv_daemon.h"
#include "serve/metrics.h"

static const int statuses[FV_SRV_NSTATUS] = { 200, 400, 404, 405, 413, 415, 422, 500, 503, 0 };
static const double bounds[FV_SRV_NBUCKETS] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
						0.1,   0.25,   0.5,   1,    2.5,   10 };
static const char *const transports[FV_SRV_TRANSPORTS] = { "http", "zmq" };

void fv_srv_metrics_init(fv_srv_metrics *m)
{
	memset(m, 0, sizeof *m);
	pthread_mutex_init(&m->lock, NULL);
	m->started_ms = fv_now_ms();
}

void fv_srv_metrics_fini(fv_srv_metrics *m) { pthread_mutex_destroy(&m->lock); }

void fv_srv_metrics_add(fv_srv_metrics *m, int transport, int status, double seconds)
{
	int s = 0, b = 0;
	while (s < FV_SRV_NSTATUS - 1 && statuses[s] != status)
		s++; /* unknown statuses count in the last slot ("other") */
	while (b < FV_SRV_NBUCKETS && seconds > bounds[b])
		b++;
	pthread_mutex_lock(&m->lock);
	m->status[transport][s]++;
	m->bucket[b]++;
	m->sum_s += seconds;
	m->count++;
	pthread_mutex_unlock(&m->lock);
}

uint64_t fv_srv_metrics_total(fv_srv_metrics *m)
{
	pthread_mutex_lock(&m->lock);
	uint64_t n = m->count;
	pthread_mutex_unlock(&m->lock);
	return n;
}

size_t fv_srv_metrics_text(fv_srv_metrics *m, unsigned version, unsigned reloads, char *buf,
			   size_t cap)
{
	size_t o = 0;
#define PUT(...) (o += (size_t)snprintf(buf + o, o < cap ? cap - o : 0, __VA_ARGS__))
	pthread_mutex_lock(&m->lock);
	PUT("# HELP fovea_serve_requests_total Classification requests answered, by transport and status.\n"
	    "# TYPE fovea_serve_requests_total counter\n");
	for (int t = 0; t < FV_SRV_TRANSPORTS; t++)
		for (int s = 0; s < FV_SRV_NSTATUS; s++)
			if (m->status[t][s] || statuses[s] == 200)
				PUT(statuses[s] ? "fovea_serve_requests_total{transport=\"%s\",status=\"%d\"} %llu\n"
						: "fovea_serve_requests_total{transport=\"%s\",status=\"other%d\"} %llu\n",
				    transports[t], statuses[s], (unsigned long long)m->status[t][s]);
	PUT("# HELP fovea_serve_request_seconds Time to answer a classification request.\n"
	    "# TYPE fovea_serve_request_seconds histogram\n");
	uint64_t cum = 0;
	for (int b = 0; b < FV_SRV_NBUCKETS; b++) {
		cum += m->bucket[b];
		PUT("fovea_serve_request_seconds_bucket{le=\"%g\"} %llu\n", bounds[b], (unsigned long long)cum);
	}
	cum += m->bucket[FV_SRV_NBUCKETS];
	PUT("fovea_serve_request_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	PUT("fovea_serve_request_seconds_sum %.6f\nfovea_serve_request_seconds_count %llu\n", m->sum_s,
	    (unsigned long long)m->count);
	double up = (double)(fv_now_ms() - m->started_ms) / 1000.0;
	pthread_mutex_unlock(&m->lock);
	PUT("# HELP fovea_serve_model_version The exported model version (vN) answering now.\n"
	    "# TYPE fovea_serve_model_version gauge\nfovea_serve_model_version %u\n", version);
	PUT("# HELP fovea_serve_reloads_total Models swapped in after the first.\n"
	    "# TYPE fovea_serve_reloads_total counter\nfovea_serve_reloads_total %u\n", reloads);
	PUT("# HELP fovea_serve_uptime_seconds Seconds since the server started.\n"
	    "# TYPE fovea_serve_uptime_seconds gauge\nfovea_serve_uptime_seconds %.1f\n", up);
#undef PUT
	return o < cap ? o : cap ? cap - 1 : 0;
}
