/* fv_log.h — logging to stderr. Under systemd (JOURNAL_STREAM set) each line
 * carries a <N> syslog priority prefix journald understands; on a terminal or
 * a file it carries a timestamp and the program name. Never writes stdout. */
#ifndef FV_LOG_H
#define FV_LOG_H

enum { FV_LOG_ERR = 3, FV_LOG_WARN = 4, FV_LOG_INFO = 6, FV_LOG_DEBUG = 7 };

/* Name shown in each line (argv[0]'s basename is a good choice) and the
 * most verbose level printed (default FV_LOG_INFO). */
void fv_log_init(const char *progname, int level);
void fv_log_set_level(int level);
/* Parse "error", "warn", "info", "debug" into a level; -1 if unknown. */
int fv_log_level_parse(const char *s);

/* Also append every line to this file (e.g. RUNDIR/trainer.log), with the
 * timestamp form; NULL stops. Returns 0 or errno. */
int fv_log_tee(const char *path);

void fv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define fv_err(...)   fv_log(FV_LOG_ERR, __VA_ARGS__)
#define fv_warn(...)  fv_log(FV_LOG_WARN, __VA_ARGS__)
#define fv_info(...)  fv_log(FV_LOG_INFO, __VA_ARGS__)
#define fv_debug(...) fv_log(FV_LOG_DEBUG, __VA_ARGS__)

#endif
