/* trainer/options.h — every fovea-trainer option, as one config table. The
 * same table reads `-c FILE`, the command line, writes RUNDIR/config and
 * generates the README's reference. */
#ifndef FV_TRAINER_OPTIONS_H
#define FV_TRAINER_OPTIONS_H

#include "fv_config.h"

enum { SAMPLER_UNIFORM, SAMPLER_BALANCED, SAMPLER_WEIGHTED };
enum { POLICY_REPLACE, POLICY_SKIP, POLICY_FAIL };

typedef struct fv_train_opts {
	char *db, *out, *resume, *model, *input, *schedule, *device;
	long epochs, batch, threads, seed, workers, worker_threads, window;
	double lr, lr_min, momentum, weight_decay, warmup_epochs, label_smoothing, clip_norm, ema;
	int nesterov, decay_bn_bias, decoupled_wd;
	int sampler, bad_sample_policy;
	/* train transform */
	long pad;
	int rrc;
	double scale_min, flip_p, brightness, contrast, saturation, hue, pca_lighting, erase_p;
	/* eval transform */
	long resize_shorter;
	char *mean, *std;
	/* checkpoints, events, logging */
	long ckpt_steps, keep_last, log_steps, eval_every, max_steps;
	double ckpt_minutes;
	char *augment_bind, *pub, *log_level, *trace, *status_ep;
	char *augment_curve_key, *augment_curve_pub, *augment_allow;
	/* transfer learning and distillation */
	char *init, *init_skip, *freeze, *teacher;
	long unfreeze_every;
	double kd_alpha, kd_temperature;
	/* continual retraining (trainer/rounds.c) */
	int continual;
	long round_min_new, round_epochs;
	double replay_ratio, round_lr;
	char *dataset_sub;
} fv_train_opts;

extern const fv_cfg_opt fv_train_table[];

#endif
