/* nn/loss.c — softmax cross-entropy with label smoothing, class weights and
 * soft targets, forward and gradient in one pass.
 *
 * logits, dlogits: n x k. With w the class weights (1 when absent), eps the
 * smoothing, sample i with label y and p = softmax(z_i):
 *   hard_i = (1-eps) w_y (-log p_y) + eps/k sum_c w_c (-log p_c)
 *   hard   = sum_i hard_i / sum_i w_{y_i}               (PyTorch's "mean")
 *   soft   = T^2 mean_i sum_c -t_ic log q_ic,  q = softmax(z_i / T)
 *   loss   = (1-a) hard + a soft,  a = soft_weight (1 when labels are NULL)
 * T is the distillation temperature (1 when 0): Hinton et al.'s T^2 keeps the
 * soft term's gradient, T (q - t), on the scale of the hard one. The soft
 * term is KL(t || q) up to the constant entropy of t.
 */
#include <math.h>
#include <stdlib.h>

#include "fv_error.h"
#include "nn/loss.h"

int fv_softmax_xent_forward(float *loss, float *dlogits, const float *logits, const int *labels,
			    const fv_loss_opts *o, int n, int k)
{
	fv_loss_opts none = { 0 };
	if (!o)
		o = &none;
	const float *cw = o->class_weights, *t = o->soft_targets;
	double eps = o->smoothing, a = t ? (labels ? o->soft_weight : 1.0) : 0.0;
	double temp = o->temperature > 0 ? o->temperature : 1.0;
	if (!labels && !t)
		return fv_err_set(FV_E_CONFIG, "loss: neither labels nor soft targets");
	if (eps < 0 || eps >= 1)
		return fv_err_set(FV_E_CONFIG, "loss: smoothing %g not in [0, 1)", eps);
	double wsum = 0, sw = 0;
	for (int c = 0; c < k; c++)
		sw += cw ? cw[c] : 1.0;
	if (labels)
		for (int i = 0; i < n; i++) {
			if (labels[i] < 0 || labels[i] >= k)
				return fv_err_set(FV_E_MISMATCH, "loss: label %d of sample %d not in "
						  "[0, %d)", labels[i], i, k);
			wsum += cw ? cw[labels[i]] : 1.0;
		}
	if (labels && !(wsum > 0))
		return fv_err_set(FV_E_CONFIG, "loss: class weights of the batch sum to %g", wsum);
	double hard = 0, soft = 0;
	for (int i = 0; i < n; i++) {
		const float *z = logits + (size_t)i * k;
		float *g = dlogits + (size_t)i * k;
		double mx = z[0], se = 0;
		for (int c = 1; c < k; c++)
			mx = z[c] > mx ? z[c] : mx;
		for (int c = 0; c < k; c++)
			se += exp(z[c] - mx);
		double lse = mx + log(se);
		for (int c = 0; c < k; c++)
			g[c] = 0;
		if (labels) {
			int y = labels[i];
			double wy = cw ? cw[y] : 1.0, s = 0;
			for (int c = 0; c < k; c++) {
				double lp = z[c] - lse, p = exp(lp), wc = cw ? cw[c] : 1.0;
				s += wc * -lp;
				/* d hard_i / dz_c, scaled by (1-a)/wsum below */
				double gc = (1 - eps) * wy * p + eps / k * (sw * p - wc);
				if (c == y)
					gc -= (1 - eps) * wy;
				g[c] += (float)((1 - a) * gc / wsum);
			}
			hard += (1 - eps) * wy * (lse - z[y]) + eps / k * s;
		}
		if (t) {
			const float *ti = t + (size_t)i * k;
			double tmx = mx / temp, tse = 0;
			for (int c = 0; c < k; c++)
				tse += exp(z[c] / temp - tmx);
			double tlse = tmx + log(tse);
			for (int c = 0; c < k; c++) {
				double lq = z[c] / temp - tlse;
				soft += temp * temp * ti[c] * -lq;
				g[c] += (float)(a * temp * (exp(lq) - ti[c]) / n);
			}
		}
	}
	*loss = (float)((labels ? (1 - a) * hard / wsum : 0) + a * soft / n);
	return 0;
}
