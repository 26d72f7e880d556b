/* nn/optim/sgd.c — SGD with momentum / Nesterov, weight decay, global-norm
 * clipping and a weight EMA over the fv_param table (see nn/optim.h for the
 * update rule). State lives in one allocation, laid out by a table of sizes
 * computed once in fv_sgd_new; the step allocates nothing. Inner loops are
 * branch-free over restrict pointers so the compiler vectorizes them. */
#include "nn/optim.h"

/* GCC's -O2 vectorizes only loops that need no remainder loop, which rules
 * out these; its dynamic cost model vectorizes them (clang does at -O2). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fv_error.h"

struct fv_sgd {
	fv_param *params;      /* borrowed */
	size_t n;
	fv_sgd_opts o;
	float *state;          /* the one allocation: momentum..., ema... */
	size_t nstate;         /* floats in state */
	float **mom;           /* per param: its momentum slice or NULL */
	float **ema;           /* per param: its EMA slice or NULL */
	fv_param *tab;         /* state described as named tensors */
	size_t ntab;
	char *names;           /* backing store of tab[].name */
	uint64_t steps;
	double grad_norm;
	int swapped;
	fv_net_dev dev;        /* bound to a device (fv_sgd_bind): dev.be != NULL */
	void *dstate;          /* device copy of state */
	fv_plan *dplan;        /* the backend's fused step */
	char *dtrain;          /* per param: trainable when dplan was made */
};

static int trainable(const fv_param *p)
{
	return p->grad && p->data && !p->frozen && p->kind != FV_PARAM_BUFFER;
}

static int decayed(const fv_param *p, const fv_sgd_opts *o)
{
	return p->kind == FV_PARAM_WEIGHT || o->decay_bn_and_bias;
}

/* ---- creation ---------------------------------------------------------- */

static int check_opts(const fv_sgd_opts *o)
{
	if (!(o->momentum >= 0 && o->momentum < 1))
		return fv_err_set(EINVAL, "sgd: momentum %g not in [0, 1)", o->momentum);
	if (o->nesterov && o->momentum <= 0)
		return fv_err_set(EINVAL, "sgd: nesterov needs momentum > 0");
	if (!(o->weight_decay >= 0 && o->weight_decay < 1))
		return fv_err_set(EINVAL, "sgd: weight decay %g not in [0, 1)", o->weight_decay);
	if (!(o->clip_norm >= 0) || isinf(o->clip_norm))
		return fv_err_set(EINVAL, "sgd: clip norm %g not finite and >= 0", o->clip_norm);
	if (!(o->ema_decay >= 0 && o->ema_decay < 1))
		return fv_err_set(EINVAL, "sgd: EMA decay %g not in [0, 1)", o->ema_decay);
	return 0;
}

/* The table of sizes: which params get a momentum buffer and an EMA copy. */
static int has_mom(const fv_param *p, const fv_sgd_opts *o)
{
	/* Frozen params keep a buffer too, so unfreezing later just works. */
	return o->momentum > 0 && p->grad && p->data && p->kind != FV_PARAM_BUFFER;
}

static int has_ema(const fv_param *p, const fv_sgd_opts *o)
{
	return o->ema_decay > 0 && p->data;
}

static int build_tab(fv_sgd *s)
{
	size_t nbytes = 0;
	for (size_t i = 0; i < s->n; i++) {
		size_t len = strlen(s->params[i].name);
		nbytes += (s->mom[i] ? len + sizeof ".momentum" : 0) +
			  (s->ema[i] ? len + sizeof "ema." : 0);
	}
	s->tab = calloc(s->ntab ? s->ntab : 1, sizeof *s->tab);
	s->names = malloc(nbytes ? nbytes : 1);
	if (!s->tab || !s->names)
		return ENOMEM;
	char *q = s->names;
	size_t k = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < s->n; i++) {
			const fv_param *p = &s->params[i];
			float *d = pass ? s->ema[i] : s->mom[i];
			if (!d)
				continue;
			fv_param *t = &s->tab[k++];
			*t = (fv_param){ .name = q, .kind = FV_PARAM_BUFFER, .data = d,
					 .numel = p->numel, .ndim = p->ndim };
			memcpy(t->dims, p->dims, sizeof t->dims);
			q += sprintf(q, pass ? "ema.%s" : "%s.momentum", p->name) + 1;
		}
	}
	return 0;
}

int fv_sgd_new(fv_sgd **out, fv_param *params, size_t n, const fv_sgd_opts *o)
{
	static const fv_sgd_opts plain;
	fv_sgd *s = NULL;
	int rc;

	*out = NULL;
	if (!o)
		o = &plain;
	if ((rc = check_opts(o)))
		return rc;
	if (!(s = calloc(1, sizeof *s)))
		return ENOMEM;
	s->params = params;
	s->n = n;
	s->o = *o;
	s->mom = calloc(n ? n : 1, sizeof *s->mom);
	s->ema = calloc(n ? n : 1, sizeof *s->ema);
	if (!s->mom || !s->ema) {
		rc = ENOMEM;
		goto out;
	}
	size_t nmom = 0, nema = 0;
	for (size_t i = 0; i < n; i++) {
		if (!params[i].name) {
			rc = fv_err_set(EINVAL, "sgd: param %zu has no name", i);
			goto out;
		}
		nmom += has_mom(&params[i], o) ? params[i].numel : 0;
		nema += has_ema(&params[i], o) ? params[i].numel : 0;
	}
	s->nstate = nmom + nema;
	if (s->nstate && !(s->state = calloc(s->nstate, sizeof(float)))) {
		rc = fv_err_set(ENOMEM, "sgd: no memory for %zu floats of optimizer state", s->nstate);
		goto out;
	}
	float *m = s->state, *e = s->state + nmom;
	for (size_t i = 0; i < n; i++) {
		if (has_mom(&params[i], o)) {
			s->mom[i] = m;
			m += params[i].numel;
			s->ntab++;
		}
		if (has_ema(&params[i], o)) {
			s->ema[i] = e;
			memcpy(e, params[i].data, params[i].numel * sizeof(float));
			e += params[i].numel;
			s->ntab++;
		}
	}
	rc = build_tab(s);
out:
	if (rc)
		fv_sgd_destroy(&s);
	*out = s;
	return rc;
}

void fv_sgd_destroy(fv_sgd **p)
{
	fv_sgd *s = *p;
	if (!s)
		return;
	if (s->dev.be) {
		s->dev.be->plan_destroy(&s->dplan);
		s->dev.be->free(s->dev.ctx, s->dstate);
		free(s->dtrain);
	}
	free(s->state);
	free(s->mom);
	free(s->ema);
	free(s->tab);
	free(s->names);
	free(s);
	*p = NULL;
}

/* ---- the step ---------------------------------------------------------- */

/* Sum of squares in eight double lanes: vectorizes, and the fixed lane
 * order keeps the result bit-identical from run to run. */
static double sumsq(const float *restrict g, size_t n)
{
	double lane[8] = { 0 };
	size_t j = 0;
	for (; j + 8 <= n; j += 8)
		for (int k = 0; k < 8; k++)
			lane[k] += (double)g[j + k] * g[j + k];
	double t = 0;
	for (; j < n; j++)
		t += (double)g[j] * g[j];
	for (int k = 0; k < 8; k++)
		t += lane[k];
	return t;
}

/* w = w*dec - lr*(c*g + wd*w)   (no momentum) */
static void upd_plain(float *restrict w, const float *restrict g, size_t n,
		      float lr, float c, float wd, float dec)
{
	for (size_t j = 0; j < n; j++)
		w[j] = w[j] * dec - lr * (c * g[j] + wd * w[j]);
}

static void upd_mom(float *restrict w, float *restrict b, const float *restrict g,
		    size_t n, float lr, float c, float wd, float dec, float mu)
{
	for (size_t j = 0; j < n; j++) {
		float gj = c * g[j] + wd * w[j];
		float bj = mu * b[j] + gj;
		b[j] = bj;
		w[j] = w[j] * dec - lr * bj;
	}
}

static void upd_nesterov(float *restrict w, float *restrict b, const float *restrict g,
			 size_t n, float lr, float c, float wd, float dec, float mu)
{
	for (size_t j = 0; j < n; j++) {
		float gj = c * g[j] + wd * w[j];
		float bj = mu * b[j] + gj;
		b[j] = bj;
		w[j] = w[j] * dec - lr * (gj + mu * bj);
	}
}

static void upd_ema(float *restrict e, const float *restrict w, size_t n, float d)
{
	float a = 1.0f - d;
	for (size_t j = 0; j < n; j++)
		e[j] = d * e[j] + a * w[j];
}

static float ema_decay_now(const fv_sgd *s)
{
	float d = s->o.ema_decay;
	if (d > 0 && s->o.ema_warmup) {
		double w = (1.0 + (double)s->steps) / (10.0 + (double)s->steps);
		d = w < d ? (float)w : d;
	}
	return d;
}

static int dev_plan(fv_sgd *s);

static int dev_step(fv_sgd *s, float lr)
{
	const fv_sgd_opts *o = &s->o;
	fv_sgd_hyper h = { lr, o->momentum, o->clip_norm, ema_decay_now(s), o->nesterov,
			   o->decoupled };
	double ss = 0;
	int rc = 0;
	for (size_t i = 0; i < s->n && !rc; i++)
		if (s->dtrain[i] != (char)trainable(&s->params[i]))
			rc = dev_plan(s); /* frozen or unfrozen since: re-plan once */
	if (!rc)
		rc = s->dev.be->sgd_step(s->dplan, s->dev.params, s->dev.grads, s->dstate, &h, &ss);
	s->grad_norm = sqrt(ss);
	if (rc == FV_E_CORRUPT)
		return fv_err_set(FV_E_CORRUPT, "sgd: gradient norm is %g at step %llu; update skipped",
				  s->grad_norm, (unsigned long long)s->steps);
	if (!rc)
		s->steps++;
	return rc;
}

int fv_sgd_step(fv_sgd *s, float lr)
{
	const fv_sgd_opts *o = &s->o;

	if (!isfinite(lr) || lr < 0)
		return fv_err_set(EINVAL, "sgd: learning rate %g is not finite and >= 0", lr);
	if (s->swapped)
		return fv_err_set(EINVAL, "sgd: step with the EMA weights swapped in");
	if (s->dplan)
		return dev_step(s, lr);
	double ss = 0;
	for (size_t i = 0; i < s->n; i++)
		if (trainable(&s->params[i]))
			ss += sumsq(s->params[i].grad, s->params[i].numel);
	s->grad_norm = sqrt(ss);
	if (!isfinite(s->grad_norm))
		return fv_err_set(FV_E_CORRUPT, "sgd: gradient norm is %g at step %llu; update skipped",
				  s->grad_norm, (unsigned long long)s->steps);
	float c = 1.0f;
	if (o->clip_norm > 0 && s->grad_norm > o->clip_norm)
		c = (float)(o->clip_norm / (s->grad_norm + 1e-6)); /* torch clip_grad_norm_ */

	for (size_t i = 0; i < s->n; i++) {
		fv_param *p = &s->params[i];
		if (!trainable(p))
			continue;
		float wd = decayed(p, o) ? o->weight_decay : 0.0f;
		float l2 = o->decoupled ? 0.0f : wd;
		float dec = o->decoupled ? 1.0f - lr * wd : 1.0f;
		if (!s->mom[i])
			upd_plain(p->data, p->grad, p->numel, lr, c, l2, dec);
		else if (o->nesterov)
			upd_nesterov(p->data, s->mom[i], p->grad, p->numel, lr, c, l2, dec, o->momentum);
		else
			upd_mom(p->data, s->mom[i], p->grad, p->numel, lr, c, l2, dec, o->momentum);
	}
	if (o->ema_decay > 0) {
		float d = ema_decay_now(s);
		for (size_t i = 0; i < s->n; i++)
			if (s->ema[i])
				upd_ema(s->ema[i], s->params[i].data, s->params[i].numel, d);
	}
	s->steps++;
	return 0;
}

/* ---- accessors ----------------------------------------------------------- */

double fv_sgd_grad_norm(const fv_sgd *s) { return s->grad_norm; }
uint64_t fv_sgd_steps(const fv_sgd *s) { return s->steps; }
void fv_sgd_set_steps(fv_sgd *s, uint64_t steps) { s->steps = steps; }
int fv_sgd_ema_swapped(const fv_sgd *s) { return s->swapped; }

float *fv_sgd_ema(fv_sgd *s, size_t i)
{
	return i < s->n ? s->ema[i] : NULL;
}

int fv_sgd_ema_swap(fv_sgd *s)
{
	if (s->o.ema_decay <= 0)
		return fv_err_set(FV_E_NOTFOUND, "sgd: no EMA kept (ema_decay is 0)");
	int rc = s->dplan ? fv_sgd_sync(s, 1) : 0;
	if (rc)
		return rc;
	for (size_t i = 0; i < s->n; i++) {
		float *restrict a = s->params[i].data, *restrict b = s->ema[i];
		if (!b)
			continue;
		for (size_t j = 0; j < s->params[i].numel; j++) {
			float t = a[j];
			a[j] = b[j];
			b[j] = t;
		}
	}
	s->swapped = !s->swapped;
	return s->dplan ? fv_sgd_sync(s, 0) : 0;
}

/* ---- on the device --------------------------------------------------------- */

/* The backend's fused step over the params trainable now (or averaged);
 * remembers which were trainable so a later freeze or unfreeze re-plans. */
static int dev_plan(fv_sgd *s)
{
	const fv_backend *be = s->dev.be;
	fv_sgd_seg *seg = calloc(s->n ? s->n : 1, sizeof *seg);
	if (!seg)
		return ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++) {
		const fv_param *p = &s->params[i];
		s->dtrain[i] = (char)trainable(p);
		if (!trainable(p) && !s->ema[i])
			continue;
		seg[k++] = (fv_sgd_seg){
			.off = (size_t)(p->data - s->dev.host_params), .n = p->numel,
			.mom = s->mom[i] ? (size_t)(s->mom[i] - s->state) : SIZE_MAX,
			.ema = s->ema[i] ? (size_t)(s->ema[i] - s->state) : SIZE_MAX,
			.wd = decayed(p, &s->o) ? s->o.weight_decay : 0.0f, .train = trainable(p),
		};
	}
	be->plan_destroy(&s->dplan);
	int rc = be->sgd_new(s->dev.ctx, seg, k, &s->dplan);
	free(seg);
	return rc;
}

int fv_sgd_bind(fv_sgd *s, const fv_net_dev *dev)
{
	const fv_backend *be = dev->be;
	if (!be || !be->sgd_new || !be->sgd_step)
		return fv_err_set(FV_E_UNSUPPORTED, "sgd: backend %s has no device step",
				  be ? be->name : "(none)");
	if (s->dplan)
		return fv_err_set(EINVAL, "sgd: already bound to a device");
	for (size_t i = 0; i < s->n; i++) {
		const fv_param *p = &s->params[i];
		if (!p->data || p->data < dev->host_params ||
		    p->data + p->numel > dev->host_params + dev->nfloats)
			return fv_err_set(EINVAL, "sgd: param %s is not in the net's block", p->name);
	}
	s->dev = *dev;
	s->dtrain = calloc(s->n ? s->n : 1, 1);
	int rc = s->dtrain ? 0 : ENOMEM;
	if (!rc)
		rc = be->alloc(dev->ctx, (s->nstate ? s->nstate : 1) * sizeof(float), &s->dstate);
	if (!rc)
		rc = fv_sgd_sync(s, 0);
	if (!rc)
		rc = dev_plan(s);
	if (rc) {
		be->plan_destroy(&s->dplan);
		be->free(dev->ctx, s->dstate);
		free(s->dtrain);
		s->dstate = NULL, s->dtrain = NULL;
		s->dev.be = NULL;
	}
	return rc;
}

int fv_sgd_sync(fv_sgd *s, int to_host)
{
	if (!s->dev.be || !s->nstate)
		return 0;
	size_t b = s->nstate * sizeof(float);
	return to_host ? s->dev.be->to_host(s->dev.ctx, s->state, s->dstate, b)
		       : s->dev.be->to_device(s->dev.ctx, s->dstate, s->state, b);
}

fv_param *fv_sgd_state_params(fv_sgd *s, size_t *n)
{
	*n = s->ntab;
	return s->tab;
}

float *fv_sgd_state(fv_sgd *s, size_t *nfloats)
{
	*nfloats = s->nstate;
	return s->state;
}
