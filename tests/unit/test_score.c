/* Unit tests for lib/fv_score against counts made here by hand. */
#include "fv_test.h"
#include "fv_score.h"

FV_TEST(score_counts_match_independent_count)
{
	enum { N = 500, K = 7 };
	static float logits[N * K];
	int labels[N], pred[N], top1 = 0, top5 = 0;
	double loss = 0;
	fv_score s;
	FV_CHECK_OK(fv_score_init(&s, K));
	for (int i = 0; i < N; i++) {
		labels[i] = fv_test_rand() % K;
		for (int j = 0; j < K; j++)
			logits[i * K + j] = (float)(fv_test_uniform() * 4 - 2) + (j == labels[i] ? 1.0f : 0);
	}
	for (int i = 0; i < N; i += 64)
		fv_score_add(&s, logits + i * K, labels + i, N - i < 64 ? N - i : 64, pred + i);
	for (int i = 0; i < N; i++) {
		const float *z = logits + i * K;
		int higher = 0, best = 0;
		double se = 0;
		for (int j = 0; j < K; j++) {
			higher += z[j] > z[labels[i]];
			if (z[j] > z[best])
				best = j;
			se += exp(z[j]);
		}
		top1 += best == labels[i];
		top5 += higher < 5;
		loss += -log(exp(z[labels[i]]) / se);
		FV_CHECK_EQ(pred[i], best);
	}
	FV_CHECK_NEAR(fv_score_top1(&s), (double)top1 / N, 1e-12);
	FV_CHECK_NEAR(fv_score_top5(&s), (double)top5 / N, 1e-12);
	FV_CHECK_NEAR(fv_score_loss(&s), loss / N, 1e-9);
	FV_CHECK(fv_score_top5(&s) >= fv_score_top1(&s));
	double acc_sum = 0;
	uint64_t total = 0;
	for (int c = 0; c < K; c++) {
		for (int j = 0; j < K; j++)
			total += s.confusion[c * K + j];
		acc_sum += s.confusion[c * K + c];
	}
	FV_CHECK_EQ(total, N);
	FV_CHECK_NEAR(acc_sum / N, fv_score_top1(&s), 1e-12);
	FV_CHECK(fv_score_ece(&s) >= 0 && fv_score_ece(&s) <= 1);
	fv_score_free(&s);
}

FV_TEST(score_perfect_confident_model_has_no_error)
{
	float logits[3 * 3] = { 50, 0, 0, 0, 50, 0, 0, 0, 50 };
	int labels[3] = { 0, 1, 2 };
	fv_score s;
	fv_score_init(&s, 3);
	fv_score_add(&s, logits, labels, 3, NULL);
	FV_CHECK_NEAR(fv_score_top1(&s), 1, 0);
	FV_CHECK_NEAR(fv_score_loss(&s), 0, 1e-12);
	FV_CHECK_NEAR(fv_score_ece(&s), 0, 1e-12);
	FV_CHECK_NEAR(fv_score_class_acc(&s, 1), 1, 0);
	fv_score_reset(&s);
	FV_CHECK_EQ(s.n, 0);
	FV_CHECK(isnan(fv_score_class_acc(&s, 1)));
	fv_score_free(&s);
}
