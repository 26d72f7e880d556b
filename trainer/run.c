/* trainer/run.c — setting a training run up from its options, checkpoints,
 * resume and evaluation. main.c reads as the story; this is the detail. */
#include "trainer/trainer.h"
#include "nn/models.h"
#include "nn/ckpt.h"
#include "nn/cuda/fv_cuda.h"
#include "fv_error.h"
#include "fv_log.h"
#include "fv_score.h"
#include "fv_daemon.h"
#include "fv_status.h"
#include "trainer/plan.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

/* ------------------------------------------------------------ input shape */

static int parse_input(const char *s, int *c, int *h, int *w)
{
	char tail;
	if (sscanf(s, "%dx%dx%d%c", c, h, w, &tail) != 3 || *c <= 0 || *h <= 0 || *w <= 0 ||
	    (*c != 1 && *c != 3))
		return fv_err_set(FV_E_CONFIG, "--input: '%s' is not CxHxW with C 1 or 3 (e.g. 3x224x224)", s);
	return 0;
}

/* The first train record tells the dataset's image size and channels; for
 * raw images it also gives mean/std measured over up to 2000 records. */
static int probe_dataset(fv_run *r, int *c, int *h, int *w)
{
	uint64_t *keys;
	size_t n;
	fv_store_rtxn *t;
	int rc = fv_store_split_index(r->store, 0, &keys, NULL, &n, NULL);
	if (rc)
		return rc;
	if (!n) {
		free(keys);
		return fv_err_set(FV_E_NOTFOUND, "the train split of %s is empty: ingest some images first",
				  r->o.db);
	}
	double sum[3] = { 0 }, sq[3] = { 0 }, cnt = 0;
	int raw = 1;
	if (!(rc = fv_store_read_begin(r->store, &t))) {
		size_t m = n < 2000 ? n : 2000;
		for (size_t i = 0; i < m && !rc; i++) {
			fv_record rec;
			if ((rc = fv_store_get(t, keys[i * (n / m)], &rec)))
				break;
			if (i == 0) {
				*c = rec.channels;
				*h = rec.height;
				*w = rec.width;
			}
			if (rec.encoding != 0 || rec.channels > 3) {
				raw = 0;
				break;
			}
			for (size_t p = 0; p < rec.data_len; p++) {
				double v = rec.data[p];
				sum[p % rec.channels] += v;
				sq[p % rec.channels] += v * v;
			}
			cnt += (double)rec.data_len / rec.channels;
		}
		fv_store_read_end(&t);
	}
	free(keys);
	if (rc)
		return rc;
	static const float in_mean[3] = { 123.675f, 116.28f, 103.53f }, in_std[3] = { 58.395f, 57.12f, 57.375f };
	for (int k = 0; k < 3; k++) {
		if (raw && cnt > 0) {
			int src = k < *c ? k : 0;
			r->mean[k] = (float)(sum[src] / cnt);
			r->std[k] = (float)sqrt(fmax(sq[src] / cnt - (sum[src] / cnt) * (sum[src] / cnt), 1.0));
		} else {
			r->mean[k] = in_mean[k];
			r->std[k] = in_std[k];
		}
	}
	return 0;
}

static int parse_floats(const char *s, const char *what, float *out)
{
	char *end;
	int n = 0;
	while (n < 3) {
		out[n++] = strtof(s, &end);
		if (end == s)
			return fv_err_set(FV_E_CONFIG, "--%s: '%s' is not a list of numbers", what, s);
		if (*end != ',')
			break;
		s = end + 1;
	}
	for (int k = n; k < 3; k++)
		out[k] = out[0];
	return 0;
}

/* The CUDA input path exists in CUDA=1 builds only (nn/cuda/input.cu; the
 * Makefile makes the linker keep it there): elsewhere these are NULL. */
#pragma weak fv_cuda_input_new
#pragma weak fv_cuda_input_destroy
#pragma weak fv_cuda_input_buffer
#pragma weak fv_cuda_input_submit
#pragma weak fv_cuda_input_load

static void transforms(fv_run *r, fv_aug_params *tr, fv_aug_params *ev)
{
	const fv_train_opts *o = &r->o;
	int small = r->in_h < 64 || r->in_w < 64;

	fv_aug_defaults(tr, FV_AUG_TRAIN, r->in_c, r->in_h, r->in_w);
	fv_aug_defaults(ev, FV_AUG_EVAL, r->in_c, r->in_h, r->in_w);
	tr->rrc = o->rrc == 0 ? !small : o->rrc == 1;
	tr->scale_min = (float)o->scale_min;
	tr->pad = o->pad >= 0 ? (int)o->pad : small ? 4 : 0;
	tr->flip_p = (float)o->flip_p;
	tr->brightness = (float)o->brightness;
	tr->contrast = (float)o->contrast;
	tr->saturation = (float)o->saturation;
	tr->hue = (float)o->hue;
	tr->pca_lighting = (float)o->pca_lighting;
	tr->erase_p = (float)o->erase_p;
	ev->resize_shorter = o->resize_shorter >= 0 ? (int)o->resize_shorter
			     : small ? 0 : (r->in_h < r->in_w ? r->in_h : r->in_w) * 8 / 7;
	for (int k = 0; k < 3; k++) {
		tr->mean[k] = ev->mean[k] = r->mean[k];
		tr->std[k] = ev->std[k] = r->std[k];
	}
	/* a GPU normalises uint8 itself: a quarter of the bytes from the workers */
	tr->layout = ev->layout = r->gin ? FV_OUT_U8_NHWC : FV_OUT_F32_NCHW;
}

/* ------------------------------------------------------------ setup */

static int load_classes(fv_run *r)
{
	fv_class *cls;
	uint32_t n;
	int rc = fv_store_classes(r->store, &cls, &n);
	if (rc)
		return rc;
	r->nclasses = n;
	r->class_names = calloc(n ? n : 1, sizeof *r->class_names);
	for (uint32_t i = 0; i < n && r->class_names; i++)
		r->class_names[i] = strdup(cls[i].name ? cls[i].name : cls[i].id);
	fv_store_classes_free(&cls, n);
	if (!r->class_names)
		return ENOMEM;
	if (n < 2)
		return fv_err_set(FV_E_NOTFOUND, "%s has %u classes: training needs at least 2", r->o.db, n);
	return 0;
}

/* Stages for --unfreeze-every: the first name component of frozen params,
 * in table order ("conv1", "layer1", ..., "fc"). */
static void collect_frozen_stages(fv_run *r)
{
	fv_param *p = fv_net_params(r->net);
	size_t np = fv_net_nparams(r->net);
	for (size_t i = 0; i < np; i++) {
		if (!p[i].frozen || p[i].kind == FV_PARAM_BUFFER)
			continue;
		size_t len = strcspn(p[i].name, ".");
		int seen = 0;
		for (int s = 0; s < r->nfrozen_stages; s++)
			seen |= strlen(r->frozen_stages[s]) == len && !strncmp(r->frozen_stages[s], p[i].name, len);
		if (!seen && r->nfrozen_stages < 64)
			r->frozen_stages[r->nfrozen_stages++] = strndup(p[i].name, len);
	}
}

void fv_run_unfreeze_next(fv_run *r)
{
	if (!r->nfrozen_stages)
		return;
	char *stage = r->frozen_stages[--r->nfrozen_stages], pat[300];
	size_t matched = 0;
	snprintf(pat, sizeof pat, "%s.*", stage);
	fv_params_freeze(fv_net_params(r->net), fv_net_nparams(r->net), pat, 0, &matched);
	fv_info("unfreezing %s (%zu tensors)", stage, matched);
	free(stage);
}

static int build_teacher(fv_run *r)
{
	fv_ckpt *c;
	int rc = fv_ckpt_open(&c, r->o.teacher);
	if (rc)
		return rc;
	const fv_ckpt_info *ti = fv_ckpt_info_get(c);
	if (ti->classes != (int)r->nclasses || ti->in_c != r->in_c || ti->in_h != r->in_h || ti->in_w != r->in_w) {
		rc = fv_err_set(FV_E_MISMATCH, "teacher %s is %dx%dx%d with %d classes; the student is %dx%dx%d with %u",
				r->o.teacher, ti->in_c, ti->in_h, ti->in_w, ti->classes, r->in_c, r->in_h, r->in_w,
				r->nclasses);
		goto out;
	}
	if ((rc = fv_model_build(ti->model, ti->in_c, ti->in_h, ti->in_w, ti->classes, &r->teacher)))
		goto out;
	fv_net_opts no = { .batch = (int)r->o.batch, .threads = (int)r->o.threads, .inference_only = 1 };
	if ((rc = fv_net_compile(r->teacher, &no)))
		goto out;
	fv_ckpt_load_opts lo = { 0 };
	size_t loaded;
	if ((rc = fv_ckpt_load_params(c, fv_net_params(r->teacher), fv_net_nparams(r->teacher), &lo, &loaded)))
		goto out;
	rc = fv_net_sync_to_device(r->teacher);
	r->soft = malloc((size_t)r->o.batch * r->nclasses * sizeof *r->soft);
	if (!r->soft)
		rc = ENOMEM;
	fv_info("distilling from %s (%s), alpha %.2f, temperature %.1f", r->o.teacher, ti->model,
		r->o.kd_alpha, r->o.kd_temperature);
out:
	fv_ckpt_close(&c);
	return rc;
}

static int init_from(fv_run *r)
{
	fv_ckpt *c;
	size_t loaded, np = fv_net_nparams(r->net);
	unsigned char *status = calloc(np, 1);
	int rc = status ? fv_ckpt_open(&c, r->o.init) : ENOMEM;
	if (rc) {
		free(status);
		return rc;
	}
	fv_ckpt_load_opts lo = { .partial = 1, .skip = *r->o.init_skip ? r->o.init_skip : NULL, .status = status };
	if (!(rc = fv_ckpt_load_params(c, fv_net_params(r->net), np, &lo, &loaded))) {
		fv_param *p = fv_net_params(r->net);
		for (size_t i = 0; i < np; i++)
			if (status[i] == FV_CKPT_SHAPE)
				fv_info("--init: %s has another shape in %s: left freshly initialized", p[i].name, r->o.init);
		fv_info("--init: loaded %zu of %zu tensors from %s", loaded, np, r->o.init);
		if (!loaded)
			rc = fv_err_set(FV_E_MISMATCH, "--init: %s shares no parameter with %s", r->o.init, r->o.model);
		else
			rc = fv_net_sync_to_device(r->net);
	}
	fv_ckpt_close(&c);
	free(status);
	return rc;
}

int fv_run_setup(fv_run *r)
{
	fv_train_opts *o = &r->o;
	fv_store_meta meta;
	int rc, dc = 0, dh = 0, dw = 0;

	snprintf(r->ckpt_dir, sizeof r->ckpt_dir, "%s/checkpoints", o->out);
	if ((rc = fv_store_open(o->db, FV_STORE_RDONLY, 0, &r->store)))
		return rc;
	if ((rc = fv_store_meta_get(r->store, &meta)) || (rc = load_classes(r)))
		return rc;
	if ((rc = probe_dataset(r, &dc, &dh, &dw)))
		return rc;
	if (*o->input) {
		if ((rc = parse_input(o->input, &r->in_c, &r->in_h, &r->in_w)))
			return rc;
	} else {
		r->in_c = dc == 1 ? 1 : 3;
		r->in_h = dh;
		r->in_w = dw;
	}
	if (strcmp(o->mean, "auto") && (rc = parse_floats(o->mean, "mean", r->mean)))
		return rc;
	if (strcmp(o->std, "auto") && (rc = parse_floats(o->std, "std", r->std)))
		return rc;
	fv_info("dataset %s: version %llu, %llu train / %llu val records, %u classes; input %dx%dx%d",
		o->db, (unsigned long long)meta.version, (unsigned long long)meta.split[0],
		(unsigned long long)meta.split[1], r->nclasses, r->in_c, r->in_h, r->in_w);

	/* the model */
	if ((rc = fv_model_build(o->model, r->in_c, r->in_h, r->in_w, (int)r->nclasses, &r->net)))
		return rc;
	fv_net_opts no = { .batch = (int)o->batch, .threads = (int)o->threads, .seed = (uint64_t)o->seed,
			   .device = o->device };
	if ((rc = fv_net_compile(r->net, &no)))
		return rc;
	fv_info("model %s: %.2fM parameters, %.1f MFLOPs per image", o->model,
		fv_net_param_count(r->net) / 1e6, 2 * fv_net_macs(r->net) / 1e6);
	if (*o->init && (rc = init_from(r)))
		return rc;
	if (*o->freeze) {
		size_t matched;
		if ((rc = fv_params_freeze(fv_net_params(r->net), fv_net_nparams(r->net), o->freeze, 1, &matched)))
			return rc;
		fv_info("--freeze %s: %zu tensors frozen", o->freeze, matched);
		if (o->unfreeze_every)
			collect_frozen_stages(r);
	}
	if (*o->teacher && (rc = build_teacher(r)))
		return rc;

	/* optimizer and schedule */
	fv_sgd_opts so = { .momentum = (float)o->momentum, .nesterov = o->nesterov,
			   .weight_decay = (float)o->weight_decay, .decoupled = o->decoupled_wd,
			   .decay_bn_and_bias = o->decay_bn_bias, .clip_norm = (float)o->clip_norm,
			   .ema_decay = (float)o->ema };
	if ((rc = fv_sgd_new(&r->sgd, fv_net_params(r->net), fv_net_nparams(r->net), &so)))
		return rc;
	fv_net_dev dev;
	/* on a GPU the update runs there, fused; the CPU keeps its host step */
	if (!fv_net_device(r->net, &dev, 1) && (rc = fv_sgd_bind(r->sgd, &dev)) && rc != FV_E_UNSUPPORTED)
		return rc;
	if ((rc = fv_sched_parse(&r->sched, o->schedule, fv_sched_scale_lr(o->lr, (int)o->batch),
				 (double)o->epochs)))
		return rc;
	r->sched.warmup_epochs = o->warmup_epochs;
	r->sched.lr_min = o->lr_min;

	/* the data path; on a GPU (no teacher, which wants host floats) uint8
	 * batches through pinned slots, normalised on the device */
	if (fv_cuda_input_new && !r->teacher) {
		rc = fv_cuda_input_new(&r->gin, r->net, 2, r->mean, r->std);
		if (rc == FV_E_UNSUPPORTED)
			rc = 0;
		if (rc)
			return rc;
		if (r->gin)
			fv_info("input: uint8 batches staged on the GPU, normalised there");
	}
	r->zmq = zmq_ctx_new();
	fv_augc_opts ao;
	fv_augc_opts_default(&ao);
	char endpoint[4200];
	if (*o->augment_bind)
		snprintf(endpoint, sizeof endpoint, "%s", o->augment_bind);
	else if (strlen(o->out) < 80)
		snprintf(endpoint, sizeof endpoint, "ipc://%s/augment.sock", o->out);
	else
		snprintf(endpoint, sizeof endpoint, "ipc:///tmp/fovea-train-%d.sock", (int)getpid());
	ao.endpoint = endpoint;
	ao.window = (int)o->window * 2; /* a train and an eval feed may overlap at epoch ends */
	ao.in_order = 1;
	ao.policy = o->bad_sample_policy == POLICY_REPLACE ? FV_AUGC_REPLACE
		    : o->bad_sample_policy == POLICY_SKIP ? FV_AUGC_SKIP : FV_AUGC_FAIL;
	ao.replace = fv_feed_route_replace;
	ao.replace_ctx = &r->router;
	ao.curve_secret_key = *o->augment_curve_key ? o->augment_curve_key : NULL;
	ao.curve_public_key = *o->augment_curve_pub ? o->augment_curve_pub : NULL;
	ao.curve_allow = *o->augment_allow ? o->augment_allow : NULL;
	if ((rc = fv_augc_new(&r->augc, &ao)))
		return rc;
	fv_aug_params tr, ev;
	transforms(r, &tr, &ev);
	fv_feed_opts fo = { .split = 0, .batch = (int)o->batch, .seed = (uint64_t)o->seed,
			    .order = o->sampler == SAMPLER_BALANCED ? FV_FEED_BALANCED : FV_FEED_SHUFFLE,
			    .drop_last = 1, .classes = (int)r->nclasses, .params = tr, .window = (int)o->window };
	if ((rc = fv_feed_new(&r->train, r->store, r->augc, &fo)))
		return rc;
	fo.split = 1;
	fo.order = FV_FEED_SEQUENTIAL;
	fo.drop_last = 0;
	fo.params = ev;
	fo.tag = FV_FEED_TAG_EVAL;
	if ((rc = fv_feed_new(&r->eval, r->store, r->augc, &fo)))
		return rc;
	if (*o->trace) {
		if (!(r->trace = fopen(o->trace, "a")))
			return fv_err_set(errno, "--trace %s: %s", o->trace, strerror(errno));
		fv_feed_trace(r->train, r->trace);
		fv_feed_trace_defer(r->train, 1); /* a line once fv_run_next hands the batch out */
	}
	r->router.train = r->train;
	r->router.eval = r->eval;
	if (o->sampler == SAMPLER_WEIGHTED) {
		uint32_t *labels;
		uint64_t *keys;
		size_t n;
		if ((rc = fv_store_split_index(r->store, 0, &keys, &labels, &n, NULL)))
			return rc;
		r->class_weights = malloc(r->nclasses * sizeof *r->class_weights);
		if (r->class_weights)
			fv_plan_class_weights(r->class_weights, labels, n, (int)r->nclasses);
		free(keys);
		free(labels);
		if (!r->class_weights)
			return ENOMEM;
	}
	/* workers: the embedded default when nobody else provides them */
	if (o->workers > 0) {
		int cap, waited = 0;
		while (*o->augment_bind && !fv_augc_workers(r->augc, &cap) && waited < 3000 && !fv_stop_requested) {
			usleep(100000);
			waited += 100;
		}
		if (!fv_augc_workers(r->augc, &cap)) {
			fv_info("starting %ld local augment workers on %s", o->workers, fv_augc_endpoint(r->augc));
			if ((rc = fv_augc_spawn_local(r->augc, (int)o->workers, (int)o->worker_threads)))
				return fv_err_set(rc, "cannot start local augment workers: %s", fv_err_msg(rc));
		}
	}
	char pub[4200];
	if (*o->pub)
		snprintf(pub, sizeof pub, "%s", o->pub);
	else if (strlen(o->out) < 80)
		snprintf(pub, sizeof pub, "ipc://%s/events.sock", o->out);
	else
		pub[0] = 0;
	if ((rc = fv_report_new(&r->report, o->out, r->zmq, pub)) || (rc = fv_run_status_open(r)))
		return rc;
	/* write the measured normalization back so RUNDIR/config says what ran,
	 * and run with exactly the values written (a resumed run reads them) */
	char buf[96];
	snprintf(buf, sizeof buf, "%.9g,%.9g,%.9g", r->mean[0], r->mean[1], r->mean[2]);
	fv_cfg_set(fv_train_table, o, "mean", buf, "measured");
	snprintf(buf, sizeof buf, "%.9g,%.9g,%.9g", r->std[0], r->std[1], r->std[2]);
	fv_cfg_set(fv_train_table, o, "std", buf, "measured");
	return 0;
}

void fv_run_teardown(fv_run *r)
{
	fv_status_destroy(&r->status);
	fv_feed_destroy(&r->train);
	fv_feed_destroy(&r->eval);
	fv_augc_destroy(&r->augc);
	fv_report_destroy(&r->report);
	if (r->zmq)
		zmq_ctx_term(r->zmq);
	fv_sgd_destroy(&r->sgd);
	if (r->gin)
		fv_cuda_input_destroy(&r->gin);
	free(r->ahead.y);
	r->ahead.y = NULL;
	if (r->net) /* FV_PROFILE=1: where the steps' time went */
		fv_net_profile_report(r->net, stderr);
	fv_net_destroy(&r->net);
	fv_net_destroy(&r->teacher);
	fv_store_close(&r->store);
	if (r->trace)
		fclose(r->trace);
	for (uint32_t i = 0; i < r->nclasses && r->class_names; i++)
		free(r->class_names[i]);
	free(r->class_names);
	for (int s = 0; s < r->nfrozen_stages; s++)
		free(r->frozen_stages[s]);
	free(r->class_weights);
	free(r->soft);
}

/* ------------------------------------------------------------ checkpoints */

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

enum { POS_BYTES = 6 * 8, POS_VERSION = 1 };

int fv_run_checkpoint(fv_run *r, double val_top1)
{
	char path[4200], meta[1024];
	uint8_t pos[POS_BYTES];
	size_t nstate;
	int rc;

	put64(pos, POS_VERSION);
	put64(pos + 8, r->pos.epoch);
	put64(pos + 16, r->pos.batch);
	put64(pos + 24, r->pos.step);
	put64(pos + 32, r->pos.key_bound);
	put64(pos + 40, r->pos.dataset_version);
	if ((rc = fv_sgd_sync(r->sgd, 1)))
		return rc;
	float *state = fv_sgd_state(r->sgd, &nstate);
	fv_ckpt_blob blobs[] = {
		{ "trainer", pos, sizeof pos },
		{ "optim", state, nstate * sizeof(float) },
	};
	snprintf(meta, sizeof meta,
		 "mean=%.6g,%.6g,%.6g\nstd=%.6g,%.6g,%.6g\nresize_shorter=%ld\nseed=%ld\nbatch=%ld\nthreads=%ld\n"
		 "val_top1=%.6f\n",
		 r->mean[0], r->mean[1], r->mean[2], r->std[0], r->std[1], r->std[2], r->o.resize_shorter,
		 r->o.seed, r->o.batch, r->o.threads, val_top1);
	snprintf(meta + strlen(meta), sizeof meta - strlen(meta), "%s", r->extra_meta);
	size_t spe = fv_feed_batches(r->train);
	fv_ckpt_info info = { .model = r->o.model, .in_c = r->in_c, .in_h = r->in_h, .in_w = r->in_w,
			      .classes = (int)r->nclasses, .class_names = (const char *const *)r->class_names,
			      .step = r->pos.step, .epoch = r->pos.epoch + (spe ? (double)r->pos.batch / spe : 0),
			      .dataset_version = r->pos.dataset_version, .meta = meta };
	if ((rc = fv_net_sync_to_host(r->net)))
		return rc;
	fv_ckpt_path(path, sizeof path, r->ckpt_dir, r->pos.step);
	/* with EMA on, the file's weights are the EMA ones (what evaluation and
	 * export should use); the raw weights travel in the optimizer state */
	int ema = r->o.ema > 0 && !fv_sgd_ema_swapped(r->sgd);
	if (ema)
		fv_sgd_ema_swap(r->sgd);
	rc = fv_ckpt_write(path, &info, fv_net_params(r->net), fv_net_nparams(r->net), blobs, 2);
	if (ema)
		fv_sgd_ema_swap(r->sgd);
	if (rc)
		return rc;
	fv_ckpt_prune(r->ckpt_dir, (int)r->o.keep_last);
	fv_info("checkpoint %s (epoch %u, step %llu)", path, r->pos.epoch, (unsigned long long)r->pos.step);
	fv_report_checkpoint(r->report, path, r->pos.epoch, r->pos.step, r->pos.dataset_version, r->o.model,
			     val_top1);
	return 0;
}

int fv_run_resume(fv_run *r)
{
	char path[4200];
	uint64_t step;
	fv_ckpt *c;
	const void *data;
	size_t len, loaded, nstate;
	int rc;

	if ((rc = fv_ckpt_latest(r->ckpt_dir, path, sizeof path, &step)))
		return rc;
	if ((rc = fv_ckpt_open(&c, path)))
		return rc;
	const fv_ckpt_info *ci = fv_ckpt_info_get(c);
	if (ci->classes != (int)r->nclasses) {
		rc = fv_err_set(FV_E_MISMATCH, "%s was trained for %d classes; %s now has %u",
				path, ci->classes, r->o.db, r->nclasses);
		goto out;
	}
	fv_ckpt_load_opts lo = { 0 };
	if ((rc = fv_ckpt_load_params(c, fv_net_params(r->net), fv_net_nparams(r->net), &lo, &loaded)))
		goto out;
	float *state = fv_sgd_state(r->sgd, &nstate);
	if ((rc = fv_ckpt_blob_get(c, "optim", &data, &len)) || len != nstate * sizeof(float)) {
		rc = fv_err_set(FV_E_MISMATCH, "%s: optimizer state does not match this run's optimizer", path);
		goto out;
	}
	memcpy(state, data, len);
	if ((rc = fv_ckpt_blob_get(c, "trainer", &data, &len)) || len != POS_BYTES || get64(data) != POS_VERSION) {
		rc = fv_err_set(FV_E_CORRUPT, "%s: no trainer position in the checkpoint", path);
		goto out;
	}
	/* with EMA on the file's weights are the EMA ones and the optimizer
	 * state holds the raw ones where the EMA lives (see checkpoint):
	 * exchange them back without touching the optimizer's swap flag */
	if (r->o.ema > 0) {
		fv_param *pp = fv_net_params(r->net);
		for (size_t i = 0; i < fv_net_nparams(r->net); i++) {
			float *e = fv_sgd_ema(r->sgd, i);
			for (size_t k = 0; e && k < pp[i].numel; k++) {
				float t = pp[i].data[k];
				pp[i].data[k] = e[k];
				e[k] = t;
			}
		}
	}
	const uint8_t *p = data;
	r->pos.epoch = (uint32_t)get64(p + 8);
	r->pos.batch = get64(p + 16);
	r->pos.step = get64(p + 24);
	r->pos.key_bound = get64(p + 32);
	r->pos.dataset_version = get64(p + 40);
	fv_sgd_set_steps(r->sgd, r->pos.step);
	if (!(rc = fv_net_sync_to_device(r->net)))
		rc = fv_sgd_sync(r->sgd, 0);
	fv_info("resuming from %s: epoch %u, batch %llu, step %llu", path, r->pos.epoch,
		(unsigned long long)r->pos.batch, (unsigned long long)r->pos.step);
out:
	fv_ckpt_close(&c);
	return rc;
}

/* ------------------------------------------------------------ one step */

/* Softmax of the teacher's logits at temperature T: the distillation targets. */
static void soft_targets(float *soft, const float *logits, int n, int k, float t)
{
	for (int i = 0; i < n; i++) {
		const float *z = logits + (size_t)i * k;
		float *p = soft + (size_t)i * k, max = z[0];
		double sum = 0;
		for (int j = 1; j < k; j++)
			max = z[j] > max ? z[j] : max;
		for (int j = 0; j < k; j++)
			sum += p[j] = expf((z[j] - max) / t);
		for (int j = 0; j < k; j++)
			p[j] = (float)(p[j] / sum);
	}
}

/* Take feed f's next batch (into pinned slot `slot` on a GPU, where its
 * copy starts at once). */
static int take(fv_run *r, fv_feed *f, int slot, const void **x, const int **y, int *n,
		double *waited_ms)
{
	if (r->gin)
		fv_feed_set_dest(f, fv_cuda_input_buffer(r->gin, slot));
	int rc = fv_feed_next(f, x, y, n, waited_ms);
	if (!rc && r->gin && *n)
		rc = fv_cuda_input_submit(r->gin, slot, *n);
	return rc;
}

int fv_run_next(fv_run *r, fv_feed *f, const float **x, const int **y, int *n, double *waited_ms)
{
	const void *got;
	int rc, slot = r->gslot;
	int mine = r->ahead.have && f == r->train; /* only training batches are fetched ahead */
	if (mine && r->ahead.generation != fv_feed_generation(f))
		mine = r->ahead.have = 0; /* fetched under the epoch before: not this plan's */
	if (mine) { /* fetched while the last step ran */
		rc = r->ahead.rc, slot = r->ahead.slot;
		got = r->ahead.x, *y = r->ahead.y, *n = r->ahead.n;
		if (waited_ms)
			*waited_ms = r->ahead.waited_ms;
		r->ahead.have = 0;
	} else {
		if (r->ahead.have) /* another feed's batch waits in that slot: keep it */
			slot = r->ahead.slot ^ 1;
		rc = take(r, f, slot, &got, y, n, waited_ms);
	}
	if (!rc)
		fv_feed_trace_commit(f);
	*x = got;
	if (rc || !r->gin || !*n)
		return rc;
	rc = fv_cuda_input_load(r->gin, slot);
	r->gslot = slot ^ 1;
	*x = NULL;
	return rc;
}

/* While the backward runs (asynchronously on a GPU): the next batch. */
static int fetch_ahead(fv_run *r)
{
	fv_feed *f = r->train;
	if (!f || r->ahead.have)
		return 0;
	if (!r->ahead.y && !(r->ahead.y = malloc(r->o.batch * sizeof *r->ahead.y)))
		return ENOMEM;
	const int *y;
	int n = 0;
	double w = 0;
	int rc = take(r, f, r->gslot, &r->ahead.x, &y, &n, &w);
	if (!rc)
		memcpy(r->ahead.y, y, (size_t)n * sizeof *y);
	r->ahead.rc = rc, r->ahead.n = n, r->ahead.waited_ms = w, r->ahead.slot = r->gslot;
	r->ahead.generation = fv_feed_generation(f);
	r->ahead.have = 1;
	return 0;
}

int fv_run_step(fv_run *r, const float *x, const int *y, int n, float lr, float *loss)
{
	fv_loss_opts lo = { .smoothing = (float)r->o.label_smoothing, .class_weights = r->class_weights };
	int rc;
	if (r->teacher) {
		if ((rc = fv_net_forward(r->teacher, x, n, 0)))
			return rc;
		soft_targets(r->soft, fv_net_logits(r->teacher), n, (int)r->nclasses, (float)r->o.kd_temperature);
		lo.soft_targets = r->soft;
		lo.soft_weight = (float)r->o.kd_alpha;
		lo.temperature = (float)r->o.kd_temperature;
	}
	if ((rc = fv_net_forward(r->net, x, n, 1)) || (rc = fv_net_loss(r->net, y, &lo, loss)) ||
	    (rc = fv_net_backward(r->net)) || (rc = fetch_ahead(r)))
		return rc;
	return fv_sgd_step(r->sgd, lr);
}

/* ------------------------------------------------------------ evaluation */

int fv_run_evaluate(fv_run *r)
{
	fv_score s;
	const float *x;
	const int *y;
	int n, rc;
	int ema = r->o.ema > 0 && !fv_sgd_ema_swapped(r->sgd);

	if ((rc = fv_score_init(&s, (int)r->nclasses)))
		return rc;
	if ((rc = fv_feed_epoch(r->eval, r->pos.epoch, 0, 0, NULL)))
		goto out;
	if (ema)
		fv_sgd_ema_swap(r->sgd), fv_net_sync_to_device(r->net);
	while (!(rc = fv_run_next(r, r->eval, &x, &y, &n, NULL))) {
		if (!n)
			continue;
		if ((rc = fv_net_forward(r->net, x, n, 0)))
			break;
		fv_score_add(&s, fv_net_logits(r->net), y, n, NULL);
		fv_status_update(r->status, 0);
	}
	if (rc == FV_E_NOTFOUND)
		rc = 0;
	if (ema)
		fv_sgd_ema_swap(r->sgd), fv_net_sync_to_device(r->net);
	r->last_top1 = fv_score_top1(&s);
	r->last_top5 = fv_score_top5(&s);
	r->last_loss = fv_score_loss(&s);
	if (!rc)
		fv_info("val: %llu images, top-1 %.4f, top-5 %.4f, loss %.4f", (unsigned long long)s.n,
			r->last_top1, r->last_top5, r->last_loss);
out:
	fv_score_free(&s);
	return rc;
}
