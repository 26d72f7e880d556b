/* nn/models/resnet.c — ResNets: the CIFAR family (resnet20..110, He et al.
 * 2015 sec. 4.2, projection shortcuts) and the ImageNet family (resnet18..101)
 * with torchvision's layout and parameter names, v1.5 bottlenecks. */
#include "nn/models/build.h"

#include <stdio.h>

#include "fv_error.h"

/* A basic block: 3x3 conv (stride) + BN + ReLU, 3x3 conv + BN, plus the
 * shortcut (1x1 conv + BN projection when the shape changes), then ReLU.
 * Names follow torchvision: <p>.conv1, <p>.bn1, ..., <p>.downsample.0/1. */
static int basic(fv_mb *b, int x, int planes, int stride, const char *p)
{
	int in_c = fv_mb_c(b, x);
	int y = fv_mb_conv(b, x, planes, 3, stride, 1, 0, "%s.conv1", p);
	y = fv_mb_bn(b, y, "%s.bn1", p);
	y = fv_mb_act(b, y, FV_ACT_RELU);
	y = fv_mb_conv(b, y, planes, 3, 1, 1, 0, "%s.conv2", p);
	y = fv_mb_bn(b, y, "%s.bn2", p);
	int sc = x;
	if (stride != 1 || in_c != planes) {
		sc = fv_mb_conv(b, x, planes, 1, stride, 1, 0, "%s.downsample.0", p);
		sc = fv_mb_bn(b, sc, "%s.downsample.1", p);
	}
	return fv_mb_act(b, fv_mb_add(b, y, sc), FV_ACT_RELU);
}

/* A bottleneck (v1.5: the stride sits on the 3x3 conv): 1x1 to planes, 3x3
 * (stride), 1x1 to 4 x planes, each with BN, ReLU after the add. */
static int bottleneck(fv_mb *b, int x, int planes, int stride, const char *p)
{
	int in_c = fv_mb_c(b, x), out_c = planes * 4;
	int y = fv_mb_conv(b, x, planes, 1, 1, 1, 0, "%s.conv1", p);
	y = fv_mb_act(b, fv_mb_bn(b, y, "%s.bn1", p), FV_ACT_RELU);
	y = fv_mb_conv(b, y, planes, 3, stride, 1, 0, "%s.conv2", p);
	y = fv_mb_act(b, fv_mb_bn(b, y, "%s.bn2", p), FV_ACT_RELU);
	y = fv_mb_conv(b, y, out_c, 1, 1, 1, 0, "%s.conv3", p);
	y = fv_mb_bn(b, y, "%s.bn3", p);
	int sc = x;
	if (stride != 1 || in_c != out_c) {
		sc = fv_mb_conv(b, x, out_c, 1, stride, 1, 0, "%s.downsample.0", p);
		sc = fv_mb_bn(b, sc, "%s.downsample.1", p);
	}
	return fv_mb_act(b, fv_mb_add(b, y, sc), FV_ACT_RELU);
}

int fv_model_resnet_cifar(fv_mb *b, int depth, int classes)
{
	static const int widths[3] = { 16, 32, 64 };
	if (depth < 8 || (depth - 2) % 6)
		return fv_mb_fail(b, FV_E_CONFIG, "resnet%d: CIFAR depth must be 6n+2", depth);
	int n = (depth - 2) / 6;
	int x = fv_mb_conv(b, FV_NET_INPUT, 16, 3, 1, 1, 0, "conv1");
	x = fv_mb_act(b, fv_mb_bn(b, x, "bn1"), FV_ACT_RELU);
	for (int s = 0; s < 3; s++) {
		for (int i = 0; i < n; i++) {
			char p[48];
			snprintf(p, sizeof p, "layer%d.%d", s + 1, i);
			x = basic(b, x, widths[s], s > 0 && i == 0 ? 2 : 1, p);
		}
	}
	x = fv_mb_flatten(b, fv_mb_gap(b, x));
	return fv_mb_linear(b, x, classes, "fc");
}

int fv_model_resnet(fv_mb *b, int depth, int classes)
{
	static const struct { int depth, blocks[4], bottleneck; } cfg[] = {
		{ 18, { 2, 2, 2, 2 }, 0 },
		{ 34, { 3, 4, 6, 3 }, 0 },
		{ 50, { 3, 4, 6, 3 }, 1 },
		{ 101, { 3, 4, 23, 3 }, 1 },
		{ 152, { 3, 8, 36, 3 }, 1 },
	};
	int k = 0;
	while (k < (int)(sizeof cfg / sizeof cfg[0]) && cfg[k].depth != depth)
		k++;
	if (k == (int)(sizeof cfg / sizeof cfg[0]))
		return fv_mb_fail(b, FV_E_CONFIG, "resnet%d: no such ImageNet ResNet", depth);

	int x, small = fv_mb_h(b, FV_NET_INPUT) < 64 || fv_mb_w(b, FV_NET_INPUT) < 64;
	if (small) { /* keep resolution: 3x3 stride-1 stem, no max pool */
		x = fv_mb_conv(b, FV_NET_INPUT, 64, 3, 1, 1, 0, "conv1");
		x = fv_mb_act(b, fv_mb_bn(b, x, "bn1"), FV_ACT_RELU);
	} else {
		x = fv_mb_conv(b, FV_NET_INPUT, 64, 7, 2, 1, 0, "conv1");
		x = fv_mb_act(b, fv_mb_bn(b, x, "bn1"), FV_ACT_RELU);
		x = fv_mb_maxpool(b, x, 3, 2, 1);
	}
	for (int s = 0; s < 4; s++) {
		for (int i = 0; i < cfg[k].blocks[s]; i++) {
			char p[48];
			int stride = s > 0 && i == 0 ? 2 : 1;
			snprintf(p, sizeof p, "layer%d.%d", s + 1, i);
			x = cfg[k].bottleneck ? bottleneck(b, x, 64 << s, stride, p)
					      : basic(b, x, 64 << s, stride, p);
		}
	}
	x = fv_mb_flatten(b, fv_mb_gap(b, x));
	return fv_mb_linear(b, x, classes, "fc");
}
