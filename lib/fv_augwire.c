/* fv_augwire.c — see fv_augwire.h. */
#include "fv_augwire.h"
#include "fv_error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int fv_augwire_send(void *sock, const void *identity, size_t identity_len, int type,
		    uint64_t seq, const ProtobufCMessage *msg, zmq_msg_t *data, int flags)
{
	Fovea__Envelope env = FOVEA__ENVELOPE__INIT;
	uint8_t stackbuf[512], *payload = NULL;
	zmq_msg_t part;
	int rc = 0;
	size_t plen = msg ? protobuf_c_message_get_packed_size(msg) : 0;

	/* pack the payload straight after the envelope's small header: one
	 * buffer, one copy of the header-sized payload */
	if (plen && !(payload = plen <= sizeof stackbuf ? stackbuf : malloc(plen))) {
		rc = ENOMEM;
		goto out;
	}
	if (plen)
		protobuf_c_message_pack(msg, payload);
	env.type = type;
	env.version = FV_AUG_VERSION;
	env.seq = seq;
	env.payload.data = payload;
	env.payload.len = plen;
	size_t elen = fovea__envelope__get_packed_size(&env);
	if (zmq_msg_init_size(&part, elen)) {
		rc = ENOMEM;
		goto out;
	}
	fovea__envelope__pack(&env, zmq_msg_data(&part));
	if (identity_len && zmq_send(sock, identity, identity_len, ZMQ_SNDMORE | flags) < 0) {
		zmq_msg_close(&part);
		goto zerr;
	}
	if (zmq_msg_send(&part, sock, (data ? ZMQ_SNDMORE : 0) | flags) < 0) {
		zmq_msg_close(&part);
		goto zerr;
	}
	if (data && zmq_msg_send(data, sock, flags) < 0)
		goto zerr;
	goto out;
zerr:
	rc = zmq_errno();
	if (rc != EAGAIN && rc != EINTR && rc != EHOSTUNREACH)
		rc = fv_err_set(FV_E_ZMQ, "zmq_send: %s", zmq_strerror(rc));
out:
	if (data)
		zmq_msg_close(data), zmq_msg_init(data);
	if (payload != stackbuf)
		free(payload);
	return rc;
}

/* Drain the rest of a multipart message after an error. */
static void drain(void *sock)
{
	int more = 1;
	size_t len = sizeof more;
	zmq_msg_t part;
	while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len) == 0 && more) {
		zmq_msg_init(&part);
		if (zmq_msg_recv(&part, sock, 0) < 0) {
			zmq_msg_close(&part);
			return;
		}
		zmq_msg_close(&part);
	}
}

int fv_augwire_recv(void *sock, int routed, fv_msg *m, zmq_msg_t *data, int flags)
{
	zmq_msg_t part;
	int rc = 0, more = 0;
	size_t len = sizeof more;

	memset(m, 0, sizeof *m);
	zmq_msg_init(data);
	zmq_msg_init(&part);
	if (zmq_msg_recv(&part, sock, flags) < 0) {
		rc = zmq_errno();
		zmq_msg_close(&part);
		return rc == EAGAIN || rc == EINTR ? rc
			: fv_err_set(FV_E_ZMQ, "zmq_recv: %s", zmq_strerror(rc));
	}
	if (routed) {
		size_t n = zmq_msg_size(&part);
		if (n > FV_MSG_MAX_IDENTITY)
			n = FV_MSG_MAX_IDENTITY;
		memcpy(m->identity, zmq_msg_data(&part), n);
		m->identity_len = n;
		zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len);
		zmq_msg_close(&part);
		zmq_msg_init(&part);
		if (!more)
			return fv_err_set(FV_E_PROTO, "message without an envelope frame");
		if (zmq_msg_recv(&part, sock, 0) < 0) {
			rc = fv_err_set(FV_E_ZMQ, "zmq_recv: %s", zmq_strerror(zmq_errno()));
			goto out;
		}
	}
	size_t n = zmq_msg_size(&part);
	if (n > FV_AUG_HEADER_MAX) {
		rc = fv_err_set(FV_E_PROTO, "envelope of %zu bytes is over the %u limit", n,
				FV_AUG_HEADER_MAX);
		goto out;
	}
	m->env = fovea__envelope__unpack(NULL, n, zmq_msg_data(&part));
	if (!m->env) {
		rc = fv_err_set(FV_E_PROTO, "frame of %zu bytes is not an envelope", n);
		goto out;
	}
	m->type = m->env->type;
	m->version = m->env->version;
	m->seq = m->env->seq;
	m->payload = m->env->payload.data;
	m->payload_len = m->env->payload.len;
	zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len);
	if (more) {
		if (zmq_msg_recv(data, sock, 0) < 0) {
			rc = fv_err_set(FV_E_ZMQ, "zmq_recv: %s", zmq_strerror(zmq_errno()));
			goto out;
		}
		zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len);
		if (more) {
			rc = fv_err_set(FV_E_PROTO, "message has more than one data frame");
			goto out;
		}
	}
out:
	zmq_msg_close(&part);
	if (rc) {
		drain(sock);
		fv_msg_clear(m);
		zmq_msg_close(data);
		zmq_msg_init(data);
	}
	return rc;
}
