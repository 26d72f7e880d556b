/* nn/param.h — the table that describes a model's parameters. A network
 * keeps all parameters in one allocation and all gradients in another; each
 * fv_param names a slice of both. The optimizer, the checkpoint code and the
 * exporter work on this table alone, never on layers. */
#ifndef FV_PARAM_H
#define FV_PARAM_H

#include <stddef.h>

enum fv_param_kind {
	FV_PARAM_WEIGHT,   /* conv / linear weights: decayed */
	FV_PARAM_BIAS,     /* biases: not decayed by default */
	FV_PARAM_BN_SCALE, /* batch-norm gamma: not decayed by default */
	FV_PARAM_BN_SHIFT, /* batch-norm beta: not decayed by default */
	FV_PARAM_BUFFER,   /* running mean/var: saved and loaded, never trained (grad NULL) */
};

typedef struct fv_param {
	const char *name;  /* stable, e.g. "layer1.0.conv1.weight"; owned by the net */
	enum fv_param_kind kind;
	float *data;       /* host-visible values (the backend keeps them in sync) */
	float *grad;       /* same size; NULL for buffers */
	size_t numel;
	int ndim;
	int dims[4];       /* conv: K, C/groups, R, S; linear: out, in; vectors: n */
	int frozen;        /* no gradient is computed into it and no update applied */
} fv_param;

#endif
