/* stats.c — `fovea stats --db DIR [--json]`: what the dataset holds, read
 * from one consistent snapshot of meta and classes (read-only; safe while
 * the writer runs); and `fovea-ingest events`, which prints the daemon's
 * DatasetUpdated events. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "fv_config.h"
#include "fv_daemon.h"
#include "fv_json.h"
#include "fv_msg.h"
#include "fv_error.h"
#include "fv_log.h"
#include "fv_store.h"
#include "ingest.h"

typedef struct stats_cfg {
	char *db;
	int json;
} stats_cfg;

static const fv_cfg_opt stats_options[] = {
	{ "db", FV_CFG_STR, offsetof(stats_cfg, db), NULL, 1, 0, NULL, "dataset directory" },
	{ "json", FV_CFG_BOOL, offsetof(stats_cfg, json), "false", 1, 0, NULL,
	  "print one JSON object" },
	FV_CFG_END
};

static uint64_t total(const fv_class *c)
{
	return c->split[0] + c->split[1] + c->split[2];
}

static void print_json(const char *db, const fv_store_meta *m, const fv_class *c, uint32_t n,
		       uint32_t tail, uint64_t largest)
{
	printf("{\"db\":");
	fv_json_fputs(stdout, db);
	printf(",\"schema\":%llu,\"version\":%llu,\"records\":%llu,"
	       "\"splits\":{\"train\":%llu,\"val\":%llu,\"test\":%llu},\"classes\":%u,"
	       "\"duplicates\":%llu,\"rejected\":%llu,"
	       "\"long_tail\":{\"threshold\":0.1,\"largest\":%llu,\"classes\":%u},\"per_class\":[",
	       (unsigned long long)m->schema, (unsigned long long)m->version,
	       (unsigned long long)m->records, (unsigned long long)m->split[0],
	       (unsigned long long)m->split[1], (unsigned long long)m->split[2], m->classes,
	       (unsigned long long)m->duplicates, (unsigned long long)m->rejected,
	       (unsigned long long)largest, tail);
	for (uint32_t i = 0; i < n; i++) {
		printf("%s{\"index\":%u,\"id\":", i ? "," : "", c[i].index);
		fv_json_fputs(stdout, c[i].id);
		printf(",\"name\":");
		fv_json_fputs(stdout, c[i].name);
		printf(",\"train\":%llu,\"val\":%llu,\"test\":%llu}", (unsigned long long)c[i].split[0],
		       (unsigned long long)c[i].split[1], (unsigned long long)c[i].split[2]);
	}
	printf("]}\n");
}

static void print_text(const char *db, const fv_store_meta *m, const fv_class *c, uint32_t n,
		       uint32_t tail, uint64_t largest)
{
	printf("dataset %s (schema %llu)\n", db, (unsigned long long)m->schema);
	printf("version     %llu\n", (unsigned long long)m->version);
	printf("records     %llu (train %llu, val %llu, test %llu)\n",
	       (unsigned long long)m->records, (unsigned long long)m->split[0],
	       (unsigned long long)m->split[1], (unsigned long long)m->split[2]);
	printf("classes     %u\n", m->classes);
	printf("duplicates  %llu (inputs not stored again)\n", (unsigned long long)m->duplicates);
	printf("rejected    %llu\n", (unsigned long long)m->rejected);
	printf("long tail   %u of %u classes hold under 10%% of the largest (%llu records)\n", tail, n,
	       (unsigned long long)largest);
	printf("\n%6s %9s %9s %9s  %s\n", "index", "train", "val", "test", "class");
	for (uint32_t i = 0; i < n; i++) {
		printf("%6u %9llu %9llu %9llu  %s", c[i].index, (unsigned long long)c[i].split[0],
		       (unsigned long long)c[i].split[1], (unsigned long long)c[i].split[2], c[i].id);
		if (strcmp(c[i].id, c[i].name))
			printf(" (%s)", c[i].name);
		printf("\n");
	}
}

int ingest_stats(int argc, char **argv)
{
	stats_cfg cfg;
	fv_store *s = NULL;
	fv_store_rtxn *t = NULL;
	fv_store_meta m;
	fv_class *c = NULL;
	uint32_t n = 0, tail = 0;
	uint64_t largest = 0;
	int npos, help, rc;

	fv_cfg_defaults(stats_options, &cfg);
	if ((rc = fv_cfg_parse_args(stats_options, &cfg, argc, argv, &npos, &help)) || npos ||
	    (!help && !cfg.db)) {
		fprintf(stderr, "%s%susage: fovea stats --db DIR [--json]\n", rc ? fv_err_msg(rc) : "",
			rc ? "\n" : "");
		fv_cfg_free(stats_options, &cfg);
		return 2;
	}
	if (help) {
		printf("usage: fovea stats --db DIR [--json]\n");
		fv_cfg_help(stats_options, stdout, 0);
		fv_cfg_free(stats_options, &cfg);
		return 0;
	}
	if ((rc = fv_store_open(cfg.db, FV_STORE_RDONLY, 0, &s)) || (rc = fv_store_read_begin(s, &t)))
		goto out;
	rc = fv_store_read_meta(t, &m); /* one snapshot: counts and classes agree */
	if (!rc)
		rc = fv_store_read_classes(t, &c, &n);
	fv_store_read_end(&t);
	if (rc)
		goto out;
	for (uint32_t i = 0; i < n; i++)
		largest = total(&c[i]) > largest ? total(&c[i]) : largest;
	for (uint32_t i = 0; i < n; i++)
		tail += (double)total(&c[i]) < 0.1 * (double)largest;
	if (cfg.json)
		print_json(cfg.db, &m, c, n, tail, largest);
	else
		print_text(cfg.db, &m, c, n, tail, largest);
out:
	if (rc)
		fprintf(stderr, "fovea stats: %s\n", fv_err_msg(rc));
	fv_store_classes_free(&c, n);
	fv_store_close(&s);
	fv_cfg_free(stats_options, &cfg);
	return rc ? 1 : 0;
}

/* ---------------------------------------------------------------- events */

typedef struct events_cfg {
	char *sub;
	long count;
	long timeout_ms;
} events_cfg;

static const fv_cfg_opt events_options[] = {
	{ "sub", FV_CFG_STR, offsetof(events_cfg, sub), NULL, 1, 0, NULL,
	  "endpoint of an ingest daemon's PUB socket" },
	{ "count", FV_CFG_INT, offsetof(events_cfg, count), "0", 0, 1e9, NULL,
	  "exit after this many events (0: never)" },
	{ "timeout-ms", FV_CFG_INT, offsetof(events_cfg, timeout_ms), "0", 0, 1e9, NULL,
	  "exit 1 if no event comes for this long (0: wait forever)" },
	FV_CFG_END
};

/* `fovea-ingest events --sub EP`: print each DatasetUpdated as a JSON line
 * (for operators and the integration tests). */
int ingest_events(int argc, char **argv)
{
	events_cfg cfg;
	int npos, help, rc;
	long seen = 0;
	fv_cfg_defaults(events_options, &cfg);
	if ((rc = fv_cfg_parse_args(events_options, &cfg, argc, argv, &npos, &help)) || !cfg.sub) {
		fprintf(stderr, "%s\nusage: fovea-ingest events --sub ENDPOINT [--count N]\n",
			rc ? fv_err_msg(rc) : "");
		fv_cfg_free(events_options, &cfg);
		return 2;
	}
	void *ctx = zmq_ctx_new(), *sub = zmq_socket(ctx, ZMQ_SUB);
	fv_sock_limit(sub, 1 << 20);
	zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
	if (zmq_connect(sub, cfg.sub)) {
		fprintf(stderr, "connect %s: %s\n", cfg.sub, zmq_strerror(zmq_errno()));
		rc = 1;
	}
	fv_signals_install();
	while (!rc && !fv_stop_requested && (!cfg.count || seen < cfg.count)) {
		zmq_pollitem_t it = { sub, 0, ZMQ_POLLIN, 0 };
		int n = zmq_poll(&it, 1, cfg.timeout_ms ? cfg.timeout_ms : -1);
		if (n == 0) {
			fprintf(stderr, "no event within %ld ms\n", cfg.timeout_ms);
			rc = 1;
			break;
		}
		fv_msg m;
		ProtobufCMessage *pm;
		if (n < 0 || fv_msg_recv(sub, &m, 0))
			continue;
		if (m.type == FOVEA__MSG_TYPE__MSG_DATASET_UPDATED &&
		    !fv_msg_unpack(&m, &fovea__dataset_updated__descriptor, 1 << 16, &pm)) {
			Fovea__DatasetUpdated *d = (Fovea__DatasetUpdated *)pm;
			printf("{\"type\":\"DatasetUpdated\",\"db\":");
			fv_json_fputs(stdout, d->db);
			printf(",\"version\":%llu,\"records\":%llu,\"added\":%llu,\"train\":%llu,"
			       "\"val\":%llu,\"classes\":%u}\n",
			       (unsigned long long)d->version, (unsigned long long)d->records,
			       (unsigned long long)d->added, (unsigned long long)d->train,
			       (unsigned long long)d->val, d->classes);
			fflush(stdout);
			protobuf_c_message_free_unpacked(pm, NULL);
			seen++;
		}
		fv_msg_clear(&m);
	}
	zmq_close(sub);
	zmq_ctx_term(ctx);
	fv_cfg_free(events_options, &cfg);
	return rc;
}
