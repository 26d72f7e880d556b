/* augment/jpeg_region.c — decode only the part of a JPEG a crop needs, with
 * libjpeg-turbo's libjpeg API: DCT scaling (1/2, 1/4, 1/8 keep the SIMD
 * paths), jpeg_crop_scanline for the columns, jpeg_skip_scanlines for the rows
 * above, and jpeg_abort_decompress after the last row below. Errors and
 * corrupt-data warnings longjmp back here; nothing exits. The decompressor
 * lives as long as the scratch, so the steady state does not allocate. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include <jpeglib.h>

#include "augment/aug_internal.h"
#include "fv_error.h"
#include "fv_image.h"

struct fv_jpeg {
	struct jpeg_decompress_struct ci;
	struct jpeg_error_mgr jerr;
	jmp_buf jb;
	char msg[JMSG_LENGTH_MAX];
	int active; /* a header has been read and the decode not yet ended */
	int cmyk;   /* a CMYK or YCCK JPEG: rows come as CMYK into cmyk_rows, leave as RGB */
	uint8_t *cmyk_rows;
	size_t cmyk_cap;
};

static void on_error(j_common_ptr c)
{
	fv_jpeg *j = (fv_jpeg *)c->client_data;
	(*c->err->format_message)(c, j->msg);
	longjmp(j->jb, 1);
}

/* Corrupt-data warnings (level -1) are errors for us: a damaged training
 * image should be reported, not silently padded with grey. */
static void on_message(j_common_ptr c, int level)
{
	if (level < 0)
		on_error(c);
}

int fv_jpeg_new(fv_jpeg **out)
{
	fv_jpeg *j = calloc(1, sizeof *j);
	if (!j)
		return ENOMEM;
	j->ci.err = jpeg_std_error(&j->jerr);
	j->jerr.error_exit = on_error;
	j->jerr.emit_message = on_message;
	j->ci.client_data = j;
	if (setjmp(j->jb)) {
		free(j);
		return fv_err_set(ENOMEM, "jpeg: cannot create decompressor");
	}
	jpeg_create_decompress(&j->ci);
	*out = j;
	return 0;
}

void fv_jpeg_destroy(fv_jpeg **p)
{
	if (!*p)
		return;
	jpeg_destroy_decompress(&(*p)->ci);
	free((*p)->cmyk_rows);
	free(*p);
	*p = NULL;
}

void fv_jpeg_abort(fv_jpeg *j)
{
	if (j->active)
		jpeg_abort_decompress(&j->ci);
	j->active = 0;
}

int fv_jpeg_header(fv_jpeg *j, const uint8_t *data, size_t len, int gray, int *w, int *h, int *c)
{
	struct jpeg_decompress_struct *ci = &j->ci;
	fv_jpeg_abort(j);
	if (len < 4 || data[0] != 0xFF || data[1] != 0xD8)
		return fv_err_set(FV_E_DECODE, "jpeg: not a JPEG (%zu bytes, no SOI marker)", len);
	if (len > 0xFFFFFFFFu)
		return fv_err_set(FV_E_TOOBIG, "jpeg: %zu bytes", len);
	if (setjmp(j->jb)) {
		jpeg_abort_decompress(ci);
		j->active = 0;
		return fv_err_set(FV_E_DECODE, "jpeg: %s", j->msg);
	}
	j->active = 1;
	jpeg_mem_src(ci, data, (unsigned long)len);
	if (jpeg_read_header(ci, TRUE) != JPEG_HEADER_OK) {
		fv_jpeg_abort(j);
		return fv_err_set(FV_E_DECODE, "jpeg: no image in stream");
	}
	if (ci->image_width > FV_AUG_MAX_DIM || ci->image_height > FV_AUG_MAX_DIM ||
	    (uint64_t)ci->image_width * ci->image_height > FV_AUG_MAX_PIXELS) {
		fv_jpeg_abort(j);
		return fv_err_set(FV_E_TOOBIG, "jpeg: %ux%u is over the pixel limit",
				  ci->image_width, ci->image_height);
	}
	j->cmyk = 0;
	if (ci->num_components == 1) {
		ci->out_color_space = JCS_GRAYSCALE;
	} else if (ci->num_components == 3 &&
		   (ci->jpeg_color_space == JCS_YCbCr || ci->jpeg_color_space == JCS_RGB)) {
		/* gray output from YCbCr is the Y plane: skip the chroma work */
		ci->out_color_space = gray && ci->jpeg_color_space == JCS_YCbCr ? JCS_GRAYSCALE
										  : JCS_RGB;
	} else if (ci->num_components == 4 &&
		   (ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK)) {
		ci->out_color_space = JCS_CMYK; /* to RGB row by row, as fv_image does */
		j->cmyk = 1;
	} else {
		fv_jpeg_abort(j);
		return fv_err_set(FV_E_FORMAT, "jpeg: color space %d with %d components is not supported",
				  (int)ci->jpeg_color_space, ci->num_components);
	}
	*w = (int)ci->image_width;
	*h = (int)ci->image_height;
	*c = ci->out_color_space == JCS_GRAYSCALE ? 1 : 3;
	return 0;
}

void fv_jpeg_scaled_size(fv_jpeg *j, int denom, int *w, int *h)
{
	/* jpeg_calc_output_dimensions's rounding: ceil(size / denom) */
	*w = (int)((j->ci.image_width + denom - 1) / denom);
	*h = (int)((j->ci.image_height + denom - 1) / denom);
}

int fv_jpeg_stream_start(fv_jpeg *j, int denom, int fast, int x0, int y0, int x1, int *xoff,
			 int *cw)
{
	struct jpeg_decompress_struct *ci = &j->ci;
	if (setjmp(j->jb)) {
		jpeg_abort_decompress(ci);
		j->active = 0;
		return fv_err_set(FV_E_DECODE, "jpeg: %s", j->msg);
	}
	ci->scale_num = 1;
	ci->scale_denom = (unsigned)denom;
	ci->dct_method = fast ? JDCT_IFAST : JDCT_ISLOW;
	/* fast > 1: chroma upsampled by replication merged into the color
	 * conversion, for crops that shrink (see fv_jpeg_stream_start) */
	ci->do_fancy_upsampling = fast > 1 ? FALSE : TRUE;
	jpeg_start_decompress(ci);
	JDIMENSION xo = (JDIMENSION)x0, w = (JDIMENSION)(x1 - x0);
	if (x0 > 0 || x1 < (int)ci->output_width)
		jpeg_crop_scanline(ci, &xo, &w);
	if (y0 > 0 && jpeg_skip_scanlines(ci, (JDIMENSION)y0) != (JDIMENSION)y0) {
		fv_jpeg_abort(j);
		return fv_err_set(FV_E_DECODE, "jpeg: image ends before row %d", y0);
	}
	*xoff = (int)xo;
	*cw = (int)w;
	return 0;
}

int fv_jpeg_stream_read(fv_jpeg *j, uint8_t **rows, int n)
{
	struct jpeg_decompress_struct *ci = &j->ci;
	int left = (int)ci->output_height - (int)ci->output_scanline;
	const int want = n < left ? n : left;
	if (setjmp(j->jb)) {
		jpeg_abort_decompress(ci);
		j->active = 0;
		return fv_err_set(FV_E_DECODE, "jpeg: %s", j->msg);
	}
	uint8_t *cm[16], **dst = rows;
	size_t row = (size_t)ci->output_width * 4;
	int ask = want;
	if (j->cmyk && want > 0) { /* CMYK rows here first, then RGB into the caller's */
		ask = want < 16 ? want : 16;
		if (row * ask > j->cmyk_cap) {
			uint8_t *g = realloc(j->cmyk_rows, row * ask);
			if (!g) {
				fv_jpeg_abort(j);
				return fv_err_set(ENOMEM, "jpeg: no memory for CMYK rows");
			}
			j->cmyk_rows = g;
			j->cmyk_cap = row * ask;
		}
		for (int r = 0; r < ask; r++)
			cm[r] = j->cmyk_rows + row * r;
		dst = cm;
	}
	/* may return fewer than asked (a row group at a time) */
	JDIMENSION got = ask > 0 ? jpeg_read_scanlines(ci, (JSAMPARRAY)dst, (JDIMENSION)ask) : 0;
	if (!got) {
		fv_jpeg_abort(j);
		return fv_err_set(FV_E_DECODE, "jpeg: no data at row %u", ci->output_scanline);
	}
	for (JDIMENSION r = 0; j->cmyk && r < got; r++)
		fv_image_cmyk_to_rgb(rows[r], cm[r], ci->output_width);
	return (int)got;
}

int fv_jpeg_region(fv_jpeg *j, int denom, int fast, int x0, int y0, int x1, int y1,
		   fv_aug_buf *buf, fv_aug_view *v)
{
	int xoff, cw, rc;
	if ((rc = fv_jpeg_stream_start(j, denom, fast, x0, y0, x1, &xoff, &cw)))
		return rc;
	int nc = j->cmyk ? 3 : j->ci.output_components;
	size_t stride = (size_t)cw * nc;
	if ((rc = fv_aug_buf_reserve(buf, stride * (size_t)(y1 - y0)))) {
		fv_jpeg_abort(j);
		return fv_err_set(rc, "jpeg: no memory for a %dx%d region", cw, y1 - y0);
	}
	uint8_t *base = buf->p;
	for (int y = y0; y < y1;) {
		uint8_t *rows[16];
		int nr = y1 - y < 16 ? y1 - y : 16;
		for (int r = 0; r < nr; r++)
			rows[r] = base + (size_t)(y - y0 + r) * stride;
		int got = fv_jpeg_stream_read(j, rows, nr);
		if (got < 0)
			return FV_E_DECODE; /* ended, with the reason set */
		y += got;
	}
	fv_jpeg_abort(j);
	v->px = base;
	v->x0 = xoff;
	v->y0 = y0;
	v->w = cw;
	v->h = y1 - y0;
	v->c = nc;
	v->stride = stride;
	return 0;
}
