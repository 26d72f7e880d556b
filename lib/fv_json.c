/* fv_json.c — JSON string escaping (see fv_json.h). */
#include "fv_json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF. */
size_t fv_utf8_len(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char c = s[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
	else
		return 0;
	if (s[1] < lo || s[1] > hi) /* also stops at the terminating 0 */
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

size_t fv_json_char(const char *s, char out[8], size_t *used)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char c = (unsigned char)s[0];
	size_t n = fv_utf8_len(s);
	*used = n ? n : 1;
	if (!n) { /* not UTF-8: U+FFFD */
		memcpy(out, "\xef\xbf\xbd", 3);
		return 3;
	}
	if (c == '"' || c == '\\') {
		out[0] = '\\';
		out[1] = (char)c;
		return 2;
	}
	char brief = c == '\n' ? 'n' : c == '\t' ? 't' : c == '\r' ? 'r' : c == '\b' ? 'b'
		   : c == '\f' ? 'f' : 0;
	if (brief) {
		out[0] = '\\';
		out[1] = brief;
		return 2;
	}
	if (c < 0x20 || c == 0x7f) {
		memcpy(out, "\\u00", 4);
		out[4] = hex[c >> 4];
		out[5] = hex[c & 15];
		return 6;
	}
	memcpy(out, s, n);
	return n;
}

size_t fv_json_escape(char *buf, size_t cap, const char *s)
{
	char e[8];
	size_t o = 0, used;
	if (!cap)
		return 0;
	for (; s && *s; s += used) {
		size_t n = fv_json_char(s, e, &used);
		if (o + n >= cap)
			break;
		memcpy(buf + o, e, n);
		o += n;
	}
	buf[o] = 0;
	return o;
}

void fv_json_fputs(FILE *f, const char *s)
{
	char e[8];
	size_t used;
	fputc('"', f);
	for (; s && *s; s += used)
		fwrite(e, 1, fv_json_char(s, e, &used), f);
	fputc('"', f);
}

int fv_utf8_clean(const char *s, char **out)
{
	size_t bad = 0, n;
	*out = NULL;
	for (const char *p = s; *p; p += n ? n : 1)
		bad += !(n = fv_utf8_len(p));
	if (!bad)
		return 0;
	char *o = malloc(strlen(s) + 2 * bad + 1), *q = o; /* 1 byte becomes 3 */
	if (!o)
		return ENOMEM;
	for (const char *p = s; *p; p += n ? n : 1) {
		if ((n = fv_utf8_len(p)))
			memcpy(q, p, n), q += n;
		else
			memcpy(q, "\xef\xbf\xbd", 3), q += 3;
	}
	*q = 0;
	*out = o;
	return 0;
}
