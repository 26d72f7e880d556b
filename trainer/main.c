/* fovea-trainer — train a model from an LMDB dataset through augment workers.
 *
 *   fovea train --db DIR --out RUNDIR [options]     a new run
 *   fovea train --resume RUNDIR [options]           continue the last checkpoint
 *   fovea-trainer -c FILE                           options from a file
 *   fovea-trainer inspect CKPT [--tensors]          what a checkpoint holds
 *   fovea-trainer rounds RUNDIR [--json]            continual rounds and verdicts
 *
 * The story: options -> run directory -> dataset, model, optimizer, data path
 * (trainer/run.c) -> READY -> epochs of steps, with progress, checkpoints
 * and an evaluation per epoch -> a final checkpoint. SIGTERM finishes the
 * step, checkpoints and exits 0; after SIGKILL, --resume continues from the
 * last checkpoint and, on CPU with the same threads, repeats exactly what the
 * uninterrupted run would have done. With --continual the trainer then stays
 * up and fine-tunes a round whenever enough new images arrive (rounds.c). */
#include "trainer/trainer.h"
#include "fv_daemon.h"
#include "fv_error.h"
#include "fv_file.h"
#include "fv_log.h"
#include "fv_status.h"
#include "nn/ckpt.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int parse_options(fv_run *r, int argc, char **argv)
{
	int npos, help, rc;
	fv_cfg_defaults(fv_train_table, &r->o);
	/* --resume RUNDIR: the run's own config first, the command line over it */
	for (int i = 1; i < argc - 1; i++)
		if (!strcmp(argv[i], "--resume")) {
			char path[4200];
			snprintf(path, sizeof path, "%s/config", argv[i + 1]);
			if ((rc = fv_cfg_load(fv_train_table, &r->o, path)))
				return rc;
		}
	if ((rc = fv_cfg_parse_args(fv_train_table, &r->o, argc, argv, &npos, &help)))
		return rc;
	if (help) {
		printf("usage: fovea train --db DIR --out RUNDIR [options]\n"
		       "       fovea train --resume RUNDIR [options]\n\noptions:\n");
		fv_cfg_help(fv_train_table, stdout, 0);
		exit(0);
	}
	if (npos)
		return fv_err_set(FV_E_CONFIG, "unexpected argument '%s' (options are --name value)", argv[1]);
	if (r->o.resume && *r->o.resume) {
		free(r->o.out);
		r->o.out = strdup(r->o.resume);
	}
	if (!r->o.db || !*r->o.db)
		return fv_err_set(FV_E_CONFIG, "--db DIR is required (a dataset made by fovea ingest)");
	if (!r->o.out || !*r->o.out)
		return fv_err_set(FV_E_CONFIG, "--out RUNDIR is required (where checkpoints and metrics go)");
	fv_log_set_level(fv_log_level_parse(r->o.log_level) > 0 ? fv_log_level_parse(r->o.log_level) : FV_LOG_INFO);
	return 0;
}

static int make_rundir(fv_run *r)
{
	char path[4200];
	if (mkdir(r->o.out, 0755) && errno != EEXIST)
		return fv_err_set(errno, "cannot create %s: %s", r->o.out, strerror(errno));
	snprintf(path, sizeof path, "%s/checkpoints", r->o.out);
	if (mkdir(path, 0755) && errno != EEXIST)
		return fv_err_set(errno, "cannot create %s: %s", path, strerror(errno));
	snprintf(path, sizeof path, "%s/trainer.log", r->o.out);
	return fv_log_tee(path);
}

static int write_config(fv_run *r)
{
	char path[4200], tmp[4300];
	snprintf(path, sizeof path, "%s/config", r->o.out);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return fv_err_set(errno, "%s: %s", tmp, strerror(errno));
	fprintf(f, "# fovea-trainer effective configuration (fovea train -c %s reproduces it)\n", path);
	fv_cfg_write(fv_train_table, &r->o, f);
	if (fflush(f) || fsync(fileno(f)) || fclose(f))
		return fv_err_set(errno, "%s: %s", tmp, strerror(errno));
	if (rename(tmp, path))
		return fv_err_set(errno, "%s: %s", path, strerror(errno));
	return fv_fsync_dir(r->o.out);
}

static int train(fv_run *r)
{
	const fv_train_opts *o = &r->o;
	int64_t last_ckpt = fv_now_ms(), t_log = fv_now_ms();
	double loss_sum = 0, wait_sum = 0;
	uint64_t img_sum = 0, steps_in_log = 0;
	int rc = 0;

	for (; r->pos.epoch < (uint32_t)o->epochs && !fv_stop_requested; r->pos.epoch++, r->pos.batch = 0) {
		uint64_t bound = r->pos.batch ? r->pos.key_bound : 0;
		if ((rc = fv_feed_epoch(r->train, r->pos.epoch, r->pos.batch, bound, &r->pos.key_bound)))
			return rc;
		fv_store_meta m;
		if (!fv_store_meta_get(r->store, &m) && !r->pos.batch)
			r->pos.dataset_version = m.version;
		if (o->unfreeze_every && r->pos.epoch && r->pos.epoch % o->unfreeze_every == 0 && !r->pos.batch)
			fv_run_unfreeze_next(r);
		size_t spe = fv_feed_batches(r->train);
		for (;;) {
			const float *x;
			const int *y;
			int n;
			double waited;
			float loss = 0;
			if (fv_stop_requested || (o->max_steps && r->pos.step >= (uint64_t)o->max_steps))
				return 0;
			rc = fv_run_next(r, r->train, &x, &y, &n, &waited);
			if (rc == FV_E_NOTFOUND)
				break;
			if (rc)
				return rc;
			float lr = fv_sched_lr(&r->sched, r->pos.epoch + (double)r->pos.batch / spe);
			if (n && (rc = fv_run_step(r, x, y, n, lr, &loss)))
				return rc;
			if (!isfinite(loss))
				return fv_err_set(FV_E_INTERNAL, "loss is %f at step %llu: lower --lr or add --warmup-epochs",
						  loss, (unsigned long long)r->pos.step);
			r->pos.step++;
			r->pos.batch++;
			fv_status_update(r->status, 0);
			loss_sum += loss;
			img_sum += n;
			wait_sum += waited;
			steps_in_log++;
			if (r->pos.step % o->log_steps == 0 || r->pos.batch == spe) {
				int64_t now = fv_now_ms();
				double dt = (now - t_log) / 1000.0, ips = dt > 0 ? img_sum / dt : 0;
				uint64_t left = (o->epochs - r->pos.epoch - 1) * spe + (spe - r->pos.batch);
				int cap;
				fv_progress p = { .epoch = r->pos.epoch, .epochs = (uint32_t)o->epochs, .step = r->pos.step,
						  .epoch_step = r->pos.batch, .steps_per_epoch = spe,
						  .loss = loss_sum / steps_in_log, .lr = lr, .img_per_s = ips,
						  .starved = dt > 0 ? fmin(1, wait_sum / 1000 / dt) : 0,
						  .eta_s = ips > 0 ? left * o->batch / ips : -1, .val_top1 = -1,
						  .workers = (uint32_t)fv_augc_workers(r->augc, &cap),
						  .bad_samples = fv_feed_bad_samples(r->train) };
				fv_report_progress(r->report, &p, 0);
				fv_sd_watchdog_tick();
				t_log = now;
				loss_sum = wait_sum = 0;
				img_sum = steps_in_log = 0;
			}
			if ((o->ckpt_steps && r->pos.step % o->ckpt_steps == 0) ||
			    (o->ckpt_minutes > 0 && fv_now_ms() - last_ckpt > o->ckpt_minutes * 60000)) {
				if (r->pos.batch < spe && (rc = fv_run_checkpoint(r, -1)))
					return rc;
				last_ckpt = fv_now_ms();
			}
		}
		/* epoch end: evaluate, checkpoint at the start of the next epoch */
		double top1 = -1;
		int last = r->pos.epoch + 1 == (uint32_t)o->epochs;
		if (last || (o->eval_every && (r->pos.epoch + 1) % o->eval_every == 0)) {
			fv_run_phase(r, "evaluating epoch %u", r->pos.epoch + 1);
			rc = fv_run_evaluate(r);
			fv_run_phase(r, "training");
			if (rc && rc != FV_E_NOTFOUND)
				return rc;
			if (!rc) {
				top1 = r->last_top1;
				fv_progress p = { .epoch = r->pos.epoch, .epochs = (uint32_t)o->epochs,
						  .step = r->pos.step, .epoch_step = r->pos.batch, .steps_per_epoch = spe,
						  .loss = r->last_loss, .lr = fv_sched_lr(&r->sched, r->pos.epoch + 1),
						  .val_top1 = r->last_top1, .val_top5 = r->last_top5,
						  .val_loss = r->last_loss };
				fv_report_progress(r->report, &p, 1);
			}
		}
		r->pos.epoch++;
		r->pos.batch = 0;
		rc = fv_run_checkpoint(r, top1);
		r->pos.epoch--;
		r->pos.batch = spe;
		if (rc)
			return rc;
		last_ckpt = fv_now_ms();
	}
	return 0;
}

int main(int argc, char **argv)
{
	fv_run r;
	int rc;

	memset(&r, 0, sizeof r);
	fv_log_init(argv[0], 0);
	if (argc > 1 && !strcmp(argv[1], "inspect"))
		return fv_trainer_inspect(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "rounds"))
		return fv_trainer_rounds(argc - 1, argv + 1);
	fv_signals_install();
	if ((rc = parse_options(&r, argc, argv)) || (rc = make_rundir(&r)) || (rc = fv_run_setup(&r)))
		goto out;
	if (r.o.resume && *r.o.resume) {
		if ((rc = fv_run_resume(&r)))
			goto out;
	} else {
		char path[4200];
		uint64_t s;
		if (!fv_ckpt_latest(r.ckpt_dir, path, sizeof path, &s)) {
			rc = fv_err_set(EEXIST, "%s already holds checkpoints: use --resume %s, or another --out",
					r.o.out, r.o.out);
			goto out;
		}
	}
	if ((rc = write_config(&r)))
		goto out;
	fv_sd_ready();
	fv_sd_status("training %s on %s", r.o.model, r.o.db);
	fv_run_phase(&r, "training");
	rc = train(&r);
	fv_run_phase(&r, "checkpointing");
	if (!rc && (fv_stop_requested || r.pos.step == (uint64_t)r.o.max_steps)) {
		if (fv_stop_requested)
			fv_info("stopping: checkpointing at step %llu", (unsigned long long)r.pos.step);
		rc = fv_run_checkpoint(&r, -1);
	}
	if (!rc && r.o.continual && !fv_stop_requested) {
		fv_sd_status("continual: waiting for new images");
		rc = fv_rounds_run(&r);
	}
	fv_sd_stopping();
out:
	if (rc)
		fv_err("%s", fv_err_msg(rc));
	fv_run_teardown(&r);
	fv_cfg_free(fv_train_table, &r.o);
	return rc ? 1 : 0;
}
