/* exporter/export.c — one export (see export.h): rebuild the net from the
 * checkpoint, fold, calibrate on train images with every method (or the one
 * asked for), keep the method that loses least on val, verify INT8 against
 * FP32 on val, write the four model files and a manifest into a temp dir,
 * and publish it as MODELDIR/vN + the `current` symlink, both by rename. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "exporter/export.h"
#include "exporter/onnx.h"
#include "exporter/xdata.h"
#include "exporter/xmodel.h"
#include "fv_error.h"
#include "fv_file.h"
#include "fv_log.h"
#include "fv_score.h"
#include "nn/ckpt.h"
#include "nn/models.h"

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- model */

static void parse3(const char *s, float *v)
{
	for (int k = 0; s && k < 3; k++) {
		char *end;
		v[k] = strtof(s, &end);
		if (end == s)
			break;
		for (int j = k + 1; j < 3; j++)
			v[j] = v[k];
		s = *end == ',' ? end + 1 : NULL;
	}
}

/* The folded FP32 model of the checkpoint, with its preprocessing and names. */
static int load_model(const char *path, fv_xmodel **out)
{
	fv_ckpt *c = NULL;
	fv_net *net = NULL;
	const float **pd = NULL;
	int rc = fv_ckpt_open(&c, path);
	if (rc)
		return rc;
	const fv_ckpt_info *in = fv_ckpt_info_get(c);
	if ((rc = fv_model_build(in->model ? in->model : "", in->in_c, in->in_h, in->in_w, in->classes, &net)))
		goto out;
	size_t np = fv_net_nparams(net);
	fv_param *p = fv_net_params(net);
	pd = calloc(np ? np : 1, sizeof *pd);
	if (!pd) {
		rc = ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < np; i++) {
		fv_ckpt_tensor t;
		if (fv_ckpt_tensor_find(c, p[i].name, &t)) {
			rc = fv_err_set(FV_E_NOTFOUND, "%s: no tensor %s for model '%s'", path, p[i].name, in->model);
			goto out;
		}
		if (t.numel != p[i].numel) {
			rc = fv_err_set(FV_E_MISMATCH, "%s: %s has %zu values, the model wants %zu", path,
					p[i].name, t.numel, p[i].numel);
			goto out;
		}
		pd[i] = t.data;
	}
	fv_xmodel *m;
	if ((rc = fv_fold(net, pd, &m)))
		goto out;
	const char *v;
	parse3(fv_ckpt_meta(c, "mean"), m->mean);
	m->std[0] = m->std[1] = m->std[2] = 1;
	parse3(fv_ckpt_meta(c, "std"), m->std);
	if ((v = fv_ckpt_meta(c, "resize_shorter")) && atoi(v) > 0)
		m->resize_shorter = atoi(v);
	snprintf(m->model, sizeof m->model, "%s", in->model ? in->model : "");
	m->step = in->step, m->dataset_version = in->dataset_version;
	if (in->class_names) {
		m->names = calloc((size_t)m->classes, sizeof *m->names);
		for (int i = 0; m->names && i < m->classes; i++)
			m->names[i] = strdup(in->class_names[i] ? in->class_names[i] : "");
	}
	*out = m;
out:
	free(pd);
	fv_net_destroy(&net);
	fv_ckpt_close(&c);
	return rc;
}

/* ---------------------------------------------------------------- scoring */

/* Top-1 of rt on d's first n images (0 = all); pred (optional) gets labels. */
static int score(fv_rt *rt, const fv_xdata *d, size_t n, int classes, double *top1, int *pred)
{
	enum { CHUNK = 256 };
	fv_score s;
	float *logits = malloc(sizeof *logits * CHUNK * (size_t)classes);
	int rc = fv_score_init(&s, classes);
	if (rc || !logits) {
		free(logits);
		return rc ? rc : ENOMEM;
	}
	if (!n || n > d->n)
		n = d->n;
	size_t per = (size_t)d->c * d->h * d->w;
	for (size_t i = 0; i < n && !rc; i += CHUNK) {
		int k = (int)(n - i < CHUNK ? n - i : CHUNK);
		if (!(rc = fv_rt_run_u8(rt, d->px + i * per, k, logits)))
			fv_score_add(&s, logits, d->labels + i, k, pred ? pred + i : NULL);
	}
	*top1 = fv_score_top1(&s);
	fv_score_free(&s);
	free(logits);
	return rc;
}

static int open_model(const fv_xmodel *m, int int8, long threads, void **buf, fv_rt **rt)
{
	size_t len;
	int rc = fv_xmodel_serialize(m, int8, buf, &len);
	if (!rc && (rc = fv_rt_open_mem(rt, *buf, len)))
		free(*buf), *buf = NULL;
	if (!rc)
		fv_rt_set_threads(*rt, (int)threads);
	return rc;
}

/* ---------------------------------------------------------------- calibration */

static int calibrate(const fv_xmodel *m, fv_rt *rt32, const fv_xdata *d, fv_calib **out)
{
	enum { CHUNK = 64 };
	int rc = fv_calib_new(out, m);
	size_t per = (size_t)d->c * d->h * d->w, hw = (size_t)d->h * d->w;
	float *x = malloc(sizeof *x * per * CHUNK);
	if (rc || !x) {
		free(x);
		return rc ? rc : ENOMEM;
	}
	for (int pass = 0; pass < 2 && !rc; pass++) {
		for (size_t i = 0; i < d->n && !rc; i += CHUNK) {
			int k = (int)(d->n - i < CHUNK ? d->n - i : CHUNK);
			for (int j = 0; j < k; j++) /* NHWC uint8 -> NCHW float pixels */
				for (size_t p = 0; p < hw; p++)
					for (int c = 0; c < d->c; c++)
						x[((size_t)j * d->c + c) * hw + p] = d->px[(i + j) * per + p * d->c + c];
			rc = fv_calib_pass(*out, rt32, x, k);
		}
		fv_calib_next(*out);
	}
	free(x);
	return rc;
}

/* Quantize m with `method`'s ranges and score it on d's first n images. */
static int try_method(fv_xmodel *m, const fv_calib *cal, int method, const fv_export_opts *o,
		      const fv_xdata *d, size_t n, double *top1, int *pred)
{
	float *lo = malloc(sizeof *lo * (size_t)(m->nops + 1)), *hi = malloc(sizeof *hi * (size_t)(m->nops + 1));
	void *buf = NULL;
	fv_rt *rt = NULL;
	int rc = lo && hi ? 0 : ENOMEM;
	if (!rc)
		rc = fv_calib_ranges(cal, (enum fv_calib_method)method, o->percentile, lo, hi);
	if (!rc)
		rc = fv_quant_apply(m, lo, hi);
	if (!rc)
		rc = open_model(m, 1, o->threads, &buf, &rt);
	if (!rc)
		rc = score(rt, d, n, m->classes, top1, pred);
	fv_rt_close(&rt);
	free(buf), free(lo), free(hi);
	return rc;
}

/* ---------------------------------------------------------------- publishing */

static unsigned next_version(const char *out)
{
	unsigned v = 0;
	DIR *dir = opendir(out);
	struct dirent *e;
	while (dir && (e = readdir(dir))) {
		char *end;
		unsigned long n;
		if (e->d_name[0] == 'v' && (n = strtoul(e->d_name + 1, &end, 10)) && !*end && n > v)
			v = (unsigned)n;
	}
	if (dir)
		closedir(dir);
	return v + 1;
}

static int write_manifest(const char *dir, const fv_export_opts *o, const fv_export_result *r)
{
	char path[4400];
	snprintf(path, sizeof path, "%s/manifest", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		return fv_err_set(errno, "%s: %s", path, strerror(errno));
	fprintf(f, "source=%s\nstep=%llu\ndataset_version=%llu\nmodel=%s\ncalibration=%s\n"
		"calibration_images=%ld\nval_images=%llu\ntop1_fp32=%.6f\ntop1_int8=%.6f\n"
		"agreement=%.6f\nsize_fovea=%zu\nsize_fovea_fp32=%zu\nsize_onnx=%zu\nsize_onnx_fp32=%zu\n",
		o->ckpt, (unsigned long long)r->step, (unsigned long long)r->dataset_version, r->model,
		r->calib, o->calib_images, (unsigned long long)r->val_n, r->top1_fp32, r->top1_int8,
		r->agree, r->size_fovea, r->size_fovea_fp32, r->size_onnx, r->size_onnx_fp32);
	int rc = fflush(f) || fsync(fileno(f)) ? errno : 0;
	if (fclose(f) && !rc)
		rc = errno;
	return rc ? fv_err_set(rc, "%s: %s", path, strerror(rc)) : 0;
}

static int write_files(const char *tmp, const fv_xmodel *m, fv_export_result *r)
{
	char p[4400];
	int rc;
	snprintf(p, sizeof p, "%s/model.fovea", tmp);
	if ((rc = fv_xmodel_write(m, 1, p, &r->size_fovea)))
		return rc;
	snprintf(p, sizeof p, "%s/model-fp32.fovea", tmp);
	if ((rc = fv_xmodel_write(m, 0, p, &r->size_fovea_fp32)))
		return rc;
	snprintf(p, sizeof p, "%s/model.onnx", tmp);
	if ((rc = fv_onnx_write(m, 1, p, &r->size_onnx)))
		return rc;
	snprintf(p, sizeof p, "%s/model-fp32.onnx", tmp);
	return fv_onnx_write(m, 0, p, &r->size_onnx_fp32);
}

static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[4400];
	while (d && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

/* Files into OUT/.tmp-PID, renamed to OUT/vN; then `current` -> vN by a
 * symlink renamed over the old one. Readers see the old or the new model. */
static int publish(const fv_export_opts *o, const fv_xmodel *m, fv_export_result *r)
{
	char tmp[4200], dst[4300], lnk[64], cur[4300];
	int rc = 0;
	if (mkdir(o->out, 0755) && errno != EEXIST)
		return fv_err_set(errno, "%s: %s", o->out, strerror(errno));
	snprintf(tmp, sizeof tmp, "%s/.tmp-%d", o->out, (int)getpid());
	rm_tree(tmp);
	if (mkdir(tmp, 0755))
		return fv_err_set(errno, "%s: %s", tmp, strerror(errno));
	if ((rc = write_files(tmp, m, r)) || (rc = write_manifest(tmp, o, r)) || (rc = fv_fsync_dir(tmp)))
		goto fail;
	for (int tries = 0; tries < 100; tries++) {
		r->version = next_version(o->out);
		snprintf(dst, sizeof dst, "%s/v%u", o->out, r->version);
		if (!rename(tmp, dst) || (errno != EEXIST && errno != ENOTEMPTY))
			break;
	}
	if (access(dst, F_OK) || !access(tmp, F_OK)) {
		rc = fv_err_set(errno ? errno : EIO, "%s: cannot publish: %s", dst, strerror(errno));
		goto fail;
	}
	snprintf(r->dir, sizeof r->dir, "%s", dst);
	snprintf(lnk, sizeof lnk, "v%u", r->version);
	snprintf(cur, sizeof cur, "%s/.current-%d", o->out, (int)getpid());
	unlink(cur);
	snprintf(dst, sizeof dst, "%s/current", o->out);
	if (symlink(lnk, cur) || rename(cur, dst)) {
		rc = fv_err_set(errno, "%s: cannot point at v%u: %s", dst, r->version, strerror(errno));
		unlink(cur);
		return rc;
	}
	fv_fsync_dir(o->out);
	return 0;
fail:
	rm_tree(tmp);
	return rc;
}

/* ---------------------------------------------------------------- the run */

uint64_t fv_export_current_step(const char *out, char *source, size_t cap)
{
	char path[4200], line[4200];
	uint64_t step = 0;
	snprintf(path, sizeof path, "%s/current/manifest", out);
	FILE *f = fopen(path, "r");
	if (source && cap)
		source[0] = 0;
	while (f && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "step=", 5))
			step = strtoull(line + 5, NULL, 10);
		else if (!strncmp(line, "source=", 7) && source && cap)
			snprintf(source, cap, "%s", line + 7);
	}
	if (f)
		fclose(f);
	return step;
}

/* The calibration method: the one asked for, or the one whose INT8 model
 * scores best on the first select_images val images; within 0.1 points the
 * one that agrees more often with FP32's labels (p32) wins. */
static int choose(fv_xmodel *m, const fv_calib *cal, const fv_export_opts *o, const fv_xdata *val,
		  const int *p32, fv_export_result *r, int *method)
{
	static const int order[] = { FV_CALIB_KL, FV_CALIB_PERCENTILE, FV_CALIB_MINMAX };
	size_t n = o->select_images > 0 && (size_t)o->select_images < val->n ? (size_t)o->select_images : val->n;
	int best = o->calib ? o->calib - 1 : -1, rc = 0;
	double best_top1 = -1, best_agree = -1;
	int *pred = malloc(sizeof *pred * (n ? n : 1));
	if (!pred)
		return ENOMEM;
	for (int i = 0; i < 3; i++)
		r->method_top1[i] = -1;
	for (int i = 0; i < 3 && !o->calib && !rc; i++) {
		double t;
		if ((rc = try_method(m, cal, order[i], o, val, n, &t, pred)))
			break;
		size_t same = 0;
		for (size_t j = 0; j < n; j++)
			same += pred[j] == p32[j];
		double agree = n ? (double)same / n : 0;
		r->method_top1[order[i]] = t;
		fv_info("calibration %s: INT8 top-1 %.4f, same label as FP32 %.4f, on %zu val images",
			fv_calib_name(order[i]), t, agree, n);
		if (t > best_top1 + 0.001 || (t > best_top1 - 0.001 && agree > best_agree))
			best_top1 = t, best_agree = agree, best = order[i];
	}
	free(pred);
	if (!rc)
		snprintf(r->calib, sizeof r->calib, "%s", fv_calib_name((enum fv_calib_method)best));
	*method = best;
	return rc;
}

int fv_export_run(const fv_export_opts *o, fv_export_result *r)
{
	memset(r, 0, sizeof *r);
	double t0 = now_s();
	fv_xmodel *m = NULL;
	fv_xdata cal = { 0 }, val = { 0 };
	fv_calib *cb = NULL;
	fv_rt *rt32 = NULL;
	void *buf32 = NULL;
	int *p32 = NULL, *p8 = NULL, rc;
	if ((rc = load_model(o->ckpt, &m)))
		goto out;
	snprintf(r->model, sizeof r->model, "%s", m->model);
	r->step = m->step, r->dataset_version = m->dataset_version;
	if ((rc = fv_xdata_load(o->db, 0, o->calib_images, (uint64_t)o->seed | 1, m->in_c, m->in_h, m->in_w,
				m->resize_shorter, &cal)) ||
	    (rc = fv_xdata_load(o->db, 1, o->val_images, 0, m->in_c, m->in_h, m->in_w, m->resize_shorter, &val)))
		goto out;
	r->val_n = val.n;
	p32 = malloc(sizeof *p32 * val.n), p8 = malloc(sizeof *p8 * val.n);
	if (!p32 || !p8) {
		rc = ENOMEM;
		goto out;
	}
	if ((rc = open_model(m, 0, o->threads, &buf32, &rt32)) ||
	    (rc = score(rt32, &val, 0, m->classes, &r->top1_fp32, p32)))
		goto out;
	fv_info("FP32 top-1 %.4f on %zu val images; calibrating on %zu train images", r->top1_fp32, val.n, cal.n);
	if ((rc = calibrate(m, rt32, &cal, &cb)) || (rc = fv_quant_weights(m)))
		goto out;
	int method;
	if ((rc = choose(m, cb, o, &val, p32, r, &method)) ||
	    (rc = try_method(m, cb, method, o, &val, 0, &r->top1_int8, p8)))
		goto out;
	size_t same = 0;
	for (size_t i = 0; i < val.n; i++)
		same += p32[i] == p8[i];
	r->agree = val.n ? (double)same / val.n : 0;
	double drop = (r->top1_fp32 - r->top1_int8) * 100;
	fv_info("INT8 (%s) top-1 %.4f vs FP32 %.4f: %.2f points, same label on %.2f%%", r->calib,
		r->top1_int8, r->top1_fp32, drop, r->agree * 100);
	if (drop > o->max_drop) {
		rc = fv_err_set(FV_E_MISMATCH, "%s: INT8 top-1 %.2f%% is %.2f points below FP32 %.2f%% "
				"(--max-drop %.2f): not published", o->ckpt, r->top1_int8 * 100, drop,
				r->top1_fp32 * 100, o->max_drop);
		goto out;
	}
	if ((rc = publish(o, m, r)))
		goto out;
	r->published = 1;
out:
	r->seconds = now_s() - t0;
	fv_rt_close(&rt32);
	free(buf32), free(p32), free(p8);
	fv_calib_destroy(&cb);
	fv_xdata_free(&cal);
	fv_xdata_free(&val);
	fv_xmodel_destroy(&m);
	return rc;
}
