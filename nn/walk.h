/* nn/walk.h — a read-only view of a network's nodes for tools that
 * transform a trained net into something else (the exporter's folding and
 * quantization). Nodes come in topological order; ids are those the
 * builder returned (FV_NET_INPUT = 0 is the input). Nothing here changes
 * the net or needs it compiled. */
#ifndef FV_WALK_H
#define FV_WALK_H

#include "nn/net.h"

enum fv_walk_op {
	FV_WALK_INPUT, FV_WALK_CONV, FV_WALK_BN, FV_WALK_ACT, FV_WALK_MAXPOOL, FV_WALK_AVGPOOL,
	FV_WALK_GAP, FV_WALK_FLATTEN, FV_WALK_LINEAR, FV_WALK_ADD, FV_WALK_SCALE, FV_WALK_DROPOUT,
	FV_WALK_UNKNOWN,
};

typedef struct fv_walk_node {
	enum fv_walk_op op;
	int in[2];               /* input node ids, -1 = none */
	int c, h, w;             /* output shape, batch excluded */
	int param0, nparam;      /* slice of fv_net_params() */
	int k, stride, pad, dil, groups, bias; /* conv / pooling */
	enum fv_act act;
	int consumers;           /* nodes reading this one, +1 for the net's output */
} fv_walk_node;

/* Number of nodes (the input included). */
int fv_walk_count(const fv_net *net);
/* Node id into *out: 0, or EINVAL for an id out of range. */
int fv_walk_get(const fv_net *net, int id, fv_walk_node *out);
/* The output node's id, or -1 when none is set. */
int fv_walk_output(const fv_net *net);
/* Batch-norm epsilon the net runs with (its opts, 1e-5 by default). */
float fv_walk_bn_eps(const fv_net *net);

#endif
