/* nn/models/spec.c — the text model spec (grammar in nn/models.h): a small
 * recursive-descent parser that adds layers to the net as it reads, so there
 * is no syntax tree. "Nx STATEMENT" re-reads the statement N times by
 * rewinding the lexer. Every error names the token and its position. */
#include "nn/models/build.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fv_error.h"

#define MAX_DEPTH 16
#define MAX_REPEAT 1000
#define MAX_LAYERS 20000 /* efficientnet-b7 written out is ~1,000 */

#define FV_STR_(x) #x
#define FV_STR(x) FV_STR_(x)

enum tk { T_WORD, T_SEMI, T_LBRACE, T_RBRACE, T_BAR, T_END };

typedef struct tok {
	enum tk kind;
	const char *s; /* start in the source */
	int len;
} tok;

typedef struct parser {
	fv_mb *b;
	const char *src;
	const char *p; /* next unread character */
	tok t;         /* current token */
	int classes;
	int depth;
	int layers;    /* layers added so far, bounded: repeats multiply */
} parser;

/* ---- lexing ---------------------------------------------------------------- */

static int is_wordch(int c)
{
	return isalnum(c) || c == '_' || c == '.' || c == '-' || c == '+';
}

static void next(parser *ps)
{
	const char *p = ps->p;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		if (*p != '#')
			break;
		while (*p && *p != '\n')
			p++;
	}
	tok t = { T_END, p, 0 };
	if (!*p) {
		ps->t = t;
		ps->p = p;
		return;
	}
	if (*p == ';' || *p == '\n')
		t.kind = T_SEMI;
	else if (*p == '{')
		t.kind = T_LBRACE;
	else if (*p == '}')
		t.kind = T_RBRACE;
	else if (*p == '|')
		t.kind = T_BAR;
	else
		t.kind = T_WORD;
	if (t.kind == T_WORD && is_wordch((unsigned char)*p))
		while (is_wordch((unsigned char)p[t.len]))
			t.len++;
	else
		t.len = 1; /* punctuation, or one stray character reported as a word */
	ps->p = p + t.len;
	ps->t = t;
}

static int pos(const parser *ps, const tok *t)
{
	return (int)(t->s - ps->src) + 1;
}

/* Fail at token t (the builder keeps the first failure only). The detail
 * stays on one line: a newline or an unprintable byte is spelled out. */
static int fail(parser *ps, const tok *t, const char *what)
{
	unsigned char c = (unsigned char)t->s[0];
	if (t->kind == T_END)
		return fv_mb_fail(ps->b, FV_E_CONFIG, "model spec: %s at end (position %d)",
				  what, pos(ps, t));
	if (c == '\n')
		return fv_mb_fail(ps->b, FV_E_CONFIG, "model spec: %s end of line at %d", what,
				  pos(ps, t));
	if (t->len == 1 && !isprint(c))
		return fv_mb_fail(ps->b, FV_E_CONFIG, "model spec: %s byte 0x%02x at %d", what,
				  c, pos(ps, t));
	return fv_mb_fail(ps->b, FV_E_CONFIG, "model spec: %s '%.*s' at %d", what, t->len,
			  t->s, pos(ps, t));
}

static int word_is(const tok *t, const char *w)
{
	return t->kind == T_WORD && (int)strlen(w) == t->len && !strncmp(t->s, w, t->len);
}

/* Integer token in [lo, hi] starting after `skip` prefix characters. */
static int int_of(const tok *t, int skip, int lo, int hi, int *v)
{
	char buf[32], *end;
	if (t->kind != T_WORD || t->len - skip < 1 || t->len - skip >= (int)sizeof buf)
		return -1;
	memcpy(buf, t->s + skip, t->len - skip);
	buf[t->len - skip] = 0;
	errno = 0;
	long l = strtol(buf, &end, 10);
	if (*end || errno || l < lo || l > hi)
		return -1;
	*v = (int)l;
	return 0;
}

/* ---- layers ---------------------------------------------------------------- */

/* The net's own detail for a layer that failed ("channels differ"), with
 * the layer's token and position put in front. */
static int net_failed(parser *ps, const tok *at)
{
	char msg[512];
	snprintf(msg, sizeof msg, "%s", fv_err_msg(ps->b->rc));
	/* a layer that does not fit its input is a bad spec, not a bad net */
	if (ps->b->rc == FV_E_MISMATCH)
		ps->b->rc = FV_E_CONFIG;
	fv_err_set(ps->b->rc, "model spec: '%.*s' at %d: %s", at->len, at->s, pos(ps, at), msg);
	return -1;
}

typedef struct args {
	int n;            /* positional integers read */
	int v[2];         /* positional values */
	float f;          /* dropout's probability */
	int s, p, g, d;   /* options; -1 = not given */
	int bias;
} args;

/* Read a layer's arguments: up to max_pos positionals, then the options in
 * `opts` ("spgd" letters and/or "b" for "bias"). */
static int read_args(parser *ps, const tok *kw, int max_pos, int need, const char *opts,
		     args *a)
{
	*a = (args){ .s = -1, .p = -1, .g = -1, .d = -1 };
	while (ps->t.kind == T_WORD) {
		tok t = ps->t;
		int v;
		if (a->n < max_pos && !int_of(&t, 0, 1, 1 << 20, &v)) {
			a->v[a->n++] = v;
		} else if (a->n < max_pos && a->n < need) {
			return fail(ps, &t, "expected a positive integer, got");
		} else if (strchr(opts, 'b') && word_is(&t, "bias")) {
			a->bias = 1;
		} else if (isalpha((unsigned char)t.s[0]) && strchr("spgd", t.s[0]) &&
			   strchr(opts, t.s[0]) && !int_of(&t, 1, t.s[0] == 'p' ? 0 : 1, 1 << 16, &v)) {
			int *slot = t.s[0] == 's' ? &a->s : t.s[0] == 'p' ? &a->p
				  : t.s[0] == 'g' ? &a->g : &a->d;
			*slot = v;
		} else {
			char what[64];
			snprintf(what, sizeof what, "unexpected argument to %.*s:", kw->len, kw->s);
			return fail(ps, &t, what);
		}
		next(ps);
	}
	if (a->n < need) {
		char what[64];
		snprintf(what, sizeof what, "%.*s needs %d number%s before", kw->len, kw->s,
			 need, need > 1 ? "s" : "");
		return fail(ps, &ps->t, what);
	}
	return 0;
}

static int prob_arg(parser *ps, const tok *kw, float *f)
{
	char buf[32], *end;
	tok t = ps->t;
	if (t.kind != T_WORD || t.len >= (int)sizeof buf)
		return fail(ps, kw, "dropout needs a probability after");
	memcpy(buf, t.s, t.len);
	buf[t.len] = 0;
	double v = strtod(buf, &end);
	if (*end || !(v >= 0 && v < 1))
		return fail(ps, &t, "dropout probability must be in [0, 1), got");
	*f = (float)v;
	next(ps);
	return 0;
}

/* One layer keyword and its arguments at node x, named <prefix><idx>. */
static int layer(parser *ps, int x, const char *name)
{
	fv_mb *b = ps->b;
	fv_net *net = b->net;
	tok kw = ps->t;
	args a;
	int y = -1;
	if (++ps->layers > MAX_LAYERS)
		return fail(ps, &kw, "spec has more than " FV_STR(MAX_LAYERS) " layers at");
	next(ps);
#define ARGS(maxp, need, opts) do { if (read_args(ps, &kw, maxp, need, opts, &a)) return -1; } while (0)
	if (word_is(&kw, "conv")) {
		ARGS(2, 2, "spgdb");
		int d = a.d > 0 ? a.d : 1, k = a.v[1];
		y = fv_net_conv(net, x, name, a.v[0], k, a.s > 0 ? a.s : 1,
				a.p >= 0 ? a.p : d * (k - 1) / 2, d, a.g > 0 ? a.g : 1, a.bias);
	} else if (word_is(&kw, "dwconv")) {
		ARGS(1, 1, "sp");
		int c = fv_mb_c(b, x), k = a.v[0];
		y = fv_net_conv(net, x, name, c, k, a.s > 0 ? a.s : 1, a.p >= 0 ? a.p : (k - 1) / 2,
				1, c, 0);
	} else if (word_is(&kw, "bn")) {
		ARGS(0, 0, "");
		y = fv_net_bn(net, x, name);
	} else if (word_is(&kw, "relu") || word_is(&kw, "relu6") || word_is(&kw, "silu") ||
		   word_is(&kw, "sigmoid")) {
		ARGS(0, 0, "");
		enum fv_act act = word_is(&kw, "relu") ? FV_ACT_RELU : word_is(&kw, "relu6")
				  ? FV_ACT_RELU6 : word_is(&kw, "silu") ? FV_ACT_SILU : FV_ACT_SIGMOID;
		y = fv_net_act(net, x, act);
	} else if (word_is(&kw, "maxpool") || word_is(&kw, "avgpool")) {
		ARGS(1, 1, "sp");
		int k = a.v[0], s = a.s > 0 ? a.s : k, p = a.p >= 0 ? a.p : 0;
		y = kw.s[0] == 'm' ? fv_net_maxpool(net, x, k, s, p) : fv_net_avgpool(net, x, k, s, p);
	} else if (word_is(&kw, "gap")) {
		ARGS(0, 0, "");
		y = fv_net_gap(net, x);
	} else if (word_is(&kw, "flatten")) {
		ARGS(0, 0, "");
		y = fv_net_flatten(net, x);
	} else if (word_is(&kw, "linear")) {
		ARGS(1, 0, "");
		y = fv_net_linear(net, x, name, a.n ? a.v[0] : ps->classes);
	} else if (word_is(&kw, "dropout")) {
		float p = 0;
		if (prob_arg(ps, &kw, &p))
			return -1;
		ARGS(0, 0, "");
		y = fv_net_dropout(net, x, p);
	} else if (word_is(&kw, "se")) {
		ARGS(1, 1, "");
		y = fv_mb_se(b, x, a.v[0], FV_ACT_SILU, name);
		return y < 0 ? net_failed(ps, &kw) : y;
	} else {
		return fail(ps, &kw, "unknown layer");
	}
#undef ARGS
	if (fv_mb_keep(b, y) < 0)
		return net_failed(ps, &kw);
	return y;
}

/* ---- statements ------------------------------------------------------------ */

static int seq(parser *ps, int x, const char *prefix, int *idx);

static int expect(parser *ps, enum tk kind, const char *what)
{
	if (ps->t.kind != kind)
		return fail(ps, &ps->t, what);
	next(ps);
	return 0;
}

/* res { BODY [| SHORTCUT] } at x, named <name>.body.* and <name>.short.*. */
static int residual(parser *ps, int x, const char *name, const tok *kw)
{
	fv_mb *b = ps->b;
	char p[256];
	int i = 0, y, sc = x;
	if (expect(ps, T_LBRACE, "expected '{' after res, got"))
		return -1;
	if (snprintf(p, sizeof p, "%s.body.", name) >= (int)sizeof p)
		return fail(ps, kw, "blocks nested too deep at");
	y = seq(ps, x, p, &i);
	if (y < 0)
		return -1;
	if (y == x)
		return fail(ps, &ps->t, "res needs a body before");
	if (ps->t.kind == T_BAR) {
		next(ps);
		i = 0;
		if (snprintf(p, sizeof p, "%s.short.", name) >= (int)sizeof p)
			return fail(ps, kw, "blocks nested too deep at");
		sc = seq(ps, x, p, &i);
		if (sc < 0)
			return -1;
	} else if (fv_mb_c(b, y) != fv_mb_c(b, x) || fv_mb_h(b, y) != fv_mb_h(b, x) ||
		   fv_mb_w(b, y) != fv_mb_w(b, x)) {
		/* option B projection; the stride that maps x's size to y's */
		int s = fv_mb_h(b, y) > 0 ? (fv_mb_h(b, x) + fv_mb_h(b, y) - 1) / fv_mb_h(b, y) : 1;
		sc = fv_mb_convp(b, x, fv_mb_c(b, y), 1, s, 0, 0, "%s.short.0", name);
		sc = fv_mb_bn(b, sc, "%s.short.1", name);
		if (sc < 0)
			return net_failed(ps, kw);
	}
	if (expect(ps, T_RBRACE, "expected '}' to close res, got"))
		return -1;
	y = fv_mb_add(b, y, sc);
	return y < 0 ? net_failed(ps, kw) : y;
}

/* One statement: [Nx] (res {...} | {...} | layer). *idx counts the layers
 * of the enclosing sequence and names them. */
static int stmt(parser *ps, int x, const char *prefix, int *idx)
{
	int reps = 1;
	tok t = ps->t;
	if (t.kind == T_WORD && t.len > 1 && t.s[t.len - 1] == 'x' && isdigit((unsigned char)t.s[0])) {
		tok num = { T_WORD, t.s, t.len - 1 };
		if (int_of(&num, 0, 1, MAX_REPEAT, &reps))
			return fail(ps, &t, "bad repeat count");
		next(ps);
	}
	const char *rewind_p = ps->p;
	tok rewind_t = ps->t;
	for (int r = 0; r < reps; r++) {
		char name[256];
		ps->p = rewind_p;
		ps->t = rewind_t;
		tok kw = ps->t;
		if (ps->t.kind == T_LBRACE) {
			next(ps);
			x = seq(ps, x, prefix, idx);
			if (x < 0 || expect(ps, T_RBRACE, "expected '}' to close the group, got"))
				return -1;
			continue;
		}
		if (ps->t.kind != T_WORD)
			return fail(ps, &ps->t, "expected a layer, got");
		if (snprintf(name, sizeof name, "%s%d", prefix, (*idx)++) >= (int)sizeof name)
			return fail(ps, &kw, "blocks nested too deep at");
		if (word_is(&kw, "res")) {
			next(ps);
			x = residual(ps, x, name, &kw);
		} else {
			x = layer(ps, x, name);
		}
		if (x < 0)
			return -1;
	}
	return x;
}

/* Statements until '}', '|' or the end. Empty statements are allowed. */
static int seq(parser *ps, int x, const char *prefix, int *idx)
{
	if (++ps->depth > MAX_DEPTH)
		return fail(ps, &ps->t, "blocks nested too deep at");
	while (ps->t.kind != T_END && ps->t.kind != T_RBRACE && ps->t.kind != T_BAR) {
		if (ps->t.kind == T_SEMI) {
			next(ps);
			continue;
		}
		x = stmt(ps, x, prefix, idx);
		if (x < 0)
			return -1;
		if (ps->t.kind == T_WORD || ps->t.kind == T_LBRACE)
			return fail(ps, &ps->t, "expected ';' before");
	}
	ps->depth--;
	return x;
}

int fv_model_parse(fv_mb *b, const char *spec, int classes)
{
	parser ps = { .b = b, .src = spec, .p = spec, .classes = classes };
	int i = 0;
	next(&ps);
	int y = seq(&ps, FV_NET_INPUT, "", &i);
	if (y < 0)
		return -1;
	if (ps.t.kind != T_END)
		return fail(&ps, &ps.t, "unexpected");
	if (y == FV_NET_INPUT)
		return fv_mb_fail(b, FV_E_CONFIG, "model spec: no layers");
	return y;
}
