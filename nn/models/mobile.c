/* nn/models/mobile.c — the mobile nets: MobileNetV2 (width 1.0) and the
 * EfficientNet family with compound scaling, laid out and named like
 * torchvision's (features.N.block.M..., classifier.1). */
#include "nn/models/build.h"

#include <math.h>
#include <stdio.h>

#include "fv_error.h"

/* Round v to a multiple of 8 without losing more than 10% (the reference
 * implementation's _make_divisible). */
static int divisible8(double v)
{
	int r = (int)(v + 4) / 8 * 8;
	if (r < 8)
		r = 8;
	if (r < 0.9 * v)
		r += 8;
	return r;
}

/* conv + BN (+ activation unless act < 0), named <p>.0 and <p>.1. */
static int cba(fv_mb *b, int x, int out, int k, int stride, int groups, int act,
	       const char *p)
{
	x = fv_mb_conv(b, x, out, k, stride, groups, 0, "%s.0", p);
	x = fv_mb_bn(b, x, "%s.1", p);
	return act < 0 ? x : fv_mb_act(b, x, (enum fv_act)act);
}

static int small_input(fv_mb *b)
{
	return fv_mb_h(b, FV_NET_INPUT) < 64 || fv_mb_w(b, FV_NET_INPUT) < 64;
}

/* ---- MobileNetV2 ---------------------------------------------------------- */

/* An inverted residual: 1x1 expand (t != 1), 3x3 depthwise, 1x1 linear
 * projection; identity shortcut when the shape is kept. */
static int inverted(fv_mb *b, int x, int t, int out, int stride, int idx)
{
	int in_c = fv_mb_c(b, x), hid = in_c * t, j = 0, y = x;
	char p[48];
	if (t != 1) {
		snprintf(p, sizeof p, "features.%d.conv.%d", idx, j++);
		y = cba(b, y, hid, 1, 1, 1, FV_ACT_RELU6, p);
	}
	snprintf(p, sizeof p, "features.%d.conv.%d", idx, j++);
	y = cba(b, y, hid, 3, stride, hid, FV_ACT_RELU6, p);
	y = fv_mb_conv(b, y, out, 1, 1, 1, 0, "features.%d.conv.%d", idx, j);
	y = fv_mb_bn(b, y, "features.%d.conv.%d", idx, j + 1);
	return stride == 1 && in_c == out ? fv_mb_add(b, y, x) : y;
}

int fv_model_mobilenetv2(fv_mb *b, int classes)
{
	static const int cfg[7][4] = { /* expand t, channels c, repeats n, stride s */
		{ 1, 16, 1, 1 }, { 6, 24, 2, 2 }, { 6, 32, 3, 2 }, { 6, 64, 4, 2 },
		{ 6, 96, 3, 1 }, { 6, 160, 3, 2 }, { 6, 320, 1, 1 },
	};
	int idx = 1;
	int x = cba(b, FV_NET_INPUT, 32, 3, small_input(b) ? 1 : 2, 1, FV_ACT_RELU6,
		    "features.0");
	for (int s = 0; s < 7; s++)
		for (int i = 0; i < cfg[s][2]; i++, idx++)
			x = inverted(b, x, cfg[s][0], cfg[s][1], i == 0 ? cfg[s][3] : 1, idx);
	char p[48];
	snprintf(p, sizeof p, "features.%d", idx);
	x = cba(b, x, 1280, 1, 1, 1, FV_ACT_RELU6, p);
	x = fv_mb_dropout(b, fv_mb_flatten(b, fv_mb_gap(b, x)), 0.2f);
	return fv_mb_linear(b, x, classes, "classifier.1");
}

/* ---- EfficientNet --------------------------------------------------------- */

/* MBConv: 1x1 expand (e != 1), k x k depthwise, squeeze-excitation with
 * in/4 channels, 1x1 projection; identity shortcut when the shape is kept
 * (torchvision adds stochastic depth there; we do not: it has no
 * parameters and only regularizes). */
static int mbconv(fv_mb *b, int x, int e, int k, int stride, int out, const char *p)
{
	int in_c = fv_mb_c(b, x), hid = in_c * e, j = 0, y = x;
	char q[64];
	if (e != 1) {
		snprintf(q, sizeof q, "%s.block.%d", p, j++);
		y = cba(b, y, hid, 1, 1, 1, FV_ACT_SILU, q);
	}
	snprintf(q, sizeof q, "%s.block.%d", p, j++);
	y = cba(b, y, hid, k, stride, hid, FV_ACT_SILU, q);
	snprintf(q, sizeof q, "%s.block.%d", p, j++);
	y = fv_mb_se(b, y, in_c / 4 > 1 ? in_c / 4 : 1, FV_ACT_SILU, q);
	snprintf(q, sizeof q, "%s.block.%d", p, j);
	y = cba(b, y, out, 1, 1, 1, -1, q);
	return stride == 1 && in_c == out ? fv_mb_add(b, y, x) : y;
}

int fv_model_efficientnet_size(int phi)
{
	return (int)lround(224 * pow(1.15, phi));
}

int fv_model_efficientnet(fv_mb *b, int phi, int classes)
{
	static const int cfg[7][5] = { /* expand, kernel, stride, channels, repeats */
		{ 1, 3, 1, 16, 1 }, { 6, 3, 2, 24, 2 }, { 6, 5, 2, 40, 2 }, { 6, 3, 2, 80, 3 },
		{ 6, 5, 1, 112, 3 }, { 6, 5, 2, 192, 4 }, { 6, 3, 1, 320, 1 },
	};
	static const float dropout[8] = { 0.2f, 0.2f, 0.3f, 0.3f, 0.4f, 0.4f, 0.5f, 0.5f };
	if (phi < 0 || phi > 7)
		return fv_mb_fail(b, FV_E_CONFIG, "efficientnet-b%d: N must be 0..7", phi);
	double w = pow(1.1, phi), d = pow(1.2, phi);
	int x = cba(b, FV_NET_INPUT, divisible8(32 * w), 3, small_input(b) ? 1 : 2, 1,
		    FV_ACT_SILU, "features.0");
	for (int s = 0; s < 7; s++) {
		int n = (int)ceil(cfg[s][4] * d), out = divisible8(cfg[s][3] * w);
		for (int i = 0; i < n; i++) {
			char p[48];
			snprintf(p, sizeof p, "features.%d.%d", s + 1, i);
			x = mbconv(b, x, cfg[s][0], cfg[s][1], i == 0 ? cfg[s][2] : 1, out, p);
		}
	}
	x = cba(b, x, 4 * fv_mb_c(b, x), 1, 1, 1, FV_ACT_SILU, "features.8");
	x = fv_mb_dropout(b, fv_mb_flatten(b, fv_mb_gap(b, x)), dropout[phi]);
	return fv_mb_linear(b, x, classes, "classifier.1");
}
