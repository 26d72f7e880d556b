/* evaluator_zt.c — a tiny ZeroMQ tool for the evaluator's integration
 * tests, compiled by them into their temp dir (bash cannot speak ZMQ):
 *
 *   zt pub ENDPOINT MSG...     bind a PUB, wait for subscribers, send each MSG
 *                              (frames in hex, separated by ':')
 *   zt sub ENDPOINT SECONDS    print the envelope type of every message heard */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static size_t unhex(const char *s, size_t n, unsigned char *out)
{
	size_t k = 0;
	for (size_t i = 0; i + 2 <= n; i += 2) {
		unsigned v;
		sscanf(s + i, "%2x", &v);
		out[k++] = (unsigned char)v;
	}
	return k;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	void *ctx = zmq_ctx_new();
	if (!strcmp(argv[1], "pub")) {
		void *s = zmq_socket(ctx, ZMQ_PUB);
		if (zmq_bind(s, argv[2]))
			return 1;
		usleep(1500000); /* let subscribers (re)connect */
		for (int i = 3; i < argc; i++) {
			const char *m = argv[i];
			for (;;) {
				const char *c = strchr(m, ':');
				size_t n = c ? (size_t)(c - m) : strlen(m);
				unsigned char buf[4096];
				size_t k = unhex(m, n < 8192 ? n : 8192, buf);
				zmq_send(s, buf, k, c ? ZMQ_SNDMORE : 0);
				if (!c)
					break;
				m = c + 1;
			}
			usleep(100000);
		}
		usleep(500000);
		int linger = 1000;
		zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
		zmq_close(s);
	} else {
		void *s = zmq_socket(ctx, ZMQ_SUB);
		zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0);
		if (zmq_connect(s, argv[2]))
			return 1;
		time_t end = time(NULL) + atoi(argv[3]);
		while (time(NULL) < end) {
			zmq_pollitem_t it = { s, 0, ZMQ_POLLIN, 0 };
			if (zmq_poll(&it, 1, 200) <= 0)
				continue;
			unsigned char buf[1 << 16];
			int n = zmq_recv(s, buf, sizeof buf, 0);
			/* Envelope field 1 (type) is a varint: tag 0x08 first */
			if (n >= 2 && buf[0] == 0x08)
				printf("type %u\n", buf[1] & 0x7f);
			fflush(stdout);
		}
		zmq_close(s);
	}
	zmq_ctx_term(ctx);
	return 0;
}
