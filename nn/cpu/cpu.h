/* nn/cpu/cpu.h — shared internals of the CPU backend (oneDNN): the context,
 * the plan structure and small helpers. Not a public header. */
#ifndef FV_CPU_H
#define FV_CPU_H

#include <dnnl.h>
#include "nn/backend.h"

/* Layout tags of this backend besides FV_FMT_PLAIN (NCHW). */
enum { CPU_FMT_B8 = 1, CPU_FMT_B16 = 2 };

struct fv_backend_ctx {
	dnnl_engine_t eng;
	dnnl_stream_t strm;
	int threads;
	int block_fmt; /* CPU_FMT_B16 on AVX-512, CPU_FMT_B8 otherwise */
};

enum { MAXMEM = 12 };

struct fv_plan {
	fv_op_desc d;
	fv_backend_ctx *ctx;
	dnnl_primitive_t fwd, fwdt, bwd, bwdw;  /* forward (inference), forward training, backward (data), backward weights */
	dnnl_primitive_t wre_f, wre_b, dwre;    /* weight reorders: plain->fwd, plain->bwd, dw->plain */
	dnnl_memory_t m[MAXMEM];                /* memory objects by role (handles set at run) */
	void *wf, *wb, *dwb;                    /* reordered weights / weight gradient */
	void *ws;                               /* pooling workspace, dropout mask */
	float *mean, *var, *dss;                /* batch norm: batch stats, scratch gradients */
	size_t count;                           /* elements (padded) of the output */
	const float *last_y;                    /* bn + add: the output, for the backward's mask */
	dnnl_alg_kind_t alg;                    /* convolution algorithm */
};

/* memory roles */
enum { M_X, M_Y, M_W, M_B, M_DX, M_DY, M_DW, M_DB, M_WPLAIN, M_WB, M_AUX, M_AUX2 };

int fv_cpu_check(dnnl_status_t st, const char *what);
dnnl_format_tag_t fv_cpu_tag(int fmt, int ndims);
dnnl_memory_desc_t fv_cpu_md(int n, int c, int h, int w, int fmt);
int fv_cpu_mem(fv_plan *p, int role, const dnnl_memory_desc_t *md);
int fv_cpu_pd(dnnl_primitive_desc_t *pd, const void *op_desc, fv_backend_ctx *ctx,
	      const_dnnl_primitive_desc_t hint, const char *what);
int fv_cpu_prim(dnnl_primitive_t *prim, dnnl_primitive_desc_t pd, const char *what);
int fv_cpu_reorder(dnnl_primitive_t *prim, fv_backend_ctx *ctx, const dnnl_memory_desc_t *src,
		   const dnnl_memory_desc_t *dst);
void *fv_cpu_alloc(size_t bytes);
/* Execute prim with up to 8 (arg, role, pointer) triples. */
typedef struct { int arg, role; const void *ptr; } fv_cpu_arg;
int fv_cpu_exec(fv_plan *p, dnnl_primitive_t prim, int n, const fv_cpu_arg *a);
/* Block size of a layout tag (1 for plain) and padded channel count. */
int fv_cpu_block(int fmt);
int fv_cpu_cpad(int c, int fmt);

int fv_cpu_conv_plan(fv_plan *p);
/* Free everything a plan holds but its description (to retry another way). */
void fv_plan_reset(fv_plan *p);
int fv_cpu_bn_plan(fv_plan *p);
int fv_cpu_act_plan(fv_plan *p);
int fv_cpu_pool_plan(fv_plan *p);
int fv_cpu_reorder_plan(fv_plan *p);

#endif
