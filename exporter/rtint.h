/* exporter/rtint.h — the runtime's insides, shared by runtime.c (opening,
 * validation, threads) and rtexec.c (planning and executing the ops). */
#ifndef FV_RTINT_H
#define FV_RTINT_H

#include <stddef.h>
#include <stdint.h>
#include "exporter/runtime.h"

typedef struct fv_rt_ws {
	void *arena;        /* activation slots for `per` images */
	void *col;          /* im2col rows for one image */
	int per;
} fv_rt_ws;

struct fv_rt {
	const uint8_t *base;
	size_t len;
	int mapped;
	const fv_fovea_hdr *h;
	const fv_fovea_op *ops;
	const uint8_t *data;
	fv_rt_info info;
	const char **names;
	char model[65];
	int nvals;
	uint32_t (*vshape)[3];  /* c, h, w of every value */
	/* plan */
	int *vslot;             /* value -> activation slot */
	size_t *slot_bytes;     /* bytes per image of each slot (prefix offsets after plan) */
	int nslots;
	int *last_use;          /* value -> last op reading it */
	size_t arena_bytes;     /* per image */
	size_t col_bytes;       /* largest im2col for one image */
	uint8_t (*lut)[256];    /* INT8 standalone activations: per op */
	int threads;
	fv_rt_ws *ws;
	int nws;
};

size_t fv_rt_wbytes(const fv_fovea_op *o, int int8);
size_t fv_rt_bbytes(const fv_fovea_op *o, int int8);
/* Plan buffers (after every op is validated). */
int fv_rt_plan(fv_rt *rt);
/* Run n images (one slice) with workspace w. */
void fv_rt_slice(fv_rt *rt, fv_rt_ws *w, const void *x, int u8, int n, float *logits,
		 fv_rt_observe_fn fn, void *ctx);
/* Scale and zero point of value v (INT8 models). */
void fv_rt_vquant(const fv_rt *rt, int v, float *scale, int32_t *zp);

#endif
