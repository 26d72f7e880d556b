/* augment/png_decode.c — whole-PNG decode to 8-bit gray or RGB, as Pillow
 * converts it (fv_image_decode_png_to: 16-bit to its high byte, palettes
 * to colors, alpha dropped, no gamma), so a PNG sent to fovea serve gives
 * the pixels ingest would have stored. */
#include "augment/aug_internal.h"
#include "fv_error.h"
#include "fv_image.h"

typedef struct png_dst {
	fv_aug_buf *buf;
	fv_aug_view *v;
} png_dst;

/* fv_image_decode_png_to's room: the scratch buffer, the view set. */
static uint8_t *room(void *ctx, const fv_image_info *info, size_t *stride, int *rc)
{
	png_dst *d = ctx;
	if (info->width > FV_AUG_MAX_DIM || info->height > FV_AUG_MAX_DIM) {
		*rc = fv_err_set(FV_E_TOOBIG, "%dx%d is over the pixel limit", info->width,
				 info->height);
		return NULL;
	}
	*stride = (size_t)info->width * info->channels;
	if ((*rc = fv_aug_buf_reserve(d->buf, *stride * info->height))) {
		*rc = fv_err_set(*rc, "no memory for %dx%d", info->width, info->height);
		return NULL;
	}
	*d->v = (fv_aug_view){ .px = d->buf->p, .w = info->width, .h = info->height,
			       .c = info->channels, .stride = *stride };
	return d->buf->p;
}

int fv_png_decode(const uint8_t *data, size_t len, int gray, fv_aug_buf *buf, fv_aug_view *v)
{
	png_dst d = { buf, v };
	/* color stays RGB even for gray output: the luma weights are ours */
	(void)gray;
	int rc = fv_image_decode_png_to(data, len, FV_AUG_MAX_PIXELS, room, &d);
	return rc ? fv_err_set(rc, "png: %s", fv_err_msg(rc)) : 0;
}
