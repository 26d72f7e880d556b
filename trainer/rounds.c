/* trainer/rounds.c — continual retraining (`--continual`): after the initial
 * training the trainer stays up, and whenever the train split holds at least
 * --round-min-new records with keys at or past the last round's bound it
 * fine-tunes a round (once no more arrived for one poll, or at 4x that many
 * waiting): weights from RUNDIR/champion.fvc (the evaluator's
 * champion) or else its latest checkpoint, a fresh optimizer, --round-epochs
 * epochs over the new records plus a deterministic replay sample of old ones,
 * a cosine schedule from --round-lr x --lr, a checkpoint per epoch (meta
 * round=N, new_from_key=B) announced as CheckpointReady.
 *
 * RUNDIR/rounds.jsonl is the durable state, one fsynced JSON line per event:
 *   {"event":"base","time":T,"key_bound":B}          the initial training's bound
 *   {"event":"start","round":N,"time":T,"from_key":B,"to_key":B2,"new":n,"replay":m,"init":"..."}
 *   {"event":"end", ... the same ..., "steps":S,"checkpoint":"..."}
 * A round's records are keys in [from_key, to_key); the next round starts at
 * the last "end"'s to_key, so a restarted trainer redoes an interrupted round
 * (same bounds) and never counts an image twice. The evaluator's verdicts go
 * to RUNDIR/verdicts.jsonl; `fovea-trainer rounds RUNDIR` shows both. */
#include "trainer/trainer.h"
#include "trainer/plan.h"
#include "trainer/rounds.h"
#include "nn/ckpt.h"
#include "fovea.pb-c.h"
#include "fv_daemon.h"
#include "fv_error.h"
#include "fv_log.h"
#include "fv_msg.h"
#include "fv_status.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

typedef fv_rounds_state rstate;

/* ------------------------------------------------------------ the file */

static int json_u64(const char *line, const char *key, uint64_t *v)
{
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\":", key);
	const char *p = strstr(line, pat);
	if (!p)
		return FV_E_NOTFOUND;
	*v = strtoull(p + strlen(pat), NULL, 10);
	return 0;
}

int fv_rounds_state_read(const char *rundir, fv_rounds_state *st)
{
	char path[4200], line[8192];
	memset(st, 0, sizeof *st);
	snprintf(path, sizeof path, "%s/rounds.jsonl", rundir);
	FILE *f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : fv_err_set(errno, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof line, f)) {
		uint64_t round = 0, v = 0;
		if (!strchr(line, '\n'))
			break; /* torn by a crash: as if never written */
		if (strstr(line, "\"event\":\"base\"") && !json_u64(line, "key_bound", &v)) {
			st->have_base = 1;
			st->bound = v;
		} else if (strstr(line, "\"event\":\"start\"") && !json_u64(line, "round", &round) &&
			   !json_u64(line, "to_key", &v) && round == st->done + 1) {
			st->pending = 1;
			st->pending_to = v;
		} else if (strstr(line, "\"event\":\"end\"") && !json_u64(line, "round", &round) &&
			   !json_u64(line, "to_key", &v) && round == st->done + 1) {
			st->done = (uint32_t)round;
			st->bound = v;
			st->pending = 0;
		}
	}
	fclose(f);
	return 0;
}

static int append_line(const char *rundir, const char *text)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/rounds.jsonl", rundir);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644), rc = 0;
	if (fd < 0)
		return fv_err_set(errno, "%s: %s", path, strerror(errno));
	size_t len = strlen(text);
	if (write(fd, text, len) != (ssize_t)len || fsync(fd))
		rc = fv_err_set(errno ? errno : EIO, "%s: %s", path, strerror(errno ? errno : EIO));
	close(fd);
	return rc;
}

/* s with '"' and '\' escaped, for a JSON string. */
static void esc(char *out, size_t cap, const char *s)
{
	size_t k = 0;
	for (; *s && k + 2 < cap; s++) {
		if (*s == '"' || *s == '\\')
			out[k++] = '\\';
		out[k++] = *s;
	}
	out[k] = 0;
}

/* ------------------------------------------------------------ one round */

typedef struct round_plan {
	uint32_t round;
	uint64_t from, to;
	uint64_t *subset;        /* replay keys then new keys, ascending */
	size_t nnew, nreplay;
	char init[4200];
} round_plan;

/* Which records a round trains on: every train record in [from, to) and
 * round(ratio x new) old ones, a permutation prefix fixed by (seed, round). */
static int plan_round(fv_run *r, round_plan *p)
{
	uint64_t *keys;
	size_t n, nold = 0;
	int rc = fv_store_split_index(r->store, 0, &keys, NULL, &n, NULL);
	if (rc)
		return rc;
	while (nold < n && keys[nold] < p->from)
		nold++;
	size_t hi = nold;
	while (hi < n && keys[hi] < p->to)
		hi++;
	p->nnew = hi - nold;
	double want = floor(r->o.replay_ratio * (double)p->nnew + 0.5);
	p->nreplay = want < (double)nold ? (size_t)want : nold;
	uint32_t *order = malloc((nold ? nold : 1) * sizeof *order);
	p->subset = malloc((p->nnew + p->nreplay + 1) * sizeof *p->subset);
	if (!order || !p->subset) {
		free(order);
		free(keys);
		return ENOMEM;
	}
	if (nold)
		fv_plan_shuffle(order, nold, (uint64_t)r->o.seed ^ 0x726f756e64ull, p->round);
	/* the chosen old indices in ascending order: mark, then sweep */
	uint8_t *take = calloc(nold ? nold : 1, 1);
	if (!take) {
		free(order);
		free(keys);
		return ENOMEM;
	}
	for (size_t i = 0; i < p->nreplay; i++)
		take[order[i]] = 1;
	size_t m = 0;
	for (size_t i = 0; i < nold; i++)
		if (take[i])
			p->subset[m++] = keys[i];
	memcpy(p->subset + m, keys + nold, p->nnew * sizeof *keys);
	free(take);
	free(order);
	free(keys);
	return 0;
}

/* Weights from the champion (else the latest checkpoint), a fresh optimizer
 * and the round's schedule. */
static int init_round(fv_run *r, round_plan *p)
{
	fv_ckpt *c = NULL;
	uint64_t s;
	size_t loaded;
	int rc;
	snprintf(p->init, sizeof p->init, "%s/champion.fvc", r->o.out);
	if (access(p->init, R_OK) && (rc = fv_ckpt_latest(r->ckpt_dir, p->init, sizeof p->init, &s)))
		return fv_err_set(rc, "round %u: no champion and no checkpoint to start from", p->round);
	if ((rc = fv_ckpt_open(&c, p->init)))
		return rc;
	fv_ckpt_load_opts lo = { 0 };
	rc = fv_ckpt_load_params(c, fv_net_params(r->net), fv_net_nparams(r->net), &lo, &loaded);
	fv_ckpt_close(&c);
	if (rc || (rc = fv_net_sync_to_device(r->net)))
		return rc;
	const fv_train_opts *o = &r->o;
	fv_sgd_opts so = { .momentum = (float)o->momentum, .nesterov = o->nesterov,
			   .weight_decay = (float)o->weight_decay, .decoupled = o->decoupled_wd,
			   .decay_bn_and_bias = o->decay_bn_bias, .clip_norm = (float)o->clip_norm,
			   .ema_decay = (float)o->ema };
	fv_sgd_destroy(&r->sgd);
	if ((rc = fv_sgd_new(&r->sgd, fv_net_params(r->net), fv_net_nparams(r->net), &so)))
		return rc;
	if ((rc = fv_sched_parse(&r->sched, "cosine", fv_sched_scale_lr(o->lr * o->round_lr, (int)o->batch),
				 (double)o->round_epochs)))
		return rc;
	r->sched.lr_min = o->lr_min;
	return 0;
}

/* A progress line (metrics.jsonl, TrainProgress, the log) the way the
 * initial training writes them, so fovea status stays current in a round. */
static void round_progress(fv_run *r, const round_plan *p, long e, size_t b, size_t spe, float lr,
			   double loss, uint64_t imgs, double dt_s, double wait_s)
{
	int cap;
	double ips = dt_s > 0 ? (double)imgs / dt_s : 0;
	uint64_t left = (uint64_t)(r->o.round_epochs - e - 1) * spe + (spe - b);
	fv_progress pr = { .epoch = (uint32_t)e, .epochs = (uint32_t)r->o.round_epochs, .step = r->pos.step,
			   .epoch_step = b, .steps_per_epoch = spe, .loss = loss, .lr = lr, .img_per_s = ips,
			   .starved = dt_s > 0 ? fmin(1, wait_s / dt_s) : 0,
			   .eta_s = ips > 0 ? (double)left * (double)r->o.batch / ips : -1, .val_top1 = -1,
			   .workers = (uint32_t)fv_augc_workers(r->augc, &cap),
			   .bad_samples = fv_feed_bad_samples(r->train), .round = p->round };
	fv_report_progress(r->report, &pr, 0);
}

static int train_round(fv_run *r, round_plan *p, uint64_t *steps)
{
	int rc = 0;
	snprintf(r->extra_meta, sizeof r->extra_meta, "round=%u\nnew_from_key=%llu\nnew_to_key=%llu\n",
		 p->round, (unsigned long long)p->from, (unsigned long long)p->to);
	for (long e = 0; e < r->o.round_epochs && !rc; e++) {
		uint64_t id = ((uint64_t)p->round << 32) | (uint64_t)e;
		if ((rc = fv_feed_epoch(r->train, id, 0, 0, NULL)))
			break;
		size_t spe = fv_feed_batches(r->train), b = 0, in_log = 0;
		double loss_sum = 0, log_loss = 0, log_wait = 0;
		uint64_t log_imgs = 0;
		int64_t t_log = fv_now_ms();
		fv_run_phase(r, "round %u epoch %ld/%ld", p->round, e + 1, r->o.round_epochs);
		for (;;) {
			const float *x;
			const int *y;
			int n;
			float loss = 0;
			double waited = 0;
			if (fv_stop_requested)
				return EINTR;
			rc = fv_run_next(r, r->train, &x, &y, &n, &waited);
			if (rc == FV_E_NOTFOUND) {
				rc = 0;
				break;
			}
			if (rc)
				break;
			float lr = (float)fv_sched_lr(&r->sched, e + (double)b / spe);
			if (n && (rc = fv_run_step(r, x, y, n, lr, &loss)))
				break;
			if (!isfinite(loss)) {
				rc = fv_err_set(FV_E_INTERNAL, "round %u: loss is %f: lower --round-lr", p->round, loss);
				break;
			}
			loss_sum += loss;
			b++;
			r->pos.step++;
			(*steps)++;
			log_loss += loss;
			log_imgs += (uint64_t)n;
			log_wait += waited;
			in_log++;
			if (r->pos.step % (uint64_t)r->o.log_steps == 0 || b == spe) {
				int64_t now = fv_now_ms();
				round_progress(r, p, e, b, spe, lr, log_loss / (double)in_log, log_imgs,
					       (double)(now - t_log) / 1000.0, log_wait / 1000.0);
				t_log = now;
				log_loss = log_wait = 0;
				log_imgs = in_log = 0;
			}
			fv_status_update(r->status, 0);
			fv_sd_watchdog_tick();
		}
		if (rc)
			break;
		fv_info("round %u epoch %ld/%ld: %zu batches, loss %.4f", p->round, e + 1, r->o.round_epochs, b,
			b ? loss_sum / b : 0.0);
		rc = fv_run_checkpoint(r, -1);
	}
	r->extra_meta[0] = 0;
	return rc;
}

static void plan_json(char *out, size_t cap, const char *event, const round_plan *p)
{
	char init[8400];
	esc(init, sizeof init, p->init);
	snprintf(out, cap, "{\"event\":\"%s\",\"round\":%u,\"time\":%lld,\"from_key\":%llu,\"to_key\":%llu,"
		 "\"new\":%zu,\"replay\":%zu,\"init\":\"%s\"", event, p->round, (long long)time(NULL),
		 (unsigned long long)p->from, (unsigned long long)p->to, p->nnew, p->nreplay, init);
}

static int run_round(fv_run *r, rstate *st, uint64_t to)
{
	round_plan p = { .round = st->done + 1, .from = st->bound, .to = to };
	char line[16384], ckpt[4200], cesc[8400];
	uint64_t steps = 0, s;
	int rc;
	fv_store_meta m;
	if ((rc = plan_round(r, &p)) || (rc = init_round(r, &p)) || (rc = fv_store_meta_get(r->store, &m)))
		goto out;
	r->pos.dataset_version = m.version;
	fv_info("round %u: %zu new train images (keys %llu..%llu) + %zu replayed, %ld epochs from %s",
		p.round, p.nnew, (unsigned long long)p.from, (unsigned long long)p.to - 1, p.nreplay,
		r->o.round_epochs, p.init);
	fv_sd_status("round %u: %zu new images", p.round, p.nnew);
	plan_json(line, sizeof line, "start", &p);
	strcat(line, "}\n");
	if ((rc = append_line(r->o.out, line)))
		goto out;
	if ((rc = fv_feed_set_subset(r->train, p.subset, p.nnew + p.nreplay)))
		goto out;
	rc = train_round(r, &p, &steps);
	fv_feed_set_subset(r->train, NULL, 0);
	if (rc)
		goto out;
	if (fv_ckpt_latest(r->ckpt_dir, ckpt, sizeof ckpt, &s))
		ckpt[0] = 0;
	esc(cesc, sizeof cesc, ckpt);
	plan_json(line, sizeof line, "end", &p);
	snprintf(line + strlen(line), sizeof line - strlen(line), ",\"steps\":%llu,\"checkpoint\":\"%s\"}\n",
		 (unsigned long long)steps, cesc);
	if ((rc = append_line(r->o.out, line)))
		goto out;
	st->done = p.round;
	st->bound = p.to;
	st->pending = 0;
	fv_info("round %u done: %llu steps, %s", p.round, (unsigned long long)steps, ckpt);
out:
	free(p.subset);
	return rc;
}

/* ------------------------------------------------------------ waiting */

/* New train records since st->bound: their count, and the bound past them. */
static int count_new(fv_run *r, const rstate *st, size_t *nnew, uint64_t *to)
{
	uint64_t *keys;
	size_t n;
	int rc = fv_store_split_index(r->store, 0, &keys, NULL, &n, NULL);
	if (rc)
		return rc;
	size_t i = n;
	while (i && keys[i - 1] >= st->bound)
		i--;
	*nnew = n - i;
	*to = n ? keys[n - 1] + 1 : st->bound;
	if (*to < st->bound)
		*to = st->bound;
	free(keys);
	return 0;
}

/* Sleep up to ms, waking early on a DatasetUpdated (the event is a hint:
 * the dataset is counted either way). */
static void wait_data(fv_run *r, void *sub, int ms)
{
	if (!sub) {
		for (int t = 0; t < ms && !fv_stop_requested; t += 100) {
			usleep(100000);
			fv_status_update(r->status, 0);
		}
		return;
	}
	zmq_pollitem_t it = { sub, 0, ZMQ_POLLIN, 0 };
	fv_status_update(r->status, 0);
	if (zmq_poll(&it, 1, ms) > 0)
		for (int k = 0; k < 100; k++) {
			fv_msg m;
			int rc = fv_msg_recv(sub, &m, ZMQ_DONTWAIT);
			fv_msg_clear(&m);
			if (rc == EAGAIN)
				break;
		}
}

int fv_rounds_run(fv_run *r)
{
	rstate st;
	void *sub = NULL;
	int rc;
	if ((rc = fv_rounds_state_read(r->o.out, &st)))
		return rc;
	if (!st.have_base) {
		char line[256];
		st.bound = r->pos.key_bound;
		snprintf(line, sizeof line, "{\"event\":\"base\",\"time\":%lld,\"key_bound\":%llu,\"step\":%llu}\n",
			 (long long)time(NULL), (unsigned long long)st.bound, (unsigned long long)r->pos.step);
		if ((rc = append_line(r->o.out, line)))
			return rc;
	}
	if (*r->o.dataset_sub) {
		sub = zmq_socket(r->zmq, ZMQ_SUB);
		fv_sock_limit(sub, 1 << 20);
		zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
		if (zmq_connect(sub, r->o.dataset_sub)) {
			rc = fv_err_set(FV_E_ZMQ, "--dataset-sub %s: %s", r->o.dataset_sub, zmq_strerror(zmq_errno()));
			goto out;
		}
	}
	fv_info("continual: %u rounds done, waiting for %ld new train images (keys from %llu)", st.done,
		r->o.round_min_new, (unsigned long long)st.bound);
	size_t before = SIZE_MAX;
	while (!fv_stop_requested) {
		size_t nnew = 0, min = (size_t)r->o.round_min_new;
		uint64_t to = 0;
		if (st.pending) {
			fv_info("round %u was interrupted: redoing it", st.done + 1);
			to = st.pending_to;
		} else if ((rc = count_new(r, &st, &nnew, &to))) {
			goto out;
		} else if (nnew < min || (nnew != before && nnew < 4 * min)) {
			/* enough, and settled: nothing arrived since the last look
			 * (a burst of uploads goes into one round), unless so
			 * much is waiting that a steady stream must not starve it */
			before = nnew;
			fv_sd_status("continual: %zu of %ld new images for round %u", nnew, r->o.round_min_new,
				     st.done + 1);
			fv_run_phase(r, "waiting: %zu of %ld new images for round %u", nnew, r->o.round_min_new,
				     st.done + 1);
			fv_sd_watchdog_tick();
			wait_data(r, sub, 2000);
			continue;
		}
		before = SIZE_MAX;
		rc = run_round(r, &st, to);
		if (rc == EINTR) {
			rc = 0;
			break;
		}
		if (rc)
			goto out;
	}
out:
	if (sub)
		zmq_close(sub);
	return rc;
}
