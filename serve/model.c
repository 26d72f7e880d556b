/* serve/model.c — load, hold and swap the served model; classify bytes. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "augment/transform.h"
#include "fv_error.h"
#include "fv_image.h"
#include "fv_json.h"
#include "fv_log.h"
#include "serve/model.h"

struct fv_srv_models {
	pthread_mutex_t lock;
	fv_srv_model *cur;
	char dir[2048], file[2048];
	int fp32, threads;
	unsigned reloads;
};

int fv_srv_models_new(fv_srv_models **out, const char *dir, const char *file, int fp32,
		      int threads)
{
	fv_srv_models *m = calloc(1, sizeof *m);
	*out = NULL;
	if (!m)
		return ENOMEM;
	if ((dir && strlen(dir) >= sizeof m->dir) || (file && strlen(file) >= sizeof m->file)) {
		free(m);
		return fv_err_set(ENAMETOOLONG, "model path too long");
	}
	snprintf(m->dir, sizeof m->dir, "%s", dir ? dir : "");
	snprintf(m->file, sizeof m->file, "%s", file ? file : "");
	m->fp32 = fp32;
	m->threads = threads;
	pthread_mutex_init(&m->lock, NULL);
	*out = m;
	return 0;
}

static void model_free(fv_srv_model *mdl)
{
	if (!mdl)
		return;
	fv_rt_close(&mdl->rt);
	pthread_mutex_destroy(&mdl->run_lock);
	free(mdl);
}

void fv_srv_models_destroy(fv_srv_models **p)
{
	fv_srv_models *m = p ? *p : NULL;
	if (!m)
		return;
	model_free(m->cur); /* callers have released every reference */
	pthread_mutex_destroy(&m->lock);
	free(m);
	*p = NULL;
}

/* The file the newest model lives in and its version. A directory with a
 * `current` link is a model directory; otherwise it is one vN directory. */
static int newest(const fv_srv_models *m, char *path, size_t cap, unsigned *version)
{
	const char *name = m->fp32 ? "model-fp32.fovea" : "model.fovea";
	char link[256];
	*version = 0;
	if (*m->file) {
		snprintf(path, cap, "%s", m->file);
		return 0;
	}
	if (!*m->dir)
		return fv_err_set(FV_E_CONFIG, "no --model or --model-dir given");
	char cur[2100];
	snprintf(cur, sizeof cur, "%s/current", m->dir);
	ssize_t n = readlink(cur, link, sizeof link - 1);
	if (n > 0) {
		link[n] = 0;
		const char *base = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
		if (base[0] == 'v')
			*version = (unsigned)strtoul(base + 1, NULL, 10);
		/* the vN the link names now, so a swap during the load cannot mix two */
		if (link[0] == '/')
			snprintf(path, cap, "%s/%s", link, name);
		else
			snprintf(path, cap, "%s/%s/%s", m->dir, link, name);
	} else {
		snprintf(path, cap, "%s/%s", m->dir, name);
		const char *base = strrchr(m->dir, '/') ? strrchr(m->dir, '/') + 1 : m->dir;
		if (base[0] == 'v')
			*version = (unsigned)strtoul(base + 1, NULL, 10);
	}
	if (access(path, R_OK))
		return fv_err_set(FV_E_NOTFOUND, "%s: no model exported yet", path);
	return 0;
}

int fv_srv_models_reload(fv_srv_models *m, int force, int *changed)
{
	char path[4096];
	unsigned version;
	int rc;
	if (changed)
		*changed = 0;
	if ((rc = newest(m, path, sizeof path, &version)))
		return rc;
	pthread_mutex_lock(&m->lock);
	int same = m->cur && m->cur->version == version && !strcmp(m->cur->path, path);
	pthread_mutex_unlock(&m->lock);
	if (same && !force)
		return 0;
	fv_srv_model *mdl = calloc(1, sizeof *mdl);
	if (!mdl)
		return ENOMEM;
	if ((rc = fv_rt_open(&mdl->rt, path))) {
		free(mdl);
		return rc;
	}
	fv_rt_set_threads(mdl->rt, m->threads);
	mdl->info = fv_rt_info_get(mdl->rt);
	mdl->version = version;
	mdl->refs = 1; /* the registry's own */
	snprintf(mdl->path, sizeof mdl->path, "%s", path);
	pthread_mutex_init(&mdl->run_lock, NULL);

	pthread_mutex_lock(&m->lock);
	fv_srv_model *old = m->cur;
	m->cur = mdl;
	m->reloads++;
	int last = old && --old->refs == 0;
	pthread_mutex_unlock(&m->lock);
	if (last)
		model_free(old);
	if (changed)
		*changed = 1;
	fv_info("serving %s (v%u, %s, %d classes, input %dx%dx%d)", path, version,
		mdl->info->dtype == FV_RT_INT8 ? "int8" : "fp32", mdl->info->classes, mdl->info->in_c,
		mdl->info->in_h, mdl->info->in_w);
	return 0;
}

fv_srv_model *fv_srv_models_acquire(fv_srv_models *m)
{
	pthread_mutex_lock(&m->lock);
	fv_srv_model *mdl = m->cur;
	if (mdl)
		mdl->refs++;
	pthread_mutex_unlock(&m->lock);
	return mdl;
}

void fv_srv_models_release(fv_srv_models *m, fv_srv_model *mdl)
{
	if (!mdl)
		return;
	pthread_mutex_lock(&m->lock);
	int last = --mdl->refs == 0;
	pthread_mutex_unlock(&m->lock);
	if (last)
		model_free(mdl);
}

void fv_srv_models_stats(fv_srv_models *m, unsigned *reloads, unsigned *version)
{
	pthread_mutex_lock(&m->lock);
	*reloads = m->reloads ? m->reloads - 1 : 0; /* the first load is not a reload */
	*version = m->cur ? m->cur->version : 0;
	pthread_mutex_unlock(&m->lock);
}

/* ---------------------------------------------------------------- classify */

int fv_srv_classify(fv_srv_model *mdl, const void *buf, size_t len, uint64_t max_pixels, int k,
		    fv_srv_pred *out, int *n)
{
	const fv_rt_info *in = mdl->info;
	fv_image_info ii;
	fv_aug_params p;
	fv_aug_scratch *scratch = NULL;
	float *x = NULL, *logits = NULL;
	int rc;
	*n = 0;
	if (!len)
		return fv_err_set(FV_E_FORMAT, "empty body: send a JPEG or PNG file");
	if ((rc = fv_image_info_get(buf, len, &ii)))
		return rc == FV_E_FORMAT ? fv_err_set(rc, "not a JPEG or PNG image") : rc;
	if ((uint64_t)ii.width * (uint64_t)ii.height > max_pixels)
		return fv_err_set(FV_E_TOOBIG, "image is %dx%d, over the limit of %llu pixels", ii.width,
				  ii.height, (unsigned long long)max_pixels);
	fv_aug_defaults(&p, FV_AUG_EVAL, in->in_c, in->in_h, in->in_w);
	p.layout = FV_OUT_F32_NCHW;
	p.resize_shorter = in->resize_shorter;
	for (int c = 0; c < 3; c++)
		p.mean[c] = 0, p.std[c] = 1; /* the graph normalizes inside */
	fv_aug_input ai = { .encoding = ii.format == FV_IMG_PNG ? FV_ENC_PNG : FV_ENC_JPEG,
			    .data = buf, .len = len, .width = ii.width, .height = ii.height,
			    .channels = ii.channels };
	x = malloc(fv_aug_out_bytes(&p));
	logits = malloc(sizeof *logits * (size_t)in->classes);
	if (!x || !logits || (rc = fv_aug_scratch_new(&scratch))) {
		rc = fv_err_set(ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = fv_aug_sample(&p, &ai, 0, x, scratch)))
		goto out;
	pthread_mutex_lock(&mdl->run_lock);
	rc = fv_rt_run(mdl->rt, x, 1, logits);
	pthread_mutex_unlock(&mdl->run_lock);
	if (rc) {
		rc = fv_err_set(rc, "model run failed: %s", strerror(rc));
		goto out;
	}
	float mx = logits[0], sum = 0;
	for (int c = 1; c < in->classes; c++)
		mx = fmaxf(mx, logits[c]);
	for (int c = 0; c < in->classes; c++)
		sum += logits[c] = expf(logits[c] - mx);
	if (k > in->classes)
		k = in->classes;
	for (int i = 0; i < k; i++) { /* k is small: selection beats a sort */
		int best = -1;
		for (int c = 0; c < in->classes; c++)
			if (logits[c] >= 0 && (best < 0 || logits[c] > logits[best]))
				best = c;
		out[i].label = best;
		out[i].score = logits[best] / sum;
		out[i].name = in->class_names ? in->class_names[best] : "";
		logits[best] = -1;
	}
	*n = k;
out:
	fv_aug_scratch_destroy(&scratch);
	free(x);
	free(logits);
	return rc;
}

/* ---------------------------------------------------------------- JSON */

size_t fv_srv_json(char *buf, size_t cap, const char *model, unsigned version,
		   const fv_srv_pred *p, int n)
{
	char esc[1024];
	size_t o = 0;
#define PUT(...) (o += (size_t)snprintf(buf + o, o < cap ? cap - o : 0, __VA_ARGS__))
	fv_json_escape(esc, sizeof esc, model);
	PUT("{\"model\":\"%s\",\"version\":%u,\"top5\":[", esc, version);
	for (int i = 0; i < n; i++) {
		fv_json_escape(esc, sizeof esc, p[i].name);
		PUT("%s{\"label\":%d,\"name\":\"%s\",\"score\":%.6f}", i ? "," : "", p[i].label, esc,
		    p[i].score);
	}
	PUT("]}");
#undef PUT
	return o < cap ? o : cap ? cap - 1 : 0;
}
