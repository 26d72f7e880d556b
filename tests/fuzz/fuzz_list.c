/* libFuzzer target: Caffe-style list files (ingest/list.c). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ingest.h"

static int entry(void *ctx, const char *path, const char *label, size_t line)
{
	size_t *n = ctx;
	/* both are NUL-terminated, non-empty, and the label has no blanks */
	if (!*path || !*label || strchr(label, ' ') || strchr(label, '\t') || !line)
		__builtin_trap();
	*n += strlen(path) + strlen(label);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = 0;
	ing_list_parse((const char *)data, size, "fuzz", entry, &n);
	return 0;
}
