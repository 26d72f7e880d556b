/* nn/backend.c — choosing a backend by device name at run time. */
#include <string.h>

#include "nn/backend.h"

extern const fv_backend fv_backend_cuda __attribute__((weak));

const fv_backend *fv_backend_find(const char *device)
{
	if (!device || !*device || !strcmp(device, "cpu"))
		return &fv_backend_cpu;
	if (!strncmp(device, "cuda", 4) && (device[4] == 0 || device[4] == ':'))
		return &fv_backend_cuda ? &fv_backend_cuda : NULL;
	return NULL;
}
