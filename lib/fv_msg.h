/* fv_msg.h — message framing over ZeroMQ: one fovea.Envelope per message,
 * optionally behind ROUTER identity frames.
 *
 * Receive paths never trust the peer: sizes are bounded on the socket
 * (ZMQ_MAXMSGSIZE, set by fv_sock_limit) and again before unpacking, an
 * envelope that does not unpack or names an unknown type is FV_E_PROTO, and
 * the caller decides to log and go on. */
#ifndef FV_MSG_H
#define FV_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>
#include "fovea.pb-c.h"

#define FV_MSG_MAX_DEFAULT (64u << 20)
#define FV_MSG_MAX_IDENTITY 256

typedef struct fv_msg {
	int type;             /* Fovea__MsgType */
	uint32_t version;
	uint64_t seq;
	uint8_t identity[FV_MSG_MAX_IDENTITY]; /* ROUTER routing id, if any */
	size_t identity_len;
	Fovea__Envelope *env; /* owned; payload points into it */
	const uint8_t *payload;
	size_t payload_len;
} fv_msg;

/* Set ZMQ_MAXMSGSIZE (max_bytes, 0 = FV_MSG_MAX_DEFAULT) and a short linger. */
int fv_sock_limit(void *sock, size_t max_bytes);

/* Pack msg into an Envelope of `type`/`version` and send it. With identity
 * (len > 0) the identity frame goes first (ROUTER sockets). seq is the
 * sender's counter. flags: ZMQ_DONTWAIT or 0. Returns 0, EAGAIN, or FV_E_ZMQ. */
int fv_msg_send(void *sock, const void *identity, size_t identity_len, int type,
		uint32_t version, uint64_t seq, const ProtobufCMessage *msg, int flags);

/* Receive one message. Routing frames before the envelope are kept as the
 * identity (the last one before an empty delimiter or the envelope). Returns
 * 0, EAGAIN (nothing waiting with ZMQ_DONTWAIT), EINTR, FV_E_ZMQ, or
 * FV_E_PROTO for garbage (the garbage is consumed; out->identity is still
 * filled so a ROUTER can answer with an error). Free with fv_msg_clear. */
int fv_msg_recv(void *sock, fv_msg *out, int flags);
void fv_msg_clear(fv_msg *m);

/* Unpack m's payload as `desc` (e.g. &fovea__record__descriptor), refusing
 * payloads over max_bytes (0 = no extra bound). *out is freed with
 * protobuf_c_message_free_unpacked(*out, NULL). Returns 0 or FV_E_PROTO. */
int fv_msg_unpack(const fv_msg *m, const ProtobufCMessageDescriptor *desc,
		  size_t max_bytes, ProtobufCMessage **out);

#endif
