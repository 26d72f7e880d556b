/* nn/models/build.c — the sticky-error builder the zoo and the spec parser
 * use on top of nn/net.h (see build.h). */
#include "nn/models/build.h"

#include <stdarg.h>
#include <stdio.h>

#include "fv_error.h"

#define NAME_MAX_LEN 256

/* Turn a builder return (node id or negative code) into a node id, keeping
 * the first failure. */
int fv_mb_keep(fv_mb *b, int r)
{
	if (r < 0) {
		if (!b->rc)
			b->rc = r;
		return -1;
	}
	return r;
}

static void vname(char *buf, const char *fmt, va_list ap)
{
	vsnprintf(buf, NAME_MAX_LEN, fmt, ap);
}

int fv_mb_fail(fv_mb *b, int rc, const char *fmt, ...)
{
	if (b->rc)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	fv_err_vset(rc, fmt, ap);
	va_end(ap);
	b->rc = rc;
	return -1;
}

static int vconv(fv_mb *b, int x, int out_ch, int k, int stride, int pad, int groups,
		 int bias, const char *fmt, va_list ap)
{
	char name[NAME_MAX_LEN];
	if (b->rc)
		return -1;
	vname(name, fmt, ap);
	return fv_mb_keep(b, fv_net_conv(b->net, x, name, out_ch, k, stride, pad, 1, groups, bias));
}

int fv_mb_conv(fv_mb *b, int x, int out_ch, int k, int stride, int groups, int bias,
	       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vconv(b, x, out_ch, k, stride, k / 2, groups, bias, fmt, ap);
	va_end(ap);
	return r;
}

int fv_mb_convp(fv_mb *b, int x, int out_ch, int k, int stride, int pad, int bias,
		const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vconv(b, x, out_ch, k, stride, pad, 1, bias, fmt, ap);
	va_end(ap);
	return r;
}

int fv_mb_bn(fv_mb *b, int x, const char *fmt, ...)
{
	char name[NAME_MAX_LEN];
	va_list ap;
	if (b->rc)
		return -1;
	va_start(ap, fmt);
	vname(name, fmt, ap);
	va_end(ap);
	return fv_mb_keep(b, fv_net_bn(b->net, x, name));
}

int fv_mb_linear(fv_mb *b, int x, int out, const char *fmt, ...)
{
	char name[NAME_MAX_LEN];
	va_list ap;
	if (b->rc)
		return -1;
	va_start(ap, fmt);
	vname(name, fmt, ap);
	va_end(ap);
	return fv_mb_keep(b, fv_net_linear(b->net, x, name, out));
}

int fv_mb_act(fv_mb *b, int x, enum fv_act act)
{
	return b->rc ? -1 : fv_mb_keep(b, fv_net_act(b->net, x, act));
}

int fv_mb_maxpool(fv_mb *b, int x, int k, int stride, int pad)
{
	return b->rc ? -1 : fv_mb_keep(b, fv_net_maxpool(b->net, x, k, stride, pad));
}

int fv_mb_avgpool(fv_mb *b, int x, int k, int stride, int pad)
{
	return b->rc ? -1 : fv_mb_keep(b, fv_net_avgpool(b->net, x, k, stride, pad));
}

int fv_mb_gap(fv_mb *b, int x)
{
	return b->rc ? -1 : fv_mb_keep(b, fv_net_gap(b->net, x));
}

int fv_mb_flatten(fv_mb *b, int x)
{
	return b->rc ? -1 : fv_mb_keep(b, fv_net_flatten(b->net, x));
}

int fv_mb_add(fv_mb *b, int x, int y)
{
	return b->rc ? -1 : fv_mb_keep(b, fv_net_add(b->net, x, y));
}

int fv_mb_scale(fv_mb *b, int x, int s)
{
	return b->rc ? -1 : fv_mb_keep(b, fv_net_scale(b->net, x, s));
}

int fv_mb_dropout(fv_mb *b, int x, float p)
{
	return b->rc ? -1 : fv_mb_keep(b, fv_net_dropout(b->net, x, p));
}

static int dim(fv_mb *b, int x, int which)
{
	int d[3] = { 0, 0, 0 };
	if (b->rc)
		return 0;
	int rc = fv_net_shape(b->net, x, &d[0], &d[1], &d[2]);
	if (rc) {
		b->rc = rc;
		return 0;
	}
	return d[which];
}

int fv_mb_c(fv_mb *b, int x) { return dim(b, x, 0); }
int fv_mb_h(fv_mb *b, int x) { return dim(b, x, 1); }
int fv_mb_w(fv_mb *b, int x) { return dim(b, x, 2); }

int fv_mb_se(fv_mb *b, int x, int sq, enum fv_act act, const char *prefix)
{
	int c = fv_mb_c(b, x);
	int s = fv_mb_gap(b, x);
	s = fv_mb_conv(b, s, sq, 1, 1, 1, 1, "%s.fc1", prefix);
	s = fv_mb_act(b, s, act);
	s = fv_mb_conv(b, s, c, 1, 1, 1, 1, "%s.fc2", prefix);
	s = fv_mb_act(b, s, FV_ACT_SIGMOID);
	return fv_mb_scale(b, x, s);
}
