/* nn/optim/params.c — selecting parameters by name pattern (syntax in
 * nn/ckpt.h) and freezing them, for transfer learning and partial loads. */
#include "nn/ckpt.h"

#include <fnmatch.h>
#include <string.h>

#include "fv_error.h"

int fv_params_match(const char *patterns, const char *name)
{
	char glob[1024];
	const char *p = patterns;
	int selected = 0, first = 1;

	while (*p) {
		size_t len = strcspn(p, ",");
		const char *g = p;
		int neg = 0;
		while (len && (*g == ' ' || *g == '\t'))
			g++, len--;
		while (len && (g[len - 1] == ' ' || g[len - 1] == '\t'))
			len--;
		if (len && *g == '!')
			neg = 1, g++, len--;
		if (first && neg)
			selected = 1;
		first = 0;
		if (len && len < sizeof glob) {
			memcpy(glob, g, len);
			glob[len] = 0;
			if (!fnmatch(glob, name, 0))
				selected = !neg;
		}
		p += strcspn(p, ",");
		if (*p)
			p++;
	}
	return selected;
}

int fv_params_freeze(fv_param *params, size_t n, const char *patterns, int frozen,
		     size_t *matched)
{
	size_t m = 0;

	if (matched)
		*matched = 0;
	if (!patterns || !patterns[strspn(patterns, " \t,")])
		return fv_err_set(FV_E_CONFIG, "freeze: empty pattern list");
	for (size_t i = 0; i < n; i++) {
		if (!fv_params_match(patterns, params[i].name))
			continue;
		params[i].frozen = frozen;
		m++;
	}
	if (matched)
		*matched = m;
	if (!m && n)
		return fv_err_set(FV_E_NOTFOUND, "freeze: \"%s\" matches no parameter (names look "
				  "like \"%s\")", patterns, params[0].name);
	return 0;
}
