/* nn/cuda/fv_cuda.h — what the CUDA backend offers beyond nn/backend.h, for
 * programs built with CUDA=1 (the functions exist only there):
 *
 *  - a data path for uint8 NHWC batches: pinned host buffers, the copy on
 *    its own stream overlapping the previous step's compute, normalisation
 *    ((x - mean[c]) / std[c], pixel units as fv_aug_params) and the NHWC->NCHW
 *    transpose on the GPU,
 *    straight into a compiled net's input tensor;
 *  - softmax cross-entropy with label smoothing and class weights on device
 *    logits (nn/loss.c's formula; the graph itself keeps the loss on the
 *    host, where every backend shares it).
 *
 * Typical loop, two slots:
 *   fv_cuda_input_new(&in, net, 2, mean, std);
 *   fill fv_cuda_input_buffer(in, 0); fv_cuda_input_submit(in, 0, n);
 *   for each step s: slot = s & 1;
 *       fill fv_cuda_input_buffer(in, !slot) with the next batch and submit it
 *       fv_cuda_input_load(in, slot); fv_net_forward(net, NULL, n, 1); ...
 */
#ifndef FV_CUDA_H
#define FV_CUDA_H

#include <stdint.h>
#include "nn/net.h"

typedef struct fv_cuda_input fv_cuda_input;

/* Input staging for a compiled CUDA net with `slots` pinned buffers of
 * batch x H x W x C bytes. mean/std: C floats each in pixel units (0..255, as
 * fv_aug_params and fovea-trainer keep them); NULL: 0 and 255 (x / 255).
 * Returns 0, FV_E_UNSUPPORTED (the net does not run on the CUDA backend),
 * ENOMEM / FV_E_INTERNAL (CUDA failures, detail in fv_err_msg). */
int fv_cuda_input_new(fv_cuda_input **out, fv_net *net, int slots, const float *mean,
		      const float *std);
void fv_cuda_input_destroy(fv_cuda_input **p);
/* The slot's pinned buffer, once its last copy is done (may wait for it).
 * Valid for the input's life. */
uint8_t *fv_cuda_input_buffer(fv_cuda_input *in, int slot);
/* Start copying the slot's first n images to the GPU (returns at once). */
int fv_cuda_input_submit(fv_cuda_input *in, int slot, int n);
/* Make the net's compute stream wait for the slot's copy and normalise it
 * into the net input; then call fv_net_forward(net, NULL, n, train). */
int fv_cuda_input_load(fv_cuda_input *in, int slot);

/* Softmax cross-entropy on device logits (n x k fp32): the mean loss to
 * *loss (host) and its gradient to dlogits (device, n x k). labels and
 * class_weights (NULL = 1) are host arrays. */
int fv_cuda_xent(fv_net *net, float *loss, float *dlogits, const float *logits,
		 const int *labels, const float *class_weights, float smoothing, int n, int k);

#endif
