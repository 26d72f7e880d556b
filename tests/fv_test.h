/* fv_test.h — the unit-test harness. A test file defines cases with
 * FV_TEST(name) { ... } and checks with FV_CHECK/FV_CHECK_EQ/FV_CHECK_NEAR.
 * fv_test.c's main runs every case (or those whose names contain argv[1]),
 * prints "ok NAME" or "FAIL NAME: file:line: what" per case, and exits
 * non-zero if any failed. tests/run.sh adds the counts up.
 *
 * Seeds are fixed: a case that needs randomness uses fv_test_rand(). */
#ifndef FV_TEST_H
#define FV_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include "fv_error.h"

typedef void (*fv_test_fn)(void);
void fv_test_register(const char *name, fv_test_fn fn);
void fv_test_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Deterministic per-case PRNG (xorshift), reseeded before each case. */
uint64_t fv_test_rand(void);
double fv_test_uniform(void); /* [0, 1) */
/* A fresh empty directory for this case, removed after it passes. */
const char *fv_test_tmpdir(void);
/* The whole of path in malloc'd memory (one spare byte), its size in *n;
 * NULL (and *n 0) if it cannot be read. */
uint8_t *fv_test_slurp(const char *path, size_t *n);
/* Path of the repository's shared data folder (../shared/data), or NULL. */
const char *fv_test_shared_data(void);

#define FV_TEST(name)                                                   \
	static void fv_test_##name(void);                                 \
	__attribute__((constructor)) static void fv_test_reg_##name(void) \
	{ fv_test_register(#name, fv_test_##name); }                      \
	static void fv_test_##name(void)

#define FV_CHECK(cond) do { if (!(cond)) \
	fv_test_fail(__FILE__, __LINE__, "%s", #cond); } while (0)
#define FV_CHECK_MSG(cond, ...) do { if (!(cond)) \
	fv_test_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define FV_CHECK_EQ(a, b) do { long long fv_a_ = (long long)(a), fv_b_ = (long long)(b); \
	if (fv_a_ != fv_b_) fv_test_fail(__FILE__, __LINE__, "%s == %s (%lld vs %lld)", \
					 #a, #b, fv_a_, fv_b_); } while (0)
#define FV_CHECK_NEAR(a, b, tol) do { double fv_a_ = (a), fv_b_ = (b); \
	if (!(fabs(fv_a_ - fv_b_) <= (tol))) fv_test_fail(__FILE__, __LINE__, \
		"%s ~= %s (%g vs %g, tol %g)", #a, #b, fv_a_, fv_b_, (double)(tol)); } while (0)
/* Check rc == 0 and print the error detail otherwise. */
#define FV_CHECK_OK(expr) do { int fv_rc_ = (expr); if (fv_rc_) \
	fv_test_fail(__FILE__, __LINE__, "%s -> %d (%s)", #expr, fv_rc_, fv_err_msg(fv_rc_)); } while (0)

#endif
