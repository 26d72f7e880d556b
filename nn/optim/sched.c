/* nn/optim/sched.c — learning-rate schedules as pure functions of the
 * fractional epoch, and their text form for configs (see nn/sched.h). */
#include "nn/sched.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fv_error.h"

static double cosine(double base, double min, double t, double len)
{
	if (t >= len)
		return min;
	return min + (base - min) * 0.5 * (1.0 + cos(M_PI * t / len));
}

/* Position inside the current SGDR cycle: subtract whole cycles. A loop, not
 * a logarithm, so restarts land exactly on T0, T0 + T0*TMULT, ... */
static double sgdr(const fv_sched *s, double e)
{
	double len = s->t0;
	if (s->tmult == 1.0) {
		e -= floor(e / len) * len;
	} else {
		while (e >= len) {
			e -= len;
			len *= s->tmult;
		}
	}
	return cosine(s->base_lr, s->lr_min, e, len);
}

float fv_sched_lr(const fv_sched *s, double e)
{
	double lr = s->base_lr;
	if (e < 0)
		e = 0;
	switch (s->kind) {
	case FV_SCHED_CONSTANT:
		break;
	case FV_SCHED_STEP:
		lr *= pow(s->gamma, floor(e / s->step_size));
		break;
	case FV_SCHED_MULTISTEP:
		for (int i = 0; i < s->nmilestones && e >= s->milestones[i]; i++)
			lr *= s->gamma;
		break;
	case FV_SCHED_COSINE:
		lr = cosine(s->base_lr, s->lr_min, e, s->epochs);
		break;
	case FV_SCHED_SGDR:
		lr = sgdr(s, e);
		break;
	}
	if (e < s->warmup_epochs) {
		double f0 = s->warmup_start_factor;
		lr *= f0 + (1.0 - f0) * e / s->warmup_epochs;
	}
	return (float)lr;
}

double fv_sched_scale_lr(double base_per_256, int batch)
{
	return base_per_256 * batch / 256.0;
}

/* ---- text form ------------------------------------------------------------ */

/* Reads one finite number at *p and advances past it. */
static int num(const char **p, double *v)
{
	char *end;
	if (!**p || strchr(":,+", **p))
		return -1;
	*v = strtod(*p, &end);
	if (end == *p || !isfinite(*v))
		return -1;
	*p = end;
	return 0;
}

#define BAD(...) fv_err_set(FV_E_CONFIG, "lr schedule \"%s\": " __VA_ARGS__)

static int parse_args(fv_sched *s, const char *text, const char *a, const char *stop)
{
	const char *p = a;
	double v;

	switch (s->kind) {
	case FV_SCHED_CONSTANT:
		break;
	case FV_SCHED_STEP:
		if (*p++ != ':' || num(&p, &s->step_size) || *p++ != ':' || num(&p, &s->gamma))
			return BAD("expected step:EPOCHS:GAMMA, e.g. step:30:0.1", text);
		if (s->step_size <= 0)
			return BAD("step every %g epochs must be > 0", text, s->step_size);
		break;
	case FV_SCHED_MULTISTEP:
		if (*p++ != ':')
			return BAD("expected multistep:M1,M2,...:GAMMA, e.g. multistep:30,60,80:0.1", text);
		do {
			if (num(&p, &v))
				return BAD("expected a milestone epoch at \"%.*s\"", text,
					   (int)(stop - p), p);
			if (s->nmilestones == FV_SCHED_MAX_MILESTONES)
				return BAD("more than %d milestones", text, FV_SCHED_MAX_MILESTONES);
			if (v <= 0 || (s->nmilestones && v <= s->milestones[s->nmilestones - 1]))
				return BAD("milestones must be positive and ascending (%g)", text, v);
			s->milestones[s->nmilestones++] = v;
		} while (*p == ',' && p++);
		if (*p++ != ':' || num(&p, &s->gamma))
			return BAD("expected :GAMMA after the milestones", text);
		break;
	case FV_SCHED_COSINE:
		if (*p == ':' && (p++, num(&p, &s->lr_min)))
			return BAD("expected cosine[:LR_MIN]", text);
		break;
	case FV_SCHED_SGDR:
		s->tmult = 1;
		if (*p++ != ':' || num(&p, &s->t0))
			return BAD("expected sgdr:T0[:TMULT[:LR_MIN]], e.g. sgdr:10:2", text);
		if (*p == ':' && (p++, num(&p, &s->tmult)))
			return BAD("expected a cycle growth factor after T0", text);
		if (*p == ':' && (p++, num(&p, &s->lr_min)))
			return BAD("expected a minimum rate after TMULT", text);
		if (s->t0 <= 0 || s->tmult < 1)
			return BAD("need T0 > 0 and TMULT >= 1", text);
		break;
	}
	if (p != stop)
		return BAD("unexpected \"%.*s\"", text, (int)(stop - p), p);
	if ((s->kind == FV_SCHED_STEP || s->kind == FV_SCHED_MULTISTEP) && s->gamma <= 0)
		return BAD("gamma %g must be > 0", text, s->gamma);
	if (s->lr_min < 0 || (s->lr_min > 0 && s->lr_min >= s->base_lr))
		return BAD("minimum rate %g must be >= 0 and below the base rate %g", text,
			   s->lr_min, s->base_lr);
	if (s->kind == FV_SCHED_COSINE && !(s->epochs > 0))
		return BAD("cosine needs the run length in epochs (got %g)", text, s->epochs);
	return 0;
}

static int parse_warmup(fv_sched *s, const char *text, const char *w)
{
	const char *p = w + strlen("+warmup");
	s->warmup_start_factor = FV_SCHED_WARMUP_FACTOR;
	if (*p++ != ':' || num(&p, &s->warmup_epochs))
		return BAD("expected +warmup:EPOCHS[:START_FACTOR]", text);
	if (*p == ':' && (p++, num(&p, &s->warmup_start_factor)))
		return BAD("expected a start factor after the warmup epochs", text);
	if (*p)
		return BAD("unexpected \"%s\"", text, p);
	if (s->warmup_epochs < 0 || s->warmup_start_factor < 0 || s->warmup_start_factor > 1)
		return BAD("need warmup epochs >= 0 and a start factor in [0, 1]", text);
	return 0;
}

int fv_sched_parse(fv_sched *out, const char *text, double base_lr, double epochs)
{
	static const struct { const char *name; enum fv_sched_kind kind; } kinds[] = {
		{ "constant", FV_SCHED_CONSTANT }, { "step", FV_SCHED_STEP },
		{ "multistep", FV_SCHED_MULTISTEP }, { "cosine", FV_SCHED_COSINE },
		{ "sgdr", FV_SCHED_SGDR },
	};
	fv_sched s = { .base_lr = base_lr, .epochs = epochs, .gamma = 1 };
	int rc;

	if (!text)
		text = "";
	if (!isfinite(base_lr) || base_lr < 0)
		return BAD("base rate %g must be finite and >= 0", text, base_lr);
	const char *warm = strstr(text, "+warmup");
	const char *stop = warm ? warm : text + strlen(text);
	size_t len = strcspn(text, ":+");
	size_t i;
	for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strlen(kinds[i].name) == len && !strncmp(text, kinds[i].name, len))
			break;
	if (i == sizeof kinds / sizeof kinds[0])
		return BAD("unknown schedule \"%.*s\" (constant, step, multistep, cosine, sgdr)",
			   text, (int)len, text);
	s.kind = kinds[i].kind;
	if ((rc = parse_args(&s, text, text + len, stop)))
		return rc;
	if (warm && (rc = parse_warmup(&s, text, warm)))
		return rc;
	*out = s;
	return 0;
}

int fv_sched_format(const fv_sched *s, char *buf, unsigned cap)
{
	char a[400] = "";
	int n = 0;
	switch (s->kind) {
	case FV_SCHED_CONSTANT:
		n = snprintf(a, sizeof a, "constant");
		break;
	case FV_SCHED_STEP:
		n = snprintf(a, sizeof a, "step:%g:%g", s->step_size, s->gamma);
		break;
	case FV_SCHED_MULTISTEP:
		n = snprintf(a, sizeof a, "multistep:");
		for (int i = 0; i < s->nmilestones; i++)
			n += snprintf(a + n, sizeof a - n, "%s%g", i ? "," : "", s->milestones[i]);
		n += snprintf(a + n, sizeof a - n, ":%g", s->gamma);
		break;
	case FV_SCHED_COSINE:
		n = snprintf(a, sizeof a, "cosine:%g", s->lr_min);
		break;
	case FV_SCHED_SGDR:
		n = snprintf(a, sizeof a, "sgdr:%g:%g:%g", s->t0, s->tmult, s->lr_min);
		break;
	}
	if (s->warmup_epochs > 0)
		snprintf(a + n, sizeof a - n, "+warmup:%g:%g", s->warmup_epochs,
			 s->warmup_start_factor);
	return snprintf(buf, cap, "%s", a);
}
