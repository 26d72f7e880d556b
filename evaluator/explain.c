/* evaluator/explain.c — `fovea explain --ckpt FILE IMAGE --out heat.png`:
 * Grad-CAM (Selvaraju et al. 2017). The image goes through the checkpoint's
 * eval transform, the net runs forward, and the gradient of the chosen
 * class's logit (the predicted one, or --class N) with respect to the last
 * spatial conv/BN/activation output weighs that output's channels:
 * cam = relu(sum_k mean_ij(dy_k) * A_k). The map is drawn back over the
 * original image — mapped through the eval crop box, bilinearly upsampled —
 * as a jet overlay in a PNG of the image's own size.
 *
 * Instead of an image file, --db DIR --key K explains a stored record. */
#include "evaluator/daemon.h"
#include "augment/transform.h"
#include "nn/ckpt.h"
#include "nn/inspect.h"
#include "nn/models.h"
#include "nn/net.h"
#include "fv_config.h"
#include "fv_error.h"
#include "fv_image.h"
#include "fv_log.h"
#include "fv_store.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct xopts {
	char *ckpt, *out, *db, *log_level;
	long cls, key, threads;
} xopts;

#define O(f) offsetof(xopts, f)
static const fv_cfg_opt table[] = {
	{ "ckpt", FV_CFG_STR, O(ckpt), NULL, 1, 0, NULL, "checkpoint file (required)" },
	{ "out", FV_CFG_STR, O(out), "heat.png", 1, 0, NULL, "PNG to write: the heat map over the image, at the image's size" },
	{ "class", FV_CFG_INT, O(cls), "-1", -1, 1e6, NULL, "class to explain (-1 = the predicted one)" },
	{ "db", FV_CFG_STR, O(db), "", 1, 0, NULL, "explain a stored record of this dataset (with --key) instead of an image file" },
	{ "key", FV_CFG_INT, O(key), "-1", -1, 1e18, NULL, "record key (see fovea eval --predictions)" },
	{ "threads", FV_CFG_INT, O(threads), "0", 0, 1024, NULL, "compute threads (0 = all cores)" },
	{ "log-level", FV_CFG_STR, O(log_level), "warn", 1, 0, NULL, "error | warn | info | debug" },
	FV_CFG_END
};

/* ---------------------------------------------------------------- input */

static int read_file(const char *path, uint8_t **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return fv_err_set(errno, "%s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	*buf = n > 0 ? malloc((size_t)n) : NULL;
	int rc = 0;
	if (n <= 0 || !*buf || fread(*buf, 1, (size_t)n, f) != (size_t)n)
		rc = fv_err_set(n <= 0 ? FV_E_FORMAT : EIO, "%s: cannot read", path);
	fclose(f);
	*len = (size_t)n;
	return rc;
}

/* The image to explain, decoded to 8-bit HWC. */
static int load_image(const xopts *o, const char *file, fv_image *im)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;
	if (*o->db) {
		fv_store *s = NULL;
		fv_store_rtxn *t = NULL;
		fv_record r;
		if ((rc = fv_store_open(o->db, FV_STORE_RDONLY, 0, &s)))
			return rc;
		if (!(rc = fv_store_read_begin(s, &t)) && !(rc = fv_store_get(t, (uint64_t)o->key, &r))) {
			if (r.encoding == FV_ENC_RAW) {
				if (r.data_len != (size_t)r.width * r.height * r.channels)
					rc = fv_err_set(FV_E_CORRUPT, "record %ld: raw size mismatch", o->key);
				else if (!(rc = fv_image_alloc(im, (int)r.width, (int)r.height, (int)r.channels)))
					memcpy(im->pixels, r.data, r.data_len);
			} else {
				rc = fv_image_decode(r.data, r.data_len, 0, im);
			}
		}
		fv_store_read_end(&t);
		fv_store_close(&s);
		return rc ? fv_err_set(rc, "%s record %ld: %s", o->db, o->key, fv_err_msg(rc)) : 0;
	}
	if ((rc = read_file(file, &buf, &len)))
		return rc;
	if ((rc = fv_image_decode(buf, len, 0, im)))
		rc = fv_err_set(rc, "%s: %s", file, fv_err_msg(rc));
	free(buf);
	return rc;
}

/* The checkpoint's eval transform (as the evaluator scores it). */
static int eval_params(const fv_ckpt *c, const fv_ckpt_info *i, fv_aug_params *p)
{
	const char *m = fv_ckpt_meta(c, "mean"), *s = fv_ckpt_meta(c, "std");
	const char *rs = fv_ckpt_meta(c, "resize_shorter");
	fv_aug_defaults(p, FV_AUG_EVAL, i->in_c, i->in_h, i->in_w);
	p->layout = FV_OUT_F32_NCHW;
	if (m && sscanf(m, "%f,%f,%f", &p->mean[0], &p->mean[1], &p->mean[2]) == 1)
		p->mean[1] = p->mean[2] = p->mean[0];
	if (s && sscanf(s, "%f,%f,%f", &p->std[0], &p->std[1], &p->std[2]) == 1)
		p->std[1] = p->std[2] = p->std[0];
	long r = rs ? strtol(rs, NULL, 10) : -1;
	if (r < 0)
		r = i->in_h < 64 || i->in_w < 64 ? 0 : (i->in_h < i->in_w ? i->in_h : i->in_w) * 8 / 7;
	p->resize_shorter = (int)r;
	return fv_aug_params_check(p);
}

/* ---------------------------------------------------------------- drawing */

static void jet(float t, float rgb[3])
{
	float r = 1.5f - fabsf(4 * t - 3), g = 1.5f - fabsf(4 * t - 2), b = 1.5f - fabsf(4 * t - 1);
	rgb[0] = 255 * fminf(fmaxf(r, 0), 1);
	rgb[1] = 255 * fminf(fmaxf(g, 0), 1);
	rgb[2] = 255 * fminf(fmaxf(b, 0), 1);
}

static float bilinear(const float *m, int w, int h, float u, float v)
{
	u = fminf(fmaxf(u, 0), (float)(w - 1));
	v = fminf(fmaxf(v, 0), (float)(h - 1));
	int x0 = (int)u, y0 = (int)v, x1 = x0 + 1 < w ? x0 + 1 : x0, y1 = y0 + 1 < h ? y0 + 1 : y0;
	float fx = u - x0, fy = v - y0;
	return (1 - fy) * ((1 - fx) * m[y0 * w + x0] + fx * m[y0 * w + x1]) +
	       fy * ((1 - fx) * m[y1 * w + x0] + fx * m[y1 * w + x1]);
}

/* Heat map cam (cw x ch, in [0,1]) seen through the crop box, over im. */
static int overlay(const fv_image *im, const float *cam, int cw, int ch, const double box[4],
		   fv_image *out)
{
	int rc = fv_image_alloc(out, im->width, im->height, 3);
	if (rc)
		return rc;
	for (int y = 0; y < im->height; y++)
		for (int x = 0; x < im->width; x++) {
			const uint8_t *s = im->pixels + ((size_t)y * im->width + x) * im->channels;
			uint8_t *d = out->pixels + ((size_t)y * im->width + x) * 3;
			float u = (float)((x + 0.5 - box[0]) / box[2] * cw - 0.5);
			float v = (float)((y + 0.5 - box[1]) / box[3] * ch - 0.5);
			int inside = x + 0.5 >= box[0] && x + 0.5 < box[0] + box[2] &&
				     y + 0.5 >= box[1] && y + 0.5 < box[1] + box[3];
			float t = inside ? bilinear(cam, cw, ch, u, v) : 0, rgb[3];
			float a = 0.6f * t;
			jet(t, rgb);
			for (int k = 0; k < 3; k++) {
				float px = s[im->channels == 3 ? k : 0];
				d[k] = (uint8_t)lrintf((1 - a) * px + a * rgb[k]);
			}
		}
	return 0;
}

/* cam = relu(sum_k alpha_k A_k), alpha_k = mean(dy_k), scaled to [0, 1].
 * When no location has positive evidence the raw map is min-max scaled
 * instead, so the picture still says where the evidence is least negative. */
static void grad_cam(const float *act, const float *grad, int c, int hw, float *cam)
{
	float lo = INFINITY, hi = -INFINITY;
	memset(cam, 0, (size_t)hw * sizeof *cam);
	for (int k = 0; k < c; k++) {
		double alpha = 0;
		for (int j = 0; j < hw; j++)
			alpha += grad[(size_t)k * hw + j];
		alpha /= hw;
		for (int j = 0; j < hw; j++)
			cam[j] += (float)alpha * act[(size_t)k * hw + j];
	}
	for (int j = 0; j < hw; j++)
		lo = fminf(lo, cam[j]), hi = fmaxf(hi, cam[j]);
	if (hi > 0) {
		for (int j = 0; j < hw; j++)
			cam[j] = fmaxf(cam[j], 0) / hi;
	} else {
		fv_warn("no location has positive evidence for this class: showing the relative map");
		for (int j = 0; j < hw; j++)
			cam[j] = hi > lo ? (cam[j] - lo) / (hi - lo) : 0;
	}
}

/* ---------------------------------------------------------------- main */

static int explain(const xopts *o, const char *file)
{
	fv_ckpt *c = NULL;
	fv_net *net = NULL;
	fv_image im = { 0 }, out = { 0 };
	fv_aug_params p;
	fv_aug_scratch *scr = NULL;
	float *x = NULL, *act = NULL, *grad = NULL, *cam = NULL;
	int rc, C, H, W;
	double box[4];

	if ((rc = fv_ckpt_open(&c, o->ckpt)))
		goto out;
	const fv_ckpt_info *i = fv_ckpt_info_get(c);
	if ((rc = eval_params(c, i, &p)) || (rc = load_image(o, file, &im)))
		goto out;
	if ((rc = fv_model_build(i->model ? i->model : "", i->in_c, i->in_h, i->in_w, i->classes, &net)))
		goto out;
	fv_net_opts no = { .batch = 1, .threads = (int)o->threads };
	if ((rc = fv_net_compile(net, &no)) ||
	    (rc = fv_ckpt_load_params(c, fv_net_params(net), fv_net_nparams(net), NULL, NULL)) ||
	    (rc = fv_net_sync_to_device(net)))
		goto out;
	/* the net's input, exactly as evaluation makes it */
	fv_aug_input in = { FV_ENC_RAW, im.pixels, (size_t)im.width * im.height * im.channels,
			    im.width, im.height, im.channels };
	if (!(x = malloc(fv_aug_out_bytes(&p))) || (rc = fv_aug_scratch_new(&scr))) {
		rc = rc ? rc : ENOMEM;
		goto out;
	}
	if ((rc = fv_aug_sample(&p, &in, 0, x, scr)) || (rc = fv_aug_crop_box(&p, im.width, im.height, 0, box)))
		goto out;
	if ((rc = fv_net_forward(net, x, 1, 0)))
		goto out;
	const float *lg = fv_net_logits(net);
	int k = i->classes, pred = 0;
	double z = 0;
	for (int j = 1; j < k; j++)
		if (lg[j] > lg[pred])
			pred = j;
	for (int j = 0; j < k; j++)
		z += exp((double)lg[j] - lg[pred]);
	int cls = o->cls >= 0 ? (int)o->cls : pred;
	if (cls >= k) {
		rc = fv_err_set(FV_E_NOTFOUND, "--class %d: the model has %d classes", cls, k);
		goto out;
	}
#define NAME(j) (i->class_names && i->class_names[j] ? i->class_names[j] : "")
	printf("predicted: %d %s (p = %.4f, logit %.4f)\n", pred, NAME(pred), 1 / z, lg[pred]);
	int node = fv_net_cam_node(net);
	if (node < 0) {
		rc = node;
		goto out;
	}
	fv_net_shape(net, node, &C, &H, &W);
	act = malloc((size_t)C * H * W * sizeof *act);
	grad = malloc((size_t)C * H * W * sizeof *grad);
	cam = malloc((size_t)H * W * sizeof *cam);
	if (!act || !grad || !cam) {
		rc = ENOMEM;
		goto out;
	}
	if ((rc = fv_net_node_grad(net, node, &cls, act, grad)))
		goto out;
	grad_cam(act, grad, C, H * W, cam);
	if ((rc = overlay(&im, cam, W, H, box, &out)) || (rc = fv_image_write_png(&out, o->out)))
		goto out;
	printf("explained: %d %s (p = %.4f) at node %d (%dx%dx%d) -> %s (%dx%d)\n", cls, NAME(cls),
	       exp((double)lg[cls] - lg[pred]) / z, node, C, H, W, o->out, im.width, im.height);
#undef NAME
out:
	free(x), free(act), free(grad), free(cam);
	fv_aug_scratch_destroy(&scr);
	fv_image_free(&im);
	fv_image_free(&out);
	fv_net_destroy(&net);
	fv_ckpt_close(&c);
	return rc;
}

int fv_evaluator_explain(int argc, char **argv)
{
	xopts o = { 0 };
	int npos = 0, help = 0, rc;
	fv_cfg_defaults(table, &o);
	if ((rc = fv_cfg_parse_args(table, &o, argc, argv, &npos, &help)))
		goto out;
	if (help) {
		printf("usage: fovea explain --ckpt FILE IMAGE --out heat.png [--class N]\n"
		       "       fovea explain --ckpt FILE --db DIR --key K --out heat.png\n\noptions:\n");
		fv_cfg_help(table, stdout, 0);
		goto out;
	}
	int lvl = fv_log_level_parse(o.log_level);
	fv_log_set_level(lvl > 0 ? lvl : FV_LOG_WARN);
	if (!o.ckpt || !*o.ckpt)
		rc = fv_err_set(FV_E_CONFIG, "--ckpt FILE is required");
	else if (*o.db ? npos != 0 || o.key < 0 : npos != 1)
		rc = fv_err_set(FV_E_CONFIG, "give one IMAGE file, or --db DIR --key K");
	else
		rc = explain(&o, npos ? argv[1] : NULL);
out:
	if (rc)
		fprintf(stderr, "fovea explain: %s\n", fv_err_msg(rc));
	fv_cfg_free(table, &o);
	return rc ? 1 : 0;
}
