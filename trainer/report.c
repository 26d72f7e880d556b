/* trainer/report.c — see report.h. */
#include "trainer/report.h"
#include "fv_error.h"
#include "fv_log.h"
#include "fv_msg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

struct fv_report {
	FILE *metrics;
	void *pub;
	char *run;
	int tty;
	uint64_t seq;
	fv_progress last;
	int have_last;
};

int fv_report_new(fv_report **out, const char *rundir, void *zmq_ctx, const char *pub)
{
	char path[4096];
	fv_report *r = calloc(1, sizeof *r);
	int rc = 0;

	*out = NULL;
	if (!r || !(r->run = strdup(rundir))) {
		free(r);
		return ENOMEM;
	}
	snprintf(path, sizeof path, "%s/metrics.jsonl", rundir);
	if (!(r->metrics = fopen(path, "a"))) {
		rc = fv_err_set(errno, "%s: %s", path, strerror(errno));
		goto fail;
	}
	r->tty = isatty(STDERR_FILENO);
	if (pub && *pub) {
		r->pub = zmq_socket(zmq_ctx, ZMQ_PUB);
		fv_sock_limit(r->pub, 0);
		if (zmq_bind(r->pub, pub)) {
			rc = fv_err_set(FV_E_ZMQ, "cannot bind %s: %s", pub, zmq_strerror(zmq_errno()));
			goto fail;
		}
	}
	*out = r;
	return 0;
fail:
	fv_report_destroy(&r);
	return rc;
}

void fv_report_destroy(fv_report **p)
{
	fv_report *r = *p;
	if (!r)
		return;
	if (r->tty)
		fputc('\n', stderr);
	if (r->metrics)
		fclose(r->metrics);
	if (r->pub)
		zmq_close(r->pub);
	free(r->run);
	free(r);
	*p = NULL;
}

static void fmt_eta(char *buf, size_t cap, double s)
{
	if (s < 0 || s > 1e7)
		snprintf(buf, cap, "?");
	else if (s >= 3600)
		snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
	else
		snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

int fv_report_progress(fv_report *r, const fv_progress *p, int is_eval)
{
	char eta[32], val[96] = "", round[32] = "";
	fmt_eta(eta, sizeof eta, p->eta_s);
	if (!is_eval) {
		r->last = *p;
		r->have_last = 1;
	}
	if (p->round)
		snprintf(round, sizeof round, "round %u ", p->round);
	if (p->val_top1 >= 0)
		snprintf(val, sizeof val, " val top1 %.4f top5 %.4f", p->val_top1, p->val_top5);
	if (r->tty && !is_eval) {
		fprintf(stderr, "\r\033[K%sepoch %u/%u step %llu/%llu loss %.4f lr %.4g %.0f img/s starved %.0f%% ETA %s",
			round, p->epoch + 1, p->epochs, (unsigned long long)p->epoch_step,
			(unsigned long long)p->steps_per_epoch, p->loss, p->lr, p->img_per_s,
			100 * p->starved, eta);
	} else {
		if (r->tty)
			fputc('\n', stderr);
		fv_info("%sepoch %u/%u step %llu/%llu loss %.4f lr %.4g %.0f img/s starved %.0f%% ETA %s%s",
			round, p->epoch + 1, p->epochs, (unsigned long long)p->epoch_step,
			(unsigned long long)p->steps_per_epoch, p->loss, p->lr, p->img_per_s,
			100 * p->starved, eta, val);
	}
	fprintf(r->metrics, "{\"epoch\": %u, \"step\": %llu, \"loss\": %.9g, \"lr\": %.6g, "
		"\"img_per_s\": %.1f, \"starved\": %.4f, \"workers\": %u, \"bad_samples\": %llu",
		p->epoch, (unsigned long long)p->step, p->loss, p->lr, p->img_per_s, p->starved,
		p->workers, (unsigned long long)p->bad_samples);
	if (p->round)
		fprintf(r->metrics, ", \"round\": %u, \"epochs\": %u, \"steps_per_epoch\": %llu", p->round,
			p->epochs, (unsigned long long)p->steps_per_epoch);
	if (p->val_top1 >= 0)
		fprintf(r->metrics, ", \"val_top1\": %.6f, \"val_top5\": %.6f, \"val_loss\": %.6g",
			p->val_top1, p->val_top5, p->val_loss);
	fprintf(r->metrics, "}\n");
	fflush(r->metrics);
	if (is_eval)
		fsync(fileno(r->metrics));
	if (r->pub) {
		Fovea__TrainProgress m = FOVEA__TRAIN_PROGRESS__INIT;
		m.run = r->run;
		m.epoch = p->epoch;
		m.step = p->step;
		m.steps_per_epoch = p->steps_per_epoch;
		m.loss = p->loss;
		m.lr = p->lr;
		m.img_per_s = p->img_per_s;
		m.starved = p->starved;
		m.eta_s = p->eta_s;
		m.val_top1 = p->val_top1;
		m.val_top5 = p->val_top5;
		m.workers = p->workers;
		fv_msg_send(r->pub, NULL, 0, FOVEA__MSG_TYPE__MSG_TRAIN_PROGRESS, 1, ++r->seq,
			    &m.base, ZMQ_DONTWAIT);
	}
	return 0;
}

int fv_report_last(const fv_report *r, fv_progress *out)
{
	if (!r || !r->have_last)
		return FV_E_NOTFOUND;
	*out = r->last;
	return 0;
}

int fv_report_checkpoint(fv_report *r, const char *path, uint32_t epoch, uint64_t step,
			 uint64_t dataset_version, const char *model, double val_top1)
{
	if (!r->pub)
		return 0;
	Fovea__CheckpointReady m = FOVEA__CHECKPOINT_READY__INIT;
	m.run = r->run;
	m.path = (char *)path;
	m.epoch = epoch;
	m.step = step;
	m.dataset_version = dataset_version;
	m.model = (char *)model;
	m.val_top1 = val_top1;
	return fv_msg_send(r->pub, NULL, 0, FOVEA__MSG_TYPE__MSG_CHECKPOINT_READY, 1, ++r->seq,
			   &m.base, ZMQ_DONTWAIT);
}
