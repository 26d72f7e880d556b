/* tests/gpu/check.h — what the GPU check program's two files share. */
#ifndef FV_GPU_CHECK_H
#define FV_GPU_CHECK_H

#include <stddef.h>
#include "nn/backend.h"

typedef struct side {
	const fv_backend *be;
	fv_backend_ctx *ctx;
} side;

extern const char *mode;
/* Record and print one comparison: max|got - ref| / max|ref| <= tol. */
void cmp(const char *op, const char *what, const float *ref, const float *got, size_t n,
	 double tol);
/* Record and print one figure against its limit: got <= lim (NaN fails). */
void verdict(const char *op, const char *what, double got, double lim);
/* The device SGD, cross-entropy, uint8 input and a whole resnet20 step on
 * device (a "cuda..." name) against the CPU (tests/gpu/check_net.c). */
void check_net_all(side *gpu, const char *device, double tol);

#endif
