/* test_models.c — the model zoo and the text spec: parameter counts against
 * the published (torchvision) figures, MACs, output shapes at default and
 * small inputs, spec parsing and its errors, and a learning test (resnet20
 * overfits 256 Fashion-MNIST images). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fv_error.h"
#include "fv_test.h"
#include "nn/models.h"
#include "nn/net.h"
#include "nn/optim.h"

/* Trainable parameters of a model, or -1 (with a test failure) if it does
 * not build. */
static long long count(const char *spec, int c, int h, int w, int classes)
{
	fv_net *net = NULL;
	int rc = fv_model_build(spec, c, h, w, classes, &net);
	FV_CHECK_MSG(rc == 0, "%s at %dx%dx%d: %s", spec, c, h, w, fv_err_msg(rc));
	if (rc)
		return -1;
	long long n = (long long)fv_net_param_count(net);
	fv_net_destroy(&net);
	return n;
}

static int has_param(fv_net *net, const char *name)
{
	fv_param *p = fv_net_params(net);
	for (size_t i = 0; i < fv_net_nparams(net); i++)
		if (!strcmp(p[i].name, name))
			return 1;
	return 0;
}

/* ---- parameter counts ------------------------------------------------------ */

/* CIFAR ResNet with option A (zero-padding) shortcuts, counted by hand:
 * stem 3*16*9 + BN 32; per basic block 18c^2 + 4c (two 3x3 convs + BNs),
 * except the first of stages 2 and 3 whose first conv reads c/2 channels;
 * fc 64*10 + 10. Option B adds a 1x1 conv + BN at those two blocks. */
static long long cifar_option_a(int n)
{
	long long total = 3 * 16 * 9 + 32 + 64 * 10 + 10;
	for (int s = 0, c = 16; s < 3; s++, c *= 2) {
		total += (long long)n * (18LL * c * c + 4 * c);
		if (s)
			total -= 9LL * c * c / 2; /* first conv: c/2 -> c, not c -> c */
	}
	return total;
}

FV_TEST(models_cifar_resnet_counts)
{
	/* Option A gives 269,722 (the akamaster/pytorch_resnet_cifar10 figure
	 * "0.27M"); our option B projections add 16*32 + 2*32 + 32*64 + 2*64 =
	 * 2,752, giving 272,474 — exact, nothing else differs. */
	long long proj = 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64;
	FV_CHECK_EQ(cifar_option_a(3), 269722);
	FV_CHECK_EQ(count("resnet20", 3, 32, 32, 10), 272474);
	FV_CHECK_EQ(count("resnet20", 3, 32, 32, 10), cifar_option_a(3) + proj);
	FV_CHECK_EQ(count("resnet32", 3, 32, 32, 10), cifar_option_a(5) + proj);
	FV_CHECK_EQ(count("resnet44", 3, 32, 32, 10), cifar_option_a(7) + proj);
	FV_CHECK_EQ(count("resnet56", 3, 32, 32, 10), cifar_option_a(9) + proj);
	FV_CHECK_EQ(count("resnet110", 3, 32, 32, 10), cifar_option_a(18) + proj);
	/* one input channel: the stem loses 2*16*9 weights */
	FV_CHECK_EQ(count("resnet20", 1, 28, 28, 10), 272474 - 2 * 16 * 9);
}

/* torchvision's figures (models.<name>(num_classes=1000), sum of numel over
 * parameters()); the architectures are identical, so exact. */
FV_TEST(models_imagenet_counts)
{
	FV_CHECK_EQ(count("resnet18", 3, 224, 224, 1000), 11689512);
	FV_CHECK_EQ(count("resnet34", 3, 224, 224, 1000), 21797672);
	FV_CHECK_EQ(count("resnet50", 3, 224, 224, 1000), 25557032);
	FV_CHECK_EQ(count("resnet101", 3, 224, 224, 1000), 44549160);
	FV_CHECK_EQ(count("resnet152", 3, 224, 224, 1000), 60192808);
	FV_CHECK_EQ(count("alexnet", 3, 224, 224, 1000), 61100840);
	FV_CHECK_EQ(count("mobilenetv2", 3, 224, 224, 1000), 3504872);
	FV_CHECK_EQ(count("efficientnet-b0", 3, 224, 224, 1000), 5288548);
}

FV_TEST(models_efficientnet_scaling)
{
	/* b1..b7 follow the compound-scaling formula (w = 1.1^N, d = 1.2^N), not
	 * torchvision's hand-rounded table, so there is no published count.
	 * These figures come from an independent re-implementation of
	 * torchvision's builder (Python) that, fed torchvision's own table,
	 * gives its published b1 7,794,184 and b7 66,347,960. */
	static const long long want[8] = { 5288548, 9109994, 12233232, 16338888,
					   25940032, 33702516, 45477208, 68741810 };
	for (int n = 0; n <= 7; n++) {
		char name[32];
		snprintf(name, sizeof name, "efficientnet-b%d", n);
		const fv_model_info *m = fv_model_find(name);
		FV_CHECK(m != NULL);
		if (!m)
			continue;
		FV_CHECK_EQ(m->default_size, (int)lround(224 * pow(1.15, n)));
		FV_CHECK_EQ(count(name, 3, m->default_size, m->default_size, 1000), want[n]);
	}
}

FV_TEST(models_param_names)
{
	fv_net *net;
	FV_CHECK_OK(fv_model_build("resnet50", 3, 224, 224, 1000, &net));
	FV_CHECK(has_param(net, "conv1.weight") && has_param(net, "bn1.running_var"));
	FV_CHECK(has_param(net, "layer1.0.conv3.weight"));
	FV_CHECK(has_param(net, "layer4.0.downsample.0.weight"));
	FV_CHECK(has_param(net, "layer4.2.bn3.bias") && has_param(net, "fc.bias"));
	/* v1.5: the stride is on the 3x3 conv of the first layer2 block */
	fv_net_destroy(&net);
	FV_CHECK_OK(fv_model_build("mobilenetv2", 3, 224, 224, 1000, &net));
	FV_CHECK(has_param(net, "features.1.conv.0.0.weight"));
	FV_CHECK(has_param(net, "features.2.conv.3.running_mean"));
	FV_CHECK(has_param(net, "features.18.1.weight") && has_param(net, "classifier.1.weight"));
	fv_net_destroy(&net);
	FV_CHECK_OK(fv_model_build("efficientnet-b0", 3, 224, 224, 1000, &net));
	FV_CHECK(has_param(net, "features.1.0.block.1.fc1.bias"));
	FV_CHECK(has_param(net, "features.6.3.block.2.fc2.weight"));
	FV_CHECK(has_param(net, "features.8.0.weight") && has_param(net, "classifier.1.bias"));
	fv_net_destroy(&net);
}

/* ---- MACs and shapes --------------------------------------------------------- */

static double macs(const char *name, int size)
{
	fv_net *net;
	if (fv_model_build(name, 3, size, size, 1000, &net))
		return -1;
	double m = fv_net_macs(net);
	fv_net_destroy(&net);
	return m;
}

FV_TEST(models_macs)
{
	/* published: resnet50 4.09 GMACs ("4.1 GFLOPs"), resnet18 1.81,
	 * mobilenetv2 0.30, efficientnet-b0 0.39; conv + linear only, so 3%. */
	FV_CHECK_NEAR(macs("resnet50", 224) / 1e9, 4.09, 0.03 * 4.09);
	FV_CHECK_NEAR(macs("resnet18", 224) / 1e9, 1.81, 0.03 * 1.81);
	FV_CHECK_NEAR(macs("mobilenetv2", 224) / 1e9, 0.30, 0.03 * 0.30);
	FV_CHECK_NEAR(macs("efficientnet-b0", 224) / 1e9, 0.39, 0.03 * 0.39);
	FV_CHECK_NEAR(macs("alexnet", 224) / 1e9, 0.71, 0.03 * 0.71);
}

FV_TEST(models_output_shapes)
{
	size_t n;
	const fv_model_info *m = fv_model_list(&n);
	FV_CHECK(n >= 20);
	for (size_t i = 0; i < n; i++) {
		int sizes[2] = { m[i].default_size, 28 };
		for (int k = 0; k < 2; k++) {
			fv_net *net = NULL;
			int chans = k ? 1 : 3, classes = k ? 10 : 1000;
			int rc = fv_model_build(m[i].name, chans, sizes[k], sizes[k], classes, &net);
			if (k && !strcmp(m[i].name, "alexnet")) { /* too small: a clear error */
				FV_CHECK_EQ(rc, FV_E_CONFIG);
				FV_CHECK(strstr(fv_err_msg(rc), "alexnet") &&
					 strstr(fv_err_msg(rc), "63"));
				FV_CHECK(net == NULL);
				continue;
			}
			FV_CHECK_MSG(rc == 0, "%s at %d: %s", m[i].name, sizes[k], fv_err_msg(rc));
			if (rc)
				continue;
			FV_CHECK_EQ(fv_net_classes(net), classes);
			fv_net_destroy(&net);
		}
	}
}

FV_TEST(models_forward_small_inputs)
{
	/* one of each family runs (inference) on two 1x28x28 images (alexnet on
	 * 3x63x63, its smallest) and yields 2 x 10 finite logits, not all equal;
	 * the rest share their code, and their shapes are checked above */
	static const char *const names[] = { "resnet20", "resnet32", "resnet44", "resnet56",
		"resnet110", "resnet18", "resnet50", "alexnet", "mobilenetv2", "efficientnet-b0" };
	static float x[2 * 3 * 63 * 63];
	for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
		x[i] = (float)(fv_test_uniform() * 2 - 1);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const fv_model_info *m = fv_model_find(names[i]);
		FV_CHECK(m != NULL);
		if (!m)
			continue;
		int alex = !strcmp(m->name, "alexnet"), c = alex ? 3 : 1, s = alex ? 63 : 28;
		fv_net *net = NULL;
		FV_CHECK_OK(fv_model_build(m->name, c, s, s, 10, &net));
		if (!net)
			continue;
		int rc = fv_net_compile(net, &(fv_net_opts){ .batch = 2, .threads = 2,
							    .inference_only = 1, .seed = 3 });
		if (!rc)
			rc = fv_net_forward(net, x, 2, 0);
		FV_CHECK_MSG(rc == 0, "%s: %s", m->name, fv_err_msg(rc));
		if (!rc) {
			const float *lg = fv_net_logits(net);
			int finite = 1, varied = 0;
			for (int k = 0; k < 20; k++) {
				finite &= isfinite(lg[k]);
				varied |= lg[k] != lg[0];
			}
			FV_CHECK_MSG(finite && varied, "%s: logits %g %g ...", m->name, lg[0], lg[1]);
		}
		fv_net_destroy(&net);
	}
}

FV_TEST(models_small_input_stem)
{
	/* below 64 px the ImageNet resnets use a 3x3 stride-1 stem */
	fv_net *net;
	FV_CHECK_OK(fv_model_build("resnet18", 1, 28, 28, 10, &net));
	fv_param *p = fv_net_params(net);
	FV_CHECK(!strcmp(p[0].name, "conv1.weight"));
	FV_CHECK_EQ(p[0].dims[2], 3);
	FV_CHECK_EQ(fv_net_param_count(net), 11689512 - 64 * 3 * 49 + 64 * 9 - 513 * 990);
	fv_net_destroy(&net);
	/* alexnet off 224: 127 px gives a 3x3 feature map, fed whole */
	FV_CHECK_OK(fv_model_build("alexnet", 3, 127, 127, 10, &net));
	FV_CHECK_EQ(fv_net_classes(net), 10);
	fv_net_destroy(&net);
}

/* ---- the text spec ------------------------------------------------------------ */

static const char *resnet20_spec =
	"# resnet20, option B, written out\n"
	"conv 16 3; bn; relu\n"
	"3x { res { conv 16 3; bn; relu; conv 16 3; bn }; relu }\n"
	"res { conv 32 3 s2; bn; relu; conv 32 3; bn }; relu\n"
	"2x { res { conv 32 3; bn; relu; conv 32 3; bn }; relu }\n"
	"res { conv 64 3 s2; bn; relu; conv 64 3; bn }; relu\n"
	"2x { res { conv 64 3; bn; relu; conv 64 3; bn }; relu }\n"
	"gap; linear\n";

FV_TEST(spec_matches_named_resnet20)
{
	fv_net *a, *b;
	FV_CHECK_OK(fv_model_build(resnet20_spec, 3, 32, 32, 10, &a));
	FV_CHECK_OK(fv_model_build("resnet20", 3, 32, 32, 10, &b));
	if (!a || !b)
		return;
	FV_CHECK_EQ(fv_net_param_count(a), fv_net_param_count(b));
	FV_CHECK_EQ(fv_net_nparams(a), fv_net_nparams(b));
	FV_CHECK_NEAR(fv_net_macs(a), fv_net_macs(b), 0);
	FV_CHECK(has_param(a, "0.weight") && has_param(a, "3.body.0.weight"));
	FV_CHECK(has_param(a, "9.short.1.running_var")); /* the auto projection */
	fv_net_destroy(&a);
	fv_net_destroy(&b);
}

FV_TEST(spec_covers_layers)
{
	/* an MBConv with SE written out, explicit shortcut, pools, dropout */
	const char *spec =
		"conv 32 3 s2 bias; bn; silu\n"
		"res { conv 96 1; bn; silu; dwconv 5; bn; silu; se 8; conv 32 1; bn }\n"
		"res { conv 32 3 d2; bn; relu6 | conv 32 1 bias }\n"
		"maxpool 3 s2 p1; conv 64 3 g4; sigmoid; avgpool 2\n"
		"flatten; dropout 0.25; linear 50; relu; linear";
	fv_net *net;
	FV_CHECK_OK(fv_model_build(spec, 3, 32, 32, 7, &net));
	if (!net)
		return;
	int c, h, w;
	FV_CHECK_OK(fv_net_shape(net, FV_NET_INPUT, &c, &h, &w));
	FV_CHECK_EQ(fv_net_classes(net), 7);
	long long want = 32 * 27 + 32 + 64 +                          /* stem */
		96 * 32 + 192 + 96 * 25 + 192 + 96 * 8 + 8 + 8 * 96 + 96 + 32 * 96 + 64 +
		32 * 32 * 9 + 64 + 32 * 32 + 32 +                         /* 2nd res */
		64 * 8 * 9 +                                              /* grouped */
		64 * 4 * 4 * 50 + 50 + 50 * 7 + 7;
	FV_CHECK_EQ(fv_net_param_count(net), want);
	fv_net_destroy(&net);
	/* the header's example: a CIFAR ResNet-8 */
	FV_CHECK_OK(fv_model_build("conv 16 3; bn; relu\n"
				   "res { conv 16 3; bn; relu; conv 16 3; bn }; relu\n"
				   "res { conv 32 3 s2; bn; relu; conv 32 3; bn }; relu\n"
				   "res { conv 64 3 s2; bn; relu; conv 64 3; bn }; relu\n"
				   "gap; linear", 3, 32, 32, 10, &net));
	fv_net_destroy(&net);
	/* a name with blanks around it is still a name */
	FV_CHECK_OK(fv_model_build(" resnet20\n", 1, 28, 28, 10, &net));
	fv_net_destroy(&net);
	/* "linear" alone is a spec (a linear classifier), not a model name */
	FV_CHECK_OK(fv_model_build("linear", 1, 28, 28, 10, &net));
	FV_CHECK_EQ(fv_net_param_count(net), 784 * 10 + 10);
	fv_net_destroy(&net);
}

FV_TEST(spec_survives_garbage)
{
	/* resnet20's spec with random bytes overwritten, cut, or repeats blown
	 * up: each either builds or fails with FV_E_CONFIG, never crashes */
	size_t len = strlen(resnet20_spec);
	char buf[1024];
	const char alphabet[] = "x0123456789;{}|# \nresconvbnlinearsp";
	int built = 0;
	for (int t = 0; t < 400; t++) {
		memcpy(buf, resnet20_spec, len + 1);
		for (int k = 0, n = 1 + (int)(fv_test_rand() % 4); k < n; k++)
			buf[fv_test_rand() % len] = alphabet[fv_test_rand() % (sizeof alphabet - 1)];
		if (t % 10 == 0)
			buf[fv_test_rand() % len] = 0;
		fv_net *net = NULL;
		int rc = fv_model_build(buf, 1, 28, 28, 10, &net);
		FV_CHECK_MSG(rc == 0 || rc == FV_E_CONFIG, "rc %d (%s) for:\n%s", rc,
			     fv_err_msg(rc), buf);
		FV_CHECK((rc == 0) == (net != NULL));
		built += rc == 0;
		fv_net_destroy(&net);
	}
	FV_CHECK(built > 0 && built < 400); /* the mutations do reach both paths */
	fv_net *net = NULL;
	FV_CHECK_EQ(fv_model_build("1000x { 1000x { 1000x relu } }; linear", 1, 8, 8, 10, &net),
		    FV_E_CONFIG);
	FV_CHECK(strstr(fv_err_msg(FV_E_CONFIG), "more than 20000 layers") != NULL);
}

/* Each bad spec fails with FV_E_CONFIG and a detail naming `token`. */
static void bad(const char *spec, const char *token)
{
	fv_net *net = (fv_net *)1;
	fv_err_clear();
	int rc = fv_model_build(spec, 1, 28, 28, 10, &net);
	FV_CHECK_MSG(rc == FV_E_CONFIG, "'%s' -> %d (%s)", spec, rc, fv_err_msg(rc));
	FV_CHECK_MSG(net == NULL, "'%s' left a net", spec);
	FV_CHECK_MSG(strstr(fv_err_msg(rc), token) != NULL, "'%s': detail '%s' lacks '%s'",
		     spec, fv_err_msg(rc), token);
}

FV_TEST(spec_errors)
{
	bad("resnet21", "'resnet21' at 1");
	bad("  resnet21\n", "'resnet21' at 3");
	bad("conv 16 3; bn; relu; gapp; linear", "'gapp' at 22");
	bad("conv x 3; linear", "'x' at 6");
	bad("conv 16; linear", "conv needs 2 numbers before ';' at 8");
	bad("conv 16 3 q2; linear", "'q2' at 11");
	bad("conv 16 3 s0; linear", "'s0' at 11");
	bad("conv 16 3; gap", "output is 16x1x1");
	bad("dropout 1.5; linear", "'1.5' at 9");
	bad("res { conv 16 3; linear", "at end");
	bad("relu }; linear", "'}' at 6");
	bad("0x relu; linear", "'0x' at 1");
	bad("3y relu; linear", "'3y' at 1");
	bad("relu linear", "'linear' at 6");
	bad("maxpool 64; linear", "'maxpool' at 1");
	bad("conv 16 3; res { conv 8 3 | conv 9 1 }; linear", "'res' at 12");
	bad("res { }; linear", "'}' at 7");
	bad("", "empty");
	bad("conv 16 3; bn; @; linear", "'@' at 16");
	bad("conv 16 3; bn; \x01; linear", "byte 0x01 at 16");
	bad("res\n{ relu }; linear", "end of line at 4");
	bad("{{{{{{{{{{{{{{{{{{ relu }}}}}}}}}}}}}}}}}}; linear", "nested too deep");
}

/* ---- learning: resnet20 overfits 256 Fashion-MNIST images ------------------- */

#define FASHION "/usr/share/datasets/fashion-mnist/"
#define NIMG 256
#define BATCH 64
#define MAX_EPOCHS 25 /* 100 steps: the bound the test asserts (it needs ~13) */
#define LR 0.02f     /* fewer epochs than 0.05 or 0.1 here (13 vs 18 and 27) */

/* The first n items of an IDX file (gzip): skip the header of hdr bytes,
 * read n * item bytes. A tiny reader so this test needs nothing but zlib. */
static int read_idx(const char *path, int hdr, size_t bytes, uint8_t *out)
{
	gzFile f = gzopen(path, "rb");
	uint8_t h[16];
	if (!f)
		return -1;
	int ok = gzread(f, h, hdr) == hdr && h[0] == 0 && h[1] == 0 && h[2] == 8 &&
		 gzread(f, out, (unsigned)bytes) == (int)bytes;
	gzclose(f);
	return ok ? 0 : -1;
}

FV_TEST(models_resnet20_overfits_fashion)
{
	static uint8_t pix[NIMG * 784], lab[NIMG];
	static float x[NIMG * 784];
	int labels[NIMG], order[NIMG];
	fv_net *net = NULL;
	fv_sgd *sgd = NULL;
	if (read_idx(FASHION "train-images-idx3-ubyte.gz", 16, sizeof pix, pix) ||
	    read_idx(FASHION "train-labels-idx1-ubyte.gz", 8, sizeof lab, lab)) {
		FV_CHECK_MSG(0, "cannot read Fashion-MNIST from " FASHION);
		return;
	}
	/* normalized with the Fashion-MNIST training set's mean and std */
	for (int i = 0; i < NIMG * 784; i++)
		x[i] = (pix[i] / 255.0f - 0.2860f) / 0.3530f;
	for (int i = 0; i < NIMG; i++)
		labels[i] = lab[i], order[i] = i;

	FV_CHECK_OK(fv_model_build("resnet20", 1, 28, 28, 10, &net));
	if (!net)
		return;
	int rc = fv_net_compile(net, &(fv_net_opts){ .batch = BATCH, .threads = 2, .seed = 1 });
	FV_CHECK_MSG(rc == 0, "compile: %s (the nn engine's execution is needed)",
		     fv_err_msg(rc));
	if (rc)
		goto out;
	FV_CHECK_OK(fv_sgd_new(&sgd, fv_net_params(net), fv_net_nparams(net),
			       &(fv_sgd_opts){ .momentum = 0.9f, .weight_decay = 5e-4f }));
	if (!sgd)
		goto out;

	static float bx[BATCH * 784];
	int by[BATCH], epoch, steps = 0;
	double acc = 0, first_loss = -1, last_loss = 0;
	for (epoch = 0; epoch < MAX_EPOCHS && acc < 0.99; epoch++) {
		int correct = 0;
		for (int i = NIMG - 1; i > 0; i--) { /* deterministic shuffle */
			int j = (int)(fv_test_rand() % (uint64_t)(i + 1)), t = order[i];
			order[i] = order[j], order[j] = t;
		}
		for (int b0 = 0; b0 < NIMG; b0 += BATCH, steps++) {
			for (int k = 0; k < BATCH; k++) {
				memcpy(bx + k * 784, x + order[b0 + k] * 784, 784 * sizeof *bx);
				by[k] = labels[order[b0 + k]];
			}
			float loss;
			int rc = fv_net_forward(net, bx, BATCH, 1);
			const float *lg = fv_net_logits(net);
			for (int k = 0; !rc && k < BATCH; k++) {
				int best = 0;
				for (int c = 1; c < 10; c++)
					if (lg[k * 10 + c] > lg[k * 10 + best])
						best = c;
				correct += best == by[k];
			}
			if (!rc)
				rc = fv_net_loss(net, by, &(fv_loss_opts){ 0 }, &loss);
			if (!rc)
				rc = fv_net_backward(net);
			if (!rc)
				rc = fv_sgd_step(sgd, LR);
			if (rc) { /* the engine failed: no point going on */
				FV_CHECK_OK(rc);
				goto out;
			}
			if (first_loss < 0)
				first_loss = loss;
			last_loss = loss;
		}
		acc = (double)correct / NIMG; /* training accuracy, as the steps saw it */
	}
	/* the same images in inference mode (running BN statistics) */
	int eval_correct = 0;
	for (int b0 = 0; b0 < NIMG; b0 += BATCH) {
		FV_CHECK_OK(fv_net_forward(net, x + b0 * 784, BATCH, 0));
		const float *lg = fv_net_logits(net);
		for (int k = 0; k < BATCH; k++) {
			int best = 0;
			for (int c = 1; c < 10; c++)
				if (lg[k * 10 + c] > lg[k * 10 + best])
					best = c;
			eval_correct += best == labels[b0 + k];
		}
	}
	fprintf(stderr, "resnet20: %.1f%% of %d images after %d epochs (%d steps), "
		"loss %.3f -> %.3f, %.1f%% in inference mode\n", 100 * acc, NIMG, epoch, steps,
		first_loss, last_loss, 100.0 * eval_correct / NIMG);
	FV_CHECK_MSG(acc >= 0.99, "training accuracy %.3f < 0.99 after %d steps", acc, steps);
	FV_CHECK(last_loss < 0.2 * first_loss);
	/* the running BN statistics (momentum 0.1) trail weights that were still
	 * moving (~87% seen): a loose check that the inference path works at all
	 * (chance is 10%) */
	FV_CHECK_MSG(eval_correct >= 0.75 * NIMG, "inference mode: %d of %d", eval_correct, NIMG);
out:
	fv_sgd_destroy(&sgd);
	fv_net_destroy(&net);
}
