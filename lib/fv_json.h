/* fv_json.h — JSON strings from whatever bytes a name holds: quotes and
 * backslashes escaped, control characters as \n \t \r \b \f or \u00XX
 * (DEL too), and each
 * byte that is not part of well-formed UTF-8 as U+FFFD, so the output
 * parses as JSON even when a class folder was named in Latin-1 ("caf\xe9").
 * One implementation for every JSON writer (stats, status, serve answers,
 * evaluator results, checkpoint inspection). */
#ifndef FV_JSON_H
#define FV_JSON_H

#include <stddef.h>
#include <stdio.h>

/* The escaped form of the character at s (s[0] != 0) into out (at most 6
 * bytes, not terminated); returns its length and sets *used to the bytes of
 * s it stands for. */
size_t fv_json_char(const char *s, char out[8], size_t *used);
/* s (NULL: empty) escaped into buf without quotes, NUL-terminated, cut only
 * between characters when cap is too small; returns the length written. */
size_t fv_json_escape(char *buf, size_t cap, const char *s);
/* s (NULL: empty) as a quoted JSON string on f. */
void fv_json_fputs(FILE *f, const char *s);

/* Length of the well-formed UTF-8 character at s (1 to 4), or 0 where the
 * bytes there are not one (a 0 byte counts as one, of length 1). */
size_t fv_utf8_len(const char *s);
/* *out: NULL when s is well-formed UTF-8, else a malloc'd copy with each
 * bad byte as U+FFFD (for protobuf string fields, which must be UTF-8).
 * 0 or ENOMEM. */
int fv_utf8_clean(const char *s, char **out);

#endif
