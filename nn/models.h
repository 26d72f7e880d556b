/* nn/models.h — the model zoo and the text model spec: one call turns a model
 * name ("resnet20", "efficientnet-b0") or a short text description of a net
 * into an fv_net, built for a given input shape and class count and ready to
 * compile (see nn/net.h).
 *
 * ---- Named models ----------------------------------------------------------
 *  resnet20/32/44/56/110  CIFAR ResNets (He et al. 2015, sec. 4.2): 3x3 stem of
 *      16, three stages of 16/32/64 channels with n = (depth-2)/6 basic blocks
 *      each, global average pool, linear. Shortcuts that change shape use a
 *      1x1 conv + BN projection (option B), so resnet20 has 272,474 parameters
 *      at 3 channels / 10 classes (option A's zero-padding gives 269,722).
 *      Any input size and channel count.
 *  resnet18/34/50/101/152 ImageNet ResNets with torchvision's layout and
 *      parameter names ("layer1.0.conv1.weight", "layer1.0.downsample.0.weight",
 *      "fc.bias"); bottlenecks from 50 up, stride on the 3x3 conv (v1.5).
 *  alexnet                torchvision's AlexNet (no LRN): features, 6x6
 *      average pool, dropout/linear classifier. Needs inputs >= 63 px; the
 *      adaptive pool becomes a plain one that yields 6x6 for square feature
 *      maps >= 6 (exact when 6 divides the size); smaller or non-square maps
 *      feed the classifier whole, so its first layer grows or shrinks.
 *  mobilenetv2            width 1.0, inverted residuals, ReLU6.
 *  efficientnet-b0..b7    MBConv blocks with squeeze-excitation and SiLU.
 *      bN applies compound scaling with phi = N: depth d = 1.2^N, width
 *      w = 1.1^N, resolution r = 1.15^N (default size round(224 r)); channels
 *      are rounded to multiples of 8 as in the reference implementation and
 *      repeats are ceil(d * repeats). Note the published B1..B7 checkpoints
 *      use hand-rounded (w, d, size) instead of the formula, so only b0 has
 *      their exact architecture. Stochastic depth is left out (no
 *      parameters); torchvision's BN eps 1e-3 is a compile option
 *      (fv_net_opts.bn_eps), not part of the model.
 *
 * Small inputs: the ImageNet-style nets (resnet18+, mobilenetv2, efficientnet)
 * downsample 32x. For inputs under 64 px on the short side they keep more
 * resolution instead: the resnets use a 3x3 stride-1 stem without max pool
 * (the usual CIFAR variant; conv1 is then 3x3), mobilenetv2 and efficientnet
 * use a stride-1 stem. alexnet fails with FV_E_CONFIG below 63 px.
 *
 * ---- The text spec ----------------------------------------------------------
 * Statements are separated by ';' or newlines; '#' starts a comment.
 *
 *   conv C K [sS] [pP] [gG] [dD] [bias]   C filters K x K, stride S (1), pad P
 *                                         (default "same": d*(K-1)/2), groups G
 *                                         (1), dilation D (1), no bias unless
 *                                         "bias"
 *   dwconv K [sS] [pP]                    depthwise conv (groups = channels)
 *   bn | relu | relu6 | silu | sigmoid
 *   maxpool K [sS] [pP] | avgpool K [sS] [pP]   stride defaults to K, pad to 0
 *   gap                                   global average pool
 *   flatten
 *   linear [N]                            N outputs (default: the class count);
 *                                         flattens its input first
 *   dropout P
 *   se C                                  squeeze-excitation with C squeeze
 *                                         channels (gap, 1x1 conv, SiLU, 1x1
 *                                         conv, sigmoid, scale), EfficientNet's
 *   res { BODY }                          x + BODY(x); when BODY changes the
 *                                         shape the shortcut is a 1x1 conv
 *                                         (stride to match) + BN projection
 *   res { BODY | SHORTCUT }               x' = BODY(x) + SHORTCUT(x)
 *   { STATEMENTS }                        a group
 *   Nx STATEMENT                          the statement N times ("3x { ... }")
 *
 * The net's output must be classes x 1 x 1, so a spec ends with "linear".
 * Parameters are named by position like an nn.Sequential: "3.weight",
 * "4.body.0.weight", "4.short.1.running_mean". Example, a CIFAR ResNet-8:
 *
 *   conv 16 3; bn; relu
 *   res { conv 16 3; bn; relu; conv 16 3; bn }; relu
 *   res { conv 32 3 s2; bn; relu; conv 32 3; bn }; relu
 *   res { conv 64 3 s2; bn; relu; conv 64 3; bn }; relu
 *   gap; linear
 *
 * Errors (unknown model, bad spec, or a layer that does not fit its input)
 * are FV_E_CONFIG with one line of detail naming the offending token and its
 * position (1-based character offset): "model spec: unknown layer 'gapp' at 22".
 */
#ifndef FV_MODELS_H
#define FV_MODELS_H

#include <stddef.h>
#include "nn/net.h"

typedef struct fv_model_info {
	const char *name;    /* "resnet50" */
	const char *summary; /* one line for --help */
	int default_size;    /* the input side it was designed for, in pixels */
} fv_model_info;

/* Build the model named or described by spec for inputs of in_c x in_h x
 * in_w and `classes` outputs. spec is a model name when it is one word that
 * names a model, else a text spec. On success *out is a new net (uncompiled;
 * the caller destroys it); on failure *out is NULL and the return is
 * FV_E_CONFIG (or the net's own error code) with detail in fv_err_msg(). */
int fv_model_build(const char *spec, int in_c, int in_h, int in_w, int classes,
		   fv_net **out);

/* The named models, in a static table: *n entries. */
const fv_model_info *fv_model_list(size_t *n);

/* The entry for name, or NULL when no model has that name. */
const fv_model_info *fv_model_find(const char *name);

#endif
