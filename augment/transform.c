/* augment/transform.c — fv_aug_sample: decide the geometry from the image
 * size and the seed, decode only what it needs, resample once to the output
 * size, then the photometric passes and one write of the output.
 *
 * Geometry, in order of precedence (train): pad > 0 → pad-and-random-crop
 * (zero padding, torchvision RandomCrop(padding=pad)); rrc → RandomResizedCrop
 * exactly as torchvision (10 tries, then the center-crop fallback); otherwise
 * resize the whole image. Eval: resize the shorter side to resize_shorter and
 * take the center out_w x out_h (torchvision Resize + CenterCrop), folded into
 * one resampling of the matching source box; resize_shorter = 0 resizes the
 * whole image (the identity when sizes already match). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include "augment/aug_internal.h"
#include "fv_error.h"

struct fv_aug_scratch {
	fv_jpeg *jpeg;
	fv_aug_buf pix;     /* decoded region / whole image */
	fv_aug_buf planes;  /* out_c (or 3) float planes at the output size */
	fv_aug_buf tmp;     /* one vertically filtered row */
	fv_axis ax, ay;
};

/* ---------------------------------------------------------------- rng */

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

void fv_rng_seed(fv_rng *r, uint64_t seed, int stream)
{
	r->s = mix(seed ^ mix(0xA0761D6478BD642Full * (uint64_t)stream));
}

uint64_t fv_rng_next(fv_rng *r)
{
	r->s += 0x9E3779B97F4A7C15ull;
	return mix(r->s);
}

double fv_rng_uniform(fv_rng *r, double lo, double hi)
{
	return lo + (hi - lo) * ((double)(fv_rng_next(r) >> 11) * 0x1.0p-53);
}

int fv_rng_int(fv_rng *r, int n)
{
	return n <= 1 ? 0 : (int)(((unsigned __int128)fv_rng_next(r) * (unsigned)n) >> 64);
}

double fv_rng_normal(fv_rng *r)
{
	double u = ((double)(fv_rng_next(r) >> 11) + 0.5) * 0x1.0p-53;
	double v = (double)(fv_rng_next(r) >> 11) * 0x1.0p-53;
	return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* ---------------------------------------------------------------- params */

void fv_aug_defaults(fv_aug_params *p, enum fv_aug_mode mode, int out_c, int out_h, int out_w)
{
	static const float mean[3] = { 123.675f, 116.28f, 103.53f };
	static const float std[3] = { 58.395f, 57.12f, 57.375f };
	memset(p, 0, sizeof *p);
	p->mode = mode;
	p->out_c = out_c;
	p->out_h = out_h;
	p->out_w = out_w;
	p->layout = FV_OUT_F32_NCHW;
	p->scale_min = 0.08f;
	p->scale_max = 1.f;
	p->ratio_min = 3.f / 4.f;
	p->ratio_max = 4.f / 3.f;
	p->erase_scale_min = 0.02f;
	p->erase_scale_max = 0.33f;
	p->erase_ratio_min = 0.3f;
	p->erase_ratio_max = 3.3f;
	if (mode == FV_AUG_TRAIN) {
		p->rrc = 1;
		p->flip_p = 0.5f;
	} else {
		int s = out_h < out_w ? out_h : out_w;
		p->resize_shorter = (int)lround(s * 256.0 / 224.0);
	}
	for (int i = 0; i < 3; i++) {
		p->mean[i] = out_c == 1 ? 0.299f * mean[0] + 0.587f * mean[1] + 0.114f * mean[2] : mean[i];
		p->std[i] = out_c == 1 ? 0.299f * std[0] + 0.587f * std[1] + 0.114f * std[2] : std[i];
	}
}

size_t fv_aug_out_bytes(const fv_aug_params *p)
{
	size_t n = (size_t)p->out_w * p->out_h * p->out_c;
	return p->layout == FV_OUT_F32_NCHW ? n * 4 : p->layout == FV_OUT_F16_NCHW ? n * 2 : n;
}

static int in01(float x)
{
	return x >= 0.f && x <= 1.f;
}

int fv_aug_params_check(const fv_aug_params *p)
{
	if (p->mode != FV_AUG_TRAIN && p->mode != FV_AUG_EVAL)
		return fv_err_set(FV_E_FORMAT, "transform: unknown mode %d", (int)p->mode);
	if (p->out_w <= 0 || p->out_h <= 0 || p->out_w > 8192 || p->out_h > 8192)
		return fv_err_set(FV_E_FORMAT, "transform: output size %dx%d out of range", p->out_w,
				  p->out_h);
	if (p->out_c != 1 && p->out_c != 3)
		return fv_err_set(FV_E_FORMAT, "transform: out channels %d (want 1 or 3)", p->out_c);
	if (p->layout != FV_OUT_F32_NCHW && p->layout != FV_OUT_F16_NCHW && p->layout != FV_OUT_U8_NHWC)
		return fv_err_set(FV_E_FORMAT, "transform: unknown layout %d", (int)p->layout);
	if (p->rrc && !(p->scale_min > 0 && p->scale_min <= p->scale_max && p->scale_max <= 1 &&
			p->ratio_min > 0 && p->ratio_min <= p->ratio_max))
		return fv_err_set(FV_E_FORMAT, "transform: crop scale [%g, %g] / ratio [%g, %g] invalid",
				  p->scale_min, p->scale_max, p->ratio_min, p->ratio_max);
	if (p->pad < 0 || p->pad > 4096 || p->resize_shorter < 0 || p->resize_shorter > 16384)
		return fv_err_set(FV_E_FORMAT, "transform: pad %d / resize_shorter %d out of range",
				  p->pad, p->resize_shorter);
	if (!in01(p->flip_p) || !in01(p->erase_p) || !(p->hue >= 0 && p->hue <= 0.5f))
		return fv_err_set(FV_E_FORMAT, "transform: flip_p %g, erase_p %g in [0,1], hue %g in [0,0.5]",
				  p->flip_p, p->erase_p, p->hue);
	if (!(p->brightness >= 0 && p->contrast >= 0 && p->saturation >= 0 && p->pca_lighting >= 0))
		return fv_err_set(FV_E_FORMAT, "transform: negative jitter/lighting strength");
	if (p->erase_p > 0 && !(p->erase_scale_min > 0 && p->erase_scale_min <= p->erase_scale_max &&
				p->erase_scale_max <= 1 && p->erase_ratio_min > 0 &&
				p->erase_ratio_min <= p->erase_ratio_max))
		return fv_err_set(FV_E_FORMAT, "transform: erase scale/ratio ranges invalid");
	for (int i = 0; i < p->out_c; i++)
		if (!(p->std[i] > 0) || !isfinite(p->mean[i]) || !isfinite(p->std[i]))
			return fv_err_set(FV_E_FORMAT, "transform: std[%d] = %g must be > 0", i, p->std[i]);
	return 0;
}

/* ---------------------------------------------------------------- scratch */

int fv_aug_scratch_new(fv_aug_scratch **out)
{
	fv_aug_scratch *s = calloc(1, sizeof *s);
	if (!s)
		return ENOMEM;
	int rc = fv_jpeg_new(&s->jpeg);
	if (rc) {
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

static void axis_free(fv_axis *a)
{
	fv_aug_buf *all[] = { &a->bstart, &a->bcnt, &a->bw, &a->bfstart, &a->bw8,
			      &a->bqstart, &a->bqw, &a->bqp, &a->blast };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		free(all[i]->p);
}

void fv_aug_scratch_destroy(fv_aug_scratch **p)
{
	fv_aug_scratch *s = *p;
	if (!s)
		return;
	fv_jpeg_destroy(&s->jpeg);
	free(s->pix.p);
	free(s->planes.p);
	free(s->tmp.p);
	axis_free(&s->ax);
	axis_free(&s->ay);
	free(s);
	*p = NULL;
}

/* ---------------------------------------------------------------- geometry */

/* The source box (in source pixels) the output samples, or pad mode. */
typedef struct box {
	double x0, y0, w, h;
	int pad_x, pad_y; /* pad mode: output (0,0) reads source (pad_x, pad_y) */
	int pad;
} box;

/* Python's round() (half to even) is nearbyint() in the default rounding
 * mode; torchvision's int(round(x)) is (int)nearbyint(x). */
static void rrc_box(const fv_aug_params *p, int W, int H, fv_rng *r, box *b)
{
	double area = (double)W * H;
	double lr0 = log(p->ratio_min), lr1 = log(p->ratio_max);
	for (int t = 0; t < 10; t++) {
		double ta = area * fv_rng_uniform(r, p->scale_min, p->scale_max);
		double ar = exp(fv_rng_uniform(r, lr0, lr1));
		int w = (int)nearbyint(sqrt(ta * ar));
		int h = (int)nearbyint(sqrt(ta / ar));
		if (w > 0 && w <= W && h > 0 && h <= H) {
			b->y0 = fv_rng_int(r, H - h + 1);
			b->x0 = fv_rng_int(r, W - w + 1);
			b->w = w;
			b->h = h;
			return;
		}
	}
	double in_ratio = (double)W / H;
	int w = W, h = H;
	if (in_ratio < p->ratio_min)
		h = (int)nearbyint(w / (double)p->ratio_min);
	else if (in_ratio > p->ratio_max)
		w = (int)nearbyint(h * (double)p->ratio_max);
	b->y0 = (H - h) / 2;
	b->x0 = (W - w) / 2;
	b->w = w;
	b->h = h;
}

static void eval_box(const fv_aug_params *p, int W, int H, box *b)
{
	int s = p->resize_shorter;
	int nw, nh; /* torchvision Resize(int): shorter side to s, longer truncated */
	if (W <= H) {
		nw = s;
		nh = (int)((double)s * H / W);
	} else {
		nh = s;
		nw = (int)((double)s * W / H);
	}
	double sx = (double)W / nw, sy = (double)H / nh;
	int left = (int)nearbyint((nw - p->out_w) / 2.0), top = (int)nearbyint((nh - p->out_h) / 2.0);
	b->x0 = left * sx;
	b->y0 = top * sy;
	b->w = p->out_w * sx;
	b->h = p->out_h * sy;
}

static int geometry(const fv_aug_params *p, int W, int H, uint64_t seed, box *b)
{
	fv_rng r;
	fv_rng_seed(&r, seed, FV_STREAM_GEOM);
	memset(b, 0, sizeof *b);
	b->w = W;
	b->h = H;
	if (p->mode == FV_AUG_EVAL) {
		if (p->resize_shorter > 0)
			eval_box(p, W, H, b);
	} else if (p->pad > 0) {
		int pw = W + 2 * p->pad, ph = H + 2 * p->pad;
		if (pw < p->out_w || ph < p->out_h)
			return fv_err_set(FV_E_FORMAT, "transform: %dx%d padded by %d is smaller than %dx%d",
					  W, H, p->pad, p->out_w, p->out_h);
		b->pad = 1;
		b->pad_y = fv_rng_int(&r, ph - p->out_h + 1) - p->pad;
		b->pad_x = fv_rng_int(&r, pw - p->out_w + 1) - p->pad;
	} else if (p->rrc) {
		rrc_box(p, W, H, &r, b);
	}
	return 0;
}

int fv_aug_crop_box(const fv_aug_params *p, int W, int H, uint64_t seed, double out[4])
{
	box b;
	int rc = fv_aug_params_check(p);
	if (!rc && (W <= 0 || H <= 0))
		rc = fv_err_set(FV_E_FORMAT, "transform: image size %dx%d", W, H);
	if (rc || (rc = geometry(p, W, H, seed, &b)))
		return rc;
	out[0] = b.pad ? b.pad_x : b.x0;
	out[1] = b.pad ? b.pad_y : b.y0;
	out[2] = b.pad ? p->out_w : b.w;
	out[3] = b.pad ? p->out_h : b.h;
	return 0;
}

/* Largest DCT scale 1/d (d in 8, 4, 2; 3/8..7/8 lose libjpeg-turbo's SIMD
 * paths) that still leaves the box 1.5x the output size, so our triangle
 * filter, not the IDCT's block averaging, shapes most of the blur (at 1x,
 * detailed photos drift ~5 levels from a full decode; at 1.5x, < 2). A pure
 * function of (image size, box, params), so deterministic. */
static int dct_denom(const box *b, const fv_aug_params *p)
{
	for (int d = 8; d > 1; d /= 2)
		if (b->w / d >= 1.5 * p->out_w && b->h / d >= 1.5 * p->out_h)
			return d;
	return 1;
}

/* Pad mode: copy with zero fill (no resampling). */
static void pad_copy(float *planes, const fv_aug_view *v, const box *b, int ow, int oh, int flip)
{
	size_t n = (size_t)ow * oh;
	for (int ch = 0; ch < v->c; ch++)
		for (int y = 0; y < oh; y++) {
			float *o = planes + ch * n + (size_t)y * ow;
			int sy = y + b->pad_y;
			for (int x = 0; x < ow; x++) {
				int sx = x + b->pad_x;
				float val = 0.f;
				if (sy >= 0 && sy < v->h && sx >= 0 && sx < v->w)
					val = v->px[(size_t)sy * v->stride + (size_t)sx * v->c + ch];
				o[flip ? ow - 1 - x : x] = val;
			}
		}
}

/* ---------------------------------------------------------------- sample */

static int source_size(const fv_aug_input *in, fv_aug_scratch *s, int gray, int *W, int *H, int *C)
{
	switch (in->encoding) {
	case FV_ENC_RAW:
		if (in->width <= 0 || in->height <= 0 || in->width > FV_AUG_MAX_DIM ||
		    in->height > FV_AUG_MAX_DIM || (in->channels != 1 && in->channels != 3))
			return fv_err_set(FV_E_FORMAT, "raw: %dx%dx%d is not a valid image shape",
					  in->width, in->height, in->channels);
		if (!in->data || in->len < (size_t)in->width * in->height * in->channels)
			return fv_err_set(FV_E_FORMAT, "raw: %zu bytes for %dx%dx%d", in->len, in->width,
					  in->height, in->channels);
		*W = in->width;
		*H = in->height;
		*C = in->channels;
		return 0;
	case FV_ENC_JPEG:
		if (!in->data)
			return fv_err_set(FV_E_DECODE, "jpeg: no data");
		return fv_jpeg_header(s->jpeg, in->data, in->len, gray, W, H, C);
	case FV_ENC_PNG:
		return 0; /* decoded whole, below */
	}
	return fv_err_set(FV_E_FORMAT, "transform: unknown encoding %d", (int)in->encoding);
}

static int decode(const fv_aug_input *in, fv_aug_scratch *s, int denom, int fast,
		  const fv_axis *ax, const fv_axis *ay, fv_aug_view *v)
{
	if (in->encoding == FV_ENC_JPEG)
		return fv_jpeg_region(s->jpeg, denom, fast, ax->lo, ay->lo, ax->hi, ay->hi, &s->pix, v);
	v->px = in->data;
	v->x0 = v->y0 = 0;
	v->w = in->width;
	v->h = in->height;
	v->c = in->channels;
	v->stride = (size_t)in->width * in->channels;
	return 0;
}

/* JPEG rows streamed into a buffer of STREAM_ROWS rows as the resampler
 * asks for them (in order), so the decoded region never lands in memory
 * whole: the rows are still in L1/L2 when the horizontal pass reads them.
 * 32 rows: fewer calls into libjpeg than 16 (measured), still L2-sized. */
enum { STREAM_ROWS = 32 };
typedef struct jpeg_rows {
	fv_jpeg *j;
	uint8_t *buf;
	size_t stride;
	int first, n, end; /* rows [first, first + n) are in buf; end: last + 1 */
	size_t off;        /* bytes from a row's start to column ax->lo */
} jpeg_rows;

static const uint8_t *jpeg_row(void *ctx, int y)
{
	jpeg_rows *r = ctx;
	while (y >= r->first + r->n) {
		r->first += r->n;
		r->n = 0;
		int want = r->end - r->first < STREAM_ROWS ? r->end - r->first : STREAM_ROWS;
		uint8_t *rows[STREAM_ROWS];
		for (int k = 0; k < want; k++)
			rows[k] = r->buf + (size_t)k * r->stride;
		while (r->n < want) {
			int got = fv_jpeg_stream_read(r->j, rows + r->n, want - r->n);
			if (got < 0)
				return NULL;
			r->n += got;
		}
		if (want <= 0)
			return NULL;
	}
	return y < r->first ? NULL : r->buf + (size_t)(y - r->first) * r->stride + r->off;
}

/* Decode the JPEG region the plans need and resample it as it comes. */
static int stream_resample(const fv_emit *em, fv_aug_scratch *s, int denom, int fast, int c,
			   int flip)
{
	int xoff, cw, rc;
	fv_axis *ax = &s->ax, *ay = &s->ay;
	if ((rc = fv_jpeg_stream_start(s->jpeg, denom, fast, ax->lo, ay->lo, ax->hi, &xoff, &cw)))
		return rc;
	jpeg_rows r = { s->jpeg, NULL, (size_t)cw * c, ay->lo, 0, ay->hi, (size_t)(ax->lo - xoff) * c };
	if ((rc = fv_aug_buf_reserve(&s->pix, r.stride * STREAM_ROWS + 64)))
		return fv_err_set(rc, "jpeg: no memory for %d rows of %d pixels", STREAM_ROWS, cw);
	r.buf = s->pix.p;
	memset(r.buf + r.stride * STREAM_ROWS, 0, 64); /* read past the last tap, never used */
	rc = fv_resample_fx_rows(em, jpeg_row, &r, c, ax, ay, flip, &s->tmp);
	fv_jpeg_abort(s->jpeg);
	return rc;
}

int fv_aug_jpeg_fast(const fv_aug_params *p, double w, double h, int denom)
{
	/* train crops: the fast IDCT; shrinking ones also merged upsampling */
	if (p->mode != FV_AUG_TRAIN)
		return 0;
	return w >= p->out_w * denom && h >= p->out_h * denom ? 2 : 1;
}

int fv_aug_sample(const fv_aug_params *p, const fv_aug_input *in, uint64_t seed, void *out,
		  fv_aug_scratch *s)
{
	int W = 0, H = 0, C = 0, rc;
	int gray = p->out_c == 1;
	fv_aug_view v = { 0 };
	box b;
	if (!p || !in || !out || !s)
		return fv_err_set(EINVAL, "transform: missing params, input, output or scratch");
	if ((rc = fv_aug_params_check(p)))
		goto fail;
	if ((rc = source_size(in, s, gray, &W, &H, &C)))
		goto fail;
	if (in->encoding == FV_ENC_PNG) {
		if (!in->data) {
			rc = fv_err_set(FV_E_DECODE, "png: no data");
			goto fail;
		}
		if ((rc = fv_png_decode(in->data, in->len, gray, &s->pix, &v)))
			goto fail;
		W = v.w;
		H = v.h;
		C = v.c;
	}
	if ((rc = geometry(p, W, H, seed, &b)))
		goto fail;

	size_t n = (size_t)p->out_w * p->out_h;
	if ((rc = fv_aug_buf_reserve(&s->planes, 3 * n * sizeof(float))))
		goto fail;
	float *planes = s->planes.p;
	fv_rng fr;
	fv_rng_seed(&fr, seed, FV_STREAM_FLIP);
	int flip = p->mode == FV_AUG_TRAIN && fv_rng_uniform(&fr, 0, 1) < p->flip_p;

	if (b.pad) {
		/* small images: decode whole */
		if (in->encoding == FV_ENC_JPEG &&
		    (rc = fv_jpeg_region(s->jpeg, 1, p->mode == FV_AUG_TRAIN, 0, 0, W, H, &s->pix, &v)))
			goto fail;
		if (in->encoding == FV_ENC_RAW)
			decode(in, s, 1, 0, NULL, NULL, &v);
		pad_copy(planes, &v, &b, p->out_w, p->out_h, flip);
	} else {
		int denom = in->encoding == FV_ENC_JPEG ? dct_denom(&b, p) : 1;
		int sw = W, sh = H;
		if (denom > 1)
			fv_jpeg_scaled_size(s->jpeg, denom, &sw, &sh);
		/* scaled pixel k covers source pixels [k*d, (k+1)*d) */
		double fx = 1.0 / denom, fy = 1.0 / denom;
		if ((rc = fv_axis_plan(&s->ax, b.x0 * fx, b.w * fx, p->out_w, sw, denom > 1)) ||
		    (rc = fv_axis_plan(&s->ay, b.y0 * fy, b.h * fy, p->out_h, sh, denom > 1)))
			goto fail;
		fv_emit em;
		int direct = fv_aug_emit_direct(p, seed, C, out, &em);
		if (in->encoding == FV_ENC_JPEG && fv_axis_fx_ok(&s->ax, &s->ay, C)) {
			if (!direct)
				em = fv_emit_planes(planes, n);
			int fast = fv_aug_jpeg_fast(p, b.w, b.h, denom);
			if ((rc = stream_resample(&em, s, denom, fast, C, flip)))
				goto fail;
			if (direct) {
				fv_aug_erase(out, p, seed);
				return 0;
			}
			v.c = C;
			goto finish;
		}
		if (in->encoding != FV_ENC_PNG && (rc = decode(in, s, denom, p->mode == FV_AUG_TRAIN, &s->ax, &s->ay, &v)))
			goto fail;
		/* no ColorJitter: the resampler writes the normalized output
		 * itself, with the same arithmetic fv_aug_finish would use */
		if (direct && fv_axis_fx_ok(&s->ax, &s->ay, v.c)) {
			if ((rc = fv_resample_fx(&em, &v, &s->ax, &s->ay, flip, &s->tmp)))
				goto fail;
			fv_aug_erase(out, p, seed);
			return 0;
		}
		if ((rc = fv_resample(planes, &v, &s->ax, &s->ay, flip, &s->tmp)))
			goto fail;
	}
finish:
	if (v.c == 3 && p->out_c == 1)
		fv_color_to_gray(planes, n);
	else if (v.c == 1 && p->out_c == 3)
		fv_color_replicate(planes, n);

	fv_aug_finish(out, planes, p, seed);
	return 0;
fail:
	if (in->encoding == FV_ENC_JPEG && s)
		fv_jpeg_abort(s->jpeg);
	/* zero only a shape the caller can have sized its buffer for */
	if (out && p->out_w > 0 && p->out_h > 0 && p->out_w <= 8192 && p->out_h <= 8192 &&
	    (p->out_c == 1 || p->out_c == 3) &&
	    (p->layout == FV_OUT_F32_NCHW || p->layout == FV_OUT_F16_NCHW || p->layout == FV_OUT_U8_NHWC))
		memset(out, 0, fv_aug_out_bytes(p));
	return rc;
}
