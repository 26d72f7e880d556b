/* nn/sched.h — learning-rate schedules, evaluated per step at a fractional
 * epoch (epoch = step / steps_per_epoch), so the trainer never keeps
 * schedule state: the same step always gives the same rate, which makes
 * resuming exact.
 *
 *   constant                lr = base
 *   step:K:G                lr = base * G^floor(e / K)
 *   multistep:M1,M2,..:G    lr = base * G^(number of milestones <= e)
 *   cosine[:MIN]            lr = MIN + (base - MIN) * (1 + cos(pi * e / E)) / 2,
 *                           E = the run's epochs; MIN for e >= E (MIN default 0)
 *   sgdr:T0[:TMULT[:MIN]]   cosine from base to MIN over cycles of T0, T0*TMULT,
 *                           T0*TMULT^2, ... epochs, restarting at base
 *                           (TMULT default 1, MIN default 0)
 * Any of them may end in "+warmup:W[:F]": over the first W epochs the rate
 * is multiplied by a factor rising linearly from F (default
 * FV_SCHED_WARMUP_FACTOR) to 1 at W, as PyTorch's LinearLR chained with the
 * schedule, so the rate is continuous at W.
 *
 * Example: "multistep:30,60,80:0.1+warmup:5:0.01". */
#ifndef FV_SCHED_H
#define FV_SCHED_H

enum fv_sched_kind {
	FV_SCHED_CONSTANT,
	FV_SCHED_STEP,
	FV_SCHED_MULTISTEP,
	FV_SCHED_COSINE,
	FV_SCHED_SGDR,
};

#define FV_SCHED_MAX_MILESTONES 16
#define FV_SCHED_WARMUP_FACTOR 0.1 /* warmup start factor when text omits F */

/* A plain value: fill it by hand or with fv_sched_parse. */
typedef struct fv_sched {
	enum fv_sched_kind kind;
	double base_lr;
	double epochs;               /* run length (cosine) */
	double step_size, gamma;     /* step; gamma also for multistep */
	double milestones[FV_SCHED_MAX_MILESTONES]; /* ascending */
	int nmilestones;
	double lr_min;               /* cosine, sgdr */
	double t0, tmult;            /* sgdr: first cycle length, growth (>= 1) */
	double warmup_epochs;        /* 0 = no warmup */
	double warmup_start_factor;  /* in [0, 1] */
} fv_sched;

/* The rate at (fractional) epoch e >= 0. */
float fv_sched_lr(const fv_sched *s, double epoch);

/* Parse text (syntax above) into s for a run of epochs epochs with base
 * rate base_lr. Returns 0 or FV_E_CONFIG with one line of detail naming the
 * text and what is wrong; s is untouched on failure. */
int fv_sched_parse(fv_sched *s, const char *text, double base_lr, double epochs);

/* Write s back as text fv_sched_parse accepts (for logs and checkpoint
 * metadata). Returns the length snprintf would have written. */
int fv_sched_format(const fv_sched *s, char *buf, unsigned cap);

/* The linear scaling rule (Goyal et al.): a base rate given per 256 samples
 * scaled to the batch size: base * batch / 256. */
double fv_sched_scale_lr(double base_per_256, int batch);

#endif
