/* test_evaluator_inspect.c — nn/inspect.c, what Grad-CAM stands on: the
 * explained node is the last spatial conv/BN/activation, and the gradient
 * of a class logit with respect to it is exact. For conv -> relu -> global
 * average pool -> linear, d logit_c / d A[k,i,j] = W[c,k] / (H*W) at every
 * location, whatever the input: a closed form to check against. (12
 * channels: the CPU backend pads them to its block, which export undoes.
 * The explicit flatten sidesteps an nn-core issue with "gap; linear" on
 * channel counts that are not a multiple of the block.) */
#include "fv_test.h"
#include "nn/inspect.h"
#include "nn/models.h"
#include "nn/net.h"

#include <stdlib.h>
#include <string.h>

static fv_net *build(const char *spec, int batch, int inference_only)
{
	fv_net *net = NULL;
	FV_CHECK_OK(fv_model_build(spec, 2, 6, 7, 3, &net));
	if (!net)
		return NULL;
	fv_net_opts o = { .batch = batch, .threads = 1, .seed = 5, .inference_only = inference_only };
	FV_CHECK_OK(fv_net_compile(net, &o));
	return net;
}

static void input(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(fv_test_uniform() * 2 - 1);
}

FV_TEST(inspect_grad_matches_closed_form)
{
	fv_net *net = build("conv 12 3; relu; gap; flatten; linear", 2, 0);
	if (!net)
		return;
	int node = fv_net_cam_node(net), C, H, W;
	FV_CHECK_EQ(node, 2); /* input, conv, relu */
	FV_CHECK_OK(fv_net_shape(net, node, &C, &H, &W));
	FV_CHECK_EQ(C, 12);
	FV_CHECK_EQ(H * W, 42);
	float x[2 * 2 * 6 * 7];
	input(x, sizeof x / sizeof *x);
	FV_CHECK_OK(fv_net_forward(net, x, 2, 0));
	size_t m = (size_t)C * H * W;
	float *act = malloc(2 * m * sizeof *act), *grad = malloc(2 * m * sizeof *grad);
	int cls[2] = { 0, 2 };
	FV_CHECK_OK(fv_net_node_grad(net, node, cls, act, grad));
	/* the linear layer's weight: classes x C */
	fv_param *p = fv_net_params(net), *wp = NULL;
	for (size_t i = 0; i < fv_net_nparams(net); i++)
		if (p[i].ndim == 2)
			wp = &p[i];
	FV_CHECK(wp != NULL);
	double worst = 0, pos = 0;
	for (int i = 0; wp && i < 2; i++)
		for (int k = 0; k < C; k++)
			for (int j = 0; j < H * W; j++) {
				double want = wp->data[cls[i] * C + k] / (H * W);
				double got = grad[(size_t)i * m + (size_t)k * H * W + j];
				worst = fmax(worst, fabs(got - want));
				FV_CHECK(act[(size_t)i * m + (size_t)k * H * W + j] >= 0); /* after relu */
				pos += act[(size_t)i * m + (size_t)k * H * W + j];
			}
	FV_CHECK_MSG(worst < 1e-6, "max |grad - W/HW| = %g", worst);
	FV_CHECK(pos > 0);
	/* the logits follow from the activations the same way */
	const float *lg = fv_net_logits(net);
	fv_param *bp = wp + 1;
	for (int i = 0; wp && i < 2; i++) {
		double z = bp->data[cls[i]];
		for (int k = 0; k < C; k++) {
			double mean = 0;
			for (int j = 0; j < H * W; j++)
				mean += act[(size_t)i * m + (size_t)k * H * W + j];
			z += wp->data[cls[i] * C + k] * mean / (H * W);
		}
		FV_CHECK_NEAR(lg[i * 3 + cls[i]], z, 1e-4);
	}
	/* a bad class is refused */
	int bad[2] = { 0, 3 };
	FV_CHECK_EQ(fv_net_node_grad(net, node, bad, NULL, grad), FV_E_NOTFOUND);
	free(act);
	free(grad);
	fv_net_destroy(&net);
}

FV_TEST(inspect_refuses_what_it_cannot_differentiate)
{
	fv_net *net = build("conv 8 3; relu; maxpool 2; gap; linear", 1, 0);
	if (!net)
		return;
	float x[2 * 6 * 7], g[8 * 6 * 7];
	input(x, sizeof x / sizeof *x);
	FV_CHECK_OK(fv_net_forward(net, x, 1, 0));
	int node = fv_net_cam_node(net), cls = 1;
	FV_CHECK_EQ(node, 2); /* the relu: the pooled map is 3x3, but no conv/act follows */
	FV_CHECK_EQ(fv_net_node_grad(net, node, &cls, NULL, g), FV_E_UNSUPPORTED);
	fv_net_destroy(&net);
	/* inference-only nets keep no gradients */
	net = build("conv 8 3; relu; gap; linear", 1, 1);
	if (!net)
		return;
	FV_CHECK_OK(fv_net_forward(net, x, 1, 0));
	FV_CHECK_EQ(fv_net_node_grad(net, 2, &cls, NULL, g), FV_E_CONFIG);
	fv_net_destroy(&net);
	/* nothing spatial to explain */
	net = build("gap; linear", 1, 1);
	if (net)
		FV_CHECK_EQ(fv_net_cam_node(net), FV_E_NOTFOUND);
	fv_net_destroy(&net);
}
