/* fv_daemon.h — how a fovea process lives: signal handlers that only set a
 * flag, and sd_notify READY/STOPPING/WATCHDOG/STATUS when run under systemd
 * (no-ops otherwise). */
#ifndef FV_DAEMON_H
#define FV_DAEMON_H

#include <signal.h>
#include <stdint.h>

/* Set by SIGTERM/SIGINT (stop), SIGHUP (reload). Poll loops check them. */
extern volatile sig_atomic_t fv_stop_requested;
extern volatile sig_atomic_t fv_reload_requested;

/* fv_stop_requested for threads other than the one that polls it (the
 * handler may run on any thread): an atomic read. */
static inline int fv_stopping(void)
{
	return __atomic_load_n(&fv_stop_requested, __ATOMIC_RELAXED);
}

/* Install the flag-only handlers for SIGTERM, SIGINT, SIGHUP; ignore SIGPIPE. */
int fv_signals_install(void);

/* sd_notify wrappers. fv_sd_ready() once sockets are bound and stores open. */
void fv_sd_ready(void);
void fv_sd_stopping(void);
void fv_sd_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Ping the watchdog if one is configured and half its interval has passed;
 * cheap enough to call from every loop tick. */
void fv_sd_watchdog_tick(void);

/* Monotonic milliseconds, for ticks and deadlines; monotonic seconds with
 * the clock's full resolution, for timing. */
int64_t fv_now_ms(void);
double fv_now_s(void);

#endif
