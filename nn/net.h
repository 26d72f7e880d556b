/* nn/net.h — networks: build a graph of layers, compile it for a batch size,
 * then run forward / loss / backward steps with no allocation inside the
 * step loop.
 *
 * Building: each fv_net_<layer>() takes the id of its input node(s) and
 * returns the id of the new node (>= 0) or a negative FV_E* code (detail in
 * fv_err_msg). Shapes are inferred as nodes are added (NCHW, float32).
 * Parameter names follow "<name>.weight", "<name>.bias", "<name>.running_mean".
 *
 *   fv_net *net;
 *   fv_net_new(&net, 3, 32, 32);
 *   int x = fv_net_conv(net, FV_NET_INPUT, "conv1", 16, 3, 1, 1, 1, 1, 0);
 *   x = fv_net_bn(net, x, "bn1");
 *   x = fv_net_act(net, x, FV_ACT_RELU);
 *   ...
 *   x = fv_net_linear(net, fv_net_flatten(net, fv_net_gap(net, x)), "fc", 10);
 *   fv_net_set_output(net, x);
 *   fv_net_compile(net, &(fv_net_opts){ .batch = 128, .threads = 2 });
 */
#ifndef FV_NET_H
#define FV_NET_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include "nn/param.h"
#include "nn/backend.h"

typedef struct fv_net fv_net;

enum { FV_NET_INPUT = 0 }; /* the id of the input node */

enum fv_act { FV_ACT_RELU, FV_ACT_RELU6, FV_ACT_SILU, FV_ACT_SIGMOID };

/* A new, empty network whose input is channels x height x width. */
int fv_net_new(fv_net **out, int channels, int height, int width);
void fv_net_destroy(fv_net **p);

/* ---- building ---------------------------------------------------------- */
/* Convolution: out_ch filters of k x k, stride, padding, dilation, groups
 * (groups == in_ch and out_ch == in_ch is depthwise), optional bias. */
int fv_net_conv(fv_net *net, int in, const char *name, int out_ch, int k, int stride,
		int pad, int dilation, int groups, int bias);
int fv_net_bn(fv_net *net, int in, const char *name); /* momentum/eps from fv_net_opts */
int fv_net_act(fv_net *net, int in, enum fv_act act);
/* Pooling windows floor the output size; average pooling counts the zero
 * padding (PyTorch's defaults). */
int fv_net_maxpool(fv_net *net, int in, int k, int stride, int pad);
int fv_net_avgpool(fv_net *net, int in, int k, int stride, int pad);
int fv_net_gap(fv_net *net, int in);           /* N,C,H,W -> N,C,1,1 */
int fv_net_flatten(fv_net *net, int in);       /* N,C,H,W -> N,C*H*W,1,1 */
/* With bias; an input that is not C x 1 x 1 is flattened first. */
int fv_net_linear(fv_net *net, int in, const char *name, int out_features);
int fv_net_add(fv_net *net, int a, int b);     /* residual add, same shapes */
int fv_net_scale(fv_net *net, int x, int s);   /* x[n,c,h,w] * s[n,c,1,1] (squeeze-excitation) */
int fv_net_dropout(fv_net *net, int in, float p);
int fv_net_set_output(fv_net *net, int node);  /* the logits: N,classes,1,1 */

/* Shape of a node: c, h, w (batch excluded). */
int fv_net_shape(const fv_net *net, int node, int *c, int *h, int *w);
int fv_net_classes(const fv_net *net);
/* Parameter table (valid for the net's lifetime). Available right after
 * building (sizes and names; data is NULL until compiled). */
size_t fv_net_nparams(const fv_net *net);
fv_param *fv_net_params(fv_net *net);
/* Trainable parameter count (weights, biases, BN scale/shift; not buffers). */
size_t fv_net_param_count(const fv_net *net);
/* Multiply-accumulates of one forward pass for one image (FLOPs = 2 x MACs). */
double fv_net_macs(const fv_net *net);

/* ---- compiling and running ------------------------------------------- */
typedef struct fv_net_opts {
	int batch;            /* largest batch run; activations planned for it */
	int threads;          /* 0 = all cores */
	const char *device;   /* "cpu" (default) or "cuda[:N]" */
	float bn_momentum;    /* 0 = 0.1 (PyTorch convention) */
	float bn_eps;         /* 0 = 1e-5 */
	int inference_only;   /* no gradients or backward workspace */
	uint64_t seed;        /* weight init (He normal for conv/linear) and dropout */
} fv_net_opts;

/* Plans every op for opts->batch, allocates activations, parameters (one
 * block) and gradients (another), initialises weights from the seed. An
 * output that is not a linear or flatten node gets a flatten appended. A BN
 * or residual add whose only reader is a ReLU applies it itself (same
 * results, fewer memory passes). The net can then no longer be extended. */
int fv_net_compile(fv_net *net, const fv_net_opts *opts);

/* Forward n <= batch images x (n, C, H, W host floats). train != 0 uses batch
 * statistics and updates running stats, and applies dropout (a fresh mask
 * per training forward, from the seed). A batch size other than the last
 * one re-plans the ops once (allocation-free afterwards). x == NULL: the
 * input tensor was already filled on the device (fv_net_input). */
int fv_net_forward(fv_net *net, const float *x, int n, int train);
/* Logits of the last forward: n x classes host floats, valid until the next
 * forward. */
const float *fv_net_logits(fv_net *net);

/* Softmax cross-entropy of the last forward against labels, with label
 * smoothing eps (targets (1-eps)*onehot + eps/K) and optional per-class
 * weights (NULL = 1). Writes the mean loss and seeds the logits' gradient.
 * soft_targets (n x K, rows summing to 1) replaces labels when non-NULL and
 * kd_weight is the share of the loss it gets: used for distillation. */
typedef struct fv_loss_opts {
	float smoothing;
	const float *class_weights;
	const float *soft_targets;
	float soft_weight;
	float temperature;   /* distillation: the soft term compares softmax(z/T)
			      * with soft_targets and is scaled by T^2 (0 = 1) */
} fv_loss_opts;
int fv_net_loss(fv_net *net, const int *labels, const fv_loss_opts *o, float *loss);

/* Backward from the gradient the loss seeded: fills every unfrozen param's
 * grad (overwritten, not accumulated). */
int fv_net_backward(fv_net *net);

/* How many residual adds compile folded into the BN before them (with
 * their ReLU): backends that offer bn_add_*; for tests and the profile. */
int fv_net_folded_adds(const fv_net *net);

/* FV_PROFILE=1 in the environment: every node's forward and backward is
 * timed with the device synchronised around it (slower: a diagnosis aid).
 * Prints milliseconds per training step by op kind and the costliest nodes;
 * prints nothing when the profile is off or empty. */
void fv_net_profile_report(fv_net *net, FILE *f);
/* Start (or restart) that profile from the next training step, as
 * FV_PROFILE=1 does from the first. */
int fv_net_profile_start(fv_net *net);

/* Make params' host data current (after GPU steps) / push host edits back. */
int fv_net_sync_to_host(fv_net *net);
int fv_net_sync_to_device(fv_net *net);

/* ---- device access (GPU backends) -------------------------------------- */
/* The compiled net's backend and its parameter / gradient blocks, for an
 * optimizer that runs on the device (nn/optim.h fv_sgd_bind). keep_grads != 0
 * stops fv_net_backward from copying gradients to the host params' grad
 * from then on (they stay on the device; host grads go stale); 0 changes
 * nothing. On the CPU the blocks are
 * the host ones. Valid until the net is destroyed. */
typedef struct fv_net_dev {
	const fv_backend *be;
	fv_backend_ctx *ctx;
	float *host_params;   /* params[i].data - host_params = the param's offset */
	void *params, *grads; /* device blocks of nfloats floats each */
	size_t nfloats;
} fv_net_dev;
int fv_net_device(fv_net *net, fv_net_dev *out, int keep_grads);
/* The input tensor (batch x C x H x W on the device), for callers that fill
 * it there themselves (nn/cuda/fv_cuda.h) and then call fv_net_forward with
 * x == NULL. NULL before compile. */
const fv_tensor *fv_net_input(fv_net *net);

#endif
