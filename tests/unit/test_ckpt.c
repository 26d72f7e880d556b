/* Unit tests for nn/ckpt: round trip, refusal of truncated / corrupted /
 * foreign / newer files, strict and partial loads, name patterns and
 * freezing, the checkpoint directory helpers, and atomicity under SIGKILL. */
#include "fv_test.h"
#include "fv_error.h"
#include "nn/ckpt.h"
#include "nn/optim.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* A small model's table: conv, BN (with a buffer), a linear head. */
enum { NP = 6 };
typedef struct model {
	fv_param p[NP];
	float data[2048];
} model;

static void make_model(model *m, int classes, float fill)
{
	static const struct { const char *name; enum fv_param_kind kind; int ndim, d0, d1, d2, d3; } spec[NP] = {
		{ "conv1.weight", FV_PARAM_WEIGHT, 4, 8, 3, 3, 3 },
		{ "bn1.weight", FV_PARAM_BN_SCALE, 1, 8, 0, 0, 0 },
		{ "bn1.bias", FV_PARAM_BN_SHIFT, 1, 8, 0, 0, 0 },
		{ "bn1.running_mean", FV_PARAM_BUFFER, 1, 8, 0, 0, 0 },
		{ "fc.weight", FV_PARAM_WEIGHT, 2, 0, 8, 0, 0 },
		{ "fc.bias", FV_PARAM_BIAS, 1, 0, 0, 0, 0 },
	};
	size_t off = 0;
	memset(m->data, 0, sizeof m->data);
	for (int i = 0; i < NP; i++) {
		fv_param *p = &m->p[i];
		*p = (fv_param){ .name = spec[i].name, .kind = spec[i].kind, .ndim = spec[i].ndim,
				 .dims = { spec[i].d0 ? spec[i].d0 : classes, spec[i].d1, spec[i].d2, spec[i].d3 } };
		p->numel = 1;
		for (int d = 0; d < p->ndim; d++)
			p->numel *= p->dims[d];
		p->data = m->data + off;
		off += p->numel;
	}
	for (size_t j = 0; j < off; j++)
		m->data[j] = isnan(fill) ? (float)fv_test_uniform() : fill;
}

static const char *tpath(const char *name)
{
	static char buf[4][600];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/%s", fv_test_tmpdir(), name);
	return buf[k];
}

static const char *classes3[] = { "cat", "dog", "bird" };
static const uint8_t rng_state[5] = { 1, 2, 3, 4, 5 };

static void write_model(const char *path, model *m, int classes)
{
	fv_ckpt_info info = { .model = "resnet-tiny", .in_c = 3, .in_h = 32, .in_w = 32,
			      .classes = classes, .class_names = classes == 3 ? classes3 : NULL,
			      .step = 1234, .epoch = 2.5, .dataset_version = 7,
			      .meta = "seed=42\nsched=cosine\nlr=0.1" };
	fv_ckpt_blob blobs[] = { { "rng", rng_state, sizeof rng_state }, { "empty", NULL, 0 } };
	FV_CHECK_OK(fv_ckpt_write(path, &info, m->p, NP, blobs, 2));
}

static size_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) ? 0 : (size_t)st.st_size;
}

static uint8_t *slurp(const char *path, size_t *n)
{
	uint8_t *b = fv_test_slurp(path, n);
	FV_CHECK(b);
	return b;
}

static void spit(const char *path, const uint8_t *b, size_t n)
{
	FILE *f = fopen(path, "wb");
	FV_CHECK(f && fwrite(b, 1, n, f) == n);
	fclose(f);
}

FV_TEST(ckpt_round_trip)
{
	model a, b;
	fv_ckpt *c;
	const char *path = tpath("a.fvc");
	make_model(&a, 3, NAN);
	write_model(path, &a, 3);
	FV_CHECK_OK(fv_ckpt_open(&c, path));
	const fv_ckpt_info *in = fv_ckpt_info_get(c);
	FV_CHECK(!strcmp(in->model, "resnet-tiny"));
	FV_CHECK(in->in_c == 3 && in->in_h == 32 && in->in_w == 32 && in->classes == 3);
	FV_CHECK(in->step == 1234 && in->epoch == 2.5 && in->dataset_version == 7);
	FV_CHECK(in->class_names && !strcmp(in->class_names[2], "bird"));
	FV_CHECK(!strcmp(fv_ckpt_meta(c, "sched"), "cosine"));
	FV_CHECK(!strcmp(fv_ckpt_meta(c, "lr"), "0.1"));
	FV_CHECK(fv_ckpt_meta(c, "nope") == NULL);
	const void *d;
	size_t len;
	FV_CHECK_OK(fv_ckpt_blob_get(c, "rng", &d, &len));
	FV_CHECK(len == 5 && !memcmp(d, rng_state, 5) && (uintptr_t)d % 8 == 0);
	FV_CHECK_OK(fv_ckpt_blob_get(c, "empty", &d, &len));
	FV_CHECK_EQ(len, 0);
	FV_CHECK_EQ(fv_ckpt_blob_get(c, "plan", &d, &len), FV_E_NOTFOUND);

	make_model(&b, 3, 0);
	size_t loaded;
	FV_CHECK_OK(fv_ckpt_load_params(c, b.p, NP, NULL, &loaded));
	FV_CHECK_EQ(loaded, NP);
	FV_CHECK(!memcmp(a.data, b.data, sizeof a.data));
	fv_ckpt_tensor t;
	FV_CHECK_EQ(fv_ckpt_tensor_count(c), NP);
	FV_CHECK_OK(fv_ckpt_tensor_find(c, "conv1.weight", &t));
	FV_CHECK(t.ndim == 4 && t.dims[0] == 8 && t.dims[3] == 3 && t.numel == 216);
	FV_CHECK((uintptr_t)t.data % 64 == 0);
	fv_ckpt_close(&c);
	FV_CHECK(c == NULL);
}

/* Open must fail with rc and a message naming the file and containing what. */
static void refused(const char *path, int rc_want, const char *what)
{
	fv_ckpt *c = (fv_ckpt *)1;
	int rc = fv_ckpt_open(&c, path);
	FV_CHECK_MSG(rc == rc_want, "%s: rc %d, wanted %d (%s)", what, rc, rc_want, fv_err_msg(rc));
	FV_CHECK(c == NULL);
	FV_CHECK_MSG(strstr(fv_err_msg(rc), path) && strstr(fv_err_msg(rc), what),
		     "message \"%s\" lacks \"%s\"", fv_err_msg(rc), what);
}

FV_TEST(ckpt_refuses_truncated)
{
	model a;
	size_t n;
	make_model(&a, 3, NAN);
	write_model(tpath("a.fvc"), &a, 3);
	uint8_t *b = slurp(tpath("a.fvc"), &n);
	const size_t cuts[] = { 0, 5, 8, 12, 23, 24, 40, 100, n / 2, n - 5, n - 4, n - 1 };
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		spit(tpath("cut.fvc"), b, cuts[i]);
		refused(tpath("cut.fvc"), FV_E_CORRUPT, "truncated");
	}
	free(b);
}

FV_TEST(ckpt_refuses_corrupt_foreign_newer)
{
	model a;
	size_t n;
	make_model(&a, 3, NAN);
	write_model(tpath("a.fvc"), &a, 3);
	uint8_t *b = slurp(tpath("a.fvc"), &n);
	/* a flipped bit anywhere outside the magic and size fields */
	const size_t at[] = { 9, 30, 100, n / 2, n - 30, n - 2 };
	for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
		b[at[i]] ^= 0x10;
		spit(tpath("flip.fvc"), b, n);
		refused(tpath("flip.fvc"), FV_E_CORRUPT, "checksum");
		b[at[i]] ^= 0x10;
	}
	/* wrong magic */
	b[0] = 'X';
	spit(tpath("magic.fvc"), b, n);
	refused(tpath("magic.fvc"), FV_E_FORMAT, "not a fovea checkpoint");
	b[0] = 'F';
	spit(tpath("text.fvc"), (const uint8_t *)"hello", 5);
	refused(tpath("text.fvc"), FV_E_FORMAT, "bad magic");
	/* a newer version, otherwise intact */
	uint32_t v = FV_CKPT_VERSION + 1, crc;
	memcpy(b + 8, &v, 4);
	crc = (uint32_t)crc32(crc32(0, NULL, 0), b, (uInt)(n - 4));
	memcpy(b + n - 4, &crc, 4);
	spit(tpath("new.fvc"), b, n);
	refused(tpath("new.fvc"), FV_E_UNSUPPORTED, "newer");
	/* trailing junk */
	v = FV_CKPT_VERSION;
	memcpy(b + 8, &v, 4);
	spit(tpath("junk.fvc"), b, n - 4);
	FILE *f = fopen(tpath("junk.fvc"), "ab");
	crc = (uint32_t)crc32(crc32(0, NULL, 0), b, (uInt)(n - 4));
	fwrite(&crc, 4, 1, f);
	fwrite("junk", 4, 1, f);
	fclose(f);
	refused(tpath("junk.fvc"), FV_E_CORRUPT, "trailing");
	fv_ckpt *c;
	FV_CHECK_EQ(fv_ckpt_open(&c, tpath("absent.fvc")), ENOENT);
	FV_CHECK(strstr(fv_err_msg(ENOENT), "absent.fvc"));
	free(b);
}

FV_TEST(ckpt_strict_and_partial_loads)
{
	model a, b;
	fv_ckpt *c;
	size_t loaded;
	unsigned char st[NP];
	make_model(&a, 10, NAN);
	write_model(tpath("a.fvc"), &a, 10);
	FV_CHECK_OK(fv_ckpt_open(&c, tpath("a.fvc")));

	/* a 5-class head: strict refuses and changes nothing */
	make_model(&b, 5, -1);
	int rc = fv_ckpt_load_params(c, b.p, NP, NULL, &loaded);
	FV_CHECK_EQ(rc, FV_E_MISMATCH);
	FV_CHECK(strstr(fv_err_msg(rc), "fc.weight") && strstr(fv_err_msg(rc), "10x8") &&
		 strstr(fv_err_msg(rc), "5x8") && strstr(fv_err_msg(rc), tpath("a.fvc")));
	FV_CHECK_EQ(loaded, 0);
	FV_CHECK_EQ(b.p[0].data[0], -1.0f);

	/* partial: the body loads, the head is reported and left alone */
	FV_CHECK_OK(fv_ckpt_load_params(c, b.p, NP, &(fv_ckpt_load_opts){ .partial = 1, .status = st },
					&loaded));
	FV_CHECK_EQ(loaded, NP - 2);
	FV_CHECK(!memcmp(b.p[0].data, a.p[0].data, b.p[0].numel * 4));
	FV_CHECK(!memcmp(b.p[3].data, a.p[3].data, b.p[3].numel * 4));
	FV_CHECK(st[0] == FV_CKPT_LOADED && st[4] == FV_CKPT_SHAPE && st[5] == FV_CKPT_SHAPE);
	FV_CHECK_EQ(b.p[4].data[0], -1.0f);

	/* strict with the head skipped by pattern */
	make_model(&b, 5, -1);
	FV_CHECK_OK(fv_ckpt_load_params(c, b.p, NP, &(fv_ckpt_load_opts){ .skip = "fc.*", .status = st },
					&loaded));
	FV_CHECK_EQ(loaded, NP - 2);
	FV_CHECK(st[4] == FV_CKPT_SKIPPED);

	/* a param the file lacks */
	make_model(&b, 10, -1);
	b.p[1].name = "bn9.weight";
	rc = fv_ckpt_load_params(c, b.p, NP, NULL, &loaded);
	FV_CHECK_EQ(rc, FV_E_NOTFOUND);
	FV_CHECK(strstr(fv_err_msg(rc), "bn9.weight"));
	FV_CHECK_OK(fv_ckpt_load_params(c, b.p, NP, &(fv_ckpt_load_opts){ .partial = 1, .status = st },
					&loaded));
	FV_CHECK(loaded == NP - 1 && st[1] == FV_CKPT_MISSING);
	/* nothing at all matching is an error even in partial mode */
	rc = fv_ckpt_load_params(c, b.p, NP, &(fv_ckpt_load_opts){ .partial = 1, .prefix = "x." }, &loaded);
	FV_CHECK_EQ(rc, FV_E_MISMATCH);
	fv_ckpt_close(&c);
}

FV_TEST(ckpt_optimizer_state_and_ema_prefix)
{
	model a, b;
	fv_sgd *s;
	size_t ns;
	make_model(&a, 3, 1.0f);
	float grads[2048];
	for (int i = 0; i < 2048; i++)
		grads[i] = 0.5f;
	for (int i = 0; i < NP; i++)
		a.p[i].grad = a.p[i].kind == FV_PARAM_BUFFER ? NULL : grads + (a.p[i].data - a.data);
	FV_CHECK_OK(fv_sgd_new(&s, a.p, NP, &(fv_sgd_opts){ .momentum = 0.9f, .ema_decay = 0.5f }));
	FV_CHECK_OK(fv_sgd_step(s, 0.1f));
	fv_param *st = fv_sgd_state_params(s, &ns);
	fv_param all[NP + 16];
	memcpy(all, a.p, sizeof a.p);
	memcpy(all + NP, st, ns * sizeof *st);
	FV_CHECK_OK(fv_ckpt_write(tpath("s.fvc"), NULL, all, NP + ns, NULL, 0));

	fv_ckpt *c;
	FV_CHECK_OK(fv_ckpt_open(&c, tpath("s.fvc")));
	FV_CHECK(!strcmp(fv_ckpt_info_get(c)->model, ""));
	make_model(&b, 3, 0);
	FV_CHECK_OK(fv_ckpt_load_params(c, b.p, NP, &(fv_ckpt_load_opts){ .prefix = "ema." }, NULL));
	FV_CHECK_NEAR(b.p[0].data[0], 0.5 * 1 + 0.5 * 0.95, 1e-6);  /* EMA weights */
	FV_CHECK_NEAR(b.p[3].data[0], 1.0, 0);                       /* buffer */
	/* resume: a fresh optimizer gets its state back */
	fv_sgd *s2;
	FV_CHECK_OK(fv_sgd_new(&s2, a.p, NP, &(fv_sgd_opts){ .momentum = 0.9f, .ema_decay = 0.5f }));
	fv_param *st2 = fv_sgd_state_params(s2, &ns);
	FV_CHECK_OK(fv_ckpt_load_params(c, st2, ns, NULL, NULL));
	size_t nf;
	float *x = fv_sgd_state(s, &nf), *y = fv_sgd_state(s2, &nf);
	FV_CHECK(!memcmp(x, y, nf * sizeof(float)));
	fv_ckpt_close(&c);
	fv_sgd_destroy(&s);
	fv_sgd_destroy(&s2);
}

FV_TEST(ckpt_write_rejects_bad_input)
{
	model a;
	make_model(&a, 3, 0);
	a.p[1].name = "conv1.weight";
	int rc = fv_ckpt_write(tpath("d.fvc"), NULL, a.p, NP, NULL, 0);
	FV_CHECK_EQ(rc, FV_E_DUPLICATE);
	FV_CHECK(strstr(fv_err_msg(rc), "conv1.weight"));
	make_model(&a, 3, 0);
	a.p[0].numel = 5;
	FV_CHECK_EQ(fv_ckpt_write(tpath("d.fvc"), NULL, a.p, NP, NULL, 0), EINVAL);
	FV_CHECK_EQ(file_size(tpath("d.fvc")), 0);
	make_model(&a, 3, 0);
	FV_CHECK_EQ(fv_ckpt_write("/nonexistent-dir/x.fvc", NULL, a.p, 1, NULL, 0), ENOENT);
}

FV_TEST(params_patterns_and_freeze)
{
	FV_CHECK(fv_params_match("layer1.*,conv1.*", "layer1.0.conv1.weight"));
	FV_CHECK(fv_params_match("layer1.*,conv1.*", "conv1.weight"));
	FV_CHECK(!fv_params_match("layer1.*,conv1.*", "layer2.0.conv1.weight"));
	FV_CHECK(fv_params_match("!fc.*", "layer4.1.bn2.bias"));
	FV_CHECK(!fv_params_match("!fc.*", "fc.weight"));
	FV_CHECK(fv_params_match("layer*, !layer4.*", "layer3.0.conv1.weight"));
	FV_CHECK(!fv_params_match("layer*, !layer4.*", "layer4.0.conv1.weight"));
	FV_CHECK(!fv_params_match("layer*, !layer4.*", "fc.weight"));
	FV_CHECK(fv_params_match("*.running_*", "bn1.running_var"));

	model m;
	size_t k;
	make_model(&m, 3, 0);
	FV_CHECK_OK(fv_params_freeze(m.p, NP, "!fc.*", 1, &k));
	FV_CHECK_EQ(k, 4);
	FV_CHECK(m.p[0].frozen && m.p[3].frozen && !m.p[4].frozen && !m.p[5].frozen);
	FV_CHECK_OK(fv_params_freeze(m.p, NP, "bn1.*", 0, &k));
	FV_CHECK(k == 3 && !m.p[1].frozen && m.p[0].frozen);
	int rc = fv_params_freeze(m.p, NP, "layer9.*", 1, &k);
	FV_CHECK_EQ(rc, FV_E_NOTFOUND);
	FV_CHECK(k == 0 && strstr(fv_err_msg(rc), "layer9.*"));
	FV_CHECK_EQ(fv_params_freeze(m.p, NP, " , ", 1, &k), FV_E_CONFIG);
}

FV_TEST(ckpt_dir_latest_and_prune)
{
	const char *dir = fv_test_tmpdir();
	model a;
	char path[600], want[600];
	uint64_t step;
	make_model(&a, 3, 1);
	FV_CHECK_EQ(fv_ckpt_latest(dir, path, sizeof path, &step), FV_E_NOTFOUND);
	const uint64_t steps[] = { 5, 100, 20, 1000000000000ULL };
	for (int i = 0; i < 3; i++) {
		FV_CHECK_OK(fv_ckpt_path(path, sizeof path, dir, steps[i]));
		write_model(path, &a, 3);
	}
	/* A writer's leftover temp file and other names never count. */
	pid_t dead = fork();
	if (!dead)
		_exit(0);
	waitpid(dead, NULL, 0);
	char tmp[600], live[600];
	snprintf(tmp, sizeof tmp, "%s/.ckpt-000000999.fvc.tmp-%d", dir, (int)dead);
	snprintf(live, sizeof live, "%s/.ckpt-000000998.fvc.tmp-%d", dir, (int)getpid());
	spit(tmp, (const uint8_t *)"partial", 7);
	spit(live, (const uint8_t *)"partial", 7);
	char old[600];  /* our pid, but untouched for two hours: a pid reused after a crash */
	snprintf(old, sizeof old, "%s/.ckpt-000000997.fvc.tmp-%d", dir, (int)getpid());
	spit(old, (const uint8_t *)"partial", 7);
	struct timespec ts[2] = { { .tv_sec = time(NULL) - 7200 }, { .tv_sec = time(NULL) - 7200 } };
	FV_CHECK(utimensat(AT_FDCWD, old, ts, 0) == 0);
	spit(tpath("ckpt-abc.fvc"), (const uint8_t *)"x", 1);
	spit(tpath("best.fvc"), (const uint8_t *)"x", 1);
	FV_CHECK_OK(fv_ckpt_latest(dir, path, sizeof path, &step));
	FV_CHECK_EQ(step, 100);
	snprintf(want, sizeof want, "%s/ckpt-000000100.fvc", dir);
	FV_CHECK(!strcmp(path, want));
	uint64_t *all;
	size_t nall;
	FV_CHECK_OK(fv_ckpt_list(dir, &all, &nall));
	FV_CHECK(nall == 3 && all[0] == 5 && all[1] == 20 && all[2] == 100);
	free(all);
	/* numeric order, even past the zero padding */
	FV_CHECK_OK(fv_ckpt_path(path, sizeof path, dir, steps[3]));
	write_model(path, &a, 3);
	FV_CHECK_OK(fv_ckpt_latest(dir, path, sizeof path, &step));
	FV_CHECK(step == steps[3]);

	FV_CHECK_EQ(fv_ckpt_prune(dir, 0), EINVAL);
	FV_CHECK_OK(fv_ckpt_prune(dir, 2));
	FV_CHECK_EQ(file_size(tpath("ckpt-000000005.fvc")), 0);
	FV_CHECK_EQ(file_size(tpath("ckpt-000000020.fvc")), 0);
	FV_CHECK(file_size(tpath("ckpt-000000100.fvc")) > 0);
	FV_CHECK(file_size(tpath("best.fvc")) && file_size(tpath("ckpt-abc.fvc")));
	FV_CHECK_EQ(file_size(tmp), 0);      /* its writer is gone */
	FV_CHECK_EQ(file_size(live), 7);     /* ours is still running */
	FV_CHECK_EQ(file_size(old), 0);
}

/* A child rewrites a large checkpoint in a loop and is killed at random
 * moments; the target must always load, whole, as one of the two versions. */
FV_TEST(ckpt_atomic_under_sigkill)
{
	enum { BIG = 2 << 20 };
	float *data = malloc(BIG * sizeof(float));
	fv_param p = { .name = "big", .data = data, .numel = BIG, .ndim = 1, .dims = { BIG } };
	const char *path = tpath("ckpt-000000001.fvc");
	for (int j = 0; j < BIG; j++)
		data[j] = 1.0f;
	FV_CHECK_OK(fv_ckpt_write(path, NULL, &p, 1, NULL, 0));
	for (int round = 0; round < 8; round++) {
		int pfd[2];
		char ready;
		FV_CHECK(pipe(pfd) == 0);
		pid_t pid = fork();
		if (!pid) {
			for (int v = 2;; v++) {
				for (int j = 0; j < BIG; j++)
					data[j] = (float)v;
				if (fv_ckpt_write(path, NULL, &p, 1, NULL, 0))
					_exit(1);
				if (v == 2 && write(pfd[1], "r", 1) != 1) /* one whole write done */
					_exit(1);
			}
		}
		close(pfd[1]);
		FV_CHECK(read(pfd[0], &ready, 1) == 1);
		close(pfd[0]);
		usleep((useconds_t)(fv_test_rand() % 40000));
		kill(pid, SIGKILL);
		int status;
		waitpid(pid, &status, 0);
		FV_CHECK(WIFSIGNALED(status));
		fv_ckpt *c;
		fv_ckpt_tensor t;
		FV_CHECK_OK(fv_ckpt_open(&c, path));
		if (!c)
			break;
		FV_CHECK_OK(fv_ckpt_tensor_find(c, "big", &t));
		int same = 1;
		for (int j = 1; j < BIG; j++)
			same &= t.data[j] == t.data[0];
		FV_CHECK(same && t.data[0] >= 2.0f); /* the child's, whole */
		fv_ckpt_close(&c);
		char latest[600];
		FV_CHECK_OK(fv_ckpt_latest(fv_test_tmpdir(), latest, sizeof latest, NULL));
		FV_CHECK(!strcmp(latest, path));
	}
	FV_CHECK_OK(fv_ckpt_prune(fv_test_tmpdir(), 1)); /* clears the killed writers' temps */
	free(data);
}

/* Damage the body but fix the checksum up, so the parser itself meets the
 * garbage: every open must either succeed with in-bounds tensors or fail
 * cleanly, never crash. */
FV_TEST(ckpt_garbage_behind_valid_checksum)
{
	model a;
	size_t n;
	make_model(&a, 3, NAN);
	write_model(tpath("a.fvc"), &a, 3);
	uint8_t *orig = slurp(tpath("a.fvc"), &n), *b = malloc(n);
	int opened = 0;
	for (int it = 0; it < 300; it++) {
		memcpy(b, orig, n);
		for (int k = 1 + (int)(fv_test_rand() % 4); k > 0; k--) {
			size_t at = 24 + fv_test_rand() % (n - 28);
			b[at] = (it & 1) ? (uint8_t)fv_test_rand() : b[at] ^ 0x80;
		}
		uint32_t crc = (uint32_t)crc32(crc32(0, NULL, 0), b, (uInt)(n - 4));
		memcpy(b + n - 4, &crc, 4);
		spit(tpath("g.fvc"), b, n);
		fv_ckpt *c;
		int rc = fv_ckpt_open(&c, tpath("g.fvc"));
		FV_CHECK_MSG(rc == 0 || rc == FV_E_CORRUPT || rc == FV_E_UNSUPPORTED,
			     "iteration %d: rc %d", it, rc);
		if (rc)
			continue;
		opened++;
		double sum = 0;
		for (size_t i = 0; i < fv_ckpt_tensor_count(c); i++) {
			fv_ckpt_tensor t;
			FV_CHECK_OK(fv_ckpt_tensor_at(c, i, &t));
			FV_CHECK(t.numel * 4 <= n);
			for (size_t j = 0; j < t.numel; j++)
				sum += t.data[j] != 0;
		}
		FV_CHECK(sum >= 0);
		fv_ckpt_close(&c);
	}
	FV_CHECK(opened > 0); /* flips inside tensor data are not structural */
	free(orig);
	free(b);
}
