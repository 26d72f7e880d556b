/* fv_idx.c — IDX reader (see fv_idx.h). */
#include "fv_idx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fv_error.h"

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Validate the header in buf[0..hlen) and return the payload size it claims. */
static int header(const uint8_t *p, size_t len, fv_idx *out, size_t *hlen, uint64_t *payload)
{
	if (len < 4 || p[0] || p[1])
		return fv_err_set(FV_E_FORMAT, "not an IDX file (bad magic)");
	if (p[2] != 0x08)
		return fv_err_set(FV_E_UNSUPPORTED, "IDX data type 0x%02x: only unsigned bytes (0x08)",
				  p[2]);
	int nd = p[3];
	if (nd < 1 || nd > FV_IDX_MAX_DIMS)
		return fv_err_set(FV_E_FORMAT, "IDX with %d dimensions", nd);
	*hlen = 4 + 4 * (size_t)nd;
	if (len < *hlen)
		return fv_err_set(FV_E_FORMAT, "IDX header cut short");
	uint64_t n = 1, item = 1;
	memset(out, 0, sizeof *out);
	out->ndims = nd;
	for (int i = 0; i < nd; i++) {
		out->dims[i] = rd32(p + 4 + 4 * i);
		n *= out->dims[i];
		if (i)
			item *= out->dims[i];
		if (n > ((uint64_t)1 << 48))
			return fv_err_set(FV_E_TOOBIG, "IDX sizes overflow");
	}
	out->count = out->dims[0];
	out->item_size = (size_t)item;
	*payload = n;
	return 0;
}

int fv_idx_parse(const void *buf, size_t len, fv_idx *out)
{
	size_t hlen;
	uint64_t n;
	int rc = header(buf, len, out, &hlen, &n);
	if (rc)
		return rc;
	if (n != len - hlen)
		return fv_err_set(FV_E_FORMAT, "IDX header says %llu data bytes, file has %zu",
				  (unsigned long long)n, len - hlen);
	out->data = (const uint8_t *)buf + hlen;
	return 0;
}

static int read_full(gzFile g, uint8_t *p, size_t n, size_t *got)
{
	*got = 0;
	while (*got < n) {
		unsigned chunk = n - *got > (1u << 30) ? 1u << 30 : (unsigned)(n - *got);
		int r = gzread(g, p + *got, chunk);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		*got += (size_t)r;
	}
	return 0;
}

int fv_idx_open(const char *path, size_t max_bytes, fv_idx *out)
{
	uint8_t head[4 + 4 * FV_IDX_MAX_DIMS], *buf = NULL, extra;
	size_t hlen, got;
	uint64_t n;
	int rc;
	gzFile g = gzopen(path, "rb");

	memset(out, 0, sizeof *out);
	if (!g) {
		int e = errno ? errno : ENOMEM;
		return fv_err_set(e, "%s: %s", path, strerror(e));
	}
	gzbuffer(g, 1 << 18);
	if (read_full(g, head, 4, &got) || got < 4) {
		rc = fv_err_set(FV_E_FORMAT, "%s: not an IDX file (too short)", path);
		goto out;
	}
	size_t need = 4 + 4 * (size_t)(head[3] <= FV_IDX_MAX_DIMS ? head[3] : 0);
	if (read_full(g, head + 4, need - 4, &got) || got < need - 4) {
		rc = fv_err_set(FV_E_FORMAT, "%s: IDX header cut short", path);
		goto out;
	}
	if ((rc = header(head, need, out, &hlen, &n))) {
		rc = fv_err_set(rc, "%s: %s", path, fv_err_msg(rc));
		goto out;
	}
	if (n > (max_bytes ? max_bytes : (size_t)4 << 30)) {
		rc = fv_err_set(FV_E_TOOBIG, "%s: IDX header claims %llu bytes", path,
				(unsigned long long)n);
		goto out;
	}
	if (!(buf = malloc(hlen + n + 1))) {
		rc = ENOMEM;
		goto out;
	}
	memcpy(buf, head, hlen);
	if (read_full(g, buf + hlen, n, &got)) {
		int ze;
		rc = fv_err_set(FV_E_FORMAT, "%s: %s", path, gzerror(g, &ze));
		goto out;
	}
	size_t more = 0;
	if (got == n)
		read_full(g, &extra, 1, &more);
	if (got < n || more) {
		rc = fv_err_set(FV_E_FORMAT, "%s: IDX header says %llu data bytes, file has %s", path,
				(unsigned long long)n, more ? "more" : "fewer");
		goto out;
	}
	rc = fv_idx_parse(buf, hlen + n, out);
	out->owned = buf;
	buf = NULL;
out:
	free(buf);
	gzclose(g);
	return rc;
}

void fv_idx_free(fv_idx *x)
{
	free(x->owned);
	memset(x, 0, sizeof *x);
}

int fv_idx_labels_path(const char *images, char *out, size_t cap)
{
	const char *base = strrchr(images, '/');
	base = base ? base + 1 : images;
	const char *at = strstr(base, "images-idx3");
	if (!at || strlen(images) >= cap)
		return fv_err_set(FV_E_NOTFOUND, "%s: no labels file name follows from this name",
				  images);
	strcpy(out, images);
	memcpy(out + (at - images), "labels-idx1", 11);
	return 0;
}
