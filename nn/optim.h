/* nn/optim.h — SGD on the parameter table (nn/param.h): momentum and
 * Nesterov with PyTorch's semantics, L2 or decoupled weight decay (not on BN
 * parameters and biases unless asked), gradient clipping by global norm, and
 * an exponential moving average (EMA) of the weights for evaluation.
 *
 * The optimizer works on fv_param entries alone, never on layers. Params with
 * grad == NULL (buffers) or frozen != 0 are never updated. All state
 * (momentum buffers, EMA copy) lives in one allocation; fv_sgd_state_params()
 * describes it as named tensors so a checkpoint saves and restores it like
 * model weights. The step allocates nothing and is deterministic.
 *
 * Per trainable param p with gradient g, learning rate lr, momentum mu,
 * weight decay wd, clip scale c (1 unless clipping):
 *   g = c * g
 *   g += wd * p                      (L2, when !decoupled and p is decayed)
 *   buf = mu * buf + g               (buf starts at 0, as PyTorch's first step
 *                                     buf = g with dampening 0)
 *   d = nesterov ? g + mu * buf : buf   (d = g when mu == 0)
 *   p = p * (1 - lr * wd) - lr * d   (the decay factor only when decoupled)
 * then, when ema_decay > 0, for every param (buffers and frozen ones too, so
 * BN running statistics are averaged as well):
 *   ema = e * ema + (1 - e) * p,  e = ema_decay, or with ema_warmup
 *   e = min(ema_decay, (1 + t) / (10 + t)) at step t (counted from 0). */
#ifndef FV_OPTIM_H
#define FV_OPTIM_H

#include <stddef.h>
#include <stdint.h>
#include "nn/param.h"
#include "nn/net.h"

typedef struct fv_sgd fv_sgd;

typedef struct fv_sgd_opts {
	float momentum;         /* 0 = plain SGD; 0.9 is usual */
	int nesterov;           /* Nesterov momentum (needs momentum > 0) */
	float weight_decay;     /* 0 = none; 5e-4 / 1e-4 are usual */
	int decoupled;          /* SGDW: p *= 1 - lr*wd instead of adding wd*p to g */
	int decay_bn_and_bias;  /* also decay BN scale/shift and biases (default no) */
	float clip_norm;        /* > 0: scale gradients so their global L2 norm <= this */
	float ema_decay;        /* > 0: keep an EMA of the weights (0.999, 0.9999) */
	int ema_warmup;         /* ramp the EMA decay up over the first steps */
} fv_sgd_opts;

/* A new optimizer over params[0..n) (borrowed: the table and its data/grad
 * must outlive the optimizer). The EMA copy, if any, starts equal to the
 * current weights, so create the optimizer after initialising or loading
 * them (or restore the state from a checkpoint). o may be NULL (plain SGD).
 * Returns 0, EINVAL for bad options (detail in fv_err_msg), ENOMEM. */
int fv_sgd_new(fv_sgd **out, fv_param *params, size_t n, const fv_sgd_opts *o);
void fv_sgd_destroy(fv_sgd **p);

/* One update of every trainable param from its grad with learning rate lr.
 * Returns 0, or EINVAL for a non-finite lr, or FV_E_CORRUPT (params left
 * untouched) when the global gradient norm is not finite. */
int fv_sgd_step(fv_sgd *s, float lr);

/* Global L2 norm of the gradients seen by the last step, before clipping. */
double fv_sgd_grad_norm(const fv_sgd *s);
/* Steps taken (restored with the state on resume; drives ema_warmup). */
uint64_t fv_sgd_steps(const fv_sgd *s);
void fv_sgd_set_steps(fv_sgd *s, uint64_t steps);

/* ---- EMA ------------------------------------------------------------- */
/* Exchange the live weights and the EMA weights in place (all params). Call
 * once to evaluate or save the EMA weights, again to resume training. On a
 * GPU net, sync to host before and to device after. Returns 0, or
 * FV_E_NOTFOUND when the optimizer keeps no EMA. */
int fv_sgd_ema_swap(fv_sgd *s);
/* Whether the EMA weights are currently swapped into the params. */
int fv_sgd_ema_swapped(const fv_sgd *s);
/* EMA values of param i (numel floats), or NULL without EMA. While swapped
 * in, these hold the live training weights. Valid for the optimizer's life. */
float *fv_sgd_ema(fv_sgd *s, size_t i);

/* ---- on the device --------------------------------------------------- */
/* Run every later fv_sgd_step on the net's device as one fused update (the
 * backend's sgd_step) when the backend has one; the params must be the
 * net's table (fv_net_params) and dev come from fv_net_device(net, dev, 1).
 * The momentum/EMA state then lives on the device: fv_sgd_sync(s, 1) makes
 * the host copies (fv_sgd_state_params, fv_sgd_ema) current, fv_sgd_sync(s,
 * 0) pushes host edits (a loaded checkpoint) back. Returns 0, FV_E_UNSUPPORTED
 * (the backend has no device step: host steps continue), ENOMEM. Destroy
 * the optimizer before the net it is bound to. */
int fv_sgd_bind(fv_sgd *s, const fv_net_dev *dev);
int fv_sgd_sync(fv_sgd *s, int to_host);

/* ---- state for checkpoints ---------------------------------------------- */
/* The optimizer state as a parameter-style table of named tensors, for
 * fv_ckpt_write / fv_ckpt_load_params: "<param>.momentum" for each param
 * with a momentum buffer, "ema.<param>" for each EMA copy (so loading with
 * prefix "ema." gives the EMA weights). Entries have kind FV_PARAM_BUFFER,
 * grad NULL, the param's dims. Valid for the optimizer's life; names owned
 * by the optimizer. Save it while the EMA is not swapped in. */
fv_param *fv_sgd_state_params(fv_sgd *s, size_t *n);
/* The same state as one flat float array (momentum buffers in param order,
 * then EMA copies in param order). */
float *fv_sgd_state(fv_sgd *s, size_t *nfloats);

#endif
