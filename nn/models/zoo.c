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
static int alexnet(fv_mb *b, int classes)
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

int fv_model_alexnet(fv_mb *b, int classes)
{
	return alexnet(b, classes);
}

/* ---- the table ------------------------------------------------------------ */

enum family { CIFAR, RESNET, ALEX, MOBILE2, EFFNET };

static const struct entry {
	fv_model_info info;
	enum family family;
	int arg;
} zoo[] = {
	{ { "resnet20", "CIFAR ResNet-20, 16/32/64 channels, projection shortcuts", 32 }, CIFAR, 20 },
	{ { "resnet32", "CIFAR ResNet-32", 32 }, CIFAR, 32 },
	{ { "resnet44", "CIFAR ResNet-44", 32 }, CIFAR, 44 },
	{ { "resnet56", "CIFAR ResNet-56", 32 }, CIFAR, 56 },
	{ { "resnet110", "CIFAR ResNet-110", 32 }, CIFAR, 110 },
	{ { "resnet18", "ImageNet ResNet-18 (torchvision layout)", 224 }, RESNET, 18 },
	{ { "resnet34", "ImageNet ResNet-34", 224 }, RESNET, 34 },
	{ { "resnet50", "ImageNet ResNet-50 v1.5 (bottlenecks)", 224 }, RESNET, 50 },
	{ { "resnet101", "ImageNet ResNet-101 v1.5", 224 }, RESNET, 101 },
	{ { "resnet152", "ImageNet ResNet-152 v1.5", 224 }, RESNET, 152 },
	{ { "alexnet", "AlexNet (torchvision, no LRN), inputs >= 63 px", 224 }, ALEX, 0 },
	{ { "mobilenetv2", "MobileNetV2 width 1.0, ReLU6", 224 }, MOBILE2, 0 },
	{ { "efficientnet-b0", "EfficientNet-B0, SE + SiLU", 224 }, EFFNET, 0 },
	{ { "efficientnet-b1", "EfficientNet phi=1 (d=1.2, w=1.1)", 258 }, EFFNET, 1 },
	{ { "efficientnet-b2", "EfficientNet phi=2 (d=1.44, w=1.21)", 296 }, EFFNET, 2 },
	{ { "efficientnet-b3", "EfficientNet phi=3 (d=1.73, w=1.33)", 341 }, EFFNET, 3 },
	{ { "efficientnet-b4", "EfficientNet phi=4 (d=2.07, w=1.46)", 392 }, EFFNET, 4 },
	{ { "efficientnet-b5", "EfficientNet phi=5 (d=2.49, w=1.61)", 451 }, EFFNET, 5 },
	{ { "efficientnet-b6", "EfficientNet phi=6 (d=2.99, w=1.77)", 518 }, EFFNET, 6 },
	{ { "efficientnet-b7", "EfficientNet phi=7 (d=3.58, w=1.95)", 596 }, EFFNET, 7 },
};
#define NZOO (sizeof zoo / sizeof zoo[0])

/* The info table is a copy of the entries' first members, built once. */
static fv_model_info infos[NZOO];

const fv_model_info *fv_model_list(size_t *n)
{
	if (!infos[0].name)
		for (size_t i = 0; i < NZOO; i++)
			infos[i] = zoo[i].info;
	*n = NZOO;
	return infos;
}

static const struct entry *find(const char *name)
{
	for (size_t i = 0; i < NZOO; i++)
		if (!strcmp(zoo[i].info.name, name))
			return &zoo[i];
	return NULL;
}

const fv_model_info *fv_model_find(const char *name)
{
	const struct entry *e = find(name);
	size_t n;
	return e ? &fv_model_list(&n)[e - zoo] : NULL;
}

static int build_named(fv_mb *b, const struct entry *e, int classes)
{
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
	const struct entry *e = NULL;
	char word[64];
	int rc, y;
	*out = NULL;
	if (!spec || !*spec)
		return fv_err_set(FV_E_CONFIG, "model: empty name or spec");
	if (in_c < 1 || in_h < 1 || in_w < 1 || classes < 1)
		return fv_err_set(FV_E_CONFIG, "model %s: bad input %dx%dx%d or %d classes",
				  spec, in_c, in_h, in_w, classes);
	if (is_word(spec, word, sizeof word) && !is_layer_word(word)) {
		e = find(word);
		if (!e)
			return fv_err_set(FV_E_CONFIG, "model: unknown model '%s' at %d (a name "
					  "such as resnet20, resnet50, mobilenetv2, "
					  "efficientnet-b0, or a text spec)", word,
					  (int)strspn(spec, " \t\r\n") + 1);
		spec = e->info.name;
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
