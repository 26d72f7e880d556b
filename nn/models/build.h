/* nn/models/build.h — internal: a thin layer over the fv_net builder for the
 * zoo. Every call takes printf-style parameter names and keeps the first
 * error in the builder ("sticky"), so a model reads as a straight list of
 * layers and checks for failure once at the end. After an error every call
 * returns -1 and does nothing. */
#ifndef FV_MODELS_BUILD_H
#define FV_MODELS_BUILD_H

#include "nn/net.h"

typedef struct fv_mb {
	fv_net *net;
	int rc;       /* first error (FV_E* or errno), 0 while all is well */
} fv_mb;

#define FV_MB_FMT(i) __attribute__((format(printf, i, i + 1)))

/* conv with "same" padding (k/2), no bias unless bias != 0. */
int fv_mb_conv(fv_mb *b, int x, int out_ch, int k, int stride, int groups, int bias,
	       const char *fmt, ...) FV_MB_FMT(8);
/* conv with explicit padding, groups 1. */
int fv_mb_convp(fv_mb *b, int x, int out_ch, int k, int stride, int pad, int bias,
		const char *fmt, ...) FV_MB_FMT(8);
int fv_mb_bn(fv_mb *b, int x, const char *fmt, ...) FV_MB_FMT(3);
int fv_mb_linear(fv_mb *b, int x, int out, const char *fmt, ...) FV_MB_FMT(4);
int fv_mb_act(fv_mb *b, int x, enum fv_act act);
int fv_mb_maxpool(fv_mb *b, int x, int k, int stride, int pad);
int fv_mb_avgpool(fv_mb *b, int x, int k, int stride, int pad);
int fv_mb_gap(fv_mb *b, int x);
int fv_mb_flatten(fv_mb *b, int x);
int fv_mb_add(fv_mb *b, int x, int y);
int fv_mb_scale(fv_mb *b, int x, int s);
int fv_mb_dropout(fv_mb *b, int x, float p);

/* Channels / height / width of node x (0 after an error). */
int fv_mb_c(fv_mb *b, int x);
int fv_mb_h(fv_mb *b, int x);
int fv_mb_w(fv_mb *b, int x);

/* Squeeze-excitation on x: gap, 1x1 conv to sq (bias), act, 1x1 conv back
 * (bias), sigmoid, scale. Names "<prefix>.fc1", "<prefix>.fc2". */
int fv_mb_se(fv_mb *b, int x, int sq, enum fv_act act, const char *prefix);

/* A raw fv_net_* return: the node id, or -1 with the error kept. */
int fv_mb_keep(fv_mb *b, int r);

/* Record a detail line and make rc the builder's error (if none yet). */
int fv_mb_fail(fv_mb *b, int rc, const char *fmt, ...) FV_MB_FMT(3);

/* ---- the named models (one file per family) ---- */
int fv_model_resnet_cifar(fv_mb *b, int depth, int classes);
int fv_model_resnet(fv_mb *b, int depth, int classes);
int fv_model_alexnet(fv_mb *b, int classes);
int fv_model_mobilenetv2(fv_mb *b, int classes);
int fv_model_efficientnet(fv_mb *b, int phi, int classes);
int fv_model_efficientnet_size(int phi);

/* The text spec (spec.c). */
int fv_model_parse(fv_mb *b, const char *spec, int classes);

#endif
