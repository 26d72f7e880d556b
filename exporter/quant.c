/* exporter/quant.c — quantization of the folded model. Weights: int8
 * symmetric per output channel, scale = max|w| / 63 (7 bits; see
 * kernels.h for why not 127). Activations: uint8 asymmetric per tensor,
 * scale = (hi - lo) / 255 with lo <= 0 <= hi so that real zero is exact
 * (padding, ReLU), zp = round(-lo / scale). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "exporter/kernels.h"
#include "exporter/xmodel.h"
#include "fv_error.h"

const char *fv_calib_name(enum fv_calib_method m)
{
	switch (m) {
	case FV_CALIB_MINMAX: return "minmax";
	case FV_CALIB_PERCENTILE: return "percentile";
	case FV_CALIB_KL: return "entropy";
	default: return "?";
	}
}

int fv_quant_weights(fv_xmodel *m)
{
	for (int i = 0; i < m->nops; i++) {
		fv_xop *o = &m->ops[i];
		size_t wn = fv_xop_wcount(o);
		if (!wn)
			continue;
		size_t per = wn / (size_t)o->c;
		free(o->wq);
		free(o->wscale);
		o->wq = malloc(wn);
		o->wscale = malloc(sizeof *o->wscale * (size_t)o->c);
		if (!o->wq || !o->wscale)
			return ENOMEM;
		for (int c = 0; c < o->c; c++) {
			const float *w = o->wt + (size_t)c * per;
			float amax = 0;
			for (size_t k = 0; k < per; k++)
				amax = fabsf(w[k]) > amax ? fabsf(w[k]) : amax;
			float s = amax > 0 ? amax / FV_QW_MAX : 1.0f;
			o->wscale[c] = s;
			for (size_t k = 0; k < per; k++) {
				float q = nearbyintf(w[k] / s);
				q = q > FV_QW_MAX ? FV_QW_MAX : q < -FV_QW_MAX ? -FV_QW_MAX : q;
				o->wq[(size_t)c * per + k] = (int8_t)q;
			}
		}
	}
	return 0;
}

static void qparams(float lo, float hi, float *scale, int32_t *zp)
{
	lo = lo < 0 ? lo : 0;
	hi = hi > 0 ? hi : 0;
	if (!(hi - lo > 1e-8f))
		hi = lo + 1e-3f;
	float s = (hi - lo) / 255.0f;
	float z = nearbyintf(-lo / s);
	*scale = s;
	*zp = (int32_t)(z < 0 ? 0 : z > 255 ? 255 : z);
}

int fv_quant_apply(fv_xmodel *m, const float *lo, const float *hi)
{
	for (int i = 0; i < m->nops; i++)
		if (fv_xop_wcount(&m->ops[i]) && !m->ops[i].wq)
			return fv_err_set(EINVAL, "quantize: op %d has no int8 weights yet", i);
	qparams(lo[0], hi[0], &m->in_scale, &m->in_zp);
	for (int i = 0; i < m->nops; i++) {
		fv_xop *o = &m->ops[i];
		if (o->kind == FV_RT_MAXPOOL || o->kind == FV_RT_AVGPOOL || o->kind == FV_RT_GAP)
			fv_xmodel_vquant(m, o->in0, &o->out_scale, &o->out_zp);
		else
			qparams(lo[i + 1], hi[i + 1], &o->out_scale, &o->out_zp);
	}
	m->quantized = 1;
	return 0;
}
