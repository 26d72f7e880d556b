/* evaluator/daemon.c — the fovea-evaluator daemon: every checkpoint of the
 * watched runs gets scored once, recorded in RUNDIR/eval.jsonl, published as
 * EvalResult, and the run's champion kept current (NewBest on change).
 *
 * Checkpoints are found by scanning RUNDIR/checkpoints (on start, on every
 * CheckpointReady, and every scan-ms in case an event was missed: events are
 * hints, the directory is the truth). One evaluation at a time, oldest step
 * first; a SIGTERM abandons the one in progress between batches (nothing is
 * recorded for it, so it is redone on the next start).
 *
 * Each scored checkpoint is judged against the champion on the same val
 * split: when val grew since the champion was scored (continual retraining
 * adds images), champion.fvc is re-scored first. It replaces the champion
 * only when strictly better; every verdict, with both scores and why, is
 * appended to RUNDIR/verdicts.jsonl (`fovea-trainer rounds` shows them). */
#include "evaluator/daemon.h"
#include "evaluator/evaluator.h"
#include "nn/ckpt.h"
#include "fv_config.h"
#include "fv_daemon.h"
#include "fv_error.h"
#include "fv_log.h"
#include "fv_msg.h"
#include "fv_status.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_RUNS 16

typedef struct dopts {
	char *runs, *db, *sub, *pub, *augment_bind, *log_level, *status_ep;
	char *augment_curve_key, *augment_curve_pub, *augment_allow;
	long workers, worker_threads, threads, batch, window, scan_ms;
} dopts;

#define O(f) offsetof(dopts, f)
static const fv_cfg_opt table[] = {
	{ "runs", FV_CFG_STR, O(runs), NULL, 1, 0, NULL, "run directories to watch, comma-separated (required)" },
	{ "db", FV_CFG_STR, O(db), NULL, 1, 0, NULL, "dataset directory; its val split is scored (required)" },
	{ "sub", FV_CFG_STR, O(sub), "", 1, 0, NULL, "where CheckpointReady comes from, comma-separated (default ipc://RUNDIR/events.sock per run)" },
	{ "pub", FV_CFG_STR, O(pub), "", 1, 0, NULL, "PUB endpoint for EvalResult/NewBest (default ipc://RUNDIR/eval.sock, first run)" },
	{ "augment-bind", FV_CFG_STR, O(augment_bind), "", 1, 0, NULL, "broker endpoint augment workers connect to (default ipc://RUNDIR/eval-augment.sock, first run)" },
	{ "augment-curve-key", FV_CFG_STR, O(augment_curve_key), "", 1, 0, NULL, "CURVE secret key of the broker (fovea keygen); workers must then use CURVE" },
	{ "augment-curve-pub", FV_CFG_STR, O(augment_curve_pub), "", 1, 0, NULL, "its public key (default: the .pub beside the secret key)" },
	{ "augment-allow", FV_CFG_STR, O(augment_allow), "", 1, 0, NULL, "allowed worker public keys: a directory of .pub files or a file of keys" },
	{ "workers", FV_CFG_INT, O(workers), "1", 0, 256, NULL, "local augment workers to start when none is connected (with --augment-bind: after waiting 3 s; 0 = never)" },
	{ "worker-threads", FV_CFG_INT, O(worker_threads), "1", 1, 256, NULL, "threads of each local worker" },
	{ "threads", FV_CFG_INT, O(threads), "0", 0, 1024, NULL, "compute threads (0 = all cores)" },
	{ "batch", FV_CFG_INT, O(batch), "256", 1, 65536, NULL, "images per forward pass" },
	{ "window", FV_CFG_INT, O(window), "4", 1, 1024, NULL, "batches in flight to the augment workers" },
	{ "scan-ms", FV_CFG_INT, O(scan_ms), "5000", 50, 3.6e6, NULL, "rescan checkpoint directories this often (events may be missed)" },
	{ "status-endpoint", FV_CFG_STR, O(status_ep), "", 1, 0, NULL, "answer fovea status here (tcp://*:5570, ipc://PATH; empty = off; CURVE with --augment-curve-key)" },
	{ "log-level", FV_CFG_STR, O(log_level), "info", 1, 0, NULL, "error | warn | info | debug" },
	FV_CFG_END
};

typedef struct run {
	char dir[4096];
	fv_evlog *log;
	char champion[256];     /* basename the champion file names ("" = none) */
	int dirty;              /* rescan its checkpoints */
	char resc_ckpt[256];    /* the champion re-scored on a grown val split ... */
	fv_eval_entry resc;     /* ... and its scores there */
} run;

typedef struct evd {
	dopts o;
	run runs[MAX_RUNS];
	int nruns;
	void *zmq, *pub;
	void *subs[MAX_RUNS];
	int nsubs;
	uint64_t seq;
	fv_evaluator *ev;
	fv_status *status;
	char evaluating[256];   /* the checkpoint being scored now ("" = idle) */
} evd;

/* ---------------------------------------------------------------- champion */

static void publish_best(evd *d, run *r, const fv_eval_entry *e, const fv_eval_entry *prev)
{
	char path[4200];
	if (!d->pub)
		return;
	snprintf(path, sizeof path, "%s/champion.fvc", r->dir);
	Fovea__NewBest m = FOVEA__NEW_BEST__INIT;
	m.run = r->dir;
	m.path = path;
	m.source = (char *)e->path;
	m.step = e->step;
	m.epoch = e->epoch;
	m.dataset_version = e->dataset_version;
	m.model = (char *)e->model;
	m.top1 = (float)e->top1;
	m.top5 = (float)e->top5;
	m.loss = (float)e->loss;
	m.previous = prev ? (char *)prev->path : "";
	m.previous_top1 = prev ? (float)prev->top1 : -1;
	fv_msg_send(d->pub, NULL, 0, FOVEA__MSG_TYPE__MSG_NEW_BEST, 1, ++d->seq, &m.base, ZMQ_DONTWAIT);
}

/* Make e (entry index i of the log) the champion: files, then NewBest. */
static int replace_champion(evd *d, run *r, long i)
{
	const fv_eval_entry *e = fv_evlog_at(r->log, (size_t)i);
	long p = r->champion[0] ? fv_evlog_find(r->log, r->champion) : -1;
	int rc = fv_champion_write(r->dir, e);
	if (rc) {
		fv_err("%s: cannot record the champion %s: %s", r->dir, e->ckpt, fv_err_msg(rc));
		return rc;
	}
	fv_info("%s: new champion %s (top-1 %.4f, loss %.4f)", r->dir, e->ckpt, e->top1, e->loss);
	publish_best(d, r, e, p >= 0 ? fv_evlog_at(r->log, (size_t)p) : NULL);
	snprintf(r->champion, sizeof r->champion, "%s", e->ckpt);
	r->resc_ckpt[0] = 0;
	return 0;
}

/* The champion's scores on the val split e was scored on: its own entry
 * when the split has not grown since (val records are only ever added, so
 * an equal count is the same split), else a re-score of champion.fvc,
 * remembered until the champion or the split changes. Returns 0, 1 when
 * re-scored, or an error (the verdict then waits: EINTR when stopping). */
static int champion_on(evd *d, run *r, const fv_eval_entry *champ, const fv_eval_entry *e,
		       uint64_t split_key, fv_eval_entry *out)
{
	char path[4200];
	fv_eval_result y;
	*out = *champ;
	if (champ->n == e->n)
		return 0;
	if (!strcmp(r->resc_ckpt, champ->ckpt) && r->resc.n == e->n) {
		*out = r->resc;
		return 1;
	}
	snprintf(path, sizeof path, "%s/champion.fvc", r->dir);
	fv_info("%s: val grew from %llu to %llu images since the champion %s was scored: re-scoring it",
		r->dir, (unsigned long long)champ->n, (unsigned long long)e->n, champ->ckpt);
	fv_evaluator_set_split(d->ev, split_key ? split_key : UINT64_MAX);
	int rc = fv_evaluator_run(d->ev, path, &y);
	fv_evaluator_set_split(d->ev, 0);
	if (!rc) {
		out->n = y.n;
		out->top1 = y.top1;
		out->top5 = y.top5;
		out->loss = y.loss;
		r->resc = *out;
		snprintf(r->resc_ckpt, sizeof r->resc_ckpt, "%s", champ->ckpt);
		fv_info("%s: champion %s re-scored: top-1 %.4f on %llu images", r->dir, champ->ckpt, y.top1,
			(unsigned long long)y.n);
	}
	fv_eval_result_free(&y);
	return rc ? (rc == EINTR || fv_stop_requested ? EINTR : rc) : 1;
}

static void append_verdict(run *r, const fv_eval_entry *e, const fv_eval_result *x, int replaced,
			   const char *why, const fv_eval_entry *champ, int rescored)
{
	char path[4200], line[8192];
	snprintf(path, sizeof path, "%s/verdicts.jsonl", r->dir);
	int n = snprintf(line, sizeof line,
			 "{\"round\":%u,\"time\":%lld,\"checkpoint\":\"%s\",\"step\":%llu,\"verdict\":\"%s\","
			 "\"why\":\"%s\",\"top1\":%.6f,\"loss\":%.6f,\"val_n\":%llu,\"champion\":\"%s\","
			 "\"champion_top1\":%.6f,\"rescored\":%s",
			 x ? x->round : 0, (long long)time(NULL), e->ckpt, (unsigned long long)e->step,
			 replaced ? "replaced" : "kept", why, e->top1, e->loss, (unsigned long long)e->n,
			 champ ? champ->ckpt : "", champ ? champ->top1 : -1.0, rescored ? "true" : "false");
	if (x && x->split_key && n > 0 && (size_t)n < sizeof line)
		n += snprintf(line + n, sizeof line - n,
			      ",\"split_key\":%llu,\"n_old\":%llu,\"n_new\":%llu,\"top1_old\":%.6f,\"top1_new\":%.6f",
			      (unsigned long long)x->split_key, (unsigned long long)x->n_old,
			      (unsigned long long)x->n_new, x->n_old ? x->top1_old : -1.0,
			      x->n_new ? x->top1_new : -1.0);
	if (n <= 0 || (size_t)n + 3 > sizeof line)
		return;
	strcpy(line + n, "}\n");
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, line, strlen(line)) != (ssize_t)strlen(line) || fsync(fd))
		fv_err("%s: cannot record a verdict: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* Judge entry i (just evaluated; x its full result, or NULL when judged
 * from the log after a restart): it replaces the champion only when it
 * beats the champion's scores on the same val split (fv_champion_better:
 * higher top-1, then lower loss; a tie keeps the champion). Every verdict
 * goes to RUNDIR/verdicts.jsonl; NewBest only on a replacement. */
static int judge(evd *d, run *r, long i, const fv_eval_result *x)
{
	const fv_eval_entry *e = fv_evlog_at(r->log, (size_t)i);
	long c = r->champion[0] ? fv_evlog_find(r->log, r->champion) : -1;
	char why[512];
	fv_eval_entry cs;
	int rescored = 0, rc;
	if (e->failed)
		return 0;
	if (c < 0) {
		snprintf(why, sizeof why, "first scored checkpoint (top-1 %.4f)", e->top1);
		if (!(rc = replace_champion(d, r, i)))
			append_verdict(r, e, x, 1, why, NULL, 0);
		return rc;
	}
	if (c == i)
		return 0;
	const fv_eval_entry *champ = fv_evlog_at(r->log, (size_t)c);
	if ((rc = champion_on(d, r, champ, e, x ? x->split_key : 0, &cs)) < 0 || rc > 1)
		return rc;
	rescored = rc;
	int better = fv_champion_better(e, &cs);
	snprintf(why, sizeof why, "top-1 %.4f %s champion %s %.4f on %llu val images%s", e->top1,
		 better ? (e->top1 > cs.top1 ? ">" : "= (lower loss)") : e->top1 == cs.top1 ? "= (loss not lower)" : "<",
		 cs.ckpt, cs.top1, (unsigned long long)e->n, rescored ? " (champion re-scored)" : "");
	if (better && (rc = replace_champion(d, r, i)))
		return rc;
	fv_info("%s: %s %s: %s", r->dir, e->ckpt, better ? "replaces the champion" : "kept out", why);
	append_verdict(r, e, x, better, why, &cs, rescored);
	return 0;
}

/* On start: entries recorded after the last verdict (a crash between the
 * two), or after the champion when its file is older than the verdicts,
 * are judged now, in log order; a log from before verdicts existed gets its
 * best as champion when it has none. */
static void judge_backlog(evd *d, run *r)
{
	char path[4200], line[8192], last[256] = "";
	snprintf(path, sizeof path, "%s/verdicts.jsonl", r->dir);
	FILE *f = fopen(path, "re");
	while (f && fgets(line, sizeof line, f)) {
		char *p = strstr(line, "\"checkpoint\":\"");
		if (!strchr(line, '\n') || !p)
			continue;
		p += 14;
		size_t len = strcspn(p, "\"");
		if (len < sizeof last)
			memcpy(last, p, len), last[len] = 0;
	}
	if (f)
		fclose(f);
	long from;
	if (*last) {
		from = fv_evlog_find(r->log, last) + 1;
		/* a champion file behind the verdicts (the champion is written
		 * before its verdict, so only a file put back by hand or from a
		 * backup): what was judged after it is judged again against it */
		long c = r->champion[0] ? fv_evlog_find(r->log, r->champion) : -1;
		if (c >= 0 && c + 1 < from) {
			fv_warn("%s: the champion file names %s, judged before the last verdict (%s): judging the %ld checkpoints after it again",
				r->dir, r->champion, last, from - c - 1);
			from = c + 1;
		}
	} else if (r->champion[0])
		from = (long)fv_evlog_count(r->log); /* judged before verdicts were kept */
	else {
		long b = fv_evlog_best(r->log);
		if (b >= 0)
			judge(d, r, b, NULL);
		from = (long)fv_evlog_count(r->log);
	}
	for (long i = from > 0 ? from : 0; i < (long)fv_evlog_count(r->log) && !fv_stop_requested; i++)
		if (judge(d, r, i, NULL) == EINTR)
			break;
}

/* ---------------------------------------------------------------- one checkpoint */

static void publish_result(evd *d, run *r, const fv_eval_result *x)
{
	if (!d->pub)
		return;
	Fovea__EvalResult m = FOVEA__EVAL_RESULT__INIT;
	float *pc = NULL;
	m.run = r->dir;
	m.path = (char *)x->path;
	m.step = x->step;
	m.epoch = x->epoch;
	m.dataset_version = x->dataset_version;
	m.val_version = x->val_version;
	m.model = (char *)x->model;
	m.n = x->n;
	m.top1 = (float)x->top1;
	m.top5 = (float)x->top5;
	m.loss = (float)x->loss;
	m.ece = (float)x->ece;
	m.failed = x->failed;
	m.error = (char *)x->error;
	m.eval_s = (float)x->eval_s;
	if (x->per_class && (pc = malloc((size_t)x->classes * sizeof *pc))) {
		for (int i = 0; i < x->classes; i++)
			pc[i] = (float)x->per_class[i];
		m.n_per_class = (size_t)x->classes;
		m.per_class = pc;
	}
	fv_msg_send(d->pub, NULL, 0, FOVEA__MSG_TYPE__MSG_EVAL_RESULT, 1, ++d->seq, &m.base, ZMQ_DONTWAIT);
	free(pc);
}

/* Evaluate path for r. Returns EINTR when stopping, else 0 (failures are
 * logged, and recorded when the checkpoint is at fault). */
static int evaluate(evd *d, run *r, const char *path)
{
	fv_eval_result x;
	fv_sd_status("evaluating %s", path);
	fv_info("evaluating %s", path);
	const char *base = strrchr(path, '/');
	snprintf(d->evaluating, sizeof d->evaluating, "%.200s", base ? base + 1 : path);
	fv_status_update(d->status, 1); /* answered from this while it runs */
	int rc = fv_evaluator_run(d->ev, path, &x);
	d->evaluating[0] = 0;
	fv_status_update(d->status, 1);
	if (rc == EINTR || fv_stop_requested) {
		fv_info("%s: evaluation abandoned (stopping); it will be redone", path);
		fv_eval_result_free(&x);
		return EINTR;
	}
	if (rc && !x.failed) {
		/* gone (pruned), no workers, dataset trouble: not the checkpoint's fault */
		if (access(path, F_OK))
			fv_warn("%s: removed before it could be evaluated", path);
		else
			fv_err("%s: not evaluated, will retry: %s", path, fv_err_msg(rc));
		fv_eval_result_free(&x);
		return 0;
	}
	if (x.failed)
		fv_err("%s: cannot evaluate: %s", path, x.error);
	else
		fv_info("%s: step %llu, %llu images, top-1 %.4f, top-5 %.4f, loss %.4f, ECE %.4f (%.1f s)",
			path, (unsigned long long)x.step, (unsigned long long)x.n, x.top1, x.top5, x.loss,
			x.ece, x.eval_s);
	if ((rc = fv_evlog_append(r->log, &x)))
		fv_err("%s: cannot record the evaluation of %s: %s", r->dir, path, fv_err_msg(rc));
	else {
		publish_result(d, r, &x);
		rc = judge(d, r, (long)fv_evlog_count(r->log) - 1, &x);
	}
	fv_eval_result_free(&x);
	return rc == EINTR ? EINTR : 0;
}

/* ---------------------------------------------------------------- scanning */

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Evaluate every checkpoint of r not in its eval.jsonl, oldest first (the
 * names carry zero-padded steps, so name order is step order). */
static int scan(evd *d, run *r)
{
	char dir[4200], path[8400];
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	r->dirty = 0;
	snprintf(dir, sizeof dir, "%s/checkpoints", r->dir);
	DIR *dp = opendir(dir);
	if (!dp)
		return 0; /* no checkpoints yet */
	struct dirent *de;
	while ((de = readdir(dp))) {
		size_t len = strlen(de->d_name);
		if (strncmp(de->d_name, "ckpt-", 5) || len < 10 || strcmp(de->d_name + len - 4, ".fvc"))
			continue;
		if (fv_evlog_find(r->log, de->d_name) >= 0)
			continue;
		if (n == cap) {
			char **m = realloc(names, (cap = cap ? 2 * cap : 16) * sizeof *m);
			if (!m)
				break;
			names = m;
		}
		if (!(names[n] = strdup(de->d_name)))
			break;
		n++;
	}
	closedir(dp);
	if (n)
		qsort(names, n, sizeof *names, by_name);
	for (size_t i = 0; i < n && !rc && !fv_stop_requested; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		rc = evaluate(d, r, path);
		fv_sd_watchdog_tick();
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

/* ---------------------------------------------------------------- events */

static void on_event(evd *d, void *sock)
{
	fv_msg m;
	int rc = fv_msg_recv(sock, &m, ZMQ_DONTWAIT);
	if (rc == EAGAIN || rc == EINTR)
		return;
	if (rc) {
		fv_warn("dropped a malformed event: %s", fv_err_msg(rc));
		fv_msg_clear(&m);
		return;
	}
	if (m.type == FOVEA__MSG_TYPE__MSG_CHECKPOINT_READY) {
		Fovea__CheckpointReady *c;
		if (fv_msg_unpack(&m, &fovea__checkpoint_ready__descriptor, 1 << 20,
				  (ProtobufCMessage **)&c)) {
			fv_warn("dropped a malformed CheckpointReady: %s", fv_err_msg(FV_E_PROTO));
		} else {
			fv_debug("CheckpointReady %s (run %s)", c->path, c->run);
			int known = 0;
			for (int i = 0; i < d->nruns; i++)
				if (!strcmp(c->run, d->runs[i].dir) ||
				    !strncmp(c->path, d->runs[i].dir, strlen(d->runs[i].dir)))
					d->runs[i].dirty = known = 1;
			if (!known) /* a run named another way (relative path): look everywhere */
				for (int i = 0; i < d->nruns; i++)
					d->runs[i].dirty = 1;
			protobuf_c_message_free_unpacked(&c->base, NULL);
		}
	}
	fv_msg_clear(&m);
}

static void drain_events(evd *d, int timeout_ms)
{
	zmq_pollitem_t items[MAX_RUNS];
	for (int i = 0; i < d->nsubs; i++)
		items[i] = (zmq_pollitem_t){ d->subs[i], 0, ZMQ_POLLIN, 0 };
	int rc = zmq_poll(items, d->nsubs, timeout_ms);
	if (rc <= 0)
		return;
	for (int i = 0; i < d->nsubs; i++)
		if (items[i].revents & ZMQ_POLLIN)
			for (int k = 0; k < 1000; k++) { /* drain, bounded */
				int more = 0;
				size_t ml = sizeof more;
				on_event(d, d->subs[i]);
				zmq_getsockopt(d->subs[i], ZMQ_EVENTS, &more, &ml);
				if (!(more & ZMQ_POLLIN))
					break;
			}
}

/* ---------------------------------------------------------------- status */

/* The status endpoint's figures: the first run's last scored checkpoint and
 * its champion, and what is being scored now. */
static void status_fill(void *ctx, fv_status_figs *f)
{
	evd *d = ctx;
	run *r = &d->runs[0];
	fv_status_num(f, "evaluator.runs", d->nruns);
	fv_status_str(f, "evaluator.state", "%s", d->evaluating[0] ? "evaluating" : "idle");
	if (d->evaluating[0])
		fv_status_str(f, "evaluator.checkpoint", "%s", d->evaluating);
	size_t n = r->log ? fv_evlog_count(r->log) : 0;
	if (n) {
		const fv_eval_entry *e = fv_evlog_at(r->log, n - 1);
		fv_status_str(f, "evaluation.checkpoint", "%s", e->ckpt);
		fv_status_num(f, "evaluation.step", (double)e->step);
		fv_status_num(f, "evaluation.top1", e->top1);
		fv_status_num(f, "evaluation.top5", e->top5);
		fv_status_num(f, "evaluation.loss", e->loss);
		fv_status_num(f, "evaluation.scored", (double)n);
	}
	long c = r->log && r->champion[0] ? fv_evlog_find(r->log, r->champion) : -1;
	if (c >= 0) {
		const fv_eval_entry *e = fv_evlog_at(r->log, (size_t)c);
		fv_status_str(f, "champion.checkpoint", "%s", e->ckpt);
		fv_status_num(f, "champion.step", (double)e->step);
		fv_status_num(f, "champion.top1", e->top1);
	}
}

/* ---------------------------------------------------------------- setup */

/* "ipc://DIR/name" when it fits an ipc path, else one under /tmp. */
static void endpoint(char *out, size_t cap, const char *opt, const char *dir, const char *name)
{
	if (opt && *opt)
		snprintf(out, cap, "%s", opt);
	else if (strlen(dir) + strlen(name) < 90)
		snprintf(out, cap, "ipc://%s/%s", dir, name);
	else
		snprintf(out, cap, "ipc:///tmp/fovea-evaluator-%d-%s", (int)getpid(), name);
}

static int open_runs(evd *d)
{
	char *list = strdup(d->o.runs), *save = NULL;
	int rc = 0;
	if (!list)
		return ENOMEM;
	for (char *t = strtok_r(list, ", ", &save); t && !rc; t = strtok_r(NULL, ", ", &save)) {
		if (d->nruns == MAX_RUNS) {
			rc = fv_err_set(FV_E_CONFIG, "--runs: at most %d run directories", MAX_RUNS);
			break;
		}
		run *r = &d->runs[d->nruns];
		size_t len = strlen(t);
		while (len > 1 && t[len - 1] == '/')
			t[--len] = 0;
		snprintf(r->dir, sizeof r->dir, "%s", t);
		if (mkdir(r->dir, 0755) && errno != EEXIST) {
			rc = fv_err_set(errno, "%s: %s", r->dir, strerror(errno));
			break;
		}
		size_t torn = 0;
		if ((rc = fv_evlog_open(&r->log, r->dir, &torn)))
			break;
		d->nruns++;
		if (fv_champion_read(r->dir, r->champion, sizeof r->champion))
			r->champion[0] = 0;
		char fvc[4200];
		snprintf(fvc, sizeof fvc, "%s/champion.fvc", r->dir);
		if (access(fvc, F_OK))
			r->champion[0] = 0; /* rewrite both */
		fv_info("%s: %zu checkpoints already evaluated%s", r->dir, fv_evlog_count(r->log),
			torn ? " (a torn last line was cut)" : "");
		r->dirty = 1;
	}
	free(list);
	if (!rc && !d->nruns)
		rc = fv_err_set(FV_E_CONFIG, "--runs: no run directory given");
	return rc;
}

static int open_sockets(evd *d)
{
	char ep[4300];
	int rc = 0;
	d->zmq = zmq_ctx_new();
	if (!d->zmq)
		return fv_err_set(FV_E_ZMQ, "zmq_ctx_new failed");
	endpoint(ep, sizeof ep, d->o.pub, d->runs[0].dir, "eval.sock");
	d->pub = zmq_socket(d->zmq, ZMQ_PUB);
	fv_sock_limit(d->pub, 0);
	if (zmq_bind(d->pub, ep))
		return fv_err_set(FV_E_ZMQ, "cannot bind --pub %s: %s", ep, zmq_strerror(zmq_errno()));
	fv_info("publishing EvalResult/NewBest on %s", ep);
	/* one SUB per source: the runs' default event sockets, or --sub's list */
	char *list = NULL, *save = NULL;
	if (*d->o.sub && !(list = strdup(d->o.sub)))
		return ENOMEM;
	char *t = list ? strtok_r(list, ", ", &save) : NULL;
	for (int i = 0; list ? t != NULL : i < d->nruns; i++) {
		if (d->nsubs == MAX_RUNS)
			break;
		if (list)
			snprintf(ep, sizeof ep, "%s", t);
		else
			endpoint(ep, sizeof ep, NULL, d->runs[i].dir, "events.sock");
		void *s = zmq_socket(d->zmq, ZMQ_SUB);
		fv_sock_limit(s, 1 << 20);
		zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0);
		d->subs[d->nsubs++] = s;
		if (zmq_connect(s, ep)) {
			rc = fv_err_set(FV_E_ZMQ, "cannot connect --sub %s: %s", ep, zmq_strerror(zmq_errno()));
			break;
		}
		fv_info("listening for CheckpointReady on %s", ep);
		if (list)
			t = strtok_r(NULL, ", ", &save);
	}
	free(list);
	return rc;
}

static void teardown(evd *d)
{
	fv_status_destroy(&d->status);
	fv_evaluator_destroy(&d->ev);
	for (int i = 0; i < d->nsubs; i++)
		zmq_close(d->subs[i]);
	if (d->pub)
		zmq_close(d->pub);
	if (d->zmq)
		zmq_ctx_term(d->zmq);
	for (int i = 0; i < d->nruns; i++)
		fv_evlog_close(&d->runs[i].log);
	fv_cfg_free(table, &d->o);
}

/* ---------------------------------------------------------------- main */

int fv_evaluator_daemon(int argc, char **argv)
{
	evd d = { 0 };
	char aug[4300];
	int npos = 0, help = 0, rc;

	fv_signals_install();
	fv_cfg_defaults(table, &d.o);
	if ((rc = fv_cfg_parse_args(table, &d.o, argc, argv, &npos, &help)))
		goto out;
	if (help) {
		printf("usage: fovea-evaluator --runs RUNDIR[,RUNDIR...] --db DIR [options]\n"
		       "       fovea-evaluator eval --db DIR --ckpt FILE [--json] [--predictions FILE]\n"
		       "       fovea-evaluator explain --ckpt FILE IMAGE --out heat.png [--class N]\n\n"
		       "options:\n");
		fv_cfg_help(table, stdout, 0);
		fv_cfg_free(table, &d.o);
		return 0;
	}
	int lvl = fv_log_level_parse(d.o.log_level);
	fv_log_set_level(lvl > 0 ? lvl : FV_LOG_INFO);
	if (npos) {
		rc = fv_err_set(FV_E_CONFIG, "unexpected argument '%s' (options are --name value)", argv[1]);
		goto out;
	}
	if (!d.o.runs || !*d.o.runs || !d.o.db || !*d.o.db) {
		rc = fv_err_set(FV_E_CONFIG, "--runs RUNDIR and --db DIR are required");
		goto out;
	}
	if ((rc = open_runs(&d)) || (rc = open_sockets(&d)))
		goto out;
	endpoint(aug, sizeof aug, d.o.augment_bind, d.runs[0].dir, "eval-augment.sock");
	/* external workers get 3 s to connect before local ones are started */
	int wait_ms = *d.o.augment_bind || !d.o.workers ? 3000 : 0;
	fv_eval_opts eo = { .db = d.o.db, .augment_bind = aug, .workers = (int)d.o.workers,
			    .worker_threads = (int)d.o.worker_threads, .wait_ms = wait_ms,
			    .threads = (int)d.o.threads, .batch = (int)d.o.batch,
			    .window = (int)d.o.window, .stop = &fv_stop_requested,
			    .curve_key = *d.o.augment_curve_key ? d.o.augment_curve_key : NULL,
			    .curve_pub = *d.o.augment_curve_pub ? d.o.augment_curve_pub : NULL,
			    .curve_allow = *d.o.augment_allow ? d.o.augment_allow : NULL };
	if ((rc = fv_evaluator_new(&d.ev, &eo)))
		goto out;
	fv_status_opts so = { .endpoint = d.o.status_ep, .name = "evaluator", .fill = status_fill, .fill_ctx = &d,
			      .curve_secret_key = d.o.augment_curve_key, .curve_public_key = d.o.augment_curve_pub,
			      .curve_allow = d.o.augment_allow };
	if ((rc = fv_status_new(&d.status, d.zmq, &so)))
		goto out;
	fv_status_update(d.status, 1);
	fv_sd_ready();
	fv_info("ready: watching %d run(s), augment workers connect to %s", d.nruns,
		fv_evaluator_endpoint(d.ev));
	for (int i = 0; i < d.nruns; i++)
		judge_backlog(&d, &d.runs[i]);

	int64_t next_scan = 0;
	while (!fv_stop_requested) {
		drain_events(&d, 0);
		int64_t now = fv_now_ms();
		for (int i = 0; i < d.nruns && !fv_stop_requested; i++)
			if (d.runs[i].dirty || now >= next_scan)
				if (scan(&d, &d.runs[i]) == EINTR)
					break;
		if (now >= next_scan)
			next_scan = fv_now_ms() + d.o.scan_ms;
		fv_sd_status("idle: %d run(s) watched", d.nruns);
		fv_sd_watchdog_tick();
		fv_status_update(d.status, 0);
		int wait = (int)(next_scan - fv_now_ms());
		drain_events(&d, wait < 0 ? 0 : wait > 250 ? 250 : wait);
	}
	rc = 0;
	fv_sd_stopping();
	fv_info("stopping");
out:
	if (rc)
		fprintf(stderr, "fovea-evaluator: %s\n", fv_err_msg(rc));
	teardown(&d);
	return rc ? 1 : 0;
}
