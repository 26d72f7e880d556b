/* nn/backend.h — the interface every compute backend implements: the op set
 * cuDNN exposes (convolution forward / backward data / backward filter, batch
 * norm train / infer / backward, pooling, activation, softmax) plus linear
 * (GEMM), elementwise (add, SE scale, dropout) and memory.
 *
 * The graph code (nn/run.c) never touches tensor memory directly: tensors are
 * opaque device pointers with a shape and a backend-chosen layout tag, so the
 * CPU backend can keep activations in oneDNN's blocked layout and a CUDA
 * backend can keep them on the GPU. Every op runs through a plan made once
 * per (op, shape) at compile time (like a cuDNN descriptor or a oneDNN
 * primitive); plans own any workspace they need, so the step loop allocates
 * nothing. A backend is a const struct of function pointers chosen at run
 * time by name (fv_backend_find), never by #ifdef.
 *
 * Softmax cross-entropy is not here: it runs on host logits (nn/loss.c,
 * N x K floats, copied with tensor_export/import), the same for every
 * backend, so CPU and GPU losses agree exactly.
 *
 * Op signatures follow the house rule: outputs first, then inputs, then the
 * plan (which carries the shape). Backward ops overwrite din (the graph sums
 * fan-out with add_into) and overwrite parameter gradients; a NULL gradient
 * pointer means "frozen: skip that computation". */
#ifndef FV_BACKEND_H
#define FV_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef struct fv_backend_ctx fv_backend_ctx; /* per-net backend state */
typedef struct fv_plan fv_plan;               /* one op at one shape */

/* Layout tags. FV_FMT_PLAIN is NCHW (or N x features) as host code expects;
 * a backend may return others from tensor_fmt and must then understand them. */
enum { FV_FMT_PLAIN = 0 };

typedef struct fv_tensor {
	void *data;      /* device memory, opaque to the graph */
	int n, c, h, w;  /* n = the batch size the tensor was planned for */
	int fmt;
} fv_tensor;

enum fv_op_kind {
	FV_K_CONV, FV_K_BN, FV_K_ACT, FV_K_POOL, FV_K_LINEAR, FV_K_ADD, FV_K_SCALE,
	FV_K_DROPOUT, FV_K_REORDER,
};

/* Everything a plan needs to know; x is the (first) input, y the output. */
typedef struct fv_op_desc {
	enum fv_op_kind kind;
	int n, c, h, w;        /* input shape */
	int k, oh, ow;         /* output channels, height, width */
	int fmt_x, fmt_y;      /* layouts of input and output */
	int r, stride, pad, dil, groups, bias; /* conv (r = kernel) / pooling */
	int pool_max;          /* pooling: 1 = max, 0 = average (padding excluded) */
	int act;               /* enum fv_act */
	float eps;             /* batch norm */
	int fuse_relu;         /* bn / add: y = relu(op(x)); backward takes relu's dy */
	int fuse_add;          /* bn (with fuse_relu): y = relu(bn(x) + z), the bn_add_* ops */
	float p;               /* dropout */
	int train;             /* plan must support backward */
} fv_op_desc;

/* Fused SGD on the device (optional, see sgd_new): one segment per param
 * of the net's parameter block, offsets in floats. */
typedef struct fv_sgd_seg {
	size_t off, n;         /* the param's slice of the param/grad blocks */
	size_t mom, ema;       /* its momentum / EMA slice of the state block, or SIZE_MAX */
	float wd;              /* weight decay of this param (0 = not decayed) */
	int train;             /* 1: updated; 0: only averaged into the EMA */
} fv_sgd_seg;

typedef struct fv_sgd_hyper {
	float lr, momentum, clip_norm, ema_decay; /* ema_decay 0: no EMA this step */
	int nesterov, decoupled;
} fv_sgd_hyper;

typedef struct fv_backend {
	const char *name;
	int (*ctx_new)(fv_backend_ctx **out, int threads);
	void (*ctx_destroy)(fv_backend_ctx **p);
	/* called on the calling thread at the start of each step function
	 * (thread settings are per thread with OpenMP) */
	void (*enter)(fv_backend_ctx *ctx);

	/* memory: bytes on the device; to_device/to_host copy host floats */
	int (*alloc)(fv_backend_ctx *ctx, size_t bytes, void **out);
	void (*free)(fv_backend_ctx *ctx, void *p);
	int (*to_device)(fv_backend_ctx *ctx, void *dst, const void *src, size_t bytes);
	int (*to_host)(fv_backend_ctx *ctx, void *dst, const void *src, size_t bytes);
	int host_visible;      /* 1: device memory is host memory (alloc may be skipped) */

	/* layouts: which tag a tensor of c x h x w gets (plain_needed forces
	 * FV_FMT_PLAIN), and how many bytes n of them take in it */
	int (*tensor_fmt)(fv_backend_ctx *ctx, int c, int h, int w, int plain_needed);
	size_t (*tensor_bytes)(fv_backend_ctx *ctx, int n, int c, int h, int w, int fmt);
	/* host NCHW floats <-> tensor (n <= t->n images) */
	int (*tensor_import)(fv_backend_ctx *ctx, fv_tensor *t, const float *host, int n);
	int (*tensor_export)(fv_backend_ctx *ctx, float *host, const fv_tensor *t, int n);
	/* dst += src / dst = src over whole tensors of one shape and layout */
	int (*add_into)(fv_backend_ctx *ctx, fv_tensor *dst, const fv_tensor *src);
	int (*copy)(fv_backend_ctx *ctx, fv_tensor *dst, const fv_tensor *src);

	int (*plan_new)(fv_backend_ctx *ctx, const fv_op_desc *d, fv_plan **out);
	void (*plan_destroy)(fv_plan **p);

	/* convolution: w is K x C/g x R x R plain, b is K (or NULL) */
	int (*conv_forward)(fv_tensor *y, const fv_tensor *x, const void *w, const void *b,
			    fv_plan *p);
	int (*conv_backward_data)(fv_tensor *dx, const fv_tensor *dy, const void *w, fv_plan *p);
	int (*conv_backward_filter)(void *dw, void *db, const fv_tensor *dy, const fv_tensor *x,
				    fv_plan *p);
	/* batch norm: train uses batch statistics and updates running mean/var
	 * with momentum (unbiased running variance); infer uses the running ones */
	int (*bn_forward_train)(fv_tensor *y, const fv_tensor *x, const void *gamma,
				const void *beta, void *run_mean, void *run_var, float momentum,
				fv_plan *p);
	int (*bn_forward_infer)(fv_tensor *y, const fv_tensor *x, const void *gamma,
				const void *beta, const void *run_mean, const void *run_var,
				fv_plan *p);
	int (*bn_backward)(fv_tensor *dx, void *dgamma, void *dbeta, const fv_tensor *dy,
			   const fv_tensor *x, const void *gamma, const void *beta, fv_plan *p);
	/* activation (relu, relu6, silu, sigmoid); backward may use y or x */
	int (*act_forward)(fv_tensor *y, const fv_tensor *x, fv_plan *p);
	int (*act_backward)(fv_tensor *dx, const fv_tensor *dy, const fv_tensor *x,
			    const fv_tensor *y, fv_plan *p);
	/* pooling (max, average, global average when r == h == w) */
	int (*pool_forward)(fv_tensor *y, const fv_tensor *x, fv_plan *p, int train);
	int (*pool_backward)(fv_tensor *dx, const fv_tensor *dy, fv_plan *p);
	/* linear: y[n,k] = x[n,c] w[k,c]^T + b[k], plain layouts */
	int (*linear_forward)(fv_tensor *y, const fv_tensor *x, const void *w, const void *b,
			      fv_plan *p);
	int (*linear_backward)(fv_tensor *dx, void *dw, void *db, const fv_tensor *dy,
			       const fv_tensor *x, const void *w, fv_plan *p);
	/* elementwise: y = a + b (relu(a + b) when fuse_relu); y = x * s (s is
	 * n x c x 1 x 1). add_relu_backward masks dy in place where y == 0. */
	int (*add_forward)(fv_tensor *y, const fv_tensor *a, const fv_tensor *b, fv_plan *p);
	int (*add_relu_backward)(fv_tensor *dy, const fv_tensor *y, fv_plan *p);
	int (*scale_forward)(fv_tensor *y, const fv_tensor *x, const fv_tensor *s, fv_plan *p);
	int (*scale_backward)(fv_tensor *dx, fv_tensor *ds, const fv_tensor *dy,
			      const fv_tensor *x, const fv_tensor *s, fv_plan *p);
	/* dropout: train draws a keep mask from seed (inverted scaling);
	 * not train is the identity */
	int (*dropout_forward)(fv_tensor *y, const fv_tensor *x, uint64_t seed, int train,
			       fv_plan *p);
	int (*dropout_backward)(fv_tensor *dx, const fv_tensor *dy, fv_plan *p);
	/* layout change (flatten): y in fmt_y from x in fmt_x and back */
	int (*reorder_forward)(fv_tensor *y, const fv_tensor *x, fv_plan *p);
	int (*reorder_backward)(fv_tensor *dx, const fv_tensor *dy, fv_plan *p);

	/* ---- optional (NULL where a backend has no use for them) ---- */
	/* 0 when device ("cuda:1:bf16") can run here; FV_E_UNSUPPORTED when
	 * the hardware is missing (fv_backend_find then falls back to the CPU),
	 * FV_E_CONFIG for a malformed name */
	int (*probe)(const char *device);
	/* ctx_new that also sees the device string (index, precision) */
	int (*ctx_open)(fv_backend_ctx **out, int threads, const char *device);
	/* fused SGD over the whole parameter block (nn/optim.h fv_sgd_bind):
	 * sgd_new uploads the segment table (plan_destroy frees it); sgd_step
	 * writes the gradients' sum of squares to *sumsq, then, if it is finite,
	 * applies the update of nn/optim.h with global-norm clipping and the EMA,
	 * else returns FV_E_CORRUPT with nothing changed */
	int (*sgd_new)(fv_backend_ctx *ctx, const fv_sgd_seg *segs, size_t nseg, fv_plan **out);
	int (*sgd_step)(fv_plan *p, void *params, const void *grads, void *state,
			const fv_sgd_hyper *h, double *sumsq);
	/* batch norm with a residual z added before its ReLU (fuse_add plans):
	 * y = relu(bn(x) + z), the end of a ResNet block in one pass; the
	 * backward takes the gradient of y and gives dx and dz (the gradient of
	 * the sum, masked by the ReLU). All three or none. */
	int (*bn_add_forward_train)(fv_tensor *y, const fv_tensor *x, const fv_tensor *z,
				    const void *gamma, const void *beta, void *run_mean,
				    void *run_var, float momentum, fv_plan *p);
	int (*bn_add_forward_infer)(fv_tensor *y, const fv_tensor *x, const fv_tensor *z,
				    const void *gamma, const void *beta, const void *run_mean,
				    const void *run_var, fv_plan *p);
	int (*bn_add_backward)(fv_tensor *dx, fv_tensor *dz, void *dgamma, void *dbeta,
			       const fv_tensor *dy, const fv_tensor *x, const void *gamma,
			       const void *beta, fv_plan *p);
} fv_backend;

/* The backend named by device ("cpu", "cuda", "cuda:1", "cuda:bf16",
 * "cuda:1:bf16"; NULL = "cpu"), or NULL if it is not linked into this
 * program. A CUDA backend that is linked but finds no usable GPU gives the
 * CPU backend instead, with one log line. */
const fv_backend *fv_backend_find(const char *device);

extern const fv_backend fv_backend_cpu;

#endif
