/* up/up.h — `fovea up` (run the whole pipeline under one supervisor) and
 * `fovea status` (what a running pipeline is doing). */
#ifndef FV_UP_H
#define FV_UP_H

#include "fv_config.h"

typedef struct fv_up_opts {
	char *dir, *daemons, *model, *ingest_args, *trainer_args, *augment_args, *evaluator_args,
		*exporter_args, *serve_args, *http_addr;
	long workers, epochs, http_port, backoff_min_ms, backoff_max_ms, stable_ms, stop_timeout_ms;
} fv_up_opts;

extern const fv_cfg_opt fv_up_opts_table[];

/* The state directory: --dir, else $XDG_STATE_HOME/fovea, else ./fovea-state. */
void fv_up_state_dir(const char *given, char *out, size_t cap);

int fv_up_main(int argc, char **argv);
int fv_status_main(int argc, char **argv);

#endif
