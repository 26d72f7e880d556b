/* up/status.c — `fovea status [--dir STATE] [--json]`: what the pipeline
 * under STATE is doing, from durable state: STATE/up.json (daemons, kept by
 * fovea up), the dataset's LMDB meta (read only), the run's metrics.jsonl,
 * eval.jsonl and champion, the models' current link and manifest, and
 * fovea-serve's stats file; plus the live figures of each daemon whose
 * status endpoint (ipc://STATE/status-NAME.sock, bound by fovea up)
 * answers. With --endpoints the daemons alone are asked (status_ep.c):
 * a pipeline spread over hosts. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fv_config.h"
#include "fv_error.h"
#include "fv_store.h"
#include "up/up.h"
#include "trainer/rounds.h"

typedef struct sopts {
	char *dir, *endpoints, *curve_key, *curve_server_key;
	int json;
	long timeout_ms;
} sopts;

static const fv_cfg_opt opts[] = {
	{ "dir", FV_CFG_STR, offsetof(sopts, dir), "", 1, 0, NULL, "state directory of a fovea up (default as fovea up)" },
	{ "json", FV_CFG_BOOL, offsetof(sopts, json), "false", 0, 0, NULL, "one JSON object instead of the table" },
	{ "endpoints", FV_CFG_STR, offsetof(sopts, endpoints), "", 1, 0, NULL, "ask these daemons instead: NAME=ENDPOINT[,NAME=ENDPOINT...] (their status-endpoint options)" },
	{ "timeout-ms", FV_CFG_INT, offsetof(sopts, timeout_ms), "1000", 10, 600000, NULL, "a daemon that does not answer in this long is shown down" },
	{ "curve-key", FV_CFG_STR, offsetof(sopts, curve_key), "", 1, 0, NULL, "CURVE: our secret key (fovea keygen), for endpoints that use CURVE" },
	{ "curve-server-key", FV_CFG_STR, offsetof(sopts, curve_server_key), "", 1, 0, NULL, "CURVE: the daemons' public key (the .pub of their --augment-curve-key)" },
	FV_CFG_END,
};

/* The whole file (small files only), NUL-terminated, or NULL. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *buf = malloc(1 << 20);
	size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	fclose(f);
	if (buf)
		buf[n] = 0;
	return buf;
}

/* The last non-empty line of a JSONL file (malloc'd), or NULL. */
static char *last_line(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long size = ftell(f), from = size > 65536 ? size - 65536 : 0;
	fseek(f, from, SEEK_SET);
	char *buf = calloc(1, 65537), *line = NULL;
	size_t n = buf ? fread(buf, 1, 65536, f) : 0;
	fclose(f);
	if (!buf)
		return NULL;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	char *nl = strrchr(buf, '\n');
	line = strdup(nl ? nl + 1 : buf);
	free(buf);
	return line && *line == '{' ? line : (free(line), NULL);
}

/* A number after "key": in a JSON object or key= in a key=value file. */
static double num(const char *s, const char *key, double def)
{
	char pat[80];
	if (!s)
		return def;
	snprintf(pat, sizeof pat, "\"%s\":", key);
	const char *p = strstr(s, pat);
	if (p) {
		p += strlen(pat);
	} else { /* key=value or key = value lines */
		size_t n = strlen(key);
		for (const char *l = s; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
			const char *q = l + n;
			if (strncmp(l, key, n))
				continue;
			while (*q == ' ')
				q++;
			if (*q == '=') {
				p = q + 1;
				break;
			}
		}
		if (!p)
			return def;
	}
	while (*p == ' ')
		p++;
	char *end;
	double v = strtod(p, &end);
	return end == p ? def : v;
}

typedef struct state {
	char *up, *metrics, *eval, *champion, *manifest, *serve, *config;
	int up_alive;
	unsigned model_version;
	fv_store_meta meta;
	int have_meta;
	double eta_s;
	fv_live live[FV_LIVE_MAX];
	int nlive;
} state;

/* The daemon named name's live answer, or NULL. */
static const fv_live *live_of(const state *st, const char *name, size_t len)
{
	for (int i = 0; i < st->nlive; i++)
		if (strlen(st->live[i].name) == len && !strncmp(st->live[i].name, name, len))
			return st->live[i].st ? &st->live[i] : NULL;
	return NULL;
}

/* Ask the status endpoint of every daemon in up.json that has one. */
static void gather_live(const char *S, state *st, const sopts *o)
{
	const char *p = st->up && st->up_alive ? strstr(st->up, "\"daemons\":[") : NULL;
	while (p && (p = strstr(p, "{\"name\":\"")) && st->nlive < FV_LIVE_MAX) {
		fv_live *l = &st->live[st->nlive];
		char path[2400];
		p += 9;
		memset(l, 0, sizeof *l);
		snprintf(l->name, sizeof l->name, "%.*s", (int)strcspn(p, "\""), p);
		snprintf(path, sizeof path, "%s/status-%s.sock", S, l->name);
		if (access(path, F_OK) || strlen(path) + 7 > sizeof l->endpoint)
			continue;
		snprintf(l->endpoint, sizeof l->endpoint, "ipc://%.500s", path);
		st->nlive++;
	}
	if (st->nlive)
		fv_live_ask(st->live, st->nlive, (int)o->timeout_ms, o->curve_key, o->curve_server_key);
}

static void gather(const char *S, state *st)
{
	char p[2300], link[256];
	snprintf(p, sizeof p, "%s/up.json", S), st->up = slurp(p);
	snprintf(p, sizeof p, "%s/run/metrics.jsonl", S), st->metrics = last_line(p);
	snprintf(p, sizeof p, "%s/run/eval.jsonl", S), st->eval = last_line(p);
	snprintf(p, sizeof p, "%s/run/champion", S), st->champion = slurp(p);
	snprintf(p, sizeof p, "%s/run/config", S), st->config = slurp(p);
	snprintf(p, sizeof p, "%s/models/current/manifest", S), st->manifest = slurp(p);
	snprintf(p, sizeof p, "%s/serve.json", S), st->serve = slurp(p);
	snprintf(p, sizeof p, "%s/models/current", S);
	ssize_t n = readlink(p, link, sizeof link - 1);
	if (n > 1) {
		link[n] = 0;
		st->model_version = (unsigned)strtoul(link + 1, NULL, 10);
	}
	int pid = (int)num(st->up, "pid", 0);
	st->up_alive = pid > 0 && num(st->up, "running", 0) == 0 && strstr(st->up, "\"running\":true") &&
		       (kill(pid, 0) == 0 || errno == EPERM);
	fv_store *s = NULL;
	snprintf(p, sizeof p, "%s/db", S);
	if (!access(p, F_OK) && !fv_store_open(p, FV_STORE_RDONLY, 0, &s)) {
		st->have_meta = !fv_store_meta_get(s, &st->meta);
		fv_store_close(&s);
	}
	/* ETA from the run's own config: steps left at the current speed */
	double epochs = num(st->config, "epochs", 0), batch = num(st->config, "batch", 0);
	double max_steps = num(st->config, "max-steps", 0), ips = num(st->metrics, "img_per_s", 0);
	double step = num(st->metrics, "step", 0);
	st->eta_s = -1;
	if (st->have_meta && batch > 0 && ips > 0 && st->meta.split[0]) {
		double total = epochs * (double)(st->meta.split[0] / (uint64_t)batch);
		if (max_steps > 0 && (total <= 0 || max_steps < total))
			total = max_steps;
		st->eta_s = total > step ? (total - step) * batch / ips : 0;
	}
}

/* Is this daemon's pid alive (fovea up may have died without cleaning up)? */
static const char *daemon_state(const state *st, const char *obj, char *buf, size_t cap)
{
	const char *s = strstr(obj, "\"state\":\"");
	int pid = (int)num(obj, "pid", 0);
	if (!s)
		return "?";
	s += 9;
	snprintf(buf, cap, "%.*s", (int)strcspn(s, "\""), s);
	if (!st->up_alive || (!strcmp(buf, "up") && pid > 0 && kill(pid, 0) && errno == ESRCH))
		snprintf(buf, cap, "down");
	return buf;
}

static void print_json(const state *st, const char *S)
{
	char b[64];
	printf("{\"dir\":\"%s\",\"running\":%s,\"daemons\":[", S, st->up_alive ? "true" : "false");
	const char *p = st->up ? strstr(st->up, "\"daemons\":[") : NULL;
	int first = 1;
	while (p && (p = strstr(p, "{\"name\":\""))) {
		const char *end = strchr(p, '}');
		char obj[512];
		snprintf(obj, sizeof obj, "%.*s", (int)(end ? end - p : 0), p);
		const char *name = obj + 9;
		printf("%s{\"name\":\"%.*s\",\"state\":\"%s\",\"pid\":%d,\"since\":%.0f,\"restarts\":%.0f",
		       first ? "" : ",", (int)strcspn(name, "\""), name, daemon_state(st, obj, b, sizeof b),
		       (int)num(obj, "pid", 0), num(obj, "since", 0), num(obj, "restarts", 0));
		const fv_live *l = live_of(st, name, strcspn(name, "\""));
		if (l) {
			printf(",\"live\":{");
			fv_live_json_daemon(l, 0, stdout);
			printf("}");
		}
		printf("}");
		first = 0;
		p = end ? end : p + 1;
	}
	printf("]");
	if (st->have_meta)
		printf(",\"dataset\":{\"version\":%llu,\"records\":%llu,\"train\":%llu,\"val\":%llu,"
		       "\"test\":%llu,\"classes\":%u,\"rejected\":%llu}",
		       (unsigned long long)st->meta.version, (unsigned long long)st->meta.records,
		       (unsigned long long)st->meta.split[0], (unsigned long long)st->meta.split[1],
		       (unsigned long long)st->meta.split[2], st->meta.classes,
		       (unsigned long long)st->meta.rejected);
	if (st->metrics)
		printf(",\"training\":%s,\"eta_s\":%.0f", st->metrics, st->eta_s);
	if (st->eval)
		printf(",\"evaluation\":{\"step\":%.0f,\"top1\":%.6f,\"top5\":%.6f,\"loss\":%.6f}",
		       num(st->eval, "step", 0), num(st->eval, "top1", 0), num(st->eval, "top5", 0),
		       num(st->eval, "loss", 0));
	if (st->champion)
		printf(",\"champion\":{\"step\":%.0f,\"top1\":%.6f}", num(st->champion, "step", 0),
		       num(st->champion, "top1", 0));
	if (st->model_version)
		printf(",\"model\":{\"version\":%u,\"top1_fp32\":%.6f,\"top1_int8\":%.6f,\"size_int8\":%.0f}",
		       st->model_version, num(st->manifest, "top1_fp32", 0), num(st->manifest, "top1_int8", 0),
		       num(st->manifest, "size_fovea", 0));
	if (st->serve)
		printf(",\"serve\":{\"requests\":%.0f,\"rate\":%.2f,\"model_version\":%.0f}",
		       num(st->serve, "requests", 0), num(st->serve, "rate", 0), num(st->serve, "model_version", 0));
	char run[2300];
	snprintf(run, sizeof run, "%s/run", S);
	printf(",\"rounds\":");
	fv_rounds_show(run, FV_ROUNDS_JSON, 0, stdout);
	printf("}\n");
}

static void print_table(const state *st, const char *S)
{
	char b[64], ago[32];
	printf("fovea at %s: %s\n\n%-12s %-10s %-8s %-8s %s\n", S, st->up_alive ? "running" : "not running",
	       "DAEMON", "STATE", "PID", "SINCE", "RESTARTS");
	const char *p = st->up ? strstr(st->up, "\"daemons\":[") : NULL;
	while (p && (p = strstr(p, "{\"name\":\""))) {
		const char *end = strchr(p, '}');
		char obj[512];
		snprintf(obj, sizeof obj, "%.*s", (int)(end ? end - p : 0), p);
		fv_up_since(ago, sizeof ago, (long long)num(obj, "since", 0));
		printf("%-12.*s %-10s %-8d %-8s %.0f\n", (int)strcspn(obj + 9, "\""), obj + 9,
		       daemon_state(st, obj, b, sizeof b), (int)num(obj, "pid", 0), ago, num(obj, "restarts", 0));
		p = end ? end : p + 1;
	}
	printf("\n");
	if (st->have_meta)
		printf("dataset     v%llu: %llu images (train %llu, val %llu), %u classes, %llu rejected\n",
		       (unsigned long long)st->meta.version, (unsigned long long)st->meta.records,
		       (unsigned long long)st->meta.split[0], (unsigned long long)st->meta.split[1],
		       st->meta.classes, (unsigned long long)st->meta.rejected);
	else
		printf("dataset     none yet (drop images into %s/inbox/<class>/)\n", S);
	if (st->metrics) {
		printf("training    epoch %.0f step %.0f loss %.4f lr %.4g %.0f img/s, %.0f workers",
		       num(st->metrics, "epoch", 0), num(st->metrics, "step", 0), num(st->metrics, "loss", 0),
		       num(st->metrics, "lr", 0), num(st->metrics, "img_per_s", 0), num(st->metrics, "workers", 0));
		if (st->eta_s >= 0)
			printf(", ETA %.0fm%02.0fs", st->eta_s / 60 - 0.5 < 0 ? 0 : (double)((long)st->eta_s / 60),
			       (double)((long)st->eta_s % 60));
		printf("\n");
	} else {
		printf("training    not started\n");
	}
	fv_live_workers(st->live, st->nlive, stdout); /* each worker, when the trainer answers */
	if (st->eval)
		printf("evaluation  step %.0f top-1 %.2f%% top-5 %.2f%%\n", num(st->eval, "step", 0),
		       100 * num(st->eval, "top1", 0), 100 * num(st->eval, "top5", 0));
	if (st->champion)
		printf("champion    step %.0f top-1 %.2f%%\n", num(st->champion, "step", 0),
		       100 * num(st->champion, "top1", 0));
	if (st->model_version)
		printf("model       v%u: INT8 top-1 %.2f%% (FP32 %.2f%%), %.0f bytes\n", st->model_version,
		       100 * num(st->manifest, "top1_int8", 0), 100 * num(st->manifest, "top1_fp32", 0),
		       num(st->manifest, "size_fovea", 0));
	else
		printf("model       none exported yet\n");
	if (st->serve)
		printf("serve       %.0f requests, %.1f/s, model v%.0f, http port %.0f\n",
		       num(st->serve, "requests", 0), num(st->serve, "rate", 0), num(st->serve, "model_version", 0),
		       num(st->serve, "http_port", 0));
	for (int i = 0; i < st->nlive; i++)
		if (st->live[i].st)
			fv_live_line(&st->live[i], stdout);
	/* continual retraining: the last rounds with their verdicts */
	char run[2300];
	snprintf(run, sizeof run, "%s/run", S);
	fv_rounds_show(run, FV_ROUNDS_TEXT, 5, stdout);
}

int fv_status_main(int argc, char **argv)
{
	sopts o = { 0 };
	state st = { 0 };
	char S[2048];
	int npos = 0, help = 0;
	fv_cfg_defaults(opts, &o);
	if (fv_cfg_parse_args(opts, &o, argc, argv, &npos, &help) || help || npos) {
		if (!help)
			fprintf(stderr, "fovea status: %s\n", npos ? "unexpected argument" : fv_err_msg(FV_E_CONFIG));
		fprintf(help ? stdout : stderr, "usage: fovea status [--dir STATE] [--json]\n"
			"       fovea status --endpoints NAME=ENDPOINT[,NAME=ENDPOINT...] [--json] [-c FILE]\n\n");
		fv_cfg_help(opts, help ? stdout : stderr, 0);
		fv_cfg_free(opts, &o);
		return help ? 0 : 2;
	}
	if (*o.endpoints) {
		int rc = fv_status_endpoints(o.endpoints, (int)o.timeout_ms, o.curve_key, o.curve_server_key, o.json);
		fv_cfg_free(opts, &o);
		return rc;
	}
	fv_up_state_dir(o.dir, S, sizeof S);
	gather(S, &st);
	gather_live(S, &st, &o);
	if (!st.up && !st.have_meta) {
		fprintf(stderr, "fovea status: %s: no fovea up state here (give --dir)\n", S);
		fv_cfg_free(opts, &o);
		return 1;
	}
	if (o.json)
		print_json(&st, S);
	else
		print_table(&st, S);
	free(st.up), free(st.metrics), free(st.eval), free(st.champion), free(st.manifest);
	free(st.serve), free(st.config);
	fv_live_free(st.live, st.nlive);
	fv_cfg_free(opts, &o);
	return 0;
}
