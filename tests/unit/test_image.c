/* Unit tests for lib/fv_image: JPEG/PNG round trips, truncated and
 * not-an-image inputs, pixel limits refused from the header (or from a
 * file's head alone), resize sizes
 * (never upscale) and area averaging, content hashes, CMYK JPEGs to RGB. */
#include "fv_test.h"
#include "fv_image.h"
#include "fv_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <turbojpeg.h>
#include <xxhash.h> /* the library build, the reference for fv_image_hash */

static fv_image gradient(int w, int h, int c)
{
	fv_image im;
	fv_image_alloc(&im, w, h, c);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int k = 0; k < c; k++)
				im.pixels[(y * w + x) * c + k] = (uint8_t)(x * 2 + y + k * 20);
	return im;
}

static double mean_abs_diff(const fv_image *a, const fv_image *b)
{
	double s = 0;
	size_t n = (size_t)a->width * a->height * a->channels;
	for (size_t i = 0; i < n; i++)
		s += abs(a->pixels[i] - b->pixels[i]);
	return s / n;
}

FV_TEST(image_jpeg_roundtrip)
{
	for (int c = 1; c <= 3; c += 2) {
		fv_image im = gradient(64, 48, c), out = { 0 };
		uint8_t *buf;
		size_t len;
		fv_image_info info;
		FV_CHECK_OK(fv_image_encode_jpeg(&im, 95, &buf, &len));
		FV_CHECK_EQ(fv_image_sniff(buf, len), FV_IMG_JPEG);
		FV_CHECK_OK(fv_image_info_get(buf, len, &info));
		FV_CHECK(info.width == 64 && info.height == 48 && info.channels == c);
		FV_CHECK_OK(fv_image_decode(buf, len, 0, &out));
		FV_CHECK(out.width == 64 && out.height == 48 && out.channels == c);
		FV_CHECK(mean_abs_diff(&im, &out) < 4.0);
		/* truncated: every cut past the header is refused, never half-decoded */
		for (size_t cut = len / 4; cut < len - 2; cut += len / 7) {
			fv_image t = { 0 };
			int rc = fv_image_decode(buf, cut, 0, &t);
			FV_CHECK_MSG(rc == FV_E_DECODE, "cut at %zu/%zu -> %d", cut, len, rc);
			FV_CHECK(t.pixels == NULL);
		}
		free(buf);
		fv_image_free(&im);
		fv_image_free(&out);
	}
}

/* A YCCK JPEG (TurboJPEG writes CMYK input so, with an Adobe marker)
 * decodes to RGB: channels 3, cmyk set, each value within 1 of C * K /
 * 255 of the CMYK that TurboJPEG itself decodes (Adobe's inverted values:
 * R = (1 - c)(1 - k) with c = 1 - C/255, k = 1 - K/255). Pillow's exact
 * rounding is checked against Pillow in ingest_cmyk.sh. */
FV_TEST(image_cmyk_jpeg_to_rgb)
{
	const int w = 40, h = 24;
	uint8_t cmyk[40 * 24 * 4], back[40 * 24 * 4];
	for (int i = 0; i < w * h; i++) {
		cmyk[4 * i] = (uint8_t)(i * 7);
		cmyk[4 * i + 1] = (uint8_t)(255 - i % 200);
		cmyk[4 * i + 2] = (uint8_t)(i % w * 6);
		cmyk[4 * i + 3] = (uint8_t)(128 + i / w * 5);
	}
	tjhandle c = tjInitCompress(), d = tjInitDecompress();
	unsigned char *jpg = NULL;
	unsigned long len = 0;
	FV_CHECK_OK(tjCompress2(c, cmyk, w, 0, h, TJPF_CMYK, &jpg, &len, TJSAMP_444, 95, 0));
	int jw, jh, ss, cs;
	FV_CHECK_OK(tjDecompressHeader3(d, jpg, len, &jw, &jh, &ss, &cs));
	FV_CHECK_EQ(cs, TJCS_YCCK);
	FV_CHECK_OK(tjDecompress2(d, jpg, len, back, w, 0, h, TJPF_CMYK, 0));
	fv_image im = { 0 };
	FV_CHECK_OK(fv_image_decode(jpg, len, 0, &im));
	FV_CHECK(im.width == w && im.height == h && im.channels == 3 && im.cmyk);
	int worst = 0;
	for (int i = 0; i < w * h; i++)
		for (int k = 0; k < 3; k++) {
			int want = (back[4 * i + k] * back[4 * i + 3] + 127) / 255;
			int dv = abs(im.pixels[3 * i + k] - want);
			worst = dv > worst ? dv : worst;
		}
	FV_CHECK(worst <= 1);
	fv_image_info info;
	FV_CHECK_OK(fv_image_info_get(jpg, len, &info));
	FV_CHECK_EQ(info.channels, 3);
	/* an RGB JPEG decoded into the same image afterwards is not marked */
	fv_image g = gradient(16, 8, 3);
	uint8_t *rgb = NULL;
	size_t rlen = 0;
	FV_CHECK_OK(fv_image_encode_jpeg(&g, 90, &rgb, &rlen));
	FV_CHECK_OK(fv_image_decode_into(rgb, rlen, 0, &im));
	FV_CHECK(im.channels == 3 && !im.cmyk);
	free(rgb);
	fv_image_free(&g);
	fv_image_free(&im);
	tjFree(jpg);
	tjDestroy(c);
	tjDestroy(d);
}

FV_TEST(image_png_roundtrip)
{
	char path[600];
	fv_image im = gradient(33, 17, 3), out = { 0 };
	snprintf(path, sizeof path, "%s/a.png", fv_test_tmpdir());
	FV_CHECK_OK(fv_image_write_png(&im, path));
	FILE *f = fopen(path, "rb");
	static uint8_t buf[65536];
	size_t len = fread(buf, 1, sizeof buf, f);
	fclose(f);
	FV_CHECK_OK(fv_image_decode(buf, len, 0, &out));
	FV_CHECK(out.width == 33 && out.height == 17 && out.channels == 3);
	FV_CHECK(!memcmp(out.pixels, im.pixels, 33 * 17 * 3));
	fv_image t = { 0 };
	FV_CHECK_EQ(fv_image_decode(buf, len - 20, 0, &t), FV_E_DECODE);
	fv_image_free(&im);
	fv_image_free(&out);
}

FV_TEST(image_not_an_image)
{
	fv_image t = { 0 };
	FV_CHECK_EQ(fv_image_decode("hello world\n", 12, 0, &t), FV_E_FORMAT);
	FV_CHECK_EQ(fv_image_decode("", 0, 0, &t), FV_E_FORMAT);
	const uint8_t soi[] = { 0xff, 0xd8, 0xff, 0xe0, 0, 4 };
	FV_CHECK_EQ(fv_image_decode(soi, sizeof soi, 0, &t), FV_E_DECODE);
	FV_CHECK(t.pixels == NULL);
}

/* Patch the SOF of a small JPEG to claim 65000x65000 (4.2 Gpixel): refused
 * from the header. Were it allocated first, a 12 GB malloc would fail with
 * ENOMEM (or succeed and the decode fail with FV_E_DECODE), not TOOBIG. */
FV_TEST(image_pixel_limit_from_header)
{
	fv_image im = gradient(64, 48, 3), t = { 0 };
	uint8_t *buf;
	size_t len;
	FV_CHECK_OK(fv_image_encode_jpeg(&im, 90, &buf, &len));
	FV_CHECK_EQ(fv_image_decode(buf, len, 64 * 48 - 1, &t), FV_E_TOOBIG);
	FV_CHECK_OK(fv_image_decode(buf, len, 64 * 48, &t));
	fv_image_free(&t);
	size_t i;
	for (i = 2; i + 9 < len; i++)
		if (buf[i] == 0xff && buf[i + 1] == 0xc0)
			break;
	FV_CHECK(i + 9 < len);
	buf[i + 5] = buf[i + 7] = 65000 >> 8;
	buf[i + 6] = buf[i + 8] = 65000 & 0xff;
	fv_image_info info;
	FV_CHECK_OK(fv_image_info_get(buf, len, &info));
	FV_CHECK_EQ(info.width, 65000);
	FV_CHECK_EQ(fv_image_decode(buf, len, 0, &t), FV_E_TOOBIG);
	FV_CHECK(t.pixels == NULL);
	free(buf);
	fv_image_free(&im);
}

/* A file's head judged alone: no image, or over the pixel limit, says so;
 * an image within the limit, or a head too short to hold the header, is
 * left to the full decode. */
FV_TEST(image_check_head)
{
	fv_image im = gradient(64, 48, 3);
	uint8_t *buf;
	size_t len, sof, sos;
	FV_CHECK_OK(fv_image_encode_jpeg(&im, 90, &buf, &len));
	FV_CHECK_EQ(fv_image_check_head("hello world\n", 12, 0), FV_E_FORMAT);
	FV_CHECK_OK(fv_image_check_head(buf, len, 0));
	FV_CHECK_EQ(fv_image_check_head(buf, len, 64 * 48 - 1), FV_E_TOOBIG);
	FV_CHECK_OK(fv_image_check_head(buf, len, 64 * 48));
	for (sof = 2; sof + 9 < len; sof++)
		if (buf[sof] == 0xff && buf[sof + 1] == 0xc0)
			break;
	for (sos = sof; sos + 16 < len; sos++)
		if (buf[sos] == 0xff && buf[sos + 1] == 0xda)
			break;
	FV_CHECK(sos + 16 < len);
	FV_CHECK_OK(fv_image_check_head(buf, sof, 64 * 48 - 1)); /* the header is not in it */
	/* the header (libjpeg reads up to the scan's) with a little of the scan */
	FV_CHECK_EQ(fv_image_check_head(buf, sos + 16, 64 * 48 - 1), FV_E_TOOBIG);
	free(buf);
	fv_image_free(&im);
}

/* im as a JPEG from libjpeg itself: progressive, a restart marker after
 * every MCU (RSTn inside the entropy-coded data). */
static unsigned char *jpeg_rst_progressive(const fv_image *im, unsigned long *len)
{
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr err;
	unsigned char *out = NULL;
	c.err = jpeg_std_error(&err);
	jpeg_create_compress(&c);
	jpeg_mem_dest(&c, &out, len);
	c.image_width = (JDIMENSION)im->width;
	c.image_height = (JDIMENSION)im->height;
	c.input_components = im->channels;
	c.in_color_space = JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_simple_progression(&c);
	c.restart_interval = 1;
	jpeg_start_compress(&c, TRUE);
	while (c.next_scanline < c.image_height) {
		JSAMPROW row = im->pixels + (size_t)c.next_scanline * im->width * im->channels;
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	return out;
}

/* fv_jpeg_end finds the EOI past segments and entropy-coded data: what
 * follows (junk with EOI bytes of its own) is cut, an EXIF-like thumbnail
 * with its own EOI inside an APP1 segment is not taken for the end, and
 * RSTn markers of a progressive JPEG do not stop the walk. */
FV_TEST(jpeg_end)
{
	fv_image im = gradient(64, 48, 3), t = { 0 };
	uint8_t *buf, *big;
	size_t len;
	unsigned long plen;
	static const uint8_t junk[] = { 0xff, 0xd9, 0, 0, 0xff, 0xd8, 0xff, 0xd9, 'm', 'p', '4' };
	static const uint8_t app1[] = { 0xff, 0xe1, 0, 10, 'E', 'x', 0xff, 0xd8, 0xff, 0xd9, 0, 0 };
	FV_CHECK_OK(fv_image_encode_jpeg(&im, 90, &buf, &len));
	FV_CHECK_EQ(fv_jpeg_end(buf, len), len);
	big = malloc(len + sizeof app1 + sizeof junk);
	memcpy(big, buf, len);
	memcpy(big + len, junk, sizeof junk);
	FV_CHECK_EQ(fv_jpeg_end(big, len + sizeof junk), len);
	/* the APP1 segment after SOI: its EOI bytes are inside its length */
	memcpy(big, buf, 2);
	memcpy(big + 2, app1, sizeof app1);
	memcpy(big + 2 + sizeof app1, buf + 2, len - 2);
	memcpy(big + len + sizeof app1, junk, sizeof junk);
	size_t end = fv_jpeg_end(big, len + sizeof app1 + sizeof junk);
	FV_CHECK_EQ(end, len + sizeof app1);
	FV_CHECK_OK(fv_image_decode(big, end, 0, &t));
	fv_image_free(&t);
	FV_CHECK_EQ(fv_jpeg_end(buf, len - 1), len - 1); /* no EOI: all of it */
	FV_CHECK_EQ(fv_jpeg_end("hello world\n", 12), 12);
	free(big);
	free(buf);
	unsigned char *p = jpeg_rst_progressive(&im, &plen);
	FV_CHECK(p && plen > 100);
	big = malloc(plen + sizeof junk);
	memcpy(big, p, plen);
	memcpy(big + plen, junk, sizeof junk);
	FV_CHECK_EQ(fv_jpeg_end(big, plen + sizeof junk), plen);
	FV_CHECK_OK(fv_image_decode(big, fv_jpeg_end(big, plen + sizeof junk), 0, &t));
	fv_image_free(&t);
	free(big);
	free(p);
	fv_image_free(&im);
}

FV_TEST(image_resize)
{
	int w, h;
	fv_image_resize_dims(500, 375, 256, &w, &h);
	FV_CHECK(w == 341 && h == 256);
	fv_image_resize_dims(375, 500, 256, &w, &h);
	FV_CHECK(w == 256 && h == 341);
	fv_image_resize_dims(100, 80, 256, &w, &h); /* never upscale */
	FV_CHECK(w == 100 && h == 80);
	fv_image_resize_dims(100, 80, 0, &w, &h);
	FV_CHECK(w == 100 && h == 80);
	/* 4x4 -> 2x2 averages each 2x2 block exactly */
	fv_image in, out = { 0 };
	fv_image_alloc(&in, 4, 4, 1);
	for (int i = 0; i < 16; i++)
		in.pixels[i] = (uint8_t)(i * 10);
	FV_CHECK_OK(fv_image_resize(&in, 2, 2, &out));
	FV_CHECK_EQ(out.pixels[0], (0 + 10 + 40 + 50) / 4);
	FV_CHECK_EQ(out.pixels[3], (100 + 110 + 140 + 150) / 4);
	fv_image_free(&out);
	/* 3 -> 2 on a flat image stays flat (weights sum to 1) */
	memset(in.pixels, 77, 16);
	FV_CHECK_OK(fv_image_resize(&in, 3, 2, &out));
	for (int i = 0; i < 6; i++)
		FV_CHECK_EQ(out.pixels[i], 77);
	fv_image_free(&out);
	FV_CHECK(fv_image_resize(&in, 5, 4, &out) != 0); /* upscale refused */
	fv_image_free(&in);
}

FV_TEST(image_hash)
{
	uint8_t px[64] = { 1, 2, 3 }, a[16], b[16], c[16];
	fv_image_hash(8, 8, 1, px, a);
	fv_image_hash(8, 8, 1, px, b);
	FV_CHECK(!memcmp(a, b, 16));
	fv_image_hash(4, 16, 1, px, c); /* same bytes, other shape */
	FV_CHECK(memcmp(a, c, 16));
	px[63] ^= 1;
	fv_image_hash(8, 8, 1, px, c);
	FV_CHECK(memcmp(a, c, 16));
}

/* The stored content hash is XXH3-128 of the pixels seeded with the shape,
 * in canonical byte order: existing datasets dedupe against new ingests
 * only while that stays so, whichever XXH3 build (inlined AVX2, the
 * library's SSE2) computes it. Sizes cover XXH3's short, mid, long-stripe
 * and multi-block paths. */
FV_TEST(image_hash_is_xxh3_of_library)
{
	static const int shapes[][3] = { { 1, 1, 1 },  { 3, 5, 1 },     { 4, 10, 3 }, { 9, 9, 3 },
					 { 40, 30, 1 }, { 64, 64, 3 }, { 500, 375, 3 }, { 333, 217, 3 } };
	size_t n = 500 * 375 * 3;
	uint8_t *px = malloc(n), got[16];
	FV_CHECK(px != NULL);
	if (!px)
		return;
	for (size_t i = 0; i < n; i++)
		px[i] = (uint8_t)(fv_test_rand() >> 24);
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
		int w = shapes[s][0], h = shapes[s][1], c = shapes[s][2];
		uint64_t seed = (uint64_t)(uint32_t)w << 36 ^ (uint64_t)(uint32_t)h << 8 ^ (uint64_t)c;
		XXH128_canonical_t want;
		XXH128_canonicalFromHash(&want, XXH3_128bits_withSeed(px, (size_t)w * h * c, seed));
		fv_image_hash(w, h, c, px, got);
		FV_CHECK(!memcmp(got, want.digest, 16));
	}
	/* and a fixed digest, so a change of seed or byte order shows too */
	for (size_t i = 0; i < n; i++)
		px[i] = (uint8_t)(i * 7 + (i >> 9));
	fv_image_hash(500, 375, 3, px, got);
	char hex[33];
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", got[i]);
	FV_CHECK(!strcmp(hex, "bd56bb10377ca103912030f473f7c2e3"));
	free(px);
}
