/* test_ops.c — every op's backward against finite differences, through tiny
 * networks: input -> 1x1 "pre" conv (so the op's input gradient is checked
 * through the pre conv's weight gradient) -> op under test -> linear logits.
 * Shapes are odd on purpose; strides, padding, groups, dilation included. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fv_error.h"
#include "fv_test.h"
#include "nn/net.h"
#include "nn/backend.h"
#include "nn_gradcheck.h"

enum { N = 3, K = 5 };

typedef int (*op_fn)(fv_net *net, int x);

/* Builds input c x h x w -> pre conv (c2 channels) -> op -> fc K, compiles
 * with threads=1, checks every parameter's gradient. */
static void check_op(int c, int h, int w, int c2, op_fn op, const fv_loss_opts *lo)
{
	fv_net *net;
	FV_CHECK_OK(fv_net_new(&net, c, h, w));
	int x = fv_net_conv(net, FV_NET_INPUT, "pre", c2, 1, 1, 0, 1, 1, 1);
	x = op(net, x);
	FV_CHECK(x > 0);
	x = fv_net_linear(net, x, "fc", K);
	FV_CHECK(x > 0);
	FV_CHECK_OK(fv_net_set_output(net, x));
	FV_CHECK_OK(fv_net_compile(net, &(fv_net_opts){ .batch = N, .threads = 1, .seed = 7 }));
	size_t nx = (size_t)N * c * h * w;
	float *in = malloc(nx * sizeof *in);
	gc_fill(in, nx, 1.0f);
	int lab[N];
	for (int i = 0; i < N; i++)
		lab[i] = (int)(fv_test_rand() % K);
	int checked = gc_check(net, in, N, lab, lo, 12, 1e-3, 2e-2);
	FV_CHECK(checked > 20);
	free(in);
	fv_net_destroy(&net);
}

static int op_conv_s2(fv_net *n, int x)
{
	return fv_net_conv(n, x, "c", 6, 3, 2, 1, 1, 1, 1);
}
static int op_conv_odd(fv_net *n, int x)
{
	return fv_net_conv(n, x, "c", 5, 5, 1, 2, 1, 1, 0);
}
static int op_conv_dil(fv_net *n, int x)
{
	return fv_net_conv(n, x, "c", 8, 3, 1, 2, 2, 1, 0);
}
static int op_conv_groups(fv_net *n, int x)
{
	return fv_net_conv(n, x, "c", 12, 3, 2, 1, 1, 2, 1);
}
static int op_conv_dw(fv_net *n, int x)
{
	return fv_net_conv(n, x, "c", 8, 3, 1, 1, 1, 8, 0);
}
static int op_bn(fv_net *n, int x)
{
	return fv_net_bn(n, x, "bn");
}
static int op_relu(fv_net *n, int x)
{
	return fv_net_act(n, x, FV_ACT_RELU);
}
static int op_relu6(fv_net *n, int x)
{
	/* scale inputs up so both clip ends are exercised */
	return fv_net_act(n, fv_net_conv(n, x, "up", 8, 1, 1, 0, 1, 1, 0), FV_ACT_RELU6);
}
static int op_silu(fv_net *n, int x)
{
	return fv_net_act(n, x, FV_ACT_SILU);
}
static int op_sigmoid(fv_net *n, int x)
{
	return fv_net_act(n, x, FV_ACT_SIGMOID);
}
static int op_maxpool(fv_net *n, int x)
{
	return fv_net_maxpool(n, x, 3, 2, 1);
}
static int op_avgpool(fv_net *n, int x)
{
	return fv_net_avgpool(n, x, 3, 2, 1);
}
static int op_gap(fv_net *n, int x)
{
	return fv_net_gap(n, x);
}
static int op_add(fv_net *n, int x)
{
	/* fan-out: x feeds a conv and the add */
	return fv_net_add(n, x, fv_net_conv(n, x, "c", 8, 3, 1, 1, 1, 1, 0));
}
static int op_scale(fv_net *n, int x)
{
	/* squeeze-excitation: x * sigmoid(conv(gap(x))) */
	int s = fv_net_act(n, fv_net_conv(n, fv_net_gap(n, x), "se", 8, 1, 1, 0, 1, 1, 1),
			   FV_ACT_SIGMOID);
	return fv_net_scale(n, x, s);
}

FV_TEST(grad_conv_stride2_pad_bias) { check_op(3, 9, 7, 8, op_conv_s2, NULL); }
FV_TEST(grad_conv_5x5_odd) { check_op(2, 7, 6, 3, op_conv_odd, NULL); }
FV_TEST(grad_conv_dilation) { check_op(3, 8, 9, 8, op_conv_dil, NULL); }
FV_TEST(grad_conv_groups) { check_op(3, 7, 7, 8, op_conv_groups, NULL); }
FV_TEST(grad_conv_depthwise) { check_op(3, 7, 5, 8, op_conv_dw, NULL); }
FV_TEST(grad_bn_train) { check_op(3, 5, 6, 8, op_bn, NULL); }
FV_TEST(grad_bn_odd_channels) { check_op(3, 5, 3, 5, op_bn, NULL); }
FV_TEST(grad_relu) { check_op(3, 5, 5, 8, op_relu, NULL); }
FV_TEST(grad_relu6) { check_op(3, 5, 5, 8, op_relu6, NULL); }
FV_TEST(grad_silu) { check_op(3, 5, 5, 8, op_silu, NULL); }
FV_TEST(grad_sigmoid) { check_op(3, 5, 5, 8, op_sigmoid, NULL); }
FV_TEST(grad_maxpool) { check_op(3, 7, 8, 8, op_maxpool, NULL); }
FV_TEST(grad_avgpool) { check_op(3, 7, 8, 8, op_avgpool, NULL); }
FV_TEST(grad_gap) { check_op(3, 5, 7, 8, op_gap, NULL); }
FV_TEST(grad_add_fanout) { check_op(3, 6, 5, 8, op_add, NULL); }
FV_TEST(grad_se_scale) { check_op(3, 5, 6, 8, op_scale, NULL); }
FV_TEST(grad_flatten_linear) { check_op(3, 3, 4, 5, op_relu, NULL); }

FV_TEST(grad_loss_smoothing_weights)
{
	float cw[K] = { 1, 0.5f, 2, 1.5f, 0.25f };
	fv_loss_opts lo = { .smoothing = 0.1f, .class_weights = cw };
	check_op(3, 4, 4, 8, op_gap, &lo);
}

FV_TEST(grad_loss_soft_targets)
{
	float t[N * K];
	for (int i = 0; i < N; i++) {
		double s = 0;
		for (int k = 0; k < K; k++)
			s += t[i * K + k] = (float)(fv_test_uniform() + 0.1);
		for (int k = 0; k < K; k++)
			t[i * K + k] = (float)(t[i * K + k] / s);
	}
	fv_loss_opts lo = { .smoothing = 0.05f, .soft_targets = t, .soft_weight = 0.7f };
	check_op(3, 4, 4, 8, op_gap, &lo);
}
