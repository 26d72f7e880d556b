/* libFuzzer target: what arrives on a socket or sits in the dataset —
 * Envelope unpack, then the payload as the type it claims (fv_msg_unpack),
 * and the zero-copy Record parser (fv_record_parse). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fv_msg.h"
#include "fv_store.h"

static const ProtobufCMessageDescriptor *payload_desc(int type)
{
	switch (type) {
	case FOVEA__MSG_TYPE__MSG_DATASET_UPDATED: return &fovea__dataset_updated__descriptor;
	case FOVEA__MSG_TYPE__MSG_ERROR: return &fovea__error__descriptor;
	default: return &fovea__record__descriptor;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fv_record r;
	if (!fv_record_parse(data, size, &r)) {
		const uint8_t *end = data + size;
		if ((r.data && r.data + r.data_len > end) || (r.hash && r.hash + r.hash_len > end) ||
		    (r.source && (const uint8_t *)r.source + r.source_len > end))
			__builtin_trap();
	}
	Fovea__Envelope *env = fovea__envelope__unpack(NULL, size, data);
	if (!env)
		return 0;
	fv_msg m;
	memset(&m, 0, sizeof m);
	m.type = env->type;
	m.version = env->version;
	m.env = env;
	m.payload = env->payload.data;
	m.payload_len = env->payload.len;
	ProtobufCMessage *pm = NULL;
	if (!fv_msg_unpack(&m, payload_desc(m.type), 1 << 20, &pm))
		protobuf_c_message_free_unpacked(pm, NULL);
	if (!fv_record_parse(m.payload, m.payload_len, &r) && r.data_len > m.payload_len)
		__builtin_trap();
	fv_msg_clear(&m);
	return 0;
}
