/* fv_log.c — one line per call, written with a single write(2) so lines from
 * threads and processes sharing stderr never interleave. */
#include "fv_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>

static char prog[64] = "fovea";
static int max_level = FV_LOG_INFO;
static int journal = -1;
static int tee_fd = -1;

int fv_log_tee(const char *path)
{
	if (tee_fd >= 0)
		close(tee_fd);
	tee_fd = -1;
	if (!path)
		return 0;
	tee_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	return tee_fd < 0 ? errno : 0;
}

void fv_log_init(const char *progname, int level)
{
	const char *base = progname ? strrchr(progname, '/') : NULL;
	if (progname)
		snprintf(prog, sizeof prog, "%s", base ? base + 1 : progname);
	if (level > 0)
		max_level = level;
	journal = getenv("JOURNAL_STREAM") != NULL;
}

void fv_log_set_level(int level)
{
	max_level = level;
}

int fv_log_level_parse(const char *s)
{
	static const struct { const char *name; int level; } t[] = {
		{ "error", FV_LOG_ERR }, { "warn", FV_LOG_WARN },
		{ "info", FV_LOG_INFO }, { "debug", FV_LOG_DEBUG },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!strcasecmp(s, t[i].name))
			return t[i].level;
	return -1;
}

void fv_log(int level, const char *fmt, ...)
{
	static const char *const tag[8] = { "", "", "", "error: ", "warning: ", "", "", "debug: " };
	char line[2048];
	int n = 0;
	va_list ap;

	if (level > max_level)
		return;
	if (journal < 0)
		journal = getenv("JOURNAL_STREAM") != NULL;
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	int pre = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %s[%d]: %s",
			   tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
			   prog, (int)getpid(), tag[level & 7]);
	n = pre;
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	ssize_t w;
	if (tee_fd >= 0)
		w = write(tee_fd, line, n);
	if (journal) {
		/* journald adds its own time and name: a <N> priority prefix only */
		char jl[2100];
		int jn = snprintf(jl, sizeof jl, "<%d>%.*s", level, n - pre, line + pre);
		w = write(STDERR_FILENO, jl, jn < (int)sizeof jl ? jn : (int)sizeof jl - 1);
	} else {
		w = write(STDERR_FILENO, line, n);
	}
	(void)w;
}
