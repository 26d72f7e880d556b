/* fv_image.c — decode, resize, encode and hash 8-bit HWC images (see
 * fv_image.h). The pixel limit is always checked from the header, before
 * the pixel buffer exists. */
#include "fv_image.h"

#include <errno.h>
#include <png.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
/* XXH3 inlined, so it is built for ARCH (AVX2 by default): ~3x the speed of
 * libxxhash's SSE2 build, and the same digests (XXH3's output does not
 * depend on the vector unit; tests/unit/test_image.c checks against the
 * library). */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "fv_error.h"

enum fv_image_format fv_image_sniff(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	static const uint8_t png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
		return FV_IMG_JPEG;
	if (len >= 8 && !memcmp(p, png_sig, 8))
		return FV_IMG_PNG;
	return FV_IMG_UNKNOWN;
}

/* One TurboJPEG decompressor per thread, kept for the thread's life: a new
 * one per image would allocate (and page-fault in) libjpeg's buffers every
 * time, which costs as much as a fifth of the decode. */
static pthread_key_t tj_key;
static pthread_once_t tj_once = PTHREAD_ONCE_INIT;

static void tj_free(void *h)
{
	tjDestroy(h);
}

static void tj_key_make(void)
{
	pthread_key_create(&tj_key, tj_free);
}

static tjhandle tj_thread(void)
{
	pthread_once(&tj_once, tj_key_make);
	tjhandle h = pthread_getspecific(tj_key);
	if (!h && (h = tjInitDecompress()) && pthread_setspecific(tj_key, h)) {
		tjDestroy(h);
		h = NULL;
	}
	return h;
}

static int jpeg_header(tjhandle tj, const void *buf, size_t len, fv_image_info *info, int *colorspace)
{
	int w = 0, h = 0, ss = 0, cs = 0;
	/* TurboJPEG can return 0 without any frame header (a warning only):
	 * no dimensions means no image */
	if (len > (unsigned long)-1 ||
	    tjDecompressHeader3(tj, buf, (unsigned long)len, &w, &h, &ss, &cs) || w <= 0 || h <= 0)
		return fv_err_set(FV_E_DECODE, "bad JPEG header: %s", tjGetErrorStr2(tj));
	info->format = FV_IMG_JPEG;
	info->width = w;
	info->height = h;
	info->channels = cs == TJCS_GRAY ? 1 : 3;
	if (colorspace)
		*colorspace = cs;
	return 0;
}

static int png_header(png_image *pi, const void *buf, size_t len, fv_image_info *info)
{
	memset(pi, 0, sizeof *pi);
	pi->version = PNG_IMAGE_VERSION;
	if (!png_image_begin_read_from_memory(pi, buf, len))
		return fv_err_set(FV_E_DECODE, "bad PNG header: %s", pi->message);
	info->format = FV_IMG_PNG;
	info->width = (int)pi->width;
	info->height = (int)pi->height;
	info->channels = pi->format & PNG_FORMAT_FLAG_COLOR ? 3 : 1;
	if (pi->width > 0x7fffffff || pi->height > 0x7fffffff) {
		png_image_free(pi);
		return fv_err_set(FV_E_TOOBIG, "PNG is %ux%u", pi->width, pi->height);
	}
	return 0;
}

int fv_image_info_get(const void *buf, size_t len, fv_image_info *info)
{
	int rc;
	switch (fv_image_sniff(buf, len)) {
	case FV_IMG_JPEG: {
		tjhandle tj = tj_thread();
		return tj ? jpeg_header(tj, buf, len, info, NULL) : ENOMEM;
	}
	case FV_IMG_PNG: {
		png_image pi;
		if (!(rc = png_header(&pi, buf, len, info)))
			png_image_free(&pi);
		return rc;
	}
	default:
		return fv_err_set(FV_E_FORMAT, len ? "not a JPEG or PNG image" : "empty file");
	}
}

static int check_pixels(const fv_image_info *info, uint64_t max_pixels)
{
	uint64_t px = (uint64_t)info->width * (uint64_t)info->height;
	if (!max_pixels)
		max_pixels = FV_IMAGE_MAX_PIXELS_DEFAULT;
	if (info->width <= 0 || info->height <= 0)
		return fv_err_set(FV_E_DECODE, "image has no pixels (%dx%d)", info->width, info->height);
	if (px > max_pixels)
		return fv_err_set(FV_E_TOOBIG, "%dx%d is %llu pixels, over the limit of %llu",
				  info->width, info->height, (unsigned long long)px,
				  (unsigned long long)max_pixels);
	return 0;
}

size_t fv_jpeg_end(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t i = 2; /* past SOI */
	if (fv_image_sniff(buf, len) != FV_IMG_JPEG)
		return len;
	while (i + 1 < len) {
		uint8_t m = p[i + 1];
		if (p[i] != 0xff)
			return len; /* not at a marker: keep it all */
		if (m == 0xff) { /* a fill byte before a marker */
			i++;
			continue;
		}
		if (m == 0xd9)
			return i + 2; /* EOI */
		if (m == 0x01 || (m >= 0xd0 && m <= 0xd7)) { /* TEM, RSTn: no length */
			i += 2;
			continue;
		}
		if (i + 3 >= len)
			return len;
		size_t seg = (size_t)p[i + 2] << 8 | p[i + 3];
		if (seg < 2)
			return len;
		i += 2 + seg;
		/* SOS: its entropy-coded data runs to the next marker, a 0xff
		 * that is no stuffing (0xff00), restart (RSTn) or fill byte
		 * (memchr: the bytes between are not looked at one by one) */
		while (m == 0xda && i + 1 < len) {
			const uint8_t *ff = memchr(p + i, 0xff, len - i - 1);
			if (!ff)
				return len;
			i = (size_t)(ff - p);
			uint8_t n = p[i + 1];
			if (n != 0 && n != 0xff && (n < 0xd0 || n > 0xd7))
				break;
			i++;
		}
	}
	return len;
}

int fv_image_check_head(const void *buf, size_t len, uint64_t max_pixels)
{
	fv_image_info info;
	int rc;
	if (fv_image_sniff(buf, len) == FV_IMG_UNKNOWN)
		return fv_image_info_get(buf, len, &info); /* (its "not a JPEG or PNG image") */
	if (fv_image_info_get(buf, len, &info))
		return 0; /* the header runs past these bytes, or is damaged: the decode says */
	rc = check_pixels(&info, max_pixels);
	return rc == FV_E_TOOBIG ? rc : 0;
}

int fv_image_alloc(fv_image *im, int width, int height, int channels)
{
	size_t n = (size_t)width * (size_t)height * (size_t)channels;
	im->pixels = malloc(n ? n : 1);
	if (!im->pixels)
		return ENOMEM;
	im->capacity = n ? n : 1;
	im->width = width;
	im->height = height;
	im->channels = channels;
	return 0;
}

void fv_image_free(fv_image *im)
{
	free(im->pixels);
	memset(im, 0, sizeof *im);
}

/* Shape im for info, growing its buffer only when too small. */
static int shape(fv_image *im, const fv_image_info *info)
{
	size_t n = (size_t)info->width * info->height * info->channels;
	if (n > im->capacity) {
		free(im->pixels);
		im->capacity = 0;
		if (!(im->pixels = malloc(n)))
			return ENOMEM;
		im->capacity = n;
	}
	im->width = info->width;
	im->height = info->height;
	im->channels = info->channels;
	return 0;
}

void fv_image_cmyk_to_rgb(uint8_t *dst, const uint8_t *src, size_t npix)
{
	for (size_t i = 0; i < npix; i++) {
		const uint8_t *in = src + 4 * i;
		uint8_t *out = dst + 3 * i;
		int nk = in[3], c = 255 - in[0], m = 255 - in[1], y = 255 - in[2], t;
#define MULDIV255(a, b) (t = (a) * (b) + 128, ((t >> 8) + t) >> 8)
		out[0] = (uint8_t)(nk - MULDIV255(c, nk));
		out[1] = (uint8_t)(nk - MULDIV255(m, nk));
		out[2] = (uint8_t)(nk - MULDIV255(y, nk));
#undef MULDIV255
	}
}

static int decode_jpeg(const void *buf, size_t len, uint64_t max_pixels, fv_image *im)
{
	fv_image_info info;
	tjhandle tj = tj_thread();
	int rc, cs = 0;
	if (!tj)
		return ENOMEM;
	if ((rc = jpeg_header(tj, buf, len, &info, &cs)) || (rc = check_pixels(&info, max_pixels)))
		goto out;
	/* a CMYK (or YCCK) JPEG decodes to CMYK in the same buffer, then
	 * becomes RGB in place */
	int cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
	if (cmyk)
		info.channels = 4;
	if ((rc = shape(im, &info)))
		goto out;
	/* STOPONWARNING: a truncated or damaged file is a reject, not a gray
	 * smear; LIMITSCANS: refuse progressive files built to burn CPU. */
	if (tjDecompress2(tj, buf, (unsigned long)len, im->pixels, im->width, 0, im->height,
			  cmyk ? TJPF_CMYK : im->channels == 1 ? TJPF_GRAY : TJPF_RGB,
			  TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS))
		rc = fv_err_set(FV_E_DECODE, "JPEG does not decode cleanly: %s", tjGetErrorStr2(tj));
	else if (cmyk)
		fv_image_cmyk_to_rgb(im->pixels, im->pixels, (size_t)im->width * im->height);
	im->channels = cmyk ? 3 : im->channels;
	im->cmyk = cmyk;
out:
	return rc;
}

/* libpng's classic API reading from memory; errors longjmp back with the
 * message kept, warnings (an odd iCCP profile and the like) are ignored. */
typedef struct png_mem {
	const uint8_t *p;
	size_t len, off;
	char msg[256];
} png_mem;

static void png_mem_read(png_structp png, png_bytep out, size_t n)
{
	png_mem *m = png_get_io_ptr(png);
	if (n > m->len - m->off)
		png_error(png, "file ends early");
	memcpy(out, m->p + m->off, n);
	m->off += n;
}

static void png_on_error(png_structp png, png_const_charp msg)
{
	png_mem *m = png_get_error_ptr(png);
	snprintf(m->msg, sizeof m->msg, "%s", msg);
	png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

int fv_image_decode_png_to(const void *buf, size_t len, uint64_t max_pixels, fv_png_room_fn room,
			   void *ctx)
{
	png_mem m = { buf, len, 0, "" };
	png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &m, png_on_error,
						 png_on_warning);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	png_bytep *volatile rows = NULL; /* set after the setjmp, freed after a longjmp */
	int rc = 0;
	if (!info) {
		png_destroy_read_struct(&png, NULL, NULL);
		return ENOMEM;
	}
	if (setjmp(png_jmpbuf(png))) {
		rc = fv_err_set(FV_E_DECODE, "PNG does not decode cleanly: %s", m.msg);
		goto out;
	}
	png_set_read_fn(png, &m, png_mem_read);
	png_read_info(png, info);
	int ct = png_get_color_type(png, info);
	/* Pillow's convert("RGB") / ("L"): 16-bit samples keep their high
	 * byte, palettes become their colors, low bit depths widen, alpha
	 * (and tRNS) is dropped, not composited, and no gamma is applied */
	png_set_strip_16(png);
	png_set_packing(png);
	if (ct == PNG_COLOR_TYPE_PALETTE)
		png_set_palette_to_rgb(png);
	if (ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_GRAY_ALPHA)
		png_set_expand_gray_1_2_4_to_8(png);
	png_set_strip_alpha(png);
	png_set_interlace_handling(png);
	png_read_update_info(png, info);
	fv_image_info fi = { FV_IMG_PNG, (int)png_get_image_width(png, info),
			     (int)png_get_image_height(png, info), png_get_channels(png, info) };
	size_t stride = 0;
	uint8_t *dst = NULL;
	if ((rc = check_pixels(&fi, max_pixels)) || !(dst = room(ctx, &fi, &stride, &rc)))
		goto out;
	if (!(rows = malloc((size_t)fi.height * sizeof *rows))) {
		rc = ENOMEM;
		goto out;
	}
	for (int y = 0; y < fi.height; y++)
		rows[y] = dst + (size_t)y * stride;
	png_read_image(png, rows);
	png_read_end(png, NULL);
out:
	free(rows);
	png_destroy_read_struct(&png, &info, NULL);
	return rc;
}

/* fv_image_decode_png_to's room: im, shaped for the header. */
static uint8_t *png_room_image(void *ctx, const fv_image_info *info, size_t *stride, int *rc)
{
	fv_image *im = ctx;
	if ((*rc = shape(im, info)))
		return NULL;
	im->cmyk = 0;
	*stride = (size_t)info->width * info->channels;
	return im->pixels;
}

static int decode_png(const void *buf, size_t len, uint64_t max_pixels, fv_image *im)
{
	return fv_image_decode_png_to(buf, len, max_pixels, png_room_image, im);
}

int fv_image_decode_into(const void *buf, size_t len, uint64_t max_pixels, fv_image *im)
{
	switch (fv_image_sniff(buf, len)) {
	case FV_IMG_JPEG:
		return decode_jpeg(buf, len, max_pixels, im);
	case FV_IMG_PNG:
		return decode_png(buf, len, max_pixels, im);
	default:
		return fv_err_set(FV_E_FORMAT, len ? "not a JPEG or PNG image" : "empty file");
	}
}

int fv_image_decode(const void *buf, size_t len, uint64_t max_pixels, fv_image *out)
{
	fv_image im = { 0 };
	int rc = fv_image_decode_into(buf, len, max_pixels, &im);
	if (rc)
		fv_image_free(&im);
	else
		*out = im;
	return rc;
}

/* ---------------------------------------------------------------- resize */

void fv_image_resize_dims(int width, int height, int shorter, int *out_w, int *out_h)
{
	int s = width < height ? width : height;
	*out_w = width;
	*out_h = height;
	if (shorter <= 0 || s <= shorter)
		return;
	if (width <= height) {
		*out_w = shorter;
		*out_h = (int)(((int64_t)height * shorter * 2 + width) / (2 * (int64_t)width));
	} else {
		*out_h = shorter;
		*out_w = (int)(((int64_t)width * shorter * 2 + height) / (2 * (int64_t)height));
	}
	if (*out_w < 1)
		*out_w = 1;
	if (*out_h < 1)
		*out_h = 1;
}

/* Per output index along one axis: the first input index it covers, how
 * many, and their weights (overlap / scale, summing to 1). */
typedef struct axis {
	int *first, *count;
	float *w;    /* count weights per output, at stride `span` */
	int span;
} axis;

static int axis_make(axis *a, int in, int out)
{
	double scale = (double)in / out;
	a->span = (int)scale + 2;
	a->first = malloc(out * sizeof *a->first);
	a->count = malloc(out * sizeof *a->count);
	a->w = malloc((size_t)out * a->span * sizeof *a->w);
	if (!a->first || !a->count || !a->w)
		return ENOMEM;
	for (int o = 0; o < out; o++) {
		double lo = o * scale, hi = (o + 1) * scale;
		int j0 = (int)lo, n = 0;
		for (int j = j0; j < in && j < hi && n < a->span; j++, n++) {
			double l = j > lo ? j : lo, h = j + 1 < hi ? j + 1 : hi;
			a->w[(size_t)o * a->span + n] = (float)((h - l) / scale);
		}
		a->first[o] = j0;
		a->count[o] = n;
	}
	return 0;
}

static void axis_free(axis *a)
{
	free(a->first);
	free(a->count);
	free(a->w);
}

int fv_image_resize(const fv_image *in, int w, int h, fv_image *out)
{
	axis ax = { 0 }, ay = { 0 };
	float *tmp = NULL;
	fv_image im = { 0 };
	int c = in->channels, rc;
	if (w < 1 || h < 1 || w > in->width || h > in->height)
		return fv_err_set(EINVAL, "resize %dx%d -> %dx%d: only shrinking", in->width,
				  in->height, w, h);
	if ((rc = axis_make(&ax, in->width, w)) || (rc = axis_make(&ay, in->height, h)) ||
	    (rc = fv_image_alloc(&im, w, h, c)))
		goto out;
	if (!(tmp = malloc((size_t)in->height * w * c * sizeof *tmp))) {
		rc = ENOMEM;
		goto out;
	}
	for (int y = 0; y < in->height; y++) { /* horizontal pass */
		const uint8_t *src = in->pixels + (size_t)y * in->width * c;
		float *dst = tmp + (size_t)y * w * c;
		for (int x = 0; x < w; x++) {
			const float *wt = ax.w + (size_t)x * ax.span;
			for (int k = 0; k < c; k++) {
				float acc = 0;
				for (int j = 0; j < ax.count[x]; j++)
					acc += wt[j] * src[(size_t)(ax.first[x] + j) * c + k];
				dst[x * c + k] = acc;
			}
		}
	}
	for (int y = 0; y < h; y++) { /* vertical pass */
		const float *wt = ay.w + (size_t)y * ay.span;
		uint8_t *dst = im.pixels + (size_t)y * w * c;
		for (int i = 0; i < w * c; i++) {
			float acc = 0;
			for (int j = 0; j < ay.count[y]; j++)
				acc += wt[j] * tmp[(size_t)(ay.first[y] + j) * w * c + i];
			int v = (int)(acc + 0.5f);
			dst[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
		}
	}
	*out = im;
	im.pixels = NULL;
out:
	fv_image_free(&im);
	free(tmp);
	axis_free(&ax);
	axis_free(&ay);
	return rc;
}

/* ---------------------------------------------------------------- encode */

int fv_image_encode_jpeg(const fv_image *im, int quality, uint8_t **buf, size_t *len)
{
	int ss = im->channels == 1 ? TJSAMP_GRAY : TJSAMP_420;
	unsigned long cap = tjBufSize(im->width, im->height, ss), size = cap;
	uint8_t *b;
	int rc = 0;
	if (im->channels != 1 && im->channels != 3)
		return fv_err_set(EINVAL, "JPEG needs 1 or 3 channels, not %d", im->channels);
	if (quality < 1 || quality > 100)
		return fv_err_set(EINVAL, "JPEG quality %d not in 1..100", quality);
	if (cap == (unsigned long)-1 || !(b = malloc(cap)))
		return ENOMEM;
	tjhandle tj = tjInitCompress();
	if (!tj) {
		free(b);
		return ENOMEM;
	}
	if (tjCompress2(tj, im->pixels, im->width, 0, im->height,
			im->channels == 1 ? TJPF_GRAY : TJPF_RGB, &b, &size, ss, quality,
			TJFLAG_NOREALLOC)) {
		rc = fv_err_set(FV_E_DECODE, "JPEG encode: %s", tjGetErrorStr2(tj));
		free(b);
	} else {
		*buf = b;
		*len = size;
	}
	tjDestroy(tj);
	return rc;
}

int fv_image_write_png(const fv_image *im, const char *path)
{
	char tmp[4200];
	png_image pi;
	memset(&pi, 0, sizeof pi);
	pi.version = PNG_IMAGE_VERSION;
	pi.width = (png_uint_32)im->width;
	pi.height = (png_uint_32)im->height;
	if (im->channels != 1 && im->channels != 3)
		return fv_err_set(EINVAL, "%s: PNG needs 1 or 3 channels, not %d", path, im->channels);
	pi.format = im->channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if (!png_image_write_to_file(&pi, tmp, 0, im->pixels, 0, NULL)) {
		int rc = fv_err_set(EIO, "%s: %s", path, pi.message);
		png_image_free(&pi);
		remove(tmp);
		return rc;
	}
	if (rename(tmp, path)) {
		int e = errno;
		remove(tmp);
		return fv_err_set(e, "%s: %s", path, strerror(e));
	}
	return 0;
}

void fv_image_hash(int width, int height, int channels, const uint8_t *pixels, uint8_t out[16])
{
	/* the shape goes in as the seed, so 28x28 and 14x56 of the same bytes differ */
	uint64_t seed = (uint64_t)(uint32_t)width << 36 ^ (uint64_t)(uint32_t)height << 8 ^
			(uint64_t)(uint32_t)channels;
	size_t n = (size_t)width * height * channels;
	XXH128_hash_t h = XXH3_128bits_withSeed(pixels, n, seed);
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, h);
	memcpy(out, c.digest, 16);
}
