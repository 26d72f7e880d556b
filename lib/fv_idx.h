/* fv_idx.h — MNIST-style IDX files (train-images-idx3-ubyte[.gz] and the
 * labels beside them): a 4-byte magic (0, 0, type, ndims), ndims big-endian
 * 32-bit sizes, then the data. Only unsigned-byte data (type 0x08) is
 * accepted; that is what image and label files hold. Gzip is read
 * transparently, and the size the header claims is bounded before anything
 * is allocated. */
#ifndef FV_IDX_H
#define FV_IDX_H

#include <stddef.h>
#include <stdint.h>

#define FV_IDX_MAX_DIMS 4

typedef struct fv_idx {
	int ndims;
	uint32_t dims[FV_IDX_MAX_DIMS];
	const uint8_t *data; /* prod(dims) bytes */
	size_t count;        /* dims[0]: items */
	size_t item_size;    /* prod(dims[1..]): bytes per item (1 for labels) */
	uint8_t *owned;      /* the buffer fv_idx_open read; NULL after fv_idx_parse */
} fv_idx;

/* Parse an IDX image in memory. out->data points into buf (valid while buf
 * is). Returns 0, FV_E_FORMAT (bad magic, sizes that disagree with len) or
 * FV_E_UNSUPPORTED (a data type other than unsigned byte). */
int fv_idx_parse(const void *buf, size_t len, fv_idx *out);

/* Read and parse the file at path (gzip or plain), refusing files whose
 * header claims more than max_bytes of data (0 = 4 GiB). Errors name the
 * path. Free with fv_idx_free. */
int fv_idx_open(const char *path, size_t max_bytes, fv_idx *out);
void fv_idx_free(fv_idx *x);

/* The labels file that belongs beside an images file: "images-idx3" in the
 * base name becomes "labels-idx1" (train-images-idx3-ubyte.gz ->
 * train-labels-idx1-ubyte.gz). Returns 0 or FV_E_NOTFOUND when the name has
 * no "images-idx3" part. */
int fv_idx_labels_path(const char *images, char *out, size_t cap);

#endif
