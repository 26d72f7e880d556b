/* up/status_ep.c — `fovea status` from the daemons themselves: each
 * daemon's status endpoint (lib/fv_status.h) is asked at once, within one
 * timeout, and its figures ("group.name" = value) are shown as the same
 * table and JSON as the durable-state view (up/status.c). A daemon that
 * does not answer is down. Also gives the local view its live figures
 * (fovea up binds ipc://STATE/status-NAME.sock for each daemon). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "fv_error.h"
#include "fv_json.h"
#include "fv_status.h"
#include "up/up.h"

/* "a=ep,b=ep" into d[] (names and endpoints point into buf). */
int fv_live_parse(char *buf, fv_live *d, int max)
{
	int n = 0;
	for (char *tok = strtok(buf, ", \t\n"); tok; tok = strtok(NULL, ", \t\n")) {
		char *eq = strchr(tok, '=');
		if (!eq || eq == tok || !eq[1])
			return fv_err_set(FV_E_CONFIG, "--endpoints: '%s' is not NAME=ENDPOINT", tok);
		if (n == max)
			return fv_err_set(FV_E_CONFIG, "--endpoints: more than %d daemons", max);
		*eq = 0;
		memset(&d[n], 0, sizeof d[n]);
		snprintf(d[n].name, sizeof d[n].name, "%s", tok);
		snprintf(d[n].endpoint, sizeof d[n].endpoint, "%s", eq + 1);
		n++;
	}
	if (!n)
		return fv_err_set(FV_E_CONFIG, "--endpoints: give NAME=ENDPOINT[,NAME=ENDPOINT...]");
	return n;
}

void fv_live_ask(fv_live *d, int n, int timeout_ms, const char *curve_key, const char *server_pub)
{
	void *ctx = zmq_ctx_new();
	const char *eps[FV_LIVE_MAX];
	Fovea__DaemonStatus *out[FV_LIVE_MAX];
	int rcs[FV_LIVE_MAX];
	for (int i = 0; i < n; i++)
		eps[i] = d[i].endpoint;
	if (!ctx || fv_status_query_many(ctx, (size_t)n, eps, timeout_ms, curve_key, server_pub, out, rcs)) {
		for (int i = 0; i < n; i++)
			snprintf(d[i].error, sizeof d[i].error, "cannot ask: out of memory");
	} else {
		for (int i = 0; i < n; i++) {
			d[i].st = rcs[i] ? NULL : out[i];
			if (rcs[i]) {
				if (out[i])
					fovea__daemon_status__free_unpacked(out[i], NULL);
				snprintf(d[i].error, sizeof d[i].error, "%s", fv_err_msg(rcs[i]));
			}
		}
	}
	if (ctx)
		zmq_ctx_term(ctx);
}

void fv_live_free(fv_live *d, int n)
{
	for (int i = 0; i < n; i++)
		if (d[i].st)
			fovea__daemon_status__free_unpacked(d[i].st, NULL);
}

/* The first answering daemon's figure named key. */
static const Fovea__StatusFigure *fig(const fv_live *d, int n, const char *key)
{
	for (int i = 0; i < n; i++) {
		const Fovea__StatusFigure *f = fv_status_find(d[i].st, key);
		if (f)
			return f;
	}
	return NULL;
}

static double num(const fv_live *d, int n, const char *key, double def)
{
	const Fovea__StatusFigure *f = fig(d, n, key);
	return f && f->numeric ? f->number : def;
}

static void json_value(FILE *o, const Fovea__StatusFigure *f)
{
	if (f->numeric && f->number == f->number && f->number < 1e300 && f->number > -1e300)
		fprintf(o, "%.10g", f->number);
	else if (f->numeric)
		fprintf(o, "null");
	else
		fv_json_fputs(o, f->text);
}

/* {"key":value,...} of st's figures whose group is `group` (NULL: all, with
 * their full keys); returns how many were written. */
static int json_group(FILE *o, const Fovea__DaemonStatus *st, const char *group, int first)
{
	size_t gl = group ? strlen(group) : 0;
	int k = 0;
	for (size_t i = 0; st && i < st->n_figures; i++) {
		const char *key = st->figures[i]->key;
		if (group && (strncmp(key, group, gl) || key[gl] != '.'))
			continue;
		fprintf(o, "%s", first && !k ? "" : ",");
		fv_json_fputs(o, group ? key + gl + 1 : key);
		fputc(':', o);
		json_value(o, st->figures[i]);
		k++;
	}
	return k;
}

void fv_live_json_daemon(const fv_live *l, int with_state, FILE *o)
{
	if (with_state)
		fprintf(o, "\"state\":\"%s\",", l->st ? "up" : "down");
	if (!l->st) {
		fprintf(o, "\"error\":");
		fv_json_fputs(o, l->error);
		return;
	}
	fprintf(o, "\"pid\":%d,\"host\":", l->st->pid);
	fv_json_fputs(o, l->st->host);
	fprintf(o, ",\"since\":%lld,\"age_ms\":%u,\"figures\":{", (long long)l->st->started_at, l->st->age_ms);
	json_group(o, l->st, NULL, 1);
	fputc('}', o);
}

static const char *const groups[] = { "dataset", "ingest", "training", "trainer", "workers", "worker", "evaluation",
				      "evaluator", "champion", "model", "exporter", "serve" };

static void print_json(const fv_live *d, int n, int up)
{
	printf("{\"endpoints\":true,\"answering\":%d,\"daemons\":[", up);
	for (int i = 0; i < n; i++) {
		printf("%s{\"name\":", i ? "," : "");
		fv_json_fputs(stdout, d[i].name);
		printf(",\"endpoint\":");
		fv_json_fputs(stdout, d[i].endpoint);
		putchar(',');
		fv_live_json_daemon(&d[i], 1, stdout);
		putchar('}');
	}
	putchar(']');
	/* the groups, as the durable view has them: first daemon with one wins */
	for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
		for (int i = 0; i < n; i++) {
			char pat[32];
			snprintf(pat, sizeof pat, "%s.", groups[g]);
			int has = 0;
			for (size_t k = 0; d[i].st && k < d[i].st->n_figures && !has; k++)
				has = !strncmp(d[i].st->figures[k]->key, pat, strlen(pat));
			if (!has)
				continue;
			printf(",\"%s\":{", groups[g]);
			json_group(stdout, d[i].st, groups[g], 1);
			putchar('}');
			break;
		}
	printf("}\n");
}

void fv_up_since(char *buf, size_t cap, long long t)
{
	long long s = (long long)time(NULL) - t;
	if (s < 120)
		snprintf(buf, cap, "%llds", s);
	else if (s < 7200)
		snprintf(buf, cap, "%lldm", s / 60);
	else
		snprintf(buf, cap, "%lldh%02lldm", s / 3600, s / 60 % 60);
}

/* One line of st's own figures (its daemon's group and workers.*). */
void fv_live_line(const fv_live *l, FILE *o)
{
	size_t nl = strlen(l->name);
	fprintf(o, "%-11s %s:", "live", l->name);
	for (size_t i = 0; l->st && i < l->st->n_figures; i++) {
		const Fovea__StatusFigure *f = l->st->figures[i];
		if (strncmp(f->key, "workers.", 8) && (strncmp(f->key, l->name, nl) || f->key[nl] != '.'))
			continue;
		if (f->numeric)
			fprintf(o, " %s=%.4g", f->key, f->number);
		else
			fprintf(o, " %s=%s", f->key, f->text);
	}
	fprintf(o, " (%.1f s old)\n", l->st ? l->st->age_ms / 1000.0 : 0);
}

void fv_live_workers(const fv_live *d, int n, FILE *o)
{
	for (int i = 0; i < n; i++)
		for (size_t k = 0; d[i].st && k < d[i].st->n_figures; k++) {
			const char *key = d[i].st->figures[k]->key;
			size_t kl = strlen(key), tl = strlen(".img_per_s");
			if (strncmp(key, "worker.", 7) || kl <= 7 + tl || strcmp(key + kl - tl, ".img_per_s"))
				continue;
			char name[96], other[128];
			snprintf(name, sizeof name, "%.*s", (int)(kl - 7 - tl), key + 7);
			snprintf(other, sizeof other, "worker.%s.samples", name);
			const Fovea__StatusFigure *sm = fv_status_find(d[i].st, other);
			snprintf(other, sizeof other, "worker.%s.capacity", name);
			const Fovea__StatusFigure *cp = fv_status_find(d[i].st, other);
			fprintf(o, "  worker    %-24s %7.0f img/s, %.0f samples, capacity %.0f\n", name,
				d[i].st->figures[k]->number, sm ? sm->number : 0, cp ? cp->number : 0);
		}
}

static void print_table(const fv_live *d, int n, int up, int timeout_ms)
{
	char since[32];
	printf("fovea via endpoints: %d of %d daemons answering (timeout %d ms)\n\n", up, n, timeout_ms);
	printf("%-12s %-6s %-8s %-20s %-8s %s\n", "DAEMON", "STATE", "PID", "HOST", "SINCE", "ENDPOINT");
	for (int i = 0; i < n; i++) {
		const Fovea__DaemonStatus *st = d[i].st;
		if (st)
			fv_up_since(since, sizeof since, st->started_at);
		printf("%-12s %-6s %-8d %-20.20s %-8s %s\n", d[i].name, st ? "up" : "down", st ? st->pid : 0,
		       st ? st->host : "-", st ? since : "-", d[i].endpoint);
		if (!st)
			printf("%-12s %s\n", "", d[i].error);
	}
	printf("\n");
	if (fig(d, n, "dataset.version"))
		printf("dataset     v%.0f: %.0f images (train %.0f, val %.0f), %.0f classes, %.0f rejected\n",
		       num(d, n, "dataset.version", 0), num(d, n, "dataset.records", 0),
		       num(d, n, "dataset.train", 0), num(d, n, "dataset.val", 0), num(d, n, "dataset.classes", 0),
		       num(d, n, "dataset.rejected", 0));
	const Fovea__StatusFigure *inbox = fig(d, n, "ingest.inbox"), *cerr = fig(d, n, "ingest.commit_error");
	if (inbox && !inbox->numeric) {
		printf("ingest      inbox %s: %.0f pending, %.0f stuck; this run %.0f added, %.0f duplicates, "
		       "%.0f rejected", inbox->text, num(d, n, "ingest.pending", 0), num(d, n, "ingest.stuck", 0),
		       num(d, n, "ingest.added", 0), num(d, n, "ingest.duplicates", 0),
		       num(d, n, "ingest.rejected", 0));
		if (cerr && !cerr->numeric)
			printf("; commits failing: %s, next try in %.0f s", cerr->text,
			       num(d, n, "ingest.retry_in_s", 0));
		printf("\n");
	}
	const Fovea__StatusFigure *phase = fig(d, n, "trainer.phase");
	if (fig(d, n, "training.loss")) {
		double eta = num(d, n, "training.eta_s", -1);
		printf("training    epoch %.0f step %.0f loss %.4f lr %.4g %.0f img/s, %.0f workers (%.0f img/s)",
		       num(d, n, "training.epoch", 0), num(d, n, "training.step", 0), num(d, n, "training.loss", 0),
		       num(d, n, "training.lr", 0), num(d, n, "training.img_per_s", 0),
		       num(d, n, "workers.count", 0), num(d, n, "workers.img_per_s", 0));
		if (eta >= 0)
			printf(", ETA %ldm%02lds", (long)eta / 60, (long)eta % 60);
		printf(phase ? ": %s\n" : "\n", phase ? phase->text : "");
	} else if (phase) {
		printf("training    %s, %.0f workers\n", phase->text, num(d, n, "workers.count", 0));
	}
	fv_live_workers(d, n, stdout);
	if (fig(d, n, "evaluation.top1"))
		printf("evaluation  step %.0f top-1 %.2f%% top-5 %.2f%%\n", num(d, n, "evaluation.step", 0),
		       100 * num(d, n, "evaluation.top1", 0), 100 * num(d, n, "evaluation.top5", 0));
	if (fig(d, n, "champion.top1"))
		printf("champion    step %.0f top-1 %.2f%%\n", num(d, n, "champion.step", 0),
		       100 * num(d, n, "champion.top1", 0));
	if (fig(d, n, "model.version")) {
		const Fovea__StatusFigure *st = fig(d, n, "exporter.state");
		printf("model       v%.0f (step %.0f)%s%s\n", num(d, n, "model.version", 0), num(d, n, "model.step", 0),
		       st ? ", exporter " : "", st ? st->text : "");
	}
	if (fig(d, n, "serve.requests"))
		printf("serve       %.0f requests, %.1f/s, model v%.0f\n", num(d, n, "serve.requests", 0),
		       num(d, n, "serve.rate", 0), num(d, n, "serve.model_version", 0));
}

int fv_status_endpoints(const char *list, int timeout_ms, const char *curve_key, const char *server_pub,
			int json)
{
	fv_live d[FV_LIVE_MAX];
	char *buf = strdup(list);
	int n = buf ? fv_live_parse(buf, d, FV_LIVE_MAX) : FV_E_INTERNAL, up = 0;
	free(buf);
	if (n < 0) {
		fprintf(stderr, "fovea status: %s\n", fv_err_msg(n));
		return 2;
	}
	fv_live_ask(d, n, timeout_ms, curve_key, server_pub);
	for (int i = 0; i < n; i++)
		up += d[i].st != NULL;
	if (json)
		print_json(d, n, up);
	else
		print_table(d, n, up, timeout_ms);
	fv_live_free(d, n);
	return up ? 0 : 1;
}
