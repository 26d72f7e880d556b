/* fv_msg.c — see fv_msg.h. */
#include "fv_msg.h"
#include "fv_error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

int fv_sock_limit(void *sock, size_t max_bytes)
{
	int64_t max = max_bytes ? (int64_t)max_bytes : (int64_t)FV_MSG_MAX_DEFAULT;
	int linger = 200;
	if (zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max, sizeof max) ||
	    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger))
		return fv_err_set(FV_E_ZMQ, "zmq_setsockopt: %s", zmq_strerror(zmq_errno()));
	return 0;
}

int fv_msg_send(void *sock, const void *identity, size_t identity_len, int type,
		uint32_t version, uint64_t seq, const ProtobufCMessage *msg, int flags)
{
	Fovea__Envelope env = FOVEA__ENVELOPE__INIT;
	uint8_t *payload = NULL, *buf = NULL;
	size_t plen = msg ? protobuf_c_message_get_packed_size(msg) : 0;
	int rc = 0;

	if (plen && !(payload = malloc(plen)))
		return ENOMEM;
	if (plen)
		protobuf_c_message_pack(msg, payload);
	env.type = type;
	env.version = version;
	env.seq = seq;
	env.payload.data = payload;
	env.payload.len = plen;
	size_t elen = fovea__envelope__get_packed_size(&env);
	if (!(buf = malloc(elen ? elen : 1))) {
		rc = ENOMEM;
		goto out;
	}
	fovea__envelope__pack(&env, buf);
	if (identity_len && zmq_send(sock, identity, identity_len, ZMQ_SNDMORE | flags) < 0)
		goto zerr;
	if (zmq_send(sock, buf, elen, flags) < 0)
		goto zerr;
	goto out;
zerr:
	rc = zmq_errno();
	if (rc != EAGAIN && rc != EINTR)
		rc = fv_err_set(FV_E_ZMQ, "zmq_send: %s", zmq_strerror(rc));
out:
	free(buf);
	free(payload);
	return rc;
}

int fv_msg_recv(void *sock, fv_msg *out, int flags)
{
	zmq_msg_t part;
	int more = 1, rc = 0, nparts = 0;
	size_t more_len = sizeof more;

	memset(out, 0, sizeof *out);
	while (more) {
		zmq_msg_init(&part);
		if (zmq_msg_recv(&part, sock, nparts ? 0 : flags) < 0) {
			rc = zmq_errno();
			zmq_msg_close(&part);
			if (rc != EAGAIN && rc != EINTR)
				rc = fv_err_set(FV_E_ZMQ, "zmq_recv: %s", zmq_strerror(rc));
			return rc;
		}
		nparts++;
		zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &more_len);
		size_t n = zmq_msg_size(&part);
		if (more) {
			/* a routing frame; an empty delimiter frame is skipped */
			if (n && n <= FV_MSG_MAX_IDENTITY) {
				memcpy(out->identity, zmq_msg_data(&part), n);
				out->identity_len = n;
			}
		} else if (!rc) {
			out->env = fovea__envelope__unpack(NULL, n, zmq_msg_data(&part));
			if (!out->env)
				rc = fv_err_set(FV_E_PROTO, "message of %zu bytes is not an envelope", n);
		}
		zmq_msg_close(&part);
	}
	if (rc)
		return rc;
	out->type = out->env->type;
	out->version = out->env->version;
	out->seq = out->env->seq;
	out->payload = out->env->payload.data;
	out->payload_len = out->env->payload.len;
	return 0;
}

void fv_msg_clear(fv_msg *m)
{
	if (m->env)
		fovea__envelope__free_unpacked(m->env, NULL);
	m->env = NULL;
	m->payload = NULL;
	m->payload_len = 0;
}

int fv_msg_unpack(const fv_msg *m, const ProtobufCMessageDescriptor *desc,
		  size_t max_bytes, ProtobufCMessage **out)
{
	*out = NULL;
	if (max_bytes && m->payload_len > max_bytes)
		return fv_err_set(FV_E_PROTO, "%s payload of %zu bytes is over the %zu limit",
				  desc->short_name, m->payload_len, max_bytes);
	*out = protobuf_c_message_unpack(desc, NULL, m->payload_len, m->payload);
	if (!*out)
		return fv_err_set(FV_E_PROTO, "payload does not unpack as %s", desc->short_name);
	return 0;
}
