/* fv_config.c — see fv_config.h. */
#include "fv_config.h"
#include "fv_error.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FIELD(cfg, o, T) ((T *)((char *)(cfg) + (o)->offset))

const fv_cfg_opt *fv_cfg_find(const fv_cfg_opt *t, const char *name)
{
	for (; t->name; t++)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

static int choice_index(const char *choices, const char *v)
{
	size_t n = strlen(v);
	int i = 0;
	for (const char *p = choices; *p; i++) {
		const char *e = strchr(p, '|');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && !strncmp(p, v, n))
			return i;
		if (!e)
			break;
		p = e + 1;
	}
	return -1;
}

static const char *choice_name(const char *choices, int idx, char *buf, size_t cap)
{
	const char *p = choices;
	for (int i = 0; i < idx && p; i++) {
		p = strchr(p, '|');
		if (p)
			p++;
	}
	if (!p)
		return "?";
	const char *e = strchr(p, '|');
	size_t len = e ? (size_t)(e - p) : strlen(p);
	if (len >= cap)
		len = cap - 1;
	memcpy(buf, p, len);
	buf[len] = 0;
	return buf;
}

static int bounded(const fv_cfg_opt *o)
{
	return o->min <= o->max && !(o->min == 0 && o->max == 0);
}

static int set_value(const fv_cfg_opt *o, void *cfg, const char *v, const char *where)
{
	char *end;
	errno = 0;
	switch (o->type) {
	case FV_CFG_INT: {
		long x = strtol(v, &end, 0);
		if (errno || end == v || *end)
			return fv_err_set(FV_E_CONFIG, "%s: %s: '%s' is not an integer", where, o->name, v);
		if (bounded(o) && (x < o->min || x > o->max))
			return fv_err_set(FV_E_CONFIG, "%s: %s: %ld is outside [%g, %g]", where, o->name, x, o->min, o->max);
		*FIELD(cfg, o, long) = x;
		return 0;
	}
	case FV_CFG_DOUBLE: {
		double x = strtod(v, &end);
		if (errno || end == v || *end || !isfinite(x))
			return fv_err_set(FV_E_CONFIG, "%s: %s: '%s' is not a number", where, o->name, v);
		if (bounded(o) && (x < o->min || x > o->max))
			return fv_err_set(FV_E_CONFIG, "%s: %s: %g is outside [%g, %g]", where, o->name, x, o->min, o->max);
		*FIELD(cfg, o, double) = x;
		return 0;
	}
	case FV_CFG_BOOL:
		if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"))
			*FIELD(cfg, o, int) = 1;
		else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off"))
			*FIELD(cfg, o, int) = 0;
		else
			return fv_err_set(FV_E_CONFIG, "%s: %s: '%s' is not a boolean (true/false)", where, o->name, v);
		return 0;
	case FV_CFG_STR: {
		char *s = strdup(v), **f = FIELD(cfg, o, char *);
		if (!s)
			return ENOMEM;
		free(*f);
		*f = s;
		return 0;
	}
	case FV_CFG_ENUM: {
		int i = choice_index(o->choices, v);
		if (i < 0)
			return fv_err_set(FV_E_CONFIG, "%s: %s: '%s' is not one of %s", where, o->name, v, o->choices);
		*FIELD(cfg, o, int) = i;
		return 0;
	}
	}
	return FV_E_INTERNAL;
}

int fv_cfg_set(const fv_cfg_opt *t, void *cfg, const char *name, const char *value,
	       const char *where)
{
	const fv_cfg_opt *o = fv_cfg_find(t, name);
	if (!o)
		return fv_err_set(FV_E_CONFIG, "%s: unknown option '%s'", where, name);
	return set_value(o, cfg, value, where);
}

int fv_cfg_defaults(const fv_cfg_opt *t, void *cfg)
{
	for (; t->name; t++) {
		int rc;
		if (t->type == FV_CFG_STR) {
			/* cfg is not initialised yet: the field holds garbage,
			 * not a string set_value may free */
			*FIELD(cfg, t, char *) = NULL;
			if (!t->def)
				continue;
		}
		rc = set_value(t, cfg, t->def ? t->def : (t->type == FV_CFG_ENUM ? "" : "0"), "default");
		if (t->type == FV_CFG_ENUM && !t->def) {
			*FIELD(cfg, t, int) = 0;
			rc = 0;
		}
		if (rc)
			return rc;
	}
	return 0;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

int fv_cfg_load(const fv_cfg_opt *t, void *cfg, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[4096], where[600];
	int rc = 0, lineno = 0;

	if (!f)
		return fv_err_set(errno, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof line, f)) {
		lineno++;
		snprintf(where, sizeof where, "%s:%d", path, lineno);
		if (!strchr(line, '\n') && !feof(f)) {
			rc = fv_err_set(FV_E_CONFIG, "%s: line too long", where);
			break;
		}
		char *s = trim(line);
		if (!*s || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			rc = fv_err_set(FV_E_CONFIG, "%s: expected 'key = value', got '%s'", where, s);
			break;
		}
		*eq = 0;
		char *key = trim(s), *val = trim(eq + 1);
		size_t vl = strlen(val);
		if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
			val[vl - 1] = 0;
			val++;
		}
		if ((rc = fv_cfg_set(t, cfg, key, val, where)))
			break;
	}
	fclose(f);
	return rc;
}

int fv_cfg_parse_args(const fv_cfg_opt *t, void *cfg, int argc, char **argv,
		      int *npos, int *help)
{
	int rc, n = 0, opts_done = 0;
	char where[300];

	if (help)
		*help = 0;
	/* config files first, so the command line overrides them */
	for (int i = 1; i < argc - 1; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config"))
			if ((rc = fv_cfg_load(t, cfg, argv[i + 1])))
				return rc;
	}
	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		if (opts_done || a[0] != '-' || !a[1]) {
			argv[1 + n++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			opts_done = 1;
			continue;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			if (help)
				*help = 1;
			break;
		}
		if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
			if (i + 1 >= argc)
				return fv_err_set(FV_E_CONFIG, "%s needs a file", a);
			i++;
			continue;
		}
		if (a[1] != '-')
			return fv_err_set(FV_E_CONFIG, "unknown option '%s'", a);
		char name[256];
		const char *val = NULL, *eq = strchr(a + 2, '=');
		size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
		if (len >= sizeof name)
			return fv_err_set(FV_E_CONFIG, "option '%s' is too long", a);
		memcpy(name, a + 2, len);
		name[len] = 0;
		if (eq)
			val = eq + 1;
		snprintf(where, sizeof where, "--%s", name);
		const fv_cfg_opt *o = fv_cfg_find(t, name);
		if (!o && !strncmp(name, "no-", 3) && !eq) {
			o = fv_cfg_find(t, name + 3);
			if (o && o->type == FV_CFG_BOOL) {
				*FIELD(cfg, o, int) = 0;
				continue;
			}
			o = NULL;
		}
		if (!o)
			return fv_err_set(FV_E_CONFIG, "unknown option '--%s' (see --help)", name);
		if (!val) {
			if (o->type == FV_CFG_BOOL) {
				*FIELD(cfg, o, int) = 1;
				continue;
			}
			if (i + 1 >= argc)
				return fv_err_set(FV_E_CONFIG, "--%s needs a value", name);
			val = argv[++i];
		}
		if ((rc = set_value(o, cfg, val, where)))
			return rc;
	}
	*npos = n;
	return 0;
}

static void format_value(const fv_cfg_opt *o, const void *cfg, char *buf, size_t cap)
{
	switch (o->type) {
	case FV_CFG_INT:
		snprintf(buf, cap, "%ld", *FIELD(cfg, o, long));
		break;
	case FV_CFG_DOUBLE:
		snprintf(buf, cap, "%.17g", *FIELD(cfg, o, double));
		break;
	case FV_CFG_BOOL:
		snprintf(buf, cap, "%s", *FIELD(cfg, o, int) ? "true" : "false");
		break;
	case FV_CFG_STR: {
		const char *s = *FIELD(cfg, o, char *);
		snprintf(buf, cap, "%s", s ? s : "");
		break;
	}
	case FV_CFG_ENUM:
		choice_name(o->choices, *FIELD(cfg, o, int), buf, cap);
		break;
	}
}

void fv_cfg_write(const fv_cfg_opt *t, const void *cfg, FILE *f)
{
	char buf[4200];
	for (; t->name; t++) {
		format_value(t, cfg, buf, sizeof buf);
		fprintf(f, "%s = %s\n", t->name, buf);
	}
}

void fv_cfg_help(const fv_cfg_opt *t, FILE *f, int markdown)
{
	static const char *const tn[] = { "int", "number", "bool", "text", "" };
	if (markdown)
		fprintf(f, "| option | type | default | meaning |\n|---|---|---|---|\n");
	for (; t->name; t++) {
		char type[256];
		if (t->type == FV_CFG_ENUM)
			snprintf(type, sizeof type, "%s", t->choices);
		else if (bounded(t))
			snprintf(type, sizeof type, "%s %g..%g", tn[t->type], t->min, t->max);
		else
			snprintf(type, sizeof type, "%s", tn[t->type]);
		if (markdown)
			fprintf(f, "| `%s` | %s | %s | %s |\n", t->name, type,
				t->def && *t->def ? t->def : "—", t->help ? t->help : "");
		else
			fprintf(f, "  --%-22s %s (default %s)\n  %24s %s\n", t->name, type,
				t->def && *t->def ? t->def : "none", "", t->help ? t->help : "");
	}
}

void fv_cfg_free(const fv_cfg_opt *t, void *cfg)
{
	for (; t->name; t++)
		if (t->type == FV_CFG_STR) {
			char **f = FIELD(cfg, t, char *);
			free(*f);
			*f = NULL;
		}
}
