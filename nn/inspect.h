/* nn/inspect.h — looking inside a compiled network after a forward pass:
 * which node to explain, and a node's activations together with the
 * gradient of chosen class scores with respect to them (what Grad-CAM
 * needs). The gradient is computed by a backward pass over only the nodes
 * between that node and the logits, with no parameter gradient, so it
 * touches no training state. */
#ifndef FV_INSPECT_H
#define FV_INSPECT_H

#include "nn/net.h"

/* The last convolution, batch-norm or activation node whose output is
 * spatial (h * w > 1): Grad-CAM's usual target. Returns the node id, or
 * FV_E_NOTFOUND. */
int fv_net_cam_node(const fv_net *net);

/* After fv_net_forward(net, x, n, 0) on a net compiled with gradients
 * (inference_only = 0): act (may be NULL) gets node's output and grad (may
 * be NULL) the gradient of logit classes[i] of image i with respect to it,
 * each n x C x H x W host floats (C, H, W: fv_net_shape of node). Nodes
 * between node and the logits must be convolution, activation, average or
 * global pooling, flatten, linear, add, dropout or scale; anything else
 * (batch norm, max pooling) is FV_E_UNSUPPORTED. */
int fv_net_node_grad(fv_net *net, int node, const int *classes, float *act, float *grad);

#endif
