/* fv_config.h — configuration as a table (after Redis's config.c): each
 * option has a name, a type, a default, bounds and a help line, and lives at
 * an offset in the caller's struct. The same table reads config files
 * ("key = value", '#' comments), the command line ("--key value",
 * "--key=value", "--flag", "--no-flag"), prints --help, and writes the
 * effective configuration back out. Unknown keys and bad values are errors
 * naming file:line (or the option), never silently ignored. */
#ifndef FV_CONFIG_H
#define FV_CONFIG_H

#include <stddef.h>
#include <stdio.h>

enum fv_cfg_type {
	FV_CFG_INT,    /* long */
	FV_CFG_DOUBLE, /* double */
	FV_CFG_BOOL,   /* int, 0 or 1 */
	FV_CFG_STR,    /* char *, owned by the struct: free with fv_cfg_free */
	FV_CFG_ENUM,   /* int: index into choices ("a|b|c") */
};

typedef struct fv_cfg_opt {
	const char *name;
	enum fv_cfg_type type;
	size_t offset;       /* offsetof(your struct, field) */
	const char *def;     /* default as text; NULL = 0 / empty */
	double min, max;     /* bounds for INT/DOUBLE; min > max means unbounded */
	const char *choices; /* ENUM: "cosine|step|constant" */
	const char *help;
} fv_cfg_opt;

/* Tables end with an entry whose name is NULL. */
#define FV_CFG_END { 0 }

/* Fill cfg with every default; cfg may be uninitialised memory (a string
 * field's old contents are never freed here: fv_cfg_free frees them). */
int fv_cfg_defaults(const fv_cfg_opt *t, void *cfg);
/* Set one option from text; `where` names the source in errors
 * ("fovea.conf:12" or "--epochs"). FV_E_CONFIG on unknown name or bad value. */
int fv_cfg_set(const fv_cfg_opt *t, void *cfg, const char *name, const char *value,
	       const char *where);
/* Read a config file; errors name path:line. */
int fv_cfg_load(const fv_cfg_opt *t, void *cfg, const char *path);
/* Parse argv[1..]: options anywhere; "-c FILE"/"--config FILE" loads a file
 * first (so the command line wins); "--" ends options. Positional arguments
 * are moved, in order, to the front of argv+1 and counted in *npos.
 * "-h"/"--help" sets *help (if non-NULL) and stops. */
int fv_cfg_parse_args(const fv_cfg_opt *t, void *cfg, int argc, char **argv,
		      int *npos, int *help);
/* The option named `name`, or NULL. */
const fv_cfg_opt *fv_cfg_find(const fv_cfg_opt *t, const char *name);
/* Write "name = value" for every option (the effective configuration). */
void fv_cfg_write(const fv_cfg_opt *t, const void *cfg, FILE *f);
/* Write the option reference: name, type/choices, default, help. With
 * markdown != 0 as a Markdown table (the README's config reference). */
void fv_cfg_help(const fv_cfg_opt *t, FILE *f, int markdown);
/* Free the strings the table's STR fields own. */
void fv_cfg_free(const fv_cfg_opt *t, void *cfg);

#endif
