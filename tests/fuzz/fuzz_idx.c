/* libFuzzer target: IDX headers and sizes (lib/fv_idx). */
#include <stddef.h>
#include <stdint.h>

#include "fv_idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fv_idx x;
	if (!fv_idx_parse(data, size, &x)) {
		volatile uint8_t sink = 0;
		size_t n = x.count * x.item_size;
		if (n)
			sink ^= x.data[n - 1]; /* the claimed extent must be readable */
		(void)sink;
	}
	return 0;
}
