/* fv_augwire.h — framing of the augment protocol, shared by the client
 * (lib/fv_augc*.c) and the worker (augment/worker.c). Internal: not for
 * other stages.
 *
 * A message is [Envelope] or [Envelope][data], behind the ROUTER's identity
 * frame on the client side. The data frame (sample bytes of a request, the
 * output tensor of a reply) travels as a zmq_msg_t, never through protobuf,
 * so neither end copies it. */
#ifndef FV_AUGWIRE_H
#define FV_AUGWIRE_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>
#include "fv_msg.h"

#define FV_AUG_VERSION 1
/* Envelopes (headers) are small; anything larger is refused unread. */
#define FV_AUG_HEADER_MAX (8u << 20)
#define FV_AUG_MAX_DEFAULT ((size_t)256 << 20)
#define FV_AUG_MAX_SAMPLES 65536
/* Kernel socket buffers, both sides (the kernel may cap them). */
#define FV_AUG_SOCKBUF (4 << 20)

/* Send [identity][Envelope(type, msg)][data]. identity_len 0 = none
 * (DEALER); data NULL = no data frame, else it is sent and left empty
 * (ownership moves even on failure: it is always closed). Blocks up to the
 * socket's send timeout. Returns 0, EAGAIN, EHOSTUNREACH (ROUTER_MANDATORY, peer gone) or FV_E_ZMQ. */
int fv_augwire_send(void *sock, const void *identity, size_t identity_len, int type,
		    uint64_t seq, const ProtobufCMessage *msg, zmq_msg_t *data, int flags);

/* Receive one message. routed: the socket is a ROUTER (an identity frame
 * comes first). On return m holds the envelope (free with fv_msg_clear) and
 * data the optional data frame (always initialised; size 0 if absent; close
 * it). Frame counts and sizes are checked before anything is unpacked.
 * Returns 0, EAGAIN, EINTR, FV_E_ZMQ, or FV_E_PROTO (the whole message is
 * consumed; m->identity is filled when known so the sender can be answered). */
int fv_augwire_recv(void *sock, int routed, fv_msg *m, zmq_msg_t *data, int flags);

#endif
