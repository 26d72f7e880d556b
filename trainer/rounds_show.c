/* trainer/rounds_show.c — `fovea-trainer rounds RUNDIR [--json]`: the
 * continual rounds of a run (RUNDIR/rounds.jsonl, written by the trainer)
 * with the evaluator's verdicts (RUNDIR/verdicts.jsonl): when, how much new
 * data, and whether the champion was kept or replaced, and why. A round is
 * "replaced" when any of its checkpoints replaced the champion (the last
 * such verdict is shown), "kept" when its checkpoints were judged and none
 * did, "pending" before the evaluator got to it. */
#include "trainer/trainer.h"
#include "trainer/rounds.h"
#include "fv_error.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct shown {
	uint64_t round, time, from, to, nnew, nreplay, steps;
	int ended;
	char ckpt[512];
	char verdict[16], why[512], judged[512];
	double top1, champ_top1, top1_old, top1_new;
	uint64_t n_old, n_new;
} shown;

static int get_u64(const char *l, const char *key, uint64_t *v)
{
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\":", key);
	const char *p = strstr(l, pat);
	if (!p)
		return 0;
	*v = strtoull(p + strlen(pat), NULL, 10);
	return 1;
}

static double get_num(const char *l, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\":", key);
	const char *p = strstr(l, pat);
	return p ? strtod(p + strlen(pat), NULL) : NAN;
}

/* A string value, unescaped, into out ("" if absent). */
static void get_str(const char *l, const char *key, char *out, size_t cap)
{
	char pat[64];
	size_t k = 0;
	snprintf(pat, sizeof pat, "\"%s\":\"", key);
	const char *p = strstr(l, pat);
	out[0] = 0;
	if (!p)
		return;
	for (p += strlen(pat); *p && *p != '"' && k + 1 < cap; p++) {
		if (*p == '\\' && p[1])
			p++;
		out[k++] = *p;
	}
	out[k] = 0;
}

static shown *find_round(shown **v, size_t *n, uint64_t round)
{
	for (size_t i = 0; i < *n; i++)
		if ((*v)[i].round == round)
			return &(*v)[i];
	shown *m = realloc(*v, (*n + 1) * sizeof *m);
	if (!m)
		return NULL;
	*v = m;
	memset(&m[*n], 0, sizeof *m);
	m[*n].round = round;
	snprintf(m[*n].verdict, sizeof m[*n].verdict, "pending");
	m[*n].top1 = m[*n].champ_top1 = m[*n].top1_old = m[*n].top1_new = NAN;
	return &m[(*n)++];
}

static void read_rounds(const char *path, shown **v, size_t *n)
{
	char line[16384];
	FILE *f = fopen(path, "re");
	while (f && fgets(line, sizeof line, f)) {
		uint64_t round;
		int end = strstr(line, "\"event\":\"end\"") != NULL;
		if (!strchr(line, '\n') || !(end || strstr(line, "\"event\":\"start\"")) ||
		    !get_u64(line, "round", &round))
			continue;
		shown *s = find_round(v, n, round);
		if (!s)
			break;
		if (!end)
			get_u64(line, "time", &s->time); /* when the round started */
		if (end) {
			s->ended = 1;
			s->steps = 0;
			get_u64(line, "steps", &s->steps);
			get_str(line, "checkpoint", s->ckpt, sizeof s->ckpt);
		} else {
			s->ended = 0;
		}
		get_u64(line, "from_key", &s->from);
		get_u64(line, "to_key", &s->to);
		get_u64(line, "new", &s->nnew);
		get_u64(line, "replay", &s->nreplay);
	}
	if (f)
		fclose(f);
}

static void read_verdicts(const char *path, shown *v, size_t n)
{
	char line[16384], verdict[16];
	FILE *f = fopen(path, "re");
	while (f && fgets(line, sizeof line, f)) {
		uint64_t round;
		if (!strchr(line, '\n') || !get_u64(line, "round", &round))
			continue;
		shown *s = NULL;
		for (size_t i = 0; i < n; i++)
			if (v[i].round == round)
				s = &v[i];
		get_str(line, "verdict", verdict, sizeof verdict);
		/* a replacement outranks later "kept" verdicts of the same round */
		if (!s || (!strcmp(s->verdict, "replaced") && strcmp(verdict, "replaced")))
			continue;
		snprintf(s->verdict, sizeof s->verdict, "%s", verdict);
		get_str(line, "why", s->why, sizeof s->why);
		get_str(line, "checkpoint", s->judged, sizeof s->judged);
		s->top1 = get_num(line, "top1");
		s->champ_top1 = get_num(line, "champion_top1");
		s->top1_old = get_num(line, "top1_old");
		s->top1_new = get_num(line, "top1_new");
		get_u64(line, "n_old", &s->n_old);
		get_u64(line, "n_new", &s->n_new);
	}
	if (f)
		fclose(f);
}

static void num(FILE *o, const char *key, double v)
{
	if (isnan(v))
		fprintf(o, ",\"%s\":null", key);
	else
		fprintf(o, ",\"%s\":%.6f", key, v);
}

static void print_json(FILE *out, const shown *s)
{
	fprintf(out, "{\"round\":%llu,\"time\":%llu,\"from_key\":%llu,\"to_key\":%llu,\"new\":%llu,"
		"\"replay\":%llu,\"state\":\"%s\",\"steps\":%llu,\"checkpoint\":\"%s\",\"verdict\":\"%s\","
		"\"why\":\"%s\",\"judged\":\"%s\"", (unsigned long long)s->round, (unsigned long long)s->time,
		(unsigned long long)s->from, (unsigned long long)s->to, (unsigned long long)s->nnew,
		(unsigned long long)s->nreplay, s->ended ? "done" : "training", (unsigned long long)s->steps,
		s->ckpt, s->verdict, s->why, s->judged);
	num(out, "top1", s->top1);
	num(out, "champion_top1", s->champ_top1);
	num(out, "top1_old", s->top1_old);
	num(out, "top1_new", s->top1_new);
	fprintf(out, ",\"n_old\":%llu,\"n_new\":%llu}", (unsigned long long)s->n_old,
		(unsigned long long)s->n_new);
}

static void print_text(FILE *out, const shown *s)
{
	char when[32] = "?";
	time_t t = (time_t)s->time;
	struct tm tm;
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%SZ", &tm);
	fprintf(out, "round %llu  %s  %llu new + %llu replayed (keys %llu..%llu)  %s",
	       (unsigned long long)s->round, when, (unsigned long long)s->nnew, (unsigned long long)s->nreplay,
	       (unsigned long long)s->from, (unsigned long long)(s->to ? s->to - 1 : 0),
	       s->ended ? "trained" : "training");
	fprintf(out, "  -> %s", s->verdict);
	if (*s->why)
		fprintf(out, ": %s", s->why);
	if (!isnan(s->top1_old) || !isnan(s->top1_new))
		fprintf(out, "  [val top-1 old %.4f (%llu), new %.4f (%llu)]", s->top1_old, (unsigned long long)s->n_old,
		       s->top1_new, (unsigned long long)s->n_new);
	fputc('\n', out);
}

int fv_trainer_rounds(int argc, char **argv)
{
	const char *dir = NULL;
	int json = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!dir && argv[i][0] != '-')
			dir = argv[i];
		else {
			fprintf(stderr, "usage: fovea-trainer rounds RUNDIR [--json]\n");
			return 2;
		}
	}
	if (!dir) {
		fprintf(stderr, "usage: fovea-trainer rounds RUNDIR [--json]\n");
		return 2;
	}
	if (!json && fv_rounds_show(dir, FV_ROUNDS_TEXT, 0, stdout) == 0)
		printf("no continual rounds in %s\n", dir);
	if (json)
		fv_rounds_show(dir, FV_ROUNDS_JSONL, 0, stdout);
	return 0;
}

int fv_rounds_show(const char *rundir, enum fv_rounds_format fmt, int last, FILE *out)
{
	char path[4200];
	shown *v = NULL;
	size_t n = 0;
	snprintf(path, sizeof path, "%s/rounds.jsonl", rundir);
	read_rounds(path, &v, &n);
	snprintf(path, sizeof path, "%s/verdicts.jsonl", rundir);
	read_verdicts(path, v, n);
	size_t from = last > 0 && n > (size_t)last ? n - (size_t)last : 0;
	if (fmt == FV_ROUNDS_JSON)
		fputc('[', out);
	for (size_t i = from; i < n; i++) {
		if (fmt == FV_ROUNDS_TEXT) {
			print_text(out, &v[i]);
			continue;
		}
		if (fmt == FV_ROUNDS_JSON && i > from)
			fputc(',', out);
		print_json(out, &v[i]);
		if (fmt == FV_ROUNDS_JSONL)
			fputc('\n', out);
	}
	if (fmt == FV_ROUNDS_JSON)
		fputc(']', out);
	free(v);
	return (int)n;
}
