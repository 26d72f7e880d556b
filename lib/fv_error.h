/* fv_error.h — the error model every fovea library function follows.
 *
 * Functions return int: 0 on success, a positive errno value, or one of the
 * private negative FV_E* codes below. A function that fails for a reason a
 * user can act on also records one line of detail ("train.idx: bad magic
 * 0x00000802") with fv_err_set(); fv_err_msg() returns the latest detail of
 * the calling thread, so main() can print exactly one clear line. */
#ifndef FV_ERROR_H
#define FV_ERROR_H

#include <stdarg.h>

enum {
	FV_E_FIRST    = -30999,
	FV_E_CORRUPT  = -30999, /* stored data fails its checks */
	FV_E_FORMAT,            /* input is not in the expected format */
	FV_E_DECODE,            /* image does not decode cleanly */
	FV_E_TOOBIG,            /* over a size or pixel limit */
	FV_E_PROTO,             /* malformed or unexpected message */
	FV_E_MISMATCH,          /* shapes, versions or classes disagree */
	FV_E_CONFIG,            /* bad configuration value or key */
	FV_E_LMDB,              /* LMDB failed; detail says how */
	FV_E_ZMQ,               /* ZeroMQ failed; detail says how */
	FV_E_NOTFOUND,          /* named thing does not exist */
	FV_E_DUPLICATE,         /* already stored */
	FV_E_TIMEOUT,           /* a deadline passed */
	FV_E_UNSUPPORTED,       /* valid, but not something we do */
	FV_E_INTERNAL,          /* a bug: an invariant failed */
	FV_E_LAST
};

/* A static string for rc (an errno or FV_E* code). Never NULL. */
const char *fv_strerror(int rc);

/* Record the calling thread's latest error detail (printf format) and return
 * rc, so call sites read `return fv_err_set(FV_E_FORMAT, "%s: ...", path);`. */
int fv_err_set(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int fv_err_vset(int rc, const char *fmt, va_list ap);

/* The detail recorded by the last fv_err_set() on this thread, or
 * fv_strerror(rc) when none was recorded since fv_err_clear(). Valid until the
 * next fv_err_set() on this thread. */
const char *fv_err_msg(int rc);
void fv_err_clear(void);

#endif
