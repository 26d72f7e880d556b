/* fovea-up — `fovea up` runs every fovea daemon on this machine under one
 * supervisor; `fovea status` reports on it; `fovea keygen` is the CURVE key
 * tool (lib/fv_curve.c, linked when present). */
#include <stdio.h>
#include <string.h>

#include "up/up.h"

/* Defined by lib/fv_curve.c where that is built; weak so fovea-up links
 * without it. */
int fv_keygen_main(int argc, char **argv) __attribute__((weak));

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "status"))
		return fv_status_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "keygen")) {
		if (!fv_keygen_main) {
			fprintf(stderr, "fovea keygen: this build has no CURVE support\n");
			return 2;
		}
		return fv_keygen_main(argc - 1, argv + 1);
	}
	if (argc > 1 && !strcmp(argv[1], "--help-markdown")) {
		fv_cfg_help(fv_up_opts_table, stdout, 1);
		return 0;
	}
	return fv_up_main(argc, argv);
}
