/* evaluator/json.h — just enough JSON for the evaluator's durable files and
 * its --json output: a writer that builds one object into a growing buffer
 * (commas and escaping handled, NaN/Inf written as null), and a reader that
 * checks a line is exactly one complete JSON value and pulls top-level
 * fields out of an object. eval.jsonl recovery uses the reader to tell a
 * whole line from one torn by a crash. */
#ifndef FV_EVAL_JSON_H
#define FV_EVAL_JSON_H

#include <stddef.h>
#include <stdint.h>

#define FV_JSONW_DEPTH 16

typedef struct fv_jsonw {
	char *buf;            /* NUL-terminated text so far; owned */
	size_t len, cap;
	int err;              /* ENOMEM once an append failed (then all are no-ops) */
	int depth;
	int count[FV_JSONW_DEPTH]; /* values written at each open level */
	int after_key;        /* a key was written: the next value takes no comma */
} fv_jsonw;

void fv_jsonw_init(fv_jsonw *w);
void fv_jsonw_free(fv_jsonw *w);
/* Structure. Keys only inside objects; every value after a key. */
void fv_jsonw_obj(fv_jsonw *w);
void fv_jsonw_obj_end(fv_jsonw *w);
void fv_jsonw_arr(fv_jsonw *w);
void fv_jsonw_arr_end(fv_jsonw *w);
void fv_jsonw_key(fv_jsonw *w, const char *key);
/* Values. */
void fv_jsonw_str(fv_jsonw *w, const char *s);       /* NULL writes null */
void fv_jsonw_num(fv_jsonw *w, double v);            /* %.9g; NaN/Inf -> null */
void fv_jsonw_u64(fv_jsonw *w, uint64_t v);
void fv_jsonw_bool(fv_jsonw *w, int v);
void fv_jsonw_null(fv_jsonw *w);
/* Returns 0, or ENOMEM if any append failed. */
int fv_jsonw_status(const fv_jsonw *w);

/* 0 if s[0..len) is exactly one JSON value with optional surrounding
 * whitespace, else FV_E_FORMAT. Nesting deeper than 64 is refused. */
int fv_jsonr_check(const char *s, size_t len);
/* Find top-level key in the object s[0..len): *val and *vlen get the raw value
 * text. Returns 0, FV_E_NOTFOUND, or FV_E_FORMAT (not an object). */
int fv_jsonr_field(const char *s, size_t len, const char *key, const char **val,
		   size_t *vlen);
/* Typed helpers over fv_jsonr_field. A null value reads as NAN for numbers. */
int fv_jsonr_num(const char *s, size_t len, const char *key, double *out);
int fv_jsonr_u64(const char *s, size_t len, const char *key, uint64_t *out);
/* Unescapes into out (cap bytes, NUL-terminated); ENAMETOOLONG if it does not
 * fit, FV_E_FORMAT if the value is not a string. \u escapes above 0x7f are
 * written as UTF-8. */
int fv_jsonr_str(const char *s, size_t len, const char *key, char *out, size_t cap);

#endif
