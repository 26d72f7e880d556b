/* libFuzzer target: JPEG/PNG decode under the pixel limit (lib/fv_image),
 * what fovea-ingest and fovea-serve do with files from users; a file's
 * head judged alone, and where a JPEG ends (ingest stores it up to there:
 * that part must decode as the whole did). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fv_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fv_image im = { 0 };
	fv_image_info info;
	fv_image_info_get(data, size, &info);
	fv_image_check_head(data, size, 1 << 22);
	size_t end = fv_jpeg_end(data, size);
	if (end > size)
		abort();
	if (!fv_image_decode(data, size, 1 << 22, &im)) {
		uint8_t h[16];
		fv_image_hash(im.width, im.height, im.channels, im.pixels, h);
		fv_image_free(&im);
		if (end < size && fv_image_decode(data, end, 1 << 22, &im))
			abort(); /* cut at its EOI, it no longer decodes */
		fv_image_free(&im);
	}
	return 0;
}
