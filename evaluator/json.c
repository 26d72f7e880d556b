/* evaluator/json.c — see json.h. */
#include "evaluator/json.h"
#include "fv_error.h"
#include "fv_json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- writer */

void fv_jsonw_init(fv_jsonw *w)
{
	memset(w, 0, sizeof *w);
}

void fv_jsonw_free(fv_jsonw *w)
{
	free(w->buf);
	memset(w, 0, sizeof *w);
}

static void put(fv_jsonw *w, const char *s, size_t n)
{
	if (w->err)
		return;
	if (w->len + n + 1 > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap < w->len + n + 1)
			cap *= 2;
		char *b = realloc(w->buf, cap);
		if (!b) {
			w->err = ENOMEM;
			return;
		}
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = 0;
}

static void puts_(fv_jsonw *w, const char *s)
{
	put(w, s, strlen(s));
}

/* Comma before a value (or key) that is not the first at its level. */
static void sep(fv_jsonw *w)
{
	if (w->after_key) {
		w->after_key = 0;
		return;
	}
	if (w->depth > 0 && w->count[w->depth - 1]++ > 0)
		put(w, ", ", 2);
}

static void open_(fv_jsonw *w, char c)
{
	sep(w);
	put(w, &c, 1);
	if (w->depth < FV_JSONW_DEPTH)
		w->count[w->depth] = 0;
	else
		w->err = EINVAL;
	w->depth++;
}

static void close_(fv_jsonw *w, char c)
{
	if (w->depth > 0)
		w->depth--;
	put(w, &c, 1);
}

void fv_jsonw_obj(fv_jsonw *w) { open_(w, '{'); }
void fv_jsonw_obj_end(fv_jsonw *w) { close_(w, '}'); }
void fv_jsonw_arr(fv_jsonw *w) { open_(w, '['); }
void fv_jsonw_arr_end(fv_jsonw *w) { close_(w, ']'); }

static void quoted(fv_jsonw *w, const char *s)
{
	char esc[8];
	size_t used;
	put(w, "\"", 1);
	for (; *s; s += used)
		put(w, esc, fv_json_char(s, esc, &used));
	put(w, "\"", 1);
}

void fv_jsonw_key(fv_jsonw *w, const char *key)
{
	sep(w);
	quoted(w, key);
	put(w, ": ", 2);
	w->after_key = 1;
}

void fv_jsonw_str(fv_jsonw *w, const char *s)
{
	sep(w);
	if (s)
		quoted(w, s);
	else
		puts_(w, "null");
}

void fv_jsonw_num(fv_jsonw *w, double v)
{
	char b[40];
	sep(w);
	if (!isfinite(v)) {
		puts_(w, "null");
		return;
	}
	snprintf(b, sizeof b, "%.9g", v);
	puts_(w, b);
}

void fv_jsonw_u64(fv_jsonw *w, uint64_t v)
{
	char b[24];
	sep(w);
	snprintf(b, sizeof b, "%llu", (unsigned long long)v);
	puts_(w, b);
}

void fv_jsonw_bool(fv_jsonw *w, int v)
{
	sep(w);
	puts_(w, v ? "true" : "false");
}

void fv_jsonw_null(fv_jsonw *w)
{
	sep(w);
	puts_(w, "null");
}

int fv_jsonw_status(const fv_jsonw *w)
{
	return w->err;
}

/* ---------------------------------------------------------------- reader */

typedef struct cur {
	const char *p, *end;
	int depth;
} cur;

static void ws(cur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int lit(cur *c, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n))
		return -1;
	c->p += n;
	return 0;
}

static int skip_string(cur *c)
{
	if (c->p >= c->end || *c->p != '"')
		return -1;
	for (c->p++; c->p < c->end; c->p++) {
		unsigned char ch = (unsigned char)*c->p;
		if (ch == '"') {
			c->p++;
			return 0;
		}
		if (ch < 0x20)
			return -1;
		if (ch == '\\') {
			if (++c->p >= c->end)
				return -1;
			if (*c->p == 'u') {
				for (int k = 0; k < 4; k++)
					if (++c->p >= c->end || !strchr("0123456789abcdefABCDEF", *c->p))
						return -1;
			} else if (!strchr("\"\\/bfnrt", *c->p)) {
				return -1;
			}
		}
	}
	return -1;
}

static int skip_number(cur *c)
{
	const char *s = c->p;
	if (c->p < c->end && *c->p == '-')
		c->p++;
	if (c->p >= c->end || *c->p < '0' || *c->p > '9')
		return -1;
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
		c->p++;
	if (c->p < c->end && *c->p == '.') {
		c->p++;
		if (c->p >= c->end || *c->p < '0' || *c->p > '9')
			return -1;
		while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
			c->p++;
	}
	if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
		c->p++;
		if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
			c->p++;
		if (c->p >= c->end || *c->p < '0' || *c->p > '9')
			return -1;
		while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
			c->p++;
	}
	return c->p > s ? 0 : -1;
}

static int skip_value(cur *c);

static int skip_container(cur *c, char close, int object)
{
	if (++c->depth > 64)
		return -1;
	c->p++;
	ws(c);
	if (c->p < c->end && *c->p == close) {
		c->p++;
		c->depth--;
		return 0;
	}
	for (;;) {
		ws(c);
		if (object) {
			if (skip_string(c))
				return -1;
			ws(c);
			if (c->p >= c->end || *c->p++ != ':')
				return -1;
		}
		if (skip_value(c))
			return -1;
		ws(c);
		if (c->p >= c->end)
			return -1;
		if (*c->p == ',') {
			c->p++;
			continue;
		}
		if (*c->p++ != close)
			return -1;
		c->depth--;
		return 0;
	}
}

static int skip_value(cur *c)
{
	ws(c);
	if (c->p >= c->end)
		return -1;
	switch (*c->p) {
	case '{': return skip_container(c, '}', 1);
	case '[': return skip_container(c, ']', 0);
	case '"': return skip_string(c);
	case 't': return lit(c, "true");
	case 'f': return lit(c, "false");
	case 'n': return lit(c, "null");
	default: return skip_number(c);
	}
}

int fv_jsonr_check(const char *s, size_t len)
{
	cur c = { s, s + len, 0 };
	if (skip_value(&c))
		return FV_E_FORMAT;
	ws(&c);
	return c.p == c.end ? 0 : FV_E_FORMAT;
}

int fv_jsonr_field(const char *s, size_t len, const char *key, const char **val, size_t *vlen)
{
	cur c = { s, s + len, 0 };
	size_t klen = strlen(key);
	ws(&c);
	if (c.p >= c.end || *c.p != '{')
		return FV_E_FORMAT;
	c.p++;
	for (;;) {
		ws(&c);
		if (c.p < c.end && *c.p == '}')
			return FV_E_NOTFOUND;
		const char *k = c.p;
		if (skip_string(&c))
			return FV_E_FORMAT;
		/* keys we look up never need unescaping */
		int match = (size_t)(c.p - k) == klen + 2 && !memcmp(k + 1, key, klen);
		ws(&c);
		if (c.p >= c.end || *c.p++ != ':')
			return FV_E_FORMAT;
		ws(&c);
		const char *v = c.p;
		if (skip_value(&c))
			return FV_E_FORMAT;
		if (match) {
			*val = v;
			*vlen = (size_t)(c.p - v);
			return 0;
		}
		ws(&c);
		if (c.p < c.end && *c.p == ',') {
			c.p++;
			continue;
		}
		return c.p < c.end && *c.p == '}' ? FV_E_NOTFOUND : FV_E_FORMAT;
	}
}

int fv_jsonr_num(const char *s, size_t len, const char *key, double *out)
{
	const char *v;
	size_t n;
	char buf[64];
	int rc = fv_jsonr_field(s, len, key, &v, &n);
	if (rc)
		return rc;
	if (n == 4 && !memcmp(v, "null", 4)) {
		*out = NAN;
		return 0;
	}
	if (n == 0 || n >= sizeof buf || !(v[0] == '-' || (v[0] >= '0' && v[0] <= '9')))
		return FV_E_FORMAT;
	memcpy(buf, v, n);
	buf[n] = 0;
	*out = strtod(buf, NULL);
	return 0;
}

int fv_jsonr_u64(const char *s, size_t len, const char *key, uint64_t *out)
{
	const char *v;
	size_t n;
	char buf[32];
	int rc = fv_jsonr_field(s, len, key, &v, &n);
	if (rc)
		return rc;
	if (n == 0 || n >= sizeof buf || v[0] < '0' || v[0] > '9')
		return FV_E_FORMAT;
	memcpy(buf, v, n);
	buf[n] = 0;
	*out = strtoull(buf, NULL, 10);
	return 0;
}

static size_t utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	o[0] = (char)(0xe0 | cp >> 12);
	o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[2] = (char)(0x80 | (cp & 0x3f));
	return 3;
}

int fv_jsonr_str(const char *s, size_t len, const char *key, char *out, size_t cap)
{
	const char *v;
	size_t n, k = 0;
	int rc = fv_jsonr_field(s, len, key, &v, &n);
	if (rc)
		return rc;
	if (n < 2 || v[0] != '"')
		return FV_E_FORMAT;
	for (size_t i = 1; i + 1 < n; i++) {
		char tmp[4];
		size_t m = 1;
		tmp[0] = v[i];
		if (v[i] == '\\') {
			char e = v[++i];
			switch (e) {
			case 'n': tmp[0] = '\n'; break;
			case 't': tmp[0] = '\t'; break;
			case 'r': tmp[0] = '\r'; break;
			case 'b': tmp[0] = '\b'; break;
			case 'f': tmp[0] = '\f'; break;
			case 'u': {
				char hex[5] = { v[i + 1], v[i + 2], v[i + 3], v[i + 4], 0 };
				m = utf8(tmp, (unsigned)strtoul(hex, NULL, 16));
				i += 4;
				break;
			}
			default: tmp[0] = e; break;
			}
		}
		if (k + m >= cap)
			return ENAMETOOLONG;
		memcpy(out + k, tmp, m);
		k += m;
	}
	if (!cap)
		return ENAMETOOLONG;
	out[k] = 0;
	return 0;
}
