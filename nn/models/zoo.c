/* nn/models/zoo.c — fv_model_build(): the table of named models, AlexNet,
 * and the dispatch between names and text specs (nn/models.h). */
#include "nn/models.h"

#include <stdio.h>
#include <string.h>

#include "fv_error.h"
#include "nn/models/build.h"

/* ---- AlexNet -------------------------------------------------------------- */

/* torchvision's AlexNet. Its adaptive 6x6 average pool is an ordinary pool
 * here: for a square f x f feature map with f >= 6 we pool with stride f/6
 * and window f - 5*(f/6), which is exactly the adaptive pool when 6 divides
 * f (f = 6 at 224 px: no pool). Otherwise (f < 6 or not square) the
 * classifier takes the whole 256 x fh x fw map, so its first layer's size
 * differs from torchvision's. */
int fv_model_alexnet(fv_mb *b, int classes)
{
	int h = fv_mb_h(b, FV_NET_INPUT), w = fv_mb_w(b, FV_NET_INPUT);
	if (h < 63 || w < 63)
		return fv_mb_fail(b, FV_E_CONFIG, "alexnet: needs inputs of at least 63x63 "
				  "(got %dx%d); use a resnet for small images", h, w);
	int x = fv_mb_convp(b, FV_NET_INPUT, 64, 11, 4, 2, 1, "features.0");
	x = fv_mb_maxpool(b, fv_mb_act(b, x, FV_ACT_RELU), 3, 2, 0);
	x = fv_mb_conv(b, x, 192, 5, 1, 1, 1, "features.3");
	x = fv_mb_maxpool(b, fv_mb_act(b, x, FV_ACT_RELU), 3, 2, 0);
	x = fv_mb_act(b, fv_mb_conv(b, x, 384, 3, 1, 1, 1, "features.6"), FV_ACT_RELU);
	x = fv_mb_act(b, fv_mb_conv(b, x, 256, 3, 1, 1, 1, "features.8"), FV_ACT_RELU);
	x = fv_mb_act(b, fv_mb_conv(b, x, 256, 3, 1, 1, 1, "features.10"), FV_ACT_RELU);
	x = fv_mb_maxpool(b, x, 3, 2, 0);
	int f = fv_mb_h(b, x);
	if (f == fv_mb_w(b, x) && f > 6)
		x = fv_mb_avgpool(b, x, f - 5 * (f / 6), f / 6, 0);
	x = fv_mb_dropout(b, fv_mb_flatten(b, x), 0.5f);
	x = fv_mb_act(b, fv_mb_linear(b, x, 4096, "classifier.1"), FV_ACT_RELU);
	x = fv_mb_dropout(b, x, 0.5f);
	x = fv_mb_act(b, fv_mb_linear(b, x, 4096, "classifier.4"), FV_ACT_RELU);
	return fv_mb_linear(b, x, classes, "classifier.6");
}

/* ---- the table ------------------------------------------------------------ */

enum family { CIFAR, RESNET, ALEX, MOBILE2, EFFNET };

/* Two parallel tables, so the public one is a plain const array. The
 * EfficientNet sizes are round(224 * 1.15^N) (fv_model_efficientnet_size;
 * the tests hold the two together). */
static const fv_model_info infos[] = {
	{ "resnet20", "CIFAR ResNet-20, 16/32/64 channels, projection shortcuts", 32 },
	{ "resnet32", "CIFAR ResNet-32", 32 },
	{ "resnet44", "CIFAR ResNet-44", 32 },
	{ "resnet56", "CIFAR ResNet-56", 32 },
	{ "resnet110", "CIFAR ResNet-110", 32 },
	{ "resnet18", "ImageNet ResNet-18 (torchvision layout)", 224 },
	{ "resnet34", "ImageNet ResNet-34", 224 },
	{ "resnet50", "ImageNet ResNet-50 v1.5 (bottlenecks)", 224 },
	{ "resnet101", "ImageNet ResNet-101 v1.5", 224 },
	{ "resnet152", "ImageNet ResNet-152 v1.5", 224 },
	{ "alexnet", "AlexNet (torchvision, no LRN), inputs >= 63 px", 224 },
	{ "mobilenetv2", "MobileNetV2 width 1.0, ReLU6", 224 },
	{ "efficientnet-b0", "EfficientNet-B0, SE + SiLU", 224 },
	{ "efficientnet-b1", "EfficientNet phi=1 (d=1.2, w=1.1)", 258 },
	{ "efficientnet-b2", "EfficientNet phi=2 (d=1.44, w=1.21)", 296 },
	{ "efficientnet-b3", "EfficientNet phi=3 (d=1.73, w=1.33)", 341 },
	{ "efficientnet-b4", "EfficientNet phi=4 (d=2.07, w=1.46)", 392 },
	{ "efficientnet-b5", "EfficientNet phi=5 (d=2.49, w=1.61)", 451 },
	{ "efficientnet-b6", "EfficientNet phi=6 (d=2.99, w=1.77)", 518 },
	{ "efficientnet-b7", "EfficientNet phi=7 (d=3.58, w=1.95)", 596 },
};

static const struct how {
	enum family family;
	int arg;
} hows[] = {
	{ CIFAR, 20 }, /* resnet20 */
	{ CIFAR, 32 }, /* resnet32 */
	{ CIFAR, 44 }, /* resnet44 */
	{ CIFAR, 56 }, /* resnet56 */
	{ CIFAR, 110 }, /* resnet110 */
	{ RESNET, 18 }, /* resnet18 */
	{ RESNET, 34 }, /* resnet34 */
	{ RESNET, 50 }, /* resnet50 */
	{ RESNET, 101 }, /* resnet101 */
	{ RESNET, 152 }, /* resnet152 */
	{ ALEX, 0 }, /* alexnet */
	{ MOBILE2, 0 }, /* mobilenetv2 */
	{ EFFNET, 0 }, /* efficientnet-b0 */
	{ EFFNET, 1 }, /* efficientnet-b1 */
	{ EFFNET, 2 }, /* efficientnet-b2 */
	{ EFFNET, 3 }, /* efficientnet-b3 */
	{ EFFNET, 4 }, /* efficientnet-b4 */
	{ EFFNET, 5 }, /* efficientnet-b5 */
	{ EFFNET, 6 }, /* efficientnet-b6 */
	{ EFFNET, 7 }, /* efficientnet-b7 */
};
#define NZOO (sizeof infos / sizeof infos[0])
_Static_assert(sizeof hows / sizeof hows[0] == NZOO, "one build recipe per model");

const fv_model_info *fv_model_list(size_t *n)
{
	*n = NZOO;
	return infos;
}

const fv_model_info *fv_model_find(const char *name)
{
	for (size_t i = 0; i < NZOO; i++)
		if (!strcmp(infos[i].name, name))
			return &infos[i];
	return NULL;
}

static int build_named(fv_mb *b, const fv_model_info *m, int classes)
{
	const struct how *e = &hows[m - infos];
	switch (e->family) {
	case CIFAR: return fv_model_resnet_cifar(b, e->arg, classes);
	case RESNET: return fv_model_resnet(b, e->arg, classes);
	case ALEX: return fv_model_alexnet(b, classes);
	case MOBILE2: return fv_model_mobilenetv2(b, classes);
	case EFFNET: return fv_model_efficientnet(b, e->arg, classes);
	}
	return fv_mb_fail(b, FV_E_INTERNAL, "model table: bad family");
}

/* One word without spec punctuation (surrounding blanks allowed): meant as
 * a model name. Copies the word into w. */
static int is_word(const char *s, char *w, size_t cap)
{
	size_t n;
	s += strspn(s, " \t\r\n");
	n = strcspn(s, " \t\r\n;{}|#");
	if (!n || n >= cap || s[n + strspn(s + n, " \t\r\n")])
		return 0;
	memcpy(w, s, n);
	w[n] = 0;
	return 1;
}

/* Spec keywords that are whole specs on their own ("linear": a linear model). */
static int is_layer_word(const char *s)
{
	return !strcmp(s, "linear");
}

/* ---- fv_model_build ------------------------------------------------------- */

int fv_model_build(const char *spec, int in_c, int in_h, int in_w, int classes,
		   fv_net **out)
{
	fv_mb b = { NULL, 0 };
	const fv_model_info *e = NULL;
	char word[64];
	int rc, y;
	*out = NULL;
	if (!spec || !*spec)
		return fv_err_set(FV_E_CONFIG, "model: empty name or spec");
	if (in_c < 1 || in_h < 1 || in_w < 1 || classes < 1)
		return fv_err_set(FV_E_CONFIG, "model %s: bad input %dx%dx%d or %d classes",
				  spec, in_c, in_h, in_w, classes);
	if (is_word(spec, word, sizeof word) && !is_layer_word(word)) {
		e = fv_model_find(word);
		if (!e)
			return fv_err_set(FV_E_CONFIG, "model: unknown model '%s' at %d (a name "
					  "such as resnet20, resnet50, mobilenetv2, "
					  "efficientnet-b0, or a text spec)", word,
					  (int)strspn(spec, " \t\r\n") + 1);
		spec = e->name;
	}
	rc = fv_net_new(&b.net, in_c, in_h, in_w);
	if (rc)
		return rc;
	y = e ? build_named(&b, e, classes) : fv_model_parse(&b, spec, classes);
	if (b.rc) {
		rc = b.rc;
		if (e) { /* name the model in the net's own detail line */
			char msg[768];
			snprintf(msg, sizeof msg, "%s", fv_err_msg(rc));
			/* a model that does not fit its input is bad configuration */
			if (rc == FV_E_MISMATCH)
				rc = FV_E_CONFIG;
			if (strncmp(msg, spec, strlen(spec)))
				fv_err_set(rc, "model %s: %s", spec, msg);
		}
		goto out;
	}
	if (fv_mb_c(&b, y) != classes || fv_mb_h(&b, y) != 1 || fv_mb_w(&b, y) != 1) {
		rc = fv_err_set(FV_E_CONFIG, "model spec: output is %dx%dx%d, expected %dx1x1 "
				"(end the spec with 'linear')", fv_mb_c(&b, y), fv_mb_h(&b, y),
				fv_mb_w(&b, y), classes);
		goto out;
	}
	rc = fv_net_set_output(b.net, y);
	if (rc < 0)
		goto out;
	rc = 0;
	*out = b.net;
	b.net = NULL;
out:
	fv_net_destroy(&b.net);
	return rc;
}
