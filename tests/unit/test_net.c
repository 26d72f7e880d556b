/* test_net.c — the network engine: building (shapes, parameter table, MACs),
 * whole-model gradients against finite differences, determinism. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fv_error.h"
#include "fv_test.h"
#include "nn/net.h"

/* A tiny residual net: conv-bn-relu, one basic block, gap, fc. */
static int build_small(fv_net **out, int c, int h, int w, int classes)
{
	fv_net *net;
	int rc = fv_net_new(&net, c, h, w);
	if (rc)
		return rc;
	int x = fv_net_conv(net, FV_NET_INPUT, "conv1", 4, 3, 1, 1, 1, 1, 0);
	x = fv_net_bn(net, x, "bn1");
	x = fv_net_act(net, x, FV_ACT_RELU);
	int y = fv_net_conv(net, x, "b.conv1", 4, 3, 1, 1, 1, 1, 0);
	y = fv_net_bn(net, y, "b.bn1");
	y = fv_net_act(net, y, FV_ACT_RELU);
	y = fv_net_conv(net, y, "b.conv2", 4, 3, 1, 1, 1, 1, 0);
	y = fv_net_bn(net, y, "b.bn2");
	x = fv_net_act(net, fv_net_add(net, x, y), FV_ACT_RELU);
	x = fv_net_linear(net, fv_net_flatten(net, fv_net_gap(net, x)), "fc", classes);
	rc = x < 0 ? x : fv_net_set_output(net, x);
	if (rc)
		fv_net_destroy(&net);
	*out = net;
	return rc;
}

FV_TEST(build_shapes_and_params)
{
	fv_net *net;
	FV_CHECK_OK(build_small(&net, 3, 9, 7, 5));
	FV_CHECK_EQ(fv_net_classes(net), 5);
	/* conv1 4*3*9 + bn 8 + 2 x (4*4*9 + 8) + fc 4*5+5 */
	FV_CHECK_EQ(fv_net_param_count(net), 108 + 8 + 2 * (144 + 8) + 25);
	fv_param *p = fv_net_params(net);
	FV_CHECK_EQ(fv_net_nparams(net), 1 + 4 + 1 + 4 + 1 + 4 + 2);
	FV_CHECK(!strcmp(p[0].name, "conv1.weight"));
	FV_CHECK_EQ(p[0].ndim, 4);
	FV_CHECK_EQ(p[0].dims[1], 3);
	FV_CHECK(!strcmp(p[4].name, "bn1.running_var") && p[4].kind == FV_PARAM_BUFFER);
	FV_CHECK(p[0].data == NULL);
	/* MACs: 3 convs at 9x7 plus the fc */
	FV_CHECK_NEAR(fv_net_macs(net), 63.0 * (4 * 27 + 2 * 4 * 36) + 20, 1e-9);
	fv_net_destroy(&net);
	FV_CHECK(net == NULL);
}

FV_TEST(build_conv_shapes)
{
	fv_net *net;
	int c, h, w;
	FV_CHECK_OK(fv_net_new(&net, 6, 11, 10));
	int a = fv_net_conv(net, FV_NET_INPUT, "s2", 8, 3, 2, 1, 1, 2, 1);
	FV_CHECK_OK(fv_net_shape(net, a, &c, &h, &w));
	FV_CHECK(c == 8 && h == 6 && w == 5);
	int d = fv_net_conv(net, FV_NET_INPUT, "dil", 6, 3, 1, 2, 2, 6, 0);
	FV_CHECK_OK(fv_net_shape(net, d, &c, &h, &w));
	FV_CHECK(c == 6 && h == 11 && w == 10);
	int m = fv_net_maxpool(net, d, 3, 2, 1);
	FV_CHECK_OK(fv_net_shape(net, m, &c, &h, &w));
	FV_CHECK(h == 6 && w == 5);
	FV_CHECK(fv_net_conv(net, FV_NET_INPUT, "bad", 8, 3, 1, 1, 1, 4, 0) < 0); /* 6 % 4 */
	FV_CHECK(fv_net_add(net, a, d) < 0);                                     /* shapes */
	FV_CHECK(fv_net_conv(net, FV_NET_INPUT, "s2", 8, 1, 1, 0, 1, 1, 0) < 0); /* dup name */
	FV_CHECK(fv_net_act(net, 99, FV_ACT_RELU) < 0);
	FV_CHECK(fv_net_set_output(net, m) != 0);                                 /* not Cx1x1 */
	int g = fv_net_gap(net, m);
	int s = fv_net_scale(net, m, g);
	FV_CHECK(s > 0);
	FV_CHECK(fv_net_linear(net, m, "fc", 3) > 0); /* flattens 6x6x5 implicitly */
	fv_net_destroy(&net);
}

/* ---- running ------------------------------------------------------------ */

#include "nn/models.h"
#include "nn/optim.h"
#include "nn_gradcheck.h"

static void rand_batch(float *x, size_t nx, int *lab, int n, int k)
{
	gc_fill(x, nx, 1.0f);
	for (int i = 0; i < n; i++)
		lab[i] = (int)(fv_test_rand() % k);
}

/* The small residual net (blocked layout with padded channels, fan-out
 * through the residual add, BN in train mode): every parameter component
 * against central differences. h = 3e-4: the largest discrepancy grew
 * linearly with h (9e-4, 5e-3, 1.4e-2 at h = 3e-4, 1e-3, 3e-3; measured),
 * the mark of ReLU kinks inside the step rather than of a wrong gradient. */
FV_TEST(grad_small_resnet)
{
	fv_net *net;
	FV_CHECK_OK(build_small(&net, 3, 7, 6, 5));
	FV_CHECK_OK(fv_net_compile(net, &(fv_net_opts){ .batch = 4, .threads = 1, .seed = 11 }));
	float x[4 * 3 * 7 * 6];
	int lab[4];
	rand_batch(x, sizeof x / sizeof x[0], lab, 4, 5);
	fv_loss_opts lo = { .smoothing = 0.1f };
	FV_CHECK(gc_check(net, x, 4, lab, &lo, 1000, 3e-4, 2e-2) > 300);
	fv_net_destroy(&net);
}

/* resnet20 from the model zoo: the two largest gradient components of every
 * parameter tensor. 16x16 inputs: at 8x8 the last stage's BN normalises over
 * 8 values per channel and the loss is too curved for h = 1e-3 (measured: 5%
 * errors, the same with and without blocking or Winograd). Through 19 ReLU
 * layers and float32 the agreement is 1-3%, hence the 5e-2 tolerance. */
enum { RS = 16 };
FV_TEST(grad_resnet20_sample)
{
	fv_net *net;
	FV_CHECK_OK(fv_model_build("resnet20", 3, RS, RS, 10, &net));
	FV_CHECK_OK(fv_net_compile(net, &(fv_net_opts){ .batch = 2, .threads = 1, .seed = 5 }));
	float x[2 * 3 * RS * RS];
	int lab[2];
	rand_batch(x, sizeof x / sizeof x[0], lab, 2, 10);
	FV_CHECK(gc_check_top(net, x, 2, lab, NULL, 2, 1e-3, 5e-2, 1) > 100);
	fv_net_destroy(&net);
}

/* threads=1, fixed seed: two trainings give bit-identical weights. */
static void train_copy(float **out, size_t *n)
{
	fv_net *net;
	fv_sgd *sgd;
	FV_CHECK_OK(fv_model_build("resnet20", 1, 12, 12, 10, &net));
	FV_CHECK_OK(fv_net_compile(net, &(fv_net_opts){ .batch = 8, .threads = 1, .seed = 42 }));
	FV_CHECK_OK(fv_sgd_new(&sgd, fv_net_params(net), fv_net_nparams(net),
			       &(fv_sgd_opts){ .momentum = 0.9f, .weight_decay = 5e-4f }));
	float x[8 * 144];
	int lab[8];
	uint64_t s = 1;
	for (int step = 0; step < 3; step++) {
		for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
			x[i] = (float)((s = s * 6364136223846793005ull + 1442695040888963407ull) >> 40) /
			       (1 << 23) - 1.0f;
		for (int i = 0; i < 8; i++)
			lab[i] = (i * 3 + step) % 10;
		float loss;
		FV_CHECK_OK(fv_net_forward(net, x, 8, 1));
		FV_CHECK_OK(fv_net_loss(net, lab, NULL, &loss));
		FV_CHECK_OK(fv_net_backward(net));
		FV_CHECK_OK(fv_sgd_step(sgd, 0.1f));
	}
	fv_param *p = fv_net_params(net);
	*n = 0;
	for (size_t i = 0; i < fv_net_nparams(net); i++)
		*n += p[i].numel;
	*out = malloc(*n * sizeof(float));
	size_t o = 0;
	for (size_t i = 0; i < fv_net_nparams(net); i++, o += p[i - 1].numel)
		memcpy(*out + o, p[i].data, p[i].numel * sizeof(float));
	fv_sgd_destroy(&sgd);
	fv_net_destroy(&net);
}

FV_TEST(determinism_threads1)
{
	float *a, *b;
	size_t na, nb;
	train_copy(&a, &na);
	train_copy(&b, &nb);
	FV_CHECK_EQ(na, nb);
	FV_CHECK(!memcmp(a, b, na * sizeof(float)));
	/* and training did change the weights from their init */
	fv_net *net;
	FV_CHECK_OK(fv_model_build("resnet20", 1, 12, 12, 10, &net));
	FV_CHECK_OK(fv_net_compile(net, &(fv_net_opts){ .batch = 8, .threads = 1, .seed = 42 }));
	FV_CHECK(memcmp(fv_net_params(net)[0].data, a, fv_net_params(net)[0].numel * 4) != 0);
	fv_net_destroy(&net);
	free(a), free(b);
}

/* Frozen params get no gradient computed (their grad buffers are left as
 * they were) and the others get the same gradient as without freezing. */
FV_TEST(frozen_params_skip_backward)
{
	fv_net *a, *b;
	FV_CHECK_OK(build_small(&a, 3, 6, 6, 4));
	FV_CHECK_OK(build_small(&b, 3, 6, 6, 4));
	fv_net_opts o = { .batch = 3, .threads = 1, .seed = 9 };
	FV_CHECK_OK(fv_net_compile(a, &o));
	FV_CHECK_OK(fv_net_compile(b, &o));
	fv_param *pa = fv_net_params(a), *pb = fv_net_params(b);
	size_t np = fv_net_nparams(b);
	for (size_t i = 0; i + 2 < np; i++) { /* all but fc.weight, fc.bias */
		pb[i].frozen = 1;
		if (pb[i].grad)
			for (size_t j = 0; j < pb[i].numel; j++)
				pb[i].grad[j] = 12345.0f;
	}
	float x[3 * 108], l;
	int lab[3];
	rand_batch(x, 3 * 108, lab, 3, 4);
	fv_net *nets[2] = { a, b };
	for (int k = 0; k < 2; k++) {
		FV_CHECK_OK(fv_net_forward(nets[k], x, 3, 1));
		FV_CHECK_OK(fv_net_loss(nets[k], lab, NULL, &l));
		FV_CHECK_OK(fv_net_backward(nets[k]));
	}
	for (size_t i = 0; i + 2 < np; i++)
		if (pb[i].grad)
			FV_CHECK(pb[i].grad[0] == 12345.0f && pb[i].grad[pb[i].numel - 1] == 12345.0f);
	for (size_t i = np - 2; i < np; i++)
		FV_CHECK(!memcmp(pa[i].grad, pb[i].grad, pa[i].numel * sizeof(float)));
	fv_net_destroy(&a);
	fv_net_destroy(&b);
}

/* Eval logits do not depend on the batch: a partial batch (re-planned) and
 * an inference-only net give the same rows; BN uses running statistics. */
FV_TEST(partial_batch_and_inference_only)
{
	fv_net *a, *b;
	FV_CHECK_OK(fv_model_build("resnet20", 3, 10, 10, 7, &a));
	FV_CHECK_OK(fv_model_build("resnet20", 3, 10, 10, 7, &b));
	FV_CHECK_OK(fv_net_compile(a, &(fv_net_opts){ .batch = 6, .threads = 1, .seed = 2 }));
	FV_CHECK_OK(fv_net_compile(b, &(fv_net_opts){ .batch = 2, .threads = 1, .seed = 2,
						       .inference_only = 1 }));
	float x[6 * 300], full[6 * 7];
	int lab[6];
	rand_batch(x, 6 * 300, lab, 6, 7);
	FV_CHECK_OK(fv_net_forward(a, x, 6, 0));
	memcpy(full, fv_net_logits(a), sizeof full);
	FV_CHECK_OK(fv_net_forward(a, x + 300, 2, 0));
	for (int i = 0; i < 14; i++)
		FV_CHECK_NEAR(fv_net_logits(a)[i], full[7 + i], 1e-4);
	FV_CHECK_OK(fv_net_forward(b, x + 300, 2, 0));
	for (int i = 0; i < 14; i++)
		FV_CHECK_NEAR(fv_net_logits(b)[i], full[7 + i], 1e-4);
	FV_CHECK(fv_net_forward(b, x, 2, 1) != 0); /* no training on an inference net */
	FV_CHECK(fv_net_forward(a, x, 7, 0) != 0); /* more than the batch */
	fv_net_destroy(&a);
	fv_net_destroy(&b);
}

/* Compile errors reach the caller as codes with a message, and leave the
 * net compilable. */
FV_TEST(compile_errors)
{
	fv_net *net;
	FV_CHECK_OK(build_small(&net, 3, 5, 5, 3));
	FV_CHECK(fv_net_compile(net, &(fv_net_opts){ .batch = 2, .device = "tpu" }) != 0);
	FV_CHECK(fv_net_compile(net, &(fv_net_opts){ .batch = 0 }) != 0);
	FV_CHECK(fv_net_forward(net, NULL, 1, 0) != 0); /* not compiled */
	FV_CHECK_OK(fv_net_compile(net, &(fv_net_opts){ .batch = 2, .threads = 1 }));
	FV_CHECK(fv_net_compile(net, &(fv_net_opts){ .batch = 2 }) != 0); /* twice */
	FV_CHECK(fv_net_backward(net) != 0);                                /* no loss yet */
	FV_CHECK(fv_net_conv(net, FV_NET_INPUT, "late", 4, 3, 1, 1, 1, 1, 0) < 0);
	fv_net_destroy(&net);
	fv_net *empty;
	FV_CHECK_OK(fv_net_new(&empty, 1, 4, 4));
	FV_CHECK(fv_net_compile(empty, &(fv_net_opts){ .batch = 1 }) != 0); /* no output */
	fv_net_destroy(&empty);
}

/* A linear straight after a GAP whose channel count is not a multiple of the
 * CPU block: each image's logits in a batch equal those of a batch of one
 * (a blocked GAP output once leaked padding into the next image's features). */
FV_TEST(linear_after_gap_odd_channels_per_image)
{
	enum { B = 3, C = 12 };
	fv_net *net, *one;
	float x[B * 2 * 6 * 6], ref[B][5];
	for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
		x[i] = (float)fv_test_uniform() - 0.5f;
	for (int pass = 0; pass < 2; pass++) {
		fv_net **p = pass ? &one : &net;
		FV_CHECK_OK(fv_net_new(p, 2, 6, 6));
		int h = fv_net_conv(*p, FV_NET_INPUT, "c", C, 3, 1, 1, 1, 1, 0);
		h = fv_net_linear(*p, fv_net_gap(*p, fv_net_act(*p, h, FV_ACT_RELU)), "fc", 5);
		FV_CHECK(h > 0);
		fv_net_set_output(*p, h);
		FV_CHECK_OK(fv_net_compile(*p, &(fv_net_opts){ .batch = pass ? 1 : B, .threads = 1, .seed = 9 }));
	}
	for (int i = 0; i < B; i++) {
		FV_CHECK_OK(fv_net_forward(one, x + i * 2 * 36, 1, 0));
		for (int k = 0; k < 5; k++)
			ref[i][k] = fv_net_logits(one)[k];
	}
	FV_CHECK_OK(fv_net_forward(net, x, B, 0));
	for (int i = 0; i < B; i++)
		for (int k = 0; k < 5; k++)
			FV_CHECK_NEAR(fv_net_logits(net)[i * 5 + k], ref[i][k], 1e-5);
	fv_net_destroy(&net);
	fv_net_destroy(&one);
}

/* fv_net_profile_start / _report: nothing before the profile starts, then
 * the steps counted and every op kind of the net with its time. */
FV_TEST(profile_report)
{
	fv_net *net;
	FV_CHECK_OK(fv_model_build("resnet20", 1, 12, 12, 10, &net));
	FV_CHECK_OK(fv_net_compile(net, &(fv_net_opts){ .batch = 4, .threads = 1, .seed = 3 }));
	float x[4 * 144] = { 0.5f }, loss;
	int lab[4] = { 1, 2, 3, 4 };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	FV_CHECK_OK(fv_net_forward(net, x, 4, 1));
	fv_net_profile_report(net, f); /* not started: prints nothing */
	fflush(f);
	FV_CHECK_EQ(len, 0);
	FV_CHECK_OK(fv_net_profile_start(net));
	for (int s = 0; s < 2; s++) {
		FV_CHECK_OK(fv_net_forward(net, x, 4, 1));
		FV_CHECK_OK(fv_net_loss(net, lab, NULL, &loss));
		FV_CHECK_OK(fv_net_backward(net));
	}
	FV_CHECK_OK(fv_net_forward(net, x, 4, 0)); /* inference is not counted */
	fv_net_profile_report(net, f);
	fclose(f);
	FV_CHECK_MSG(strstr(buf, "profile: 2 step(s)") != NULL, "%s", buf);
	const char *kinds[] = { "conv", "bn", "add", "gap", "linear" };
	for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
		char want[32];
		snprintf(want, sizeof want, "profile: %-8s", kinds[k]);
		FV_CHECK_MSG(strstr(buf, want) != NULL, "no %s line in:\n%s", kinds[k], buf);
	}
	FV_CHECK(strstr(buf, "profile: node") != NULL);
	double ms = 0;
	FV_CHECK(sscanf(strstr(buf, "step(s), "), "step(s), %lf ms/step", &ms) == 1 && ms > 0);
	free(buf);
	fv_net_destroy(&net);
}
