/* libFuzzer target: JPEG/PNG decode under the pixel limit (lib/fv_image),
 * what fovea-ingest and fovea-serve do with files from users. */
#include <stddef.h>
#include <stdint.h>

#include "fv_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fv_image im = { 0 };
	fv_image_info info;
	fv_image_info_get(data, size, &info);
	if (!fv_image_decode(data, size, 1 << 22, &im)) {
		uint8_t h[16];
		fv_image_hash(im.width, im.height, im.channels, im.pixels, h);
		fv_image_free(&im);
	}
	return 0;
}
