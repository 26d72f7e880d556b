/* Unit tests for lib/fv_idx: headers, bad magic, sizes that disagree with
 * the data, unsupported types, gzip, header-claimed size limits. */
#include "fv_test.h"
#include "fv_idx.h"
#include "fv_error.h"

#include <stdio.h>
#include <string.h>
#include <zlib.h>

static size_t make_idx(uint8_t *buf, uint32_t n, uint32_t h, uint32_t w)
{
	uint8_t *p = buf;
	*p++ = 0; *p++ = 0; *p++ = 8; *p++ = 3;
	uint32_t d[3] = { n, h, w };
	for (int i = 0; i < 3; i++) {
		*p++ = d[i] >> 24; *p++ = d[i] >> 16; *p++ = d[i] >> 8; *p++ = d[i];
	}
	for (uint32_t i = 0; i < n * h * w; i++)
		*p++ = (uint8_t)i;
	return (size_t)(p - buf);
}

FV_TEST(idx_parse)
{
	uint8_t buf[1024];
	fv_idx x;
	size_t len = make_idx(buf, 3, 4, 5);
	FV_CHECK_OK(fv_idx_parse(buf, len, &x));
	FV_CHECK_EQ(x.ndims, 3);
	FV_CHECK_EQ(x.count, 3);
	FV_CHECK_EQ(x.item_size, 20);
	FV_CHECK_EQ(x.data[21], 21);
	FV_CHECK_EQ(fv_idx_parse(buf, len - 1, &x), FV_E_FORMAT); /* short */
	buf[len] = 0;
	FV_CHECK_EQ(fv_idx_parse(buf, len + 1, &x), FV_E_FORMAT); /* long */
	buf[0] = 1;
	FV_CHECK_EQ(fv_idx_parse(buf, len, &x), FV_E_FORMAT); /* magic */
	buf[0] = 0;
	buf[2] = 0x0d; /* float data */
	FV_CHECK_EQ(fv_idx_parse(buf, len, &x), FV_E_UNSUPPORTED);
	buf[2] = 8;
	buf[3] = 9; /* dims */
	FV_CHECK_EQ(fv_idx_parse(buf, len, &x), FV_E_FORMAT);
	FV_CHECK_EQ(fv_idx_parse(buf, 3, &x), FV_E_FORMAT);
}

FV_TEST(idx_open_gz_and_plain)
{
	uint8_t buf[4096];
	char path[700];
	fv_idx x;
	size_t len = make_idx(buf, 10, 8, 8);
	snprintf(path, sizeof path, "%s/t-images-idx3-ubyte.gz", fv_test_tmpdir());
	gzFile g = gzopen(path, "wb");
	gzwrite(g, buf, (unsigned)len);
	gzclose(g);
	FV_CHECK_OK(fv_idx_open(path, 0, &x));
	FV_CHECK_EQ(x.count, 10);
	FV_CHECK_EQ(x.data[64 * 9 + 3], (uint8_t)(64 * 9 + 3));
	fv_idx_free(&x);
	FV_CHECK(x.owned == NULL);
	FV_CHECK_EQ(fv_idx_open(path, 100, &x), FV_E_TOOBIG); /* 640 bytes claimed */
	/* plain file, cut short */
	snprintf(path, sizeof path, "%s/plain-images-idx3-ubyte", fv_test_tmpdir());
	FILE *f = fopen(path, "wb");
	fwrite(buf, 1, len - 5, f);
	fclose(f);
	FV_CHECK_EQ(fv_idx_open(path, 0, &x), FV_E_FORMAT);
	/* header claims 2^40 bytes: refused before allocating */
	buf[4] = 0x7f;
	f = fopen(path, "wb");
	fwrite(buf, 1, len, f);
	fclose(f);
	FV_CHECK_EQ(fv_idx_open(path, 0, &x), FV_E_TOOBIG);
	snprintf(path, sizeof path, "%s/missing", fv_test_tmpdir());
	FV_CHECK(fv_idx_open(path, 0, &x) != 0);
}

FV_TEST(idx_labels_path)
{
	char out[256];
	FV_CHECK_OK(fv_idx_labels_path("/d/train-images-idx3-ubyte.gz", out, sizeof out));
	FV_CHECK(!strcmp(out, "/d/train-labels-idx1-ubyte.gz"));
	FV_CHECK_OK(fv_idx_labels_path("t10k-images-idx3-ubyte", out, sizeof out));
	FV_CHECK(!strcmp(out, "t10k-labels-idx1-ubyte"));
	FV_CHECK_EQ(fv_idx_labels_path("/images-idx3/foo", out, sizeof out), FV_E_NOTFOUND);
}
