/* tests/gpu/test_cuda_fallback.c — a CUDA=1 build picks its backend at run
 * time: "cuda[:N][:bf16]" gives the CUDA backend where a GPU answers and the
 * CPU backend otherwise (one log line, no abort), malformed names give
 * nothing, and a net compiled for "cuda" on a machine without a GPU trains
 * exactly as the CPU net does. Built and run only with CUDA=1. */
#include <string.h>

#include "fv_test.h"
#include "nn/backend.h"
#include "nn/net.h"
#include "nn/optim.h"

extern const fv_backend fv_backend_cuda;

static int have_gpu(void)
{
	return fv_backend_cuda.probe("cuda") == 0;
}

FV_TEST(names)
{
	const fv_backend *want = have_gpu() ? &fv_backend_cuda : &fv_backend_cpu;
	FV_CHECK(fv_backend_find("cpu") == &fv_backend_cpu);
	FV_CHECK(fv_backend_find("cuda") == want);
	FV_CHECK(fv_backend_find("cuda:0") == want);
	FV_CHECK(fv_backend_find("cuda:bf16") == want);
	FV_CHECK(fv_backend_find("cuda:0:bf16") == want);
	FV_CHECK(fv_backend_find("cuda:fp32") == want);
	FV_CHECK(fv_backend_find("cuda:63") == &fv_backend_cpu); /* no such GPU */
	FV_CHECK(fv_backend_find("cuda:half") == NULL);
	FV_CHECK(fv_backend_find("cuda:0:") == NULL);
	FV_CHECK(fv_backend_find("cudax") == NULL);
	FV_CHECK(fv_backend_find("tpu") == NULL);
	FV_CHECK_EQ(fv_backend_cuda.probe("cuda:bogus"), FV_E_CONFIG);
	if (!have_gpu())
		FV_CHECK_EQ(fv_backend_cuda.probe("cuda"), FV_E_UNSUPPORTED);
}

static fv_net *small(const char *device)
{
	fv_net *net = NULL;
	if (fv_net_new(&net, 2, 6, 6))
		return NULL;
	int x = fv_net_conv(net, FV_NET_INPUT, "c1", 4, 3, 1, 1, 1, 1, 0);
	x = fv_net_bn(net, x, "bn1");
	x = fv_net_act(net, x, FV_ACT_RELU);
	x = fv_net_linear(net, fv_net_gap(net, x), "fc", 3);
	if (x < 0 || fv_net_set_output(net, x) ||
	    fv_net_compile(net, &(fv_net_opts){ .batch = 4, .threads = 1, .device = device,
						.seed = 7 }))
		fv_net_destroy(&net);
	return net;
}

/* Without a GPU a "cuda" net is a CPU net: same logits, loss and grads. */
FV_TEST(fallback_trains_like_cpu)
{
	if (have_gpu())
		return; /* tests/gpu/check_ops.c compares the two there */
	fv_net *a = small("cpu"), *b = small("cuda:bf16");
	FV_CHECK(a && b);
	if (!a || !b)
		goto out;
	float x[4 * 2 * 6 * 6];
	for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
		x[i] = (float)(fv_test_uniform() * 2 - 1);
	int labels[4] = { 0, 1, 2, 1 };
	float la, lb;
	FV_CHECK_OK(fv_net_forward(a, x, 4, 1));
	FV_CHECK_OK(fv_net_forward(b, x, 4, 1));
	FV_CHECK_OK(fv_net_loss(a, labels, NULL, &la));
	FV_CHECK_OK(fv_net_loss(b, labels, NULL, &lb));
	FV_CHECK(la == lb && la > 0);
	FV_CHECK(!memcmp(fv_net_logits(a), fv_net_logits(b), 4 * 3 * sizeof(float)));
	FV_CHECK_OK(fv_net_backward(a));
	FV_CHECK_OK(fv_net_backward(b));
	fv_param *pa = fv_net_params(a), *pb = fv_net_params(b);
	for (size_t i = 0; i < fv_net_nparams(a); i++)
		if (pa[i].grad)
			FV_CHECK(!memcmp(pa[i].grad, pb[i].grad, pa[i].numel * sizeof(float)));
	fv_net_dev d;
	FV_CHECK_OK(fv_net_device(b, &d, 1));
	FV_CHECK(d.be == &fv_backend_cpu && d.params == (void *)d.host_params);
	FV_CHECK(fv_net_input(b) != NULL);
	/* no device step on the CPU: the optimizer stays on the host */
	fv_sgd *s = NULL;
	FV_CHECK_OK(fv_sgd_new(&s, fv_net_params(b), fv_net_nparams(b), NULL));
	FV_CHECK_EQ(fv_sgd_bind(s, &d), FV_E_UNSUPPORTED);
	FV_CHECK_OK(fv_sgd_step(s, 0.1f));
	fv_sgd_destroy(&s);
	/* x == NULL runs from the input tensor as it stands */
	FV_CHECK_OK(fv_net_forward(b, NULL, 4, 0));
out:
	fv_net_destroy(&a);
	fv_net_destroy(&b);
}
