/* up/up.h — `fovea up` (run the whole pipeline under one supervisor) and
 * `fovea status` (what a running pipeline is doing). */
#ifndef FV_UP_H
#define FV_UP_H

#include <stdio.h>

#include "fv_config.h"

typedef struct fv_up_opts {
	char *dir, *daemons, *model, *ingest_args, *trainer_args, *augment_args, *evaluator_args,
		*exporter_args, *serve_args, *http_addr;
	long workers, epochs, http_port, backoff_min_ms, backoff_max_ms, stable_ms, stop_timeout_ms;
	int continual;
} fv_up_opts;

extern const fv_cfg_opt fv_up_opts_table[];

/* The state directory: --dir, else $XDG_STATE_HOME/fovea, else ./fovea-state. */
void fv_up_state_dir(const char *given, char *out, size_t cap);

/* ------------------------------------------------------------ live (status_ep.c) */

#define FV_LIVE_MAX 64
struct Fovea__DaemonStatus;

/* One daemon's status endpoint and what it answered. */
typedef struct fv_live {
	char name[64], endpoint[512];
	struct Fovea__DaemonStatus *st; /* NULL: no answer (error says why) */
	char error[256];
} fv_live;

/* Parse "NAME=ENDPOINT[,NAME=ENDPOINT...]" (buf is cut up) into d[max]:
 * returns the count, or FV_E_CONFIG naming the bad entry. */
int fv_live_parse(char *buf, fv_live *d, int max);
/* Ask every d[i].endpoint at once, within timeout_ms. */
void fv_live_ask(fv_live *d, int n, int timeout_ms, const char *curve_key, const char *server_pub);
void fv_live_free(fv_live *d, int n);
/* ["state":"up",]"pid":...,"figures":{...} (no braces) for one daemon. */
void fv_live_json_daemon(const fv_live *l, int with_state, FILE *o);
/* A "live" table line: the daemon's own figures (NAME.* and workers.*). */
void fv_live_line(const fv_live *l, FILE *o);
/* A line per augment worker the answering trainer reports (worker.NAME.*). */
void fv_live_workers(const fv_live *d, int n, FILE *o);
/* How long ago unix time t was: "42s", "17m", "3h05m". */
void fv_up_since(char *buf, size_t cap, long long t);
/* `fovea status --endpoints LIST`: the table or JSON; exit status 0 when
 * one daemon answered, else 1 (2: a bad list). */
int fv_status_endpoints(const char *list, int timeout_ms, const char *curve_key, const char *server_pub,
			int json);

int fv_up_main(int argc, char **argv);
int fv_status_main(int argc, char **argv);

#endif
