/* up/super.c — `fovea up`: start every daemon of the pipeline with ipc://
 * endpoints under one state directory, restart one that dies (exponential
 * backoff, reset once it has stayed up), keep STATE/up.json current
 * (written atomically; `fovea status` reads it), and on SIGTERM/SIGINT stop
 * them all: SIGTERM, wait, SIGKILL.
 *
 *   STATE/db          the dataset (fovea-ingest --watch STATE/inbox)
 *   STATE/run         the training run (trainer, evaluator's eval.jsonl)
 *   STATE/models      exports (vN/, current), watched by fovea-serve
 *   STATE/logs/NAME.log   each daemon's stderr and stdout
 *   STATE/status-NAME.sock  each daemon's status endpoint (fovea status asks it)
 *
 * The trainer waits until the dataset has train and val images, and the
 * evaluator and exporter until the run directory exists; a trainer that
 * finishes (exit 0) is done, not restarted; one restarted after a crash
 * resumes its run. By default the trainer then stays up (--continual) and
 * fine-tunes a round whenever enough new images reach the dataset, so
 * images dropped into the inbox flow through to a re-exported model. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fv_daemon.h"
#include "fv_error.h"
#include "fv_log.h"
#include "fv_store.h"
#include "up/up.h"

#define O(f) offsetof(fv_up_opts, f)
const fv_cfg_opt fv_up_opts_table[] = {
	{ "dir", FV_CFG_STR, O(dir), "", 1, 0, NULL, "state directory (default $XDG_STATE_HOME/fovea, else ./fovea-state)" },
	{ "daemons", FV_CFG_STR, O(daemons), "ingest,trainer,augment,evaluator,exporter,serve", 1, 0, NULL, "which daemons to run, comma-separated" },
	{ "workers", FV_CFG_INT, O(workers), "2", 0, 256, NULL, "augment workers (0 = the trainer starts its own)" },
	{ "model", FV_CFG_STR, O(model), "resnet20", 1, 0, NULL, "model the trainer trains" },
	{ "epochs", FV_CFG_INT, O(epochs), "10", 1, 100000, NULL, "epochs the trainer trains" },
	{ "continual", FV_CFG_BOOL, O(continual), "true", 0, 0, NULL, "after training, the trainer fine-tunes a round whenever enough new inbox images arrive (its --continual; --round-min-new etc. via trainer-args)" },
	{ "http-addr", FV_CFG_STR, O(http_addr), "127.0.0.1", 1, 0, NULL, "address fovea-serve's HTTP listens on" },
	{ "http-port", FV_CFG_INT, O(http_port), "8080", 0, 65535, NULL, "fovea-serve's HTTP port (0 = no HTTP)" },
	{ "ingest-args", FV_CFG_STR, O(ingest_args), "--val-fraction 0.1", 1, 0, NULL, "more fovea-ingest options" },
	{ "trainer-args", FV_CFG_STR, O(trainer_args), "", 1, 0, NULL, "more fovea-trainer options (e.g. --max-steps 1000 --batch 64)" },
	{ "augment-args", FV_CFG_STR, O(augment_args), "--threads 1", 1, 0, NULL, "more fovea-augment options" },
	{ "evaluator-args", FV_CFG_STR, O(evaluator_args), "", 1, 0, NULL, "more fovea-evaluator options" },
	{ "exporter-args", FV_CFG_STR, O(exporter_args), "", 1, 0, NULL, "more fovea-exporter options" },
	{ "serve-args", FV_CFG_STR, O(serve_args), "", 1, 0, NULL, "more fovea-serve options" },
	{ "backoff-min-ms", FV_CFG_INT, O(backoff_min_ms), "500", 10, 3600000, NULL, "first restart delay after a daemon dies" },
	{ "backoff-max-ms", FV_CFG_INT, O(backoff_max_ms), "30000", 10, 3600000, NULL, "longest restart delay (doubles from backoff-min-ms)" },
	{ "stable-ms", FV_CFG_INT, O(stable_ms), "10000", 0, 3600000, NULL, "a child up this long has its backoff reset" },
	{ "stop-timeout-ms", FV_CFG_INT, O(stop_timeout_ms), "15000", 100, 3600000, NULL, "SIGKILL daemons still running this long after SIGTERM" },
	FV_CFG_END,
};

enum dstate { D_WAITING, D_UP, D_BACKOFF, D_DONE, D_STOPPED };
static const char *const state_names[] = { "waiting", "up", "restarting", "done", "down" };

typedef struct child {
	char name[32], program[32];
	char *args[96];          /* argv, strings owned (args_buf) */
	char args_buf[8192];
	int need;                /* 0 none, 1 dataset with train+val, 2 run directory */
	int trainer;
	pid_t pid;
	enum dstate state;
	time_t since;            /* wall clock, for status */
	int64_t started_ms, next_ms;
	long backoff_ms;
	int restarts;
	char last_exit[64];
} child;

typedef struct up {
	fv_up_opts o;
	char state[2048], bindir[PATH_MAX];
	child d[64];
	int n;
	time_t started;
} up;

void fv_up_state_dir(const char *given, char *out, size_t cap)
{
	const char *x = getenv("XDG_STATE_HOME");
	if (given && *given)
		snprintf(out, cap, "%s", given);
	else if (x && *x)
		snprintf(out, cap, "%s/fovea", x);
	else
		snprintf(out, cap, "fovea-state");
}

/* Where fovea up's daemon NAME answers fovea status. */
static void status_args(const up *u, child *d);

/* Append the words of fmt to d's argv: split on blanks, except inside
 * '...' or "..." (config values like trainer-args = --model 'conv 8 3'). */
static void add_args(child *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_args(child *d, const char *fmt, ...)
{
	int n = 0;
	size_t used = 0;
	while (d->args[n])
		n++;
	/* past the last word (quotes were cut out, so not the sum of lengths) */
	if (n)
		used = (size_t)(d->args[n - 1] - d->args_buf) + strlen(d->args[n - 1]) + 1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->args_buf + used, sizeof d->args_buf - used, fmt, ap);
	va_end(ap);
	char *p = d->args_buf + used;
	while (*p && n < 95) {
		while (*p == ' ' || *p == '\t')
			*p++ = 0;
		if (!*p)
			break;
		if (*p == '\'' || *p == '"') { /* 'one argument with blanks' */
			char q = *p++;
			d->args[n++] = p;
			while (*p && *p != q)
				p++;
			if (*p)
				*p++ = 0;
			continue;
		}
		d->args[n++] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
	}
	d->args[n] = NULL;
}

static child *add(up *u, const char *name, const char *program, int need)
{
	child *d = &u->d[u->n++];
	memset(d, 0, sizeof *d);
	snprintf(d->name, sizeof d->name, "%s", name);
	snprintf(d->program, sizeof d->program, "%s", program);
	d->need = need;
	d->state = D_WAITING;
	d->since = time(NULL);
	d->backoff_ms = u->o.backoff_min_ms;
	add_args(d, "%s", program);
	return d;
}

static int wanted(const up *u, const char *name)
{
	const char *p = u->o.daemons;
	size_t n = strlen(name);
	while (p && *p) {
		while (*p == ',' || *p == ' ')
			p++;
		size_t len = strcspn(p, ", ");
		if (len == n && !strncmp(p, name, n))
			return 1;
		p += len;
	}
	return 0;
}

static void plan(up *u)
{
	const fv_up_opts *o = &u->o;
	const char *S = u->state;
	child *d;
	if (wanted(u, "ingest")) {
		d = add(u, "ingest", "fovea-ingest", 0);
		add_args(d, "--watch %s/inbox --db %s/db --pub ipc://%s/ingest.sock %s", S, S, S, o->ingest_args);
	}
	if (wanted(u, "trainer")) {
		d = add(u, "trainer", "fovea-trainer", 1);
		d->trainer = 1; /* its run argument is chosen at each start */
	}
	for (long i = 1; wanted(u, "augment") && i <= o->workers && u->n < 56; i++) {
		char name[32];
		snprintf(name, sizeof name, "augment-%ld", i);
		d = add(u, name, "fovea-augment", 0);
		add_args(d, "--connect ipc://%s/run/augment.sock %s", S, o->augment_args);
	}
	if (wanted(u, "evaluator")) {
		d = add(u, "evaluator", "fovea-evaluator", 2);
		add_args(d, "--runs %s/run --db %s/db %s", S, S, o->evaluator_args);
	}
	if (wanted(u, "exporter")) {
		d = add(u, "exporter", "fovea-exporter", 2);
		add_args(d, "--watch %s/run --db %s/db --out %s/models %s", S, S, S, o->exporter_args);
	}
	if (wanted(u, "serve")) {
		d = add(u, "serve", "fovea-serve", 0);
		add_args(d, "--model-dir %s/models --zmq ipc://%s/serve.sock --http-addr %s --http-port %ld "
			    "--stats %s/serve.json %s", S, S, o->http_addr, o->http_port, S, o->serve_args);
	}
	for (int i = 0; i < u->n; i++)
		if (!u->d[i].trainer && strncmp(u->d[i].name, "augment-", 8))
			status_args(u, &u->d[i]);
}

static void status_args(const up *u, child *d)
{
	char path[2300];
	snprintf(path, sizeof path, "%s/status-%s.sock", u->state, d->name);
	unlink(path); /* a stale one from a killed run would answer nothing */
	add_args(d, "--status-endpoint ipc://%s", path);
}

static int ready(const up *u, const child *d)
{
	char p[2200];
	struct stat st;
	if (d->need == 2) {
		snprintf(p, sizeof p, "%s/run/config", u->state);
		return !stat(p, &st);
	}
	if (d->need == 1) {
		fv_store *s = NULL;
		fv_store_meta m = { 0 };
		snprintf(p, sizeof p, "%s/db", u->state);
		if (stat(p, &st) || fv_store_open(p, FV_STORE_RDONLY, 0, &s))
			return 0;
		int ok = !fv_store_meta_get(s, &m) && m.split[0] > 0 && m.split[1] > 0;
		fv_store_close(&s);
		return ok;
	}
	return 1;
}

static void start(up *u, child *d)
{
	char log[2300], exe[PATH_MAX + 40], ck[2200];
	if (d->trainer) { /* resume a run that has checkpoints; else a new one */
		struct stat st;
		d->args[1] = NULL;
		snprintf(ck, sizeof ck, "%s/run/checkpoints", u->state);
		int resume = !stat(ck, &st);
		add_args(d, "%s %s/run --db %s/db --model '%s' --epochs %ld --workers %d",
			 resume ? "--resume" : "--out", u->state, u->state, u->o.model, u->o.epochs,
			 u->o.workers > 0 ? 0 : 2);
		/* said either way: a resumed run reads its own config first */
		if (u->o.continual && wanted(u, "ingest"))
			add_args(d, "--continual --dataset-sub ipc://%s/ingest.sock", u->state);
		else
			add_args(d, "%s", u->o.continual ? "--continual" : "--no-continual");
		status_args(u, d);
		add_args(d, "%s", u->o.trainer_args);
	}
	snprintf(log, sizeof log, "%s/logs/%s.log", u->state, d->name);
	snprintf(exe, sizeof exe, "%s/%s", u->bindir, d->program);
	pid_t pid = fork();
	if (pid < 0) {
		fv_warn("%s: fork: %s", d->name, strerror(errno));
		return;
	}
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			dup2(fd, 1), dup2(fd, 2);
		if (nul >= 0)
			dup2(nul, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive fovea up */
		setpgid(0, 0);                    /* Ctrl-C reaches fovea up only */
		unsetenv("NOTIFY_SOCKET");        /* systemd talks to fovea up, not to these */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (!access(exe, X_OK))
			execv(exe, d->args);
		execvp(d->program, d->args);
		fprintf(stderr, "fovea up: cannot run %s: %s\n", d->program, strerror(errno));
		_exit(127);
	}
	d->pid = pid;
	d->state = D_UP;
	d->since = time(NULL);
	d->started_ms = fv_now_ms();
	fv_info("%s started (pid %d)", d->name, (int)pid);
}

static void exited(up *u, child *d, int status)
{
	int64_t ran = fv_now_ms() - d->started_ms;
	if (WIFEXITED(status))
		snprintf(d->last_exit, sizeof d->last_exit, "exit %d", WEXITSTATUS(status));
	else
		snprintf(d->last_exit, sizeof d->last_exit, "signal %d", WTERMSIG(status));
	d->pid = 0;
	d->since = time(NULL);
	if (fv_stop_requested) {
		d->state = D_STOPPED;
		return;
	}
	if (d->trainer && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		d->state = D_DONE;
		fv_info("%s finished", d->name);
		return;
	}
	if (ran >= u->o.stable_ms)
		d->backoff_ms = u->o.backoff_min_ms;
	d->state = D_BACKOFF;
	d->next_ms = fv_now_ms() + d->backoff_ms;
	d->restarts++;
	fv_warn("%s died (%s) after %.1f s; restarting in %.1f s", d->name, d->last_exit,
		(double)ran / 1000, (double)d->backoff_ms / 1000);
	d->backoff_ms = d->backoff_ms * 2 > u->o.backoff_max_ms ? u->o.backoff_max_ms : d->backoff_ms * 2;
}

static void reap(up *u)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (int i = 0; i < u->n; i++)
			if (u->d[i].pid == pid)
				exited(u, &u->d[i], status);
}

static void write_status(const up *u, int running)
{
	char path[2200], tmp[2300];
	snprintf(path, sizeof path, "%s/up.json", u->state);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "{\"pid\":%d,\"running\":%s,\"started\":%lld,\"updated\":%lld,\"http_port\":%ld,"
		"\"workers\":%ld,\"daemons\":[", (int)getpid(), running ? "true" : "false",
		(long long)u->started, (long long)time(NULL), u->o.http_port, u->o.workers);
	for (int i = 0; i < u->n; i++) {
		const child *d = &u->d[i];
		fprintf(f, "%s{\"name\":\"%s\",\"pid\":%d,\"state\":\"%s\",\"since\":%lld,\"restarts\":%d,"
			"\"last_exit\":\"%s\"}", i ? "," : "", d->name, (int)d->pid, state_names[d->state],
			(long long)d->since, d->restarts, d->last_exit);
	}
	fprintf(f, "]}\n");
	if (fclose(f) == 0)
		rename(tmp, path);
}

static int in_phase(const child *d, int workers)
{
	return d->pid > 0 && (strncmp(d->name, "augment-", 8) == 0) == workers;
}

/* SIGTERM the daemons of one phase, wait, SIGKILL what is left. */
static void stop_phase(up *u, int workers)
{
	int64_t deadline = fv_now_ms() + u->o.stop_timeout_ms;
	for (int i = 0; i < u->n; i++)
		if (in_phase(&u->d[i], workers))
			kill(u->d[i].pid, SIGTERM);
	for (;;) {
		reap(u);
		int left = 0;
		for (int i = 0; i < u->n; i++)
			left += in_phase(&u->d[i], workers);
		if (!left)
			break;
		if (fv_now_ms() >= deadline) {
			for (int i = 0; i < u->n; i++)
				if (in_phase(&u->d[i], workers)) {
					fv_warn("%s did not stop in time: SIGKILL", u->d[i].name);
					kill(u->d[i].pid, SIGKILL);
				}
			deadline = fv_now_ms() + 5000;
		}
		usleep(50000);
	}
}

/* The workers last: a trainer stopping finishes its step (and checkpoints)
 * with the batches the workers still owe it. */
static void stop_all(up *u)
{
	stop_phase(u, 0);
	stop_phase(u, 1);
}

static int mkdirs(const up *u)
{
	const char *subs[] = { "", "/logs", "/inbox" };
	char p[2200];
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
		snprintf(p, sizeof p, "%s%s", u->state, subs[i]);
		if (mkdir(p, 0755) && errno != EEXIST)
			return fv_err_set(errno, "%s: %s", p, strerror(errno));
	}
	return 0;
}

int fv_up_main(int argc, char **argv)
{
	static up u;
	int npos = 0, help = 0, rc = 1, e;
	fv_cfg_defaults(fv_up_opts_table, &u.o);
	if (fv_cfg_parse_args(fv_up_opts_table, &u.o, argc, argv, &npos, &help) || help || npos) {
		if (!help)
			fprintf(stderr, "fovea up: %s\n", npos ? "unexpected argument" : fv_err_msg(FV_E_CONFIG));
		fprintf(help ? stdout : stderr, "usage: fovea up [-c FILE] [--workers N] [--dir STATE] [options]\n\n"
			"Runs every fovea child here; drop images into STATE/inbox/<class>/.\n\n");
		fv_cfg_help(fv_up_opts_table, help ? stdout : stderr, 0);
		fv_cfg_free(fv_up_opts_table, &u.o);
		return help ? 0 : 2;
	}
	fv_log_init("fovea up", FV_LOG_INFO);
	fv_up_state_dir(u.o.dir, u.state, sizeof u.state);
	if (u.state[0] != '/') { /* daemons get absolute paths: ipc:// names and logs */
		char cwd[1024], abs[2048 + 1024];
		if (getcwd(cwd, sizeof cwd) && strlen(cwd) + strlen(u.state) + 2 <= sizeof u.state) {
			snprintf(abs, sizeof abs, "%s/%s", cwd, u.state);
			memcpy(u.state, abs, strlen(abs) + 1); /* fits: checked above */
		}
	}
	ssize_t len = readlink("/proc/self/exe", u.bindir, sizeof u.bindir - 1);
	if (len > 0) {
		u.bindir[len] = 0;
		char *slash = strrchr(u.bindir, '/');
		if (slash)
			*slash = 0;
	}
	if ((e = mkdirs(&u))) {
		fv_err("%s", fv_err_msg(e));
		goto out;
	}
	fv_signals_install();
	u.started = time(NULL);
	plan(&u);
	fv_info("state in %s: %d daemons; images go into %s/inbox/<class>/", u.state, u.n, u.state);
	write_status(&u, 1);
	fv_sd_ready();
	int64_t last_write = 0;
	while (!fv_stop_requested) {
		int changed = 0;
		reap(&u);
		for (int i = 0; i < u.n && !fv_stop_requested; i++) {
			child *d = &u.d[i];
			if ((d->state == D_WAITING && ready(&u, d)) ||
			    (d->state == D_BACKOFF && fv_now_ms() >= d->next_ms)) {
				start(&u, d);
				changed = 1;
			}
		}
		if (changed || fv_now_ms() - last_write >= 1000) {
			write_status(&u, 1);
			last_write = fv_now_ms();
		}
		fv_sd_watchdog_tick();
		usleep(100000);
	}
	fv_sd_stopping();
	fv_info("stopping %d daemons", u.n);
	stop_all(&u);
	rc = 0;
out:
	write_status(&u, 0);
	fv_cfg_free(fv_up_opts_table, &u.o);
	return rc;
}
