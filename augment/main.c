/* fovea-augment — a stateless decode+augment worker. Connects to a trainer's
 * or evaluator's broker, says how many requests it takes at once, and turns
 * each request (sample bytes + transform + seeds) into one output tensor.
 *
 *   fovea augment --connect ipc:///run/fovea/aug.sock [--threads N]
 *   fovea augment --connect tcp://trainer:5555 --curve-key /etc/fovea/augment.key \
 *                 --server-key /etc/fovea/server.pub
 *   fovea-augment keygen [--out DIR] [--name NAME]    (as `fovea keygen`)
 *
 * Runs under systemd as fovea-augment@N.service (Type=notify, watchdog);
 * SIGTERM says BYE to the client and exits. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "augment/worker.h"
#include "fv_curve.h"
#include "fv_config.h"
#include "fv_daemon.h"
#include "fv_error.h"
#include "fv_log.h"

struct cfg {
	char *connect;
	long threads;
	long heartbeat_ms;
	long liveness;
	long backoff_max_ms;
	long max_message_mb;
	int log_level;
	char *curve_key, *server_key;
};

static const fv_cfg_opt options[] = {
	{ "connect", FV_CFG_STR, offsetof(struct cfg, connect), NULL, 0, 0, NULL,
	  "client broker endpoint (ipc://PATH or tcp://HOST:PORT)" },
	{ "threads", FV_CFG_INT, offsetof(struct cfg, threads), "0", 0, 1024, NULL,
	  "compute threads = requests taken at once (0 = one per CPU)" },
	{ "heartbeat-ms", FV_CFG_INT, offsetof(struct cfg, heartbeat_ms), "1000", 10, 600000, NULL,
	  "heartbeat interval until the client's welcome sets it" },
	{ "liveness", FV_CFG_INT, offsetof(struct cfg, liveness), "3", 1, 100, NULL,
	  "missed heartbeats before the client counts as gone" },
	{ "backoff-max-ms", FV_CFG_INT, offsetof(struct cfg, backoff_max_ms), "32000", 10, 3600000,
	  NULL, "reconnect backoff cap" },
	{ "max-message-mb", FV_CFG_INT, offsetof(struct cfg, max_message_mb), "256", 1, 4096, NULL,
	  "largest message accepted or sent (MiB)" },
	{ "curve-key", FV_CFG_STR, offsetof(struct cfg, curve_key), NULL, 0, 0, NULL,
	  "CURVE: this worker's secret key file NAME.key (NAME.pub beside it; mode 0600)" },
	{ "server-key", FV_CFG_STR, offsetof(struct cfg, server_key), NULL, 0, 0, NULL,
	  "CURVE: the client's (trainer's) public key file; needed with curve-key" },
	{ "log-level", FV_CFG_ENUM, offsetof(struct cfg, log_level), "info", 0, 0,
	  "error|warn|info|debug", "log verbosity" },
	FV_CFG_END
};

int main(int argc, char **argv)
{
	static const int levels[] = { FV_LOG_ERR, FV_LOG_WARN, FV_LOG_INFO, FV_LOG_DEBUG };
	struct cfg cfg;
	fv_augw_opts o;
	fv_augw *w = NULL;
	int npos = 0, help = 0, rc;

	if (argc > 1 && !strcmp(argv[1], "keygen"))
		return fv_keygen_main(argc - 1, argv + 1);
	fv_log_init("fovea-augment", FV_LOG_INFO);
	if ((rc = fv_cfg_defaults(options, &cfg)) ||
	    (rc = fv_cfg_parse_args(options, &cfg, argc, argv, &npos, &help))) {
		fprintf(stderr, "fovea-augment: %s\n", fv_err_msg(rc));
		fv_cfg_free(options, &cfg);
		return 2;
	}
	if (help) {
		printf("usage: fovea augment --connect ENDPOINT [--threads N] "
		       "[--curve-key FILE --server-key FILE]\n       fovea augment keygen [--out DIR] [--name NAME]\n\n");
		fv_cfg_help(options, stdout, 0);
		fv_cfg_free(options, &cfg);
		return 0;
	}
	fv_log_set_level(levels[cfg.log_level]);
	if (!cfg.connect || npos) {
		fprintf(stderr, "fovea-augment: %s; see --help\n",
			npos ? "unexpected argument" : "--connect ENDPOINT is required");
		fv_cfg_free(options, &cfg);
		return 2;
	}
	fv_signals_install();
	fv_augw_opts_default(&o);
	o.connect = cfg.connect;
	o.threads = cfg.threads ? (int)cfg.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	o.heartbeat_ms = (int)cfg.heartbeat_ms;
	o.liveness = (int)cfg.liveness;
	o.backoff_max_ms = (int)cfg.backoff_max_ms;
	o.max_message = (size_t)cfg.max_message_mb << 20;
	o.curve_key = cfg.curve_key;
	o.server_key = cfg.server_key;
	if ((rc = fv_augw_new(&w, &o))) {
		fv_err("%s", fv_err_msg(rc));
		fv_cfg_free(options, &cfg);
		return 1;
	}
	fv_info("connecting to %s with %d threads", o.connect, o.threads);
	fv_sd_ready();
	rc = fv_augw_run(w, &fv_stop_requested);
	if (rc)
		fv_err("%s", fv_err_msg(rc));
	fv_sd_stopping();
	fv_augw_destroy(&w);
	fv_cfg_free(options, &cfg);
	return rc ? 1 : 0;
}
