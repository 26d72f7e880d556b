/* trainer/plan.c — see plan.h. */
#include "trainer/plan.h"

#include <errno.h>
#include <string.h>

uint64_t fv_mix64(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

uint64_t fv_sample_seed(uint64_t seed, uint64_t epoch, uint64_t key)
{
	return fv_mix64(fv_mix64(fv_mix64(seed) ^ epoch) ^ key);
}

typedef struct { uint64_t s; } rng;

static uint64_t next(rng *r)
{
	r->s += 0x9E3779B97F4A7C15ull;
	return fv_mix64(r->s);
}

/* Uniform in [0, bound) without modulo bias (Lemire). */
static uint32_t below(rng *r, uint32_t bound)
{
	uint64_t m = (uint64_t)(uint32_t)next(r) * bound;
	uint32_t lo = (uint32_t)m;
	if (lo < bound) {
		uint32_t t = -bound % bound;
		while (lo < t) {
			m = (uint64_t)(uint32_t)next(r) * bound;
			lo = (uint32_t)m;
		}
	}
	return m >> 32;
}

static void shuffle(uint32_t *a, size_t n, rng *r)
{
	for (size_t i = n; i > 1; i--) {
		uint32_t j = below(r, (uint32_t)i);
		uint32_t t = a[i - 1];
		a[i - 1] = a[j];
		a[j] = t;
	}
}

void fv_plan_shuffle(uint32_t *order, size_t n, uint64_t seed, uint64_t epoch)
{
	rng r = { fv_mix64(seed ^ fv_mix64(epoch + 1)) };
	for (size_t i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	shuffle(order, n, &r);
}

int fv_plan_balanced(uint32_t *order, size_t n, const uint32_t *labels, int classes,
		     uint64_t seed, uint64_t epoch, uint32_t *scratch)
{
	uint32_t *start = scratch, *byclass = scratch + classes + 1;
	uint32_t present[classes > 0 ? classes : 1];
	uint32_t cursor[classes > 0 ? classes : 1];
	int npresent = 0;
	rng r = { fv_mix64(seed ^ fv_mix64(epoch + 1) ^ 0xB4A1ull) };

	if (!n || classes <= 0)
		return EINVAL;
	memset(start, 0, (classes + 1) * sizeof *start);
	for (size_t i = 0; i < n; i++) {
		if (labels[i] >= (uint32_t)classes)
			return EINVAL;
		start[labels[i] + 1]++;
	}
	for (int c = 0; c < classes; c++)
		start[c + 1] += start[c];
	memcpy(cursor, start, classes * sizeof *cursor);
	for (size_t i = 0; i < n; i++)
		byclass[cursor[labels[i]]++] = (uint32_t)i;
	for (int c = 0; c < classes; c++) {
		if (start[c + 1] > start[c])
			present[npresent++] = (uint32_t)c;
		shuffle(byclass + start[c], start[c + 1] - start[c], &r);
		cursor[c] = start[c];
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t c = present[below(&r, (uint32_t)npresent)];
		if (cursor[c] == start[c + 1]) { /* class exhausted: a fresh pass */
			shuffle(byclass + start[c], start[c + 1] - start[c], &r);
			cursor[c] = start[c];
		}
		order[i] = byclass[cursor[c]++];
	}
	return 0;
}

void fv_plan_class_weights(float *w, const uint32_t *labels, size_t n, int classes)
{
	size_t count[classes > 0 ? classes : 1];
	int present = 0;
	memset(count, 0, sizeof count);
	for (size_t i = 0; i < n; i++)
		if (labels[i] < (uint32_t)classes)
			count[labels[i]]++;
	for (int c = 0; c < classes; c++)
		present += count[c] > 0;
	for (int c = 0; c < classes; c++)
		w[c] = count[c] ? (float)((double)n / ((double)present * count[c])) : 0.0f;
}
