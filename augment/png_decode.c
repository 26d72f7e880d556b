/* augment/png_decode.c — whole-PNG decode to 8-bit gray or RGB through
 * libpng's simplified API (it handles palettes, 16-bit and alpha, and
 * reports errors by return value, never by exiting). */
#include <string.h>

#include <png.h>

#include "augment/aug_internal.h"
#include "fv_error.h"

int fv_png_decode(const uint8_t *data, size_t len, int gray, fv_aug_buf *buf, fv_aug_view *v)
{
	png_image img;
	int rc = 0;
	memset(&img, 0, sizeof img);
	img.version = PNG_IMAGE_VERSION;
	if (!png_image_begin_read_from_memory(&img, data, len)) {
		rc = fv_err_set(FV_E_DECODE, "png: %s", img.message);
		goto out;
	}
	if (img.width == 0 || img.height == 0 || img.width > FV_AUG_MAX_DIM ||
	    img.height > FV_AUG_MAX_DIM || (uint64_t)img.width * img.height > FV_AUG_MAX_PIXELS) {
		rc = fv_err_set(FV_E_TOOBIG, "png: %ux%u is over the pixel limit", img.width, img.height);
		goto out;
	}
	/* color stays RGB even for gray output: the luma weights are ours */
	(void)gray;
	int c = img.format & PNG_FORMAT_FLAG_COLOR ? 3 : 1;
	img.format = c == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
	size_t stride = (size_t)img.width * c;
	if ((rc = fv_aug_buf_reserve(buf, stride * img.height))) {
		rc = fv_err_set(rc, "png: no memory for %ux%u", img.width, img.height);
		goto out;
	}
	if (!png_image_finish_read(&img, NULL, buf->p, (png_int_32)stride, NULL)) {
		rc = fv_err_set(FV_E_DECODE, "png: %s", img.message);
		goto out;
	}
	v->px = buf->p;
	v->x0 = v->y0 = 0;
	v->w = (int)img.width;
	v->h = (int)img.height;
	v->c = c;
	v->stride = stride;
out:
	png_image_free(&img);
	return rc;
}
