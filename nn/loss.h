/* nn/loss.h — softmax cross-entropy on host logits (N x K is small next to
 * the network, so every backend shares this one). */
#ifndef FV_LOSS_H
#define FV_LOSS_H

#include "nn/net.h"

/* loss: the mean loss; dlogits: its gradient (n x k), overwritten.
 * labels may be NULL when o->soft_targets is set. */
int fv_softmax_xent_forward(float *loss, float *dlogits, const float *logits, const int *labels,
			    const fv_loss_opts *o, int n, int k);

#endif
