/* fv_image.h — images in memory as 8-bit HWC pixels: decode JPEG (TurboJPEG,
 * warnings are errors) and PNG (libpng) under a pixel limit checked from the
 * header before any pixel buffer is allocated (decompression bombs), cheap
 * header reads, shorter-side resize (area averaging when shrinking, never
 * upscaling), JPEG encode, PNG write, and the content hash used for dedup.
 * Shared by fovea-ingest, the augment workers and fovea-serve. */
#ifndef FV_IMAGE_H
#define FV_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define FV_IMAGE_MAX_PIXELS_DEFAULT 100000000ull /* 100 Mpixel */

enum fv_image_format { FV_IMG_UNKNOWN = 0, FV_IMG_JPEG, FV_IMG_PNG };

typedef struct fv_image {
	int width, height, channels; /* channels 1 (gray) or 3 (RGB) */
	uint8_t *pixels;             /* width*height*channels bytes, owned (free with fv_image_free) */
	size_t capacity;             /* bytes allocated at pixels (fv_image_decode_into reuses them) */
	int cmyk;                    /* decoded from a CMYK or YCCK JPEG, converted to RGB */
} fv_image;

typedef struct fv_image_info {
	enum fv_image_format format;
	int width, height, channels; /* channels the decoder would give: 1 for gray, else 3 */
} fv_image_info;

/* Format from the first bytes (magic numbers), FV_IMG_UNKNOWN if neither. */
enum fv_image_format fv_image_sniff(const void *buf, size_t len);

/* Read the header only: format, dimensions and channels. FV_E_FORMAT (not a
 * JPEG/PNG) or FV_E_DECODE (header damaged). */
int fv_image_info_get(const void *buf, size_t len, fv_image_info *info);

/* Where the JPEG in buf ends: just past its EOI marker, found by walking
 * its segments and entropy-coded data (an EXIF thumbnail's EOI inside an
 * APP segment is skipped with it); len when there is none. What follows
 * is no part of the image: a phone's motion photo appends its video. */
size_t fv_jpeg_end(const void *buf, size_t len);

/* Judge an image by its first len bytes (a file too big to read whole
 * before judging): FV_E_FORMAT when they are no JPEG or PNG, FV_E_TOOBIG
 * when the header says width*height is over max_pixels (0: the default),
 * as the decode would say; 0 when they say neither, or too little to
 * tell (a header not within them). */
int fv_image_check_head(const void *buf, size_t len, uint64_t max_pixels);

/* Decode buf fully into *out (8-bit; gray images stay 1 channel, everything
 * else becomes 3-channel RGB; PNG and CMYK/YCCK JPEGs as Pillow converts
 * them, see fv_image_decode_png_to; out->cmyk says a JPEG was CMYK). max_pixels: refuse
 * width*height above it before allocating (0 = FV_IMAGE_MAX_PIXELS_DEFAULT).
 * Returns 0, FV_E_FORMAT, FV_E_DECODE (corrupt, truncated, any decoder
 * warning), FV_E_TOOBIG or ENOMEM; the detail says why (no file name: the
 * caller adds it). out is untouched on failure. */
int fv_image_decode(const void *buf, size_t len, uint64_t max_pixels, fv_image *out);

/* The same into im, reusing its buffer when large enough: im is zeroed or
 * an image from an earlier decode (loops decode without allocating, and
 * without page faults on fresh memory, once the largest image was seen).
 * On failure im keeps its buffer, contents undefined. */
int fv_image_decode_into(const void *buf, size_t len, uint64_t max_pixels, fv_image *im);

/* Where a PNG's pixels go, asked once its header is read (8-bit, 1 or 3
 * channels): room for info->height rows of width * channels bytes, *stride
 * apart, or NULL with *rc set. */
typedef uint8_t *(*fv_png_room_fn)(void *ctx, const fv_image_info *info, size_t *stride, int *rc);
/* Decode a PNG, in one pass, into the room room() gives, as Pillow's
 * convert("RGB") gives it, or convert("L") for gray ones: 16-bit samples
 * keep their high byte, palettes become their colors, alpha and tRNS are
 * dropped (not composited), no gamma is applied. max_pixels as for
 * fv_image_decode. 0, FV_E_DECODE, FV_E_TOOBIG, ENOMEM or room's code. */
int fv_image_decode_png_to(const void *buf, size_t len, uint64_t max_pixels, fv_png_room_fn room,
			   void *ctx);

/* npix CMYK pixels as decoded from a CMYK or YCCK JPEG to RGB, as Pillow
 * converts them (so the pixels are what torchvision's loader gives): the
 * values taken as Adobe's inverted ones (Photoshop writes them so, and
 * Pillow assumes it for every CMYK JPEG), then R = (255 - C) * (255 - K) /
 * 255 in Pillow's rounding, the same for G and B. dst may be src (3 bytes
 * out per 4 in, front to back). */
void fv_image_cmyk_to_rgb(uint8_t *dst, const uint8_t *src, size_t npix);

/* Allocate an image of the given shape (pixels uninitialized). */
int fv_image_alloc(fv_image *im, int width, int height, int channels);
/* Free im's pixels and zero it. */
void fv_image_free(fv_image *im);

/* The size a shorter-side resize to `shorter` gives: the shorter side becomes
 * `shorter`, the other keeps the aspect ratio (rounded, at least 1). Never
 * upscales: if the image's shorter side is <= shorter, or shorter is 0, the
 * dimensions are unchanged. */
void fv_image_resize_dims(int width, int height, int shorter, int *out_w, int *out_h);
/* Resize in to (w, h) by area averaging (each output pixel is the mean of the
 * input area it covers), into a fresh *out. Dimensions larger than the input
 * are refused with EINVAL (no upscaling here). */
int fv_image_resize(const fv_image *in, int w, int h, fv_image *out);

/* Encode as baseline JPEG at quality 1..100 (4:2:0 for RGB). *buf is
 * malloc'd, owned by the caller (free()). */
int fv_image_encode_jpeg(const fv_image *im, int quality, uint8_t **buf, size_t *len);
/* Write a PNG file (to path.tmp, then renamed). */
int fv_image_write_png(const fv_image *im, const char *path);

/* 128-bit content hash (XXH3-128) of the shape and pixels: equal pixels and
 * shape give equal hashes whatever the file encoding was. */
void fv_image_hash(int width, int height, int channels, const uint8_t *pixels, uint8_t out[16]);

#endif
