/* status_garbage.c — sends garbage to a status endpoint for
 * status_endpoints.sh (compiled by it into its temp dir; bash cannot speak
 * ZMQ):
 *
 *   status_garbage ENDPOINT    random frames, several-frame messages, an
 *                              empty frame, a truncated envelope, an
 *                              oversized frame; prints how many got an
 *                              answer (a refusal) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static int send_frames(void *ctx, const char *ep, const unsigned char *const *f, const size_t *len, int n)
{
	void *s = zmq_socket(ctx, ZMQ_DEALER);
	int linger = 0, answered = 0;
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
	if (zmq_connect(s, ep))
		return 0;
	for (int i = 0; i < n; i++)
		zmq_send(s, f[i], len[i], i + 1 < n ? ZMQ_SNDMORE : 0);
	zmq_pollitem_t it = { s, 0, ZMQ_POLLIN, 0 };
	if (zmq_poll(&it, 1, 500) > 0) {
		char buf[4096];
		answered = zmq_recv(s, buf, sizeof buf, 0) > 0;
	}
	zmq_close(s);
	return answered;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	void *ctx = zmq_ctx_new();
	unsigned char junk[2048], *big = calloc(1, 1 << 20);
	srand(7);
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (unsigned char)rand();
	static const unsigned char trunc[] = { 0x08, 0x6e, 0x10, 0x01, 0x22, 0x40, 0x01 }; /* payload cut short */
	static const unsigned char empty[1] = { 0 };
	int answered = 0;
	const unsigned char *f1[] = { junk };
	size_t l1[] = { sizeof junk };
	answered += send_frames(ctx, argv[1], f1, l1, 1);
	const unsigned char *f2[] = { junk, junk + 100, junk + 200 };
	size_t l2[] = { 7, 300, 1 };
	answered += send_frames(ctx, argv[1], f2, l2, 3);
	const unsigned char *f3[] = { empty };
	size_t l3[] = { 0 };
	answered += send_frames(ctx, argv[1], f3, l3, 1);
	const unsigned char *f4[] = { trunc };
	size_t l4[] = { sizeof trunc };
	answered += send_frames(ctx, argv[1], f4, l4, 1);
	const unsigned char *f5[] = { big };
	size_t l5[] = { 1 << 20 };
	answered += send_frames(ctx, argv[1], f5, l5, 1);
	printf("%d\n", answered);
	free(big);
	zmq_ctx_term(ctx);
	return 0;
}
