/* test_status.c — lib/fv_status: a status endpoint answers with the
 * daemon's figures, refuses garbage without dying, stays quiet when off,
 * and speaks CURVE when given keys. */
#include "fv_test.h"
#include "fv_curve.h"
#include "fv_error.h"
#include "fv_msg.h"
#include "fv_status.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

typedef struct figs_src {
	int calls;
	double version;
} figs_src;

static void fill(void *ctx, fv_status_figs *f)
{
	figs_src *src = ctx;
	src->calls++;
	fv_status_num(f, "dataset.version", src->version);
	fv_status_str(f, "state", "%s-%d", "busy", 7);
}

static void endpoint(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "ipc://%s/%s", fv_test_tmpdir(), name);
}

FV_TEST(status_answers_with_figures)
{
	void *ctx = zmq_ctx_new();
	figs_src src = { .version = 3 };
	char ep[512];
	endpoint(ep, sizeof ep, "st1.sock");
	fv_status_opts o = { .endpoint = ep, .name = "ingest", .fill = fill, .fill_ctx = &src };
	fv_status *s = NULL;
	FV_CHECK_OK(fv_status_new(&s, ctx, &o));
	fv_status_update(s, 1);
	FV_CHECK_EQ(src.calls, 1);
	fv_status_update(s, 0); /* rate-limited: no second fill this soon */
	FV_CHECK_EQ(src.calls, 1);

	Fovea__DaemonStatus *st = NULL;
	FV_CHECK_OK(fv_status_query(ctx, ep, 2000, NULL, NULL, &st));
	FV_CHECK(st != NULL);
	FV_CHECK(!strcmp(st->name, "ingest"));
	FV_CHECK_EQ(st->pid, getpid());
	FV_CHECK(st->host[0] != 0);
	FV_CHECK(st->started_at > 0 && st->now >= st->started_at);
	FV_CHECK_EQ(st->n_figures, 2);
	const Fovea__StatusFigure *v = fv_status_find(st, "dataset.version");
	FV_CHECK(v && v->numeric);
	FV_CHECK_NEAR(v ? v->number : 0, 3, 0);
	const Fovea__StatusFigure *t = fv_status_find(st, "state");
	FV_CHECK(t && !t->numeric && !strcmp(t->text, "busy-7"));
	FV_CHECK(fv_status_find(st, "nope") == NULL);
	fovea__daemon_status__free_unpacked(st, NULL);

	/* a forced update shows the new figure at once */
	src.version = 4;
	fv_status_update(s, 1);
	FV_CHECK_OK(fv_status_query(ctx, ep, 2000, NULL, NULL, &st));
	v = fv_status_find(st, "dataset.version");
	FV_CHECK_NEAR(v ? v->number : 0, 4, 0);
	fovea__daemon_status__free_unpacked(st, NULL);
	uint64_t answered, garbage;
	fv_status_counts(s, &answered, &garbage);
	FV_CHECK_EQ(answered, 2);
	FV_CHECK_EQ(garbage, 0);
	fv_status_destroy(&s);
	FV_CHECK(s == NULL);

	/* nobody there now: a timeout, not a hang */
	FV_CHECK_EQ(fv_status_query(ctx, ep, 200, NULL, NULL, &st), FV_E_TIMEOUT);
	FV_CHECK(st == NULL);
	zmq_ctx_term(ctx);
}

FV_TEST(status_off_without_endpoint)
{
	void *ctx = zmq_ctx_new();
	fv_status_opts o = { .endpoint = "", .name = "x" };
	fv_status *s = (fv_status *)1;
	FV_CHECK_OK(fv_status_new(&s, ctx, &o));
	FV_CHECK(s == NULL);
	fv_status_update(s, 1); /* all NULL-safe */
	fv_status_destroy(&s);
	o.endpoint = "bogus://nowhere";
	FV_CHECK_EQ(fv_status_new(&s, ctx, &o), FV_E_ZMQ);
	FV_CHECK(strstr(fv_err_msg(FV_E_ZMQ), "bogus://nowhere") != NULL);
	zmq_ctx_term(ctx);
}

/* Send raw frames from a DEALER and return the reply's code (or -1: none). */
static int raw(void *ctx, const char *ep, const void *a, size_t alen, const void *b, size_t blen)
{
	void *d = zmq_socket(ctx, ZMQ_DEALER);
	int linger = 0, code = -1;
	zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger);
	zmq_connect(d, ep);
	zmq_send(d, a, alen, b ? ZMQ_SNDMORE : 0);
	if (b)
		zmq_send(d, b, blen, 0);
	zmq_pollitem_t it = { d, 0, ZMQ_POLLIN, 0 };
	if (zmq_poll(&it, 1, 500) > 0) {
		fv_msg m;
		ProtobufCMessage *st = NULL;
		if (!fv_msg_recv(d, &m, 0) &&
		    !fv_msg_unpack(&m, &fovea__daemon_status__descriptor, 0, &st)) {
			code = ((Fovea__DaemonStatus *)st)->code;
			protobuf_c_message_free_unpacked(st, NULL);
		}
		fv_msg_clear(&m);
	}
	zmq_close(d);
	return code;
}

FV_TEST(status_survives_garbage)
{
	void *ctx = zmq_ctx_new();
	figs_src src = { .version = 9 };
	char ep[512];
	endpoint(ep, sizeof ep, "st2.sock");
	fv_status_opts o = { .endpoint = ep, .name = "serve", .fill = fill, .fill_ctx = &src };
	fv_status *s = NULL;
	FV_CHECK_OK(fv_status_new(&s, ctx, &o));
	fv_status_update(s, 1);

	uint8_t junk[1000];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (uint8_t)fv_test_rand();
	/* not an envelope: refused with FV_E_PROTO */
	FV_CHECK_EQ(raw(ctx, ep, "\x0a\xff\xff", 3, NULL, 0), FV_E_PROTO);
	/* an envelope of another type: refused */
	Fovea__Envelope env = FOVEA__ENVELOPE__INIT;
	env.type = FOVEA__MSG_TYPE__MSG_CLASSIFY_REQUEST;
	env.version = 1;
	uint8_t buf[64];
	size_t n = fovea__envelope__pack(&env, buf);
	FV_CHECK_EQ(raw(ctx, ep, buf, n, NULL, 0), FV_E_PROTO);
	/* a status request of an unknown version: refused */
	env.type = FOVEA__MSG_TYPE__MSG_STATUS_REQUEST;
	env.version = 99;
	n = fovea__envelope__pack(&env, buf);
	FV_CHECK_EQ(raw(ctx, ep, buf, n, NULL, 0), FV_E_PROTO);
	/* random bytes, several frames, an oversized frame: no crash (an
	 * answer or none) */
	raw(ctx, ep, junk, sizeof junk, junk, 10);
	uint8_t *big = calloc(1, FV_STATUS_MAX_REQUEST * 4);
	FV_CHECK_EQ(raw(ctx, ep, big, FV_STATUS_MAX_REQUEST * 4, NULL, 0), -1);
	free(big);

	/* and it still answers a real request */
	Fovea__DaemonStatus *st = NULL;
	FV_CHECK_OK(fv_status_query(ctx, ep, 2000, NULL, NULL, &st));
	const Fovea__StatusFigure *v = fv_status_find(st, "dataset.version");
	FV_CHECK_NEAR(v ? v->number : 0, 9, 0);
	fovea__daemon_status__free_unpacked(st, NULL);
	uint64_t answered, garbage;
	fv_status_counts(s, &answered, &garbage);
	FV_CHECK_EQ(answered, 1);
	FV_CHECK(garbage >= 3);
	fv_status_destroy(&s);
	zmq_ctx_term(ctx);
}

FV_TEST(status_over_curve)
{
	void *ctx = zmq_ctx_new();
	char d[512], key[600], pub[600], ckey[1200], ep[600];
	snprintf(d, sizeof d, "%s/keys", fv_test_tmpdir());
	FV_CHECK_OK(mkdir(d, 0700) == 0 ? 0 : -1);
	FV_CHECK_OK(fv_curve_keygen(d, "server", NULL));
	FV_CHECK_OK(fv_curve_keygen(d, "client", NULL));
	snprintf(key, sizeof key, "%s/server.key", d);
	snprintf(pub, sizeof pub, "%s/server.pub", d);
	snprintf(ckey, sizeof ckey, "%s/client.key", d);
	endpoint(ep, sizeof ep, "st3.sock");
	figs_src src = { .version = 5 };
	fv_status_opts o = { .endpoint = ep, .name = "trainer", .fill = fill, .fill_ctx = &src,
			     .curve_secret_key = key };
	fv_status *s = NULL;
	FV_CHECK_OK(fv_status_new(&s, ctx, &o));
	fv_status_update(s, 1);
	Fovea__DaemonStatus *st = NULL;
	FV_CHECK_OK(fv_status_query(ctx, ep, 2000, ckey, pub, &st));
	FV_CHECK(st && !strcmp(st->name, "trainer"));
	if (st)
		fovea__daemon_status__free_unpacked(st, NULL);
	/* plain text against a CURVE server: no answer */
	FV_CHECK_EQ(fv_status_query(ctx, ep, 300, NULL, NULL, &st), FV_E_TIMEOUT);
	fv_status_destroy(&s);
	zmq_ctx_term(ctx);

	/* with an allow-list (the broker's): the listed key is answered, a
	 * stranger that knows the server key is not */
	char allow[520], skey[600];
	snprintf(allow, sizeof allow, "%s/allow", fv_test_tmpdir());
	FV_CHECK_OK(mkdir(allow, 0700) == 0 ? 0 : -1);
	FV_CHECK_OK(fv_curve_keygen(allow, "client", NULL));
	FV_CHECK_OK(fv_curve_keygen(d, "stranger", NULL));
	snprintf(ckey, sizeof ckey, "%s/client.key", allow);
	snprintf(skey, sizeof skey, "%s/stranger.key", d);
	endpoint(ep, sizeof ep, "st4.sock");
	ctx = zmq_ctx_new();
	void *cctx = zmq_ctx_new(); /* clients in a context of their own, as in another process */
	o.endpoint = ep;
	o.curve_allow = allow;
	FV_CHECK_OK(fv_status_new(&s, ctx, &o));
	fv_status_update(s, 1);
	FV_CHECK_OK(fv_status_query(cctx, ep, 2000, ckey, pub, &st));
	if (st)
		fovea__daemon_status__free_unpacked(st, NULL);
	FV_CHECK_EQ(fv_status_query(cctx, ep, 300, skey, pub, &st), FV_E_TIMEOUT);
	fv_status_destroy(&s);
	zmq_ctx_term(cctx);
	zmq_ctx_term(ctx);
}
