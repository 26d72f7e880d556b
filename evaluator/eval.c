/* evaluator/eval.c — scoring one checkpoint on the val split.
 *
 * The checkpoint names its model, input shape, classes and eval
 * preprocessing (meta: mean=, std=, resize_shorter=); the evaluator builds
 * that model, loads the weights strictly, and runs the val split through the
 * trainer's feed (key order, last batch partial) over the augment workers,
 * so the pixels match what the trainer's own evaluation saw. The compiled
 * net is kept while successive checkpoints share model, shape and classes:
 * a run's checkpoints normally all do, and compiling plans costs more than
 * loading weights. */
#include "evaluator/evaluator.h"
#include "trainer/feed.h"
#include "nn/ckpt.h"
#include "nn/models.h"
#include "nn/net.h"
#include "fv_score.h"
#include "fv_error.h"
#include "fv_log.h"
#include "fv_daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct fv_evaluator {
	fv_eval_opts o;
	char endpoint[4200];
	fv_store *store;
	fv_augc *augc;
	int spawned;
	uint64_t epoch_ids;     /* unique per evaluation: (epoch, batch) ids never repeat */
	/* the compiled net of the last checkpoint, reused while the shape holds */
	fv_net *net;
	char net_key[1200];
	float *logits;          /* batch x classes, compacted rows */
	int *labels, *pred;
	uint64_t split_override; /* fv_evaluator_set_split */
	uint64_t split_key;      /* this run's: 0 = no old/new split */
	uint64_t n_old, n_new, ok_old, ok_new;
};

void fv_evaluator_set_split(fv_evaluator *ev, uint64_t key)
{
	ev->split_override = key;
}

/* Codes that, while reading and loading a checkpoint, mean the file is at
 * fault. Not ENOENT (pruned by the trainer meanwhile: nothing to record),
 * nor ENOMEM or EIO (worth a retry). */
static int ckpt_fault(int rc)
{
	return rc == FV_E_CORRUPT || rc == FV_E_FORMAT || rc == FV_E_UNSUPPORTED ||
	       rc == FV_E_MISMATCH || rc == FV_E_CONFIG || rc == FV_E_NOTFOUND || rc == EACCES ||
	       rc == EISDIR;
}

int fv_evaluator_new(fv_evaluator **out, const fv_eval_opts *o)
{
	int rc;
	fv_evaluator *ev = calloc(1, sizeof *ev);
	*out = NULL;
	if (!ev)
		return ENOMEM;
	ev->o = *o;
	if (ev->o.batch < 1)
		ev->o.batch = 256;
	if (ev->o.window < 1)
		ev->o.window = 4;
	if ((rc = fv_store_open(o->db, FV_STORE_RDONLY, 0, &ev->store)))
		goto fail;
	if (o->augment_bind && *o->augment_bind)
		snprintf(ev->endpoint, sizeof ev->endpoint, "%s", o->augment_bind);
	else
		snprintf(ev->endpoint, sizeof ev->endpoint, "ipc:///tmp/fovea-eval-%d.sock",
			 (int)getpid());
	fv_augc_opts ao;
	fv_augc_opts_default(&ao);
	ao.endpoint = ev->endpoint;
	ao.window = ev->o.window;
	ao.in_order = 1;
	ao.curve_secret_key = o->curve_key;
	ao.curve_public_key = o->curve_pub;
	ao.curve_allow = o->curve_allow;
	ao.policy = FV_AUGC_SKIP; /* a bad val image is left out and counted, not replaced */
	if ((rc = fv_augc_new(&ev->augc, &ao)))
		goto fail;
	*out = ev;
	return 0;
fail:
	fv_evaluator_destroy(&ev);
	return rc;
}

void fv_evaluator_destroy(fv_evaluator **p)
{
	fv_evaluator *ev = *p;
	if (!ev)
		return;
	fv_augc_destroy(&ev->augc);
	fv_store_close(&ev->store);
	fv_net_destroy(&ev->net);
	free(ev->logits);
	free(ev->labels);
	free(ev->pred);
	free(ev);
	*p = NULL;
}

/* Local workers, once, if no external one connected within wait_ms; with
 * none allowed, FV_E_TIMEOUT when none is connected. */
static int ensure_workers(fv_evaluator *ev)
{
	int cap, waited = 0;
	if (ev->spawned)
		return 0;
	while (!fv_augc_workers(ev->augc, &cap) && waited < ev->o.wait_ms &&
	       !(ev->o.stop && *ev->o.stop)) {
		usleep(50000);
		waited += 50;
	}
	if (fv_augc_workers(ev->augc, &cap))
		return 0;
	/* rather than block in the feed for minutes (and past a SIGTERM) */
	if (ev->o.workers <= 0)
		return fv_err_set(FV_E_TIMEOUT, "no augment workers connected to %s (and --workers 0)",
				  fv_augc_endpoint(ev->augc));
	fv_info("starting %d local augment workers on %s", ev->o.workers, fv_augc_endpoint(ev->augc));
	int rc = fv_augc_spawn_local(ev->augc, ev->o.workers, ev->o.worker_threads > 0 ? ev->o.worker_threads : 1);
	if (rc)
		return fv_err_set(rc, "cannot start local augment workers: %s", fv_err_msg(rc));
	ev->spawned = 1;
	return 0;
}

/* "a,b,c" (or one value for every channel) into v[3]. */
static int parse3(const char *s, float v[3])
{
	int n = 0;
	while (s && *s && n < 3) {
		char *end;
		double d = strtod(s, &end);
		if (end == s)
			return FV_E_FORMAT;
		v[n++] = (float)d;
		s = end;
		while (*s == ',' || *s == ' ')
			s++;
	}
	if (!n)
		return FV_E_FORMAT;
	for (int k = n; k < 3; k++)
		v[k] = v[0];
	return 0;
}

/* The eval transform the checkpoint's trainer used. */
static int eval_params(const fv_ckpt *c, const fv_ckpt_info *i, fv_aug_params *p)
{
	const char *mean = fv_ckpt_meta(c, "mean"), *std = fv_ckpt_meta(c, "std");
	const char *rs = fv_ckpt_meta(c, "resize_shorter");
	fv_aug_defaults(p, FV_AUG_EVAL, i->in_c, i->in_h, i->in_w);
	p->layout = FV_OUT_F32_NCHW;
	if ((mean && parse3(mean, p->mean)) || (std && parse3(std, p->std)))
		return fv_err_set(FV_E_FORMAT, "bad mean/std in the checkpoint's metadata");
	for (int k = 0; k < 3; k++)
		if (!(p->std[k] > 0))
			return fv_err_set(FV_E_FORMAT, "std %g in the checkpoint's metadata", p->std[k]);
	long r = rs ? strtol(rs, NULL, 10) : -1;
	if (r < 0) /* the trainer's "auto": 8/7 of the input from 64 px up */
		r = i->in_h < 64 || i->in_w < 64 ? 0 : (i->in_h < i->in_w ? i->in_h : i->in_w) * 8 / 7;
	p->resize_shorter = (int)r;
	return fv_aug_params_check(p);
}

/* Build and compile the checkpoint's model unless the cached one fits. */
static int prepare_net(fv_evaluator *ev, const fv_ckpt_info *i)
{
	char key[sizeof ev->net_key];
	int rc;
	snprintf(key, sizeof key, "%s|%dx%dx%d|%d", i->model ? i->model : "", i->in_c, i->in_h,
		 i->in_w, i->classes);
	if (ev->net && !strcmp(key, ev->net_key))
		return 0;
	fv_net_destroy(&ev->net);
	ev->net_key[0] = 0;
	free(ev->logits), free(ev->labels), free(ev->pred);
	ev->logits = malloc((size_t)ev->o.batch * i->classes * sizeof *ev->logits);
	ev->labels = malloc((size_t)ev->o.batch * sizeof *ev->labels);
	ev->pred = malloc((size_t)ev->o.batch * sizeof *ev->pred);
	if (!ev->logits || !ev->labels || !ev->pred)
		return ENOMEM;
	if ((rc = fv_model_build(i->model ? i->model : "", i->in_c, i->in_h, i->in_w, i->classes,
				 &ev->net)))
		return rc;
	fv_net_opts no = { .batch = ev->o.batch, .threads = ev->o.threads, .inference_only = 1 };
	if ((rc = fv_net_compile(ev->net, &no))) {
		fv_net_destroy(&ev->net);
		return rc;
	}
	snprintf(ev->net_key, sizeof ev->net_key, "%s", key);
	return 0;
}

/* The next line the feed's trace wrote: "epoch batch key key ...". */
static int trace_keys(char *buf, size_t len, size_t *pos, uint64_t *keys, int max)
{
	int n = 0;
	char *s = buf + *pos, *end = memchr(s, '\n', len - *pos);
	if (!end)
		return -1;
	*end = 0;
	strtoull(s, &s, 10);
	strtoull(s, &s, 10);
	while (n < max && *s) {
		char *e;
		keys[n] = strtoull(s, &e, 10);
		if (e == s)
			break;
		s = e;
		n++;
	}
	*pos = (size_t)(end - buf) + 1;
	return n;
}

static int fill_result(fv_eval_result *r, const fv_score *s, const fv_ckpt_info *i)
{
	int k = i->classes;
	r->n = s->n;
	r->top1 = fv_score_top1(s);
	r->top5 = fv_score_top5(s);
	r->loss = fv_score_loss(s);
	r->ece = fv_score_ece(s);
	r->classes = k;
	r->per_class = malloc((size_t)k * sizeof *r->per_class);
	r->confusion = malloc((size_t)k * k * sizeof *r->confusion);
	if (!r->per_class || !r->confusion)
		return ENOMEM;
	for (int c = 0; c < k; c++)
		r->per_class[c] = fv_score_class_acc(s, c);
	memcpy(r->confusion, s->confusion, (size_t)k * k * sizeof *r->confusion);
	if (i->class_names && (r->class_names = calloc((size_t)k, sizeof *r->class_names)))
		for (int c = 0; c < k; c++)
			r->class_names[c] = strdup(i->class_names[c] ? i->class_names[c] : "");
	return 0;
}

/* Run the val split through the net, scoring into s. */
static int score_split(fv_evaluator *ev, const fv_aug_params *p, int classes, fv_score *s,
		       uint64_t *dropped)
{
	fv_feed *f = NULL;
	char *tbuf = NULL;
	size_t tlen = 0, tpos = 0;
	FILE *trace = NULL;
	uint64_t *keys = NULL;
	uint32_t ds_classes;
	fv_class *cls;
	int rc;

	if ((rc = fv_store_classes(ev->store, &cls, &ds_classes)))
		return rc;
	fv_store_classes_free(&cls, ds_classes);
	fv_feed_opts fo = { .split = 1, .batch = ev->o.batch, .seed = 1, .order = FV_FEED_SEQUENTIAL,
			    .drop_last = 0, .classes = (int)(ds_classes > (uint32_t)classes ? ds_classes : (uint32_t)classes),
			    .params = *p, .window = ev->o.window, .tag = FV_FEED_TAG_EVAL };
	if ((rc = fv_feed_new(&f, ev->store, ev->augc, &fo)))
		return rc;
	if (ev->o.predictions || ev->split_key) {
		if (!(trace = open_memstream(&tbuf, &tlen)) ||
		    !(keys = malloc((size_t)ev->o.batch * sizeof *keys))) {
			rc = ENOMEM;
			goto out;
		}
		fv_feed_trace(f, trace);
	}
	if ((rc = fv_feed_epoch(f, ++ev->epoch_ids, 0, 0, NULL)))
		goto out;
	const void *x; /* float NCHW: the evaluator's transform keeps the default layout */
	const int *y;
	int n;
	while (!(rc = fv_feed_next(f, &x, &y, &n, NULL))) {
		if (ev->o.stop && *ev->o.stop) {
			rc = fv_err_set(EINTR, "evaluation abandoned: stopping");
			break;
		}
		if (!n)
			continue;
		if ((rc = fv_net_forward(ev->net, x, n, 0)))
			break;
		const float *lg = fv_net_logits(ev->net);
		int m = 0, nk = -1;
		/* records of classes added after this checkpoint was trained
		 * cannot be scored by it: left out and counted */
		for (int j = 0; j < n; j++) {
			if (y[j] < 0 || y[j] >= classes) {
				(*dropped)++;
				continue;
			}
			memcpy(ev->logits + (size_t)m * classes, lg + (size_t)j * classes,
			       (size_t)classes * sizeof *lg);
			ev->labels[m++] = y[j];
		}
		fv_score_add(s, ev->logits, ev->labels, m, ev->pred);
		if (trace) {
			fflush(trace);
			nk = trace_keys(tbuf, tlen, &tpos, keys, ev->o.batch);
			if (nk != n) {
				rc = fv_err_set(FV_E_INTERNAL, "feed trace: %d keys for %d images", nk, n);
				break;
			}
			for (int j = 0, q = 0; j < n; j++) {
				if (y[j] < 0 || y[j] >= classes)
					continue;
				int hit = ev->pred[q] == y[j];
				if (keys[j] < ev->split_key)
					ev->n_old++, ev->ok_old += hit;
				else
					ev->n_new++, ev->ok_new += hit;
				if (ev->o.predictions)
					fprintf(ev->o.predictions, "%" PRIu64 " %d %d\n", keys[j], y[j], ev->pred[q]);
				q++;
			}
		}
	}
	if (rc == FV_E_NOTFOUND)
		rc = 0;
	if (!rc && fv_feed_bad_samples(f))
		fv_warn("%llu val images failed to decode and were left out",
			(unsigned long long)fv_feed_bad_samples(f));
out:
	fv_feed_destroy(&f);
	if (trace)
		fclose(trace);
	free(tbuf);
	free(keys);
	return rc;
}

int fv_evaluator_run(fv_evaluator *ev, const char *path, fv_eval_result *r)
{
	fv_ckpt *c = NULL;
	fv_score s = { 0 };
	fv_aug_params p;
	fv_store_meta meta;
	uint64_t dropped = 0;
	int64_t t0 = fv_now_ms();
	int rc, fault = 0;

	memset(r, 0, sizeof *r);
	snprintf(r->path, sizeof r->path, "%s", path);
	r->top1 = r->top5 = r->loss = r->ece = NAN;
	r->top1_old = r->top1_new = NAN;
	fv_err_clear();
	if ((rc = fv_ckpt_open(&c, path))) {
		fault = 1;
		goto out;
	}
	const fv_ckpt_info *i = fv_ckpt_info_get(c);
	snprintf(r->model, sizeof r->model, "%s", i->model ? i->model : "");
	r->step = i->step;
	r->epoch = i->epoch;
	r->dataset_version = i->dataset_version;
	fault = 1;
	if (i->classes < 1) {
		rc = fv_err_set(FV_E_FORMAT, "%s: no classes", path);
		goto out;
	}
	if ((rc = eval_params(c, i, &p)) || (rc = prepare_net(ev, i)))
		goto out;
	const char *round = fv_ckpt_meta(c, "round"), *from = fv_ckpt_meta(c, "new_from_key");
	r->round = round ? (uint32_t)strtoul(round, NULL, 10) : 0;
	ev->split_key = ev->split_override ? ev->split_override : from ? strtoull(from, NULL, 10) : 0;
	r->split_key = ev->split_key;
	ev->n_old = ev->n_new = ev->ok_old = ev->ok_new = 0;
	if ((rc = fv_ckpt_load_params(c, fv_net_params(ev->net), fv_net_nparams(ev->net), NULL, NULL))) {
		ev->net_key[0] = 0; /* a strict load changes nothing, but be safe */
		goto out;
	}
	if ((rc = fv_net_sync_to_device(ev->net)))
		goto out;
	fault = 0;
	if ((rc = fv_score_init(&s, i->classes)) || (rc = fv_store_meta_get(ev->store, &meta)))
		goto out;
	r->val_version = meta.version;
	if ((rc = ensure_workers(ev)) || (rc = score_split(ev, &p, i->classes, &s, &dropped)))
		goto out;
	if (dropped)
		fv_warn("%s: %llu val images of classes the checkpoint does not know were left out",
			path, (unsigned long long)dropped);
	if (!s.n) {
		rc = fv_err_set(FV_E_NOTFOUND, "%s: no val images to score", fv_store_dir(ev->store));
		goto out;
	}
	rc = fill_result(r, &s, i);
	r->n_old = ev->n_old;
	r->n_new = ev->n_new;
	r->top1_old = ev->n_old ? (double)ev->ok_old / ev->n_old : NAN;
	r->top1_new = ev->n_new ? (double)ev->ok_new / ev->n_new : NAN;
out:
	if (rc && fault && ckpt_fault(rc)) {
		r->failed = 1;
		snprintf(r->error, sizeof r->error, "%s", fv_err_msg(rc));
	}
	r->eval_s = (double)(fv_now_ms() - t0) / 1000.0;
	r->time = (int64_t)time(NULL);
	fv_score_free(&s);
	fv_ckpt_close(&c);
	return rc;
}

const char *fv_evaluator_endpoint(const fv_evaluator *ev)
{
	return fv_augc_endpoint(ev->augc);
}
