/* nn/graph.h — the network graph as the builder (nn/net.c) leaves it and the
 * runtime (nn/run.c) executes it. Internal to nn/: nothing outside includes
 * this. Nodes are stored in the order they were added, which is a
 * topological order (every input id is smaller than the node's own id). */
#ifndef FV_GRAPH_H
#define FV_GRAPH_H

#include <stddef.h>
#include "nn/net.h"
#include "nn/param.h"
#include "nn/backend.h"

enum fv_node_op {
	FV_OP_INPUT, FV_OP_CONV, FV_OP_BN, FV_OP_ACT, FV_OP_MAXPOOL, FV_OP_AVGPOOL,
	FV_OP_GAP, FV_OP_FLATTEN, FV_OP_LINEAR, FV_OP_ADD, FV_OP_SCALE, FV_OP_DROPOUT,
};

typedef struct fv_node {
	enum fv_node_op op;
	int in[2];             /* input node ids (-1 = none) */
	int c, h, w;           /* output shape, batch excluded */
	int param0, nparam;    /* slice of the net's parameter table */
	/* op attributes */
	int k, stride, pad, dil, groups, bias; /* conv / pooling */
	enum fv_act act;
	float p;               /* dropout probability */
	/* filled by compile */
	int consumers;         /* nodes reading this one */
	int need;              /* backward: a gradient must flow into this node */
	int fused;             /* ACT folded into the BN / add before it, or an add
				* folded into a BN: y is node alias's y */
	int alias;
	int fuse_relu;         /* BN that applies the ReLU after it */
	int addz;              /* BN that adds node addz's y before that ReLU (-1: none) */
	int gready;            /* backward: dy holds this step's gradient */
	fv_tensor y, dy;       /* output and its gradient (backend memory) */
	void *plan;            /* backend plan for this node's op */
	void *aux;             /* extra backend memory (workspace, mask, stats) */
} fv_node;

struct fv_net {
	int nnodes, cap;
	fv_node *nodes;
	int output;
	size_t nparams, pcap;
	fv_param *params;
	/* compiled state */
	int compiled, batch, train_ok, last_n;
	fv_net_opts opts;
	const fv_backend *be;
	fv_backend_ctx *ctx;
	float *pdata, *gdata;  /* host: all params / all grads, one allocation each */
	size_t ptotal;
	void *dparams, *dgrads; /* backend copies (== pdata/gdata on the CPU) */
	float *logits;          /* host, batch x classes */
	float *dlogits;         /* host, batch x classes */
	size_t *poff;           /* float offset of each param in the blocks */
	fv_tensor scr[2];       /* largest-activation scratch, for fan-out sums */
	int plan_n;             /* the batch size the plans are made for */
	int have_loss;          /* a loss seeded dy of the output since the last forward */
	uint64_t step;          /* dropout seed stream */
	int dev_grads;          /* gradients stay on the device (fv_net_device) */
	double *prof;           /* FV_PROFILE: seconds per node, forward [0, nnodes)
				 * then backward; NULL when off */
	int prof_steps, prof_checked;
};

/* Backward's gradient routing (nn/run.c), shared with nn/inspect.c: where
 * input j's gradient goes — its own dy if nothing wrote it yet this step,
 * else scratch slot s (shaped like j) that fv_graph_grad_done then adds in. */
fv_tensor *fv_graph_grad_dst(fv_net *net, int j, int s);
int fv_graph_grad_done(fv_net *net, int j, fv_tensor *t);

#endif
