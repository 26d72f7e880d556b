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
