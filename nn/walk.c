/* nn/walk.c — the read-only node view of nn/walk.h over nn/graph.h. */
#include "nn/walk.h"

#include <errno.h>
#include "nn/graph.h"

int fv_walk_count(const fv_net *net) { return net->nnodes; }

int fv_walk_output(const fv_net *net) { return net->output; }

float fv_walk_bn_eps(const fv_net *net) { return net->opts.bn_eps > 0 ? net->opts.bn_eps : 1e-5f; }

static enum fv_walk_op op_of(enum fv_node_op op)
{
	switch (op) {
	case FV_OP_INPUT: return FV_WALK_INPUT;
	case FV_OP_CONV: return FV_WALK_CONV;
	case FV_OP_BN: return FV_WALK_BN;
	case FV_OP_ACT: return FV_WALK_ACT;
	case FV_OP_MAXPOOL: return FV_WALK_MAXPOOL;
	case FV_OP_AVGPOOL: return FV_WALK_AVGPOOL;
	case FV_OP_GAP: return FV_WALK_GAP;
	case FV_OP_FLATTEN: return FV_WALK_FLATTEN;
	case FV_OP_LINEAR: return FV_WALK_LINEAR;
	case FV_OP_ADD: return FV_WALK_ADD;
	case FV_OP_SCALE: return FV_WALK_SCALE;
	case FV_OP_DROPOUT: return FV_WALK_DROPOUT;
	}
	return FV_WALK_UNKNOWN;
}

int fv_walk_get(const fv_net *net, int id, fv_walk_node *out)
{
	if (id < 0 || id >= net->nnodes)
		return EINVAL;
	const fv_node *n = &net->nodes[id];
	*out = (fv_walk_node){
		.op = op_of(n->op), .in = { n->in[0], n->in[1] }, .c = n->c, .h = n->h, .w = n->w,
		.param0 = n->param0, .nparam = n->nparam, .k = n->k, .stride = n->stride,
		.pad = n->pad, .dil = n->dil, .groups = n->groups, .bias = n->bias, .act = n->act,
	};
	/* Counted here: compile's count is absent on an uncompiled net. */
	for (int j = id + 1; j < net->nnodes; j++)
		out->consumers += (net->nodes[j].in[0] == id) + (net->nodes[j].in[1] == id);
	out->consumers += net->output == id;
	return 0;
}
