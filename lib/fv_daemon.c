/* fv_daemon.c — see fv_daemon.h. */
#include "fv_daemon.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <systemd/sd-daemon.h>

volatile sig_atomic_t fv_stop_requested;
volatile sig_atomic_t fv_reload_requested;

static void on_stop(int sig)
{
	(void)sig;
	__atomic_store_n(&fv_stop_requested, 1, __ATOMIC_RELAXED); /* lock-free: signal-safe */
}

static void on_reload(int sig)
{
	(void)sig;
	fv_reload_requested = 1;
}

int fv_signals_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_reload;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	return 0;
}

int64_t fv_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double fv_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void fv_sd_ready(void)
{
	sd_notify(0, "READY=1");
}

void fv_sd_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}

void fv_sd_status(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(buf, sizeof buf, "STATUS=");
	vsnprintf(buf + n, sizeof buf - n, fmt, ap);
	va_end(ap);
	sd_notify(0, buf);
}

void fv_sd_watchdog_tick(void)
{
	static int64_t interval_ms = -1, last;
	if (interval_ms < 0) {
		uint64_t usec = 0;
		interval_ms = sd_watchdog_enabled(0, &usec) > 0 ? (int64_t)(usec / 1000) : 0;
	}
	if (!interval_ms)
		return;
	int64_t now = fv_now_ms();
	if (now - last >= interval_ms / 2) {
		sd_notify(0, "WATCHDOG=1");
		last = now;
	}
}
