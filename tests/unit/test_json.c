/* Unit tests for lib/fv_json: escapes, UTF-8 kept as it is, every byte of
 * ill-formed UTF-8 (Latin-1, overlong, surrogates, past U+10FFFF, cut
 * short) as U+FFFD, a full buffer cut only between characters, and
 * fv_utf8_clean. */
#include "fv_json.h"
#include "fv_test.h"

#include <stdlib.h>
#include <string.h>

#define FFFD "\xef\xbf\xbd"

static int escapes_to(const char *in, const char *want)
{
	char buf[256];
	size_t n = fv_json_escape(buf, sizeof buf, in);
	if (n != strlen(want) || strcmp(buf, want)) {
		fprintf(stderr, "    escape(\"%s\") = \"%s\", want \"%s\"\n", in, buf, want);
		return 0;
	}
	return 1;
}

FV_TEST(json_escapes)
{
	FV_CHECK(escapes_to("plain", "plain"));
	FV_CHECK(escapes_to("a\"b\\c", "a\\\"b\\\\c"));
	FV_CHECK(escapes_to("tab\there\nnl\r\b\f\x01\x1f\x7f", "tab\\there\\nnl\\r\\b\\f\\u0001\\u001f\\u007f"));
	FV_CHECK(escapes_to(NULL, ""));
}

FV_TEST(json_utf8_kept_bad_bytes_replaced)
{
	FV_CHECK(escapes_to("caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x90\x88", "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x90\x88"));
	FV_CHECK(escapes_to("caf\xe9", "caf" FFFD));                  /* Latin-1 */
	FV_CHECK(escapes_to("\xc0\xaf", FFFD FFFD));                  /* overlong '/' */
	FV_CHECK(escapes_to("\xe0\x80\xaf", FFFD FFFD FFFD));         /* overlong, 3 bytes */
	FV_CHECK(escapes_to("\xed\xa0\x80", FFFD FFFD FFFD));         /* a surrogate */
	FV_CHECK(escapes_to("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD)); /* past U+10FFFF */
	FV_CHECK(escapes_to("x\xe6\x97", "x" FFFD FFFD));             /* cut short at the end */
	FV_CHECK(escapes_to("\xe6\x97\"", FFFD FFFD "\\\""));         /* cut short by a quote */
	FV_CHECK(escapes_to("\xff\xfe", FFFD FFFD));
}

FV_TEST(json_cut_between_characters)
{
	char buf[8];
	/* three 3-byte characters: 7 bytes of room hold two, not two and a half */
	size_t n = fv_json_escape(buf, sizeof buf, "\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5");
	FV_CHECK_EQ(n, 6);
	FV_CHECK(!strcmp(buf, "\xe6\x97\xa5\xe6\x97\xa5"));
	n = fv_json_escape(buf, sizeof buf, "\"\"\"\"\"\"\"\"");
	FV_CHECK(n == 6 && !strcmp(buf, "\\\"\\\"\\\""));
	FV_CHECK_EQ(fv_json_escape(buf, 0, "abc"), 0);
}

FV_TEST(json_fputs_quotes)
{
	char *mem = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&mem, &len);
	FV_CHECK(f != NULL);
	fv_json_fputs(f, "caf\xe9 \"x\"");
	fv_json_fputs(f, NULL);
	fclose(f);
	FV_CHECK(!strcmp(mem, "\"caf" FFFD " \\\"x\\\"\"\"\""));
	free(mem);
}

FV_TEST(utf8_clean)
{
	char *out = (char *)1;
	FV_CHECK_OK(fv_utf8_clean("caf\xc3\xa9 \xf0\x9f\x90\x88", &out));
	FV_CHECK(out == NULL); /* already UTF-8: no copy */
	FV_CHECK_OK(fv_utf8_clean("a\xe9\xed\xa0\x80z", &out));
	FV_CHECK(out && !strcmp(out, "a" FFFD FFFD FFFD FFFD "z"));
	free(out);
	FV_CHECK_OK(fv_utf8_clean("", &out));
	FV_CHECK(out == NULL);
}
