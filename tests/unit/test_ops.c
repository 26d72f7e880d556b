/* test_ops.c — every op's backward against finite differences, through tiny
 * networks: input -> 1x1 "pre" conv (so the op's input gradient is checked
 * through the pre conv's weight gradient) -> op under test -> linear logits.
 * Shapes are odd on purpose; strides, padding, groups, dilation included. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fv_error.h"
#include "fv_test.h"
#include "nn/models.h"
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
	lo.temperature = 2; /* distillation: the soft term at temperature T */
	check_op(3, 4, 4, 8, op_gap, &lo);
}

static int op_conv_wino(fv_net *n, int x)
{
	return fv_net_conv(n, x, "c", 16, 3, 1, 1, 1, 1, 0); /* Winograd where available */
}
FV_TEST(grad_conv_3x3_16ch) { check_op(3, 6, 7, 16, op_conv_wino, NULL); }

static int op_dropout(fv_net *n, int x)
{
	return fv_net_dropout(n, x, 0.3f);
}

/* Dropout: a train forward zeroes about p of the activations and scales the
 * rest by 1/(1-p); two forwards draw different masks; eval is the identity. */
FV_TEST(dropout_mask)
{
	fv_net *net;
	FV_CHECK_OK(fv_net_new(&net, 16, 8, 8));
	int x = fv_net_flatten(net, op_dropout(net, FV_NET_INPUT));
	FV_CHECK_OK(fv_net_set_output(net, x));
	FV_CHECK_OK(fv_net_compile(net, &(fv_net_opts){ .batch = 4, .threads = 1, .seed = 3 }));
	size_t nx = 4 * 16 * 8 * 8;
	float *in = malloc(nx * sizeof *in), *a = malloc(nx * sizeof *a);
	for (size_t i = 0; i < nx; i++)
		in[i] = 1.0f + (float)(i % 13);
	FV_CHECK_OK(fv_net_forward(net, in, 4, 1));
	memcpy(a, fv_net_logits(net), nx * sizeof *a);
	size_t zeros = 0, same = 0;
	for (size_t i = 0; i < nx; i++) {
		if (a[i] == 0)
			zeros++;
		else
			FV_CHECK_NEAR(a[i], in[i] / 0.7, 1e-4 * in[i]);
	}
	FV_CHECK_MSG(zeros > nx * 0.25 && zeros < nx * 0.35, "%zu of %zu dropped", zeros, nx);
	FV_CHECK_OK(fv_net_forward(net, in, 4, 1));
	for (size_t i = 0; i < nx; i++)
		same += (a[i] == 0) == (fv_net_logits(net)[i] == 0);
	FV_CHECK(same < nx);
	FV_CHECK_OK(fv_net_forward(net, in, 4, 0));
	FV_CHECK(!memcmp(fv_net_logits(net), in, nx * sizeof *in));
	free(in), free(a);
	fv_net_destroy(&net);
}

/* Dropout backward: with the loss seeded, the gradient reaching the pre conv
 * passes only through kept units. Checked by FD with a fixed mask: p = 0
 * must equal no dropout at all. */
static int op_dropout0(fv_net *n, int x)
{
	return fv_net_dropout(n, x, 0.0f);
}
FV_TEST(grad_dropout_p0) { check_op(3, 4, 5, 8, op_dropout0, NULL); }

static int op_conv_1x1_s2(fv_net *n, int x)
{
	return fv_net_conv(n, x, "c", 16, 1, 2, 0, 1, 1, 0);
}
FV_TEST(grad_conv_1x1_stride2) { check_op(3, 8, 8, 16, op_conv_1x1_s2, NULL); }

static int op_two_convs(fv_net *n, int x)
{
	/* fan-out into two convolutions, as a ResNet downsampling block */
	return fv_net_add(n, fv_net_conv(n, x, "c", 16, 1, 2, 0, 1, 1, 0),
			  fv_net_conv(n, x, "d", 16, 3, 2, 1, 1, 1, 0));
}
FV_TEST(grad_fanout_two_convs) { check_op(3, 8, 8, 16, op_two_convs, NULL); }

static int op_bn_relu(fv_net *n, int x)
{
	/* fused by compile: BN applies the ReLU (dnnl_fuse_norm_relu) */
	return fv_net_act(n, fv_net_bn(n, x, "bn"), FV_ACT_RELU);
}
FV_TEST(grad_bn_relu_fused) { check_op(3, 5, 6, 16, op_bn_relu, NULL); }

static int op_add_self(fv_net *n, int x)
{
	return fv_net_add(n, x, x);
}
FV_TEST(grad_add_self) { check_op(3, 4, 5, 8, op_add_self, NULL); }

static int op_add_twice(fv_net *n, int x)
{
	/* x is read by a later add too, so its gradient is ready when the
	 * first add's backward runs */
	int s = fv_net_add(n, x, fv_net_conv(n, x, "c", 8, 3, 1, 1, 1, 1, 0));
	return fv_net_add(n, s, x);
}
FV_TEST(grad_add_fanout3) { check_op(3, 5, 5, 8, op_add_twice, NULL); }

static int op_add_relu(fv_net *n, int x)
{
	/* fused by compile: the add applies the ReLU */
	return fv_net_act(n, fv_net_add(n, x, fv_net_conv(n, x, "c", 8, 3, 1, 1, 1, 1, 0)),
			  FV_ACT_RELU);
}
FV_TEST(grad_add_relu_fused) { check_op(3, 5, 6, 8, op_add_relu, NULL); }

static int op_bn_add_relu(fv_net *n, int x)
{
	/* the end of a ResNet block, BN -> add -> ReLU with the block input as
	 * the shortcut: compile folds the add and the ReLU into the BN */
	int b = fv_net_bn(n, fv_net_conv(n, x, "c", 8, 3, 1, 1, 1, 1, 0), "bn");
	return fv_net_act(n, fv_net_add(n, b, x), FV_ACT_RELU);
}
FV_TEST(grad_bn_add_relu_fused) { check_op(3, 5, 6, 8, op_bn_add_relu, NULL); }

static int op_bn_add_bn_relu(fv_net *n, int x)
{
	/* a downsampling block: both inputs of the add are BNs; the later one
	 * (the projection) takes the add, the body's BN is its residual */
	int body = fv_net_bn(n, fv_net_conv(n, x, "c", 16, 3, 2, 1, 1, 1, 0), "bn1");
	int proj = fv_net_bn(n, fv_net_conv(n, x, "p", 16, 1, 2, 0, 1, 1, 0), "bn2");
	return fv_net_act(n, fv_net_add(n, body, proj), FV_ACT_RELU);
}
FV_TEST(grad_bn_add_bn_relu_fused) { check_op(3, 8, 8, 8, op_bn_add_bn_relu, NULL); }

/* The fold happens (compile marks it) and changes nothing: the same logits
 * and gradients as with FV_NET_NOFUSE=2 (the add left as its own node). */
FV_TEST(bn_add_fold_matches_unfolded)
{
	float *out[2][2];
	for (int pass = 0; pass < 2; pass++) {
		if (pass)
			setenv("FV_NET_NOFUSE", "2", 1);
		fv_net *net;
		FV_CHECK_OK(fv_model_build("resnet20", 1, 12, 12, 10, &net));
		FV_CHECK_OK(fv_net_compile(net, &(fv_net_opts){ .batch = 4, .threads = 1, .seed = 7 }));
		unsetenv("FV_NET_NOFUSE");
		float x[4 * 144];
		for (int i = 0; i < 4 * 144; i++)
			x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
		int lab[4] = { 0, 3, 5, 9 };
		float loss;
		FV_CHECK_OK(fv_net_forward(net, x, 4, 1));
		FV_CHECK_OK(fv_net_loss(net, lab, NULL, &loss));
		FV_CHECK_OK(fv_net_backward(net));
		fv_param *p = fv_net_params(net);
		size_t total = 0;
		for (size_t i = 0; i < fv_net_nparams(net); i++)
			total += p[i].grad ? p[i].numel : 0;
		out[pass][0] = malloc(40 * sizeof(float));
		memcpy(out[pass][0], fv_net_logits(net), 40 * sizeof(float));
		out[pass][1] = malloc(total * sizeof(float));
		for (size_t i = 0, o = 0; i < fv_net_nparams(net); i++)
			if (p[i].grad)
				memcpy(out[pass][1] + o, p[i].grad, p[i].numel * sizeof(float)),
				o += p[i].numel;
		if (!pass)
			FV_CHECK_EQ(fv_net_folded_adds(net), 9); /* resnet20: 9 blocks */
		else
			FV_CHECK_EQ(fv_net_folded_adds(net), 0);
		fv_net_destroy(&net);
		if (pass) {
			FV_CHECK(!memcmp(out[0][0], out[1][0], 40 * sizeof(float)));
			FV_CHECK(!memcmp(out[0][1], out[1][1], total * sizeof(float)));
		}
	}
	for (int i = 0; i < 2; i++)
		free(out[i][0]), free(out[i][1]);
}

#include "nn/loss.h"

/* Loss values against closed forms. Equal logits: every -log p is log K, so
 * with weights w and smoothing e the loss is log K * ((1-e) sum_i w_yi +
 * n e/K sum_c w_c) / sum_i w_yi (PyTorch's weighted mean). A confident
 * logit: (1-e)(lse - z_y) + e/K sum_c (lse - z_c). */
FV_TEST(loss_values)
{
	float z[2 * 4] = { 0 }, g[2 * 4], l;
	int lab[2] = { 1, 3 };
	float cw[4] = { 1, 2, 3, 4 };
	FV_CHECK_OK(fv_softmax_xent_forward(&l, g, z, lab, &(fv_loss_opts){ .smoothing = 0.2f,
		    .class_weights = cw }, 2, 4));
	FV_CHECK_NEAR(l, log(4.0) * (0.8 * 6 + 2 * 0.2 / 4 * 10) / 6, 1e-6);
	FV_CHECK_OK(fv_softmax_xent_forward(&l, g, z, lab, NULL, 2, 4));
	FV_CHECK_NEAR(l, log(4.0), 1e-6);
	float z2[4] = { 0, 5, 0, 0 };
	FV_CHECK_OK(fv_softmax_xent_forward(&l, g, z2, lab, &(fv_loss_opts){ .smoothing = 0.1f },
					    1, 4));
	double lse = log(exp(5.0) + 3), want = 0.9 * (lse - 5) + 0.1 / 4 * (4 * lse - 5);
	FV_CHECK_NEAR(l, want, 1e-5);
	/* gradient rows sum to zero (softmax minus a distribution) */
	FV_CHECK_NEAR(g[0] + g[1] + g[2] + g[3], 0, 1e-6);
	/* soft targets equal to the one-hot label give the hard loss */
	float t[4] = { 0, 1, 0, 0 };
	float l2;
	FV_CHECK_OK(fv_softmax_xent_forward(&l2, g, z2, NULL, &(fv_loss_opts){ .soft_targets = t },
					    1, 4));
	FV_CHECK_NEAR(l2, lse - 5, 1e-5);
	int bad = 4;
	FV_CHECK(fv_softmax_xent_forward(&l, g, z2, &bad, NULL, 1, 4) != 0);
}
