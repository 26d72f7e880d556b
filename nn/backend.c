/* nn/backend.c — choosing a backend by device name at run time. The CUDA
 * backend is a weak reference: linked only in CUDA=1 builds (nn/cuda). */
#include <string.h>

#include "fv_error.h"
#include "fv_log.h"
#include "nn/backend.h"

extern const fv_backend fv_backend_cuda __attribute__((weak));

const fv_backend *fv_backend_find(const char *device)
{
	static int warned;
	if (!device || !*device || !strcmp(device, "cpu"))
		return &fv_backend_cpu;
	if (strncmp(device, "cuda", 4) || (device[4] != 0 && device[4] != ':'))
		return NULL;
	if (!&fv_backend_cuda)
		return NULL;
	int rc = fv_backend_cuda.probe ? fv_backend_cuda.probe(device) : 0;
	if (rc == FV_E_UNSUPPORTED) {
		if (!warned++)
			fv_warn("device %s: %s; using the CPU backend", device, fv_err_msg(rc));
		return &fv_backend_cpu;
	}
	return rc ? NULL : &fv_backend_cuda;
}
