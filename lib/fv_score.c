/* fv_score.c — see fv_score.h. Softmax in double with the max subtracted, so
 * extreme logits neither overflow nor lose the loss. */
#include "fv_score.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int fv_score_init(fv_score *s, int classes)
{
	memset(s, 0, sizeof *s);
	if (classes <= 0)
		return EINVAL;
	s->classes = classes;
	s->confusion = calloc((size_t)classes * classes, sizeof *s->confusion);
	return s->confusion ? 0 : ENOMEM;
}

void fv_score_free(fv_score *s)
{
	free(s->confusion);
	s->confusion = NULL;
}

void fv_score_reset(fv_score *s)
{
	uint64_t *c = s->confusion;
	int k = s->classes;
	memset(s, 0, sizeof *s);
	s->classes = k;
	s->confusion = c;
	memset(c, 0, (size_t)k * k * sizeof *c);
}

void fv_score_add(fv_score *s, const float *logits, const int *labels, int n, int *pred)
{
	int k = s->classes;
	for (int i = 0; i < n; i++) {
		const float *z = logits + (size_t)i * k;
		int y = labels[i], best = 0, rank = 0;
		float max = z[0];
		for (int j = 1; j < k; j++)
			if (z[j] > max) {
				max = z[j];
				best = j;
			}
		double sum = 0;
		for (int j = 0; j < k; j++) {
			sum += exp((double)z[j] - max);
			/* rank of the true class: classes scoring strictly higher,
			 * ties broken by index like the argmax above */
			if (z[j] > z[y] || (z[j] == z[y] && j < y))
				rank++;
		}
		s->n++;
		s->top1 += best == y;
		s->top5 += rank < 5;
		s->loss_sum += log(sum) - ((double)z[y] - max);
		s->confusion[(size_t)y * k + best]++;
		double conf = 1.0 / sum; /* softmax of the argmax */
		int bin = (int)(conf * FV_SCORE_ECE_BINS);
		if (bin >= FV_SCORE_ECE_BINS)
			bin = FV_SCORE_ECE_BINS - 1;
		s->ece_conf[bin] += conf;
		s->ece_acc[bin] += best == y;
		s->ece_n[bin]++;
		if (pred)
			pred[i] = best;
	}
}

double fv_score_top1(const fv_score *s) { return s->n ? (double)s->top1 / s->n : 0; }
double fv_score_top5(const fv_score *s) { return s->n ? (double)s->top5 / s->n : 0; }
double fv_score_loss(const fv_score *s) { return s->n ? s->loss_sum / s->n : 0; }

double fv_score_class_acc(const fv_score *s, int c)
{
	uint64_t total = 0;
	for (int j = 0; j < s->classes; j++)
		total += s->confusion[(size_t)c * s->classes + j];
	return total ? (double)s->confusion[(size_t)c * s->classes + c] / total : NAN;
}

double fv_score_ece(const fv_score *s)
{
	double e = 0;
	for (int b = 0; b < FV_SCORE_ECE_BINS; b++)
		if (s->ece_n[b])
			e += fabs(s->ece_acc[b] - s->ece_conf[b]) / s->n;
	return e;
}
