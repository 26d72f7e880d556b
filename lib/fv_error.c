/* fv_error.c — error strings and the per-thread detail line. */
#include "fv_error.h"

#include <stdio.h>
#include <string.h>

static const char *const names[] = {
	[FV_E_CORRUPT - FV_E_FIRST]     = "stored data is corrupt",
	[FV_E_FORMAT - FV_E_FIRST]      = "input is not in the expected format",
	[FV_E_DECODE - FV_E_FIRST]      = "image does not decode",
	[FV_E_TOOBIG - FV_E_FIRST]      = "over a size limit",
	[FV_E_PROTO - FV_E_FIRST]       = "malformed message",
	[FV_E_MISMATCH - FV_E_FIRST]    = "mismatch",
	[FV_E_CONFIG - FV_E_FIRST]      = "bad configuration",
	[FV_E_LMDB - FV_E_FIRST]        = "LMDB error",
	[FV_E_ZMQ - FV_E_FIRST]         = "ZeroMQ error",
	[FV_E_NOTFOUND - FV_E_FIRST]    = "not found",
	[FV_E_DUPLICATE - FV_E_FIRST]   = "duplicate",
	[FV_E_TIMEOUT - FV_E_FIRST]     = "timed out",
	[FV_E_UNSUPPORTED - FV_E_FIRST] = "unsupported",
	[FV_E_INTERNAL - FV_E_FIRST]    = "internal error",
};

static _Thread_local char detail[1024];

const char *fv_strerror(int rc)
{
	if (rc == 0)
		return "success";
	if (rc >= FV_E_FIRST && rc < FV_E_LAST)
		return names[rc - FV_E_FIRST];
	if (rc > 0)
		return strerror(rc);
	return "unknown error";
}

int fv_err_vset(int rc, const char *fmt, va_list ap)
{
	vsnprintf(detail, sizeof detail, fmt, ap);
	return rc;
}

int fv_err_set(int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fv_err_vset(rc, fmt, ap);
	va_end(ap);
	return rc;
}

const char *fv_err_msg(int rc)
{
	return detail[0] ? detail : fv_strerror(rc);
}

void fv_err_clear(void)
{
	detail[0] = 0;
}
