/* exporter/onnx.h — the exporter's ONNX writer (see onnx.c for the graph it
 * makes: QDQ for INT8, plain float ops for FP32, opset 13). */
#ifndef FV_ONNX_H
#define FV_ONNX_H

#include <stddef.h>
#include <stdint.h>
#include "exporter/xmodel.h"

/* The ONNX ModelProto bytes of m (int8: the QDQ form; m must be quantized).
 * *buf is malloc'd, the caller frees it. Returns 0, ENOMEM, EINVAL or
 * FV_E_UNSUPPORTED naming the op ONNX cannot take as is. */
int fv_onnx_serialize(const fv_xmodel *m, int int8, uint8_t **buf, size_t *len);
/* Serialize and write to path (fsynced, not atomic: write into a temp dir). */
int fv_onnx_write(const fv_xmodel *m, int int8, const char *path, size_t *len);

#endif
