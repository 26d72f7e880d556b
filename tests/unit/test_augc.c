/* Unit tests for the augment protocol: lib/fv_augc (client) against real
 * fovea-augment worker processes (from build/bin beside this test's
 * directory), plus fake peers on raw sockets for malformed traffic.
 * Every delivered batch is compared byte for byte with fv_aug_sample run
 * here, so "same bytes" means "same as the reference", not just "same as
 * each other". Heartbeats are 100 ms x 3 so failures are noticed quickly. */
#include "fv_test.h"
#include "fv_augc.h"
#include "fv_augwire.h"
#include "fv_daemon.h"
#include "fv_error.h"
#include "augment/transform.h"
#include "augment/transform_pb.h"

#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zmq.h>

#define FASHION "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
#define NFASHION 256
#define MAXJPEG 24

static uint8_t fashion_px[NFASHION][28 * 28];
static fv_aug_input fashion[NFASHION];
static uint8_t *jpeg_data[MAXJPEG];
static fv_aug_input jpegs[MAXJPEG];
static int njpegs = -1;

static void sleep_ms(int ms)
{
	nanosleep(&(struct timespec){ ms / 1000, (ms % 1000) * 1000000L }, NULL);
}

static int load_fashion(void)
{
	static int loaded;
	if (loaded)
		return 0;
	gzFile f = gzopen(FASHION, "rb");
	uint8_t hdr[16];
	if (!f)
		return -1;
	if (gzread(f, hdr, 16) != 16 || hdr[2] != 8 || hdr[3] != 3 ||
	    gzread(f, fashion_px, sizeof fashion_px) != (int)sizeof fashion_px) {
		gzclose(f);
		return -1;
	}
	gzclose(f);
	for (int i = 0; i < NFASHION; i++)
		fashion[i] = (fv_aug_input){ FV_ENC_RAW, fashion_px[i], 28 * 28, 28, 28, 1 };
	loaded = 1;
	return 0;
}

static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The first MAXJPEG of the shared jpeg-bench photos, by name. */
static int load_jpegs(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 300], *names[1024];
	int nn = 0;
	if (njpegs >= 0)
		return njpegs;
	njpegs = 0;
	const char *shared = fv_test_shared_data();
	if (!shared)
		return 0;
	snprintf(dir, sizeof dir, "%s/jpeg-bench", shared);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d)) && nn < 1024;)
		if (strstr(e->d_name, ".jpg"))
			names[nn++] = strdup(e->d_name);
	closedir(d);
	qsort(names, nn, sizeof *names, cmpstr);
	for (int i = 0; i < nn; i++) {
		if (njpegs < MAXJPEG) {
			snprintf(path, sizeof path, "%s/%s", dir, names[i]);
			FILE *f = fopen(path, "rb");
			if (f) {
				fseek(f, 0, SEEK_END);
				long len = ftell(f);
				fseek(f, 0, SEEK_SET);
				uint8_t *buf = malloc(len);
				if (fread(buf, 1, len, f) == (size_t)len) {
					jpeg_data[njpegs] = buf;
					jpegs[njpegs] = (fv_aug_input){ FV_ENC_JPEG, buf, len, 0, 0, 0 };
					njpegs++;
				} else {
					free(buf);
				}
				fclose(f);
			}
		}
		free(names[i]);
	}
	return njpegs;
}

static void fashion_params(fv_aug_params *p)
{
	fv_aug_defaults(p, FV_AUG_TRAIN, 1, 28, 28);
	p->rrc = 0;
	p->pad = 2;
	p->mean[0] = 72.9f;
	p->std[0] = 90.0f;
}

static void jpeg_params(fv_aug_params *p, int size)
{
	fv_aug_defaults(p, FV_AUG_TRAIN, 3, size, size);
}

static void reference(const fv_aug_params *p, const fv_aug_input *in, uint64_t seed, void *out)
{
	static fv_aug_scratch *s;
	if (!s)
		fv_aug_scratch_new(&s);
	fv_aug_sample(p, in, seed, out, s);
}

static int use_shm = 1;

static fv_augc *client_new(const char *name, int window, enum fv_augc_policy pol,
			   fv_augc_replace_fn fn, void *ctx)
{
	char ep[600];
	fv_augc_opts o;
	fv_augc *c = NULL;
	snprintf(ep, sizeof ep, "ipc://%s/%s.sock", fv_test_tmpdir(), name);
	fv_augc_opts_default(&o);
	o.endpoint = ep;
	o.window = window;
	o.heartbeat_ms = 100;
	o.liveness = 3;
	o.timeout_ms = 10000;
	o.policy = pol;
	o.replace = fn;
	o.replace_ctx = ctx;
	o.shm = use_shm;
	int rc = fv_augc_new(&c, &o);
	FV_CHECK_OK(rc);
	return c;
}

static int wait_workers(fv_augc *c, int n, int ms)
{
	for (int64_t end = fv_now_ms() + ms; fv_now_ms() < end; sleep_ms(10))
		if (fv_augc_workers(c, NULL) == n)
			return 1;
	return fv_augc_workers(c, NULL) == n;
}

/* ------------------------------------------------------------ a run */

typedef struct run {
	const fv_aug_params *p;
	const fv_aug_input *set;
	int nset, nb, bs;
	size_t sb;
	uint8_t *out;        /* nb * bs * sb */
	int *seen;           /* deliveries per batch */
	int delivered;
	int out_of_order;
	void (*hook)(struct run *r, fv_augc *c);
	void *ctx;
} run;

static const fv_aug_input *sample_of(const run *r, int b, int i)
{
	return &r->set[(b * r->bs + i) % r->nset];
}

static uint64_t seed_of(int b, int i)
{
	return 0x5eed0000u + (uint64_t)b * 1000 + i;
}

/* Submit nb batches through c, collect them all, count deliveries. */
static int run_batches(fv_augc *c, run *r, uint64_t epoch)
{
	fv_aug_input in[256];
	uint64_t seeds[256];
	int submitted = 0, expect = 0;
	r->sb = fv_aug_out_bytes(r->p);
	r->out = calloc((size_t)r->nb * r->bs, r->sb);
	r->seen = calloc(r->nb, sizeof *r->seen);
	r->delivered = r->out_of_order = 0;
	while (r->delivered < r->nb) {
		while (submitted < r->nb) {
			for (int i = 0; i < r->bs; i++) {
				in[i] = *sample_of(r, submitted, i);
				seeds[i] = seed_of(submitted, i);
			}
			int rc = fv_augc_submit(c, epoch, submitted, r->p, in, seeds, r->bs,
						(void *)(intptr_t)(submitted + 1));
			if (rc == EAGAIN)
				break;
			if (rc)
				return rc;
			submitted++;
		}
		fv_augc_batch *b;
		int rc = fv_augc_next(c, &b, 20000);
		if (rc)
			return rc;
		if (b->epoch == epoch && b->index < (uint64_t)r->nb && b->n == r->bs &&
		    b->tag == (void *)(intptr_t)(b->index + 1)) {
			r->seen[b->index]++;
			if ((int)b->index != expect)
				r->out_of_order++;
			memcpy(r->out + b->index * r->bs * r->sb, b->data, r->bs * r->sb);
		}
		expect++;
		r->delivered++;
		fv_augc_release(c, &b);
		if (r->hook)
			r->hook(r, c);
	}
	return 0;
}

/* Every batch exactly once, and every sample equal to the reference. */
static void check_run(const run *r)
{
	uint8_t *ref = malloc(r->sb);
	int once = 0, same = 0;
	for (int b = 0; b < r->nb; b++) {
		once += r->seen[b] == 1;
		for (int i = 0; i < r->bs; i++) {
			reference(r->p, sample_of(r, b, i), seed_of(b, i), ref);
			int eq = !memcmp(ref, r->out + ((size_t)b * r->bs + i) * r->sb, r->sb);
			if (!eq && same == b * r->bs + i) {
				const uint8_t *got = r->out + ((size_t)b * r->bs + i) * r->sb;
				size_t nz = 0;
				for (size_t k = 0; k < r->sb; k++)
					nz += got[k] != 0;
				fprintf(stderr, "first difference: batch %d sample %d (%zu nonzero bytes)\n", b, i, nz);
				for (int b2 = 0; b2 < r->nb; b2++) {
					reference(r->p, sample_of(r, b2, i), seed_of(b2, i), ref);
					if (!memcmp(ref, got, r->sb))
						fprintf(stderr, "  it is batch %d's\n", b2);
				}
				reference(r->p, sample_of(r, b, i), seed_of(b, i), ref);
			}
			same += eq;
		}
	}
	FV_CHECK_EQ(once, r->nb);
	FV_CHECK_EQ(same, r->nb * r->bs);
	FV_CHECK_EQ(r->out_of_order, 0);
	free(ref);
}

static void run_free(run *r)
{
	free(r->out);
	free(r->seen);
}

/* ------------------------------------------------------------ tests */

FV_TEST(augc_determinism_1_vs_3_workers)
{
	fv_aug_params p;
	if (load_fashion())
		return fv_test_fail(__FILE__, __LINE__, "no %s", FASHION);
	fashion_params(&p);
	run r1 = { .p = &p, .set = fashion, .nset = NFASHION, .nb = 24, .bs = 32 };
	run r3 = r1;
	fv_augc_stats st;
	/* one worker sending outputs over the socket, three writing them into
	 * shared memory: the same bytes either way */
	use_shm = 0;
	fv_augc *c = client_new("one", 6, FV_AUGC_SKIP, NULL, NULL);
	use_shm = 1;
	FV_CHECK_OK(fv_augc_spawn_local(c, 1, 1));
	FV_CHECK(wait_workers(c, 1, 5000));
	FV_CHECK_OK(run_batches(c, &r1, 0));
	fv_augc_stats_get(c, &st);
	FV_CHECK_EQ(st.shm_replies, 0);
	fv_augc_destroy(&c);
	c = client_new("three", 6, FV_AUGC_SKIP, NULL, NULL);
	FV_CHECK_OK(fv_augc_spawn_local(c, 3, 2));
	FV_CHECK(wait_workers(c, 3, 5000));
	int cap = 0;
	fv_augc_workers(c, &cap);
	FV_CHECK_EQ(cap, 6);
	FV_CHECK_OK(run_batches(c, &r3, 0));
	fv_augc_stats_get(c, &st);
	FV_CHECK_EQ(st.delivered, 24);
	FV_CHECK_EQ(st.shm_replies, 24);
	FV_CHECK_EQ(st.resent, 0);
	fv_augc_destroy(&c);
	check_run(&r1);
	check_run(&r3);
	FV_CHECK(!memcmp(r1.out, r3.out, (size_t)24 * 32 * r1.sb));
	run_free(&r1);
	run_free(&r3);
}

/* Stop worker 0 first, so that the batches submitted right after this hook
 * returns reach it (an idle worker gets the next request) and it surely
 * holds one; then kill it. */
static void kill_after_3(run *r, fv_augc *c)
{
	pid_t *pids = r->ctx;
	(void)c;
	if (r->delivered == 3)
		kill(pids[0], SIGSTOP);
	else if (r->delivered == 4)
		kill(pids[0], SIGKILL);
}

FV_TEST(augc_worker_sigkill_mid_run)
{
	fv_aug_params p;
	if (load_jpegs() < 8)
		return fv_test_fail(__FILE__, __LINE__, "no jpeg-bench photos");
	jpeg_params(&p, 64);
	pid_t pids[2];
	run r = { .p = &p, .set = jpegs, .nset = njpegs, .nb = 16, .bs = 8, .hook = kill_after_3,
		  .ctx = pids };
	fv_augc *c = client_new("kill", 8, FV_AUGC_SKIP, NULL, NULL);
	FV_CHECK_OK(fv_augc_spawn_local(c, 2, 1));
	FV_CHECK(wait_workers(c, 2, 5000));
	FV_CHECK_EQ(fv_augc_local_pids(c, pids, 2), 2);
	FV_CHECK_OK(run_batches(c, &r, 7));
	fv_augc_stats st;
	fv_augc_stats_get(c, &st);
	FV_CHECK(st.resent >= 1);
	FV_CHECK_EQ(st.workers_lost, 1);
	FV_CHECK_EQ(fv_augc_workers(c, NULL), 1);
	FV_CHECK_EQ(st.delivered, 16);
	fv_augc_destroy(&c);
	check_run(&r);
	run_free(&r);
}

/* Stop worker 0 (the batches submitted right after this hook returns reach
 * it if it was idle, so it surely holds a request); once the client has
 * declared it dead, resume it: its late reply must be dropped, and it must
 * rejoin. */
static void stop_then_cont(run *r, fv_augc *c)
{
	pid_t *pids = r->ctx;
	if (r->delivered == 2) {
		kill(pids[0], SIGSTOP);
	} else if (r->delivered == 6) {
		FV_CHECK(wait_workers(c, 1, 3000));
		kill(pids[0], SIGCONT);
		FV_CHECK(wait_workers(c, 2, 3000));
		/* now take the other worker away: the rest must come from pids[0] */
		kill(pids[1], SIGSTOP);
	}
}

FV_TEST(augc_worker_sigstop_rejoins)
{
	fv_aug_params p;
	pid_t pids[2];
	if (load_jpegs() < 8)
		return fv_test_fail(__FILE__, __LINE__, "no jpeg-bench photos");
	jpeg_params(&p, 64);
	/* the 16 batches submitted after the other worker is stopped can only
	 * come from the rejoined one */
	run r = { .p = &p, .set = jpegs, .nset = njpegs, .nb = 30, .bs = 8,
		  .hook = stop_then_cont, .ctx = pids };
	fv_augc *c = client_new("stop", 8, FV_AUGC_SKIP, NULL, NULL);
	FV_CHECK_OK(fv_augc_spawn_local(c, 2, 1));
	FV_CHECK(wait_workers(c, 2, 5000));
	FV_CHECK_EQ(fv_augc_local_pids(c, pids, 2), 2);
	FV_CHECK_OK(run_batches(c, &r, 1));
	fv_augc_stats st;
	fv_augc_stats_get(c, &st);
	FV_CHECK(st.workers_lost >= 2);   /* the stopped one, twice */
	FV_CHECK(st.duplicates >= 1);     /* its late reply */
	FV_CHECK(st.resent >= 1);
	kill(pids[1], SIGCONT);
	fv_augc_destroy(&c);
	check_run(&r);
	run_free(&r);
}

/* Replacement source for REPLACE: sample `index` becomes photo index + 5. */
static int replace_cb(void *ctx, uint64_t epoch, uint64_t batch, int index, fv_aug_input *in,
		      uint64_t *seed)
{
	int *calls = ctx;
	(void)epoch;
	(void)batch;
	(*calls)++;
	*in = jpegs[(index + 5) % njpegs];
	*seed = 777 + index;
	return 0;
}

FV_TEST(augc_corrupt_jpeg_policies)
{
	fv_aug_params p;
	if (load_jpegs() < 8)
		return fv_test_fail(__FILE__, __LINE__, "no jpeg-bench photos");
	jpeg_params(&p, 48);
	size_t sb = fv_aug_out_bytes(&p);
	fv_aug_input in[8];
	uint64_t seeds[8];
	uint8_t bad[4096];
	for (size_t i = 0; i < sizeof bad; i++)
		bad[i] = (uint8_t)fv_test_rand();
	bad[0] = 0xff, bad[1] = 0xd8, bad[2] = 0xff; /* looks like a JPEG, is not */
	for (int i = 0; i < 8; i++) {
		in[i] = jpegs[i];
		seeds[i] = 40 + i;
	}
	in[3] = (fv_aug_input){ FV_ENC_JPEG, bad, sizeof bad, 0, 0, 0 };
	in[6] = (fv_aug_input){ FV_ENC_JPEG, bad + 100, 500, 0, 0, 0 }; /* no header at all */
	uint8_t *ref = malloc(sb), *zero = calloc(1, sb);
	int calls = 0;
	for (int pol = FV_AUGC_FAIL; pol <= FV_AUGC_REPLACE; pol++) {
		fv_augc *c = client_new(pol == FV_AUGC_FAIL ? "fail" : pol == FV_AUGC_SKIP ? "skip"
					: "replace", 2, pol, replace_cb, &calls);
		FV_CHECK_OK(fv_augc_spawn_local(c, 1, 2));
		FV_CHECK_OK(fv_augc_submit(c, 0, 0, &p, in, seeds, 8, NULL));
		fv_augc_batch *b = NULL;
		FV_CHECK_OK(fv_augc_next(c, &b, 20000));
		if (!b) {
			fv_augc_destroy(&c);
			continue;
		}
		for (int i = 0; i < 8; i++) {
			int corrupt = i == 3 || i == 6;
			const fv_aug_input *src = &in[i];
			uint64_t seed = seeds[i];
			if (pol == FV_AUGC_REPLACE && corrupt) {
				src = &jpegs[(i + 5) % njpegs];
				seed = 777 + i;
			}
			if (pol != FV_AUGC_REPLACE && corrupt) {
				FV_CHECK(b->failed[i]);
				FV_CHECK(b->reasons[i] && strlen(b->reasons[i]) > 0);
				FV_CHECK(!memcmp((uint8_t *)b->data + i * sb, zero, sb));
				continue;
			}
			FV_CHECK(!b->failed[i] && !b->reasons[i]);
			reference(&p, src, seed, ref);
			FV_CHECK_MSG(!memcmp((uint8_t *)b->data + i * sb, ref, sb),
				     "policy %d sample %d differs", pol, i);
		}
		if (pol == FV_AUGC_FAIL)
			FV_CHECK_EQ(b->rc, FV_E_DECODE);
		if (pol == FV_AUGC_SKIP)
			FV_CHECK_EQ(b->rc, 0);
		if (pol != FV_AUGC_REPLACE)
			FV_CHECK_EQ(b->nfailed, 2);
		if (pol == FV_AUGC_REPLACE) {
			FV_CHECK_EQ(b->rc, 0);
			FV_CHECK_EQ(b->nfailed, 0);
			FV_CHECK_EQ(calls, 2);
			fv_augc_stats st;
			fv_augc_stats_get(c, &st);
			FV_CHECK_EQ(st.replaced, 2);
			FV_CHECK_EQ(st.failed_samples, 2);
		}
		fv_augc_release(c, &b);
		fv_augc_destroy(&c);
	}
	free(ref);
	free(zero);
}

/* ------------------------------------------------------------ fake peers */

static pid_t spawn_worker(const char *endpoint)
{
	char exe[PATH_MAX], self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	self[n > 0 ? n : 0] = 0;
	*strrchr(self, '/') = 0;
	snprintf(exe, sizeof exe, "%.4000s/../bin/fovea-augment", self);
	pid_t pid = fork();
	if (pid == 0) {
		execl(exe, exe, "--connect", endpoint, "--threads", "1", "--heartbeat-ms", "100",
		      "--log-level", "error", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int recv_type(void *sock, int routed, fv_msg *m, zmq_msg_t *data, int ms)
{
	zmq_pollitem_t it = { .socket = sock, .events = ZMQ_POLLIN };
	for (int64_t end = fv_now_ms() + ms; fv_now_ms() < end;) {
		if (zmq_poll(&it, 1, 50) <= 0)
			continue;
		int rc = fv_augwire_recv(sock, routed, m, data, 0);
		if (rc)
			continue;
		if (m->type != FOVEA__MSG_TYPE__MSG_AUG_HEARTBEAT)
			return m->type;
		fv_msg_clear(m);
		zmq_msg_close(data);
	}
	return -1;
}

static void send_raw(void *sock, const void *id, size_t idlen, int nframes, size_t len)
{
	uint8_t buf[2048];
	if (idlen)
		zmq_send(sock, id, idlen, ZMQ_SNDMORE);
	for (int f = 0; f < nframes; f++) {
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)fv_test_rand();
		zmq_send(sock, buf, len, f + 1 < nframes ? ZMQ_SNDMORE : 0);
	}
}

/* A request for Fashion samples 0..n-1 as the real client would build it. */
static const char *req_shm_path; /* offer this as the output memory */

static void send_request(void *sock, const uint8_t *id, size_t idlen, uint64_t rid, int n,
			 size_t data_len, const fv_aug_params *p)
{
	Fovea__AugRequest q = FOVEA__AUG_REQUEST__INIT;
	Fovea__Transform tf;
	float mean[3], std[3];
	Fovea__AugSample s[8], *sp[8];
	zmq_msg_t data;
	fv_aug_params_to_pb(p, &tf, mean, std);
	zmq_msg_init_size(&data, data_len);
	for (int i = 0; i < n; i++) {
		fovea__aug_sample__init(&s[i]);
		s[i].index = i;
		s[i].encoding = FOVEA__ENCODING__ENC_RAW;
		s[i].width = s[i].height = 28;
		s[i].channels = 1;
		s[i].seed = 9 + i;
		s[i].offset = i * 784;
		s[i].length = 784;
		sp[i] = &s[i];
		if ((i + 1) * 784 <= (int)data_len)
			memcpy((uint8_t *)zmq_msg_data(&data) + i * 784, fashion_px[i], 784);
	}
	q.id = rid;
	if (req_shm_path) {
		q.shm_path = (char *)req_shm_path;
		q.shm_size = 1 << 20;
		q.shm_id = 1;
	}
	q.transform = &tf;
	q.n_samples = n;
	q.samples = sp;
	fv_augwire_send(sock, id, idlen, FOVEA__MSG_TYPE__MSG_AUG_REQUEST, 1, &q.base, &data, 0);
}

FV_TEST(augc_garbage_to_worker)
{
	char ep[600];
	fv_aug_params p;
	fv_msg m;
	zmq_msg_t data;
	uint8_t id[256];
	size_t idlen;
	FV_CHECK_OK(load_fashion());
	fashion_params(&p);
	snprintf(ep, sizeof ep, "ipc://%s/fake-client.sock", fv_test_tmpdir());
	void *ctx = zmq_ctx_new(), *sock = zmq_socket(ctx, ZMQ_ROUTER);
	fv_sock_limit(sock, 0);
	FV_CHECK_EQ(zmq_bind(sock, ep), 0);
	pid_t pid = spawn_worker(ep);
	FV_CHECK_EQ(recv_type(sock, 1, &m, &data, 5000), FOVEA__MSG_TYPE__MSG_AUG_HELLO);
	idlen = m.identity_len;
	memcpy(id, m.identity, idlen);
	fv_msg_clear(&m);
	zmq_msg_close(&data);
	/* garbage: random frames, an envelope with a random payload, requests
	 * that lie about their data, a wrong version */
	int errors = 0;
	for (int round = 0; round < 6; round++) {
		if (round < 3) {
			send_raw(sock, id, idlen, 1 + round, 16 + round * 500);
		} else if (round == 3) {
			uint8_t junk[64];
			for (size_t i = 0; i < sizeof junk; i++)
				junk[i] = (uint8_t)fv_test_rand();
			Fovea__Envelope env = FOVEA__ENVELOPE__INIT;
			env.type = FOVEA__MSG_TYPE__MSG_AUG_REQUEST;
			env.version = 1;
			env.payload.data = junk;
			env.payload.len = sizeof junk;
			uint8_t buf[256];
			size_t n = fovea__envelope__pack(&env, buf);
			zmq_send(sock, id, idlen, ZMQ_SNDMORE);
			zmq_send(sock, buf, n, 0);
		} else if (round == 4) {
			send_request(sock, id, idlen, 42, 4, 784 * 2, &p); /* data too short */
		} else {
			Fovea__AugBye bye = FOVEA__AUG_BYE__INIT;
			uint8_t buf[64];
			Fovea__Envelope env = FOVEA__ENVELOPE__INIT;
			env.type = FOVEA__MSG_TYPE__MSG_AUG_REQUEST;
			env.version = 99;
			env.payload.len = fovea__aug_bye__pack(&bye, buf);
			env.payload.data = buf;
			uint8_t eb[128];
			size_t n = fovea__envelope__pack(&env, eb);
			zmq_send(sock, id, idlen, ZMQ_SNDMORE);
			zmq_send(sock, eb, n, 0);
		}
		int t = recv_type(sock, 1, &m, &data, 2000);
		errors += t == FOVEA__MSG_TYPE__MSG_AUG_ERROR;
		if (t >= 0) {
			fv_msg_clear(&m);
			zmq_msg_close(&data);
		}
	}
	FV_CHECK_EQ(errors, 6);
	/* still serving: a good request gets the reference answer */
	send_request(sock, id, idlen, 43, 4, 784 * 4, &p);
	FV_CHECK_EQ(recv_type(sock, 1, &m, &data, 5000), FOVEA__MSG_TYPE__MSG_AUG_REPLY);
	size_t sb = fv_aug_out_bytes(&p);
	Fovea__AugReply *rep = NULL;
	FV_CHECK_OK(fv_msg_unpack(&m, &fovea__aug_reply__descriptor, 0, (ProtobufCMessage **)&rep));
	if (rep) {
		FV_CHECK_EQ(rep->id, 43);
		FV_CHECK_EQ(rep->count, 4);
		FV_CHECK_EQ(rep->n_failed, 0);
		FV_CHECK_EQ(zmq_msg_size(&data), 4 * sb);
		uint8_t *ref = malloc(sb);
		for (int i = 0; i < 4 && zmq_msg_size(&data) == 4 * sb; i++) {
			reference(&p, &fashion[i], 9 + i, ref);
			FV_CHECK(!memcmp((uint8_t *)zmq_msg_data(&data) + i * sb, ref, sb));
		}
		free(ref);
		protobuf_c_message_free_unpacked(&rep->base, NULL);
	}
	fv_msg_clear(&m);
	zmq_msg_close(&data);
	/* a request naming some other file as its output memory: refused,
	 * the output comes as a frame and the file is untouched */
	char victim[600], fdpath[64];
	snprintf(victim, sizeof victim, "%s/victim", fv_test_tmpdir());
	FILE *vf = fopen(victim, "w+");
	for (int i = 0; i < (1 << 20); i++)
		fputc('A', vf);
	fflush(vf);
	snprintf(fdpath, sizeof fdpath, "/proc/%d/fd/%d", (int)getpid(), fileno(vf));
	for (int k = 0; k < 2; k++) {
		req_shm_path = k ? fdpath : victim;
		send_request(sock, id, idlen, 50 + k, 4, 784 * 4, &p);
		req_shm_path = NULL;
		FV_CHECK_EQ(recv_type(sock, 1, &m, &data, 5000), FOVEA__MSG_TYPE__MSG_AUG_REPLY);
		rep = NULL;
		FV_CHECK_OK(fv_msg_unpack(&m, &fovea__aug_reply__descriptor, 0,
					  (ProtobufCMessage **)&rep));
		if (rep) {
			FV_CHECK(!rep->in_shm);
			FV_CHECK_EQ(zmq_msg_size(&data), 4 * sb);
			protobuf_c_message_free_unpacked(&rep->base, NULL);
		}
		fv_msg_clear(&m);
		zmq_msg_close(&data);
	}
	rewind(vf);
	int untouched = 1;
	for (int i = 0; i < (1 << 20) && untouched; i++)
		untouched = fgetc(vf) == 'A';
	FV_CHECK(untouched);
	fclose(vf);
	/* SIGTERM: the worker says bye and exits 0 */
	kill(pid, SIGTERM);
	FV_CHECK_EQ(recv_type(sock, 1, &m, &data, 3000), FOVEA__MSG_TYPE__MSG_AUG_BYE);
	fv_msg_clear(&m);
	zmq_msg_close(&data);
	int status = -1;
	waitpid(pid, &status, 0);
	FV_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	zmq_close(sock);
	zmq_ctx_term(ctx);
}

FV_TEST(augc_malformed_reply_dropped)
{
	fv_aug_params p;
	fv_msg m;
	zmq_msg_t data;
	FV_CHECK_OK(load_fashion());
	fashion_params(&p);
	fv_augc *c = client_new("bad-replies", 2, FV_AUGC_SKIP, NULL, NULL);
	void *ctx = zmq_ctx_new(), *sock = zmq_socket(ctx, ZMQ_DEALER);
	fv_sock_limit(sock, 0);
	FV_CHECK_EQ(zmq_connect(sock, fv_augc_endpoint(c)), 0);
	Fovea__AugHello h = FOVEA__AUG_HELLO__INIT;
	h.capacity = 1;
	h.name = "fake";
	fv_augwire_send(sock, NULL, 0, FOVEA__MSG_TYPE__MSG_AUG_HELLO, 1, &h.base, NULL, 0);
	FV_CHECK_EQ(recv_type(sock, 0, &m, &data, 3000), FOVEA__MSG_TYPE__MSG_AUG_HELLO);
	fv_msg_clear(&m);
	zmq_msg_close(&data);
	uint64_t seeds[4] = { 1, 2, 3, 4 };
	FV_CHECK_OK(fv_augc_submit(c, 3, 0, &p, fashion, seeds, 4, NULL));
	FV_CHECK_EQ(recv_type(sock, 0, &m, &data, 3000), FOVEA__MSG_TYPE__MSG_AUG_REQUEST);
	Fovea__AugRequest *q = NULL;
	FV_CHECK_OK(fv_msg_unpack(&m, &fovea__aug_request__descriptor, 0, (ProtobufCMessage **)&q));
	fv_msg_clear(&m);
	zmq_msg_close(&data);
	if (!q) {
		fv_augc_destroy(&c);
		return;
	}
	size_t sb = fv_aug_out_bytes(&p);
	/* 1: random frames; 2: a reply envelope with a random payload; 3: a
	 * reply whose output frame is too short; 4: a reply to an unknown id */
	send_raw(sock, NULL, 0, 2, 100);
	uint8_t junk[32] = { 0x0a, 0xff, 0xff, 0xff };
	Fovea__Envelope env = FOVEA__ENVELOPE__INIT;
	env.type = FOVEA__MSG_TYPE__MSG_AUG_REPLY;
	env.version = 1;
	env.payload.data = junk;
	env.payload.len = sizeof junk;
	uint8_t eb[128];
	zmq_send(sock, eb, fovea__envelope__pack(&env, eb), 0);
	Fovea__AugReply r = FOVEA__AUG_REPLY__INIT;
	zmq_msg_t out;
	r.id = q->id;
	r.count = 4;
	r.sample_bytes = sb;
	zmq_msg_init_size(&out, 3 * sb);
	fv_augwire_send(sock, NULL, 0, FOVEA__MSG_TYPE__MSG_AUG_REPLY, 2, &r.base, &out, 0);
	r.id = q->id + 1000;
	zmq_msg_init_size(&out, 4 * sb);
	fv_augwire_send(sock, NULL, 0, FOVEA__MSG_TYPE__MSG_AUG_REPLY, 3, &r.base, &out, 0);
	fovea__aug_request__free_unpacked(q, NULL);
	sleep_ms(300);
	fv_augc_stats st;
	fv_augc_stats_get(c, &st);
	FV_CHECK(st.malformed >= 3);
	FV_CHECK(st.duplicates >= 1);
	FV_CHECK_EQ(fv_augc_pending(c), 1);
	/* the fake leaves; a real worker finishes the batch correctly */
	Fovea__AugBye bye = FOVEA__AUG_BYE__INIT;
	fv_augwire_send(sock, NULL, 0, FOVEA__MSG_TYPE__MSG_AUG_BYE, 4, &bye.base, NULL, 0);
	FV_CHECK_OK(fv_augc_spawn_local(c, 1, 1));
	fv_augc_batch *b = NULL;
	FV_CHECK_OK(fv_augc_next(c, &b, 10000));
	if (b) {
		uint8_t *ref = malloc(sb);
		FV_CHECK_EQ(b->epoch, 3);
		FV_CHECK_EQ(b->nfailed, 0);
		for (int i = 0; i < 4; i++) {
			reference(&p, &fashion[i], seeds[i], ref);
			FV_CHECK(!memcmp((uint8_t *)b->data + i * sb, ref, sb));
		}
		free(ref);
		fv_augc_release(c, &b);
	}
	zmq_close(sock);
	zmq_ctx_term(ctx);
	fv_augc_destroy(&c);
}

FV_TEST(augc_window_and_duplicates)
{
	fv_aug_params p;
	uint64_t seeds[2] = { 1, 2 };
	fv_augc_batch *b = NULL;
	FV_CHECK_OK(load_fashion());
	fashion_params(&p);
	fv_augc *c = client_new("window", 2, FV_AUGC_SKIP, NULL, NULL);
	FV_CHECK_EQ(fv_augc_next(c, &b, 0), EAGAIN);
	FV_CHECK_OK(fv_augc_submit(c, 0, 0, &p, fashion, seeds, 2, NULL));
	FV_CHECK_EQ(fv_augc_submit(c, 0, 0, &p, fashion, seeds, 2, NULL), FV_E_DUPLICATE);
	FV_CHECK_OK(fv_augc_submit(c, 0, 1, &p, fashion, seeds, 2, NULL));
	FV_CHECK_EQ(fv_augc_submit(c, 0, 2, &p, fashion, seeds, 2, NULL), EAGAIN);
	FV_CHECK_EQ(fv_augc_next(c, &b, 50), EAGAIN); /* no worker yet */
	FV_CHECK_OK(fv_augc_spawn_local(c, 1, 1));
	for (int k = 0; k < 2; k++) {
		FV_CHECK_OK(fv_augc_next(c, &b, 10000));
		if (b)
			FV_CHECK_EQ(b->index, k);
		fv_augc_release(c, &b);
	}
	FV_CHECK_EQ(fv_augc_pending(c), 0);
	fv_augc_destroy(&c);
}

/* A worker started before any client joins once one binds, and joins the
 * next client after that one goes away. */
FV_TEST(augc_worker_outlives_clients)
{
	char ep[600];
	fv_aug_params p;
	uint64_t seeds[4] = { 5, 6, 7, 8 };
	FV_CHECK_OK(load_fashion());
	fashion_params(&p);
	snprintf(ep, sizeof ep, "ipc://%s/late.sock", fv_test_tmpdir());
	pid_t pid = spawn_worker(ep);
	sleep_ms(400); /* it has reset its socket at least once by now */
	for (int round = 0; round < 2; round++) {
		fv_augc *c = client_new("late", 2, FV_AUGC_SKIP, NULL, NULL);
		FV_CHECK_MSG(wait_workers(c, 1, 4000), "round %d: worker did not join", round);
		FV_CHECK_OK(fv_augc_submit(c, round, 0, &p, fashion, seeds, 4, NULL));
		fv_augc_batch *b = NULL;
		FV_CHECK_OK(fv_augc_next(c, &b, 5000));
		if (b)
			FV_CHECK_EQ(b->nfailed, 0);
		fv_augc_release(c, &b);
		fv_augc_destroy(&c);
	}
	kill(pid, SIGTERM);
	int status = -1;
	waitpid(pid, &status, 0);
	FV_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Over tcp:// (as for workers on other hosts: no shared memory), unordered
 * delivery: still every batch exactly once with the reference bytes. */
FV_TEST(augc_tcp_unordered)
{
	fv_aug_params p;
	fv_augc_opts o;
	fv_augc *c = NULL;
	FV_CHECK_OK(load_fashion());
	fashion_params(&p);
	fv_augc_opts_default(&o);
	o.endpoint = "tcp://127.0.0.1:*";
	o.window = 6;
	o.heartbeat_ms = 100;
	o.in_order = 0;
	o.shm = 0;
	FV_CHECK_OK(fv_augc_new(&c, &o));
	if (!c)
		return;
	FV_CHECK(!strncmp(fv_augc_endpoint(c), "tcp://127.0.0.1:", 16));
	FV_CHECK_OK(fv_augc_spawn_local(c, 2, 2));
	FV_CHECK(wait_workers(c, 2, 5000));
	run r = { .p = &p, .set = fashion, .nset = NFASHION, .nb = 16, .bs = 16 };
	FV_CHECK_OK(run_batches(c, &r, 4));
	fv_augc_stats st;
	fv_augc_stats_get(c, &st);
	FV_CHECK_EQ(st.shm_replies, 0);
	fv_augc_destroy(&c);
	r.out_of_order = 0; /* allowed here */
	check_run(&r);
	run_free(&r);
}
