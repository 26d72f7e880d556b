/* augment/transform_pb.c — fv_aug_params <-> the wire's fovea.Transform.
 * Fields map one to one; mean/std carry out_channels values. */
#include <string.h>

#include "augment/transform_pb.h"
#include "fv_error.h"

int fv_aug_params_from_pb(fv_aug_params *p, const Fovea__Transform *t)
{
	memset(p, 0, sizeof *p);
	if (!t)
		return fv_err_set(FV_E_PROTO, "transform: missing");
	if (t->out_channels != 1 && t->out_channels != 3)
		return fv_err_set(FV_E_PROTO, "transform: out_channels %u (want 1 or 3)", t->out_channels);
	if (t->out_width > 8192 || t->out_height > 8192 || t->pad > 4096 || t->resize_shorter > 16384)
		return fv_err_set(FV_E_PROTO, "transform: size field out of range");
	int c = (int)t->out_channels;
	if (t->n_mean != (size_t)c || t->n_std != (size_t)c)
		return fv_err_set(FV_E_PROTO, "transform: %zu mean / %zu std values for %d channels",
				  t->n_mean, t->n_std, c);
	p->mode = t->mode == FOVEA__AUG_MODE__AUG_EVAL ? FV_AUG_EVAL : FV_AUG_TRAIN;
	if (t->mode != FOVEA__AUG_MODE__AUG_EVAL && t->mode != FOVEA__AUG_MODE__AUG_TRAIN)
		return fv_err_set(FV_E_PROTO, "transform: unknown mode %d", (int)t->mode);
	switch (t->layout) {
	case FOVEA__OUT_LAYOUT__OUT_F32_NCHW: p->layout = FV_OUT_F32_NCHW; break;
	case FOVEA__OUT_LAYOUT__OUT_F16_NCHW: p->layout = FV_OUT_F16_NCHW; break;
	case FOVEA__OUT_LAYOUT__OUT_U8_NHWC: p->layout = FV_OUT_U8_NHWC; break;
	default: return fv_err_set(FV_E_PROTO, "transform: unknown layout %d", (int)t->layout);
	}
	p->out_w = (int)t->out_width;
	p->out_h = (int)t->out_height;
	p->out_c = c;
	p->rrc = t->random_resized_crop;
	p->scale_min = t->scale_min;
	p->scale_max = t->scale_max;
	p->ratio_min = t->ratio_min;
	p->ratio_max = t->ratio_max;
	p->pad = (int)t->pad;
	p->flip_p = t->flip_p;
	p->brightness = t->brightness;
	p->contrast = t->contrast;
	p->saturation = t->saturation;
	p->hue = t->hue;
	p->pca_lighting = t->pca_lighting;
	p->erase_p = t->erase_p;
	p->erase_scale_min = t->erase_scale_min;
	p->erase_scale_max = t->erase_scale_max;
	p->erase_ratio_min = t->erase_ratio_min;
	p->erase_ratio_max = t->erase_ratio_max;
	p->resize_shorter = (int)t->resize_shorter;
	for (int i = 0; i < c; i++) {
		p->mean[i] = t->mean[i];
		p->std[i] = t->std[i];
	}
	int rc = fv_aug_params_check(p);
	return rc ? fv_err_set(FV_E_PROTO, "%s", fv_err_msg(rc)) : 0;
}

void fv_aug_params_to_pb(const fv_aug_params *p, Fovea__Transform *t, float *mean_buf,
			 float *std_buf)
{
	fovea__transform__init(t);
	t->mode = p->mode == FV_AUG_EVAL ? FOVEA__AUG_MODE__AUG_EVAL : FOVEA__AUG_MODE__AUG_TRAIN;
	t->out_width = (uint32_t)p->out_w;
	t->out_height = (uint32_t)p->out_h;
	t->out_channels = (uint32_t)p->out_c;
	t->layout = p->layout == FV_OUT_F16_NCHW  ? FOVEA__OUT_LAYOUT__OUT_F16_NCHW
		    : p->layout == FV_OUT_U8_NHWC ? FOVEA__OUT_LAYOUT__OUT_U8_NHWC
						  : FOVEA__OUT_LAYOUT__OUT_F32_NCHW;
	t->random_resized_crop = p->rrc != 0;
	t->scale_min = p->scale_min;
	t->scale_max = p->scale_max;
	t->ratio_min = p->ratio_min;
	t->ratio_max = p->ratio_max;
	t->pad = (uint32_t)(p->pad > 0 ? p->pad : 0);
	t->flip_p = p->flip_p;
	t->brightness = p->brightness;
	t->contrast = p->contrast;
	t->saturation = p->saturation;
	t->hue = p->hue;
	t->pca_lighting = p->pca_lighting;
	t->erase_p = p->erase_p;
	t->erase_scale_min = p->erase_scale_min;
	t->erase_scale_max = p->erase_scale_max;
	t->erase_ratio_min = p->erase_ratio_min;
	t->erase_ratio_max = p->erase_ratio_max;
	t->resize_shorter = (uint32_t)(p->resize_shorter > 0 ? p->resize_shorter : 0);
	int c = p->out_c == 1 ? 1 : 3;
	for (int i = 0; i < c; i++) {
		mean_buf[i] = p->mean[i];
		std_buf[i] = p->std[i];
	}
	t->n_mean = t->n_std = (size_t)c;
	t->mean = mean_buf;
	t->std = std_buf;
}
