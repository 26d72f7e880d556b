/* trainer/live.c — the trainer's status endpoint (lib/fv_status.h): what
 * it is doing (phase), the last progress line, and the augment broker's
 * workers and their throughput. Filled on the training thread at each
 * step, answered by fv_status's own thread, so a long step or evaluation
 * still gets an answer (with the snapshot's age). */
#include "trainer/trainer.h"
#include "trainer/rounds.h"
#include "fv_daemon.h"
#include "fv_status.h"

#include <stdarg.h>
#include <stdio.h>

static void fill(void *ctx, fv_status_figs *f)
{
	fv_run *r = ctx;
	fv_progress p;
	int cap = 0;
	fv_status_str(f, "trainer.phase", "%s", r->phase[0] ? r->phase : "starting");
	fv_status_str(f, "training.model", "%s", r->o.model);
	fv_status_num(f, "training.epochs", (double)r->o.epochs);
	fv_status_num(f, "training.step", (double)r->pos.step);
	if (!fv_report_last(r->report, &p)) {
		fv_status_num(f, "training.epoch", p.epoch);
		fv_status_num(f, "training.steps_per_epoch", (double)p.steps_per_epoch);
		fv_status_num(f, "training.loss", p.loss);
		fv_status_num(f, "training.lr", p.lr);
		fv_status_num(f, "training.img_per_s", p.img_per_s);
		fv_status_num(f, "training.starved", p.starved);
		fv_status_num(f, "training.eta_s", p.round ? -1 : p.eta_s);
		if (p.round)
			fv_status_num(f, "training.round", p.round);
	}
	if (r->last_top1 > 0)
		fv_status_num(f, "training.val_top1", r->last_top1);
	/* the broker knows its workers and what they delivered */
	fv_augc_stats st;
	int64_t now = fv_now_ms();
	fv_status_num(f, "workers.count", r->augc ? fv_augc_workers(r->augc, &cap) : 0);
	fv_status_num(f, "workers.capacity", cap);
	if (r->augc) {
		fv_augc_stats_get(r->augc, &st);
		if (now - r->live_ms >= 1000) {
			r->live_rate = r->live_ms ? (double)(st.delivered - r->live_delivered) * 1000.0 /
							    (double)(now - r->live_ms) : 0;
			r->live_delivered = st.delivered;
			r->live_ms = now;
		}
		fv_status_num(f, "workers.batches", (double)st.delivered);
		fv_status_num(f, "workers.batches_per_s", r->live_rate);
		fv_status_num(f, "workers.img_per_s", r->live_rate * (double)r->o.batch);
		fv_status_num(f, "workers.resent", (double)st.resent);
		fv_status_num(f, "workers.lost", (double)st.workers_lost);
		fv_status_str(f, "workers.endpoint", "%s", fv_augc_endpoint(r->augc));
		/* each worker: worker.<name>.img_per_s / .samples / .capacity */
		fv_augc_worker_info wi[32];
		int nw = fv_augc_worker_list(r->augc, wi, 32);
		for (int i = 0; i < nw && i < 32; i++) {
			char key[96];
			snprintf(key, sizeof key, "worker.%.63s.img_per_s", wi[i].name);
			fv_status_num(f, key, wi[i].img_per_s);
			snprintf(key, sizeof key, "worker.%.63s.samples", wi[i].name);
			fv_status_num(f, key, (double)wi[i].samples);
			snprintf(key, sizeof key, "worker.%.63s.capacity", wi[i].name);
			fv_status_num(f, key, wi[i].capacity);
		}
	}
}

int fv_run_status_open(fv_run *r)
{
	const fv_train_opts *o = &r->o;
	fv_status_opts so = { .endpoint = o->status_ep, .name = "trainer", .fill = fill, .fill_ctx = r,
			      .curve_secret_key = o->augment_curve_key,
			      .curve_public_key = o->augment_curve_pub, .curve_allow = o->augment_allow };
	int rc = fv_status_new(&r->status, r->zmq, &so);
	fv_status_update(r->status, 1);
	return rc;
}

void fv_run_phase(fv_run *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->phase, sizeof r->phase, fmt, ap);
	va_end(ap);
	fv_status_update(r->status, 1);
}
