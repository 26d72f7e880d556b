/* libFuzzer target: lib/fv_json on arbitrary bytes. What it writes must be
 * well-formed UTF-8 with no raw control character, quote or backslash
 * left unescaped, within the buffer and cut only between characters; and
 * fv_utf8_clean must give UTF-8 that fv_json_escape then passes through
 * unchanged but for escapes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fv_json.h"

static void check_json_body(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = fv_utf8_len(s + i);
		unsigned char c = (unsigned char)s[i];
		if (!k || i + k > n || c < 0x20 || c == 0x7f)
			__builtin_trap();
		if (c == '"')
			__builtin_trap(); /* a quote only ever comes escaped, after a backslash */
		if (c == '\\') {
			if (i + 1 >= n || !strchr("\"\\nrtbfu", s[i + 1]))
				__builtin_trap();
			k = s[i + 1] == 'u' ? 6 : 2;
			if (i + k > n)
				__builtin_trap();
		}
		i += k;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1), out[64], big[4096 * 6 + 1], *clean;
	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = 0; /* a C string: up to the first 0 */
	size_t cap = size % sizeof out + 1;
	size_t n = fv_json_escape(out, cap, in);
	if (n >= cap || strlen(out) != n)
		__builtin_trap();
	check_json_body(out, n);
	if (strlen(in) <= 4096) {
		n = fv_json_escape(big, sizeof big, in);
		check_json_body(big, n);
	}
	if (!fv_utf8_clean(in, &clean)) {
		const char *u = clean ? clean : in;
		for (size_t i = 0; u[i];) {
			size_t k = fv_utf8_len(u + i);
			if (!k)
				__builtin_trap();
			i += k;
		}
		free(clean);
	}
	free(in);
	return 0;
}
