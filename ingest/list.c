/* list.c — the text inputs of fovea-ingest: Caffe convert_imageset list
 * files ("<path> <label>" per line) and --labels files (one class name per
 * line). The parser works on a byte buffer so the fuzzer can drive it. */
#include "ingest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fv_error.h"

#define LINE_MAX_BYTES 8192

static int blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

int ing_list_parse(const char *buf, size_t len, const char *name, ing_list_fn fn, void *ctx)
{
	char line[LINE_MAX_BYTES];
	size_t pos = 0, lineno = 0;
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;
		lineno++;
		if (n >= sizeof line)
			return fv_err_set(FV_E_FORMAT, "%s:%zu: line too long", name, lineno);
		memcpy(line, buf + pos, n);
		line[n] = 0;
		pos += n + 1;
		if (memchr(line, 0, n))
			return fv_err_set(FV_E_FORMAT, "%s:%zu: NUL byte in line", name, lineno);
		while (n && blank(line[n - 1])) /* trailing blanks, CR */
			line[--n] = 0;
		char *p = line;
		while (blank(*p))
			p++;
		if (!*p || *p == '#')
			continue;
		char *sep = p + strlen(p);
		while (sep > p && !blank(sep[-1]))
			sep--;
		if (sep == p)
			return fv_err_set(FV_E_FORMAT, "%s:%zu: expected '<path> <label>'", name, lineno);
		char *label = sep;
		while (sep > p && blank(sep[-1]))
			sep--;
		*sep = 0;
		int rc = fn(ctx, p, label, lineno);
		if (rc)
			return rc;
	}
	return 0;
}

void ing_labels_free(char ***names, size_t n)
{
	if (!*names)
		return;
	for (size_t i = 0; i < n; i++)
		free((*names)[i]);
	free(*names);
	*names = NULL;
}

int ing_labels_read(const char *path, char ***out, size_t *n)
{
	FILE *f = fopen(path, "r");
	char line[1024], **v = NULL;
	size_t cnt = 0, cap = 0;
	int rc = 0;
	*out = NULL;
	*n = 0;
	if (!f)
		return fv_err_set(errno, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof line, f)) {
		size_t l = strlen(line);
		while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
			line[--l] = 0;
		if (!l)
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			char **g = realloc(v, cap * sizeof *g);
			if (!g) {
				rc = ENOMEM;
				break;
			}
			v = g;
		}
		if (!(v[cnt] = strdup(line))) {
			rc = ENOMEM;
			break;
		}
		cnt++;
	}
	fclose(f);
	if (rc) {
		ing_labels_free(&v, cnt);
		return rc;
	}
	*out = v;
	*n = cnt;
	return 0;
}
