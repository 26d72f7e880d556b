/* Unit tests for lib/fv_curve (key files, keygen, allow-lists) and CURVE on
 * the augment endpoints with real fovea-augment processes (from build/bin
 * beside this test's directory), all on 127.0.0.1:
 *  - a CURVE broker admits a worker with an allowed key (batches come back
 *    byte-identical to fv_aug_sample run here), refuses one with an unknown
 *    key and one in plain text, and keeps serving the allowed one;
 *  - the allowed worker talks through a relay of ours that records every
 *    byte: a marker in the sample bytes must not appear in that stream, and
 *    must appear in a control run without CURVE (so the check can fail);
 *  - a raw TCP client speaking plain ZMTP gets no more than the server's
 *    greeting and is cut off (without CURVE it gets READY and stays);
 *  - CURVE over ipc:// with a local worker (the server's own pair). */
#include "fv_test.h"
#include "fv_augc.h"
#include "fv_curve.h"
#include "fv_daemon.h"
#include "fv_error.h"
#include "augment/transform.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define MARK "fovea:curve:MARK" /* 16 bytes that must never be seen on the wire */
#define SIDE 28
#define NB 6
#define BS 8

static void sleep_ms(int ms)
{
	nanosleep(&(struct timespec){ ms / 1000, (ms % 1000) * 1000000L }, NULL);
}

static void put_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	FV_CHECK(f != NULL);
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static const char *tmp(const char *name)
{
	static char buf[8][PATH_MAX];
	static int k;
	char *p = buf[k++ % 8];
	snprintf(p, PATH_MAX, "%s/%s", fv_test_tmpdir(), name);
	return p;
}

/* ------------------------------------------------------------ key files */

FV_TEST(curve_key_errors)
{
	fv_curve_keypair kp, kp2;
	char key[FV_CURVE_Z85 + 1];
	char d[PATH_MAX];
	snprintf(d, sizeof d, "%s", tmp("keys"));
	mkdir(d, 0700);
	FV_CHECK_OK(fv_curve_keygen(d, "a", &kp));
	struct stat st;
	FV_CHECK(!stat(tmp("keys/a.key"), &st) && (st.st_mode & 0777) == 0600);
	FV_CHECK_EQ(fv_curve_keygen(d, "a", NULL), EEXIST); /* never overwrites */
	FV_CHECK_EQ(fv_curve_keygen(d, "../x", NULL), FV_E_CONFIG);

	FV_CHECK_OK(fv_curve_keypair_load(tmp("keys/a.key"), NULL, &kp2));
	FV_CHECK(!strcmp(kp.pub, kp2.pub) && !strcmp(kp.sec, kp2.sec));
	FV_CHECK_OK(fv_curve_key_read(tmp("keys/a.pub"), 0, key));
	FV_CHECK(!strcmp(key, kp.pub));

	int rc = fv_curve_key_read(tmp("keys/none.key"), 1, key);
	FV_CHECK_EQ(rc, FV_E_NOTFOUND);
	FV_CHECK(strstr(fv_err_msg(rc), "none.key") != NULL);

	put_file(tmp("keys/short.pub"), "abcdef\n", 0644);
	rc = fv_curve_key_read(tmp("keys/short.pub"), 0, key);
	FV_CHECK_EQ(rc, FV_E_FORMAT);
	FV_CHECK(strstr(fv_err_msg(rc), "short.pub") != NULL);

	char bad[64];
	snprintf(bad, sizeof bad, "%s\n", kp.pub);
	bad[7] = '~'; /* not in the Z85 alphabet */
	put_file(tmp("keys/notz85.pub"), bad, 0644);
	rc = fv_curve_key_read(tmp("keys/notz85.pub"), 0, key);
	FV_CHECK_EQ(rc, FV_E_FORMAT);
	FV_CHECK(strstr(fv_err_msg(rc), "notz85.pub") && strstr(fv_err_msg(rc), "Z85"));

	/* a secret others can read is refused; the same file as a public key is fine */
	snprintf(bad, sizeof bad, "%s\n", kp.sec);
	put_file(tmp("keys/open.key"), bad, 0644);
	rc = fv_curve_keypair_load(tmp("keys/open.key"), tmp("keys/a.pub"), &kp2);
	FV_CHECK_EQ(rc, FV_E_CONFIG);
	FV_CHECK(strstr(fv_err_msg(rc), "open.key") && strstr(fv_err_msg(rc), "readable"));
	FV_CHECK_OK(fv_curve_key_read(tmp("keys/open.key"), 0, key));
	chmod(tmp("keys/open.key"), 0640); /* group-readable (root:fovea 0640) is allowed */
	FV_CHECK_OK(fv_curve_keypair_load(tmp("keys/open.key"), tmp("keys/a.pub"), &kp2));

	/* a .pub that is not the secret's own */
	FV_CHECK_OK(fv_curve_keygen(d, "b", NULL));
	rc = fv_curve_keypair_load(tmp("keys/a.key"), tmp("keys/b.pub"), &kp2);
	FV_CHECK_EQ(rc, FV_E_MISMATCH);
	/* no .pub beside: derived */
	snprintf(bad, sizeof bad, "%s\n", kp.sec);
	put_file(tmp("keys/lone.key"), bad, 0600);
	FV_CHECK_OK(fv_curve_keypair_load(tmp("keys/lone.key"), NULL, &kp2));
	FV_CHECK(!strcmp(kp2.pub, kp.pub));

	char pp[64];
	FV_CHECK_OK(fv_curve_pub_path("/etc/fovea/server.key", pp, sizeof pp));
	FV_CHECK(!strcmp(pp, "/etc/fovea/server.pub"));
}

FV_TEST(curve_allow_list_errors)
{
	fv_curve_keypair kp;
	fv_zap *z = NULL;
	void *ctx = zmq_ctx_new();
	char d[PATH_MAX];
	snprintf(d, sizeof d, "%s", tmp("allow-bad"));
	mkdir(d, 0700);
	FV_CHECK_OK(fv_curve_keygen(d, "ok", &kp));
	put_file(tmp("allow-bad/broken.pub"), "not a key\n", 0644);
	int rc = fv_zap_new(&z, ctx, d, NULL);
	FV_CHECK_EQ(rc, FV_E_FORMAT);
	FV_CHECK(strstr(fv_err_msg(rc), "broken.pub") != NULL);
	FV_CHECK(z == NULL);

	char text[256];
	snprintf(text, sizeof text, "# workers\n%s host-a\n\n%.39s host-b\n", kp.pub, kp.pub);
	put_file(tmp("allow.txt"), text, 0644);
	rc = fv_zap_new(&z, ctx, tmp("allow.txt"), NULL);
	FV_CHECK_EQ(rc, FV_E_FORMAT);
	FV_CHECK(strstr(fv_err_msg(rc), "allow.txt:4") != NULL);

	rc = fv_zap_new(&z, ctx, tmp("no-such-list"), NULL);
	FV_CHECK_EQ(rc, FV_E_NOTFOUND);

	snprintf(text, sizeof text, "# workers\n%s host-a  # the first\n", kp.pub);
	put_file(tmp("allow.txt"), text, 0644);
	FV_CHECK_OK(fv_zap_new(&z, ctx, tmp("allow.txt"), NULL));
	int n = 0;
	if (z)
		fv_zap_counts(z, NULL, NULL, &n);
	FV_CHECK_EQ(n, 1);
	/* a broken edit keeps the old list in force */
	put_file(tmp("allow.txt"), "garbage\n", 0644);
	if (z) {
		FV_CHECK_EQ(fv_zap_reload(z), FV_E_FORMAT);
		fv_zap_counts(z, NULL, NULL, &n);
		FV_CHECK_EQ(n, 1);
	}
	fv_zap_destroy(&z);
	zmq_ctx_term(ctx);

	/* the client refuses half a configuration */
	fv_augc_opts o;
	fv_augc *c = NULL;
	fv_augc_opts_default(&o);
	o.endpoint = "tcp://127.0.0.1:*";
	o.curve_secret_key = tmp("allow-bad/ok.key");
	FV_CHECK_EQ(fv_augc_new(&c, &o), FV_E_CONFIG);
	o.curve_secret_key = NULL;
	o.curve_allow = d;
	FV_CHECK_EQ(fv_augc_new(&c, &o), FV_E_CONFIG);
	FV_CHECK(c == NULL);
}

/* ------------------------------------------------------------ a recording relay */

typedef struct relay {
	int lfd, port, stopfd[2];
	int up_port;
	pthread_t thr;
	pthread_mutex_t mu;
	uint8_t *rec;
	size_t len, cap;
	int conns;
} relay;

static int tcp_listen(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 8) ||
	    getsockname(fd, (struct sockaddr *)&a, &al))
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

static int tcp_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void record(relay *r, const uint8_t *p, size_t n)
{
	pthread_mutex_lock(&r->mu);
	if (r->len + n > r->cap) {
		size_t cap = (r->len + n) * 2;
		uint8_t *v = realloc(r->rec, cap);
		if (v)
			r->rec = v, r->cap = cap;
	}
	if (r->len + n <= r->cap)
		memcpy(r->rec + r->len, p, n), r->len += n;
	pthread_mutex_unlock(&r->mu);
}

/* One connection at a time (the worker's), both ways, every byte recorded. */
static void *relay_main(void *arg)
{
	relay *r = arg;
	uint8_t buf[65536];
	for (;;) {
		struct pollfd a[2] = { { r->lfd, POLLIN, 0 }, { r->stopfd[0], POLLIN, 0 } };
		if (poll(a, 2, -1) < 0 || (a[1].revents & POLLIN))
			return NULL;
		int in = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC), out = tcp_connect(r->up_port);
		r->conns++;
		for (int open = in >= 0 && out >= 0; open;) {
			struct pollfd p[3] = { { in, POLLIN, 0 }, { out, POLLIN, 0 },
					       { r->stopfd[0], POLLIN, 0 } };
			if (poll(p, 3, -1) < 0 || (p[2].revents & POLLIN)) {
				close(in), close(out);
				return NULL;
			}
			for (int k = 0; k < 2 && open; k++) {
				if (!p[k].revents)
					continue;
				ssize_t n = read(p[k].fd, buf, sizeof buf);
				if (n <= 0 || write(p[1 - k].fd, buf, n) != n)
					open = 0;
				else
					record(r, buf, n);
			}
		}
		if (in >= 0)
			close(in);
		if (out >= 0)
			close(out);
	}
}

static int relay_start(relay *r, int up_port)
{
	memset(r, 0, sizeof *r);
	r->up_port = up_port;
	pthread_mutex_init(&r->mu, NULL);
	if ((r->lfd = tcp_listen(&r->port)) < 0 || pipe(r->stopfd))
		return -1;
	return pthread_create(&r->thr, NULL, relay_main, r);
}

static void relay_stop(relay *r)
{
	if (write(r->stopfd[1], "x", 1) != 1)
		return;
	pthread_join(r->thr, NULL);
	close(r->lfd);
	close(r->stopfd[0]);
	close(r->stopfd[1]);
}

/* ------------------------------------------------------------ workers */

/* fovea-augment --connect ep, with CURVE keys if key is set, its log into
 * log if set. */
static pid_t worker_start_log(const char *ep, const char *key, const char *server,
			      const char *log)
{
	char exe[PATH_MAX];
	const char *bin = getenv("FV_BIN");
	if (bin) {
		snprintf(exe, sizeof exe, "%s/fovea-augment", bin);
	} else {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 40);
		exe[n > 0 ? n : 0] = 0;
		char *slash = strrchr(exe, '/');
		strcpy(slash ? slash : exe, "/../bin/fovea-augment");
	}
	char *argv[16] = { exe, "--connect", (char *)ep, "--threads", "1", "--heartbeat-ms", "100",
			   "--log-level", "warn" };
	int k = 9;
	if (key) {
		argv[k++] = "--curve-key", argv[k++] = (char *)key;
		argv[k++] = "--server-key", argv[k++] = (char *)server;
	}
	pid_t pid = fork();
	if (pid == 0) {
		int fd = log ? open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
		if (fd >= 0)
			dup2(fd, 2);
		execv(exe, argv);
		_exit(127);
	}
	return pid;
}

static pid_t worker_start_ep(const char *ep, const char *key, const char *server)
{
	return worker_start_log(ep, key, server, NULL);
}

static pid_t worker_start(int port, const char *key, const char *server, const char *log)
{
	char ep[64];
	snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
	return worker_start_log(ep, key, server, log);
}

/* Does the file at path contain text? */
static int file_has(const char *path, const char *text)
{
	char buf[16384];
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = 0;
	return strstr(buf, text) != NULL;
}

static void worker_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

static int wait_workers(fv_augc *c, int n, int ms)
{
	for (int64_t end = fv_now_ms() + ms; fv_now_ms() < end; sleep_ms(10))
		if (fv_augc_workers(c, NULL) == n)
			return 1;
	return fv_augc_workers(c, NULL) == n;
}

static int endpoint_port(fv_augc *c)
{
	const char *colon = strrchr(fv_augc_endpoint(c), ':');
	return colon ? atoi(colon + 1) : -1;
}

/* Samples: raw 28x28 grey, the marker repeated, then a per-sample tag. */
static uint8_t px[NB * BS][SIDE * SIDE];

static void make_samples(fv_aug_input *in)
{
	for (int i = 0; i < NB * BS; i++) {
		for (int j = 0; j < SIDE * SIDE; j++)
			px[i][j] = (uint8_t)MARK[j % 16];
		px[i][SIDE * SIDE - 1] = (uint8_t)i;
		px[i][SIDE * SIDE - 2] = (uint8_t)(fv_test_rand() & 0xff);
		in[i] = (fv_aug_input){ FV_ENC_RAW, px[i], SIDE * SIDE, SIDE, SIDE, 1 };
	}
}

/* NB batches through c; each compared with fv_aug_sample. Returns batches right. */
static int run_batches(fv_augc *c)
{
	fv_aug_params p;
	fv_aug_input in[NB * BS];
	uint64_t seeds[NB * BS];
	fv_aug_scratch *s = NULL;
	int good = 0;
	fv_aug_defaults(&p, FV_AUG_TRAIN, 1, SIDE, SIDE);
	p.rrc = 0;
	p.pad = 2;
	make_samples(in);
	for (int i = 0; i < NB * BS; i++)
		seeds[i] = fv_test_rand();
	size_t sb = fv_aug_out_bytes(&p);
	uint8_t *want = malloc(sb);
	if (!want || fv_aug_scratch_new(&s))
		goto out;
	for (int b = 0; b < NB; b++)
		if (fv_augc_submit(c, 1, b, &p, in + b * BS, seeds + b * BS, BS, NULL))
			goto out;
	for (int k = 0; k < NB; k++) {
		fv_augc_batch *bt = NULL;
		if (fv_augc_next(c, &bt, 10000))
			break;
		int same = !bt->rc && bt->n == BS && bt->sample_bytes == sb;
		for (int i = 0; same && i < BS; i++) {
			int g = (int)bt->index * BS + i;
			fv_aug_sample(&p, &in[g], seeds[g], want, s);
			same = !memcmp(want, (const uint8_t *)bt->data + i * sb, sb);
		}
		good += same;
		fv_augc_release(c, &bt);
	}
out:
	fv_aug_scratch_destroy(&s);
	free(want);
	return good;
}

/* A client in plain ZMTP: what does the CURVE server tell it? Returns the
 * bytes received before the server hung up (or 2 s passed), into buf. */
static ssize_t plain_zmtp_probe(int port, uint8_t *buf, size_t cap, int *closed)
{
	uint8_t greet[64] = { 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0, 'N', 'U', 'L', 'L' };
	size_t got = 0;
	int sent = 0;
	*closed = 0;
	int fd = tcp_connect(port);
	if (fd < 0)
		return -1;
	/* wait for the server's signature before sending ours, as the server
	 * does: it sends the rest of its greeting (the mechanism) only then */
	for (int64_t end = fv_now_ms() + 2000; fv_now_ms() < end && got < cap;) {
		if (!sent && (got >= 10 || fv_now_ms() > end - 1500)) {
			if (write(fd, greet, sizeof greet) != sizeof greet)
				break;
			sent = 1;
		}
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 50) <= 0)
			continue;
		ssize_t n = read(fd, buf + got, cap - got);
		if (n <= 0) {
			*closed = 1;
			break;
		}
		got += n;
	}
	close(fd);
	return (ssize_t)got;
}

static int contains(const uint8_t *hay, size_t n, const char *needle)
{
	return memmem(hay, n, needle, strlen(needle)) != NULL;
}

/* ------------------------------------------------------------ CURVE over tcp */

FV_TEST(curve_tcp_workers)
{
	fv_curve_keypair kp;
	fv_augc_opts o;
	fv_augc *c = NULL;
	relay r;
	mkdir(tmp("tcp"), 0700);
	mkdir(tmp("tcp/allow"), 0700);
	char line[64];
	FV_CHECK_OK(fv_curve_keygen(tmp("tcp"), "server", NULL));
	FV_CHECK_OK(fv_curve_keygen(tmp("tcp"), "good", &kp));
	FV_CHECK_OK(fv_curve_keygen(tmp("tcp"), "stranger", NULL));
	snprintf(line, sizeof line, "%s\n", kp.pub);
	put_file(tmp("tcp/allow/good.pub"), line, 0644);

	fv_augc_opts_default(&o);
	o.endpoint = "tcp://127.0.0.1:*";
	o.heartbeat_ms = 100;
	o.timeout_ms = 10000;
	o.shm = 0;
	o.curve_secret_key = tmp("tcp/server.key");
	o.curve_allow = tmp("tcp/allow");
	FV_CHECK_OK(fv_augc_new(&c, &o));
	if (!c)
		return;
	int port = endpoint_port(c);
	FV_CHECK_OK(relay_start(&r, port));

	pid_t good = worker_start(r.port, tmp("tcp/good.key"), tmp("tcp/server.pub"), NULL);
	pid_t stranger = worker_start(port, tmp("tcp/stranger.key"), tmp("tcp/server.pub"),
				      tmp("tcp/stranger.log"));
	pid_t plain = worker_start(port, NULL, NULL, tmp("tcp/plain.log"));
	FV_CHECK(wait_workers(c, 1, 5000));
	sleep_ms(800); /* time for the others to be refused, a few times over */
	FV_CHECK_EQ(fv_augc_workers(c, NULL), 1);
	fv_augc_stats st;
	fv_augc_stats_get(c, &st);
	FV_CHECK(st.curve_admitted >= 1);
	FV_CHECK(st.curve_refused >= 1); /* the stranger; plain text never reaches ZAP */

	FV_CHECK_EQ(run_batches(c), NB);
	fv_augc_stats_get(c, &st);
	FV_CHECK(st.sent >= NB);
	FV_CHECK_EQ(fv_augc_workers(c, NULL), 1);
	/* the refused processes are still trying, not admitted, not crashed */
	FV_CHECK(waitpid(stranger, NULL, WNOHANG) == 0 && waitpid(plain, NULL, WNOHANG) == 0);
	/* and each was told why, in one line */
	/* (a loaded machine may start a worker late: give the line 10 s) */
	for (int i = 0; i < 100 && !(file_has(tmp("tcp/stranger.log"), "refused our key") &&
				     file_has(tmp("tcp/plain.log"), "requires CURVE")); i++)
		sleep_ms(100);
	FV_CHECK(file_has(tmp("tcp/stranger.log"), "refused our key"));
	FV_CHECK(file_has(tmp("tcp/plain.log"), "requires CURVE"));

	uint8_t greet[256];
	int closed;
	ssize_t n = plain_zmtp_probe(port, greet, sizeof greet, &closed);
	FV_CHECK(n >= 10 && n <= 64); /* its signature, a greeting at most: no READY, no data */
	FV_CHECK(n >= 0 && !contains(greet, n, "READY"));
	FV_CHECK(closed);

	worker_stop(good);
	worker_stop(stranger);
	worker_stop(plain);
	fv_augc_destroy(&c);
	relay_stop(&r);
	FV_CHECK(r.len > (size_t)NB * BS * SIDE * SIDE); /* the traffic went through us */
	FV_CHECK(!contains(r.rec, r.len, MARK));
	free(r.rec);
}

/* The control: the same worker and relay without CURVE. The marker must be
 * seen, or the check above proves nothing. */
FV_TEST(curve_control_plain_is_readable)
{
	fv_augc_opts o;
	fv_augc *c = NULL;
	relay r;
	fv_augc_opts_default(&o);
	o.endpoint = "tcp://127.0.0.1:*";
	o.heartbeat_ms = 100;
	o.timeout_ms = 10000;
	o.shm = 0;
	FV_CHECK_OK(fv_augc_new(&c, &o));
	if (!c)
		return;
	FV_CHECK_OK(relay_start(&r, endpoint_port(c)));
	pid_t w = worker_start(r.port, NULL, NULL, NULL);
	FV_CHECK(wait_workers(c, 1, 5000));
	uint8_t greet[256];
	int closed;
	ssize_t n = plain_zmtp_probe(endpoint_port(c), greet, sizeof greet, &closed);
	FV_CHECK(n > 64 && contains(greet, n, "READY") && !closed); /* the probe can tell */

	FV_CHECK_EQ(run_batches(c), NB);
	worker_stop(w);
	fv_augc_destroy(&c);
	relay_stop(&r);
	FV_CHECK(contains(r.rec, r.len, MARK));
	free(r.rec);
}

/* CURVE on ipc:// too, with a local worker started by the client (it gets
 * the server's own pair); and an allow-list edit admits a new key without a
 * restart. */
FV_TEST(curve_ipc_local_and_reload)
{
	fv_curve_keypair kp;
	fv_augc_opts o;
	fv_augc *c = NULL;
	char ep[PATH_MAX + 16], line[64];
	mkdir(tmp("ipc"), 0700);
	mkdir(tmp("ipc/allow"), 0700);
	FV_CHECK_OK(fv_curve_keygen(tmp("ipc"), "server", NULL));
	FV_CHECK_OK(fv_curve_keygen(tmp("ipc"), "late", &kp));
	snprintf(ep, sizeof ep, "ipc://%s", tmp("ipc/aug.sock"));
	fv_augc_opts_default(&o);
	o.endpoint = ep;
	o.heartbeat_ms = 100;
	o.timeout_ms = 10000;
	o.curve_secret_key = tmp("ipc/server.key");
	o.curve_allow = tmp("ipc/allow");
	FV_CHECK_OK(fv_augc_new(&c, &o));
	if (!c)
		return;
	FV_CHECK_OK(fv_augc_spawn_local(c, 1, 1));
	FV_CHECK(wait_workers(c, 1, 5000));
	FV_CHECK_EQ(run_batches(c), NB);

	/* a worker whose key is not (yet) allowed is refused on ipc:// too */
	pid_t late = worker_start_ep(ep, tmp("ipc/late.key"), tmp("ipc/server.pub"));
	sleep_ms(600);
	FV_CHECK_EQ(fv_augc_workers(c, NULL), 1);
	snprintf(line, sizeof line, "%s\n", kp.pub);
	put_file(tmp("ipc/allow/late.pub"), line, 0644);
	FV_CHECK(wait_workers(c, 2, 8000)); /* re-read on its next try, no restart */
	worker_stop(late);
	fv_augc_destroy(&c);
}
