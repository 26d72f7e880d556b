/* augment/aug_internal.h — what the transform's pieces share: the per-thread
 * scratch, the per-sample random streams, one-axis resampling plans, the
 * JPEG/PNG decoders and the photometric/output passes. Not a public API. */
#ifndef FV_AUG_INTERNAL_H
#define FV_AUG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "augment/transform.h"

/* Bounds on what we decode before allocating anything. */
#define FV_AUG_MAX_DIM 32768
#define FV_AUG_MAX_PIXELS (64u << 20)

/* A grow-only buffer: the steady state never allocates. */
typedef struct fv_aug_buf {
	void *p;
	size_t cap;
} fv_aug_buf;
int fv_aug_buf_reserve(fv_aug_buf *b, size_t bytes);

/* One axis of a separable resampling: output i reads cnt[i] source samples
 * starting at start[i] (absolute source index) with weights w[i*k ...]. */
typedef struct fv_axis {
	int n, k;
	int lo, hi;                     /* source range the taps touch: [lo, hi) */
	int *start, *cnt;
	float *w;
	/* the same taps at a fixed count kf (zero padded, start moved left
	 * near the end so no read passes hi): fstart[i], and per pair of
	 * outputs the weights expanded for 2-pixel vectors, w8[(i/2)*kf*8 ...]:
	 * {w[i] x4, w[i+1] x4} per tap */
	int kf;
	int *fstart;
	float *w8;
	/* fixed-point path (resample_fx.c): kq taps per output (kf rounded
	 * up to even, for the horizontal axis), n16 outputs (n rounded up to
	 * 16), qstart (per output its first tap's column from lo, then its
	 * real taps' first and last, then each kernel window's start),
	 * 14-bit weights qw[x * kq + t], qp, the horizontal taps laid out for
	 * the SIMD kernel, and lanes, which kernel's windows (plan_h) */
	int kq, n16, lanes;
	int *qstart;
	int16_t *qw, *qp;
	fv_aug_buf bstart, bcnt, bw, bfstart, bw8, bqstart, bqw, bqp, blast;
} fv_axis;

/* Plan the antialiased triangle (bilinear) filter mapping the source span
 * [x0, x0 + len) of an axis with in_n samples onto out_n samples, the way
 * PIL's resample does: support scales with the shrink factor, taps outside
 * the source are dropped and the rest renormalized. prefiltered: the source
 * was DCT-scaled (see resample.c). Sets kf, the largest tap count. */
int fv_axis_plan(fv_axis *a, double x0, double len, int out_n, int in_n, int prefiltered);

/* A view of decoded pixels: px is the sample at (x0, y0) of the (possibly
 * DCT-scaled) source image; rows are stride bytes apart, c channels HWC. */
typedef struct fv_aug_view {
	const uint8_t *px;
	int x0, y0, w, h, c;
	size_t stride;
} fv_aug_view;

/* Resample v through plans ax, ay into c float planes of ax->n x ay->n
 * (values 0..255), mirroring x when flip. tmp is scratch. Takes the
 * fixed-point path when fv_axis_fx_ok, else the float one. */
int fv_resample(float *planes, const fv_aug_view *v, fv_axis *ax, fv_axis *ay, int flip,
		fv_aug_buf *tmp);
int fv_axis_fx_ok(const fv_axis *ax, const fv_axis *ay, int c);
/* The widest kernels the fixed-point path runs: 2 AVX-512 (VBMI), 1 AVX2,
 * 0 plain C; all give the same bits. The CPU sets the top (FV_AUG_ISA=avx2
 * or =c lowers it); cap >= 0 sets the level to min(cap, top) (tests).
 * Returns the level. */
int fv_resample_fx_isa(int cap);

/* Where the fixed-point pass writes: channel k of output pixel i goes to
 * out[k][i] as ((x + add[k]) - sub[k]) * mul[k], float or (half) IEEE
 * half. Plain planes: add 0, sub 0, mul 1. */
typedef struct fv_emit {
	void *out[3];
	float add[3], sub[3], mul[3];
	int half;
} fv_emit;
/* The emit for 3 plain float planes of n pixels each at planes. */
static inline fv_emit fv_emit_planes(float *planes, size_t n)
{
	return (fv_emit){ { planes, planes + n, planes + 2 * n }, { 0, 0, 0 }, { 0, 0, 0 }, { 1, 1, 1 }, 0 };
}
int fv_resample_fx(const fv_emit *em, const fv_aug_view *v, fv_axis *ax, fv_axis *ay, int flip,
		   fv_aug_buf *tmp);
/* The same from rows a source hands over one at a time, in order, each
 * pointing at source column ax->lo with 16 bytes readable past ax->hi
 * (so a decoder can stream rows through a small buffer); NULL ends it with
 * the source's error. */
typedef const uint8_t *(*fv_row_fn)(void *ctx, int y);
int fv_resample_fx_rows(const fv_emit *em, fv_row_fn row, void *ctx, int c, fv_axis *ax,
			fv_axis *ay, int flip, fv_aug_buf *tmp);

/* When this sample's photometric part is a per-channel affine map (no
 * ColorJitter op; lighting and normalization only) and out's layout is a
 * float one: fill em for out and return 1; else 0. */
int fv_aug_emit_direct(const fv_aug_params *p, uint64_t seed, int c, void *out, fv_emit *em);
/* Random erasing on a finished output (what fv_aug_finish does last). */
void fv_aug_erase(void *out, const fv_aug_params *p, uint64_t seed);
/* float -> IEEE half, round to nearest even */
void fv_half_store(uint16_t *o, float f);

/* JPEG decoding with libjpeg: header first (dimensions, components), then
 * a region [x0,x1) x [y0,y1) of the image scaled by 1/denom. */
typedef struct fv_jpeg fv_jpeg;
int fv_jpeg_new(fv_jpeg **out);
void fv_jpeg_destroy(fv_jpeg **p);
/* Reads the header. *w, *h: full size; *c: 1 or 3 (what we would output;
 * gray forces 1). */
int fv_jpeg_header(fv_jpeg *j, const uint8_t *data, size_t len, int gray, int *w, int *h, int *c);
/* Size of the image at DCT scale 1/denom (denom 1, 2, 4, 8). */
void fv_jpeg_scaled_size(fv_jpeg *j, int denom, int *w, int *h);
/* Decode the region (coordinates at scale 1/denom) into buf; v describes it.
 * fast: libjpeg's fast integer IDCT (JDCT_IFAST: ~3% less decode time,
 * within a level or two of the accurate one at training qualities; for
 * augmentation, never for evaluation). Ends the decode (success or not);
 * call fv_jpeg_header again for the next. */
int fv_jpeg_region(fv_jpeg *j, int denom, int fast, int x0, int y0, int x1, int y1,
		   fv_aug_buf *buf, fv_aug_view *v);
/* The region streamed: start (the columns become [*xoff, *xoff + *cw),
 * widened to iMCU edges; fast as for fv_jpeg_region, and fast = 2 adds
 * libjpeg's merged upsampling: chroma replicated 2x2 inside the color
 * conversion instead of interpolated, ~5% less decode time, for crops the
 * resampler shrinks, where its filter spans the 2x2 blocks), then the next
 * up to n rows into rows[] (returns how many, or < 0 with fv_err set); end
 * with fv_jpeg_abort. */
/* The decode a crop of w x h (full-size pixels) at DCT scale 1/denom gets
 * under p: 0 accurate (eval), 1 the fast IDCT (train), 2 that and merged
 * upsampling (train crops the resampler shrinks). */
int fv_aug_jpeg_fast(const fv_aug_params *p, double w, double h, int denom);
int fv_jpeg_stream_start(fv_jpeg *j, int denom, int fast, int x0, int y0, int x1, int *xoff,
			 int *cw);
int fv_jpeg_stream_read(fv_jpeg *j, uint8_t **rows, int n);
/* Abandon a decode started by fv_jpeg_header. */
void fv_jpeg_abort(fv_jpeg *j);

/* Whole PNG to 8-bit gray or RGB in buf. */
int fv_png_decode(const uint8_t *data, size_t len, int gray, fv_aug_buf *buf, fv_aug_view *v);

/* Per-sample random stream (splitmix64); each stage gets its own so that
 * turning one augmentation on or off never moves another's draws. */
typedef struct fv_rng {
	uint64_t s;
} fv_rng;
enum { FV_STREAM_GEOM = 1, FV_STREAM_FLIP, FV_STREAM_JITTER, FV_STREAM_LIGHT, FV_STREAM_ERASE };
void fv_rng_seed(fv_rng *r, uint64_t seed, int stream);
uint64_t fv_rng_next(fv_rng *r);
double fv_rng_uniform(fv_rng *r, double lo, double hi); /* [lo, hi) */
int fv_rng_int(fv_rng *r, int n);                      /* [0, n) */
double fv_rng_normal(fv_rng *r);

/* 3 planes -> luma in plane 0; 1 plane -> replicated into planes 1, 2. */
void fv_color_to_gray(float *planes, size_t n);
void fv_color_replicate(float *planes, size_t n);

/* Random erasing decision (torchvision semantics): returns 1 and the
 * rectangle when this sample erases. */
int fv_erase_box(const fv_aug_params *p, uint64_t seed, int *ey, int *ex, int *eh, int *ew);

/* Everything after the resampling: train photometric ops (jitter, lighting)
 * on the out_c planes (0..255 units, modified in place), then the one write
 * of out in p's layout (normalized for float layouts), then erasing. */
void fv_aug_finish(void *out, float *planes, const fv_aug_params *p, uint64_t seed);

#endif
