/* augment/png_decode.c — whole-PNG decode to 8-bit gray or RGB, as Pillow
 * converts it (fv_image_decode_png_to: 16-bit to its high byte, palettes
 * to colors, alpha dropped, no gamma), so a PNG sent to fovea serve gives
 * the pixels ingest would have stored. */
#include "augment/aug_internal.h"
#include "fv_error.h"
#include "fv_image.h"

int fv_png_decode(const uint8_t *data, size_t len, int gray, fv_aug_buf *buf, fv_aug_view *v)
{
	fv_image_info info;
	int rc = fv_image_info_get(data, len, &info);
	if (rc)
		return fv_err_set(FV_E_DECODE, "png: %s", fv_err_msg(rc));
	if (info.width > FV_AUG_MAX_DIM || info.height > FV_AUG_MAX_DIM ||
	    (uint64_t)info.width * info.height > FV_AUG_MAX_PIXELS)
		return fv_err_set(FV_E_TOOBIG, "png: %dx%d is over the pixel limit", info.width,
				  info.height);
	/* color stays RGB even for gray output: the luma weights are ours */
	(void)gray;
	size_t stride = (size_t)info.width * info.channels;
	if ((rc = fv_aug_buf_reserve(buf, stride * info.height)))
		return fv_err_set(rc, "png: no memory for %dx%d", info.width, info.height);
	if ((rc = fv_image_decode_png_to(data, len, buf->p, stride, info.width, info.height,
					 info.channels)))
		return fv_err_set(rc, "png: %s", fv_err_msg(rc));
	v->px = buf->p;
	v->x0 = v->y0 = 0;
	v->w = info.width;
	v->h = info.height;
	v->c = info.channels;
	v->stride = stride;
	return 0;
}
