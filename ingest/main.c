/* fovea-ingest — adds images to an LMDB dataset.
 *
 *   fovea ingest --db DIR [options] SOURCE...    folders, list files, IDX
 *   fovea ingest --db DIR --watch INBOX [--pub EP]   the inbox daemon
 *   fovea stats --db DIR [--json]                 (fovea-ingest stats)
 *   fovea-ingest events --sub EP                  print DatasetUpdated events
 *
 * A bad input is rejected with one line naming it and the run goes on; the
 * exit status is 0 when the run completed, whatever was rejected. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fv_config.h"
#include "fv_daemon.h"
#include "fv_error.h"
#include "fv_log.h"
#include "ingest.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: fovea ingest --db DIR [options] SOURCE...\n"
		   "       fovea ingest --db DIR --watch INBOX [--pub ENDPOINT]\n"
		   "       fovea stats --db DIR [--json]\n\n"
		   "SOURCE is a folder (SOURCE/<class>/<image>, JPEG or PNG), a list file\n"
		   "('<path> <label>' per line, paths relative to it; - reads one from\n"
		   "standard input, paths relative to the working directory), or an IDX\n"
		   "images file (*-images-idx3-ubyte[.gz], labels beside it).\n\noptions:\n");
	fv_cfg_help(ingest_options, f, 0);
}

static int run_sources(const ingest_cfg *cfg, fv_store *s, char **src, int n)
{
	ing_writer *w = NULL;
	uint64_t added, dups, rej, version;
	int rc = ing_writer_new(s, cfg, &w);
	for (int i = 0; i < n && !rc; i++)
		if ((rc = ing_source_add(cfg, w, src[i])))
			fv_err("%s", fv_err_msg(rc));
	int frc = ing_writer_flush(w); /* keep what validated before a failure */
	if (!frc)
		frc = fv_store_sync(s); /* durable before it says so */
	if (frc && frc != rc) /* a failed commit fails the source and the flush alike */
		fv_err("%s", fv_err_msg(frc));
	ing_writer_totals(w, &added, &dups, &rej, &version);
	printf("added %llu, duplicates %llu, rejected %llu; dataset version %llu\n",
	       (unsigned long long)added, (unsigned long long)dups, (unsigned long long)rej,
	       (unsigned long long)version);
	uint64_t known = ing_writer_known(w);
	if (known)
		printf("%llu of the duplicates: files ingested before and unchanged since, not read "
		       "again (--recheck reads them)\n", (unsigned long long)known);
	ing_writer_destroy(&w);
	return rc ? rc : frc;
}

int main(int argc, char **argv)
{
	ingest_cfg cfg;
	fv_store *s = NULL;
	int npos = 0, help = 0, rc;

	fv_log_init(argv[0], 0);
	ingest_malloc_setup();
	if (argc > 1 && !strcmp(argv[1], "stats"))
		return ingest_stats(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "events"))
		return ingest_events(argc - 1, argv + 1);
	fv_cfg_defaults(ingest_options, &cfg);
	if ((rc = fv_cfg_parse_args(ingest_options, &cfg, argc, argv, &npos, &help))) {
		fprintf(stderr, "fovea ingest: %s\n", fv_err_msg(rc));
		return 2;
	}
	if (help) {
		usage(stdout);
		goto done;
	}
	static const int levels[] = { FV_LOG_ERR, FV_LOG_WARN, FV_LOG_INFO, FV_LOG_DEBUG };
	fv_log_set_level(levels[cfg.log_level]);
	if (!cfg.db || (!cfg.watch && !npos)) {
		usage(stderr);
		rc = 2;
		goto done;
	}
	/* A batch run syncs each commit's pages but the meta page only with the
	 * next commit and at the end: one fsync per commit, not two. A system
	 * crash mid-run may undo its last commit, which a re-run redoes. The
	 * inbox daemon moves each file to .done once its commit returns, so
	 * there every commit is durable before it returns. */
	int sf = cfg.nosync ? FV_STORE_NOSYNC : cfg.watch ? 0 : FV_STORE_LAZYMETA;
	if ((rc = fv_store_open(cfg.db, FV_STORE_CREATE | sf, (size_t)cfg.map_mb << 20, &s))) {
		fv_err("%s", fv_err_msg(rc));
		goto done;
	}
	if (cfg.watch) {
		rc = ingest_watch(&cfg, s);
	} else {
		/* SIGINT/SIGTERM: the decoders finish the images in hand, what is
		 * validated is committed, and a re-run goes on from there */
		fv_signals_install();
		rc = run_sources(&cfg, s, argv + 1, npos);
		if (fv_stopping())
			fprintf(stderr, "fovea ingest: stopped; run the same command again to go on\n");
	}
done:
	fv_store_close(&s);
	fv_cfg_free(ingest_options, &cfg);
	return rc ? (rc == 2 ? 2 : 1) : 0;
}
