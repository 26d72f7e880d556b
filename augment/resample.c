/* augment/resample.c — one separable resampling pass from decoded pixels
 * straight to the output size: an antialiased triangle filter whose support
 * grows with the shrink factor (PIL's BILINEAR), vertical pass first over
 * contiguous rows (vectorizes), then horizontal into planar floats with the
 * flip folded into where each output column lands. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include "augment/aug_internal.h"

int fv_aug_buf_reserve(fv_aug_buf *b, size_t bytes)
{
	if (bytes <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < bytes)
		cap *= 2;
	void *p = NULL;
	if (posix_memalign(&p, 64, cap))
		return ENOMEM;
	free(b->p);
	b->p = p;
	b->cap = cap;
	return 0;
}

static inline double tri(double x)
{
	x = fabs(x);
	return x < 1.0 ? 1.0 - x : 0.0;
}

int fv_axis_plan(fv_axis *a, double x0, double len, int out_n, int in_n, int prefiltered)
{
	double scale = len / out_n;
	double fscale = scale > 1.0 ? scale : 1.0;
	/* A DCT-scaled source already averaged each sample over about one
	 * (scaled) pixel: narrow the triangle so the two together blur as much
	 * as the triangle alone would on the full image (matching variances:
	 * f^2/6 + 1/12 = scale^2/6). */
	if (prefiltered && scale * scale - 0.5 > 1.0)
		fscale = sqrt(scale * scale - 0.5);
	double support = fscale; /* triangle radius 1, stretched when shrinking */
	int k = (int)ceil(support) * 2 + 1;
	int rc;
	if ((rc = fv_aug_buf_reserve(&a->bstart, sizeof(int) * (size_t)out_n)) ||
	    (rc = fv_aug_buf_reserve(&a->bcnt, sizeof(int) * (size_t)out_n)) ||
	    (rc = fv_aug_buf_reserve(&a->bw, sizeof(float) * (size_t)out_n * (size_t)k)))
		return rc;
	a->start = a->bstart.p;
	a->cnt = a->bcnt.p;
	a->w = a->bw.p;
	a->n = out_n;
	a->k = k;
	a->lo = in_n;
	a->hi = 0;
	for (int i = 0; i < out_n; i++) {
		double center = x0 + (i + 0.5) * scale;
		int lo = (int)floor(center - support + 0.5);
		int hi = (int)floor(center + support + 0.5);
		if (lo < 0)
			lo = 0;
		if (hi > in_n)
			hi = in_n;
		if (hi - lo > k)
			hi = lo + k;
		double ww[k], sum = 0;
		int n = 0;
		for (int x = lo; x < hi; x++) {
			ww[n] = tri((x - center + 0.5) / fscale);
			sum += ww[n++];
		}
		/* trim zero-weight taps at both ends so regions stay tight */
		int s = 0;
		while (n > 0 && ww[s] == 0.0) {
			s++;
			n--;
		}
		while (n > 0 && ww[s + n - 1] == 0.0)
			n--;
		if (n == 0) { /* the span lies outside the source: nearest edge */
			int x = (int)floor(center);
			x = x < 0 ? 0 : x >= in_n ? in_n - 1 : x;
			lo = x;
			s = 0;
			n = 1;
			ww[0] = sum = 1.0;
		}
		a->start[i] = lo + s;
		a->cnt[i] = n;
		for (int j = 0; j < n; j++)
			a->w[(size_t)i * k + j] = (float)(ww[s + j] / sum);
		if (lo + s < a->lo)
			a->lo = lo + s;
		if (lo + s + n > a->hi)
			a->hi = lo + s + n;
	}
	return 0;
}

/* tmp[0..m) = sum_j w[j] * row_j[0..m) */
static void vpass(float *restrict tmp, const uint8_t *restrict src, size_t stride, const float *w,
		  int cnt, size_t m)
{
	float w0 = w[0];
	for (size_t x = 0; x < m; x++)
		tmp[x] = w0 * src[x];
	for (int j = 1; j < cnt; j++) {
		const uint8_t *restrict r = src + (size_t)j * stride;
		float wj = w[j];
		for (size_t x = 0; x < m; x++)
			tmp[x] += wj * r[x];
	}
}

static void hpass1(float *restrict out, const float *restrict tmp, const fv_axis *ax, int lo,
		   int flip)
{
	int n = ax->n;
	for (int i = 0; i < n; i++) {
		const float *w = ax->w + (size_t)i * ax->k;
		const float *s = tmp + (ax->start[i] - lo);
		float acc = 0;
		for (int j = 0; j < ax->cnt[i]; j++)
			acc += w[j] * s[j];
		out[flip ? n - 1 - i : i] = acc;
	}
}

static void hpass3(float *restrict o0, float *restrict o1, float *restrict o2,
		   const float *restrict tmp, const fv_axis *ax, int lo, int flip)
{
	int n = ax->n;
	for (int i = 0; i < n; i++) {
		const float *w = ax->w + (size_t)i * ax->k;
		const float *s = tmp + 3 * (size_t)(ax->start[i] - lo);
		float a0 = 0, a1 = 0, a2 = 0;
		for (int j = 0; j < ax->cnt[i]; j++) {
			a0 += w[j] * s[3 * j];
			a1 += w[j] * s[3 * j + 1];
			a2 += w[j] * s[3 * j + 2];
		}
		int d = flip ? n - 1 - i : i;
		o0[d] = a0;
		o1[d] = a1;
		o2[d] = a2;
	}
}

int fv_resample(float *planes, const fv_aug_view *v, const fv_axis *ax, const fv_axis *ay,
		int flip, fv_aug_buf *tmpb)
{
	int c = v->c, ow = ax->n, oh = ay->n;
	int lo = ax->lo;
	size_t m = (size_t)(ax->hi - ax->lo) * c;
	int rc = fv_aug_buf_reserve(tmpb, m * sizeof(float));
	if (rc)
		return rc;
	float *tmp = tmpb->p;
	size_t plane = (size_t)ow * oh;
	for (int y = 0; y < oh; y++) {
		const uint8_t *src = v->px + (size_t)(ay->start[y] - v->y0) * v->stride +
				     (size_t)(lo - v->x0) * c;
		vpass(tmp, src, v->stride, ay->w + (size_t)y * ay->k, ay->cnt[y], m);
		if (c == 1)
			hpass1(planes + (size_t)y * ow, tmp, ax, lo, flip);
		else
			hpass3(planes + (size_t)y * ow, planes + plane + (size_t)y * ow,
			       planes + 2 * plane + (size_t)y * ow, tmp, ax, lo, flip);
	}
	return 0;
}
