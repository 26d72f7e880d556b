/* exporter/xdata.h — images for calibration and verification (data.c). */
#ifndef FV_XDATA_H
#define FV_XDATA_H

#include <stdint.h>

typedef struct fv_xdata {
	uint8_t *px;     /* n x h x w x c raw pixels after the eval geometry */
	int *labels;
	size_t n;
	int c, h, w;
} fv_xdata;

/* Load up to want images (0 = all) of split from the dataset in db through
 * the eval transform (resize_shorter, center crop to h x w, c channels).
 * seed != 0: a random subset; 0: evenly spaced. Undecodable records are
 * skipped. Returns 0, an fv_store error, ENOMEM, or FV_E_NOTFOUND when the
 * split has no usable image. */
int fv_xdata_load(const char *db, uint32_t split, long want, uint64_t seed, int c, int h, int w,
		  int resize_shorter, fv_xdata *d);
void fv_xdata_free(fv_xdata *d);

#endif
