/* Unit tests for trainer/plan: permutations, class-balanced sampling, weights. */
#include "fv_test.h"
#include "trainer/plan.h"

#include <stdlib.h>
#include <string.h>

FV_TEST(plan_shuffle_is_permutation_and_deterministic)
{
	enum { N = 10007 };
	static uint32_t a[N], b[N], c[N];
	static unsigned char seen[N];
	fv_plan_shuffle(a, N, 42, 3);
	fv_plan_shuffle(b, N, 42, 3);
	fv_plan_shuffle(c, N, 42, 4);
	FV_CHECK(!memcmp(a, b, sizeof a));
	FV_CHECK(memcmp(a, c, sizeof a) != 0);
	for (int i = 0; i < N; i++) {
		FV_CHECK(a[i] < N && !seen[a[i]]);
		seen[a[i]] = 1;
	}
	/* not the identity, and first elements spread: mean position ~ N/2 */
	double mean = 0;
	for (int i = 0; i < 1000; i++)
		mean += a[i];
	mean /= 1000;
	FV_CHECK_NEAR(mean, N / 2.0, N * 0.05);
}

FV_TEST(plan_balanced_equalizes_classes)
{
	/* long tail: class c has 2000 / (c+1)^2 samples */
	enum { K = 8 };
	uint32_t *labels = malloc(4000 * sizeof *labels);
	size_t n = 0, count[K] = { 0 };
	for (int c = 0; c < K; c++)
		for (int i = 0; i < 2000 / ((c + 1) * (c + 1)); i++)
			labels[n++] = c;
	uint32_t *order = malloc(n * sizeof *order), *scratch = malloc((n + K + 1) * sizeof *scratch);
	FV_CHECK_OK(fv_plan_balanced(order, n, labels, K, 7, 0, scratch));
	for (size_t i = 0; i < n; i++) {
		FV_CHECK(order[i] < n);
		count[labels[order[i]]]++;
	}
	/* each class ~ n/K draws; binomial sd = sqrt(n p (1-p)) ~ 17 here */
	for (int c = 0; c < K; c++)
		FV_CHECK_MSG(labels && fabs((double)count[c] - (double)n / K) < 6 * 17,
			     "class %d drawn %zu times, expected ~%zu", c, count[c], n / K);
	/* a small class is cycled without replacement: its 31 samples all appear */
	unsigned char seen[4000] = { 0 };
	for (size_t i = 0; i < n; i++)
		seen[order[i]] = 1;
	for (size_t i = 0; i < n; i++)
		if (labels[i] == K - 1)
			FV_CHECK(seen[i]);
	uint32_t bad = K;
	labels[0] = bad;
	FV_CHECK(fv_plan_balanced(order, n, labels, K, 7, 0, scratch) != 0);
	free(labels); free(order); free(scratch);
}

FV_TEST(plan_class_weights_average_to_one)
{
	uint32_t labels[] = { 0, 0, 0, 1, 2, 2 };
	float w[4];
	fv_plan_class_weights(w, labels, 6, 4);
	FV_CHECK_NEAR(w[0], 6.0 / 9, 1e-6);
	FV_CHECK_NEAR(w[1], 2.0, 1e-6);
	FV_CHECK_NEAR(w[2], 1.0, 1e-6);
	FV_CHECK_EQ(w[3], 0);
	double mean = 0;
	for (int i = 0; i < 6; i++)
		mean += w[labels[i]];
	FV_CHECK_NEAR(mean / 6, 1.0, 1e-6);
}

FV_TEST(plan_sample_seed_depends_on_each_input)
{
	uint64_t s = fv_sample_seed(1, 2, 3);
	FV_CHECK(s == fv_sample_seed(1, 2, 3));
	FV_CHECK(s != fv_sample_seed(2, 2, 3));
	FV_CHECK(s != fv_sample_seed(1, 3, 3));
	FV_CHECK(s != fv_sample_seed(1, 2, 4));
}
