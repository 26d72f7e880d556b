/* exporter/rtexec.c — executing a validated .fovea graph on one batch slice:
 * buffer planning, input normalization/quantization, and every op in its
 * INT8 and FP32 form. INT8 arithmetic mirrors ONNX QDQ semantics (real =
 * (q - zp) * scale; quantize = round half to even of x / scale, plus zp,
 * saturate to 0..255) so ONNX runtimes agree with it. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "exporter/kernels.h"
#include "exporter/rtint.h"

/* ---------------------------------------------------------------- planning */

static int is_gemm(const fv_fovea_op *o) { return o->kind == FV_RT_CONV || o->kind == FV_RT_LINEAR; }

static int direct(const fv_fovea_op *o)
{
	return o->kind == FV_RT_CONV && o->k == 1 && o->stride == 1 && o->pad == 0 && o->groups == 1;
}

void fv_rt_vquant(const fv_rt *rt, int v, float *scale, int32_t *zp)
{
	if (v == 0) {
		*scale = rt->h->in_scale, *zp = rt->h->in_zp;
	} else {
		*scale = rt->ops[v - 1].out_scale, *zp = rt->ops[v - 1].out_zp;
	}
}

static float act_f(int act, float v)
{
	switch (act) {
	case FV_RT_RELU: return v > 0 ? v : 0;
	case FV_RT_RELU6: return v < 0 ? 0 : v > 6 ? 6 : v;
	case FV_RT_SIGMOID: return 1.0f / (1.0f + expf(-v));
	case FV_RT_SILU: return v / (1.0f + expf(-v));
	}
	return v;
}

static uint8_t quant(float v, float scale, int32_t zp)
{
	float q = nearbyintf(v / scale) + (float)zp;
	return (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
}

int fv_rt_plan(fv_rt *rt)
{
	int int8 = rt->h->dtype == FV_RT_INT8, nops = (int)rt->h->nops;
	size_t esz = int8 ? 1 : sizeof(float);
	rt->vslot = malloc(sizeof *rt->vslot * (size_t)rt->nvals);
	rt->last_use = malloc(sizeof *rt->last_use * (size_t)rt->nvals);
	rt->slot_bytes = calloc((size_t)rt->nvals + 1, sizeof *rt->slot_bytes);
	int *busy = calloc((size_t)rt->nvals, sizeof *busy);
	if (int8)
		rt->lut = calloc((size_t)nops, sizeof *rt->lut);
	if (!rt->vslot || !rt->last_use || !rt->slot_bytes || !busy || (int8 && !rt->lut)) {
		free(busy);
		return ENOMEM;
	}
	for (int v = 0; v < rt->nvals; v++)
		rt->last_use[v] = -1;
	for (int i = 0; i < nops; i++) {
		rt->last_use[rt->ops[i].in0] = i;
		if (rt->ops[i].kind == FV_RT_ADD || rt->ops[i].kind == FV_RT_SCALE)
			rt->last_use[rt->ops[i].in1] = i;
	}
	rt->last_use[nops] = nops;
	rt->nslots = 0;
	for (int v = 0; v < rt->nvals; v++) {
		size_t need = (size_t)rt->vshape[v][0] * rt->vshape[v][1] * rt->vshape[v][2] * esz;
		need = (need + 63) / 64 * 64;
		int s = -1;
		for (int t = 0; t < rt->nslots && s < 0; t++)
			if (!busy[t] && rt->slot_bytes[t] >= need)
				s = t;
		for (int t = 0; t < rt->nslots && s < 0; t++)
			if (!busy[t])
				s = t;
		if (s < 0)
			s = rt->nslots++;
		busy[s] = 1;
		if (rt->slot_bytes[s] < need)
			rt->slot_bytes[s] = need;
		rt->vslot[v] = s;
		/* Free what op v-1 was the last reader of (its output is placed first). */
		for (int u = 0; v > 0 && u < v; u++)
			if (rt->last_use[u] == v - 1 && u != nops)
				busy[rt->vslot[u]] = 0;
		if (rt->last_use[v] < 0 && v != nops)
			busy[s] = 0;
	}
	free(busy);
	/* Slot sizes -> prefix offsets (per image). */
	size_t off = 0;
	for (int t = 0; t < rt->nslots; t++) {
		size_t b = rt->slot_bytes[t];
		rt->slot_bytes[t] = off;
		off += b;
	}
	rt->slot_bytes[rt->nslots] = off;
	rt->arena_bytes = off;
	rt->col_bytes = 64;
	for (int i = 0; i < nops; i++) {
		const fv_fovea_op *o = &rt->ops[i];
		if (o->kind != FV_RT_CONV || direct(o))
			continue;
		size_t row = int8 ? (size_t)fv_round_up((int)o->K, 4) : o->K * sizeof(float);
		size_t b = (size_t)o->h * o->w * row;
		if (b > rt->col_bytes)
			rt->col_bytes = b;
	}
	if (int8) {
		for (int i = 0; i < nops; i++) {
			const fv_fovea_op *o = &rt->ops[i];
			if (o->kind != FV_RT_ACT)
				continue;
			float si;
			int32_t zi;
			fv_rt_vquant(rt, o->in0, &si, &zi);
			for (int q = 0; q < 256; q++)
				rt->lut[i][q] = quant(act_f((int)o->act, (float)(q - zi) * si), o->out_scale, o->out_zp);
		}
	}
	return 0;
}

static void *vbuf(const fv_rt *rt, const fv_rt_ws *w, int v)
{
	return (uint8_t *)w->arena + rt->slot_bytes[rt->vslot[v]] * (size_t)w->per;
}

static size_t velems(const fv_rt *rt, int v)
{
	return (size_t)rt->vshape[v][0] * rt->vshape[v][1] * rt->vshape[v][2];
}

/* ---------------------------------------------------------------- im2col */

/* Short row copies: a memcpy call per 16 bytes costs more than the copy. */
static inline void copy_uint8_t(uint8_t *d, const uint8_t *s, int n)
{
	int i = 0;
#if defined(__AVX2__)
	for (; i + 16 <= n; i += 16)
		_mm_storeu_si128((__m128i *)(d + i), _mm_loadu_si128((const __m128i *)(s + i)));
#endif
	for (; i < n; i++)
		d[i] = s[i];
}

static inline void copy_float(float *d, const float *s, int n)
{
	memcpy(d, s, sizeof *d * (size_t)n);
}

/* One image's rows for group channels [c0, c0 + cg): row (oy, ox) holds
 * K = k*k*cg values in (r, s, c) order, ld apart; outside pixels get fill. */
#define IM2COL(NAME, T)                                                                        \
	static void NAME(const T *in, const fv_fovea_op *o, int c0, T fill, T *col, size_t ld)     \
	{                                                                                          \
		int cg = (int)(o->ic / o->groups), k = (int)o->k;                                  \
		for (int oy = 0; oy < (int)o->h; oy++)                                             \
			for (int ox = 0; ox < (int)o->w; ox++) {                                   \
				T *row = col + ((size_t)oy * o->w + ox) * ld;                      \
				int x0 = ox * (int)o->stride - (int)o->pad;                        \
				int whole = o->groups == 1 && o->dil == 1 && x0 >= 0 && x0 + k <= (int)o->iw; \
				for (int r = 0; r < k; r++) {                                      \
					int iy = oy * (int)o->stride - (int)o->pad + r * (int)o->dil; \
					if (whole && iy >= 0 && iy < (int)o->ih) {                 \
						/* k pixels side by side: one contiguous run. */  \
						copy_##T(row, in + ((size_t)iy * o->iw + x0) * o->ic, k * cg); \
						row += k * cg;                                     \
						continue;                                          \
					}                                                          \
					for (int s = 0; s < k; s++, row += cg) {                   \
						int ix = ox * (int)o->stride - (int)o->pad + s * (int)o->dil; \
						if (iy < 0 || ix < 0 || iy >= (int)o->ih || ix >= (int)o->iw) { \
							for (int c = 0; c < cg; c++)               \
								row[c] = fill;                     \
							continue;                                  \
						}                                                  \
						copy_##T(row, in + ((size_t)iy * o->iw + ix) * o->ic + c0, cg); \
					}                                                          \
				}                                                                  \
			}                                                                          \
	}
IM2COL(im2col_u8, uint8_t)
IM2COL(im2col_f32, float)

/* ---------------------------------------------------------------- INT8 ops */

static void clamp_range(int act, float scale, int32_t zp, int32_t *lo, int32_t *hi)
{
	*lo = 0, *hi = 255;
	if (act == FV_RT_RELU || act == FV_RT_RELU6)
		*lo = zp;
	if (act == FV_RT_RELU6) {
		float six = nearbyintf(6.0f / scale) + (float)zp;
		*hi = six < 255 ? (int32_t)six : 255;
	}
}

static void q_gemm(const fv_rt *rt, fv_rt_ws *w, int i, const uint8_t *in, int n, void *out, int last)
{
	const fv_fovea_op *o = &rt->ops[i];
	int cg = (int)(o->c / o->groups), n16 = fv_round_up(cg, 16);
	int K = (int)o->K, K4 = fv_round_up(K, 4);
	const int8_t *W = (const int8_t *)(rt->data + o->w_off);
	const int32_t *B = (const int32_t *)(rt->data + o->b_off);
	const float *M = (const float *)(rt->data + o->m_off);
	fv_qepi e = { .kind = last ? FV_QEPI_F32 : FV_QEPI_U8, .zp = o->out_zp };
	clamp_range((int)o->act, o->out_scale, o->out_zp, &e.lo, &e.hi);
	size_t esz = last ? sizeof(float) : 1, psz = fv_qgemm_packed_size(cg, K);
	if (o->kind == FV_RT_LINEAR || direct(o)) {
		int rows = o->kind == FV_RT_LINEAR ? n : n * (int)(o->ih * o->iw);
		e.bias = B, e.mult = M;
		fv_qgemm(rows, cg, K, in, K, W, &e, out, (int)o->c);
		return;
	}
	float si;
	int32_t zi;
	fv_rt_vquant(rt, o->in0, &si, &zi);
	size_t isz = (size_t)o->ic * o->ih * o->iw, osz = (size_t)o->c * o->h * o->w;
	for (int j = 0; j < n; j++)
		for (int g = 0; g < (int)o->groups; g++) {
			im2col_u8(in + j * isz, o, g * (int)(o->ic / o->groups), (uint8_t)zi, w->col, (size_t)K4);
			e.bias = B + (size_t)g * n16, e.mult = M + (size_t)g * n16;
			fv_qgemm((int)(o->h * o->w), cg, K, w->col, K4, W + (size_t)g * psz, &e,
				 (uint8_t *)out + (j * osz + (size_t)g * cg) * esz, (int)o->c);
		}
}

/* The input window [y0, y1) x [x0, x1) of pooling output (oy, ox), cut to
 * the input (global average pooling: all of it). */
static void pool_window(const fv_fovea_op *o, int gap, int k, int oy, int ox, int *y0, int *y1,
			int *x0, int *x1)
{
	int ys = gap ? 0 : oy * (int)o->stride - (int)o->pad;
	int xs = gap ? 0 : ox * (int)o->stride - (int)o->pad;
	int ye = gap ? (int)o->ih : ys + k, xe = gap ? (int)o->iw : xs + k;
	*y0 = ys < 0 ? 0 : ys;
	*x0 = xs < 0 ? 0 : xs;
	*y1 = ye > (int)o->ih ? (int)o->ih : ye;
	*x1 = xe > (int)o->iw ? (int)o->iw : xe;
}

static void q_pool(const fv_rt *rt, int i, const uint8_t *in, int n, uint8_t *out)
{
	const fv_fovea_op *o = &rt->ops[i];
	float si, so = o->out_scale;
	int32_t zi, zo = o->out_zp;
	fv_rt_vquant(rt, o->in0, &si, &zi);
	int gap = o->kind == FV_RT_GAP, k = gap ? 1 : (int)o->k;
	size_t isz = (size_t)o->ic * o->ih * o->iw, osz = (size_t)o->c * o->h * o->w;
	int C = (int)o->c;
	float area = gap ? (float)(o->ih * o->iw) : (float)(k * k);
	for (int j = 0; j < n; j++)
		for (int oy = 0; oy < (int)o->h; oy++)
			for (int ox = 0; ox < (int)o->w; ox++) {
				int y0, y1, x0, x1;
				pool_window(o, gap, k, oy, ox, &y0, &y1, &x0, &x1);
				uint8_t *d = out + j * osz + ((size_t)oy * o->w + ox) * C;
				for (int c = 0; c < C; c++) {
					int32_t mx = 0, sum = 0;
					for (int y = y0; y < y1; y++)
						for (int x = x0; x < x1; x++) {
							int32_t v = in[j * isz + ((size_t)y * o->iw + x) * C + c];
							mx = v > mx ? v : mx;
							sum += v - zi;
						}
					if (o->kind == FV_RT_MAXPOOL)
						d[c] = quant((float)(mx - zi) * si, so, zo);
					else
						d[c] = quant((float)sum * si / area, so, zo);
				}
			}
}

static void q_op(const fv_rt *rt, fv_rt_ws *w, int i, int n, void *out, int last)
{
	const fv_fovea_op *o = &rt->ops[i];
	const uint8_t *a = vbuf(rt, w, o->in0);
	size_t cnt = velems(rt, i + 1) * (size_t)n;
	float sa, sb;
	int32_t za, zb, lo, hi;
	fv_rt_vquant(rt, o->in0, &sa, &za);
	uint8_t *q = out;
	switch (o->kind) {
	case FV_RT_CONV:
	case FV_RT_LINEAR:
		q_gemm(rt, w, i, a, n, out, last);
		break;
	case FV_RT_ADD: {
		const uint8_t *b = vbuf(rt, w, o->in1);
		fv_rt_vquant(rt, o->in1, &sb, &zb);
		clamp_range((int)o->act, o->out_scale, o->out_zp, &lo, &hi);
		fv_qadd(cnt, a, sa, za, b, sb, zb, o->out_scale, o->out_zp, lo, hi, q);
		break;
	}
	case FV_RT_MAXPOOL:
	case FV_RT_AVGPOOL:
	case FV_RT_GAP:
		q_pool(rt, i, a, n, q);
		break;
	case FV_RT_ACT:
		for (size_t t = 0; t < cnt; t++)
			q[t] = rt->lut[i][a[t]];
		break;
	case FV_RT_SCALE: {
		const uint8_t *b = vbuf(rt, w, o->in1);
		fv_rt_vquant(rt, o->in1, &sb, &zb);
		size_t C = o->c, hw = (size_t)o->h * o->w;
		for (int j = 0; j < n; j++)
			for (size_t p = 0; p < hw; p++)
				for (size_t c = 0; c < C; c++) {
					size_t t = (j * hw + p) * C + c;
					float f = (float)(a[t] - za) * sa * (float)(b[j * C + c] - zb) * sb;
					q[t] = quant(f, o->out_scale, o->out_zp);
				}
		break;
	}
	}
}

/* ---------------------------------------------------------------- FP32 ops */

static void f_gemm(const fv_rt *rt, fv_rt_ws *w, int i, const float *in, int n, float *out)
{
	const fv_fovea_op *o = &rt->ops[i];
	int cg = (int)(o->c / o->groups), K = (int)o->K;
	const float *W = (const float *)(rt->data + o->w_off);
	const float *B = (const float *)(rt->data + o->b_off);
	size_t osz = (size_t)o->c * o->h * o->w, isz = (size_t)o->ic * o->ih * o->iw;
	if (o->kind == FV_RT_LINEAR || direct(o)) {
		int rows = o->kind == FV_RT_LINEAR ? n : n * (int)(o->ih * o->iw);
		dnnl_sgemm('N', 'T', rows, cg, K, 1.0f, in, K, W, K, 0.0f, out, (dnnl_dim_t)o->c);
	} else {
		for (int j = 0; j < n; j++)
			for (int g = 0; g < (int)o->groups; g++) {
				im2col_f32(in + j * isz, o, g * (int)(o->ic / o->groups), 0.0f, w->col, (size_t)K);
				dnnl_sgemm('N', 'T', (dnnl_dim_t)(o->h * o->w), cg, K, 1.0f, w->col, K,
					   W + (size_t)g * cg * K, K, 0.0f, out + j * osz + (size_t)g * cg,
					   (dnnl_dim_t)o->c);
			}
	}
	size_t rows = (size_t)n * o->h * o->w, C = o->c;
	/* One loop per activation so each vectorizes. */
	for (size_t r = 0; r < rows; r++) {
		float *y = out + r * C;
		switch (o->act) {
		case FV_RT_RELU:
			for (size_t c = 0; c < C; c++)
				y[c] = y[c] + B[c] > 0 ? y[c] + B[c] : 0.0f;
			break;
		case FV_RT_RELU6:
			for (size_t c = 0; c < C; c++)
				y[c] = y[c] + B[c] < 0 ? 0.0f : y[c] + B[c] > 6 ? 6.0f : y[c] + B[c];
			break;
		default:
			for (size_t c = 0; c < C; c++)
				y[c] = y[c] + B[c];
		}
	}
}

static void f_pool(const fv_rt *rt, int i, const float *in, int n, float *out)
{
	const fv_fovea_op *o = &rt->ops[i];
	int gap = o->kind == FV_RT_GAP, k = gap ? 1 : (int)o->k, C = (int)o->c;
	size_t isz = (size_t)o->ic * o->ih * o->iw, osz = (size_t)o->c * o->h * o->w;
	float area = gap ? (float)(o->ih * o->iw) : (float)(k * k);
	for (int j = 0; j < n; j++)
		for (int oy = 0; oy < (int)o->h; oy++)
			for (int ox = 0; ox < (int)o->w; ox++) {
				int y0, y1, x0, x1;
				pool_window(o, gap, k, oy, ox, &y0, &y1, &x0, &x1);
				float *d = out + j * osz + ((size_t)oy * o->w + ox) * C;
				for (int c = 0; c < C; c++) {
					float mx = -INFINITY, sum = 0;
					for (int y = y0; y < y1; y++)
						for (int x = x0; x < x1; x++) {
							float v = in[j * isz + ((size_t)y * o->iw + x) * C + c];
							mx = v > mx ? v : mx;
							sum += v;
						}
					d[c] = o->kind == FV_RT_MAXPOOL ? mx : sum / area;
				}
			}
}

static void f_op(const fv_rt *rt, fv_rt_ws *w, int i, int n, float *out)
{
	const fv_fovea_op *o = &rt->ops[i];
	const float *a = vbuf(rt, w, o->in0);
	size_t cnt = velems(rt, i + 1) * (size_t)n;
	switch (o->kind) {
	case FV_RT_CONV:
	case FV_RT_LINEAR:
		f_gemm(rt, w, i, a, n, out);
		break;
	case FV_RT_ADD: {
		const float *b = vbuf(rt, w, o->in1);
		if (o->act == FV_RT_RELU)
			for (size_t t = 0; t < cnt; t++)
				out[t] = a[t] + b[t] > 0 ? a[t] + b[t] : 0.0f;
		else
			for (size_t t = 0; t < cnt; t++)
				out[t] = act_f((int)o->act, a[t] + b[t]);
		break;
	}
	case FV_RT_MAXPOOL:
	case FV_RT_AVGPOOL:
	case FV_RT_GAP:
		f_pool(rt, i, a, n, out);
		break;
	case FV_RT_ACT:
		for (size_t t = 0; t < cnt; t++)
			out[t] = act_f((int)o->act, a[t]);
		break;
	case FV_RT_SCALE: {
		const float *b = vbuf(rt, w, o->in1);
		size_t C = o->c, hw = (size_t)o->h * o->w;
		for (int j = 0; j < n; j++)
			for (size_t p = 0; p < hw; p++)
				for (size_t c = 0; c < C; c++)
					out[(j * hw + p) * C + c] = a[(j * hw + p) * C + c] * b[j * C + c];
		break;
	}
	}
}

/* ---------------------------------------------------------------- a slice */

static void input(const fv_rt *rt, const void *x, int u8, int n, void *dst)
{
	const fv_fovea_hdr *h = rt->h;
	int C = (int)h->in_c;
	size_t hw = (size_t)h->in_h * h->in_w;
	int int8 = h->dtype == FV_RT_INT8;
	for (int j = 0; j < n; j++)
		for (size_t p = 0; p < hw; p++)
			for (int c = 0; c < C; c++) {
				float px = u8 ? (float)((const uint8_t *)x)[(j * hw + p) * C + c]
					      : ((const float *)x)[((size_t)j * C + c) * hw + p];
				float v = (px - h->mean[c]) / h->std[c];
				size_t t = (j * hw + p) * C + c;
				if (int8)
					((uint8_t *)dst)[t] = quant(v, h->in_scale, h->in_zp);
				else
					((float *)dst)[t] = v;
			}
}

void fv_rt_slice(fv_rt *rt, fv_rt_ws *w, const void *x, int u8, int n, float *logits,
		 fv_rt_observe_fn fn, void *ctx)
{
	int int8 = rt->h->dtype == FV_RT_INT8, nops = (int)rt->h->nops;
	input(rt, x, u8, n, vbuf(rt, w, 0));
	if (fn)
		fn(ctx, 0, vbuf(rt, w, 0), velems(rt, 0) * (size_t)n, (int)rt->vshape[0][0]);
	for (int i = 0; i < nops; i++) {
		int last = i == nops - 1 && is_gemm(&rt->ops[i]);
		void *out = last ? (void *)logits : vbuf(rt, w, i + 1);
		if (int8)
			q_op(rt, w, i, n, out, last);
		else
			f_op(rt, w, i, n, out);
		if (fn)
			fn(ctx, i + 1, out, velems(rt, i + 1) * (size_t)n, (int)rt->vshape[i + 1][0]);
	}
	if (is_gemm(&rt->ops[nops - 1]))
		return;
	/* An output not made by a GEMM: dequantize (or copy) it. */
	size_t cnt = (size_t)n * rt->h->classes;
	const void *v = vbuf(rt, w, nops);
	for (size_t t = 0; t < cnt; t++)
		logits[t] = int8 ? (float)(((const uint8_t *)v)[t] - rt->ops[nops - 1].out_zp) *
					   rt->ops[nops - 1].out_scale
				 : ((const float *)v)[t];
}
